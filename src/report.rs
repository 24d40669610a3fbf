//! `entrain report DIR`: one self-contained HTML page per run.
//!
//! Owns: reading a run folder (`summary.json`, `events.csv`, `signals.wav`), the data behind the
//! report's figures, the figures themselves (`report/*.svg`), `report/figures.json` (those data,
//! so the pictures' numbers can be checked) and the page (`report.html`, with every SVG inlined:
//! no script, no network resource, readable offline as one file).
//! May call: [`crate::render`] (drawing), [`crate::analysis`] (circular statistics),
//! [`crate::wav`] (reading `signals.wav` frame by frame) and [`crate::record`] for the file
//! contracts only (the `events.csv` header). It never runs the engine: it reads what a finished
//! or interrupted run wrote, and old runs (missing newer summary fields) get a note instead of a
//! figure.
//!
//! The figures (SVG, fixed pixel sizes):
//! - `rose.svg` (520 × 520): ground-truth phase at pulse arrival (`true_deg`), 36 bins of 10°
//!   from −180°, bin i = `[edges[i], edges[i+1])` with +180° in the last; the target phase and
//!   the circular mean (length = R) as radial lines.
//! - `phase_error.svg` (640 × 480): `error_deg` in 72 bins of 5° from −180°, same rule.
//! - `plv.svg` (640 × 480): `summary.json`'s `plv_series`, with the before / during / after
//!   periods shaded and their whole-period PLV drawn flat.
//! - `spectrum.svg` (640 × 480): Welch PSD of the observable per period (Hann, ≤ 2 s segments,
//!   50 % overlap, mean removed, one-sided density, dB).
//! - `stretch.svg` (900 × 640): observable with pulse arrivals, estimated and true phase,
//!   stimulus, over `--stretch` (default 1 s from 0.25 s before stimulation starts); long
//!   stretches are drawn as min/max envelopes.
//! - `block_time.svg` (640 × 480): real-time runs' per-block busy fraction histogram with the
//!   1.0 deadline.
//!
//! The periods are in plant time, as for the recorder's PLV: stimulation reaches the plant
//! `latency_samples` after `stimulation.start_s` / `stop_s` (the end of the run when unset),
//! clamped to the run.

use crate::analysis::{circular_stats, wrap_angle};
use crate::render::{self, Chart, Histogram, Line, Mark, RoseMark, Span};
use crate::wav::WavFrames;
use num_complex::Complex;
use plotters::chart::SeriesLabelPosition;
use rustfft::FftPlanner;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Size of the rose plot, pixels.
pub const ROSE_SIZE: (u32, u32) = (520, 520);
/// Size of the phase error, PLV, spectrum and block-time figures.
pub const CHART_SIZE: (u32, u32) = (640, 480);
/// Size of the signal stretch figure.
pub const STRETCH_SIZE: (u32, u32) = (900, 640);

/// Bins of the rose plot (10° each).
const ROSE_BINS: usize = 36;
/// Bins of the phase error histogram (5° each).
const ERROR_BINS: usize = 72;
/// Longest Welch segment, seconds (0.5 Hz resolution).
const SEGMENT_S: f64 = 2.0;
/// Shortest period that gets a spectrum, seconds.
const MIN_SPECTRUM_S: f64 = 0.25;
/// Most envelope bins in the stretch figure.
const STRETCH_BINS: usize = 1500;

const RED: [u8; 3] = [214, 39, 40];
const BLUE: [u8; 3] = [31, 119, 180];
const BLACK: [u8; 3] = [0, 0, 0];
const ORANGE: [u8; 3] = [255, 127, 14];
const GREEN: [u8; 3] = [44, 160, 44];
const PERIOD_RGB: [[u8; 3]; 3] = [[110, 110, 110], ORANGE, GREEN];
const PERIOD_NAMES: [&str; 3] = ["before", "during", "after"];

/// What to write, besides the defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The page (default `DIR/report.html`); the figures go in the folder of the same name
    /// without `.html` (`DIR/report/` by default).
    pub html: Option<PathBuf>,
    /// The signal stretch to draw, seconds since the run's start.
    pub stretch: Option<(f64, f64)>,
}

/// Why a report could not be made.
#[derive(Clone, Debug, PartialEq)]
pub enum ReportError {
    /// The folder, a file in it or an option is not usable (CLI exit code 2).
    BadInput(String),
    /// Writing the report failed (exit code 1).
    Failed(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::BadInput(e) | ReportError::Failed(e) => f.write_str(e),
        }
    }
}

/// What [`report`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// The page.
    pub html: PathBuf,
    /// The folder of SVG files and `figures.json`.
    pub figures_dir: PathBuf,
    /// The figures drawn (file names in `figures_dir`).
    pub svgs: Vec<String>,
    /// Figures left out and why.
    pub notes: Vec<String>,
}

/// Parse `--stretch START:END` (seconds).
pub fn parse_stretch(text: &str) -> Result<(f64, f64), String> {
    let parsed = text
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)));
    match parsed {
        Some((a, b)) if a.is_finite() && b.is_finite() && a >= 0.0 && b > a => Ok((a, b)),
        _ => Err(format!(
            "--stretch {text}: expected START:END in seconds with 0 ≤ START < END, e.g. 1.5:2.5"
        )),
    }
}

/// Write the report of the run in `dir`.
pub fn report(dir: &Path, options: &Options) -> Result<Written, ReportError> {
    let bad = ReportError::BadInput;
    let run = Run::read(dir)?;
    let html = options
        .html
        .clone()
        .unwrap_or_else(|| dir.join("report.html"));
    if html.extension().and_then(|e| e.to_str()) != Some("html") {
        return Err(bad(format!(
            "--out {}: give a file name ending in .html (the figures go in the folder of the \
             same name without .html)",
            html.display()
        )));
    }
    let figures_dir = html.with_extension("");
    let stretch = stretch_range(&run, options.stretch)?;
    let events = read_events(&dir.join("events.csv"))?;
    let signals = read_signals(&run, dir, stretch)?;

    std::fs::create_dir_all(&figures_dir).map_err(|e| {
        ReportError::Failed(format!("cannot create '{}': {e}", figures_dir.display()))
    })?;
    let mut page = Page::new(&run, dir, &figures_dir);
    let figures = Figures {
        run: dir.display().to_string(),
        periods: run.periods.map(|(a, b)| [a, b]),
        rose: rose(&run, &events, &figures_dir, &mut page)?,
        phase_error: phase_error(&events, &figures_dir, &mut page)?,
        plv: plv(&run, &figures_dir, &mut page)?,
        spectra: spectra(&run, &signals, &figures_dir, &mut page)?,
        stretch: stretch_figure(&run, &events, &signals, &figures_dir, &mut page)?,
        block_time: block_time(&run, &figures_dir, &mut page)?,
    };
    let json = serde_json::to_string_pretty(&figures)
        .map_err(|e| ReportError::Failed(format!("figures.json: {e}")))?;
    let json_path = figures_dir.join("figures.json");
    std::fs::write(&json_path, json + "\n")
        .map_err(|e| ReportError::Failed(format!("cannot write '{}': {e}", json_path.display())))?;
    std::fs::write(&html, page.finish())
        .map_err(|e| ReportError::Failed(format!("cannot write '{}': {e}", html.display())))?;
    Ok(Written {
        html,
        figures_dir,
        svgs: page.svgs,
        notes: page.notes,
    })
}

