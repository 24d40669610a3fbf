//! Profiles: the TOML description of a whole experiment, its validation and `--set` overrides.
//!
//! Owns: the section types (`[run]`, `[model]`, `[network]`, `[sensor]`, `[estimator]`,
//! `[stimulation]`, `[safety]`, `[output]`), loading with errors that name the file, line and key
//! and say what is expected, and the resolved [`Profile`] every other part is built from.
//! May call: [`crate::model`], [`crate::integrate`] (their parameter types), and
//! [`crate::estimate`] and [`crate::stim`], whose constructors it uses to build — and so to
//! validate — the estimator, the policy and the limiter a profile describes, and
//! [`crate::io::audio`] for the names of the audio hosts. Its I/O: reading a profile file
//! ([`read`]) and the headers of the recordings a profile names.
//!
//! Names carry units (`duration_s`, `freq_hz`, `target_phase_deg`). Every value can be
//! overridden with `--set section.key=value` (the value is parsed as TOML; a bare word is taken as
//! a string).

use crate::estimate::{
    ArBurg, ArBurgConfig, BandpassHilbert, BandpassHilbertConfig, Echt, EchtConfig, Etp, EtpConfig,
    KalmanConfig, KalmanOscillator, PhaseEstimator, Pll, PllConfig,
};
use crate::integrate::Scheme;
use crate::model::baier_grid::BaierGridParams;
use crate::model::harmonic::HarmonicParams;
use crate::model::horn::HornParams;
use crate::model::jansen_rit::JansenRitParams;
use crate::model::mpr::MprParams;
use crate::model::network::NetworkSpec;
use crate::model::network::Topology;
use crate::model::rate::RateParams;
use crate::model::sl_dn_field::SlDnFieldParams;
use crate::model::wilson_cowan::WilsonCowanParams;
use crate::model::HistoryPrecision;
use crate::model::{KuramotoParams, ModelKind, ParamSpec, StuartLandauParams};
use crate::stim::{
    PeriodicConfig, PeriodicPulses, PhaseLockedConfig, PhaseLockedPulses, Policy, PulseShape,
    SafetyLimits, Sham, TacsConfig, TacsSine,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// The quickstart profile, embedded so that `entrain run` works with no file at all.
pub const QUICKSTART: &str = include_str!("../profiles/quickstart.toml");

/// A validated experiment description with every default filled in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Profile {
    /// `[run]`: clock, length, seed, loop latency.
    pub run: RunSection,
    /// `[model]`: the plant.
    pub model: ModelSection,
    /// `[network]`: coupling between the plant's nodes.
    pub network: NetworkSection,
    /// `[sensor]`: what the estimator sees.
    pub sensor: SensorSection,
    /// `[estimator]`: the causal phase estimator.
    pub estimator: EstimatorSection,
    /// `[stimulation]`: the policy and where it stimulates.
    pub stimulation: StimulationSection,
    /// `[safety]`: the hard limits enforced by the limiter.
    pub safety: SafetySection,
    /// `[output]`: the output channel map and what the recorder writes besides the standard
    /// outputs.
    pub output: OutputSection,
    /// `[audio]`: device selection for real-time runs.
    pub audio: AudioSection,
    /// `[trigger]` (optional): a serial TTL trigger line, one byte per delivered pulse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<SerialTriggerConfig>,
}

/// `[run]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// The sample clock, Hz.
    pub sample_rate_hz: f64,
    /// Frames per processing block (the audio buffer size in real time).
    #[serde(default = "default_block")]
    pub block_frames: usize,
    /// Length of the run, seconds.
    pub duration_s: f64,
    /// Seed of every random draw (parameters, noise): same profile and seed, same output.
    #[serde(default)]
    pub seed: u64,
    /// Declared loop latency, ms: the stimulus reaches the plant this long after emission and the
    /// estimator predicts this far ahead. Rounded to whole samples.
    pub latency_ms: f64,
}

fn default_block() -> usize {
    64
}

impl RunSection {
    /// The declared loop latency in whole samples.
    pub fn latency_samples(&self) -> usize {
        (self.latency_ms * 1e-3 * self.sample_rate_hz).round() as usize
    }

    /// Samples in the run.
    pub fn total_samples(&self) -> u64 {
        (self.duration_s * self.sample_rate_hz).round() as u64
    }
}

/// Most node values per second `nodes.f32` may take (80 MB/s of f32).
const MAX_NODE_VALUES_PER_S: f64 = 2e7;

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSection {
    /// The plant kind.
    pub kind: ModelKind,
    /// Number of nodes.
    pub nodes: usize,
    /// Integration scheme.
    pub integrator: Scheme,
    /// Noise amplitude per node: white noise in the model's noise units per √s (complex for
    /// SL/HO; each model's doc says which variable it drives), or, for pink and
    /// Ornstein–Uhlenbeck noise, the SD of the input added to each node's forcing (model input
    /// units).
    pub noise_sd: f64,
    /// `white` (integrated as an SDE), `pink` (a streaming 1/f source, unit variance from
    /// `pink_lowest_hz` up to the plant's Nyquist) or `ou` (Ornstein–Uhlenbeck, unit variance,
    /// correlation time `ou_tau_s`); the coloured ones are scaled by `noise_sd` and added to the
    /// forcing, so they enter where the stimulus does.
    pub noise_color: NoiseColor,
    /// Lowest corner of the pink noise's 1/f band, Hz.
    pub pink_lowest_hz: f64,
    /// Correlation time of the Ornstein–Uhlenbeck noise, s (autocorrelation `exp(−lag/τ)`).
    pub ou_tau_s: f64,
    /// Audio samples per model step: the plant steps at `sample_rate_hz / samples_per_step`,
    /// its forcing is the mean of the stimulus over those samples and its observable is held.
    pub samples_per_step: usize,
    /// Model input units per stimulus unit (the electrode/field coupling constant).
    pub forcing_gain: f64,
    /// `[model.params]`, by kind.
    pub params: ModelParams,
}

impl ModelSection {
    /// The scheme the plant is stepped with: `integrator`'s name, except for HORN, which
    /// always takes brainmass's symplectic Euler step.
    pub fn scheme_name(&self) -> &'static str {
        match self.kind {
            ModelKind::Horn => "symplectic_euler",
            _ => self.integrator.name(),
        }
    }

    /// The model step, seconds.
    pub fn dt(&self, sample_rate_hz: f64) -> f64 {
        self.samples_per_step as f64 / sample_rate_hz
    }
}

/// The colour of the plant's noise (`[model] noise_color`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseColor {
    /// White noise integrated with the model (Euler–Maruyama / stochastic Heun).
    #[default]
    White,
    /// 1/f noise added to the forcing input.
    Pink,
    /// Ornstein–Uhlenbeck noise added to the forcing input.
    Ou,
}

/// `[model.params]` for each kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ModelParams {
    /// `kind = "stuart_landau"`.
    StuartLandau(StuartLandauParams),
    /// `kind = "kuramoto"`.
    Kuramoto(KuramotoParams),
    /// `kind = "harmonic"`.
    Harmonic(HarmonicParams),
    /// `kind = "sl_dn_field"`.
    SlDnField(SlDnFieldParams),
    /// `kind = "rate"`.
    Rate(RateParams),
    /// `kind = "wilson_cowan"`.
    WilsonCowan(WilsonCowanParams),
    /// `kind = "baier_grid"`.
    BaierGrid(BaierGridParams),
    /// `kind = "jansen_rit"`.
    JansenRit(JansenRitParams),
    /// `kind = "mpr"`.
    Mpr(Box<MprParams>),
    /// `kind = "horn"`.
    Horn(HornParams),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelRaw {
    kind: ModelKind,
    #[serde(default = "one_usize")]
    nodes: usize,
    #[serde(default = "default_scheme")]
    integrator: Scheme,
    #[serde(default)]
    noise_sd: f64,
    #[serde(default)]
    noise_color: NoiseColor,
    #[serde(default = "default_pink_lowest")]
    pink_lowest_hz: f64,
    #[serde(default = "default_ou_tau")]
    ou_tau_s: f64,
    #[serde(default = "one_usize")]
    samples_per_step: usize,
    #[serde(default = "one_f64")]
    forcing_gain: f64,
    #[serde(default)]
    params: toml::Table,
}

fn one_usize() -> usize {
    1
}
fn default_pink_lowest() -> f64 {
    0.5
}
/// 10 ms: the order of the synaptic and membrane time constants that colour neural input.
fn default_ou_tau() -> f64 {
    0.01
}
fn one_f64() -> f64 {
    1.0
}
fn default_scheme() -> Scheme {
    Scheme::Heun
}

/// `[network]`: the topology and its coupling gain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkSection {
    /// Global coupling gain (G for SL/HO, K for Kuramoto), 1/s.
    pub gain: f64,
    /// How the delayed coupling's history stores node values: `"f64"` (exact, the default) or
    /// `"f32"` (half the memory traffic of a large delayed network, each delayed value rounded
    /// to single precision).
    pub history_precision: HistoryPrecision,
    /// Topology, normalisation and delays.
    #[serde(flatten)]
    pub spec: NetworkSpec,
}

/// `[sensor]`: the signal the estimator sees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSection {
    /// A node index, or `"mean"` for the network's mean observable (and mean-field phase).
    #[serde(default)]
    pub node: SensorNode,
    /// White measurement noise added to the observable (SD, observable units).
    #[serde(default)]
    pub noise_sd: f64,
    /// A recording (WAV, integer or float, at the run's sample rate) that replaces the plant as
    /// the sensor's source, played sample by sample from its start; a path relative to the
    /// working directory. The ground truth is then the offline non-causal estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<std::path::PathBuf>,
    /// The recording's channel the sensor reads (0-based).
    #[serde(default)]
    pub channel: usize,
    /// Play the recording again from its start when it ends; otherwise the run must not be
    /// longer than the recording.
    #[serde(default, rename = "loop")]
    pub loop_file: bool,
}

impl SensorSection {
    /// Whether the sensor reads something other than the plant (a recording or a sound card).
    pub fn external(&self, audio: &AudioSection) -> bool {
        self.file.is_some() || audio.has_input()
    }
}

/// Which node the sensor reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "a node index (0, 1, …) or \"mean\"")]
pub enum SensorNode {
    /// One node.
    Index(usize),
    /// The mean over all nodes.
    Mean(MeanWord),
}

/// The word `mean`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeanWord {
    /// `"mean"`.
    Mean,
}

impl Default for SensorNode {
    fn default() -> Self {
        SensorNode::Index(0)
    }
}

/// `[estimator]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EstimatorSection {
    /// Causal band-pass (biquad cascade) + quadrature stage.
    BandpassHilbert(BandpassHilbertSpec),
    /// Endpoint-corrected Hilbert transform (Schreglmann et al. 2021), calibrated.
    Echt(EchtSpec),
    /// Burg AR forward prediction (Zrenner et al. 2018; the Open Ephys phase calculator).
    ArBurg(ArBurgSpec),
    /// Phase-locked loop (sleep slow-oscillation stimulation).
    Pll(PllSpec),
    /// Educated temporal prediction (Shirinpour et al. 2020).
    Etp(EtpSpec),
    /// State-space oscillator model (Wodeyar et al. 2021, SSPE) fitted on a training recording.
    Kalman(KalmanSpec),
}

