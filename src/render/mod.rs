//! Rendering of per-node recordings: reading `nodes.f32` + `nodes.json` and drawing them as SVG
//! pictures (a time × node heat map, and snapshots of the grid at chosen times). Also the
//! generic SVG charts other modules draw with: line charts with shaded spans, vertical marks and
//! histogram bars ([`chart_svg`], stacked panels [`panels_svg`], [`lines_svg`]), grid heat maps
//! ([`grid_svg`]) and polar histograms ([`rose_svg`]).
//!
//! This module owns only the file format reader and the drawing. It does no engine work: it never
//! runs a plant, never touches the real-time path, and only reads what the recorder wrote.
//!
//! Pictures are SVG files. Axes, ticks and text are SVG vector elements drawn with `plotters`
//! (text stays SVG `<text>`, so no system fonts are needed). The data itself is a raster, encoded
//! as PNG and embedded as one `<image href="data:image/png;base64,…">` per picture. It is drawn
//! underneath the axes, and stretched onto the plot area with nearest-neighbour
//! (`image-rendering: pixelated`) so cells stay sharp.
//!
//! We write that `<image>` element ourselves instead of using plotters' `blit_bitmap`. In plotters
//! 0.3.7 the SVG backend's `blit_bitmap` either emits one `<rect>` per pixel (without the hidden
//! `plotters-svg/bitmap_encoder` feature) or a `data:png;base64,` URI, which is not a valid MIME
//! type. Either way it always draws the image at exactly its pixel size, which can't stretch
//! N node rows onto the plot height.
//!
//! Colours: viridis (see [`viridis`]). Non-finite values are drawn as [`NON_FINITE_RGB`] (grey),
//! so a NaN stays visible instead of being averaged away.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use base64::Engine as _;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Deserialize;

/// The only `format` value in `nodes.json` that this reader understands.
const FORMAT: &str = "f32le frame-major";

/// Colour (8-bit sRGB) for NaN and ±∞. Plain grey isn't on the viridis path, so it can't be
/// mistaken for a value.
pub const NON_FINITE_RGB: [u8; 3] = [128, 128, 128];

/// Viridis control points (8-bit sRGB), evenly spaced in `t ∈ [0, 1]`. They are matplotlib's
/// viridis sampled at 9 points (the values R's `viridisLite::viridis(9)` gives). Their
/// luminance rises strictly, so brighter always means larger.
const VIRIDIS: [[u8; 3]; 9] = [
    [0x44, 0x01, 0x54],
    [0x47, 0x2D, 0x7B],
    [0x3B, 0x52, 0x8B],
    [0x2C, 0x72, 0x8E],
    [0x21, 0x90, 0x8C],
    [0x27, 0xAD, 0x81],
    [0x5D, 0xC8, 0x63],
    [0xAA, 0xDC, 0x32],
    [0xFD, 0xE7, 0x25],
];

/// Largest SVG side accepted (px). Above this a raster can use hundreds of MB, and no screen
/// shows it anyway.
const MAX_SVG_SIDE_PX: u32 = 8192;
/// Smallest heat map accepted (px). Below this the axis labels and colour bar leave no plot area.
const MIN_HEATMAP_W_PX: u32 = 320;
const MIN_HEATMAP_H_PX: u32 = 200;
/// Most pixel rows in a heat map raster. With more nodes than this, node ranges are averaged
/// into rows, so huge N can't make a huge PNG.
const MAX_RASTER_ROWS: usize = 4096;
/// Largest snapshot panel image side (px). Bigger grids are averaged down to this size.
const MAX_PANEL_SIDE_PX: u32 = 1024;
/// Smallest snapshot panel image on its longer side (px). Cells of tiny grids are enlarged to
/// this, so the panel's title and ticks fit.
const MIN_PANEL_SIDE_PX: u32 = 120;
/// Most snapshots in one picture, so the SVG width stays bounded.
pub const MAX_SNAPSHOTS: usize = 32;
/// Most cells in a [`grid_svg`] heat map (each is one vector rectangle).
pub const MAX_GRID_CELLS: usize = 250_000;

/// Fixed layout sizes (px). They are fixed rather than measured because the SVG backend only
/// estimates text size.
const TITLE_H: u32 = 36;
const MARGIN: u32 = 8;
const X_LABEL_AREA: u32 = 40;
const Y_LABEL_AREA: u32 = 64;
/// Width of the colour bar column: left gap, bar, value labels.
const CBAR_GAP: u32 = 12;
const CBAR_BAR_W: u32 = 16;
const CBAR_LABEL_AREA: u32 = 64;
const CBAR_W: u32 = CBAR_GAP + CBAR_BAR_W + CBAR_LABEL_AREA + MARGIN;
/// Minimum colour bar height (px). Below this its labels would overlap.
const CBAR_MIN_H: u32 = 120;
/// Number of filled steps the colour bar is made of. Its vector rects are enough at this count,
/// so each picture has just one embedded PNG: the data.
const CBAR_STEPS: usize = 128;
const PANEL_TITLE_H: u32 = 28;
const PANEL_Y_LABEL_AREA: u32 = 40;
const PANEL_X_LABEL_AREA: u32 = 40;

const FONT: &str = "sans-serif";
/// Font sizes (plotters' units; the SVG gets size / 1.24). Set explicitly because plotters'
/// default label size is a percentage of the chart area, which comes out unreadably small
/// on the narrow colour bar.
const TITLE_PX: u32 = 22;
const PANEL_TITLE_PX: u32 = 18;
const LABEL_PX: u32 = 14;
const DESC_PX: u32 = 15;

/// One run's per-node recording: the observable of every node, frame by frame.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecording {
    /// Number of nodes N (= `rows · cols`).
    pub nodes: usize,
    /// Grid rows. 1 for a plant that is not a grid.
    pub rows: usize,
    /// Grid columns; node `r·cols + c` sits at row r, column c. N for a plant that is not a grid.
    pub cols: usize,
    /// Whether the nodes form a rows × cols grid (otherwise they are just a list).
    pub grid: bool,
    /// Engine sample rate (Hz).
    pub sample_rate_hz: f64,
    /// Frame rate (Hz) = `sample_rate_hz / decimation_samples`.
    pub rate_hz: f64,
    /// Engine sample index of frame 0 (samples since the run's start).
    pub first_sample: u64,
    /// Engine samples between consecutive frames (≥ 1).
    pub decimation_samples: u64,
    /// Number of whole frames in `data` (≥ 1).
    pub frames: usize,
    /// `frames · nodes` values, frame-major: frame k is `data[k·N .. (k+1)·N]`. Units are the
    /// plant's observable's.
    pub data: Vec<f32>,
}

/// The fields of `nodes.json` this reader uses. Other fields, including `frames`, are ignored on
/// purpose: the frame count is taken from `nodes.f32`'s size, because an interrupted run can
/// leave a stale count.
#[derive(Deserialize)]
struct NodesJson {
    format: String,
    nodes: u64,
    rows: u64,
    cols: u64,
    grid: bool,
    sample_rate_hz: f64,
    decimation_samples: u64,
    rate_hz: f64,
    first_sample: u64,
}

impl NodeRecording {
    /// Reads `dir/nodes.json` and `dir/nodes.f32`.
    ///
    /// Only whole frames are read: a partial last frame (an interrupted run) is dropped quietly,
    /// and `nodes.json`'s `frames` is not trusted. Errors name the file and say how to fix it.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let json_path = dir.join("nodes.json");
        let bin_path = dir.join("nodes.f32");
        let fix = "run with `[output] nodes_rate_hz` set to record every node";
        if !dir.is_dir() {
            return Err(format!(
                "{}: no such folder; give the folder of a run (`entrain run PROFILE --out DIR`)",
                dir.display()
            ));
        }

