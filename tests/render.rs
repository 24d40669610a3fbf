//! Reading node recordings written in the documented format, and checking the pictures by
//! decoding the PNG embedded in the SVG.

use std::path::Path;

use base64::Engine as _;
use entrain::render::{
    check_grid, even_times, grid_svg, heatmap_svg, snapshots_svg, viridis, NodeRecording,
    NON_FINITE_RGB,
};

const FS: f64 = 1000.0;
const DECIMATION: u64 = 4;
const FIRST: u64 = 100;

/// Writes `nodes.f32` and `nodes.json` in the documented format, as the recorder will.
/// `value(frame, node)` gives each value. Returns the data written.
fn write_recording(
    dir: &Path,
    rows: usize,
    cols: usize,
    grid: bool,
    frames: usize,
    value: impl Fn(usize, usize) -> f32,
) -> Vec<f32> {
    let n = rows * cols;
    let data: Vec<f32> = (0..frames)
        .flat_map(|k| (0..n).map(move |i| (k, i)))
        .map(|(k, i)| value(k, i))
        .collect();
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("nodes.f32"), bytes).unwrap();
    let json = format!(
        r#"{{"format": "f32le frame-major", "nodes": {n}, "rows": {rows}, "cols": {cols},
            "grid": {grid}, "sample_rate_hz": {FS}, "decimation_samples": {DECIMATION},
            "rate_hz": {rate}, "first_sample": {FIRST}, "frames": {frames}}}"#,
        rate = FS / DECIMATION as f64
    );
    std::fs::write(dir.join("nodes.json"), json).unwrap();
    data
}

/// Node i's value = i + a slow wave travelling across the grid.
fn travelling_wave(k: usize, i: usize) -> f32 {
    i as f32 + 0.5 * (0.05 * k as f32 - 0.6 * (i % 7) as f32).sin()
}

/// Value of attribute `name` in the first tag of `svg` that starts with `tag`.
fn attr<'a>(svg: &'a str, tag: &str, name: &str) -> &'a str {
    let start = svg
        .find(tag)
        .unwrap_or_else(|| panic!("no {tag} in the SVG"));
    let end = svg[start..].find('>').map_or(svg.len(), |e| start + e);
    let head = &svg[start..end];
    let key = format!(" {name}=\"");
    let at = head
        .find(&key)
        .unwrap_or_else(|| panic!("{tag} has no {name}"))
        + key.len();
    &head[at..at + head[at..].find('"').unwrap()]
}

/// An 8-bit RGB image decoded with the `png` crate.
struct RgbImage {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

/// One pixel, `.0` = [r, g, b].
#[derive(Clone, Copy, Debug, PartialEq)]
struct Pixel([u8; 3]);

impl RgbImage {
    fn decode(bytes: &[u8]) -> Self {
        let mut reader = png::Decoder::new(bytes).read_info().unwrap();
        let mut data = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut data).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb, "the rasters are RGB8");
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        data.truncate(info.buffer_size());
        Self {
            width: info.width,
            height: info.height,
            data,
        }
    }
    fn width(&self) -> u32 {
        self.width
    }
    fn height(&self) -> u32 {
        self.height
    }
    fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }
    fn pixels(&self) -> impl Iterator<Item = Pixel> + '_ {
        self.data.chunks_exact(3).map(|p| Pixel([p[0], p[1], p[2]]))
    }
    fn get_pixel(&self, x: u32, y: u32) -> Pixel {
        let at = 3 * (y as usize * self.width as usize + x as usize);
        Pixel([self.data[at], self.data[at + 1], self.data[at + 2]])
    }
}

/// Every embedded PNG in `svg`, decoded, with its `<image>` element's shown width and height.
fn embedded_pngs(svg: &str) -> Vec<(RgbImage, u32, u32)> {
    let prefix = "href=\"data:image/png;base64,";
    svg.match_indices("<image ")
        .map(|(i, _)| {
            let tag = &svg[i..i + svg[i..].find("/>").unwrap()];
            let b64_at = tag.find(prefix).expect("image is not a PNG data URI") + prefix.len();
            let b64 = &tag[b64_at..b64_at + tag[b64_at..].find('"').unwrap()];
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let img = RgbImage::decode(&bytes);
            let w = attr(tag, "<image", "width").parse().unwrap();
            let h = attr(tag, "<image", "height").parse().unwrap();
            (img, w, h)
        })
        .collect()
}