/// `[estimator] kind = "pll"`: unset keys take [`PllConfig`]'s defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PllSpec {
    /// Lower edge of the band, Hz.
    pub low_hz: f64,
    /// Upper edge of the band, Hz.
    pub high_hz: f64,
    /// Loop natural frequency, Hz (default: 1 Hz or `low_hz`/5, the smaller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_bandwidth_hz: Option<f64>,
    /// Loop damping ζ (default 0.707).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damping: Option<f64>,
    /// Band-pass sections (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<usize>,
}

/// `[estimator] kind = "etp"`: unset keys take [`EtpConfig`]'s defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtpSpec {
    /// Lower edge of the band, Hz.
    pub low_hz: f64,
    /// Upper edge of the band, Hz.
    pub high_hz: f64,
    /// Seconds over which the cycle length is learned first (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_s: Option<f64>,
    /// Band-pass sections (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<usize>,
    /// Cycles over which the learned length keeps adapting (default 10; 0 freezes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapt_cycles: Option<f64>,
}

/// `[estimator] kind = "kalman"`: the model is fitted, at build time, on the first `train_s`
/// seconds of `training_file` (a WAV recording of the same signal at the run's sample rate,
/// e.g. a resting baseline; path relative to the working directory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KalmanSpec {
    /// Lower edge of the rhythm's band, Hz (the offline ground truth's band).
    pub low_hz: f64,
    /// Upper edge of the band, Hz.
    pub high_hz: f64,
    /// The training recording.
    pub training_file: std::path::PathBuf,
    /// Its channel (0-based; default `sensor.channel` when `training_file` is the sensor's
    /// file, else 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_channel: Option<usize>,
    /// Oscillators in the model, 1–4 (default 3: the rhythm plus its neighbours, which soak up
    /// background and made the fit far better on the real recordings).
    #[serde(default = "three")]
    pub oscillators: usize,
    /// Seconds of the recording to fit on (default 10).
    #[serde(default = "ten")]
    pub train_s: f64,
}

fn three() -> usize {
    3
}
fn ten() -> f64 {
    10.0
}

/// `[estimator] kind = "echt"`: unset keys take [`EchtConfig::with_band`]'s defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchtSpec {
    /// Lower edge of the band, Hz.
    pub low_hz: f64,
    /// Upper edge of the band, Hz.
    pub high_hz: f64,
    /// Analysis window, seconds (default: 1 s or 4 periods of `low_hz`, the longer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
    /// Samples between window updates (default: 10 ms of samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop_samples: Option<usize>,
    /// Remove the endpoint bias (default true).
    #[serde(default = "yes")]
    pub calibrate: bool,
    /// Butterworth band-pass order (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_order: Option<usize>,
}

/// `[estimator] kind = "ar_burg"`: unset keys take [`ArBurgConfig::with_band`]'s defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArBurgSpec {
    /// Lower edge of the band, Hz.
    pub low_hz: f64,
    /// Upper edge of the band, Hz.
    pub high_hz: f64,
    /// Fitted window, seconds (default: 0.5 s or 6 periods of `low_hz`, the longer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
    /// AR order (default: 40 ms at the internal rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<usize>,
    /// Forecast length, seconds (default: half a period of `low_hz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_s: Option<f64>,
    /// Input samples between refits (default: 10 ms of samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_every_samples: Option<usize>,
}

fn yes() -> bool {
    true
}

/// `[estimator] kind = "bandpass_hilbert"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandpassHilbertSpec {
    /// Lower edge of the band, Hz.
    pub low_hz: f64,
    /// Upper edge of the band, Hz.
    pub high_hz: f64,
    /// Biquad sections in the band-pass cascade (sharper and slower with more).
    #[serde(default = "default_sections")]
    pub sections: usize,
    /// Time constant of the frequency estimate's smoothing, seconds.
    #[serde(default = "default_freq_smoothing")]
    pub freq_smoothing_s: f64,
}

fn default_sections() -> usize {
    2
}
fn default_freq_smoothing() -> f64 {
    0.2
}

/// `[stimulation]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StimulationSection {
    /// Stimulation starts at this time, seconds (the "before" window precedes it).
    pub start_s: f64,
    /// Stimulation stops (ramps down) at this time, seconds; `None`: at the end of the run.
    pub stop_s: Option<f64>,
    /// Which nodes receive the stimulus as forcing.
    pub nodes: StimNodes,
    /// Runtime commands at set times (`commands = [{ at_s = 30.0, command = "stop" }, …]`),
    /// in time order: on/off blocks, a target phase that changes mid-run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<ScheduledCommand>,
    /// The policy.
    #[serde(flatten)]
    pub policy: PolicySpec,
}

/// A runtime stimulation command at a set time (`[stimulation] commands`), applied at the
/// first block boundary at or after it, as a command typed during a real-time run would be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledCommand {
    /// When, seconds from the start of the run.
    pub at_s: f64,
    /// The command as typed: `stop`, `start`, `phase DEG`, `amplitude A`.
    pub command: String,
}

impl ScheduledCommand {
    /// The command (checked when the profile was loaded).
    pub fn parsed(&self) -> Result<crate::stim::StimCommand, String> {
        self.command.parse()
    }
}

/// The nodes that receive the forcing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "\"all\", a list of node indices, or a disc on a grid plant such as \
    { row = 8, col = 8, radius = 2.0 }"
)]
pub enum StimNodes {
    /// Every node.
    All(AllWord),
    /// These nodes.
    List(Vec<usize>),
    /// The nodes of a grid plant within `radius` of a centre.
    Disc(Disc),
}

/// A disc of grid nodes: `(r − row)² + (c − col)² ≤ radius²`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disc {
    /// Centre row (0-based).
    pub row: usize,
    /// Centre column (0-based).
    pub col: usize,
    /// Radius, grid units (≥ 0; 0 is the centre node alone).
    pub radius: f64,
}

impl Disc {
    /// The nodes of a `rows × cols` grid inside the disc, in node order (`r · cols + c`).
    pub fn nodes(&self, rows: usize, cols: usize) -> Vec<usize> {
        let mut inside = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                let (dr, dc) = (r as f64 - self.row as f64, c as f64 - self.col as f64);
                if dr * dr + dc * dc <= self.radius * self.radius + 1e-9 {
                    inside.push(r * cols + c);
                }
            }
        }
        inside
    }
}

/// The word `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllWord {
    /// `"all"`.
    All,
}

/// The stimulation policy and its parameters (`[stimulation] kind`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicySpec {
    /// Pulses locked to a target phase of the estimated rhythm.
    PhaseLocked(PhaseLockedSpec),
    /// An open-loop periodic pulse train.
    Periodic(PeriodicSpec),
    /// A transcranial-AC-style sine.
    Tacs(TacsSpec),
    /// Sham: nothing is delivered.
    None,
}

/// Pulse polarity pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// One phase of `+amplitude`.
    Monophasic,
    /// `+amplitude` then `−amplitude`, each `width_s` long: charge balanced.
    Biphasic,
}

/// `kind = "phase_locked"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseLockedSpec {
    /// Phase at which pulses should reach the plant, degrees (0 = peak, 180 = trough).
    pub target_phase_deg: f64,
    /// Minimum time between pulse onsets, seconds.
    pub min_interval_s: f64,
    /// Pulses fire only while the estimated amplitude is at least this (observable units).
    #[serde(default)]
    pub amplitude_threshold: f64,
    /// Width of each pulse phase, seconds.
    pub width_s: f64,
    /// Pulse amplitude, stimulus units.
    pub amplitude: f64,
    /// Monophasic or charge-balanced biphasic.
    #[serde(default = "default_shape")]
    pub shape: Shape,
}

/// `kind = "periodic"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodicSpec {
    /// Pulse rate, Hz.
    pub rate_hz: f64,
    /// Width of each pulse phase, seconds.
    pub width_s: f64,
    /// Pulse amplitude, stimulus units.
    pub amplitude: f64,
    /// Monophasic (rectangular pulses) or biphasic.
    #[serde(default = "default_shape")]
    pub shape: Shape,
}

/// `kind = "tacs"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TacsSpec {
    /// Frequency, Hz.
    pub freq_hz: f64,
    /// Peak amplitude, stimulus units.
    pub amplitude: f64,
    /// Phase at t = 0, degrees (cosine convention: 0 = peak).
    #[serde(default)]
    pub phase_deg: f64,
}

fn default_shape() -> Shape {
    Shape::Biphasic
}

/// `[safety]`: hard limits the limiter enforces on every output and on the forcing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetySection {
    /// Peak |output|, stimulus units.
    pub max_amplitude: f64,
    /// Maximum pulse onsets per second.
    pub max_pulse_rate_hz: f64,
    /// Maximum fraction of non-zero output samples in any `duty_window_s` window, (0, 1].
    pub max_duty_cycle: f64,
    /// Window of the duty-cycle limit, seconds.
    #[serde(default = "one_f64")]
    pub duty_window_s: f64,
    /// Active charge recovery after every pulse episode.
    #[serde(default)]
    pub charge_balance: bool,
    /// Ramp-up at start and ramp-down at stop, seconds.
    #[serde(default = "default_ramp")]
    pub ramp_s: f64,
}

fn default_ramp() -> f64 {
    0.01
}

/// `[output]`: what each output channel carries, and what the recorder writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// What each output channel carries, in order (the device gets this many channels).
    #[serde(default = "default_channels")]
    pub channels: Vec<ChannelSignal>,
    /// Gain per channel (output units per signal unit); default 1 for every channel. A
    /// stimulation channel is clamped to `gain · safety.max_amplitude` after its gain, so the
    /// limit holds on the wire; monitor channels are clamped to the converter's ±1.
    #[serde(default)]
    pub gains: Vec<f64>,
    /// Width of the trigger marker pulse, ms.
    #[serde(default = "one_f64")]
    pub trigger_width_ms: f64,
    /// Nodes whose observable is written to `signals.wav` as extra channels (`node_<i>`).
    #[serde(default)]
    pub record_nodes: Vec<usize>,
    /// Record every node's observable this often into `nodes.f32` (layout in `nodes.json`),
    /// Hz; 0 = off. Taken every `round(sample_rate_hz / nodes_rate_hz)` samples.
    #[serde(default)]
    pub nodes_rate_hz: f64,
    /// Telemetry queue capacity, seconds of samples: the recorder may fall this far behind
    /// before records are dropped (and counted).
    #[serde(default = "one_f64")]
    pub telemetry_buffer_s: f64,
}

/// What an output channel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelSignal {
    /// The limited stimulus waveform (stimulus units × gain).
    Stimulus,
    /// A full-scale marker pulse (`trigger_width_ms`) at every delivered pulse onset, for a
    /// stimulator's TTL/analog trigger input.
    Trigger,
    /// The sensor's signal (plant observable or audio input), for monitoring.
    Observable,
    /// The estimated phase, scaled to ±1 (= ±180°).
    Phase,
    /// Nothing.
    Silence,
}