        let text = match std::fs::read_to_string(&json_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("{}: not found; {fix}", json_path.display()))
            }
            Err(e) => return Err(format!("{}: cannot read: {e}", json_path.display())),
        };
        let bad = |what: String| format!("{}: {what}", json_path.display());
        let meta: NodesJson = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not a valid node recording header: {e}; expected fields format, nodes, rows, \
                 cols, grid, sample_rate_hz, decimation_samples, rate_hz, first_sample"
            ))
        })?;
        if meta.format != FORMAT {
            return Err(bad(format!(
                "format is {:?}, this reader only knows {FORMAT:?}",
                meta.format
            )));
        }
        let nodes = usize::try_from(meta.nodes)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(format!("nodes = {} is not a usable node count", meta.nodes)))?;
        if meta.rows.checked_mul(meta.cols) != Some(meta.nodes) {
            return Err(bad(format!(
                "rows · cols = {} · {} does not equal nodes = {}",
                meta.rows, meta.cols, meta.nodes
            )));
        }
        if !meta.grid && meta.rows != 1 {
            return Err(bad(format!(
                "grid = false needs rows = 1 and cols = nodes, got rows = {}",
                meta.rows
            )));
        }
        if !(meta.sample_rate_hz.is_finite() && meta.sample_rate_hz > 0.0) {
            return Err(bad(format!(
                "sample_rate_hz = {} must be a positive number",
                meta.sample_rate_hz
            )));
        }
        if meta.decimation_samples == 0 {
            return Err(bad("decimation_samples must be at least 1".into()));
        }
        let rate_hz = meta.sample_rate_hz / meta.decimation_samples as f64;
        let off = (meta.rate_hz - rate_hz).abs();
        if off.is_nan() || off > 1e-6 * rate_hz {
            return Err(bad(format!(
                "rate_hz = {} disagrees with sample_rate_hz / decimation_samples = {rate_hz}",
                meta.rate_hz
            )));
        }

        let frame_bytes = nodes
            .checked_mul(4)
            .ok_or_else(|| bad(format!("nodes = {nodes} is too large")))?;
        let mut file = File::open(&bin_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("{}: not found; {fix}", bin_path.display())
            } else {
                format!("{}: cannot open: {e}", bin_path.display())
            }
        })?;
        let len = file
            .metadata()
            .map_err(|e| format!("{}: cannot stat: {e}", bin_path.display()))?
            .len();
        let frames = usize::try_from(len / frame_bytes as u64).unwrap_or(usize::MAX);
        if frames == 0 {
            return Err(format!(
                "{}: holds no whole frame ({len} bytes, one frame of {nodes} nodes is \
                 {frame_bytes} bytes); the run recorded nothing",
                bin_path.display()
            ));
        }
        let values = frames
            .checked_mul(nodes)
            .ok_or_else(|| format!("{}: too large to load", bin_path.display()))?;
        let data = read_f32le(&mut file, values)
            .map_err(|e| format!("{}: cannot read: {e}", bin_path.display()))?;

        let rec = NodeRecording {
            nodes,
            rows: meta.rows as usize,
            cols: meta.cols as usize,
            grid: meta.grid,
            sample_rate_hz: meta.sample_rate_hz,
            rate_hz,
            first_sample: meta.first_sample,
            decimation_samples: meta.decimation_samples,
            frames,
            data,
        };
        // Checked here so that every time the drawing code computes is finite.
        if !rec.time_s(frames).is_finite() {
            return Err(bad(
                "frame times overflow: sample_rate_hz is too small".into()
            ));
        }
        Ok(rec)
    }

    /// Time of frame `frame` in seconds since the run's start (engine sample 0).
    pub fn time_s(&self, frame: usize) -> f64 {
        // u128 so that first_sample + frame · decimation can't overflow before the division.
        let sample = self.first_sample as u128 + frame as u128 * self.decimation_samples as u128;
        sample as f64 / self.sample_rate_hz
    }

    /// Frame `k`'s values, node 0 first. It is empty when `k ≥ frames` rather than panicking,
    /// because this is a reporting path.
    pub fn frame(&self, k: usize) -> &[f32] {
        let start = k.checked_mul(self.nodes);
        let end = start.and_then(|s| s.checked_add(self.nodes));
        match (start, end) {
            (Some(s), Some(e)) => self.data.get(s..e).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Index of the frame nearest to time `t_s` (s since the run's start), clamped to the
    /// recording.
    fn nearest_frame(&self, t_s: f64) -> usize {
        let k = ((t_s * self.sample_rate_hz - self.first_sample as f64)
            / self.decimation_samples as f64)
            .round();
        // `as` saturates, and NaN becomes 0. Callers reject non-finite times first.
        (k.max(0.0) as usize).min(self.frames - 1)
    }

    /// Duration of one frame (s).
    fn frame_period_s(&self) -> f64 {
        self.decimation_samples as f64 / self.sample_rate_hz
    }
}

/// Reads `count` little-endian f32s, in chunks, so a big recording is never held twice.
fn read_f32le(file: &mut File, count: usize) -> std::io::Result<Vec<f32>> {
    let mut out = Vec::with_capacity(count);
    let mut buf = vec![0u8; 1 << 16];
    while out.len() < count {
        let want = ((count - out.len()) * 4).min(buf.len());
        file.read_exact(&mut buf[..want])?;
        out.extend(
            buf[..want]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    Ok(out)
}

/// Viridis colour (8-bit sRGB) for `t ∈ [0, 1]`, linearly interpolated between the 9 control
/// points of `VIRIDIS`. Out-of-range `t` is clamped; non-finite `t` gives [`NON_FINITE_RGB`].
pub fn viridis(t: f64) -> [u8; 3] {
    if !t.is_finite() {
        return NON_FINITE_RGB;
    }
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |c: usize| (a[c] as f64 + (b[c] as f64 - a[c] as f64) * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

/// `k` times (s since the run's start) spread evenly over the recording: the frame times of
/// `linspace(0, frames − 1, k)` rounded to frames, so the first and last frames are included
/// when `k ≥ 2`, and k = 1 gives the first frame, as numpy's `linspace` does.
pub fn even_times(rec: &NodeRecording, k: usize) -> Vec<f64> {
    let last = rec.frames.saturating_sub(1) as f64;
    (0..k)
        .map(|i| {
            let frac = if k > 1 {
                i as f64 / (k - 1) as f64
            } else {
                0.0
            };
            rec.time_s((frac * last).round() as usize)
        })
        .collect()
}

/// Draws `rec` as a time × node heat map into the SVG file `path`, `width_px × height_px` (the
/// SVG root's size).
///
/// x is time (s since the run's start), y is the node index with node 0 at the top, as imshow
/// draws it. The raster has one column per plot pixel. With more frames than columns, each
/// column averages its frames; with fewer, it shows the nearest frame. It has the same number
/// of pixel rows for every node, at least one (rows are averaged only beyond 4096 nodes). A
/// cell with any non-finite value is grey, so short glitches survive downsampling. The colours
/// span the data's finite min…max (±0.5 when they are equal), with a labelled colour bar.
pub fn heatmap_svg(
    rec: &NodeRecording,
    path: &Path,
    width_px: u32,
    height_px: u32,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    check_recording(rec).map_err(|e| err(&e))?;
    if !(MIN_HEATMAP_W_PX..=MAX_SVG_SIDE_PX).contains(&width_px)
        || !(MIN_HEATMAP_H_PX..=MAX_SVG_SIDE_PX).contains(&height_px)
    {
        return Err(err(&format!(
            "heat map size {width_px}×{height_px} px is outside \
             {MIN_HEATMAP_W_PX}…{MAX_SVG_SIDE_PX} × {MIN_HEATMAP_H_PX}…{MAX_SVG_SIDE_PX}"
        )));
    }
    let n = rec.nodes;
    let scale = ValueScale::of(&rec.data);
    let t0 = rec.time_s(0);
    let t1 = rec.time_s(rec.frames - 1) + rec.frame_period_s();

    // Shrink the plot height to a multiple of N so every node gets the same number of rows.
    let avail_h = height_px - TITLE_H - 2 * MARGIN - X_LABEL_AREA;
    let extra = if n <= avail_h as usize {
        avail_h % n as u32
    } else {
        0
    };

    let mut svg = String::new();
    let mut rasters = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width_px, height_px)).into_drawing_area();
        let title_style =
            TextStyle::from((FONT, TITLE_PX)).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(
            "activity over time × node",
            &title_style,
            ((width_px / 2) as i32, (TITLE_H / 2) as i32),
        )
        .map_err(|e| err(&e))?;
        let body = root
            .clone()
            .shrink((0, TITLE_H), (width_px, height_px - TITLE_H));
        let (main, bar) = body.split_horizontally(width_px - CBAR_W);

        let plot_w = width_px - CBAR_W - 2 * MARGIN - Y_LABEL_AREA;
        let x_ticks = nice_ticks(t0, t1, ticks_for(plot_w, 100), 0.0);
        let y_ticks = nice_ticks(0.0, (n - 1) as f64, ticks_for(avail_h, 40), 1.0);
        let x_fmt = tick_formatter(&x_ticks);
        let y_fmt = |v: &f64| format!("{}", v.round() as i64);
        let mut chart = ChartBuilder::on(&main)
            .margin_top(MARGIN)
            .margin_bottom(MARGIN + extra)
            .margin_left(MARGIN)
            .margin_right(MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(
                Axis::new(t0, t1, x_ticks),
                // Reversed so node 0 is at the top; node i's row spans i ± 0.5.
                Axis::new(n as f64 - 0.5, -0.5, y_ticks),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FONT, LABEL_PX))
            .axis_desc_style((FONT, DESC_PX))
            .x_desc("time (s)")
            .y_desc("node")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .draw()
            .map_err(|e| err(&e))?;

        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let (w, h) = (pixel_len(&xr), pixel_len(&yr));
        let raster_rows = if n <= MAX_RASTER_ROWS {
            n * (h as usize / n).max(1)
        } else {
            MAX_RASTER_ROWS
        };
        let rgb = heatmap_pixels(rec, &scale, w as usize, raster_rows);
        rasters.push(Raster::new(
            xr.start,
            yr.start,
            (w, h),
            (w, raster_rows as u32),
            rgb,
        ));

        draw_colour_bar(&bar, &scale, MARGIN, MARGIN + extra, X_LABEL_AREA).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    write_svg(path, &svg, (width_px, height_px), &rasters)
}

/// Draws one rows × cols picture of the grid per time in `times_s` (s since the run's start,
/// each shown at its nearest frame), side by side, into the SVG file `path`.
///
/// Each panel has the title `t = 0.250 s` (the time of the frame shown), one embedded PNG of
/// square `cell_px`-pixel cells, one per node, and row/column axes with row 0 at the top.
/// Cells grow so the panel's longer side is at least 120 px, and shrink so it is at most
/// 1024 px; beyond 1024 rows or columns, nodes are averaged. All panels share one colour
/// scale, the finite min…max over the frames shown, and one colour bar. Needs `rec.grid`;
/// takes 1…32 finite times and `cell_px ≥ 1`.
pub fn snapshots_svg(
    rec: &NodeRecording,
    path: &Path,
    times_s: &[f64],
    cell_px: u32,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    check_recording(rec).map_err(|e| err(&e))?;
    if !rec.grid {
        return Err(err(&format!(
            "snapshots need a grid plant, but this recording is not a grid (grid = false, \
             {} nodes in a row); draw it with the heat map instead",
            rec.nodes
        )));
    }
    if times_s.is_empty() || times_s.len() > MAX_SNAPSHOTS {
        return Err(err(&format!(
            "asked for {} snapshots; give 1…{MAX_SNAPSHOTS} times",
            times_s.len()
        )));
    }
    if let Some(t) = times_s.iter().find(|t| !t.is_finite()) {
        return Err(err(&format!(
            "snapshot time {t} is not a number of seconds"
        )));
    }
    if cell_px == 0 {
        return Err(err(&"cell_px must be at least 1"));
    }
    let frames: Vec<usize> = times_s.iter().map(|&t| rec.nearest_frame(t)).collect();
    let shown: Vec<f32> = frames.iter().flat_map(|&k| rec.frame(k)).copied().collect();
    let scale = ValueScale::of(&shown);

    // One square cell size for both axes: at least big enough for a readable panel, at most
    // small enough that the longer side fits the cap.
    let longest = rec.rows.max(rec.cols).min(MAX_PANEL_SIDE_PX as usize) as u32;
    let cell = cell_px
        .max(MIN_PANEL_SIDE_PX.div_ceil(longest))
        .min(MAX_PANEL_SIDE_PX / longest)
        .max(1);
    let side = |cells: usize| (cells as u64 * cell as u64).min(MAX_PANEL_SIDE_PX as u64) as u32;
    let (img_w, img_h) = (side(rec.cols), side(rec.rows));
    let panel_w = MARGIN + PANEL_Y_LABEL_AREA + img_w + MARGIN;
    let plot_top = PANEL_TITLE_H + MARGIN;
    let bar_h = img_h.max(CBAR_MIN_H);
    let height_px = plot_top + bar_h + PANEL_X_LABEL_AREA + MARGIN;
    let width_px = panel_w * frames.len() as u32 + CBAR_W;

    let mut svg = String::new();
    let mut rasters = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width_px, height_px)).into_drawing_area();
        let title_style =
            TextStyle::from((FONT, PANEL_TITLE_PX)).pos(Pos::new(HPos::Center, VPos::Center));
        let col_ticks = nice_ticks(0.0, (rec.cols - 1) as f64, ticks_for(img_w, 40), 1.0);
        let row_ticks = nice_ticks(0.0, (rec.rows - 1) as f64, ticks_for(img_h, 30), 1.0);
        let int_fmt = |v: &f64| format!("{}", v.round() as i64);
        for (i, &k) in frames.iter().enumerate() {
            let x0 = panel_w * i as u32;
            let panel = root.clone().shrink((x0, 0), (panel_w, height_px));
            panel
                .draw_text(
                    &format!("t = {:.3} s", rec.time_s(k)),
                    &title_style,
                    // Centred over the image, not the whole panel with its label area.
                    (
                        (MARGIN + PANEL_Y_LABEL_AREA + img_w / 2) as i32,
                        (PANEL_TITLE_H / 2) as i32,
                    ),
                )
                .map_err(|e| err(&e))?;
            let mut chart = ChartBuilder::on(&panel)
                .margin_top(plot_top)
                .margin_bottom(height_px - plot_top - img_h - PANEL_X_LABEL_AREA)
                .margin_left(MARGIN)
                .margin_right(MARGIN)
                .x_label_area_size(PANEL_X_LABEL_AREA)
                .y_label_area_size(PANEL_Y_LABEL_AREA)
                .build_cartesian_2d(
                    Axis::new(-0.5, rec.cols as f64 - 0.5, col_ticks.clone()),
                    Axis::new(rec.rows as f64 - 0.5, -0.5, row_ticks.clone()),
                )
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .disable_mesh()
                .label_style((FONT, LABEL_PX))
                .axis_desc_style((FONT, DESC_PX))
                .x_desc("column")
                .y_desc("row")
                .x_label_formatter(&int_fmt)
                .y_label_formatter(&int_fmt)
                .draw()
                .map_err(|e| err(&e))?;
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            let rgb = snapshot_pixels(rec, k, &scale, img_w as usize, img_h as usize);
            rasters.push(Raster::new(
                xr.start,
                yr.start,
                (pixel_len(&xr), pixel_len(&yr)),
                (img_w, img_h),
                rgb,
            ));
        }
        let bar = root
            .clone()
            .shrink((panel_w * frames.len() as u32, 0), (CBAR_W, height_px));
        draw_colour_bar(&bar, &scale, plot_top, MARGIN, PANEL_X_LABEL_AREA).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    write_svg(path, &svg, (width_px, height_px), &rasters)
}

/// Rejects a hand-built recording whose fields disagree with its data. Drawing indexes
/// `data` by `frames · nodes`, and this check is what keeps that from panicking.
fn check_recording(rec: &NodeRecording) -> Result<(), String> {
    let fits = rec.nodes > 0
        && rec.frames > 0
        && rec.rows.checked_mul(rec.cols) == Some(rec.nodes)
        && rec.frames.checked_mul(rec.nodes) == Some(rec.data.len())
        && rec.decimation_samples > 0
        && rec.sample_rate_hz.is_finite()
        && rec.sample_rate_hz > 0.0
        && rec.time_s(rec.frames).is_finite();
    if fits {
        Ok(())
    } else {
        Err(format!(
            "inconsistent recording: {} frames × {} nodes ({} × {}) but {} values, \
             sample rate {} Hz, decimation {}; nothing to draw",
            rec.frames,
            rec.nodes,
            rec.rows,
            rec.cols,
            rec.data.len(),
            rec.sample_rate_hz,
            rec.decimation_samples
        ))
    }
}

/// Map from values to colours: the finite min…max, widened to ±0.5 around a constant.
struct ValueScale {
    lo: f64,
    hi: f64,
    /// Whether any value is NaN/±∞, which is when the colour bar shows the grey key.
    any_non_finite: bool,
}

impl ValueScale {
    fn of(values: &[f32]) -> Self {
        let (mut lo, mut hi, mut any_non_finite) = (f64::INFINITY, f64::NEG_INFINITY, false);
        for &v in values {
            if v.is_finite() {
                lo = lo.min(v as f64);
                hi = hi.max(v as f64);
            } else {
                any_non_finite = true;
            }
        }
        if lo > hi {
            // Nothing finite: any range will do, every cell is grey.
            (lo, hi) = (0.0, 1.0);
        } else if lo == hi {
            (lo, hi) = (lo - 0.5, hi + 0.5);
        }
        ValueScale {
            lo,
            hi,
            any_non_finite,
        }
    }

    fn colour(&self, v: Option<f64>) -> [u8; 3] {
        match v {
            Some(v) => viridis((v - self.lo) / (self.hi - self.lo)),
            None => NON_FINITE_RGB,
        }
    }
}

/// Running mean over a block of values that remembers whether any value was non-finite.
#[derive(Default)]
struct BlockMean {
    sum: f64,
    count: u64,
    non_finite: bool,
}

impl BlockMean {
    fn add(&mut self, values: &[f32]) {
        for &v in values {
            if v.is_finite() {
                self.sum += v as f64;
                self.count += 1;
            } else {
                self.non_finite = true;
            }
        }
    }

    /// The mean, or `None` when any value was non-finite (so it is drawn grey).
    fn get(&self) -> Option<f64> {
        (!self.non_finite && self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// The source items shown in output pixel `j` of `m` when `n` items lie along that axis. With
/// n ≥ m it is the pixel's share of items, to average. With n < m it is the item under the
/// pixel's centre (nearest), so each item covers ⌊m/n⌋ or ⌈m/n⌉ pixels, exactly m/n when m is
/// a multiple of n.
fn source_span(j: usize, m: usize, n: usize) -> Range<usize> {
    // u128: j · n can exceed usize for huge recordings.
    let (j, m, n) = (j as u128, m as u128, n as u128);
    if n >= m {
        (j * n / m) as usize..((j + 1) * n / m) as usize
    } else {
        let k = ((2 * j + 1) * n / (2 * m)) as usize;
        k..k + 1
    }
}

/// RGB pixels (row-major, `rows × cols`) of the time × node raster.
fn heatmap_pixels(rec: &NodeRecording, scale: &ValueScale, cols: usize, rows: usize) -> Vec<u8> {
    let node_spans: Vec<Range<usize>> =
        (0..rows).map(|r| source_span(r, rows, rec.nodes)).collect();
    let mut rgb = vec![0u8; rows * cols * 3];
    let mut prev: Option<(Range<usize>, Vec<[u8; 3]>)> = None;
    for c in 0..cols {
        let frames = source_span(c, cols, rec.frames);
        // When frames are fewer than columns, neighbouring columns show the same frame, so reuse
        // it rather than recompute it.
        let column = match prev.take() {
            Some((span, column)) if span == frames => column,
            _ => node_spans
                .iter()
                .map(|nodes| {
                    let mut mean = BlockMean::default();
                    for k in frames.clone() {
                        mean.add(&rec.frame(k)[nodes.clone()]);
                    }
                    scale.colour(mean.get())
                })
                .collect(),
        };
        for (r, px) in column.iter().enumerate() {
            let at = (r * cols + c) * 3;
            rgb[at..at + 3].copy_from_slice(px);
        }
        prev = Some((frames, column));
    }
    rgb
}

/// RGB pixels (row-major, `h × w`) of frame `k` laid out on the grid, row 0 at the top.
fn snapshot_pixels(
    rec: &NodeRecording,
    k: usize,
    scale: &ValueScale,
    w: usize,
    h: usize,
) -> Vec<u8> {
    let frame = rec.frame(k);
    let col_spans: Vec<Range<usize>> = (0..w).map(|x| source_span(x, w, rec.cols)).collect();
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let rows = source_span(y, h, rec.rows);
        for cols in &col_spans {
            let mut mean = BlockMean::default();
            for r in rows.clone() {
                let start = r * rec.cols;
                mean.add(&frame[start + cols.start..start + cols.end]);
            }
            rgb.extend_from_slice(&scale.colour(mean.get()));
        }
    }
    rgb
}

/// Draws a vertical colour bar for `scale` in `area`, with value labels on its right. The top,
/// bottom and x-label sizes line the bar up with the plot beside it. When the data had
/// non-finite values, a grey key labelled "NaN" goes under the bar.
fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    scale: &ValueScale,
    margin_top: u32,
    margin_bottom: u32,
    x_label_area: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let bar_h = area
        .dim_in_pixel()
        .1
        .saturating_sub(margin_top + margin_bottom + x_label_area);
    let ticks = nice_ticks(scale.lo, scale.hi, ticks_for(bar_h, 40), 0.0);
    let fmt = tick_formatter(&ticks);
    let mut chart = ChartBuilder::on(area)
        .margin_top(margin_top)
        .margin_bottom(margin_bottom)
        .margin_left(CBAR_GAP)
        .margin_right(MARGIN)
        .x_label_area_size(x_label_area)
        .right_y_label_area_size(CBAR_LABEL_AREA)
        .build_cartesian_2d(0.0..1.0, Axis::new(scale.lo, scale.hi, ticks))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style((FONT, LABEL_PX))
        .disable_x_axis()
        .x_labels(0)
        .y_label_formatter(&fmt)
        .draw()?;
    let step = (scale.hi - scale.lo) / CBAR_STEPS as f64;
    chart.draw_series((0..CBAR_STEPS).map(|i| {
        let [r, g, b] = viridis((i as f64 + 0.5) / CBAR_STEPS as f64);
        let (v0, v1) = (scale.lo + step * i as f64, scale.lo + step * (i + 1) as f64);
        Rectangle::new([(0.0, v0), (1.0, v1)], RGBColor(r, g, b).filled())
    }))?;
    chart.draw_series(std::iter::once(Rectangle::new(
        [(0.0, scale.lo), (1.0, scale.hi)],
        BLACK.stroke_width(1),
    )))?;
    if scale.any_non_finite {
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let base = area.get_base_pixel();
        let (x, y) = (xr.start - base.0, yr.end - base.1 + 12);
        let [r, g, b] = NON_FINITE_RGB;
        area.draw(&Rectangle::new(
            [(x, y), (x + CBAR_BAR_W as i32, y + 12)],
            RGBColor(r, g, b).filled(),
        ))?;
        let style = TextStyle::from((FONT, LABEL_PX)).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw_text("NaN", &style, (x + CBAR_BAR_W as i32 + 4, y + 6))?;
    }
    Ok(())
}

/// A data raster to embed: where it goes (SVG px), the size it is shown at, and its own pixels.
struct Raster {
    x: i32,
    y: i32,
    shown: (u32, u32),
    size: (u32, u32),
    rgb: Vec<u8>,
}

impl Raster {
    fn new(x: i32, y: i32, shown: (u32, u32), size: (u32, u32), rgb: Vec<u8>) -> Self {
        Raster {
            x,
            y,
            shown,
            size,
            rgb,
        }
    }

    /// The `<image>` element, with the pixels as a base64 PNG data URI.
    fn element(&self) -> Result<String, String> {
        let mut png_bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_bytes, self.size.0, self.size.1);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            // Per-row filter choice picks "Up" for the repeated rows of one node/cell, which
            // shrinks a typical heat map several-fold.
            enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
            let mut writer = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
            writer
                .write_image_data(&self.rgb)
                .map_err(|e| format!("PNG: {e}"))?;
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(&png_bytes);
        Ok(format!(
            "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\" \
             image-rendering=\"optimizeSpeed\" style=\"image-rendering:pixelated\" \
             href=\"data:image/png;base64,{b64}\"/>\n",
            self.x, self.y, self.shown.0, self.shown.1
        ))
    }
}

/// Writes plotters' SVG text to `path` with a white background and the rasters put in right
/// after the root `<svg …>` tag, so the axes, ticks and text plotters drew end up on top of them.
fn write_svg(path: &Path, svg: &str, size: (u32, u32), rasters: &[Raster]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let head_end = svg
        .find('>')
        .map(|i| i + 1)
        .ok_or_else(|| err(&"plotters produced no SVG root"))?;
    let mut out = String::with_capacity(svg.len() + rasters.len() * 4096);
    out.push_str(&svg[..head_end]);
    out.push_str(&format!(
        "\n<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#FFFFFF\"/>\n",
        size.0, size.1
    ));
    for r in rasters {
        out.push_str(&r.element().map_err(|e| err(&e))?);
    }
    out.push_str(&svg[head_end..]);
    std::fs::write(path, out).map_err(|e| err(&format!("cannot write: {e}")))
}

/// A linear f64 axis with ticks chosen by [`nice_ticks`]. Plotters' `with_key_points` can't be
/// used for this: on an f64 range it loses the label formatter (`configure_mesh` won't compile).
/// `start > end` gives a reversed axis (row 0 at the top).
struct Axis {
    coord: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(start: f64, end: f64, ticks: Vec<f64>) -> Self {
        Axis {
            coord: (start..end).into(),
            ticks,
        }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.coord.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Only labelled ("bold") ticks: the mesh is off, so light points would only add ticks.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.coord.range()
    }
}

fn pixel_len(r: &Range<i32>) -> u32 {
    (r.end - r.start).max(1) as u32
}

/// How many ticks fit along `len_px` with about `spacing_px` between labels (2…10).
fn ticks_for(len_px: u32, spacing_px: u32) -> usize {
    (len_px / spacing_px).clamp(2, 10) as usize
}

/// Tick positions at a "nice" step (1, 2 or 5 × 10ᵏ, at least `min_step`) within `lo…hi`, about
/// `target` of them. Plotters' own tick finder is bypassed because it asserts on NaN. This one
/// has a bounded loop whatever the range.
fn nice_ticks(lo: f64, hi: f64, target: usize, min_step: f64) -> Vec<f64> {
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return if lo.is_finite() { vec![lo] } else { vec![] };
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
        .max(min_step);
    let first = (lo / step).ceil();
    (0..=target * 2 + 2)
        .map(|i| (first + i as f64) * step)
        .take_while(|v| *v <= hi + step * 1e-9)
        .collect()
}

/// A label formatter with just enough decimals for the tick spacing, in scientific notation for
/// very large or very fine values.
fn tick_formatter(ticks: &[f64]) -> impl Fn(&f64) -> String {
    let step = match ticks {
        [a, b, ..] => (b - a).abs(),
        _ => 1.0,
    };
    let big = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scientific = big >= 1e6 || step < 1e-4;
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().clamp(0.0, 9.0) as usize
    };
    move |v: &f64| {
        if scientific {
            format!("{v:.2e}")
        } else {
            format!("{v:.decimals$}")
        }
    }
}

/// One line of a [`lines_svg`] / [`chart_svg`] chart: a name for the key and its (x, y) points.
pub struct Line {
    /// Name in the key (empty: not in the key).
    pub name: String,
    /// Points, in x order; the line breaks at non-finite points.
    pub points: Vec<(f64, f64)>,
}

/// A shaded band of a chart, e.g. a confidence interval around a line.
pub struct Band {
    /// Name in the key (empty: not in the key).
    pub name: String,
    /// `(x, low, high)` in x order; non-finite points are skipped.
    pub points: Vec<(f64, f64, f64)>,
}

/// A shaded x interval of a chart (e.g. a stimulation period), named at its top.
pub struct Span {
    /// Written at the top of the interval.
    pub name: String,
    /// Start of the interval (x units).
    pub from: f64,
    /// End of the interval (x units).
    pub to: f64,
    /// Shade (8-bit sRGB; drawn at 15 % opacity).
    pub rgb: [u8; 3],
}

/// A vertical line across a chart at `x` (a deadline, a mean, a pulse), in the key unless its
/// name is empty.
pub struct Mark {
    /// Name in the key (empty: not in the key).
    pub name: String,
    /// Where it is (x units).
    pub x: f64,
    /// Colour (8-bit sRGB).
    pub rgb: [u8; 3],
}

/// A line chart: what [`chart_svg`] and each panel of [`panels_svg`] draw. Ranges not given are
/// fitted to the lines' finite points with 5 % padding.
#[derive(Default)]
pub struct Chart<'a> {
    /// Caption (empty: none).
    pub title: &'a str,
    /// x axis description.
    pub x_label: &'a str,
    /// y axis description.
    pub y_label: &'a str,
    /// The lines, coloured in order from plotters' 99-colour palette.
    pub lines: &'a [Line],
    /// Shaded x intervals, drawn under the lines.
    pub spans: &'a [Span],
    /// Shaded bands (band `i` in line `i`'s colour), drawn under the lines; the default ranges
    /// include them.
    pub bands: &'a [Band],
    /// Vertical lines, drawn over the lines.
    pub marks: &'a [Mark],
    /// x range (default: the lines' points).
    pub x_range: Option<Range<f64>>,
    /// y range (default: the lines' points).
    pub y_range: Option<Range<f64>>,
    /// A dot on every point (for short series).
    pub markers: bool,
    /// Where the key goes (default: upper right).
    pub legend: Option<SeriesLabelPosition>,
    /// Colours of the lines in order (8-bit sRGB); lines beyond them take plotters' palette.
    pub colours: &'a [[u8; 3]],
    /// Bars of a histogram drawn under everything else; with it the default y range is
    /// 0 … 1.1 × the largest count and the default x range spans the edges and the marks.
    pub histogram: Option<Histogram<'a>>,
}