// ---------------------------------------------------------------------------------------------
// Reading the run

/// What the report needs from `summary.json`.
struct Run {
    summary: Value,
    fs: f64,
    latency: u64,
    duration_s: f64,
    /// Before / during / after in plant time, seconds (possibly empty intervals).
    periods: [(f64, f64); 3],
    /// Whether stimulation ever starts within the run.
    stimulates: bool,
    channels: Vec<String>,
    realtime: bool,
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

fn get_f64(v: &Value, path: &str) -> Option<f64> {
    get(v, path)
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite())
}

impl Run {
    fn read(dir: &Path) -> Result<Self, ReportError> {
        let bad = ReportError::BadInput;
        let path = dir.join("summary.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad(format!(
                    "{} is not a run folder (it has no summary.json): run `entrain run PROFILE \
                     --out {}` first",
                    dir.display(),
                    dir.display()
                )))
            }
            Err(e) => return Err(bad(format!("cannot read {}: {e}", path.display()))),
        };
        let summary: Value = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "{} is not valid JSON ({e}); it is written by `entrain run` at the end of a run: \
                 rerun it",
                path.display()
            ))
        })?;
        let missing = |key: &str| {
            bad(format!(
                "{} has no usable `{key}`: it is not an entrain run summary; rerun `entrain run`",
                path.display()
            ))
        };
        let fs = get_f64(&summary, "sample_rate")
            .filter(|f| *f > 0.0)
            .ok_or_else(|| missing("sample_rate"))?;
        let samples = get(&summary, "samples")
            .and_then(Value::as_u64)
            .ok_or_else(|| missing("samples"))?;
        let latency = get(&summary, "latency_samples")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let duration_s = samples as f64 / fs;
        let start = get_f64(&summary, "profile.stimulation.start_s").unwrap_or(0.0);
        let stop = get_f64(&summary, "profile.stimulation.stop_s").unwrap_or(f64::INFINITY);
        let lat = latency as f64 / fs;
        let clamp = |t: f64| t.clamp(0.0, duration_s);
        let (a, b) = (clamp(start + lat), clamp(stop.max(start) + lat));
        let kind = get(&summary, "profile.stimulation.kind").and_then(Value::as_str);
        let channels = get(&summary, "channels")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| c.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let realtime = match get(&summary, "driver").and_then(Value::as_str) {
            Some(d) => d == "realtime",
            None => summary.get("realtime").is_some(),
        };
        Ok(Run {
            fs,
            latency,
            duration_s,
            periods: [(0.0, a), (a, b), (b, duration_s)],
            stimulates: kind != Some("none") && b > a,
            channels,
            realtime,
            summary,
        })
    }

    /// The index of channel `name` in `signals.wav` (the documented order when `channels` is
    /// missing from an old summary).
    fn channel(&self, name: &str) -> Option<usize> {
        if self.channels.is_empty() {
            crate::record::channel_names(&[])
                .iter()
                .position(|c| c == name)
        } else {
            self.channels.iter().position(|c| c == name)
        }
    }
}

/// One row of `events.csv`; missing and non-finite cells are `None`.
struct Event {
    sample: u64,
    target_deg: Option<f64>,
    true_deg: Option<f64>,
    error_deg: Option<f64>,
}

const EVENT_COLUMNS: [&str; 7] = [
    "sample",
    "time_s",
    "target_deg",
    "estimated_deg",
    "true_deg",
    "error_deg",
    "amplitude",
];

/// Read `events.csv`. An empty file (a run killed before its first flush) has no pulses; a bad
/// line is an error naming the file, the line and what was expected.
fn read_events(path: &Path) -> Result<Vec<Event>, ReportError> {
    let shown = path.display();
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::BadInput(format!(
                "{shown}: not found; every run writes it: rerun `entrain run ... --out DIR`"
            )))
        }
        Err(e) => return Err(ReportError::BadInput(format!("cannot read {shown}: {e}"))),
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        None => return Ok(Vec::new()),
        Some((_, header)) if header.trim() == crate::record::EVENTS_HEADER => {}
        Some((_, header)) => {
            return Err(ReportError::BadInput(format!(
                "{shown}, line 1: expected the header `{}`, found `{header}`",
                crate::record::EVENTS_HEADER
            )))
        }
    }
    let mut events = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let at = i + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != EVENT_COLUMNS.len() {
            return Err(ReportError::BadInput(format!(
                "{shown}, line {at}: expected {} comma-separated fields ({}), found {}: `{line}` \
                 (a truncated file? rerun the run)",
                EVENT_COLUMNS.len(),
                crate::record::EVENTS_HEADER,
                fields.len()
            )));
        }
        let number = |k: usize| -> Result<Option<f64>, ReportError> {
            let cell = fields[k];
            if cell.is_empty() {
                return Ok(None);
            }
            cell.parse::<f64>()
                .map(|v| v.is_finite().then_some(v))
                .map_err(|_| {
                    ReportError::BadInput(format!(
                        "{shown}, line {at}: column `{}` is `{cell}`, expected a number or an \
                         empty cell",
                        EVENT_COLUMNS[k]
                    ))
                })
        };
        let sample = fields[0].parse::<u64>().map_err(|_| {
            ReportError::BadInput(format!(
                "{shown}, line {at}: column `sample` is `{}`, expected a sample index (a whole \
                 number ≥ 0)",
                fields[0]
            ))
        })?;
        for k in [1, 3, 6] {
            number(k)?;
        }
        events.push(Event {
            sample,
            target_deg: number(2)?,
            true_deg: number(4)?,
            error_deg: number(5)?,
        });
    }
    Ok(events)
}