fn default_channels() -> Vec<ChannelSignal> {
    vec![ChannelSignal::Stimulus]
}

impl OutputSection {
    /// The gain of channel `i` (1 where `gains` is shorter).
    pub fn gain(&self, i: usize) -> f64 {
        self.gains.get(i).copied().unwrap_or(1.0)
    }
}

impl Default for OutputSection {
    fn default() -> Self {
        Self {
            channels: default_channels(),
            gains: Vec::new(),
            trigger_width_ms: 1.0,
            record_nodes: Vec::new(),
            nodes_rate_hz: 0.0,
            telemetry_buffer_s: 1.0,
        }
    }
}

/// Serial trigger settings (a profile's `[trigger]` section).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialTriggerConfig {
    /// The serial port, e.g. `/dev/ttyACM0` or `COM3`.
    pub port: String,
    /// Baud rate, bit/s (default 115200). USB CDC boards ignore it.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// The byte written for each pulse (default 1).
    #[serde(default = "default_byte")]
    pub byte: u8,
}

fn default_baud() -> u32 {
    115_200
}

fn default_byte() -> u8 {
    1
}

/// `[audio]` (optional): the sound card (or DC-coupled audio interface) a real-time run uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSection {
    /// Audio host: `auto` (the platform default), `alsa`, or `jack` (when built with JACK).
    #[serde(default = "default_host")]
    pub host: String,
    /// Output device: its id (as `entrain devices` prints it), its name, or its index in that
    /// list; empty for the host's default device.
    #[serde(default)]
    pub output_device: String,
    /// Input device whose signal replaces the plant as the sensor's source (e.g. an EEG
    /// amplifier's analog out): its id or name, `default` for the host's, empty for none.
    /// Real-time runs only; the ground truth is then the offline non-causal estimate.
    #[serde(default)]
    pub input_device: String,
    /// The input channel the sensor reads (0-based).
    #[serde(default)]
    pub input_channel: usize,
    /// The fixed offset of the input link, in blocks: the input reaches the engine this many
    /// blocks after capture (plus the rig's own latency). Include it in `[run] latency_ms`.
    #[serde(default = "default_input_offset")]
    pub input_offset_blocks: usize,
}

fn default_input_offset() -> usize {
    2
}

impl AudioSection {
    /// Whether a sound-card input replaces the plant as the sensor's source.
    pub fn has_input(&self) -> bool {
        !self.input_device.is_empty()
    }
}

fn default_host() -> String {
    "auto".into()
}

impl Default for AudioSection {
    fn default() -> Self {
        Self {
            host: default_host(),
            output_device: String::new(),
            input_device: String::new(),
            input_channel: 0,
            input_offset_blocks: default_input_offset(),
        }
    }
}

impl EstimatorSection {
    /// The estimator's pass band, Hz (also the band of the offline ground truth).
    pub fn band(&self) -> (f64, f64) {
        match self {
            EstimatorSection::BandpassHilbert(spec) => (spec.low_hz, spec.high_hz),
            EstimatorSection::Echt(spec) => (spec.low_hz, spec.high_hz),
            EstimatorSection::ArBurg(spec) => (spec.low_hz, spec.high_hz),
            EstimatorSection::Pll(spec) => (spec.low_hz, spec.high_hz),
            EstimatorSection::Etp(spec) => (spec.low_hz, spec.high_hz),
            EstimatorSection::Kalman(spec) => (spec.low_hz, spec.high_hz),
        }
    }

    /// Build the estimator for `sample_rate_hz`, predicting `predict_samples` ahead.
    pub fn build(
        &self,
        sample_rate_hz: f64,
        predict_samples: f64,
    ) -> Result<Box<dyn PhaseEstimator>, String> {
        match self {
            EstimatorSection::BandpassHilbert(spec) => {
                let config = BandpassHilbertConfig {
                    low_hz: spec.low_hz,
                    high_hz: spec.high_hz,
                    sections: spec.sections,
                    freq_smoothing_s: spec.freq_smoothing_s,
                };
                Ok(Box::new(BandpassHilbert::new(
                    &config,
                    sample_rate_hz,
                    predict_samples,
                )?))
            }
            EstimatorSection::Echt(spec) => {
                let mut config = EchtConfig::with_band(spec.low_hz, spec.high_hz, sample_rate_hz);
                config.calibrate = spec.calibrate;
                if let Some(v) = spec.window_s {
                    config.window_s = v;
                }
                if let Some(v) = spec.hop_samples {
                    config.hop_samples = v;
                }
                if let Some(v) = spec.filter_order {
                    config.filter_order = v;
                }
                Ok(Box::new(Echt::new(
                    &config,
                    sample_rate_hz,
                    predict_samples,
                )?))
            }
            EstimatorSection::ArBurg(spec) => {
                let mut config = ArBurgConfig::with_band(spec.low_hz, spec.high_hz, sample_rate_hz);
                if let Some(v) = spec.window_s {
                    config.window_s = v;
                }
                if let Some(v) = spec.order {
                    config.order = v;
                }
                if let Some(v) = spec.forecast_s {
                    config.forecast_s = v;
                }
                if let Some(v) = spec.refit_every_samples {
                    config.refit_every_samples = v;
                }
                Ok(Box::new(ArBurg::new(
                    &config,
                    sample_rate_hz,
                    predict_samples,
                )?))
            }
            EstimatorSection::Pll(spec) => {
                let defaults = PllConfig::default();
                let config = PllConfig {
                    low_hz: spec.low_hz,
                    high_hz: spec.high_hz,
                    loop_bandwidth_hz: spec
                        .loop_bandwidth_hz
                        .unwrap_or((spec.low_hz / 5.0).min(defaults.loop_bandwidth_hz)),
                    damping: spec.damping.unwrap_or(defaults.damping),
                    sections: spec.sections.unwrap_or(defaults.sections),
                };
                Ok(Box::new(Pll::new(
                    &config,
                    sample_rate_hz,
                    predict_samples,
                )?))
            }
            EstimatorSection::Etp(spec) => {
                let defaults = EtpConfig::default();
                let config = EtpConfig {
                    low_hz: spec.low_hz,
                    high_hz: spec.high_hz,
                    train_s: spec.train_s.unwrap_or(defaults.train_s),
                    sections: spec.sections.unwrap_or(defaults.sections),
                    adapt_cycles: spec.adapt_cycles.unwrap_or(defaults.adapt_cycles),
                };
                Ok(Box::new(Etp::new(
                    &config,
                    sample_rate_hz,
                    predict_samples,
                )?))
            }
            EstimatorSection::Kalman(spec) => {
                let training = read_training(
                    &spec.training_file,
                    spec.training_channel.unwrap_or(0),
                    sample_rate_hz,
                )?;
                let config = KalmanConfig {
                    freq_hz: (spec.low_hz * spec.high_hz).sqrt(),
                    oscillators: spec.oscillators,
                    train_s: spec.train_s,
                };
                Ok(Box::new(KalmanOscillator::fit(
                    &training,
                    sample_rate_hz,
                    &config,
                    predict_samples,
                )?))
            }
        }
    }
}

/// The Kalman model's training recording (`channel` of it), which must be at the run's rate.
fn read_training(
    path: &std::path::Path,
    channel: usize,
    sample_rate_hz: f64,
) -> Result<Vec<f64>, String> {
    let wav = crate::wav::read_channel(path, channel).map_err(|e| match e {
        crate::wav::ReadError::Channel(e) => format!("training_channel: {e}"),
        crate::wav::ReadError::File(e) => format!("training_file: {e}"),
    })?;
    if f64::from(wav.sample_rate) != sample_rate_hz {
        return Err(format!(
            "training_file: {} is at {} Hz but the run at {sample_rate_hz} Hz; record the \
             baseline at the run's rate",
            path.display(),
            wav.sample_rate
        ));
    }
    Ok(wav.samples)
}

fn pulse(width_s: f64, amplitude: f64, shape: Shape) -> PulseShape {
    PulseShape {
        width_s,
        amplitude,
        biphasic: shape == Shape::Biphasic,
    }
}

impl PolicySpec {
    /// Whether a runtime `command` means anything to this policy: a target phase only to
    /// phase-locked pulses, an amplitude to every policy but sham; else why not.
    pub fn takes(&self, command: &crate::stim::StimCommand) -> Result<(), String> {
        use crate::stim::StimCommand;
        match (command, self) {
            (StimCommand::Stop | StimCommand::Start, _)
            | (StimCommand::SetTargetPhaseDeg(_), PolicySpec::PhaseLocked(_))
            | (
                StimCommand::SetAmplitude(_),
                PolicySpec::PhaseLocked(_) | PolicySpec::Periodic(_) | PolicySpec::Tacs(_),
            ) => Ok(()),
            (StimCommand::SetTargetPhaseDeg(_), _) => Err(
                "only phase-locked pulses (stimulation.kind = \"phase_locked\") have a target phase"
                    .into(),
            ),
            (StimCommand::SetAmplitude(_), _) => Err("sham stimulation has no amplitude".into()),
        }
    }

    /// The pulse of a pulse policy (phase-locked or periodic); `None` for tACS and sham.
    pub fn pulse(&self) -> Option<PulseShape> {
        match self {
            PolicySpec::PhaseLocked(p) => Some(pulse(p.width_s, p.amplitude, p.shape)),
            PolicySpec::Periodic(p) => Some(pulse(p.width_s, p.amplitude, p.shape)),
            PolicySpec::Tacs(_) | PolicySpec::None => None,
        }
    }

    /// Build the policy for `sample_rate_hz`.
    pub fn build(&self, sample_rate_hz: f64) -> Result<Box<dyn Policy>, String> {
        let fs = sample_rate_hz;
        Ok(match self {
            PolicySpec::PhaseLocked(p) => Box::new(PhaseLockedPulses::new(
                &PhaseLockedConfig {
                    target_phase_deg: p.target_phase_deg,
                    min_interval_s: p.min_interval_s,
                    amplitude_threshold: p.amplitude_threshold,
                    pulse: pulse(p.width_s, p.amplitude, p.shape),
                },
                fs,
            )?),
            PolicySpec::Periodic(p) => Box::new(PeriodicPulses::new(
                &PeriodicConfig {
                    rate_hz: p.rate_hz,
                    pulse: pulse(p.width_s, p.amplitude, p.shape),
                },
                fs,
            )?),
            PolicySpec::Tacs(p) => Box::new(TacsSine::new(
                &TacsConfig {
                    freq_hz: p.freq_hz,
                    amplitude: p.amplitude,
                    phase_deg: p.phase_deg,
                },
                fs,
            )?),
            PolicySpec::None => Box::new(Sham),
        })
    }
}

impl SafetySection {
    /// The limiter's bounds.
    pub fn limits(&self) -> SafetyLimits {
        SafetyLimits {
            max_amplitude: self.max_amplitude,
            max_pulse_rate_hz: self.max_pulse_rate_hz,
            max_duty_cycle: self.max_duty_cycle,
            duty_window_s: self.duty_window_s,
            charge_balance: self.charge_balance,
            ramp_s: self.ramp_s,
        }
    }
}