/// Bars of a histogram: bin `i` is `[edges[i], edges[i + 1])` with `counts[i]` in it.
#[derive(Clone, Copy)]
pub struct Histogram<'a> {
    /// Bin edges, ascending and finite, `counts.len() + 1` of them.
    pub edges: &'a [f64],
    /// Count per bin.
    pub counts: &'a [u64],
}

impl Histogram<'_> {
    fn check(&self) -> Result<(), String> {
        let e = self.edges;
        if e.len() != self.counts.len() + 1
            || self.counts.is_empty()
            || e.iter().any(|x| !x.is_finite())
            || e.windows(2).any(|w| w[1] <= w[0])
        {
            return Err(format!(
                "a histogram of {} bins needs {} ascending finite edges, got {}",
                self.counts.len(),
                self.counts.len() + 1,
                e.len()
            ));
        }
        Ok(())
    }
}

/// A line chart (with markers) of `lines` as SVG of `width_px × height_px`: `title`, axis labels
/// and a key. Used for figures such as phase error vs SNR per estimator.
pub fn lines_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    size: (u32, u32),
) -> Result<(), String> {
    let chart = Chart {
        title,
        x_label,
        y_label,
        lines,
        markers: true,
        ..Chart::default()
    };
    chart_svg(path, &chart, size)
}