/// Most a luminance can drop between two close colours: each channel is rounded to 8 bits
/// (±0.5), and the luminance weights sum to 1.
const ROUNDING: f64 = 1.0;

fn luminance(p: &[u8]) -> f64 {
    0.2126 * p[0] as f64 + 0.7152 * p[1] as f64 + 0.0722 * p[2] as f64
}

#[test]
fn round_trip_reads_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_recording(dir.path(), 7, 7, true, 300, travelling_wave);
    let rec = NodeRecording::read(dir.path()).unwrap();
    assert_eq!(
        rec,
        NodeRecording {
            nodes: 49,
            rows: 7,
            cols: 7,
            grid: true,
            sample_rate_hz: FS,
            rate_hz: 250.0,
            first_sample: FIRST,
            decimation_samples: DECIMATION,
            frames: 300,
            data: data.clone(),
        }
    );
    assert_eq!(rec.frame(2), &data[2 * 49..3 * 49]);
    assert!(
        rec.frame(300).is_empty(),
        "past the end is empty, not a panic"
    );
    assert_eq!(rec.time_s(0), 0.1);
    assert!((rec.time_s(10) - 0.14).abs() < 1e-12);
}

#[test]
fn partial_last_frame_is_dropped_and_stale_frame_count_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_recording(dir.path(), 2, 3, true, 10, |k, i| (k * 6 + i) as f32);
    // An interrupted run: half a frame more on disk, while nodes.json still says 10 frames.
    let mut bytes = std::fs::read(dir.path().join("nodes.f32")).unwrap();
    bytes.extend_from_slice(&[0u8; 13]);
    std::fs::write(dir.path().join("nodes.f32"), &bytes).unwrap();
    let rec = NodeRecording::read(dir.path()).unwrap();
    assert_eq!((rec.frames, rec.data.as_slice()), (10, data.as_slice()));

    // Cut into frame 7: frames 0..=6 survive.
    std::fs::write(dir.path().join("nodes.f32"), &bytes[..7 * 24 + 5]).unwrap();
    let rec = NodeRecording::read(dir.path()).unwrap();
    assert_eq!((rec.frames, rec.data.as_slice()), (7, &data[..42]));

    // Less than one frame is an error naming the file.
    std::fs::write(dir.path().join("nodes.f32"), &bytes[..23]).unwrap();
    let e = NodeRecording::read(dir.path()).unwrap_err();
    assert!(
        e.contains("nodes.f32") && e.contains("no whole frame"),
        "{e}"
    );
}

#[test]
fn bad_or_missing_header_errors_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let e = NodeRecording::read(dir.path()).unwrap_err();
    assert!(
        e.contains("nodes.json") && e.contains("[output] nodes_rate_hz"),
        "{e}"
    );

    write_recording(dir.path(), 7, 7, true, 3, travelling_wave);
    let json_path = dir.path().join("nodes.json");
    let good = std::fs::read_to_string(&json_path).unwrap();
    for (bad, why) in [
        ("{not json".to_string(), "not a valid node recording header"),
        (good.replace("\"rows\": 7", "\"rows\": 6"), "rows · cols"),
        (good.replace("\"grid\": true,", ""), "grid"),
        (good.replace("f32le", "f64le"), "format"),
        (
            good.replace("\"rate_hz\": 250", "\"rate_hz\": 500"),
            "rate_hz",
        ),
        (
            good.replace("\"decimation_samples\": 4", "\"decimation_samples\": 0"),
            "decimation",
        ),
    ] {
        std::fs::write(&json_path, &bad).unwrap();
        let e = NodeRecording::read(dir.path()).unwrap_err();
        assert!(e.contains("nodes.json") && e.contains(why), "{why}: {e}");
    }

    std::fs::write(&json_path, &good).unwrap();
    std::fs::remove_file(dir.path().join("nodes.f32")).unwrap();
    let e = NodeRecording::read(dir.path()).unwrap_err();
    assert!(
        e.contains("nodes.f32") && e.contains("[output] nodes_rate_hz"),
        "{e}"
    );
}