/// One problem with a profile: where it is and what was expected.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileError {
    /// The profile's name (its path, or `<embedded quickstart>`).
    pub file: String,
    /// 1-based line, when the problem is at a line of the file.
    pub line: Option<usize>,
    /// The key path, e.g. `run.sample_rate_hz`.
    pub key: Option<String>,
    /// How the value was given on the command line, if it was: `--set key=value` (a caller
    /// that turns its own options into overrides, like a sweep's `--vary`, relabels it).
    pub from_override: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(given) = &self.from_override {
            write!(f, " (value given by {given})")?;
        }
        Ok(())
    }
}

/// Every problem found in a profile (at least one).
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileErrors(pub Vec<ProfileError>);

impl fmt::Display for ProfileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProfileErrors {}

/// Non-fatal remarks about a valid profile (e.g. a request the limiter will clamp).
pub type Warnings = Vec<String>;

const SECTIONS: [&str; 10] = [
    "run",
    "model",
    "network",
    "sensor",
    "estimator",
    "stimulation",
    "safety",
    "output",
    "audio",
    "trigger",
];
const REQUIRED: [&str; 6] = [
    "run",
    "model",
    "sensor",
    "estimator",
    "stimulation",
    "safety",
];

/// The most bytes a profile file may have: far more than any profile (a list of 100 000
/// per-node values is about 2 MB), and little enough that a wrong path (`/dev/zero`, a
/// recording) is refused before it fills memory.
pub const MAX_PROFILE_BYTES: u64 = 16 << 20;

/// The text of the profile at `path`. A file larger than [`MAX_PROFILE_BYTES`], and one that is
/// not UTF-8 text (named with the line and column of the first bad byte), are refused.
pub fn read(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let name = path.display();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_PROFILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read profile '{name}': {e}"))?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(format!(
            "profile '{name}' is larger than {} MiB: not a profile (a TOML file, see profiles/)",
            MAX_PROFILE_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        format!(
            "{name}:{line}:{column}: not UTF-8 text (byte 0x{:02x}); save the profile as UTF-8",
            e.as_bytes()[good.len()]
        )
    })
}

/// Load a profile from its text, apply `--set KEY=VALUE` overrides, validate.
///
/// `file` names the source in messages. Returns the profile and any warnings.
pub fn load(
    file: &str,
    text: &str,
    overrides: &[String],
) -> Result<(Profile, Warnings), ProfileErrors> {
    let ctx = Context {
        file,
        text,
        warnings: Default::default(),
        overridden: Vec::new(),
    };
    let mut root: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        ProfileErrors(vec![ProfileError {
            file: file.to_string(),
            line,
            key: None,
            from_override: None,
            message: format!("not valid TOML: {}", e.message().trim()),
        }])
    })?;
    let mut ctx = ctx;
    for set in overrides {
        apply_override(&mut root, set).map_err(|message| {
            ProfileErrors(vec![ProfileError {
                file: file.to_string(),
                line: None,
                key: None,
                from_override: Some(format!("--set {set}")),
                message,
            }])
        })?;
        if let Some((key, _)) = set.split_once('=') {
            ctx.overridden.push((key.trim().to_string(), set.clone()));
        }
    }
    ctx.parse(root)
}

/// Apply one `section.key=value` override to the raw table.
fn apply_override(root: &mut toml::Table, set: &str) -> Result<(), String> {
    let (path, value) = set.split_once('=').ok_or_else(|| {
        "expected KEY=VALUE, e.g. --set stimulation.target_phase_deg=90".to_string()
    })?;
    let path: Vec<&str> = path.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err("the key must be section.key, e.g. run.duration_s".into());
    }
    let value = parse_value(value.trim());
    if path.len() == 1 {
        // A whole section, replaced (e.g. another estimator kind with its own keys).
        if !value.is_table() {
            // An example in the section's own terms where there is one.
            let example = match path[0] {
                "estimator" => "{kind = \"echt\", low_hz = 8, high_hz = 12}",
                "network" => "{topology = \"ring\", neighbours = 4, gain = 1}",
                "model" => "{kind = \"stuart_landau\", nodes = 10}",
                "stimulation" => "{kind = \"tacs\", freq_hz = 10, amplitude = 0.5}",
                _ => "{key = value, …}",
            };
            return Err(format!(
                "the key must be section.key, e.g. run.duration_s, or a whole section as an \
                 inline table, e.g. --set '{}={example}'",
                path[0]
            ));
        }
        root.insert(path[0].to_string(), value);
        return Ok(());
    }
    let mut table = root;
    for part in &path[..path.len() - 1] {
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is a value, not a section"))?;
    }
    table.insert(path[path.len() - 1].to_string(), value);
    Ok(())
}

/// A `--set` value as TOML (`90`, `true`, `[1, 2]`, `"x"`), or a bare word as a string.
fn parse_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

struct Context<'a> {
    file: &'a str,
    text: &'a str,
    /// Remarks collected while parsing (returned with the profile).
    warnings: std::cell::RefCell<Warnings>,
    /// (key path, the `--set` argument) for overridden values.
    overridden: Vec<(String, String)>,
}