/// `chart` as an SVG file of `width_px × height_px`. Fails (naming `path`) when there is nothing
/// to draw: no finite point and no x and y range given.
pub fn chart_svg(
    path: &Path,
    chart: &Chart,
    (width_px, height_px): (u32, u32),
) -> Result<(), String> {
    let shown = path.display().to_string();
    let root = SVGBackend::new(path, (width_px, height_px)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| format!("{shown}: {e}"))?;
    draw_chart(&root, chart, TITLE_PX).map_err(|e| format!("{shown}: {e}"))?;
    root.present().map_err(|e| format!("{shown}: {e}"))
}

/// `panels` stacked top to bottom (equal heights) under one `title`, as an SVG file of
/// `width_px × height_px`. Give the panels the same `x_range` to line their time axes up.
pub fn panels_svg(
    path: &Path,
    title: &str,
    panels: &[Chart],
    (width_px, height_px): (u32, u32),
) -> Result<(), String> {
    let shown = path.display().to_string();
    let fail = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
    if panels.is_empty() {
        return Err(fail(&"no panels to draw"));
    }
    let root = SVGBackend::new(path, (width_px, height_px)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let title_style = TextStyle::from((FONT, TITLE_PX)).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw_text(
        title,
        &title_style,
        ((width_px / 2) as i32, (TITLE_H / 2) as i32),
    )
    .map_err(|e| fail(&e))?;
    let body = root
        .clone()
        .shrink((0, TITLE_H), (width_px, height_px.saturating_sub(TITLE_H)));
    for (area, panel) in body.split_evenly((panels.len(), 1)).iter().zip(panels) {
        draw_chart(area, panel, PANEL_TITLE_PX).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

/// The finite min…max of `values`, padded by 5 % (±1 around a single value); `None` if empty.
fn padded_range(values: impl Iterator<Item = f64>) -> Option<Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if lo > hi {
        return None;
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    Some((lo - pad)..(hi + pad))
}

/// A range plotters can map: finite, and wider than nothing.
fn usable(r: Range<f64>) -> Option<Range<f64>> {
    (r.start.is_finite() && r.end.is_finite() && r.end > r.start).then_some(r)
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Draws `c` into `area` (caption at `title_px`).
fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    c: &Chart,
    title_px: u32,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if let Some(h) = &c.histogram {
        h.check()?;
    }
    let band_finite = |p: &&(f64, f64, f64)| p.0.is_finite() && p.1.is_finite() && p.2.is_finite();
    let band_points: Vec<(f64, f64)> = c
        .bands
        .iter()
        .flat_map(|b| b.points.iter().filter(band_finite))
        .flat_map(|p| [(p.0, p.1), (p.0, p.2)])
        .collect();
    let points = || {
        c.lines
            .iter()
            .flat_map(|l| l.points.iter())
            .chain(band_points.iter())
    };
    let x_range = c
        .x_range
        .clone()
        .or_else(|| {
            let h = c.histogram?;
            let (first, last) = (h.edges[0], h.edges[h.edges.len() - 1]);
            let marks = c.marks.iter().map(|m| m.x).filter(|x| x.is_finite());
            let (lo, hi) = (
                marks.clone().fold(first, f64::min),
                marks.fold(last, f64::max),
            );
            let pad = if lo < first || hi > last {
                0.03 * (hi - lo)
            } else {
                0.0
            };
            Some((lo - pad)..(hi + pad))
        })
        .or_else(|| padded_range(points().filter(|p| p.1.is_finite()).map(|p| p.0)))
        .and_then(usable)
        .ok_or("nothing to draw")?;
    let y_range = c
        .y_range
        .clone()
        .or_else(|| {
            let h = c.histogram?;
            Some(0.0..h.counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1)
        })
        .or_else(|| {
            padded_range(
                points()
                    .filter(|p| p.0.is_finite() && x_range.contains(&p.0))
                    .map(|p| p.1),
            )
        })
        .and_then(usable)
        .ok_or("nothing to draw")?;
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA);
    if !c.title.is_empty() {
        builder.caption(c.title, (FONT, title_px));
    }
    // Ticks at 1-2-5 steps, labelled with just the decimals the step needs.
    let (w, h) = area.dim_in_pixel();
    let x_ticks = nice_ticks(
        x_range.start,
        x_range.end,
        ticks_for(w.saturating_sub(Y_LABEL_AREA + 2 * MARGIN), 70),
        0.0,
    );
    let y_ticks = nice_ticks(
        y_range.start,
        y_range.end,
        ticks_for(h.saturating_sub(X_LABEL_AREA + TITLE_H + 2 * MARGIN), 26),
        0.0,
    );
    let (x_fmt, y_fmt) = (tick_formatter(&x_ticks), tick_formatter(&y_ticks));
    let mut chart = builder
        .build_cartesian_2d(
            Axis::new(x_range.start, x_range.end, x_ticks),
            Axis::new(y_range.start, y_range.end, y_ticks),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(c.x_label)
        .y_desc(c.y_label)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, DESC_PX))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(e)?;
    let (y0, y1) = (y_range.start, y_range.end);
    if let Some(h) = c.histogram {
        let fill = rgb(viridis(0.35));
        let bins = || {
            h.counts
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &n)| [(h.edges[i], 0.0), (h.edges[i + 1], n as f64)])
        };
        chart
            .draw_series(bins().map(|bin| Rectangle::new(bin, fill.filled())))
            .map_err(e)?;
        chart
            .draw_series(bins().map(|bin| Rectangle::new(bin, WHITE.stroke_width(1))))
            .map_err(e)?;
    }
    for span in c.spans {
        let (from, to) = (span.from.max(x_range.start), span.to.min(x_range.end));
        if from >= to || from.is_nan() || to.is_nan() {
            continue;
        }
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(from, y0), (to, y1)],
                rgb(span.rgb).mix(0.15).filled(),
            )))
            .map_err(e)?;
        let style = TextStyle::from((FONT, LABEL_PX)).pos(Pos::new(HPos::Center, VPos::Top));
        chart
            .draw_series(std::iter::once(Text::new(
                span.name.clone(),
                (0.5 * (from + to), y1 - 0.01 * (y1 - y0)),
                style,
            )))
            .map_err(e)?;
    }
    let mut keyed = false;
    for (i, band) in c.bands.iter().enumerate() {
        let colour = match c.colours.get(i) {
            Some(&c) => rgb(c).to_rgba(),
            None => Palette99::pick(i).to_rgba(),
        };
        let pts: Vec<&(f64, f64, f64)> = band.points.iter().filter(band_finite).collect();
        let outline: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.0, p.2))
            .chain(pts.iter().rev().map(|p| (p.0, p.1)))
            .collect();
        let fill = colour.mix(0.25).filled();
        let drawn = chart
            .draw_series(std::iter::once(Polygon::new(outline, fill)))
            .map_err(e)?;
        if !band.name.is_empty() {
            keyed = true;
            drawn
                .label(band.name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], fill));
        }
    }
    for (i, line) in c.lines.iter().enumerate() {
        let colour = match c.colours.get(i) {
            Some(&c) => rgb(c).to_rgba(),
            None => Palette99::pick(i).to_rgba(),
        };
        // Runs of finite points: the line breaks where a value is missing.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &p in &line.points {
            if p.0.is_finite() && p.1.is_finite() {
                if let Some(s) = segments.last_mut() {
                    s.push(p);
                }
            } else if segments.last().is_some_and(|s| !s.is_empty()) {
                segments.push(Vec::new());
            }
        }
        for (k, seg) in segments.iter().filter(|s| !s.is_empty()).enumerate() {
            let drawn = chart
                .draw_series(LineSeries::new(seg.clone(), colour.stroke_width(2)))
                .map_err(e)?;
            if k == 0 && !line.name.is_empty() {
                keyed = true;
                drawn.label(line.name.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            }
            if c.markers {
                chart
                    .draw_series(seg.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(e)?;
            }
        }
    }
    for mark in c.marks.iter().filter(|m| x_range.contains(&m.x)) {
        let colour = rgb(mark.rgb);
        let drawn = chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(mark.x, y0), (mark.x, y1)],
                colour.stroke_width(2),
            )))
            .map_err(e)?;
        if !mark.name.is_empty() {
            keyed = true;
            drawn.label(mark.name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
        }
    }
    if keyed {
        chart
            .configure_series_labels()
            .position(c.legend.clone().unwrap_or(SeriesLabelPosition::UpperRight))
            .label_font((FONT, LABEL_PX))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// A radial line of a [`rose_svg`] plot (a target phase, a mean direction), in the key.
pub struct RoseMark {
    /// Name in the key.
    pub name: String,
    /// Direction, degrees (same convention as the bins).
    pub angle_deg: f64,
    /// Length as a fraction of the outer ring (e.g. a resultant length R; 1.08 reaches past it).
    pub length: f64,
    /// Colour (8-bit sRGB).
    pub rgb: [u8; 3],
}

/// A polar histogram ("rose") of angular bins as an SVG file of `width_px × height_px`: bin `i`
/// spans `edges_deg[i]…edges_deg[i + 1]` and its wedge's radius is proportional to
/// `counts[i]`, with rings at round counts. Angles run counter-clockwise from 0° at the right
/// (3 o'clock), so with the phase convention 0° = peak the peak is at the right and ±180° (the
/// trough) at the left. `marks` are drawn as radial lines from the centre and named in a key
/// under the plot.
pub fn rose_svg(
    path: &Path,
    title: &str,
    edges_deg: &[f64],
    counts: &[u64],
    marks: &[RoseMark],
    (width_px, height_px): (u32, u32),
) -> Result<(), String> {
    let shown = path.display().to_string();
    let fail = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
    Histogram {
        edges: edges_deg,
        counts,
    }
    .check()
    .map_err(|e| fail(&e))?;
    let root = SVGBackend::new(path, (width_px, height_px)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let title_style = TextStyle::from((FONT, TITLE_PX)).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw_text(
        title,
        &title_style,
        ((width_px / 2) as i32, (TITLE_H / 2) as i32),
    )
    .map_err(|e| fail(&e))?;
    // The plot area under the title and above the key, with room around the ring for the
    // angle labels (wide ones left and right); equal scales on both axes keep circles round.
    let key_h = 8 + 20 * marks.len() as u32;
    let (w, h) = (
        width_px.saturating_sub(2 * MARGIN).max(1),
        height_px.saturating_sub(TITLE_H + key_h + MARGIN).max(1),
    );
    let radius = (w.saturating_sub(2 * 104) / 2)
        .min(h.saturating_sub(2 * 26) / 2)
        .max(10) as f64;
    let area = root.clone().shrink((MARGIN, TITLE_H), (w, h));
    let (ex, ey) = (w as f64 / (2.0 * radius), h as f64 / (2.0 * radius));
    let mut chart = ChartBuilder::on(&area)
        .build_cartesian_2d(-ex..ex, -ey..ey)
        .map_err(|e| fail(&e))?;
    let max = counts.iter().copied().max().unwrap_or(0);
    let ticks = nice_ticks(0.0, max.max(1) as f64, 4, 1.0);
    let step = match ticks.as_slice() {
        [_, b, ..] => *b,
        _ => 1.0,
    };
    let outer = ((max.max(1) as f64) / step).ceil() * step;
    let polar = |deg: f64, r: f64| {
        let a = deg.to_radians();
        (r * a.cos(), r * a.sin())
    };
    let grey = RGBColor(190, 190, 190);
    let rings: Vec<f64> = (1..)
        .map(|i| i as f64 * step)
        .take_while(|v| *v <= outer + 1e-9)
        .collect();
    chart
        .draw_series(rings.iter().map(|v| {
            let r = v / outer;
            PathElement::new(
                (0..=120)
                    .map(|i| polar(i as f64 * 3.0, r))
                    .collect::<Vec<_>>(),
                grey.stroke_width(1),
            )
        }))
        .map_err(|e| fail(&e))?;
    chart
        .draw_series((0..8).map(|i| {
            PathElement::new(
                vec![(0.0, 0.0), polar(i as f64 * 45.0, 1.0)],
                grey.stroke_width(1),
            )
        }))
        .map_err(|e| fail(&e))?;
    let fill = rgb(viridis(0.35));
    let wedges = || {
        counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| {
                let (a, b) = (edges_deg[i], edges_deg[i + 1]);
                let r = n as f64 / outer;
                let mut pts = vec![(0.0, 0.0)];
                pts.extend((0..=8).map(|k| polar(a + (b - a) * k as f64 / 8.0, r)));
                pts
            })
    };
    chart
        .draw_series(wedges().map(|pts| Polygon::new(pts, fill.mix(0.85).filled())))
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(wedges().map(|mut pts| {
            pts.push((0.0, 0.0));
            PathElement::new(pts, WHITE.stroke_width(1))
        }))
        .map_err(|e| fail(&e))?;
    let label = TextStyle::from((FONT, LABEL_PX));
    let names = [
        (0.0, "0° peak"),
        (45.0, "45°"),
        (90.0, "90°"),
        (135.0, "135°"),
        (180.0, "±180° trough"),
        (-135.0, "−135°"),
        (-90.0, "−90°"),
        (-45.0, "−45°"),
    ];
    chart
        .draw_series(names.iter().map(|&(deg, name)| {
            let (x, y) = polar(deg, 1.08);
            let h = if x > 0.3 {
                HPos::Left
            } else if x < -0.3 {
                HPos::Right
            } else {
                HPos::Center
            };
            let v = if y > 0.3 {
                VPos::Bottom
            } else if y < -0.3 {
                VPos::Top
            } else {
                VPos::Center
            };
            Text::new(name, (x, y), label.pos(Pos::new(h, v)))
        }))
        .map_err(|e| fail(&e))?;
    let fmt = tick_formatter(&rings);
    let small = TextStyle::from((FONT, LABEL_PX))
        .color(&RGBColor(90, 90, 90))
        .pos(Pos::new(HPos::Left, VPos::Bottom));
    chart
        .draw_series(
            rings
                .iter()
                .map(|v| Text::new(fmt(v), polar(22.5, v / outer), small.clone())),
        )
        .map_err(|e| fail(&e))?;
    // The key, under the plot: a short line in the mark's colour and its name.
    let key_style = TextStyle::from((FONT, LABEL_PX)).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, mark) in marks.iter().enumerate() {
        let colour = rgb(mark.rgb);
        if mark.angle_deg.is_finite() && mark.length.is_finite() {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![
                        (0.0, 0.0),
                        polar(mark.angle_deg, mark.length.clamp(0.0, 1.1)),
                    ],
                    colour.stroke_width(3),
                )))
                .map_err(|e| fail(&e))?;
        }
        let y = (TITLE_H + h + 8 + 20 * i as u32 + 10) as i32;
        let x = (MARGIN + 24) as i32;
        root.draw(&PathElement::new(
            vec![(x, y), (x + 24, y)],
            colour.stroke_width(3),
        ))
        .map_err(|e| fail(&e))?;
        root.draw_text(&mark.name, &key_style, (x + 32, y))
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