#[test]
fn heatmap_has_size_title_labels_and_one_png_ordered_by_value() {
    let dir = tempfile::tempdir().unwrap();
    // Node i = i, constant in time: every pixel row's colour must follow the colour map.
    write_recording(dir.path(), 7, 7, true, 300, |_, i| i as f32);
    let rec = NodeRecording::read(dir.path()).unwrap();
    let svg_path = dir.path().join("heat.svg");
    heatmap_svg(&rec, &svg_path, 900, 500).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();

    assert_eq!(attr(&svg, "<svg", "width"), "900");
    assert_eq!(attr(&svg, "<svg", "height"), "500");
    assert!(svg.trim_end().ends_with("</svg>"));
    for text in ["activity over time × node", "time (s)", "node"] {
        assert!(
            svg.contains(&format!(">\n{text}\n</text>")),
            "no text {text:?}"
        );
    }
    // The colour bar is labelled with values in 0…48.
    assert!(svg.contains(">\n40\n</text>"));

    let pngs = embedded_pngs(&svg);
    assert_eq!(pngs.len(), 1, "exactly one embedded PNG");
    let (img, shown_w, shown_h) = &pngs[0];
    let (w, h) = img.dimensions();
    assert!(
        w <= *shown_w && w >= 500,
        "one column per plot pixel: {w} vs {shown_w}"
    );
    assert_eq!(h % 49, 0, "{h} rows are a whole number per node");
    assert_eq!(h, *shown_h, "the plot height was fitted to N rows × k");
    let per_node = h / 49;
    for i in 0..49u32 {
        let want = viridis(i as f64 / 48.0);
        for y in i * per_node..(i + 1) * per_node {
            for x in [0, w / 2, w - 1] {
                assert_eq!(img.get_pixel(x, y).0, want, "node {i} at ({x}, {y})");
            }
        }
        if i > 0 {
            let (prev, this) = (
                img.get_pixel(0, (i - 1) * per_node),
                img.get_pixel(0, i * per_node),
            );
            assert!(
                luminance(&this.0) > luminance(&prev.0),
                "node {i} not brighter than {}",
                i - 1
            );
        }
    }
}

#[test]
fn heatmap_averages_many_frames_and_repeats_few() {
    let dir = tempfile::tempdir().unwrap();
    // Node value = frame index: columns must brighten left to right.
    write_recording(dir.path(), 1, 3, false, 5000, |k, _| k as f32);
    let rec = NodeRecording::read(dir.path()).unwrap();
    let path = dir.path().join("many.svg");
    heatmap_svg(&rec, &path, 640, 320).unwrap();
    let (img, _, _) = embedded_pngs(&std::fs::read_to_string(&path).unwrap()).remove(0);
    assert_eq!(img.height() % 3, 0);
    let lum: Vec<f64> = (0..img.width())
        .map(|x| luminance(&img.get_pixel(x, 0).0))
        .collect();
    assert!(
        lum.windows(2).all(|w| w[1] >= w[0] - ROUNDING),
        "columns get brighter with time"
    );
    assert!(lum[0] < 30.0 && lum[lum.len() - 1] > 210.0);

    // Three frames over hundreds of columns: nearest frame, so exactly three colours.
    write_recording(dir.path(), 1, 3, false, 3, |k, _| k as f32);
    let rec = NodeRecording::read(dir.path()).unwrap();
    heatmap_svg(&rec, &path, 640, 320).unwrap();
    let (img, _, _) = embedded_pngs(&std::fs::read_to_string(&path).unwrap()).remove(0);
    let mut colours: Vec<[u8; 3]> = (0..img.width()).map(|x| img.get_pixel(x, 0).0).collect();
    colours.dedup();
    assert_eq!(colours, vec![viridis(0.0), viridis(0.5), viridis(1.0)]);
}

#[test]
fn nan_is_grey_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    // Node 3 is always NaN, node 5 is +∞ in one frame of many (it must not be averaged away).
    write_recording(dir.path(), 3, 3, true, 2000, |k, i| match (k, i) {
        (_, 3) => f32::NAN,
        (1000, 5) => f32::INFINITY,
        _ => i as f32,
    });
    let rec = NodeRecording::read(dir.path()).unwrap();
    let path = dir.path().join("nan.svg");
    heatmap_svg(&rec, &path, 400, 300).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains(">\nNaN\n</text>"), "the grey key is labelled");
    let (img, _, _) = embedded_pngs(&svg).remove(0);
    let per_node = img.height() / 9;
    let row = |i: u32| i * per_node + per_node / 2;
    assert!((0..img.width()).all(|x| img.get_pixel(x, row(3)).0 == NON_FINITE_RGB));
    assert!((0..img.width()).any(|x| img.get_pixel(x, row(5)).0 == NON_FINITE_RGB));
    assert!((0..img.width()).all(|x| img.get_pixel(x, row(4)).0 != NON_FINITE_RGB));

    let snap = dir.path().join("nan_snap.svg");
    snapshots_svg(&rec, &snap, &[0.0], 10).unwrap();
    let (img, _, _) = embedded_pngs(&std::fs::read_to_string(&snap).unwrap()).remove(0);
    // Node 3 is row 1, column 0 (cells grew to 40 px so the panel is readable).
    let cell = img.width() / 3;
    assert_eq!((cell, img.height()), (40, 120));
    assert_eq!(img.get_pixel(cell / 2, cell + cell / 2).0, NON_FINITE_RGB);
    assert_ne!(
        img.get_pixel(cell + cell / 2, cell + cell / 2).0,
        NON_FINITE_RGB
    );

    // Nothing finite at all still draws (all grey).
    write_recording(dir.path(), 2, 2, true, 4, |_, _| f32::NAN);
    let rec = NodeRecording::read(dir.path()).unwrap();
    heatmap_svg(&rec, &path, 400, 300).unwrap();
    let (img, _, _) = embedded_pngs(&std::fs::read_to_string(&path).unwrap()).remove(0);
    assert!(img.pixels().all(|p| p.0 == NON_FINITE_RGB));
}