impl Context<'_> {
    fn error(&self, key: &str, message: impl Into<String>) -> ProfileError {
        // The key itself, or a section (or table) above it that --set replaced whole.
        let from_override = self
            .overridden
            .iter()
            .rev()
            .find(|(k, _)| {
                key == k
                    || key
                        .strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|(_, set)| format!("--set {set}"));
        let path: Vec<&str> = key.split('.').collect();
        let line = if from_override.is_some() {
            None
        } else {
            locate(self.text, &path)
        };
        ProfileError {
            file: self.file.to_string(),
            line,
            key: Some(key.to_string()),
            from_override,
            message: message.into(),
        }
    }

    /// Deserialize `value` (the table at `path`), mapping serde's message to a located error.
    fn typed<T: DeserializeOwned>(
        &self,
        path: &str,
        value: toml::Value,
    ) -> Result<T, ProfileError> {
        serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
            // The root of the value prints as "." (and a field of it as "name."?): trim them.
            let inner = e.path().to_string();
            let inner = inner.trim_matches('.');
            let msg = e.inner().message().trim().to_string();
            let (key, message) = explain(path, &msg);
            // serde_path_to_error knows the field even where the message does not name it.
            let key = if inner.is_empty() || inner == "?" || key != path {
                key
            } else {
                format!("{path}.{inner}")
            };
            self.error(&key, message)
        })
    }

    fn parse(&self, mut root: toml::Table) -> Result<(Profile, Warnings), ProfileErrors> {
        let mut errors = Vec::new();
        for name in root.keys() {
            if !SECTIONS.contains(&name.as_str()) {
                errors.push(self.error(
                    name,
                    format!("unknown section; the sections are {}", SECTIONS.join(", ")),
                ));
            }
        }
        for name in REQUIRED {
            if !root.contains_key(name) {
                errors.push(ProfileError {
                    file: self.file.to_string(),
                    line: None,
                    key: None,
                    from_override: None,
                    message: format!(
                        "missing section [{name}]; see profiles/quickstart.toml for an example"
                    ),
                });
            }
        }
        if !errors.is_empty() {
            return Err(ProfileErrors(errors));
        }
        let mut take = |name: &str| {
            root.remove(name)
                .unwrap_or(toml::Value::Table(toml::Table::new()))
        };
        let (run, model, network, sensor, estimator, stimulation, safety, output) = (
            take("run"),
            take("model"),
            take("network"),
            take("sensor"),
            take("estimator"),
            take("stimulation"),
            take("safety"),
            take("output"),
        );
        let audio = take("audio");
        let trigger = root.remove("trigger");
        let run: Option<RunSection> = keep(&mut errors, self.typed("run", run));
        let model = keep(&mut errors, self.model(model));
        let network = keep(&mut errors, self.network(network));
        let sensor: Option<SensorSection> = keep(&mut errors, self.typed("sensor", sensor));
        let estimator = keep(&mut errors, self.estimator(estimator));
        let stimulation = keep(&mut errors, self.stimulation(stimulation));
        let safety: Option<SafetySection> = keep(&mut errors, self.typed("safety", safety));
        let output: Option<OutputSection> = keep(&mut errors, self.typed("output", output));
        let audio: Option<AudioSection> = keep(&mut errors, self.typed("audio", audio));
        let trigger: Option<Option<SerialTriggerConfig>> = match trigger {
            None => Some(None),
            Some(t) => keep(&mut errors, self.typed("trigger", t)).map(Some),
        };
        let (
            Some(run),
            Some(model),
            Some(network),
            Some(sensor),
            Some(estimator),
            Some(stimulation),
            Some(safety),
            Some(output),
            Some(audio),
            Some(trigger),
        ) = (
            run,
            model,
            network,
            sensor,
            estimator,
            stimulation,
            safety,
            output,
            audio,
            trigger,
        )
        else {
            return Err(ProfileErrors(errors));
        };
        let mut estimator = estimator;
        if let EstimatorSection::Kalman(spec) = &mut estimator {
            // A baseline taken from the sensor's own recording is read from the sensor's
            // channel unless told otherwise.
            spec.training_channel.get_or_insert(
                if sensor.file.as_ref() == Some(&spec.training_file) {
                    sensor.channel
                } else {
                    0
                },
            );
        }
        let profile = Profile {
            run,
            model,
            network,
            sensor,
            estimator,
            stimulation,
            safety,
            output,
            audio,
            trigger,
        };
        let mut warnings = self.warnings.take();
        warnings.extend(self.validate(&profile, &mut errors));
        if errors.is_empty() {
            Ok((profile, warnings))
        } else {
            Err(ProfileErrors(errors))
        }
    }

    fn model(&self, value: toml::Value) -> Result<ModelSection, ProfileError> {
        let table = self.table("model", value)?;
        // serde's own message for a kind that is not a string names no kind ("invalid type:
        // unit variant, expected string only").
        if let Some(kind) = table.get("kind").filter(|k| !k.is_str()) {
            let names = ModelKind::ALL.map(|k| format!("\"{}\"", k.name()));
            return Err(self.error(
                "model.kind",
                format!(
                    "expected a string, one of {}; found {}",
                    names.join(", "),
                    a_type(kind)
                ),
            ));
        }
        let raw: ModelRaw = self.typed("model", toml::Value::Table(table))?;
        let params = toml::Value::Table(raw.params);
        let params = match raw.kind {
            ModelKind::StuartLandau => {
                ModelParams::StuartLandau(self.typed("model.params", params)?)
            }
            ModelKind::Kuramoto => ModelParams::Kuramoto(self.typed("model.params", params)?),
            ModelKind::Harmonic => ModelParams::Harmonic(self.typed("model.params", params)?),
            ModelKind::SlDnField => ModelParams::SlDnField(self.typed("model.params", params)?),
            ModelKind::Rate => ModelParams::Rate(self.typed("model.params", params)?),
            ModelKind::WilsonCowan => ModelParams::WilsonCowan(self.typed("model.params", params)?),
            ModelKind::BaierGrid => ModelParams::BaierGrid(self.typed("model.params", params)?),
            ModelKind::JansenRit => ModelParams::JansenRit(self.typed("model.params", params)?),
            ModelKind::Mpr => {
                let mpr: MprParams = self.typed("model.params", params)?;
                ModelParams::Mpr(Box::new(mpr.with_defaults()))
            }
            ModelKind::Horn => ModelParams::Horn(self.typed("model.params", params)?),
        };
        Ok(ModelSection {
            kind: raw.kind,
            nodes: raw.nodes,
            integrator: raw.integrator,
            noise_sd: raw.noise_sd,
            noise_color: raw.noise_color,
            pink_lowest_hz: raw.pink_lowest_hz,
            ou_tau_s: raw.ou_tau_s,
            samples_per_step: raw.samples_per_step,
            forcing_gain: raw.forcing_gain,
            params,
        })
    }

    fn network(&self, value: toml::Value) -> Result<NetworkSection, ProfileError> {
        let mut table = self.table("network", value)?;
        let gain = match table.remove("gain") {
            None => 0.0,
            Some(v) => self.typed::<f64>("network.gain", v)?,
        };
        let history_precision = match table.remove("history_precision") {
            None => HistoryPrecision::F64,
            Some(v) => self.typed::<HistoryPrecision>("network.history_precision", v)?,
        };
        if !table.contains_key("topology") {
            table.insert("topology".into(), toml::Value::String("none".into()));
        }
        // The topologies without parameters of their own would pass any key silently (serde
        // checks keys only for variants with fields): a `neighbours` meant for a ring would go
        // unnoticed.
        let topology = table.get("topology").and_then(toml::Value::as_str);
        if let Some(topology @ ("none" | "all_to_all")) = topology {
            let shared = ["topology", "normalize", "delay_ms"];
            if let Some(extra) = table.keys().find(|k| !shared.contains(&k.as_str())) {
                return Err(self.error(
                    &format!("network.{extra}"),
                    format!(
                        "unknown key; topology = \"{topology}\" takes only gain, normalize, \
                         delay_ms and history_precision"
                    ),
                ));
            }
            if topology == "none" && gain != 0.0 {
                self.warnings.borrow_mut().push(format!(
                    "network.gain = {gain} has no edges to act on: topology = \"none\" couples \
                     nothing; choose a topology or remove the gain"
                ));
            }
        }
        let spec: NetworkSpec = self.typed("network", toml::Value::Table(table))?;
        // `delay_ms = 0` (or a list of zeros) delays nothing either.
        let no_delay_ms = match &spec.delay_ms {
            None => true,
            Some(ParamSpec::Value(d)) => *d == 0.0,
            Some(ParamSpec::List(ds)) => ds.iter().all(|d| *d == 0.0),
            Some(ParamSpec::Dist(_)) => false,
        };
        if history_precision == HistoryPrecision::F32
            && no_delay_ms
            && !matches!(
                spec.topology,
                Topology::Csv {
                    delays_ms: Some(_),
                    ..
                }
            )
        {
            self.warnings.borrow_mut().push(
                "network.history_precision = \"f32\" has no effect: the network has no delays, so \
                 it keeps no history; give network.delay_ms a value above 0 or remove the key"
                    .into(),
            );
        }
        Ok(NetworkSection {
            gain,
            history_precision,
            spec,
        })
    }

    fn estimator(&self, value: toml::Value) -> Result<EstimatorSection, ProfileError> {
        let (kind, rest) = self.split_kind(
            "estimator",
            value,
            &[
                "bandpass_hilbert",
                "echt",
                "ar_burg",
                "pll",
                "etp",
                "kalman",
            ],
        )?;
        Ok(match kind.as_str() {
            "echt" => EstimatorSection::Echt(self.typed("estimator", rest)?),
            "ar_burg" => EstimatorSection::ArBurg(self.typed("estimator", rest)?),
            "pll" => EstimatorSection::Pll(self.typed("estimator", rest)?),
            "etp" => EstimatorSection::Etp(self.typed("estimator", rest)?),
            "kalman" => EstimatorSection::Kalman(self.typed("estimator", rest)?),
            _ => EstimatorSection::BandpassHilbert(self.typed("estimator", rest)?),
        })
    }

    fn stimulation(&self, value: toml::Value) -> Result<StimulationSection, ProfileError> {
        let (kind, rest) = self.split_kind(
            "stimulation",
            value,
            &["phase_locked", "periodic", "tacs", "none"],
        )?;
        let mut rest = match rest {
            toml::Value::Table(t) => t,
            _ => unreachable!("split_kind returns a table"),
        };
        let start_s = match rest.remove("start_s") {
            None => 0.0,
            Some(v) => self.typed::<f64>("stimulation.start_s", v)?,
        };
        let stop_s = match rest.remove("stop_s") {
            None => None,
            Some(v) => Some(self.typed::<f64>("stimulation.stop_s", v)?),
        };
        let nodes = match rest.remove("nodes") {
            None => StimNodes::All(AllWord::All),
            Some(v) => self.typed::<StimNodes>("stimulation.nodes", v)?,
        };
        let mut commands = match rest.remove("commands") {
            None => Vec::new(),
            Some(v) => self.typed::<Vec<ScheduledCommand>>("stimulation.commands", v)?,
        };
        // Keys of another policy are ignored with a warning, so that `--set stimulation.kind=…`
        // turns any profile into its open-loop or sham control; keys no policy knows are errors.
        let own: &[&str] = match kind.as_str() {
            "phase_locked" => &PHASE_LOCKED_KEYS,
            "periodic" => &PERIODIC_KEYS,
            "tacs" => &TACS_KEYS,
            _ => &[],
        };
        let foreign: Vec<String> = rest
            .keys()
            .filter(|k| !own.contains(&k.as_str()) && POLICY_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in &foreign {
            rest.remove(key);
            self.warnings.borrow_mut().push(format!(
                "stimulation.{key} does not apply to kind = \"{kind}\" and is ignored"
            ));
        }
        let rest = toml::Value::Table(rest);
        let policy = match kind.as_str() {
            "phase_locked" => PolicySpec::PhaseLocked(self.typed("stimulation", rest)?),
            "periodic" => PolicySpec::Periodic(self.typed("stimulation", rest)?),
            "tacs" => PolicySpec::Tacs(self.typed("stimulation", rest)?),
            _ => {
                let _: NoKeys = self.typed("stimulation", rest)?;
                PolicySpec::None
            }
        };
        for (k, c) in commands.iter().enumerate() {
            let at = |e: String| self.error("stimulation.commands", format!("entry {k}: {e}"));
            if !(c.at_s.is_finite() && c.at_s >= 0.0) {
                return Err(at(format!("at_s must be a time ≥ 0 s, got {}", c.at_s)));
            }
            let command = c.parsed().map_err(at)?;
            policy
                .takes(&command)
                .map_err(|e| at(format!("'{}': {e}", c.command)))?;
        }
        // Stable: commands at the same time keep the profile's order.
        commands.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        Ok(StimulationSection {
            start_s,
            stop_s,
            nodes,
            commands,
            policy,
        })
    }

    fn table(&self, section: &str, value: toml::Value) -> Result<toml::Table, ProfileError> {
        match value {
            toml::Value::Table(t) => Ok(t),
            other => Err(self.error(
                section,
                format!("expected a section [{section}], found {}", a_type(&other)),
            )),
        }
    }

    /// Take `kind` out of a section; the rest is the variant's parameters.
    fn split_kind(
        &self,
        section: &str,
        value: toml::Value,
        kinds: &[&str],
    ) -> Result<(String, toml::Value), ProfileError> {
        let mut table = self.table(section, value)?;
        let key = format!("{section}.kind");
        let expected = kinds
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let kind = match table.remove("kind") {
            None => {
                return Err(self.error(section, format!("missing key `kind`: one of {expected}")));
            }
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(self.error(
                    &key,
                    format!(
                        "expected a string, one of {expected}; found {}",
                        a_type(&other)
                    ),
                ));
            }
        };
        if !kinds.contains(&kind.as_str()) {
            return Err(self.error(
                &key,
                format!("unknown kind \"{kind}\"; expected one of {expected}"),
            ));
        }
        Ok((kind, toml::Value::Table(table)))
    }

    fn validate(&self, p: &Profile, errors: &mut Vec<ProfileError>) -> Warnings {
        let mut warnings = Vec::new();
        let mut check = |ok: bool, key: &str, message: String| {
            if !ok {
                errors.push(self.error(key, message));
            }
        };
        let fs = p.run.sample_rate_hz;
        let fs_checked = check_sample_rate(fs);
        let fs_ok = fs_checked.is_ok();
        if let Err(e) = fs_checked {
            check(false, "run.sample_rate_hz", e);
        }
        if let Err(e) = check_block_frames(p.run.block_frames) {
            check(false, "run.block_frames", e);
        }
        let duration = p.run.duration_s;
        check(
            duration.is_finite() && duration > 0.0,
            "run.duration_s",
            format!("expected a duration > 0 seconds, got {duration}"),
        );
        if duration.is_finite() && duration > 0.0 && fs.is_finite() && fs > 0.0 {
            check(
                p.run.total_samples() >= 1,
                "run.duration_s",
                format!(
                    "{duration} s is not one sample at {fs} Hz; give at least {} s",
                    1.0 / fs
                ),
            );
        }
        check(
            p.run.latency_ms.is_finite() && (0.0..=10_000.0).contains(&p.run.latency_ms),
            "run.latency_ms",
            format!(
                "expected a latency ≥ 0 ms (and at most 10 s), got {}",
                p.run.latency_ms
            ),
        );
        let m = &p.model;
        check(
            (1..=10_000_000).contains(&m.nodes),
            "model.nodes",
            format!("expected 1 to 10 000 000 nodes, got {}", m.nodes),
        );
        check(
            m.samples_per_step >= 1,
            "model.samples_per_step",
            "expected an integer ≥ 1 (the plant steps every this many samples)".into(),
        );
        check(
            m.noise_sd.is_finite() && m.noise_sd >= 0.0,
            "model.noise_sd",
            format!("expected a noise amplitude ≥ 0, got {}", m.noise_sd),
        );
        check(
            m.noise_sd == 0.0
                || m.noise_color != NoiseColor::White
                || m.integrator.supports_noise(),
            "model.integrator",
            "rk4 is deterministic; with white noise_sd > 0 choose euler_maruyama or \
             stochastic_heun (pink and ou noise enter as input and work with any scheme)"
                .into(),
        );
        check(
            m.noise_color != NoiseColor::Ou || (m.ou_tau_s.is_finite() && m.ou_tau_s > 0.0),
            "model.ou_tau_s",
            format!(
                "expected a correlation time > 0 s (10 ms is typical), got {}",
                m.ou_tau_s
            ),
        );
        let plant_rate = p.run.sample_rate_hz / m.samples_per_step as f64;
        check(
            m.noise_color != NoiseColor::Pink
                || (m.pink_lowest_hz.is_finite()
                    && m.pink_lowest_hz > 0.0
                    && m.pink_lowest_hz < plant_rate / 8.0),
            "model.pink_lowest_hz",
            format!(
                "expected a corner frequency > 0 and below an eighth of the plant's rate \
                 ({plant_rate} Hz), got {}",
                m.pink_lowest_hz
            ),
        );
        check(
            m.kind != ModelKind::BaierGrid || p.network.spec.topology == Topology::None,
            "network.topology",
            "baier_grid builds its own nearest-neighbour coupling from model.params.frac_ee and \
             frac_ei; remove the [network] section"
                .into(),
        );
        check(
            m.forcing_gain.is_finite(),
            "model.forcing_gain",
            "expected a finite number".into(),
        );
        check(
            p.network.gain.is_finite(),
            "network.gain",
            "expected a finite coupling gain".into(),
        );
        if let SensorNode::Index(i) = p.sensor.node {
            check(
                i < m.nodes,
                "sensor.node",
                format!(
                    "node {i} does not exist: the model has {} nodes (0..{})",
                    m.nodes,
                    m.nodes.saturating_sub(1)
                ),
            );
        }
        check(
            p.sensor.noise_sd.is_finite() && p.sensor.noise_sd >= 0.0,
            "sensor.noise_sd",
            format!("expected a noise SD ≥ 0, got {}", p.sensor.noise_sd),
        );
        check(
            p.sensor.file.is_none() || !p.audio.has_input(),
            "sensor.file",
            "the sensor reads either a recording or a sound-card input, not both: remove \
             sensor.file or audio.input_device"
                .into(),
        );
        if let Some(file) = &p.sensor.file {
            if fs.is_finite() && fs > 0.0 {
                if let Err((key, message)) = check_sensor_file(file, p.sensor.channel, fs) {
                    check(false, key, message);
                }
            }
        }
        let s = &p.stimulation;
        check(
            s.start_s.is_finite() && s.start_s >= 0.0,
            "stimulation.start_s",
            format!("expected a time ≥ 0 s, got {}", s.start_s),
        );
        if let Some(stop) = s.stop_s {
            check(
                stop.is_finite() && stop > s.start_s,
                "stimulation.stop_s",
                format!(
                    "expected a time after start_s ({} s), got {stop}",
                    s.start_s
                ),
            );
        }
        if let StimNodes::Disc(disc) = &s.nodes {
            check(
                disc.radius.is_finite() && disc.radius >= 0.0,
                "stimulation.nodes",
                format!(
                    "a disc's radius must be ≥ 0 grid units, got {}",
                    disc.radius
                ),
            );
        }
        if let StimNodes::List(list) = &s.nodes {
            check(
                !list.is_empty(),
                "stimulation.nodes",
                "expected \"all\" or at least one node index".into(),
            );
            if let Some(bad) = list.iter().find(|&&i| i >= m.nodes) {
                check(
                    false,
                    "stimulation.nodes",
                    format!("node {bad} does not exist: the model has {} nodes", m.nodes),
                );
            }
        }
        if let Some(bad) = p.output.record_nodes.iter().find(|&&i| i >= m.nodes) {
            check(
                false,
                "output.record_nodes",
                format!("node {bad} does not exist: the model has {} nodes", m.nodes),
            );
        }
        check(
            p.output.telemetry_buffer_s.is_finite()
                && (0.01..=60.0).contains(&p.output.telemetry_buffer_s),
            "output.telemetry_buffer_s",
            format!(
                "expected 0.01 to 60 seconds, got {}",
                p.output.telemetry_buffer_s
            ),
        );
        let o = &p.output;
        check(
            (1..=MAX_OUTPUT_CHANNELS).contains(&o.channels.len()),
            "output.channels",
            format!(
                "expected 1 to {MAX_OUTPUT_CHANNELS} channels, got {}",
                o.channels.len()
            ),
        );
        check(
            o.gains.len() <= o.channels.len() && o.gains.iter().all(|g| g.is_finite()),
            "output.gains",
            format!(
                "expected at most one finite gain per channel ({} channels)",
                o.channels.len()
            ),
        );
        check(
            o.trigger_width_ms.is_finite()
                && o.trigger_width_ms > 0.0
                && o.trigger_width_ms <= 1000.0,
            "output.trigger_width_ms",
            format!(
                "expected a width between 0 and 1000 ms, got {}",
                o.trigger_width_ms
            ),
        );
        if let Err(e) = crate::io::audio::check_host_name(&p.audio.host) {
            check(false, "audio.host", e);
        }
        check(
            (1..=64).contains(&p.audio.input_offset_blocks),
            "audio.input_offset_blocks",
            format!(
                "expected 1 to 64 blocks, got {}",
                p.audio.input_offset_blocks
            ),
        );
        let rate = p.output.nodes_rate_hz;
        // Against a rate that is itself wrong (already reported), no verdict.
        check(
            !fs_ok || (rate.is_finite() && rate >= 0.0 && rate <= p.run.sample_rate_hz),
            "output.nodes_rate_hz",
            format!(
                "expected 0 (off) up to the sample rate ({} Hz), got {rate}",
                p.run.sample_rate_hz
            ),
        );
        check(
            rate * m.nodes as f64 <= MAX_NODE_VALUES_PER_S,
            "output.nodes_rate_hz",
            format!(
                "{} nodes at {rate} Hz are {:.0} values/s, more than the {MAX_NODE_VALUES_PER_S:.0} \
                 the recorder keeps up with; lower output.nodes_rate_hz",
                m.nodes,
                rate * m.nodes as f64
            ),
        );
        if p.output.record_nodes.len() > MAX_RECORD_NODES {
            check(
                false,
                "output.record_nodes",
                format!("at most {MAX_RECORD_NODES} nodes can be recorded as channels"),
            );
        }
        // The components validate their own parameters; their messages are placed at the key
        // they name. Only worth doing once the clock itself is valid.
        if fs_ok {
            let (low_hz, high_hz) = p.estimator.band();
            let nyquist = 0.5 * fs;
            if let Err(e) = check_band(low_hz, high_hz) {
                check(false, "estimator.low_hz", e);
            } else if high_hz >= nyquist {
                // Named here so that the key blamed is the one at fault (the estimators' own
                // message names both edges, and the first it names is low_hz).
                check(
                    false,
                    "estimator.high_hz",
                    format!(
                        "high_hz = {high_hz} Hz is not below the Nyquist frequency, {nyquist} Hz \
                         at run.sample_rate_hz = {fs}; lower high_hz or raise the sample rate"
                    ),
                );
            } else {
                match p.estimator.build(fs, p.run.latency_samples() as f64) {
                    Err(e) => {
                        errors.push(self.error(&field_of("estimator", &e, &ESTIMATOR_KEYS), e))
                    }
                    Ok(estimator) => {
                        let settled_s = estimator.settling_samples() as f64 / fs;
                        let phase_locked =
                            matches!(p.stimulation.policy, PolicySpec::PhaseLocked(_));
                        if phase_locked && p.stimulation.start_s < settled_s {
                            warnings.push(format!(
                                "stimulation.start_s = {} s is before the estimator settles \
                                 ({settled_s:.2} s): pulses before then land at arbitrary \
                                 phases; set start_s ≥ {settled_s:.2}",
                                p.stimulation.start_s
                            ));
                        }
                    }
                }
            }
            let pulse_samples = match s.policy.build(fs) {
                Ok(policy) => policy.pulse_samples(),
                Err(e) => {
                    errors.push(self.error(&field_of("stimulation", &e, &POLICY_KEYS), e));
                    None
                }
            };
            match crate::stim::Limiter::new(&p.safety.limits(), fs) {
                Err(e) => errors.push(self.error(&field_of("safety", &e, &SAFETY_KEYS), e)),
                Ok(mut limiter) => {
                    if let Some(samples) = pulse_samples {
                        limiter.declare_pulse_samples(samples);
                        if limiter.episode_reservation() > limiter.duty_budget() {
                            warnings.push(format!(
                                "a pulse ({samples} non-zero samples{}) does not fit the duty \
                                 budget of {} non-zero samples per safety.duty_window_s: the \
                                 limiter will suppress every pulse",
                                if p.safety.charge_balance {
                                    " plus as many reserved for charge recovery"
                                } else {
                                    ""
                                },
                                limiter.duty_budget()
                            ));
                        }
                    }
                }
            }
        }
        if matches!(s.policy, PolicySpec::Tacs(_)) && p.safety.max_duty_cycle < 1.0 {
            // The duty backstop blanks a free-running sine sample by sample: it passes the same
            // part of every cycle, which is a direct current.
            let message = format!(
                "safety.max_duty_cycle = {} would cut the tACS sine part-way through its cycles \
                 and leave a net (direct) current; tACS runs continuously: set \
                 safety.max_duty_cycle = 1 and bound it with stimulation.start_s / stop_s",
                p.safety.max_duty_cycle
            );
            if p.safety.charge_balance {
                errors.push(self.error("safety.max_duty_cycle", message));
            } else {
                warnings.push(message);
            }
        }
        if let (PolicySpec::Tacs(t), true) = (&s.policy, duration.is_finite()) {
            // Less than a whole cycle of the sine is mostly one polarity: a direct current.
            let end = s.stop_s.unwrap_or(duration).min(duration);
            let cycles = (end - s.start_s) * t.freq_hz;
            if end > s.start_s && cycles < 1.0 {
                let message = format!(
                    "stimulation.freq_hz = {} Hz gives {cycles:.3} cycles between start_s and \
                     the end of stimulation ({} s): less than a whole cycle of the sine leaves \
                     a net (direct) current; raise freq_hz or lengthen the window",
                    t.freq_hz,
                    end - s.start_s
                );
                if p.safety.charge_balance {
                    errors.push(self.error("stimulation.freq_hz", message));
                } else {
                    warnings.push(message);
                }
            }
        }
        let amplitude = match &s.policy {
            PolicySpec::PhaseLocked(pl) => Some(pl.amplitude),
            PolicySpec::Periodic(pe) => Some(pe.amplitude),
            PolicySpec::Tacs(t) => Some(t.amplitude),
            PolicySpec::None => None,
        };
        if let Some(a) = amplitude {
            if a.abs() > p.safety.max_amplitude {
                warnings.push(format!(
                    "stimulation.amplitude {a} exceeds safety.max_amplitude {}: the limiter will clamp it",
                    p.safety.max_amplitude
                ));
            }
        }
        if let (Some(stop), true) = (s.stop_s, duration.is_finite()) {
            if stop > duration {
                warnings.push(format!(
                    "stimulation.stop_s {stop} is after the end of the run ({duration} s)"
                ));
            }
        }
        if s.start_s >= duration {
            warnings.push(format!(
                "stimulation.start_s {} is at or after the end of the run ({duration} s): nothing will be delivered",
                s.start_s
            ));
        }
        warnings
    }
}

