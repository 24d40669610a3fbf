//! The recorder: drains the engine's telemetry on its own thread and writes the run outputs.
//!
//! Owns: `signals.wav` (float32, one channel per [`channel_names`] entry, at the run's sample
//! rate), `events.csv` (one row per delivered pulse), `nodes.f32` + `nodes.json` (every node's
//! observable, when asked for; see [`nodes`]), `summary.json` (see [`Summary`]), and the
//! entrainment figures of ENGINE.md computed from what it recorded.
//! May call: [`crate::analysis`], [`crate::engine`] (its record types), [`crate::profile`].
//! It only reads what the engine reports; it never touches the real-time half.
//!
//! Nothing is lost on a crash or Ctrl-C: the WAV header and the CSV are flushed about once a
//! second of signal, so a killed run leaves readable files up to that point; `events.csv` is
//! handed to the file in whole rows only ([`RowWriter`]), so it never ends mid-row.

pub mod nodes;

use crate::analysis::{analytic_band, circular_stats, wrap_angle};
use crate::engine::{Record, RunInfo};
use hound::{SampleFormat, WavSpec, WavWriter};
use ringbuf::traits::Consumer;
use ringbuf::HeapCons;
use serde::Serialize;
use std::collections::VecDeque;
use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Channels of `signals.wav` before the recorded nodes'.
const FIXED_CHANNELS: usize = 4;

/// Header of `events.csv` (a stable contract).
pub const EVENTS_HEADER: &str =
    "sample,time_s,target_deg,estimated_deg,true_deg,error_deg,amplitude";

/// The channels of `signals.wav`, in order: `observable`, `estimated_phase` (rad),
/// `estimated_amplitude`, `stimulus` (stimulus units, after the limiter), `node_<i>` for each
/// recorded node (ENGINE.md's order), then `true_phase` (rad, 0 where undefined; where it is
/// computed offline from the signal, filled in when the run ends): always the last.
pub fn channel_names(record_nodes: &[usize]) -> Vec<String> {
    let mut names: Vec<String> = [
        "observable",
        "estimated_phase",
        "estimated_amplitude",
        "stimulus",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    debug_assert_eq!(names.len(), FIXED_CHANNELS);
    names.extend(record_nodes.iter().map(|i| format!("node_{i}")));
    names.push("true_phase".into());
    names
}

/// Whether the run's `signals.wav` fits the WAV format, whose sizes are 32-bit: past 4 GiB
/// the header would wrap and the file would read as a few seconds of garbage.
pub fn check_signals_size(info: &RunInfo) -> Result<(), String> {
    // 32-bit float samples; the header and its chunk sizes take well under 1 kB.
    let frame_bytes = 4 * channel_names(&info.record_nodes).len() as u64;
    let max_frames = (u64::from(u32::MAX) - 1024) / frame_bytes;
    if info.total_samples > max_frames {
        return Err(format!(
            "run.duration_s: signals.wav would hold {} frames of {} channels, more than a WAV \
             file can (4 GiB): at most {:.0} s at {} Hz with these channels; shorten the run \
             (run several) or record fewer nodes (output.record_nodes)",
            info.total_samples,
            frame_bytes / 4,
            max_frames as f64 / info.sample_rate_hz,
            info.sample_rate_hz
        ));
    }
    Ok(())
}

/// What the recorder measured, handed back when it finishes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Recorded {
    /// Pulses delivered.
    pub pulses: u64,
    /// Pulses the limiter refused.
    pub suppressed_pulses: u64,
    /// Commands applied, and how many of them were clamped to the safety limits.
    pub commands: u64,
    /// Commands that asked for more than the limits allowed.
    pub clamped_commands: u64,
    /// Frames written to `signals.wav`.
    pub frames: u64,
    /// Frames missing from the telemetry (dropped) and written as zeros to keep time aligned.
    pub gap_frames: u64,
    /// The first sample whose observable was not finite (a diverged model), if any.
    pub first_non_finite: Option<u64>,
    /// Where the ground truth is computed offline from the signal, and the run was longer
    /// than the stretch of it that is kept: the frames it covers.
    pub truth_frames: Option<u64>,
    /// Frames written to `nodes.f32` (when every node is recorded).
    pub node_frames: Option<u64>,
    /// Of those, snapshots the engine dropped, written as NaN.
    pub node_gap_frames: u64,
    /// Phase error of the pulses against ground truth.
    pub phase_error: PhaseError,
    /// Entrainment PLV between stimulus and plant.
    pub plv: Plv,
    /// The same PLV in sliding windows over the run (`None` when nothing is stimulated).
    pub plv_series: Option<PlvSeries>,
    /// The rhythm's estimated amplitude before, during and after stimulation.
    pub amplitude: Amplitude,
    /// Per-block processing time as a fraction of the block's period.
    pub block_time: BlockTime,
    /// Time between consecutive block starts (in real time: the callback period).
    pub block_period: BlockPeriod,
}

/// Statistics of the time between consecutive block starts, ms.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlockPeriod {
    /// Median, ms.
    pub median_ms: Option<f64>,
    /// 1st percentile, ms.
    pub p1_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Maximum, ms.
    pub max_ms: Option<f64>,
}

/// Phase error statistics (degrees); `None` where undefined (no pulses, or no target).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseError {
    /// Circular mean of (true − target), degrees.
    pub mean_deg: Option<f64>,
    /// Circular SD `sqrt(−2 ln R)`, degrees.
    pub sd_deg: Option<f64>,
    /// Resultant length R of the errors.
    pub r: Option<f64>,
    /// Pulses that reached the plant within the run and have a target.
    pub n: u64,
}

/// PLV between the plant's phase and the stimulation clock before, during and after.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plv {
    /// Before stimulation started.
    pub before: Option<f64>,
    /// While stimulating.
    pub during: Option<f64>,
    /// After stimulation stopped.
    pub after: Option<f64>,
}