/// Cell edges half-way between the centres `c` (ascending); a single value gets a cell of
/// width 1 (wider for large values, so the cell is wider than their precision).
fn cell_edges(c: &[f64]) -> Vec<f64> {
    if let [only] = c {
        let half = 0.5f64.max(only.abs() * 1e-3);
        return vec![only - half, only + half];
    }
    let mut e = vec![c[0] - 0.5 * (c[1] - c[0])];
    e.extend(c.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    e.push(c[c.len() - 1] + 0.5 * (c[c.len() - 1] - c[c.len() - 2]));
    e
}

/// The finite min…max of `values` ((0, 1) when there is none), and the range of the colour bar:
/// the same, or padded around a single value.
fn value_scale(values: &[f64]) -> ((f64, f64), Range<f64>) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let (lo, hi) = if lo > hi { (0.0, 1.0) } else { (lo, hi) };
    if hi > lo {
        return ((lo, hi), lo..hi);
    }
    // One value: pad it (on the side that does not overflow).
    let pad = 0.5f64.max(lo.abs() * 1e-3);
    let (a, b) = (lo - pad, hi + pad);
    (
        (lo, hi),
        if a.is_finite() { a } else { lo }..if b.is_finite() { b } else { hi },
    )
}

/// Whether [`grid_svg`] can draw `values` over `xs × ys` (labelled as in its call): a non-empty
/// grid of at most [`MAX_GRID_CELLS`] cells with one value per cell, finite ascending centres,
/// and cell edges and a value range whose spans are finite numbers (a span that overflows f64
/// can't be scaled onto pixels).
pub fn check_grid(
    (x_label, y_label, value_label): (&str, &str, &str),
    xs: &[f64],
    ys: &[f64],
    values: &[f64],
) -> Result<(), String> {
    let cells = xs.len().checked_mul(ys.len());
    if xs.is_empty() || ys.is_empty() || cells != Some(values.len()) {
        return Err(format!(
            "{} values for a {} × {} grid: give one value per cell",
            values.len(),
            xs.len(),
            ys.len()
        ));
    }
    if values.len() > MAX_GRID_CELLS {
        return Err(format!("{} cells; at most {MAX_GRID_CELLS}", values.len()));
    }
    for (label, c) in [(x_label, xs), (y_label, ys)] {
        if c.iter().any(|v| !v.is_finite()) || c.windows(2).any(|w| w[1] <= w[0]) {
            return Err(format!(
                "{label}: the cell centres must be finite and ascending"
            ));
        }
        let e = cell_edges(c);
        let (first, last) = (e[0], e[e.len() - 1]);
        if !(first.is_finite() && last.is_finite() && (last - first).is_finite()) {
            return Err(format!(
                "{label}: its values span {:e} … {:e}, too wide to draw (the span overflows \
                 f64); leave the extreme values out",
                c[0],
                c[c.len() - 1]
            ));
        }
    }
    let ((lo, hi), bar) = value_scale(values);
    if !((hi - lo).is_finite() && (bar.end - bar.start).is_finite()) {
        return Err(format!(
            "{value_label}: its values span {lo:e} … {hi:e}, too wide for one colour scale \
             (the span overflows f64); leave the extreme values out"
        ));
    }
    Ok(())
}