/// Keys of `[estimator] kind = "bandpass_hilbert"`.
const ESTIMATOR_KEYS: [&str; 18] = [
    "low_hz",
    "high_hz",
    "sections",
    "freq_smoothing_s",
    "window_s",
    "hop_samples",
    "calibrate",
    "filter_order",
    "order",
    "forecast_s",
    "refit_every_samples",
    "loop_bandwidth_hz",
    "damping",
    "train_s",
    "adapt_cycles",
    "training_file",
    "training_channel",
    "oscillators",
];
/// Keys of `[safety]`.
const SAFETY_KEYS: [&str; 6] = [
    "max_amplitude",
    "max_pulse_rate_hz",
    "max_duty_cycle",
    "duty_window_s",
    "charge_balance",
    "ramp_s",
];

/// A run's sample rate, Hz: a whole number (`signals.wav` stores it as one) from 100 to 1 MHz.
pub fn check_sample_rate(fs: f64) -> Result<(), String> {
    if (100.0..=1_000_000.0).contains(&fs) && fs.fract() == 0.0 {
        Ok(())
    } else {
        Err(format!(
            "expected a whole number of Hz between 100 and 1000000 (audio: 44100, 48000, \
             96000 …), got {fs}"
        ))
    }
}

/// Frames per block: 1 to 16 384.
pub fn check_block_frames(frames: usize) -> Result<(), String> {
    if (1..=16384).contains(&frames) {
        Ok(())
    } else {
        Err(format!(
            "expected 1 to 16384 frames per block, got {frames}"
        ))
    }
}