/// Mean of the estimator's amplitude (observable units, in the estimator's band) over the
/// settled samples before stimulation reaches the plant, while it does, and after: how much
/// stimulation at this phase grew or shrank the rhythm. `None` for an empty window.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Amplitude {
    /// From the estimator's settling to the first arrival of stimulation.
    pub before: Option<f64>,
    /// While stimulation arrives.
    pub during: Option<f64>,
    /// After the last arrival.
    pub after: Option<f64>,
}

/// Running sums of the estimated amplitude in the before / during / after windows.
#[derive(Clone, Copy, Debug, Default)]
struct AmplitudeSums {
    sum: [f64; 3],
    n: [u64; 3],
}

impl AmplitudeSums {
    fn mean(&self) -> Amplitude {
        let at = |k: usize| (self.n[k] > 0).then(|| self.sum[k] / self.n[k] as f64);
        Amplitude {
            before: at(0),
            during: at(1),
            after: at(2),
        }
    }
}

/// Window of the sliding PLV series, seconds.
pub const PLV_WINDOW_S: f64 = 1.0;
/// Hop between the sliding PLV series' windows, seconds.
pub const PLV_HOP_S: f64 = 0.5;

/// The entrainment PLV of [`Plv`] (same phases, same stimulus clock) in sliding windows, so its
/// course over the run can be drawn. Windows are in plant time (pulse arrival time, like the
/// before / during / after split) and lie wholly inside the recorded run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PlvSeries {
    /// Window length, seconds.
    pub window_s: f64,
    /// Hop between window starts, seconds.
    pub hop_s: f64,
    /// Centre of each window, seconds since the run's start.
    pub time_s: Vec<f64>,
    /// PLV in each window; `null` where fewer than 10 phase pairs were defined.
    pub plv: Vec<Option<f64>>,
}

/// Processing time per block relative to its period.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlockTime {
    /// Blocks measured.
    pub blocks: u64,
    /// Median busy time / period.
    pub median_fraction: Option<f64>,
    /// 99th percentile busy time / period.
    pub p99_fraction: Option<f64>,
    /// Maximum busy time / period.
    pub max_fraction: Option<f64>,
    /// Histogram of busy time / period over all blocks (absent when no block was measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub histogram: Option<BlockTimeHistogram>,
}

/// Histogram of the per-block busy fraction (busy time / block period; 1.0 is the deadline).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BlockTimeHistogram {
    /// Bin width, fraction of the period (1, 2 or 5 × 10ᵏ, at least 0.01; at most 200 bins).
    pub bin_width: f64,
    /// Bin edges from 0, `counts.len() + 1` of them; bin i is `[edges[i], edges[i+1])` and the
    /// last edge is above the largest fraction.
    pub edges: Vec<f64>,
    /// Blocks per bin; they sum to the blocks measured.
    pub counts: Vec<u64>,
}

/// The running recorder thread.
pub struct Recorder {
    thread: JoinHandle<Result<Recorded, String>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// Create `out_dir` and the output files (control half: allocation and I/O happen here and
    /// on the recorder thread only), then start draining `telemetry`. If writing fails, the
    /// thread sets `failed` (so the driver can end the run) and reports the error at `finish`.
    pub fn spawn(
        telemetry: HeapCons<Record>,
        out_dir: &Path,
        info: &RunInfo,
        failed: Arc<AtomicBool>,
    ) -> Result<Self, String> {
        check_signals_size(info)?;
        std::fs::create_dir_all(out_dir)
            .map_err(|e| format!("cannot create output folder '{}': {e}", out_dir.display()))?;
        let channels = channel_names(&info.record_nodes);
        let wav_path = out_dir.join("signals.wav");
        let spec = WavSpec {
            channels: channels.len() as u16,
            sample_rate: info.sample_rate_hz.round() as u32,
            bits_per_sample: 32,
            sample_format: SampleFormat::Float,
        };
        let wav = WavWriter::create(&wav_path, spec)
            .map_err(|e| format!("cannot write '{}': {e}", wav_path.display()))?;
        let events_path = out_dir.join("events.csv");
        let mut events = RowWriter::new(
            File::create(&events_path)
                .map_err(|e| format!("cannot write '{}': {e}", events_path.display()))?,
        );
        events.row().push_str(EVENTS_HEADER);
        events.end_row().map_err(|e| format!("events.csv: {e}"))?;
        let node_writer = match info.node_snapshots {
            Some(snapshots) => Some(nodes::NodeWriter::create(
                out_dir,
                snapshots,
                info.sample_rate_hz,
            )?),
            None => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut state = State::new(info.clone(), (wav, wav_path), events, channels.len());
        state.nodes = node_writer;
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("entrain-recorder".into())
            .spawn(move || {
                let result = state.drain(telemetry, &thread_stop);
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                result
            })
            .map_err(|e| format!("cannot start the recorder thread: {e}"))?;
        Ok(Self { thread, stop })
    }

    /// Tell the recorder the engine has stopped; it drains what is left, finalises the files
    /// and returns its figures.
    pub fn finish(self) -> Result<Recorded, String> {
        self.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| "the recorder thread panicked".to_string())?
    }
}

/// A CSV writer that hands the file whole rows only: each row is formatted into one reused
/// `String`, and the buffer is written out before a row that would not fit in it. A plain
/// `BufWriter` spills whenever it fills, mid-row, so a run killed between its spill and the
/// next flush left a file ending in half a row.
struct RowWriter<W: Write> {
    out: BufWriter<W>,
    row: String,
}

impl<W: Write> RowWriter<W> {
    fn new(inner: W) -> Self {
        Self::with_capacity(8 * 1024, inner)
    }

    fn with_capacity(capacity: usize, inner: W) -> Self {
        Self {
            out: BufWriter::with_capacity(capacity, inner),
            row: String::with_capacity(256),
        }
    }

    /// The next row, empty: write its cells here (no line end), then call [`Self::end_row`].
    fn row(&mut self) -> &mut String {
        self.row.clear();
        &mut self.row
    }