#[test]
fn snapshots_one_png_per_time_on_a_shared_scale() {
    let dir = tempfile::tempdir().unwrap();
    write_recording(dir.path(), 7, 7, true, 300, travelling_wave);
    let rec = NodeRecording::read(dir.path()).unwrap();
    let times = even_times(&rec, 4);
    assert_eq!(times.len(), 4);
    assert_eq!((times[0], times[3]), (rec.time_s(0), rec.time_s(299)));
    let path = dir.path().join("snap.svg");
    snapshots_svg(&rec, &path, &times, 20).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();

    for t in &times {
        assert!(
            svg.contains(&format!(">\nt = {t:.3} s\n</text>")),
            "no title for {t}"
        );
    }
    let pngs = embedded_pngs(&svg);
    assert_eq!(pngs.len(), 4);
    for (img, w, h) in &pngs {
        assert_eq!((img.width(), img.height(), *w, *h), (140, 140, 140, 140));
    }
    // Shared scale: node 0 (value ≈ 0) is dark and node 48 (≈ 48) bright in every panel.
    for (img, _, _) in &pngs {
        assert!(luminance(&img.get_pixel(5, 5).0) < 40.0);
        assert!(luminance(&img.get_pixel(135, 135).0) > 200.0);
        // Cells are uniform 20 × 20 blocks: node 8 is at row 1, column 1.
        assert_eq!(img.get_pixel(20, 20), img.get_pixel(39, 39));
    }
    // Root size is what the layout says: 4 panels side by side, wider than tall.
    let w: u32 = attr(&svg, "<svg", "width").parse().unwrap();
    let h: u32 = attr(&svg, "<svg", "height").parse().unwrap();
    assert!(w > 4 * 140 && h > 140 && h < 300, "{w}×{h}");

    // A time between frames shows the nearest frame's time.
    snapshots_svg(&rec, &path, &[rec.time_s(10) + 0.001], 20).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains(&format!(">\nt = {:.3} s\n</text>", rec.time_s(10))));
}

#[test]
fn snapshots_refuse_a_non_grid_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    write_recording(dir.path(), 1, 5, false, 10, |_, i| i as f32);
    let rec = NodeRecording::read(dir.path()).unwrap();
    let path = dir.path().join("s.svg");
    let e = snapshots_svg(&rec, &path, &[0.0], 10).unwrap_err();
    assert!(e.contains("not a grid"), "{e}");
    assert!(!path.exists());

    write_recording(dir.path(), 2, 2, true, 10, |_, i| i as f32);
    let rec = NodeRecording::read(dir.path()).unwrap();
    assert!(snapshots_svg(&rec, &path, &[], 10).is_err());
    assert!(snapshots_svg(&rec, &path, &[f64::NAN], 10).is_err());
    assert!(snapshots_svg(&rec, &path, &[0.0], 0).is_err());
    assert!(heatmap_svg(&rec, &path, 10, 10).is_err());
    assert!(heatmap_svg(&rec, &path, 100_000, 500).is_err());

    // A hand-built recording whose fields disagree with its data is an error, not a panic.
    let mut broken = rec.clone();
    broken.frames = 11;
    assert!(heatmap_svg(&broken, &path, 400, 300).is_err());
    broken.frames = 0;
    broken.data.clear();
    assert!(snapshots_svg(&broken, &path, &[0.0], 10).is_err());
}