/// Check, from its header alone, that `channel` of the WAV file at `path` can feed a run at
/// `sample_rate_hz` (what [`crate::engine::Recording::load`] checks before it reads the
/// samples). An error is the key to change and what is wrong.
pub fn check_sensor_file(
    path: &std::path::Path,
    channel: usize,
    sample_rate_hz: f64,
) -> Result<(), (&'static str, String)> {
    let frames = crate::wav::WavFrames::open(path).map_err(|e| ("sensor.file", e))?;
    let shown = path.display();
    if channel >= frames.channels {
        return Err((
            "sensor.channel",
            format!(
                "{shown} has {} channel(s) (0..{}), so channel {channel} does not exist",
                frames.channels,
                frames.channels - 1
            ),
        ));
    }
    if check_sample_rate(f64::from(frames.sample_rate)).is_err() {
        return Err((
            "sensor.file",
            format!(
                "{shown} is sampled at {} Hz, outside the rates entrain runs at (100 to \
                 1000000 Hz); resample the recording (e.g. `sox IN.wav -r 1000 OUT.wav`)",
                frames.sample_rate
            ),
        ));
    }
    if f64::from(frames.sample_rate) != sample_rate_hz {
        return Err((
            "sensor.file",
            format!(
                "{shown} is sampled at {} Hz but the run at {sample_rate_hz} Hz; set \
                 run.sample_rate_hz = {} (entrain does not resample)",
                frames.sample_rate, frames.sample_rate
            ),
        ));
    }
    Ok(())
}

/// Whether an estimator can work in the band `low_hz`–`high_hz`: not too low, not too narrow
/// (its filters would take minutes to settle, or for ever).
pub fn check_band(low_hz: f64, high_hz: f64) -> Result<(), String> {
    let centre = (low_hz * high_hz).sqrt();
    if low_hz >= MIN_BAND_HZ && high_hz - low_hz >= centre / MAX_BAND_Q {
        Ok(())
    } else {
        Err(format!(
            "the band {low_hz:?}–{high_hz:?} Hz is too low or too narrow: its low edge must be ≥ \
             {MIN_BAND_HZ} Hz and its width at least 1/{MAX_BAND_Q} of its centre frequency"
        ))
    }
}

/// Lowest band edge an estimator may have, Hz (slower rhythms need minutes to settle).
const MIN_BAND_HZ: f64 = 0.1;
/// Narrowest band relative to its centre (the filter's settling grows with this Q).
const MAX_BAND_Q: f64 = 50.0;
/// Most output channels a device is given.
const MAX_OUTPUT_CHANNELS: usize = 64;
/// Most nodes that can be written to `signals.wav` as channels.
const MAX_RECORD_NODES: usize = 1024;

/// The key of `section` a component's error message is about: the first of `keys` it names.
fn field_of(section: &str, message: &str, keys: &[&str]) -> String {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|word| keys.contains(word))
        .map_or_else(|| section.to_string(), |k| format!("{section}.{k}"))
}

/// Keys of `kind = "phase_locked"`.
const PHASE_LOCKED_KEYS: [&str; 6] = [
    "target_phase_deg",
    "min_interval_s",
    "amplitude_threshold",
    "width_s",
    "amplitude",
    "shape",
];
/// Keys of `kind = "periodic"`.
const PERIODIC_KEYS: [&str; 4] = ["rate_hz", "width_s", "amplitude", "shape"];
/// Keys of `kind = "tacs"`.
const TACS_KEYS: [&str; 3] = ["freq_hz", "amplitude", "phase_deg"];
/// Every key some policy takes.
const POLICY_KEYS: [&str; 9] = [
    "target_phase_deg",
    "min_interval_s",
    "amplitude_threshold",
    "width_s",
    "amplitude",
    "shape",
    "rate_hz",
    "freq_hz",
    "phase_deg",
];

/// A table that must be empty (after the keys handled elsewhere are taken out).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoKeys {}