/// A heat map of `values` (row-major: `values[iy · xs.len() + ix]`, NaN drawn grey) over the grid
/// `xs × ys` (cell centres, ascending), with `lines` drawn on top (e.g. an analytic edge), a
/// colour bar of the values' range and labelled axes, as SVG of `width_px × height_px`. Cells are
/// vector rectangles: meant for sweep grids (up to [`MAX_GRID_CELLS`] cells). Refuses what
/// [`check_grid`] refuses. The ticks come from [`nice_ticks`], so any finite range draws in
/// bounded time.
#[allow(clippy::too_many_arguments)]
pub fn grid_svg(
    path: &Path,
    title: &str,
    labels: (&str, &str, &str),
    xs: &[f64],
    ys: &[f64],
    values: &[f64],
    lines: &[Line],
    (width_px, height_px): (u32, u32),
) -> Result<(), String> {
    let shown = path.display().to_string();
    let (x_label, y_label, value_label) = labels;
    check_grid(labels, xs, ys, values).map_err(|e| format!("{shown}: {e}"))?;
    let (ex, ey) = (cell_edges(xs), cell_edges(ys));
    let ((lo, hi), bar_range) = value_scale(values);
    let t = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    let fail = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
    let root = SVGBackend::new(path, (width_px, height_px)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let bar_w = 90;
    let (plot, bar) = root.split_horizontally(width_px.saturating_sub(bar_w));
    let x_range = ex[0]..ex[ex.len() - 1];
    let y_range = ey[0]..ey[ey.len() - 1];
    let (plot_w, plot_h) = plot.dim_in_pixel();
    let x_ticks = nice_ticks(
        x_range.start,
        x_range.end,
        ticks_for(plot_w.saturating_sub(Y_LABEL_AREA + 2 * MARGIN), 80),
        0.0,
    );
    let y_ticks = nice_ticks(
        y_range.start,
        y_range.end,
        ticks_for(
            plot_h.saturating_sub(X_LABEL_AREA + TITLE_H + 2 * MARGIN),
            40,
        ),
        0.0,
    );
    let (x_fmt, y_fmt) = (tick_formatter(&x_ticks), tick_formatter(&y_ticks));
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FONT, TITLE_PX))
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(
            Axis::new(x_range.start, x_range.end, x_ticks),
            Axis::new(y_range.start, y_range.end, y_ticks),
        )
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, DESC_PX))
        .draw()
        .map_err(|e| fail(&e))?;
    let colour = |v: f64| {
        let [r, g, b] = if v.is_finite() {
            viridis(t(v))
        } else {
            NON_FINITE_RGB
        };
        RGBColor(r, g, b)
    };
    chart
        .draw_series((0..ys.len()).flat_map(|iy| {
            let (ex, ey) = (&ex, &ey);
            (0..xs.len()).map(move |ix| {
                Rectangle::new(
                    [(ex[ix], ey[iy]), (ex[ix + 1], ey[iy + 1])],
                    colour(values[iy * xs.len() + ix]).filled(),
                )
            })
        }))
        .map_err(|e| fail(&e))?;
    for line in lines {
        let inside: Vec<(f64, f64)> = line
            .points
            .iter()
            .filter(|p| x_range.contains(&p.0) && y_range.contains(&p.1))
            .copied()
            .collect();
        let series = chart
            .draw_series(LineSeries::new(inside, WHITE.stroke_width(2)))
            .map_err(|e| fail(&e))?;
        if !line.name.is_empty() {
            series.label(line.name.as_str()).legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2))
            });
        }
    }
    if lines.iter().any(|l| !l.name.is_empty()) {
        chart
            .configure_series_labels()
            .label_font((FONT, LABEL_PX))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    // The colour bar: the value range bottom to top, labelled.
    let bar_ticks = nice_ticks(
        bar_range.start,
        bar_range.end,
        ticks_for(
            height_px.saturating_sub(TITLE_H + X_LABEL_AREA + MARGIN),
            40,
        ),
        0.0,
    );
    let bar_fmt = tick_formatter(&bar_ticks);
    let mut bar_chart = ChartBuilder::on(&bar)
        .margin_top(TITLE_H)
        .margin_bottom(X_LABEL_AREA + MARGIN)
        .y_label_area_size(0)
        .right_y_label_area_size(56)
        .build_cartesian_2d(
            0.0..1.0,
            Axis::new(bar_range.start, bar_range.end, bar_ticks),
        )
        .map_err(|e| fail(&e))?;
    bar_chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(value_label)
        .y_label_formatter(&bar_fmt)
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, DESC_PX))
        .draw()
        .map_err(|e| fail(&e))?;
    let steps = 64;
    bar_chart
        .draw_series((0..steps).map(|k| {
            let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
            let v = |f: f64| lo + f * (hi - lo);
            Rectangle::new(
                [(0.0, v(a)), (0.4, v(b))],
                colour(v(0.5 * (a + b))).filled(),
            )
        }))
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}