/// A stretch of the run, seconds, clamped to it; `None` when the run recorded nothing.
fn stretch_range(run: &Run, asked: Option<(f64, f64)>) -> Result<Option<(f64, f64)>, ReportError> {
    let d = run.duration_s;
    if d <= 0.0 {
        return Ok(None);
    }
    match asked {
        Some((a, _)) if a >= d => Err(ReportError::BadInput(format!(
            "--stretch starts at {a} s, after the run's end ({d:.3} s): give a START below it"
        ))),
        Some((a, b)) => Ok(Some((a, b.min(d)))),
        None => {
            let a = (run.periods[1].0 - 0.25).clamp(0.0, d);
            let a = if a + 1.0 > d { (d - 1.0).max(0.0) } else { a };
            Ok(Some((a, (a + 1.0).min(d))))
        }
    }
}

/// What one pass over `signals.wav` gives: the spectra and the stretch's envelopes.
enum Signals {
    /// No `signals.wav` (sweeps drop it) or no samples: why.
    Missing(String),
    Read {
        spectra: Box<[Result<Spectrum, String>; 3]>,
        stretch: Option<StretchData>,
    },
}

/// Welch's PSD of one period, accumulated segment by segment.
struct Welch {
    from: u64,
    to: u64,
    n: usize,
    hop: usize,
    buf: Vec<f64>,
    window: Vec<f64>,
    fft: std::sync::Arc<dyn rustfft::Fft<f64>>,
    work: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    sum: Vec<f64>,
    segments: usize,
    skipped: usize,
}

/// One period's spectrum (for `figures.json`).
#[derive(Serialize)]
struct Spectrum {
    period: &'static str,
    from_s: f64,
    to_s: f64,
    segment_s: f64,
    segments: usize,
    /// Segments left out because they held a non-finite value.
    skipped_segments: usize,
    freq_hz: Vec<f64>,
    power_db: Vec<f64>,
}

impl Welch {
    /// `None` (with the reason) when the period is too short.
    fn new(from_s: f64, to_s: f64, fs: f64) -> Result<Self, String> {
        let from = (from_s * fs).round() as u64;
        let to = (to_s * fs).round() as u64;
        let len = to.saturating_sub(from) as usize;
        let min = ((MIN_SPECTRUM_S * fs).round() as usize).max(16);
        if len == 0 {
            return Err("empty period".into());
        }
        if len < min {
            return Err(format!(
                "{:.3} s is too short for a spectrum (at least {MIN_SPECTRUM_S} s)",
                len as f64 / fs
            ));
        }
        let n = len.min((SEGMENT_S * fs).round() as usize);
        let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        Ok(Welch {
            from,
            to,
            n,
            hop: (n / 2).max(1),
            buf: Vec::with_capacity(n),
            // Periodic Hann, as scipy.signal.welch uses.
            window: (0..n)
                .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos())
                .collect(),
            fft,
            work: vec![Complex::default(); n],
            scratch,
            sum: vec![0.0; n / 2 + 1],
            segments: 0,
            skipped: 0,
        })
    }

    fn push(&mut self, x: f64) {
        self.buf.push(x);
        if self.buf.len() < self.n {
            return;
        }
        if self.buf.iter().all(|v| v.is_finite()) {
            let mean = self.buf.iter().sum::<f64>() / self.n as f64;
            for ((w, x), win) in self.work.iter_mut().zip(&self.buf).zip(&self.window) {
                *w = Complex::new((x - mean) * win, 0.0);
            }
            self.fft
                .process_with_scratch(&mut self.work, &mut self.scratch);
            for (s, w) in self.sum.iter_mut().zip(&self.work) {
                *s += w.norm_sqr();
            }
            self.segments += 1;
        } else {
            self.skipped += 1;
        }
        self.buf.drain(..self.hop);
    }

    fn finish(self, period: &'static str, fs: f64, f_max: f64) -> Result<Spectrum, String> {
        if self.segments == 0 {
            return Err(format!(
                "every segment held a non-finite value ({} skipped)",
                self.skipped
            ));
        }
        let norm = 1.0 / (fs * self.window.iter().map(|w| w * w).sum::<f64>());
        let n = self.n;
        let (mut freq_hz, mut power_db) = (Vec::new(), Vec::new());
        for (k, s) in self.sum.iter().enumerate() {
            let f = k as f64 * fs / n as f64;
            if f > f_max {
                break;
            }
            // One-sided: every bin but DC (and Nyquist for even n) counts twice.
            let two = if k == 0 || 2 * k == n { 1.0 } else { 2.0 };
            let p = two * s / self.segments as f64 * norm;
            freq_hz.push(f);
            power_db.push(10.0 * p.max(1e-300).log10());
        }
        Ok(Spectrum {
            period,
            from_s: self.from as f64 / fs,
            to_s: self.to as f64 / fs,
            segment_s: n as f64 / fs,
            segments: self.segments,
            skipped_segments: self.skipped,
            freq_hz,
            power_db,
        })
    }
}

/// Min/max envelopes of the stretch's channels.
struct StretchData {
    from: u64,
    len: u64,
    bins: usize,
    /// Per channel (observable, estimated phase, true phase, stimulus): per bin (min, max).
    env: [Vec<Option<(f64, f64)>>; 4],
    any_true_phase: bool,
}

impl StretchData {
    fn add(&mut self, sample: u64, values: [Option<f64>; 4]) {
        let bin = ((sample - self.from) as u128 * self.bins as u128 / self.len as u128) as usize;
        for (env, v) in self.env.iter_mut().zip(values) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let slot = &mut env[bin];
                *slot = Some(slot.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
            }
        }
        if values[2].is_some_and(|v| v != 0.0) {
            self.any_true_phase = true;
        }
    }

    /// The envelope of channel `c` as a line: (t, min), (t, max) per bin.
    fn line(&self, c: usize, fs: f64) -> Vec<(f64, f64)> {
        let per_bin = self.len as f64 / self.bins as f64;
        let mut points = Vec::new();
        for (j, slot) in self.env[c].iter().enumerate() {
            let t = (self.from as f64 + (j as f64 + 0.5) * per_bin) / fs;
            match slot {
                Some((lo, hi)) => {
                    points.push((t, *lo));
                    if hi != lo {
                        points.push((t, *hi));
                    }
                }
                None => points.push((t, f64::NAN)),
            }
        }
        points
    }
}