#[test]
fn edge_shapes_draw_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.svg");

    // One node, one frame, constant value.
    write_recording(dir.path(), 1, 1, true, 1, |_, _| 3.0);
    let rec = NodeRecording::read(dir.path()).unwrap();
    heatmap_svg(&rec, &path, 320, 200).unwrap();
    let (img, _, _) = embedded_pngs(&std::fs::read_to_string(&path).unwrap()).remove(0);
    assert!(
        img.pixels().all(|p| p.0 == viridis(0.5)),
        "a constant sits mid-scale"
    );
    snapshots_svg(&rec, &path, &even_times(&rec, 3), 1).unwrap();
    let pngs = embedded_pngs(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(pngs.len(), 3);
    for (img, w, h) in pngs {
        assert_eq!(
            (img.width(), img.height(), w, h),
            (120, 120, 120, 120),
            "enlarged to fit"
        );
    }
    assert_eq!(even_times(&rec, 0), Vec::<f64>::new());

    // More nodes than the raster cap: rows are averaged, the PNG stays bounded.
    write_recording(dir.path(), 100, 100, true, 2, |_, i| i as f32);
    let rec = NodeRecording::read(dir.path()).unwrap();
    heatmap_svg(&rec, &path, 400, 300).unwrap();
    let (img, _, _) = embedded_pngs(&std::fs::read_to_string(&path).unwrap()).remove(0);
    assert_eq!(img.height(), 4096);
    let lum: Vec<f64> = (0..img.height())
        .map(|y| luminance(&img.get_pixel(0, y).0))
        .collect();
    assert!(lum.windows(2).all(|w| w[1] >= w[0] - ROUNDING));
    // Big cells on a big grid are shrunk to fit 1024 px.
    snapshots_svg(&rec, &path, &[0.0, 1.0], 50).unwrap();
    for (img, w, h) in embedded_pngs(&std::fs::read_to_string(&path).unwrap()) {
        assert_eq!((img.width(), img.height(), w, h), (1000, 1000, 1000, 1000));
    }

    // Extreme values keep the axes finite.
    write_recording(dir.path(), 2, 2, true, 3, |k, i| match (k, i) {
        (0, 0) => f32::MAX,
        (1, 1) => -f32::MAX,
        _ => 1e-30,
    });
    let rec = NodeRecording::read(dir.path()).unwrap();
    heatmap_svg(&rec, &path, 400, 300).unwrap();
    snapshots_svg(&rec, &path, &[0.0, 1e9, -1e9], 10).unwrap();
}

/// Grid heat maps: spans that overflow f64 are refused (they used to hang plotters' tick finder
/// at 100 % CPU); wide but finite spans and huge single values draw with bounded ticks.
#[test]
fn grid_heat_maps_refuse_overflowing_spans_and_draw_wide_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.svg");
    let labels = ("x", "y", "v");
    let draw = |xs: &[f64], ys: &[f64], values: &[f64]| {
        grid_svg(&path, "t", labels, xs, ys, values, &[], (900, 560))
    };
    let e = draw(&[-1e308, 1.0, 1e308], &[1.0], &[1.0, 0.5, 0.5]).unwrap_err();
    assert!(
        e.contains("x: its values span") && e.contains("overflows"),
        "{e}"
    );
    assert!(!path.exists(), "written before refusing");
    let e = draw(&[1.0], &[1.0, f64::MAX], &[0.5, 0.5]).unwrap_err();
    assert!(e.contains("y: its values span"), "{e}");
    let e = draw(&[1.0, 2.0, 3.0], &[1.0], &[0.5, 1e308, -1e308]).unwrap_err();
    assert!(e.contains("v: its values span"), "{e}");
    let e = check_grid(labels, &[], &[], &[]).unwrap_err();
    assert!(e.contains("0 values for a 0 × 0 grid"), "{e}");
    assert!(check_grid(labels, &[2.0, 1.0], &[1.0], &[0.0, 0.0]).is_err());

    // Wide but finite: drawn, with ticks inside the range.
    draw(
        &[-1e307, 0.0, 1e307],
        &[1.0, 2.0],
        &[0.0, 1e307, -1e307, 1.0, f64::NAN, 2.0],
    )
    .unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(
        svg.contains("e307"),
        "no tick labels in scientific notation"
    );
    // One huge value on each axis and one value: cells wider than the values' precision.
    draw(&[1e20], &[-1e20], &[f64::MAX]).unwrap();
    draw(&[0.0], &[0.0], &[f64::NAN]).unwrap();
}