    /// End the row and buffer it whole; what the buffer held goes to the file first if the
    /// row does not fit beside it (a row longer than the whole buffer goes straight through).
    fn end_row(&mut self) -> std::io::Result<()> {
        self.row.push('\n');
        if self.row.len() > self.out.capacity() - self.out.buffer().len() {
            self.out.flush()?;
        }
        self.out.write_all(self.row.as_bytes())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A pulse waiting for the sample at which it reaches the plant.
#[derive(Clone, Copy, Debug)]
struct PendingPulse {
    sample: u64,
    target: f64,
    estimated: f64,
    amplitude: f64,
}

struct State {
    info: RunInfo,
    wav: WavWriter<BufWriter<File>>,
    events: RowWriter<File>,
    row: Vec<f32>,
    nodes_expected: usize,
    nodes_seen: usize,
    row_sample: Option<u64>,
    next_sample: u64,
    pending: VecDeque<PendingPulse>,
    errors: Vec<f64>,
    /// Plant phase sampled every `decimation` samples, aligned to arrival times
    /// (`sample = k·decimation + latency`), and the stimulation clock at emission
    /// (`sample = k·decimation`), so index k pairs a clock value with the plant phase it meets.
    decimation: u64,
    plant_phase: Vec<f32>,
    clock_phase: Vec<f32>,
    arrivals: Vec<u64>,
    block_fractions: Vec<f64>,
    block_starts_ns: Vec<u64>,
    recorded: Recorded,
    since_flush: u64,
    /// The latest frame's sample and ground-truth phase.
    last_truth: Option<(u64, f64)>,
    /// With a sound-card input as the source there is no plant phase: the signal is kept
    /// (up to [`RunInfo::external_truth_samples`]) and the ground truth computed from it at the end.
    external_band: Option<(f64, f64)>,
    observed: Vec<f32>,
    /// Frames of `observed` the telemetry dropped (zeros there): no truth within the
    /// estimate's margin of them.
    observed_gaps: Vec<std::ops::Range<usize>>,
    /// That ground truth for the `true_phase` channel, from its first frame: written into
    /// `signals.wav` once the file is complete.
    truth_fill: Option<(u64, Vec<f32>)>,
    signals_path: PathBuf,
    /// `nodes.f32`, when every node is recorded.
    nodes: Option<nodes::NodeWriter>,
    amplitude: AmplitudeSums,
}

/// Longest stretch of an external signal kept for its offline ground truth (≈ 5.8 min at
/// 48 kHz; the FFT needs 16 bytes per sample). Pulses after it get no ground truth.
pub const MAX_EXTERNAL_SAMPLES: usize = 1 << 24;

impl State {
    fn new(
        info: RunInfo,
        (wav, signals_path): (WavWriter<BufWriter<File>>, PathBuf),
        events: RowWriter<File>,
        channels: usize,
    ) -> Self {
        let decimation = ((info.sample_rate_hz / 1000.0).floor() as u64).max(1);
        Self {
            nodes_expected: info.record_nodes.len(),
            wav,
            events,
            row: vec![0.0; channels],
            nodes_seen: 0,
            row_sample: None,
            next_sample: 0,
            pending: VecDeque::new(),
            errors: Vec::new(),
            decimation,
            plant_phase: Vec::new(),
            clock_phase: Vec::new(),
            arrivals: Vec::new(),
            block_fractions: Vec::new(),
            block_starts_ns: Vec::new(),
            recorded: Recorded::default(),
            amplitude: AmplitudeSums::default(),
            since_flush: 0,
            last_truth: None,
            external_band: info.external_truth_band,
            observed: Vec::new(),
            observed_gaps: Vec::new(),
            truth_fill: None,
            signals_path,
            nodes: None,
            info,
        }
    }

    fn drain(
        mut self,
        mut telemetry: HeapCons<Record>,
        stop: &AtomicBool,
    ) -> Result<Recorded, String> {
        let mut buffer = vec![Record::Suppressed { sample: 0 }; 16 * 1024];
        loop {
            // Read the flag before draining so that records pushed before it was set are seen.
            let stopping = stop.load(Ordering::Acquire);
            let n = telemetry.pop_slice(&mut buffer);
            for record in &buffer[..n] {
                self.take(*record)?;
            }
            if n == 0 {
                if stopping {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.close()
    }

    fn take(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Frame {
                sample,
                observable,
                phase,
                amplitude,
                stimulus,
                true_phase,
                clock_phase,
            } => {
                self.write_row()?;
                while self.next_sample < sample {
                    // Dropped frames: keep the file's time axis honest with zeros, and the PLV
                    // series aligned with NaN (ignored by the statistics).
                    let missing = self.next_sample;
                    self.row.fill(0.0);
                    self.row_sample = Some(missing);
                    self.recorded.gap_frames += 1;
                    self.write_row()?;
                    if self.external_band.is_some() {
                        if self.observed.len() < self.info.external_truth_samples {
                            let k = self.observed.len();
                            match self.observed_gaps.last_mut() {
                                Some(gap) if gap.end == k => gap.end += 1,
                                _ => self.observed_gaps.push(k..k + 1),
                            }
                            self.observed.push(0.0);
                        }
                    } else {
                        self.observe_truth(missing, f64::NAN)?;
                    }
                    if missing.is_multiple_of(self.decimation) {
                        self.clock_phase.push(f32::NAN);
                    }
                }
                if !observable.is_finite() && self.recorded.first_non_finite.is_none() {
                    self.recorded.first_non_finite = Some(sample);
                }
                self.row[0] = observable;
                self.row[1] = phase;
                self.row[2] = amplitude;
                self.row[3] = stimulus;
                let last = self.row.len() - 1;
                self.row[last] = if true_phase.is_finite() {
                    true_phase
                } else {
                    0.0
                };
                self.row_sample = Some(sample);
                self.nodes_seen = 0;
                self.add_amplitude(sample, amplitude);
                if self.external_band.is_some() {
                    if self.observed.len() < self.info.external_truth_samples {
                        self.observed.push(observable);
                    }
                } else {
                    self.observe_truth(sample, true_phase as f64)?;
                }
                if sample % self.decimation == 0 {
                    self.clock_phase.push(clock_phase);
                }
                if self.nodes_expected == 0 {
                    self.write_row()?;
                }
            }
            Record::Node { value } => {
                if self.row_sample.is_some() && self.nodes_seen < self.nodes_expected {
                    self.row[FIXED_CHANNELS + self.nodes_seen] = value;
                    self.nodes_seen += 1;
                    if self.nodes_seen == self.nodes_expected {
                        self.write_row()?;
                    }
                }
            }
            Record::Pulse {
                sample,
                target,
                estimated,
                amplitude,
            } => {
                self.recorded.pulses += 1;
                self.arrivals
                    .push(sample + self.info.latency_samples as u64);
                self.pending.push_back(PendingPulse {
                    sample,
                    target: target as f64,
                    estimated: estimated as f64,
                    amplitude: amplitude as f64,
                });
                // With zero latency the pulse arrives at the frame already recorded (if that
                // frame was not dropped).
                if self.info.latency_samples == 0 && self.external_band.is_none() {
                    if let Some((at, truth)) = self.last_truth {
                        if at == sample {
                            self.settle_pulses(sample, truth)?;
                        }
                    }
                }
            }
            Record::Suppressed { .. } => self.recorded.suppressed_pulses += 1,
            Record::Block {
                frames,
                busy_ns,
                started_ns,
                ..
            } => {
                let period_ns = frames as f64 * 1e9 / self.info.sample_rate_hz;
                self.block_fractions.push(busy_ns as f64 / period_ns);
                self.block_starts_ns.push(started_ns);
            }
            Record::Command { clamped, .. } => {
                self.recorded.commands += 1;
                self.recorded.clamped_commands += clamped as u64;
            }
            Record::Snapshot { sample } => {
                if let Some(nodes) = self.nodes.as_mut() {
                    nodes.snapshot(sample)?;
                }
            }
            Record::NodeValues { values } => {
                if let Some(nodes) = self.nodes.as_mut() {
                    nodes.values(&values)?;
                }
            }
        }
        Ok(())
    }
}

impl State {
    /// The plant's phase at `sample`: settles the pulses arriving now and feeds the PLV series.
    fn observe_truth(&mut self, sample: u64, truth: f64) -> Result<(), String> {
        self.last_truth = Some((sample, truth));
        let latency = self.info.latency_samples as u64;
        if sample >= latency && (sample - latency).is_multiple_of(self.decimation) {
            self.plant_phase.push(truth as f32);
        }
        self.settle_pulses(sample, truth)
    }

    /// The ground truth of an external signal: zero-phase band-pass + FFT Hilbert of the whole
    /// recorded signal (ENGINE.md), scored at each pulse's arrival; it also feeds the PLV.
    fn external_truth(&mut self, low: f64, high: f64) -> Result<(), String> {
        let signal: Vec<f64> = self.observed.iter().map(|&x| f64::from(x)).collect();
        let Ok(analytic) = analytic_band(&signal, self.info.sample_rate_hz, low, high) else {
            // Too short or unusable for the offline estimate: events keep empty truth cells.
            return Ok(());
        };
        // The non-causal estimate is unreliable near the record's ends and near frames the
        // telemetry dropped (read as zeros): within two cycles of the band's lowest frequency
        // of them there is no ground truth.
        let margin = (2.0 / low * self.info.sample_rate_hz).ceil() as usize;
        let inner = margin..analytic.len().saturating_sub(margin);
        let gaps = std::mem::take(&mut self.observed_gaps);
        let near_gap = |k: usize| {
            gaps.iter()
                .any(|g| k + margin >= g.start && k < g.end + margin)
        };
        let trusted = |k: usize| inner.contains(&k) && !near_gap(k);
        let truth = |k: usize| {
            if trusted(k) {
                analytic[k].arg()
            } else {
                f64::NAN
            }
        };
        let latency = self.info.latency_samples;
        let mut k = latency;
        while k < analytic.len() {
            self.plant_phase.push(truth(k) as f32);
            k += self.decimation as usize;
        }
        if !inner.is_empty() {
            // `true_phase` is 0 where undefined.
            let phases = inner.clone().map(|k| match truth(k) {
                t if t.is_finite() => t as f32,
                _ => 0.0,
            });
            self.truth_fill = Some((inner.start as u64, phases.collect()));
        }
        if self.recorded.frames > analytic.len() as u64 {
            // The last trusted frame, not the last kept one: the margin applies at the cut.
            self.recorded.truth_frames = Some(inner.end as u64);
        }
        while let Some(p) = self.pending.front().copied() {
            let arrival = p.sample as usize + latency;
            if arrival >= analytic.len() {
                break;
            }
            self.pending.pop_front();
            self.write_event(p, truth(arrival))?;
        }
        Ok(())
    }

    /// Write the events of pulses that reach the plant at or before `sample`.
    fn settle_pulses(&mut self, sample: u64, truth: f64) -> Result<(), String> {
        let latency = self.info.latency_samples as u64;
        while let Some(p) = self.pending.front().copied() {
            let arrival = p.sample + latency;
            if arrival > sample {
                break;
            }
            self.pending.pop_front();
            // A pulse whose arrival frame was dropped has no ground truth.
            let truth = if arrival == sample { truth } else { f64::NAN };
            self.write_event(p, truth)?;
        }
        Ok(())
    }

    fn write_event(&mut self, p: PendingPulse, truth: f64) -> Result<(), String> {
        let fs = self.info.sample_rate_hz;
        let error = wrap_angle(truth - p.target);
        if error.is_finite() {
            self.errors.push(error);
        }
        // Writing to a `String` cannot fail.
        let row = self.events.row();
        let _ = write!(row, "{},{:.6},", p.sample, p.sample as f64 / fs);
        for x in [p.target, p.estimated, truth, error] {
            // An undefined angle is an empty cell.
            if x.is_finite() {
                let _ = write!(row, "{:.3}", x.to_degrees());
            }
            row.push(',');
        }
        let _ = write!(row, "{}", p.amplitude);
        self.events
            .end_row()
            .map_err(|e| format!("events.csv: {e}"))
    }

    fn write_row(&mut self) -> Result<(), String> {
        if self.row_sample.take().is_none() {
            return Ok(());
        }
        for v in &self.row {
            self.wav
                .write_sample(*v)
                .map_err(|e| format!("signals.wav: {e}"))?;
        }
        self.row.fill(0.0);
        self.next_sample += 1;
        self.recorded.frames += 1;
        self.since_flush += 1;
        if self.since_flush as f64 >= self.info.sample_rate_hz {
            self.since_flush = 0;
            // Keep the files readable if the process dies: hound rewrites the header sizes.
            self.wav.flush().map_err(|e| format!("signals.wav: {e}"))?;
            self.events
                .flush()
                .map_err(|e| format!("events.csv: {e}"))?;
            if let Some(nodes) = self.nodes.as_mut() {
                nodes.flush()?;
            }
        }
        Ok(())
    }

    fn close(mut self) -> Result<Recorded, String> {
        self.write_row()?;
        if let Some((low, high)) = self.external_band {
            self.external_truth(low, high)?;
        }
        while let Some(p) = self.pending.pop_front() {
            // Emitted, but the run ended before it reached the plant.
            self.write_event(p, f64::NAN)?;
        }
        self.events
            .flush()
            .map_err(|e| format!("events.csv: {e}"))?;
        (self.recorded.plv, self.recorded.plv_series) = self.plv();
        self.recorded.amplitude = self.amplitude.mean();
        let stats = circular_stats(self.errors.iter().copied());
        self.recorded.phase_error = PhaseError {
            mean_deg: stats.map(|s| s.mean_rad.to_degrees()),
            sd_deg: stats.map(|s| s.sd_rad.to_degrees()),
            r: stats.map(|s| s.r),
            n: self.errors.len() as u64,
        };
        if let Some(nodes) = self.nodes.take() {
            let (frames, gaps) = nodes.close()?;
            self.recorded.node_frames = Some(frames);
            self.recorded.node_gap_frames = gaps;
        }
        self.recorded.block_time = block_time(&mut self.block_fractions);
        self.recorded.block_period = block_period(&self.block_starts_ns);
        self.wav
            .finalize()
            .map_err(|e| format!("signals.wav: {e}"))?;
        if let Some((first, phases)) = &self.truth_fill {
            crate::wav::overwrite_channel(
                &self.signals_path,
                self.row.len(),
                self.row.len() - 1,
                *first,
                phases,
            )?;
        }
        Ok(self.recorded)
    }

    /// Count a frame's estimated amplitude in its window: a sample reads the plant as it is
    /// when the stimulus emitted `latency` samples earlier reaches it.
    fn add_amplitude(&mut self, sample: u64, amplitude: f32) {
        let info = &self.info;
        let latency = info.latency_samples as u64;
        if sample < info.settling_samples as u64 || !amplitude.is_finite() {
            return;
        }
        let window = if !info.stimulates || sample < info.stim_start_sample + latency {
            0
        } else if sample < info.stim_stop_sample + latency {
            1
        } else {
            2
        };
        self.amplitude.sum[window] += f64::from(amplitude);
        self.amplitude.n[window] += 1;
    }

    /// PLV before / during / after, and in sliding windows ([`PlvSeries`]), from the decimated
    /// plant phase and the stimulus phase: the policy's own clock where it has one, otherwise
    /// phase 0 at each pulse arrival with linear interpolation between arrivals. Outside the
    /// stimulation window the stimulus phase is extrapolated at the mean stimulation frequency,
    /// so "before" and "after" measure how coherent the free rhythm is with the clock
    /// stimulation imposes.
    fn plv(&self) -> (Plv, Option<PlvSeries>) {
        let d = self.decimation;
        let len = self.plant_phase.len().min(self.clock_phase.len());
        if !self.info.stimulates || len == 0 {
            return (Plv::default(), None);
        }
        let latency = self.info.latency_samples as u64;
        // Index k ↔ arrival sample k·d + latency.
        let arrival_of = |k: usize| k as f64 * d as f64 + latency as f64;
        let start = self.info.stim_start_sample as f64 + latency as f64;
        let stop = self.info.stim_stop_sample as f64 + latency as f64;
        let has_clock = self.clock_phase[..len].iter().any(|c| c.is_finite());
        let stim: Vec<f64> = if has_clock {
            extrapolated_clock(&self.clock_phase[..len])
        } else {
            match pulse_clock(&self.arrivals, len, arrival_of) {
                Some(s) => s,
                None => return (Plv::default(), None),
            }
        };
        let diffs: Vec<f64> = (0..len)
            .map(|k| self.plant_phase[k] as f64 - stim[k])
            .collect();
        let plv_of = |ks: &[f64]| {
            circular_stats(ks.iter().copied())
                .filter(|s| s.n >= 10)
                .map(|s| s.r)
        };
        let window = |lo: f64, hi: f64| {
            let inside: Vec<f64> = (0..len)
                .filter(|&k| (lo..hi).contains(&arrival_of(k)))
                .map(|k| diffs[k])
                .collect();
            plv_of(&inside)
        };
        let plv = Plv {
            before: window(0.0, start),
            during: window(start, stop),
            after: window(stop, f64::INFINITY),
        };
        // The series: windows [j·hop, j·hop + width) of arrival samples that end by the last
        // recorded arrival; the first index at or after arrival sample t is ⌈(t − latency)/d⌉.
        let fs = self.info.sample_rate_hz;
        let width = ((PLV_WINDOW_S * fs).round() as u64).max(1);
        let hop = ((PLV_HOP_S * fs).round() as u64).max(1);
        let end = len as u64 * d + latency;
        let first_at = |t: u64| (t.saturating_sub(latency).div_ceil(d) as usize).min(len);
        let mut series = PlvSeries {
            window_s: width as f64 / fs,
            hop_s: hop as f64 / fs,
            ..PlvSeries::default()
        };
        let mut lo = 0;
        while lo + width <= end {
            series.time_s.push((lo as f64 + 0.5 * width as f64) / fs);
            series
                .plv
                .push(plv_of(&diffs[first_at(lo)..first_at(lo + width)]));
            lo += hop;
        }
        (plv, Some(series))
    }
}

/// The policy's clock (NaN outside the stimulation window) unwrapped, and extended before and
/// after at its mean rate.
fn extrapolated_clock(clock: &[f32]) -> Vec<f64> {
    let finite: Vec<usize> = (0..clock.len()).filter(|&k| clock[k].is_finite()).collect();
    let (first, last) = (finite[0], finite[finite.len() - 1]);
    let mut unwrapped = vec![0.0; clock.len()];
    let mut acc = clock[first] as f64;
    let mut previous = acc;
    for k in first..=last {
        if clock[k].is_finite() {
            acc += wrap_angle(clock[k] as f64 - previous);
            previous = clock[k] as f64;
        }
        unwrapped[k] = acc;
    }
    let rate = if last > first {
        (unwrapped[last] - unwrapped[first]) / (last - first) as f64
    } else {
        0.0
    };
    for (k, u) in unwrapped.iter_mut().enumerate() {
        if k < first {
            *u = clock[first] as f64 - rate * (first - k) as f64;
        } else if k > last {
            *u = acc + rate * (k - last) as f64;
        }
    }
    unwrapped
}

/// Stimulus phase from pulse arrivals: 0 (mod 2π) at each arrival, linear in between, and
/// extended at the mean inter-pulse interval outside. `None` with fewer than two pulses.
fn pulse_clock(
    arrivals: &[u64],
    len: usize,
    arrival_of: impl Fn(usize) -> f64,
) -> Option<Vec<f64>> {
    if arrivals.len() < 2 {
        return None;
    }
    let first = arrivals[0] as f64;
    let last = *arrivals.last()? as f64;
    let mean_interval = (last - first) / (arrivals.len() - 1) as f64;
    let mut j = 0;
    let phase = (0..len)
        .map(|k| {
            let t = arrival_of(k);
            if t < first {
                return TAU * (t - first) / mean_interval;
            }
            if t >= last {
                return TAU * (arrivals.len() - 1) as f64 + TAU * (t - last) / mean_interval;
            }
            while arrivals[j + 1] as f64 <= t {
                j += 1;
            }
            let (a, b) = (arrivals[j] as f64, arrivals[j + 1] as f64);
            TAU * (j as f64 + (t - a) / (b - a))
        })
        .collect();
    Some(phase)
}

fn block_period(starts_ns: &[u64]) -> BlockPeriod {
    let mut periods: Vec<f64> = starts_ns
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64 * 1e-6)
        .collect();
    if periods.is_empty() {
        return BlockPeriod::default();
    }
    periods.sort_by(f64::total_cmp);
    let at = |q: f64| Some(periods[((periods.len() - 1) as f64 * q).round() as usize]);
    BlockPeriod {
        median_ms: at(0.5),
        p1_ms: at(0.01),
        p99_ms: at(0.99),
        max_ms: periods.last().copied(),
    }
}

fn block_time(fractions: &mut [f64]) -> BlockTime {
    if fractions.is_empty() {
        return BlockTime::default();
    }
    fractions.sort_by(f64::total_cmp);
    let at = |q: f64| fractions[((fractions.len() - 1) as f64 * q).round() as usize];
    BlockTime {
        blocks: fractions.len() as u64,
        median_fraction: Some(at(0.5)),
        p99_fraction: Some(at(0.99)),
        max_fraction: fractions.last().copied(),
        histogram: block_time_histogram(fractions),
    }
}

/// Most bins in a [`BlockTimeHistogram`]: a stall of many periods widens the bins instead.
const MAX_BLOCK_BINS: usize = 200;

/// The histogram of busy fractions: bins of the smallest 1-2-5 width ≥ 0.01 that covers the
/// largest fraction in at most [`MAX_BLOCK_BINS`] bins. Non-finite fractions are not counted.
fn block_time_histogram(fractions: &[f64]) -> Option<BlockTimeHistogram> {
    let max = fractions
        .iter()
        .copied()
        .filter(|f| f.is_finite())
        .fold(None, |m: Option<f64>, f| Some(m.map_or(f, |m| m.max(f))))?
        .max(0.0);
    let mut width = 0.01;
    let bins = |w: f64| (max / w).floor() as usize + 1;
    for step in [2.0, 2.5, 2.0].iter().cycle() {
        if bins(width) <= MAX_BLOCK_BINS {
            break;
        }
        width *= step;
    }
    let n = bins(width);
    let mut counts = vec![0u64; n];
    for f in fractions.iter().filter(|f| f.is_finite()) {
        counts[((f.max(0.0) / width).floor() as usize).min(n - 1)] += 1;
    }
    Some(BlockTimeHistogram {
        bin_width: width,
        edges: (0..=n).map(|i| i as f64 * width).collect(),
        counts,
    })
}

/// The `summary.json` of a run (a stable contract: fields are added, never renamed).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// entrain's version.
    pub version: String,
    /// The resolved profile (every default filled in).
    pub profile: serde_json::Value,
    /// Sample rate, Hz.
    pub sample_rate: f64,
    /// Frames per block.
    pub block: usize,
    /// Declared loop latency, samples.
    pub latency_samples: usize,
    /// Samples processed.
    pub samples: u64,
    /// How the run ended: `completed` or `interrupted`.
    pub ending: String,
    /// Pulses delivered.
    pub pulses: u64,
    /// Pulses refused by the limiter.
    pub suppressed_pulses: u64,
    /// Phase error of the pulses against ground truth.
    pub phase_error: PhaseError,
    /// Entrainment PLV before / during / after stimulation.
    pub plv: Plv,
    /// The same PLV in sliding windows (absent when nothing is stimulated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plv_series: Option<PlvSeries>,
    /// The rhythm's estimated amplitude before / during / after stimulation.
    pub amplitude: Amplitude,
    /// Telemetry records dropped (the recorder fell behind).
    pub dropped_records: u64,
    /// Samples whose frame was dropped, written to `signals.wav` as zeros.
    pub gap_frames: u64,
    /// Frames written to `nodes.f32` (absent when every node is not recorded) and how many of
    /// them are NaN because the engine dropped the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_frames: Option<u64>,
    /// Snapshots written as NaN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_gap_frames: Option<u64>,
    /// Blocks that took longer than their period.
    pub late_blocks: u64,
    /// Under/overruns reported by an audio backend (0 offline).
    pub xruns: u64,
    /// Commands applied.
    pub commands: u64,
    /// Commands clamped to the safety limits.
    pub clamped_commands: u64,
    /// When the observable first became non-finite (the model diverged), seconds; absent when
    /// it never did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diverged_at_s: Option<f64>,
    /// Where the ground truth is computed offline from the signal (a recording, or a plant
    /// without a phase) and the run outlasted the stretch kept for it: where it ends, seconds.
    /// Pulses after it have no ground truth. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground_truth_until_s: Option<f64>,
    /// Channels of `signals.wav`, in order.
    pub channels: Vec<String>,
    /// Processing time per block relative to its period.
    pub block_time: BlockTime,
    /// Wall time of the run, seconds.
    pub wall_time_s: f64,
    /// Simulated seconds per wall second.
    pub realtime_factor: f64,
    /// The estimator's settling time, seconds.
    pub estimator_settling_s: f64,
    /// Bytes of plant state and delay history.
    pub plant_state_bytes: usize,
    /// `offline` or `realtime`.
    pub driver: String,
    /// Real-time runs only: the device and its timing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime: Option<RealtimeFigures>,
}

/// What a real-time run adds to the summary.
#[derive(Clone, Debug, Serialize)]
pub struct RealtimeFigures {
    /// The output device's id.
    pub device: String,
    /// The sample format negotiated with the device.
    pub sample_format: String,
    /// Declared loop latency, ms.
    pub declared_latency_ms: f64,
    /// The block period the device should call at, ms.
    pub nominal_period_ms: f64,
    /// Measured time between callbacks.
    pub callback_period: BlockPeriod,
    /// Callbacks served.
    pub callbacks: u64,
    /// Frames of silence the device played before the engine's first sample (stream start-up);
    /// the device's recording of the run starts this many frames in.
    pub preroll_frames: u64,
    /// Whether the system refused real-time scheduling for the audio thread.
    pub realtime_denied: bool,
    /// How the device side ended: empty, or the device error.
    pub device_error: Option<String>,
    /// Samples the engine needed from the sound-card input before they arrived (read as 0).
    pub input_underruns: u64,
    /// Times the input link's delay moved (an xrun, drifting clocks) and was put back: each
    /// one moved the loop's latency until it was.
    pub input_realignments: u64,
    /// Samples skipped or held by those realignments.
    pub input_realigned_samples: u64,
}

/// Write `summary` as pretty JSON to `dir/summary.json`, whole or not at all.
pub fn write_summary(dir: &Path, summary: &Summary) -> Result<PathBuf, String> {
    let path = dir.join("summary.json");
    let text = serde_json::to_string_pretty(summary).map_err(|e| format!("summary.json: {e}"))?;
    write_whole(&path, (text + "\n").as_bytes())?;
    Ok(path)
}

/// Write `contents` to `path` so that a reader (or a restart after a kill) finds either the old
/// file or the whole new one, never a part: written beside it, then renamed over it. A
/// completed run's `summary.json` is what a resumed sweep trusts as done; written in place, a
/// kill between creating and filling it left an empty file and the run was done again.
pub fn write_whole(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, contents)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| format!("cannot write '{}': {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recording's run through the recorder with frames 3000..3500 of 6000 dropped (at 1 kHz,
    /// a clean 10 Hz cosine, truth from its 8–12 Hz band), and pulses arriving at `pulses`:
    /// the `true_phase` channel and each pulse's `true_deg` cell.
    fn offline_truth_with_a_gap(pulses: &[u64]) -> (Vec<f32>, Vec<String>) {
        let (truth, cells, _) = offline_truth(pulses, 3000..3500, MAX_EXTERNAL_SAMPLES);
        (truth, cells)
    }

    /// [`offline_truth_with_a_gap`] with frames `gap` dropped and the first `kept` samples kept
    /// for the truth; also the frames the summary says the truth covers.
    fn offline_truth(
        pulses: &[u64],
        gap: std::ops::Range<u64>,
        kept: usize,
    ) -> (Vec<f32>, Vec<String>, Option<u64>) {
        use ringbuf::traits::{Producer, Split};
        let fs = 1000.0;
        let info = RunInfo {
            sample_rate_hz: fs,
            block_frames: 10,
            latency_samples: 0,
            total_samples: 6000,
            stim_start_sample: 0,
            stim_stop_sample: 6000,
            record_nodes: Vec::new(),
            stimulates: true,
            settling_samples: 0,
            external_truth_band: Some((8.0, 12.0)),
            external_truth_samples: kept,
            plant_bytes: 0,
            node_snapshots: None,
        };
        let (mut push, telemetry) = ringbuf::HeapRb::<Record>::new(1 << 16).split();
        let dir = tempfile::tempdir().unwrap();
        let failed = Arc::new(AtomicBool::new(false));
        let recorder = Recorder::spawn(telemetry, dir.path(), &info, failed).unwrap();
        for sample in (0..6000).filter(|k| !gap.contains(k)) {
            if pulses.contains(&sample) {
                let pulse = Record::Pulse {
                    sample,
                    target: 0.0,
                    estimated: 0.0,
                    amplitude: 1.0,
                };
                push.try_push(pulse).unwrap();
            }
            let frame = Record::Frame {
                sample,
                observable: (TAU * 10.0 * sample as f64 / fs).cos() as f32,
                phase: 0.0,
                amplitude: 1.0,
                stimulus: 0.0,
                true_phase: f32::NAN,
                clock_phase: f32::NAN,
            };
            push.try_push(frame).unwrap();
        }
        let recorded = recorder.finish().unwrap();
        let mut wav = hound::WavReader::open(dir.path().join("signals.wav")).unwrap();
        let channels = usize::from(wav.spec().channels);
        let truth = wav.samples::<f32>().map(Result::unwrap);
        let truth = truth.skip(channels - 1).step_by(channels).collect();
        let events = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
        let cells = events
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(4).unwrap().to_string());
        (truth, cells.collect(), recorded.truth_frames)
    }

    #[test]
    fn dropped_frames_get_no_offline_truth_nor_do_pulses_near_them() {
        let (truth, cells) = offline_truth_with_a_gap(&[1500, 2900, 3700, 4500]);
        assert_eq!(truth.len(), 6000, "the gap is written as frames");
        // Two cycles of 8 Hz on either side of the gap are as untrusted as the gap itself.
        let margin = 250;
        assert!(truth[3000 - margin..3500 + margin]
            .iter()
            .all(|&t| t == 0.0));
        for k in (margin..3000 - margin).chain(3500 + margin..6000 - margin) {
            let e = wrap_angle(f64::from(truth[k]) - TAU * 10.0 * k as f64 / 1000.0);
            assert!(e.abs() < 0.05, "frame {k}: {} rad off", e);
        }
        // Pulses at 2900 and 3700 arrive near the gap: empty truth cells.
        let scored: Vec<bool> = cells.iter().map(|c| !c.is_empty()).collect();
        assert_eq!(scored, [true, false, false, true], "{cells:?}");
    }

    #[test]
    fn past_the_kept_stretch_of_a_long_recording_there_is_no_truth_and_the_summary_says_so() {
        let (truth, cells, until) = offline_truth(&[1500, 3900, 4500], 0..0, 4000);
        // The truth ends two cycles of 8 Hz before the cut, as before a gap.
        let end = 4000 - 250;
        assert_eq!(until, Some(end as u64));
        for (k, &t) in truth.iter().enumerate().take(end).skip(250) {
            let e = wrap_angle(f64::from(t) - TAU * 10.0 * k as f64 / 1000.0);
            assert!(e.abs() < 0.05, "frame {k}: {} rad off", e);
        }
        assert!(truth[end..].iter().all(|&t| t == 0.0));
        let scored: Vec<bool> = cells.iter().map(|c| !c.is_empty()).collect();
        assert_eq!(scored, [true, false, false], "{cells:?}");
        // A run within the kept stretch reports no limit.
        assert_eq!(offline_truth(&[], 0..0, 6000).2, None);
    }

    /// A "file" that keeps each write handed to it as one chunk.
    #[derive(Default)]
    struct Chunks(Vec<Vec<u8>>);

    impl Write for Chunks {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A kill can only cut the file between the writes handed to it: every one of them must end
    /// a row, even when rows of many lengths keep spilling a small buffer, and one longer than
    /// the buffer goes through whole.
    #[test]
    fn events_rows_reach_the_file_whole() {
        let mut writer = RowWriter::with_capacity(64, Chunks::default());
        let mut expected = String::new();
        for k in 0..500u64 {
            let cells = if k == 250 { 40 } else { 1 + k % 7 };
            let row = writer.row();
            for c in 0..cells {
                let _ = write!(row, "{},", k * 1000 + c);
            }
            expected.push_str(row);
            expected.push('\n');
            writer.end_row().unwrap();
        }
        writer.flush().unwrap();
        let chunks = &writer.out.get_ref().0;
        assert!(
            chunks.len() > 100,
            "the buffer spilled {} times",
            chunks.len()
        );
        for chunk in chunks {
            assert_eq!(
                chunk.last(),
                Some(&b'\n'),
                "a write ended mid-row: {:?}",
                String::from_utf8_lossy(chunk)
            );
        }
        assert_eq!(chunks.concat(), expected.as_bytes());
    }

    #[test]
    fn a_whole_write_replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        std::fs::write(&path, "old").unwrap();
        write_whole(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new contents");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["summary.json"]);
        let missing = dir.path().join("no/such/folder/summary.json");
        let err = write_whole(&missing, b"x").unwrap_err();
        assert!(err.contains("no/such/folder/summary.json"), "{err}");
    }

    #[test]
    fn block_time_histogram_counts_every_block_and_covers_the_largest() {
        let mut fractions: Vec<f64> = (0..1000).map(|i| 0.05 + 0.3 * (i as f64 / 999.0)).collect();
        fractions.push(1.37); // one late block
        let time = block_time(&mut fractions);
        let h = time.histogram.expect("blocks were measured");
        assert_eq!(h.counts.iter().sum::<u64>(), time.blocks);
        assert_eq!(h.edges.len(), h.counts.len() + 1);
        assert_eq!(h.edges[0], 0.0);
        assert!((h.bin_width - 0.01).abs() < 1e-12, "{}", h.bin_width);
        let max = time.max_fraction.unwrap();
        assert!(*h.edges.last().unwrap() > max, "the last bin holds the max");
        let last = h.counts.len() - 1;
        assert_eq!(h.counts[last], 1, "the late block is alone in the last bin");
        assert!(h.edges[last] <= max);
        assert!(h
            .edges
            .windows(2)
            .all(|w| (w[1] - w[0] - h.bin_width).abs() < 1e-9));
        // Counting agrees with a direct count of one bin.
        let (lo, hi) = (h.edges[10], h.edges[11]);
        let direct = fractions.iter().filter(|&&f| f >= lo && f < hi).count() as u64;
        assert_eq!(h.counts[10], direct);
    }

    #[test]
    fn a_stall_widens_the_bins_instead_of_multiplying_them() {
        let mut fractions = vec![0.1; 99];
        fractions.push(57.0);
        let time = block_time(&mut fractions);
        let h = time.histogram.unwrap();
        assert!(h.counts.len() <= MAX_BLOCK_BINS, "{} bins", h.counts.len());
        assert!(
            (h.bin_width - 0.5).abs() < 1e-12,
            "1-2-5 steps: {}",
            h.bin_width
        );
        assert_eq!(h.counts.iter().sum::<u64>(), 100);
        assert!(*h.edges.last().unwrap() > 57.0);
        assert!(block_time(&mut []).histogram.is_none());
        // Exactly on an edge still lands inside.
        let h = block_time_histogram(&[0.0, 0.5]).unwrap();
        assert_eq!(h.counts.iter().sum::<u64>(), 2);
        assert!(*h.edges.last().unwrap() > 0.5);
    }
}