/// Highest frequency shown in the spectra: 3 × the estimator's upper band edge (at least
/// 50 Hz), or 100 Hz, below Nyquist.
fn f_max(run: &Run) -> f64 {
    let top = get_f64(&run.summary, "profile.estimator.high_hz")
        .map(|h| (3.0 * h).max(50.0))
        .unwrap_or(100.0);
    top.min(run.fs / 2.0)
}

fn read_signals(
    run: &Run,
    dir: &Path,
    stretch: Option<(f64, f64)>,
) -> Result<Signals, ReportError> {
    let path = dir.join("signals.wav");
    if !path.exists() {
        return Ok(Signals::Missing(format!(
            "no signals.wav in {} (a sweep keeps it only with --keep-signals)",
            dir.display()
        )));
    }
    if run.duration_s <= 0.0 {
        return Ok(Signals::Missing("the run recorded no samples".into()));
    }
    let bad = ReportError::BadInput;
    let fix = "rerun the run, or move signals.wav away to report without it";
    let mut wav = WavFrames::open(&path).map_err(|e| bad(format!("{e}; {fix}")))?;
    if (f64::from(wav.sample_rate) - run.fs).abs() > 0.5 {
        return Err(bad(format!(
            "{} is at {} Hz but summary.json says {} Hz: they are not from the same run",
            path.display(),
            wav.sample_rate,
            run.fs
        )));
    }
    let observable = run.channel("observable").unwrap_or(0);
    if observable >= wav.channels {
        return Err(bad(format!(
            "{} has {} channels, but summary.json puts `observable` at channel {observable}: \
             they are not from the same run",
            path.display(),
            wav.channels
        )));
    }
    let index = |name: &str| run.channel(name).filter(|&c| c < wav.channels);
    let picked = [
        Some(observable),
        index("estimated_phase"),
        index("true_phase"),
        index("stimulus"),
    ];
    let mut welch: Vec<Result<Welch, String>> = run
        .periods
        .iter()
        .map(|&(a, b)| Welch::new(a, b, run.fs))
        .collect();
    let mut stretch = stretch.and_then(|(a, b)| {
        let from = (a * run.fs).round() as u64;
        let to = ((b * run.fs).round() as u64).min(wav.frames);
        let len = to.checked_sub(from).filter(|&l| l > 0)?;
        let bins = (len as usize).min(STRETCH_BINS);
        Some(StretchData {
            from,
            len,
            bins,
            env: std::array::from_fn(|_| vec![None; bins]),
            any_true_phase: false,
        })
    });
    let mut frame = vec![0.0; wav.channels];
    let mut sample: u64 = 0;
    while wav
        .next_frame(&mut frame)
        .map_err(|e| bad(format!("{e}; {fix}")))?
    {
        let x = frame[observable];
        for w in welch.iter_mut().flatten() {
            if (w.from..w.to).contains(&sample) {
                w.push(x);
            }
        }
        if let Some(s) = stretch.as_mut() {
            if (s.from..s.from + s.len).contains(&sample) {
                s.add(sample, picked.map(|c| c.map(|c| frame[c])));
            }
        }
        sample += 1;
    }
    let f_max = f_max(run);
    let mut spectra = welch
        .into_iter()
        .enumerate()
        .map(|(i, w)| w.and_then(|w| w.finish(PERIOD_NAMES[i], run.fs, f_max)));
    Ok(Signals::Read {
        spectra: Box::new(std::array::from_fn(|_| {
            spectra.next().unwrap_or_else(|| Err("not computed".into()))
        })),
        stretch,
    })
}

// ---------------------------------------------------------------------------------------------
// Figures

/// The data behind every figure (`figures.json`).
#[derive(Serialize)]
struct Figures {
    run: String,
    /// Before / during / after, plant time, seconds.
    periods: [[f64; 2]; 3],
    rose: PhaseHistogram,
    phase_error: PhaseHistogram,
    plv: PlvFigure,
    spectra: SpectraFigure,
    stretch: StretchFigure,
    block_time: BlockFigure,
}

/// A histogram of angles (degrees) and its circular statistics.
#[derive(Serialize)]
struct PhaseHistogram {
    /// The SVG drawn (file name in the report folder), or `null` with a `note`.
    svg: Option<String>,
    note: Option<String>,
    /// `counts.len() + 1` edges from −180; bin i is `[edges[i], edges[i+1])`, +180 in the last.
    bin_edges_deg: Vec<f64>,
    counts: Vec<u64>,
    /// Finite angles counted.
    n: u64,
    circular_mean_deg: Option<f64>,
    /// Resultant length.
    r: Option<f64>,
    circular_sd_deg: Option<f64>,
    /// Circular mean of the pulses' target phases (rose only).
    #[serde(skip_serializing_if = "Option::is_none")]
    target_deg: Option<f64>,
}

#[derive(Serialize)]
struct PlvFigure {
    svg: Option<String>,
    note: Option<String>,
    window_s: Option<f64>,
    hop_s: Option<f64>,
    time_s: Vec<f64>,
    plv: Vec<Option<f64>>,
    /// `summary.json`'s whole-period PLV: before, during, after.
    summary: [Option<f64>; 3],
}

#[derive(Serialize)]
struct SpectraFigure {
    svg: Option<String>,
    note: Option<String>,
    /// One per period that has a spectrum.
    periods: Vec<Spectrum>,
    /// Periods without one and why.
    missing: Vec<String>,
}

#[derive(Serialize)]
struct StretchFigure {
    svg: Option<String>,
    note: Option<String>,
    start_s: Option<f64>,
    end_s: Option<f64>,
    /// Pulses arriving within the stretch.
    pulses: usize,
    true_phase_shown: bool,
}

#[derive(Serialize)]
struct BlockFigure {
    svg: Option<String>,
    note: Option<String>,
    /// `summary.json`'s `block_time.histogram`: `bin_width`, `edges`, `counts`.
    histogram: Option<Value>,
}

/// The page as it is built: sections in order, figures inlined.
struct Page {
    head: String,
    body: String,
    svgs: Vec<String>,
    notes: Vec<String>,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.decimals$}"))
}