/// Keep a section's value, or remember its error and carry on (to report every problem at once).
fn keep<T>(errors: &mut Vec<ProfileError>, result: Result<T, ProfileError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// A TOML value's type with its article: "an integer", "a string".
fn a_type(value: &toml::Value) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// Turn serde's message into (key path, human message).
fn explain(section: &str, message: &str) -> (String, String) {
    let backticked = |m: &str| m.split('`').nth(1).map(str::to_string);
    if message.starts_with("unknown field") {
        let field = backticked(message).unwrap_or_default();
        let expected = message
            .split_once("expected")
            .map(|(_, e)| e.trim())
            .unwrap_or("");
        let hint = if expected.is_empty() {
            "this section takes no further keys".to_string()
        } else {
            format!("expected {expected}")
        };
        return (format!("{section}.{field}"), format!("unknown key; {hint}"));
    }
    if message.starts_with("missing field") {
        let field = backticked(message).unwrap_or_default();
        return (section.to_string(), format!("missing key `{field}`"));
    }
    if let Some((what, key)) = message.rsplit_once("\nin `") {
        let key = key.trim_end_matches('`');
        return (format!("{section}.{key}"), what.trim().to_string());
    }
    if let Some((what, key)) = message.rsplit_once(" in `") {
        let key = key.trim_end_matches('`');
        return (format!("{section}.{key}"), what.trim().to_string());
    }
    (section.to_string(), message.to_string())
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The 1-based line of `path` (`["model", "params", "lambda"]`) in a profile, found by scanning
/// table headers and `key =` lines; a section path gives its header line.
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let mut header = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') && !line.starts_with("[[") {
            header = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
            if header == path.join(".") {
                return Some(i + 1);
            }
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches('"');
        let full = if header.is_empty() {
            key.to_string()
        } else {
            format!("{header}.{key}")
        };
        if full == path.join(".") {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str, sets: &[&str]) -> String {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load("p.toml", text, &sets).unwrap_err().to_string()
    }

    #[test]
    fn quickstart_is_valid() {
        let (p, warnings) = load("quickstart", QUICKSTART, &[]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(p.run.latency_samples(), 96);
    }

    #[test]
    fn a_pulse_that_cannot_fit_the_duty_budget_is_warned_about() {
        // Biphasic 2 × 48 samples plus 96 reserved for recovery: 192 > 0.003 · 48000 = 144.
        let sets = ["safety.max_duty_cycle=0.003".to_string()];
        let (_, warnings) = load("q", QUICKSTART, &sets).unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("suppress every pulse")),
            "{warnings:?}"
        );
        let sets = ["safety.max_duty_cycle=0.004".to_string()];
        let (_, warnings) = load("q", QUICKSTART, &sets).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    /// The duty backstop would pass the same part of every tACS cycle: a direct current.
    #[test]
    fn duty_limited_tacs_is_refused_when_charge_must_balance() {
        let tacs = [
            "stimulation={kind = \"tacs\", freq_hz = 10, amplitude = 0.5}",
            "safety.max_duty_cycle=0.3",
            "safety.duty_window_s=0.1",
        ];
        let e = errors(QUICKSTART, &tacs);
        assert!(
            e.contains("safety.max_duty_cycle") && e.contains("direct"),
            "{e}"
        );
        let mut unbalanced: Vec<String> = tacs.iter().map(|s| s.to_string()).collect();
        unbalanced.push("safety.charge_balance=false".into());
        let (_, warnings) = load("q", QUICKSTART, &unbalanced).unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("direct")),
            "{warnings:?}"
        );
        let whole = [tacs[0].to_string(), "safety.max_duty_cycle=1".into()];
        assert!(load("q", QUICKSTART, &whole).is_ok());
    }

    /// A tACS window shorter than one cycle is mostly one polarity: refused when charge must
    /// balance (1e-9 Hz came out as a constant +1 for the whole window), a warning otherwise.
    #[test]
    fn tacs_of_less_than_one_cycle_is_refused_when_charge_must_balance() {
        let slow = |hz: &str| {
            vec![
                format!("stimulation={{kind = \"tacs\", freq_hz = {hz}, amplitude = 0.5}}"),
                "safety.max_duty_cycle=1".to_string(),
                "stimulation.start_s=1".to_string(),
                "stimulation.stop_s=2.5".to_string(),
            ]
        };
        let refused =
            |sets: Vec<String>| load("p.toml", QUICKSTART, &sets).unwrap_err().to_string();
        let e = refused(slow("1e-9"));
        assert!(
            e.contains("stimulation.freq_hz") && e.contains("direct"),
            "{e}"
        );
        // 0.6 Hz over 1.5 s: 0.9 cycles; 0.7 Hz: 1.05.
        assert!(refused(slow("0.6")).contains("0.900 cycles"));
        assert!(load("q", QUICKSTART, &slow("0.7")).is_ok());
        let mut unbalanced = slow("0.6");
        unbalanced.push("safety.charge_balance=false".into());
        let (_, warnings) = load("q", QUICKSTART, &unbalanced).unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("direct")),
            "{warnings:?}"
        );
    }

    /// `[network] history_precision`: exact by default, `"f32"` taken, anything else refused
    /// by name, and a warning where the network keeps no history for it to act on.
    #[test]
    fn history_precision_is_read_checked_and_warned_about_where_nothing_is_delayed() {
        let delayed = "network={topology=\"ring\", neighbours=2, gain=1, delay_ms=5}";
        let (profile, _) = load("q", QUICKSTART, &[delayed.to_string()]).unwrap();
        assert_eq!(profile.network.history_precision, HistoryPrecision::F64);
        let single = [
            delayed.to_string(),
            "network.history_precision=\"f32\"".to_string(),
        ];
        let (profile, warnings) = load("q", QUICKSTART, &single).unwrap();
        assert_eq!(profile.network.history_precision, HistoryPrecision::F32);
        assert!(
            !warnings.iter().any(|w| w.contains("history_precision")),
            "{warnings:?}"
        );
        let e = errors(QUICKSTART, &[delayed, "network.history_precision=\"f16\""]);
        assert!(
            e.contains("network.history_precision") && e.contains("f32"),
            "{e}"
        );
        for delays in ["", ", delay_ms=0", ", delay_ms=[0, 0, 0, 0]"] {
            let undelayed = format!(
                "network={{topology=\"ring\", neighbours=2, gain=1, history_precision=\"f32\"{delays}}}"
            );
            let (_, warnings) = load("q", QUICKSTART, &[undelayed]).unwrap();
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("history_precision") && w.contains("no delays")),
                "{delays}: {warnings:?}"
            );
        }
    }

    /// Errors name the key and the --set that gave it: a whole section replaced by --set is
    /// not blamed on the file's line, keys carry no stray dots, and the key blamed is the one
    /// at fault.
    #[test]
    fn errors_blame_the_key_and_the_set_that_gave_it() {
        let e = errors(
            QUICKSTART,
            &["estimator={kind=\"bandpass_hilbert\",low_hz=20,high_hz=12}"],
        );
        assert!(
            e.contains("estimator.low_hz") && e.contains("value given by --set estimator="),
            "{e}"
        );
        assert!(
            !e["p.toml:".len()..].starts_with(|c: char| c.is_ascii_digit()),
            "no line of the file: {e}"
        );
        for extra in ["neighbours=4", "rewire_prob=0.5", "weights=\"w.csv\""] {
            for topology in ["none", "all_to_all"] {
                let set = format!("network={{topology=\"{topology}\", gain=1, {extra}}}");
                let e = errors(QUICKSTART, &[&set]);
                let key = extra.split('=').next().unwrap();
                assert!(
                    e.contains(&format!("network.{key}: unknown key")) && e.contains(topology),
                    "{e}"
                );
            }
        }
        // A wrong sample rate is reported once, not again through what is measured against it.
        let e = errors(QUICKSTART, &["run.sample_rate_hz=-1"]);
        assert!(
            e.contains("run.sample_rate_hz") && !e.contains("nodes_rate_hz"),
            "{e}"
        );
        // A section given a bare value: the example shown is that section's.
        let e = errors(QUICKSTART, &["network=5"]);
        assert!(
            e.contains("network={topology") && !e.contains("echt"),
            "{e}"
        );
        let (_, warnings) = load("q", QUICKSTART, &["network={gain=2}".to_string()]).unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("no edges to act on")),
            "{warnings:?}"
        );
        let e = errors(
            QUICKSTART,
            &["model.noise_color=\"ou\"", "model.ou_tau_s=0"],
        );
        assert!(
            e.contains("model.ou_tau_s") && e.contains("correlation time"),
            "{e}"
        );
        let e = errors(QUICKSTART, &["audio.host=\"alsaa\""]);
        assert!(e.contains("audio.host") && e.contains("alsa"), "{e}");
        for host in ["auto", "ALSA", "jack"] {
            assert!(load("q", QUICKSTART, &[format!("audio.host=\"{host}\"")]).is_ok());
        }
        // The upper edge past Nyquist is the upper edge's fault, and the --set's, not line 38's.
        let e = errors(QUICKSTART, &["estimator.high_hz=30000"]);
        assert!(
            e.contains("estimator.high_hz:")
                && !e.contains("estimator.low_hz")
                && e.contains("value given by --set estimator.high_hz="),
            "{e}"
        );
        let e = errors(QUICKSTART, &["stimulation.nodes=\"none\""]);
        assert!(e.contains("stimulation.nodes:") && !e.contains(".."), "{e}");
        let e = errors(QUICKSTART, &["model.nodes=10000001"]);
        assert!(e.contains("1 to 10 000 000 nodes"), "{e}");
        let e = errors(QUICKSTART, &["stimulation.min_interval_s=0"]);
        assert!(
            e.contains("stimulation.min_interval_s:") && e.contains("no room"),
            "{e}"
        );
        // White noise has no pink corner to check, however slow the plant.
        if let Err(e) = load(
            "q",
            QUICKSTART,
            &["model.samples_per_step=100000".to_string()],
        ) {
            assert!(!e.to_string().contains("pink_lowest_hz"), "{e}");
        }
    }

    /// A ramp shorter than half a sample would round to none: full amplitude at once.
    #[test]
    fn a_ramp_under_half_a_sample_is_refused() {
        let e = errors(QUICKSTART, &["safety.ramp_s=1e-6"]);
        assert!(e.contains("safety.ramp_s") && e.contains("no ramp"), "{e}");
        assert!(load("q", QUICKSTART, &["safety.ramp_s=0".to_string()]).is_ok());
        assert!(load("q", QUICKSTART, &["safety.ramp_s=2.1e-5".to_string()]).is_ok());
    }

    #[test]
    fn a_resolved_profile_is_itself_a_profile_that_loads_to_the_same_thing() {
        for text in [
            QUICKSTART,
            include_str!("../profiles/kuramoto_network.toml"),
            include_str!("../profiles/harmonic_resonance.toml"),
        ] {
            let (p, _) = load("a", text, &[]).unwrap();
            let resolved = toml::to_string(&p).unwrap();
            let (again, _) =
                load("resolved", &resolved, &[]).unwrap_or_else(|e| panic!("{e}\n{resolved}"));
            assert_eq!(p, again);
        }
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = QUICKSTART.replacen("[run]", "[run]\nsample_rat_hz = 3", 1);
        let e = errors(&text, &[]);
        let line = text
            .lines()
            .position(|l| l.starts_with("sample_rat_hz"))
            .unwrap()
            + 1;
        assert!(
            e.contains(&format!("p.toml:{line}: run.sample_rat_hz: unknown key")),
            "{e}"
        );
        assert!(e.contains("sample_rate_hz"), "lists the expected keys: {e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = errors(QUICKSTART, &["run.duration_s=\"long\""]);
        assert!(
            e.contains("run.duration_s") && e.contains("invalid type"),
            "{e}"
        );
        assert!(e.contains("--set run.duration_s"), "{e}");
    }

    #[test]
    fn negative_sample_rate_is_rejected_with_its_line() {
        let text = QUICKSTART.replace("sample_rate_hz = 48000", "sample_rate_hz = -48000");
        let e = errors(&text, &[]);
        assert!(
            e.contains("run.sample_rate_hz") && e.contains("between 100 and"),
            "{e}"
        );
        assert!(e.starts_with("p.toml:"), "{e}");
    }

    #[test]
    fn sample_rates_beyond_the_range_or_between_whole_hz_are_refused() {
        // 1e12 Hz once reached the estimator's design, which then ran for hours.
        for rate in ["1000000000000", "1e12", "48000.5", "inf"] {
            let e = errors(QUICKSTART, &[&format!("run.sample_rate_hz={rate}")]);
            assert!(
                e.contains("run.sample_rate_hz") && e.contains("whole number"),
                "{e}"
            );
        }
    }

    #[test]
    fn missing_section_is_named() {
        let start = QUICKSTART.find("[safety]").unwrap();
        let end = QUICKSTART[start..]
            .find("\n\n")
            .map(|e| start + e)
            .unwrap_or(QUICKSTART.len());
        let text = format!("{}{}", &QUICKSTART[..start], &QUICKSTART[end..]);
        assert!(errors(&text, &[]).contains("missing section [safety]"));
    }

    #[test]
    fn malformed_toml_reports_the_line() {
        let e = errors("[run]\nsample_rate_hz = = 3\n", &[]);
        assert!(e.starts_with("p.toml:2: not valid TOML"), "{e}");
    }

    #[test]
    fn set_overrides_any_value_and_bare_words_are_strings() {
        let (p, _) = load(
            "q",
            QUICKSTART,
            &[
                "stimulation.target_phase_deg=90".into(),
                "model.integrator=euler_maruyama".into(),
            ],
        )
        .unwrap();
        match p.stimulation.policy {
            PolicySpec::PhaseLocked(pl) => assert_eq!(pl.target_phase_deg, 90.0),
            other => panic!("quickstart is phase-locked, got {other:?}"),
        }
        assert_eq!(p.model.integrator, Scheme::EulerMaruyama);
    }

    #[test]
    fn set_replaces_a_whole_section_with_an_inline_table() {
        let (p, _) = load(
            "q",
            QUICKSTART,
            &["estimator={kind = \"echt\", low_hz = 7, high_hz = 13}".into()],
        )
        .unwrap();
        assert!(
            matches!(p.estimator, EstimatorSection::Echt(_)),
            "{:?}",
            p.estimator
        );
        assert_eq!(p.estimator.band(), (7.0, 13.0));
        let e = errors(QUICKSTART, &["estimator=3"]);
        assert!(e.contains("inline table"), "{e}");
    }

    #[test]
    fn switching_the_policy_kind_ignores_the_other_policys_keys_with_a_warning() {
        let (p, warnings) = load(
            "q",
            QUICKSTART,
            &[
                "stimulation.kind=periodic".into(),
                "stimulation.rate_hz=10".into(),
            ],
        )
        .unwrap();
        assert!(matches!(p.stimulation.policy, PolicySpec::Periodic(_)));
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("stimulation.target_phase_deg does not apply")),
            "{warnings:?}"
        );
        // A key no policy knows is still an error.
        let e = errors(QUICKSTART, &["stimulation.target_phase=3"]);
        assert!(e.contains("stimulation.target_phase: unknown key"), "{e}");
    }

    #[test]
    fn unknown_kind_lists_the_kinds() {
        let e = errors(QUICKSTART, &["stimulation.kind=zap"]);
        assert!(
            e.contains("\"phase_locked\", \"periodic\", \"tacs\", \"none\""),
            "{e}"
        );
    }

    #[test]
    fn a_kind_that_is_not_a_string_names_the_kinds_and_what_was_found() {
        let e = errors(QUICKSTART, &["model.kind=3"]);
        assert!(
            e.contains("model.kind: expected a string, one of \"harmonic\""),
            "{e}"
        );
        assert!(
            e.contains("\"stuart_landau\"") && e.contains("\"horn\""),
            "{e}"
        );
        assert!(e.contains("found an integer"), "{e}");
        let e = errors(QUICKSTART, &["estimator.kind=[1]"]);
        assert!(
            e.contains("\"bandpass_hilbert\"") && e.contains("found an array"),
            "{e}"
        );
    }

    #[test]
    fn rk4_with_noise_is_refused() {
        let e = errors(QUICKSTART, &["model.integrator=rk4"]);
        assert!(
            e.contains("model.integrator") && e.contains("deterministic"),
            "{e}"
        );
    }

    #[test]
    fn sensor_node_out_of_range() {
        let e = errors(QUICKSTART, &["sensor.node=3"]);
        assert!(e.contains("node 3 does not exist"), "{e}");
    }

    #[test]
    fn model_params_errors_point_into_the_params_table() {
        let text = QUICKSTART.replacen("[model.params]", "[model.params]\nlamda = 1.0", 1);
        let e = errors(&text, &[]);
        let line = text.lines().position(|l| l.starts_with("lamda")).unwrap() + 1;
        assert!(
            e.contains(&format!(":{line}: model.params.lamda: unknown key")),
            "{e}"
        );
    }
}