impl Page {
    fn new(run: &Run, dir: &Path, figures_dir: &Path) -> Self {
        let s = &run.summary;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let f = |path: &str| get_f64(s, path);
        let text = |path: &str| get(s, path).and_then(Value::as_str).unwrap_or("–");
        let mut policy = text("profile.stimulation.kind").to_string();
        if let Some(t) = f("profile.stimulation.target_phase_deg") {
            let _ = write!(policy, " at {t}°");
        }
        let (a, b) = run.periods[1];
        let rows: Vec<(&str, String)> = vec![
            ("run folder", dir.display().to_string()),
            (
                "profile",
                format!(
                    "{} × {} node(s); estimator {}; stimulation {policy}",
                    text("profile.model.kind"),
                    get(s, "profile.model.nodes")
                        .and_then(Value::as_u64)
                        .map_or("–".into(), |n| n.to_string()),
                    text("profile.estimator.kind"),
                ),
            ),
            (
                "driver, ending",
                format!("{}, {}", text("driver"), text("ending")),
            ),
            (
                "duration",
                format!(
                    "{:.3} s ({} samples)",
                    run.duration_s,
                    (run.duration_s * run.fs).round() as u64
                ),
            ),
            (
                "sample rate, block",
                format!("{} Hz, {} frames", run.fs, num(f("block"), 0)),
            ),
            (
                "loop latency",
                format!(
                    "{} samples = {:.3} ms",
                    run.latency,
                    run.latency as f64 / run.fs * 1e3
                ),
            ),
            (
                "stimulation reaches the plant",
                if run.stimulates {
                    format!("{a:.3} – {b:.3} s")
                } else {
                    "never (nothing stimulated in this run)".into()
                },
            ),
            (
                "pulses",
                format!(
                    "{} delivered, {} refused by the limiter",
                    num(f("pulses"), 0),
                    num(f("suppressed_pulses"), 0)
                ),
            ),
            (
                "phase error (arrival − target)",
                format!(
                    "mean {}°, circular SD {}°, R {}, n {}",
                    num(f("phase_error.mean_deg"), 1),
                    num(f("phase_error.sd_deg"), 1),
                    num(f("phase_error.r"), 3),
                    num(f("phase_error.n"), 0)
                ),
            ),
            (
                "PLV stimulus ↔ plant",
                format!(
                    "before {}, during {}, after {}",
                    num(f("plv.before"), 3),
                    num(f("plv.during"), 3),
                    num(f("plv.after"), 3)
                ),
            ),
            (
                "dropped records, late blocks, xruns",
                format!(
                    "{}, {}, {}",
                    num(f("dropped_records"), 0),
                    num(f("late_blocks"), 0),
                    num(f("xruns"), 0)
                ),
            ),
        ];
        let mut head = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>entrain report: {}</title>\n<style>\n\
             body {{ font-family: sans-serif; max-width: 960px; margin: 2em auto; padding: 0 1em; \
             color: #222; line-height: 1.4; }}\n\
             table {{ border-collapse: collapse; }}\n\
             th, td {{ border: 1px solid #ccc; padding: 3px 10px; text-align: left; \
             vertical-align: top; }}\n\
             th {{ background: #f3f3f3; font-weight: normal; }}\n\
             figure {{ margin: 1em 0 2em 0; }}\n\
             figure svg {{ max-width: 100%; height: auto; }}\n\
             figcaption, .note {{ color: #555; font-size: 0.95em; }}\n\
             .note {{ font-style: italic; }}\n\
             </style>\n</head>\n<body>\n<h1>entrain run report: {}</h1>\n\
             <p>Made by <code>entrain report</code> {} from <code>summary.json</code>, \
             <code>events.csv</code> and <code>signals.wav</code> (written by entrain {}). \
             The figures are also in <code>{}</code> as SVG files, with their numbers in \
             <code>figures.json</code>.</p>\n<table>\n",
            escape(&name),
            escape(&name),
            env!("CARGO_PKG_VERSION"),
            escape(text("version")),
            escape(&figures_dir.display().to_string()),
        );
        for (k, v) in rows {
            let _ = writeln!(
                head,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(k),
                escape(&v)
            );
        }
        head.push_str("</table>\n");
        Page {
            head,
            body: String::new(),
            svgs: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn section(&mut self, id: &str, title: &str) {
        let _ = writeln!(self.body, "<h2 id=\"{id}\">{}</h2>", escape(title));
    }

    /// Inline the SVG at `path` with a caption.
    fn figure(&mut self, path: &Path, caption: &str) -> Result<String, ReportError> {
        let svg = std::fs::read_to_string(path).map_err(|e| {
            ReportError::Failed(format!("cannot read back '{}': {e}", path.display()))
        })?;
        let svg = match svg.find("<svg") {
            Some(i) => &svg[i..],
            None => {
                return Err(ReportError::Failed(format!(
                    "{}: no <svg> element",
                    path.display()
                )))
            }
        };
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            self.body,
            "<figure id=\"figure-{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            escape(file.trim_end_matches(".svg")),
            svg.trim_end(),
            escape(caption)
        );
        self.svgs.push(file.clone());
        Ok(file)
    }

    fn note(&mut self, text: &str) -> Option<String> {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", escape(text));
        self.notes.push(text.to_string());
        Some(text.to_string())
    }

    fn finish(&self) -> String {
        format!("{}{}</body>\n</html>\n", self.head, self.body)
    }
}

/// Remove `dir/name` left by an earlier report when this one has nothing to draw there.
fn remove_stale(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(dir.join(name));
}

fn drawn(r: Result<(), String>) -> Result<(), ReportError> {
    r.map_err(ReportError::Failed)
}

/// Histogram of finite angles (degrees, in (−180, 180] or wrapped into it) over `bins` equal
/// bins from −180°; +180° goes into the last bin.
fn phase_histogram(angles: &[f64], bins: usize) -> (Vec<f64>, Vec<u64>) {
    let width = 360.0 / bins as f64;
    let edges = (0..=bins).map(|i| -180.0 + i as f64 * width).collect();
    let mut counts = vec![0u64; bins];
    for &a in angles.iter().filter(|a| a.is_finite()) {
        let a = if (-180.0..=180.0).contains(&a) {
            a
        } else {
            wrap_angle(a.to_radians()).to_degrees()
        };
        let i = ((a + 180.0) / width).floor().max(0.0) as usize;
        counts[i.min(bins - 1)] += 1;
    }
    (edges, counts)
}

fn stats_deg(angles: &[f64]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let s = circular_stats(angles.iter().map(|a| a.to_radians()));
    (
        s.map(|s| s.mean_rad.to_degrees()),
        s.map(|s| s.r),
        s.map(|s| s.sd_rad.to_degrees()),
    )
}

fn rose(
    run: &Run,
    events: &[Event],
    dir: &Path,
    page: &mut Page,
) -> Result<PhaseHistogram, ReportError> {
    page.section("rose", "Phase of the plant when each pulse arrived");
    let truth: Vec<f64> = events.iter().filter_map(|e| e.true_deg).collect();
    let targets: Vec<f64> = events.iter().filter_map(|e| e.target_deg).collect();
    let (edges, counts) = phase_histogram(&truth, ROSE_BINS);
    let (mean, r, sd) = stats_deg(&truth);
    let target = stats_deg(&targets).0;
    let mut fig = PhaseHistogram {
        svg: None,
        note: None,
        bin_edges_deg: edges,
        counts,
        n: truth.len() as u64,
        circular_mean_deg: mean,
        r,
        circular_sd_deg: sd,
        target_deg: target,
    };
    let name = "rose.svg";
    if truth.is_empty() {
        remove_stale(dir, name);
        fig.note = page.note(&if events.is_empty() {
            if run.stimulates {
                "no pulses: nothing was delivered in this run".to_string()
            } else {
                "no pulses: this run stimulates nothing".to_string()
            }
        } else {
            format!(
                "no pulses with a ground-truth phase: {} pulses were delivered, but none has a \
                 true_deg in events.csv (no ground truth for this source, or the run ended \
                 before they reached the plant)",
                events.len()
            )
        });
        return Ok(fig);
    }
    let mut marks = Vec::new();
    if let Some(t) = target {
        marks.push(RoseMark {
            name: format!("target {t:.1}°"),
            angle_deg: t,
            length: 1.04,
            rgb: RED,
        });
    }
    if let (Some(m), Some(r)) = (mean, r) {
        marks.push(RoseMark {
            name: format!("circular mean {m:.1}° (length R = {r:.3})"),
            angle_deg: m,
            length: r,
            rgb: BLUE,
        });
    }
    let path = dir.join(name);
    drawn(render::rose_svg(
        &path,
        &format!("true phase at pulse arrival (n = {})", truth.len()),
        &fig.bin_edges_deg,
        &fig.counts,
        &marks,
        ROSE_SIZE,
    ))?;
    let skipped = events.len() - truth.len();
    let mut caption = "Ground-truth phase of the plant when each pulse reached it (true_deg), in \
                       10° bins; 0° = peak (right), ±180° = trough (left), counter-clockwise. \
                       Red: the target phase; blue: the circular mean, its length the \
                       resultant length R (1 = every pulse at the same phase)."
        .to_string();
    if skipped > 0 {
        let _ = write!(
            caption,
            " {skipped} pulse(s) without a ground-truth phase are left out."
        );
    }
    fig.svg = Some(page.figure(&path, &caption)?);
    Ok(fig)
}

fn phase_error(
    events: &[Event],
    dir: &Path,
    page: &mut Page,
) -> Result<PhaseHistogram, ReportError> {
    page.section("phase-error", "Phase error");
    let errors: Vec<f64> = events.iter().filter_map(|e| e.error_deg).collect();
    let (edges, counts) = phase_histogram(&errors, ERROR_BINS);
    let (mean, r, sd) = stats_deg(&errors);
    let mut fig = PhaseHistogram {
        svg: None,
        note: None,
        bin_edges_deg: edges,
        counts,
        n: errors.len() as u64,
        circular_mean_deg: mean,
        r,
        circular_sd_deg: sd,
        target_deg: None,
    };
    let name = "phase_error.svg";
    if errors.is_empty() {
        remove_stale(dir, name);
        fig.note = page.note(&if events.is_empty() {
            "no pulses: no phase errors to show".to_string()
        } else {
            format!(
                "no pulses with a phase error: none of the {} pulses has an error_deg (no \
                 target phase, as for open-loop policies, or no ground truth)",
                events.len()
            )
        });
        return Ok(fig);
    }
    let mut marks = vec![Mark {
        name: "on target (0°)".into(),
        x: 0.0,
        rgb: BLACK,
    }];
    if let Some(m) = mean {
        marks.push(Mark {
            name: format!("circular mean {m:+.1}°"),
            x: m,
            rgb: BLUE,
        });
    }
    let title = format!(
        "phase error: mean {}°, circular SD {}° (R {}, n {})",
        num(mean, 1),
        num(sd, 1),
        num(r, 3),
        errors.len()
    );
    let chart = Chart {
        title: &title,
        x_label: "arrival − target phase (°)",
        y_label: "pulses",
        marks: &marks,
        x_range: Some(-180.0..180.0),
        histogram: Some(Histogram {
            edges: &fig.bin_edges_deg,
            counts: &fig.counts,
        }),
        ..Chart::default()
    };
    let path = dir.join(name);
    drawn(render::chart_svg(&path, &chart, CHART_SIZE))?;
    fig.svg = Some(page.figure(
        &path,
        "Phase error of each pulse (error_deg = true − target phase at arrival, wrapped to \
         (−180°, 180°]) in 5° bins. The circular mean is the systematic bias; the circular SD \
         (√(−2 ln R)) the jitter.",
    )?);
    Ok(fig)
}

fn period_spans(run: &Run) -> Vec<Span> {
    run.periods
        .iter()
        .zip(PERIOD_NAMES)
        .zip(PERIOD_RGB)
        .filter(|((p, _), _)| p.1 > p.0)
        .map(|((&(from, to), name), rgb)| Span {
            name: name.to_string(),
            from,
            to,
            rgb,
        })
        .collect()
}

fn plv(run: &Run, dir: &Path, page: &mut Page) -> Result<PlvFigure, ReportError> {
    page.section("plv", "Entrainment (PLV) over time");
    let s = &run.summary;
    let summary = PERIOD_NAMES.map(|p| get_f64(s, &format!("plv.{p}")));
    let mut fig = PlvFigure {
        svg: None,
        note: None,
        window_s: None,
        hop_s: None,
        time_s: Vec::new(),
        plv: Vec::new(),
        summary,
    };
    let name = "plv.svg";
    let Some(series) = s.get("plv_series").filter(|v| !v.is_null()) else {
        remove_stale(dir, name);
        fig.note = page.note(if !run.stimulates {
            "no PLV series: this run stimulates nothing, so there is no stimulation clock to \
             lock to"
        } else if summary.iter().all(Option::is_none) {
            "no PLV series: the run has no stimulation clock (fewer than two pulses)"
        } else {
            "no PLV series in summary.json: the run was made by an older entrain; rerun it to \
             get the windowed PLV"
        });
        return Ok(fig);
    };
    fig.window_s = get_f64(series, "window_s");
    fig.hop_s = get_f64(series, "hop_s");
    let array = |key: &str| {
        series
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Value::as_f64).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    fig.time_s = array("time_s")
        .into_iter()
        .map(|t| t.unwrap_or(f64::NAN))
        .collect();
    fig.plv = array("plv");
    fig.plv.resize(fig.time_s.len(), None);
    if !fig.plv.iter().any(Option::is_some) {
        remove_stale(dir, name);
        fig.note = page.note(&format!(
            "no PLV values: the run is shorter than one {} s window, or no window had a \
             defined plant phase",
            num(fig.window_s, 1)
        ));
        return Ok(fig);
    }
    let series_line = Line {
        name: format!("PLV in {} s windows", num(fig.window_s, 1)),
        points: fig
            .time_s
            .iter()
            .zip(&fig.plv)
            .map(|(&t, p)| (t, p.unwrap_or(f64::NAN)))
            .collect(),
    };
    let mut whole = Vec::new();
    for (&(a, b), v) in run.periods.iter().zip(summary) {
        if let (Some(v), true) = (v, b > a) {
            whole.extend([(a, v), (b, v), (b, f64::NAN)]);
        }
    }
    let lines = [
        series_line,
        Line {
            name: "whole period (summary.json)".into(),
            points: whole,
        },
    ];
    let spans = period_spans(run);
    let chart = Chart {
        title: "entrainment PLV, plant phase vs stimulation clock",
        x_label: "time (s)",
        y_label: "PLV",
        lines: &lines,
        spans: &spans,
        x_range: Some(0.0..run.duration_s.max(1e-3)),
        y_range: Some(0.0..1.1),
        markers: fig.time_s.len() <= 120,
        legend: Some(SeriesLabelPosition::LowerRight),
        colours: &[BLUE, BLACK],
        ..Chart::default()
    };
    let path = dir.join(name);
    drawn(render::chart_svg(&path, &chart, CHART_SIZE))?;
    fig.svg = Some(page.figure(
        &path,
        &format!(
            "|mean e^(i(φ_plant − φ_stim))| in {} s windows every {} s (centres shown), the same \
             quantity as summary.json's before / during / after PLV (flat lines). Shaded: the \
             periods, in plant time (stimulation reaches the plant one loop latency after it is \
             emitted). Outside stimulation the clock is extended at its mean rate, so before / \
             after show how close the free rhythm stays to it.",
            num(fig.window_s, 1),
            num(fig.hop_s, 2)
        ),
    )?);
    Ok(fig)
}

fn spectra(
    run: &Run,
    signals: &Signals,
    dir: &Path,
    page: &mut Page,
) -> Result<SpectraFigure, ReportError> {
    page.section("spectrum", "Spectrum before / during / after stimulation");
    let mut fig = SpectraFigure {
        svg: None,
        note: None,
        periods: Vec::new(),
        missing: Vec::new(),
    };
    let name = "spectrum.svg";
    let spectra = match signals {
        Signals::Missing(why) => {
            remove_stale(dir, name);
            fig.note = page.note(&format!("no spectrum: {why}"));
            return Ok(fig);
        }
        Signals::Read { spectra, .. } => spectra,
    };
    let mut lines = Vec::new();
    for (i, s) in spectra.iter().enumerate() {
        match s {
            Ok(s) => {
                lines.push(Line {
                    name: format!("{} ({:.1}–{:.1} s)", s.period, s.from_s, s.to_s),
                    points: s
                        .freq_hz
                        .iter()
                        .copied()
                        .zip(s.power_db.iter().copied())
                        .collect(),
                });
                fig.periods.push(Spectrum {
                    period: s.period,
                    from_s: s.from_s,
                    to_s: s.to_s,
                    segment_s: s.segment_s,
                    segments: s.segments,
                    skipped_segments: s.skipped_segments,
                    freq_hz: s.freq_hz.clone(),
                    power_db: s.power_db.clone(),
                });
            }
            Err(why) => {
                fig.missing.push(format!("{}: {why}", PERIOD_NAMES[i]));
                // An empty line keeps each period's colour the same whichever are missing.
                lines.push(Line {
                    name: String::new(),
                    points: Vec::new(),
                });
            }
        }
    }
    if fig.periods.is_empty() {
        remove_stale(dir, name);
        fig.note = page.note(&format!("no spectrum: {}", fig.missing.join("; ")));
        return Ok(fig);
    }
    let chart = Chart {
        title: "power spectral density of the observable",
        x_label: "frequency (Hz)",
        y_label: "power (dB re 1 unit²/Hz)",
        lines: &lines,
        x_range: Some(0.0..f_max(run)),
        colours: &PERIOD_RGB,
        ..Chart::default()
    };
    let path = dir.join(name);
    drawn(render::chart_svg(&path, &chart, CHART_SIZE))?;
    let mut caption = format!(
        "Welch estimate of the observable's power spectral density per period: Hann windows of \
         up to {SEGMENT_S} s, 50 % overlap, mean removed, one-sided, averaged over segments."
    );
    if !fig.missing.is_empty() {
        let _ = write!(caption, " Not shown: {}.", fig.missing.join("; "));
    }
    fig.svg = Some(page.figure(&path, &caption)?);
    Ok(fig)
}

fn stretch_figure(
    run: &Run,
    events: &[Event],
    signals: &Signals,
    dir: &Path,
    page: &mut Page,
) -> Result<StretchFigure, ReportError> {
    page.section("stretch", "A stretch of signal");
    let mut fig = StretchFigure {
        svg: None,
        note: None,
        start_s: None,
        end_s: None,
        pulses: 0,
        true_phase_shown: false,
    };
    let name = "stretch.svg";
    let data = match signals {
        Signals::Missing(why) => {
            remove_stale(dir, name);
            fig.note = page.note(&format!("no signals: {why}"));
            return Ok(fig);
        }
        Signals::Read { stretch: None, .. } => {
            remove_stale(dir, name);
            fig.note = page.note("no signals: the stretch holds no recorded sample");
            return Ok(fig);
        }
        Signals::Read {
            stretch: Some(d), ..
        } => d,
    };
    let fs = run.fs;
    let (a, b) = (data.from as f64 / fs, (data.from + data.len) as f64 / fs);
    fig.start_s = Some(a);
    fig.end_s = Some(b);
    let arrivals: Vec<f64> = events
        .iter()
        .map(|e| (e.sample + run.latency) as f64 / fs)
        .filter(|t| (a..b).contains(t))
        .collect();
    fig.pulses = arrivals.len();
    let marks: Vec<Mark> = arrivals
        .iter()
        .map(|&x| Mark {
            name: String::new(),
            x,
            rgb: RED,
        })
        .collect();
    let observable = [Line {
        name: String::new(),
        points: data.line(0, fs),
    }];
    let mut phases = vec![Line {
        name: "estimated phase".into(),
        points: data.line(1, fs),
    }];
    fig.true_phase_shown = data.any_true_phase;
    if data.any_true_phase {
        phases.push(Line {
            name: "true phase".into(),
            points: data.line(2, fs),
        });
    }
    let stimulus = [Line {
        name: String::new(),
        points: data.line(3, fs),
    }];
    let pi = std::f64::consts::PI;
    let x = Some(a..b.max(a + 1e-6));
    let fallback = |line: &Line| {
        line.points
            .iter()
            .all(|p| !p.1.is_finite())
            .then_some(-1.0..1.0)
    };
    let panels = [
        Chart {
            title: "observable (pulse arrivals in red)",
            y_label: "observable",
            lines: &observable,
            marks: &marks,
            x_range: x.clone(),
            y_range: fallback(&observable[0]),
            colours: &[BLUE],
            ..Chart::default()
        },
        Chart {
            title: if data.any_true_phase {
                "phase: estimated and true (rad)"
            } else {
                "phase: estimated (rad); no true phase in this stretch"
            },
            y_label: "phase (rad)",
            lines: &phases,
            x_range: x.clone(),
            y_range: Some(-1.15 * pi..1.15 * pi),
            legend: Some(SeriesLabelPosition::UpperRight),
            colours: &[BLUE, GREEN],
            ..Chart::default()
        },
        Chart {
            title: "stimulus (after the limiter)",
            x_label: "time (s)",
            y_label: "stimulus",
            lines: &stimulus,
            x_range: x,
            y_range: fallback(&stimulus[0]),
            colours: &[ORANGE],
            ..Chart::default()
        },
    ];
    let path = dir.join(name);
    drawn(render::panels_svg(
        &path,
        &format!("signals from {a:.3} s to {b:.3} s"),
        &panels,
        STRETCH_SIZE,
    ))?;
    let mut caption = format!(
        "signals.wav from {a:.3} s to {b:.3} s ({} pulse arrivals). Time is the plant's: pulse \
         arrivals are the emission samples of events.csv plus the loop latency.",
        arrivals.len()
    );
    if data.bins < data.len as usize {
        let _ = write!(
            caption,
            " Drawn as the min–max envelope of {} bins ({:.1} samples each).",
            data.bins,
            data.len as f64 / data.bins as f64
        );
    }
    caption.push_str(" Choose another stretch with --stretch START:END (seconds).");
    fig.svg = Some(page.figure(&path, &caption)?);
    Ok(fig)
}

fn block_time(run: &Run, dir: &Path, page: &mut Page) -> Result<BlockFigure, ReportError> {
    page.section("block-time", "Block processing time (real-time runs)");
    let mut fig = BlockFigure {
        svg: None,
        note: None,
        histogram: None,
    };
    let name = "block_time.svg";
    if !run.realtime {
        remove_stale(dir, name);
        fig.note = page.note(
            "offline run: no block times (the offline driver has no deadline; it runs as fast \
             as it can)",
        );
        return Ok(fig);
    }
    let Some(h) = get(&run.summary, "block_time.histogram").filter(|h| !h.is_null()) else {
        remove_stale(dir, name);
        fig.note = page.note(
            "no block-time histogram in summary.json: the run measured no block, or was made \
             by an older entrain; rerun it to get the histogram",
        );
        return Ok(fig);
    };
    fig.histogram = Some(h.clone());
    let floats = |key: &str| -> Option<Vec<f64>> {
        h.get(key)?.as_array()?.iter().map(Value::as_f64).collect()
    };
    let counts: Option<Vec<u64>> = h
        .get("counts")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_u64).collect());
    let (Some(edges), Some(counts)) = (floats("edges"), counts) else {
        remove_stale(dir, name);
        fig.note = page.note("summary.json's block_time.histogram lacks numeric edges / counts");
        return Ok(fig);
    };
    let s = &run.summary;
    let title = format!(
        "block busy time / period: median {}, p99 {}, max {}",
        num(get_f64(s, "block_time.median_fraction"), 3),
        num(get_f64(s, "block_time.p99_fraction"), 3),
        num(get_f64(s, "block_time.max_fraction"), 3),
    );
    let marks = [Mark {
        name: "deadline (1.0 = the block's period)".into(),
        x: 1.0,
        rgb: RED,
    }];
    let last = edges.last().copied().unwrap_or(1.0);
    let chart = Chart {
        title: &title,
        x_label: "busy time / block period",
        y_label: "blocks",
        marks: &marks,
        x_range: Some(0.0..last.max(1.0) * 1.05),
        histogram: Some(Histogram {
            edges: &edges,
            counts: &counts,
        }),
        ..Chart::default()
    };
    let path = dir.join(name);
    drawn(render::chart_svg(&path, &chart, CHART_SIZE))?;
    fig.svg = Some(page.figure(
        &path,
        &format!(
            "Time the engine spent on each block as a fraction of the block's period ({} blocks; \
             {} late, beyond the red deadline). Blocks near 1.0 risk an xrun.",
            num(get_f64(s, "block_time.blocks"), 0),
            num(get_f64(s, "late_blocks"), 0)
        ),
    )?);
    Ok(fig)
}
