//! The engine: the control half that builds a run and the real-time half that runs it.
//!
//! Owns: [`build`] (control half: allocates and wires every component from a validated
//! [`Profile`]), the [`Processor`] (real-time half: [`Processor::process_block`]), the telemetry
//! [`Record`]s it emits, the [`Command`]s it accepts, and the [`offline`] driver.
//! May call: [`crate::model`], [`crate::estimate`], [`crate::stim`], [`crate::profile`].
//!
//! Lifecycle: `build` allocates everything (plant state, delay histories, filter state, the
//! latency line, the telemetry ring and the command queue) and hands back a [`Run`]; its
//! [`Processor`] is `Send + 'static` and moves to whatever thread drives it (the offline loop,
//! or an audio callback). From then on `process_block` never allocates, locks, blocks, prints or
//! touches files: telemetry goes out by a non-blocking push into a lock-free SPSC ring (full:
//! the record is dropped and counted), commands come in by a non-blocking pop from a bounded
//! channel and are applied at block boundaries.

mod forced;
mod input;
pub mod offline;
mod processor;

pub use forced::ForcedPlant;
use forced::{NoiseBank, NoiseInput};
pub use input::{
    CaptureSide, InputLink, InputReader, Realignment, Recording, REALIGNED_WITHIN_BLOCKS,
};
use processor::Source;
pub use processor::{OutputChannel, Processor};

/// Mixed into the run's seed for the pink-noise bank.
const PINK_SEED_MIX: u64 = 0x5049_4E4B_4E4F_4953;
/// Mixed into the run's seed for the Ornstein–Uhlenbeck bank ("OU NOISE").
const OU_SEED_MIX: u64 = 0x4F55_204E_4F49_5345;

use crate::model::baier_grid::BaierGrid;
use crate::model::harmonic;
use crate::model::horn::Horn;
use crate::model::jansen_rit::JansenRit;
use crate::model::mpr::Mpr;
use crate::model::ou::OuNoiseBank;
use crate::model::pink::PinkNoiseBank;
use crate::model::rate::Rate;
use crate::model::sl_dn_field::SlDnField;
use crate::model::wilson_cowan::WilsonCowan;
use crate::model::{Coupling, Kuramoto, Plant, PlantCommon, StuartLandau};
use crate::profile::{ChannelSignal, ModelParams, NoiseColor, PolicySpec, Profile, StimNodes};
use crate::stim::{Limiter, StimCommand};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::{HeapCons, HeapRb};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// One telemetry record: fixed-size and `Copy`, so pushing it never allocates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Record {
    /// The state of the loop at one sample. Followed by one [`Record::Node`] per recorded node.
    Frame {
        /// Sample index.
        sample: u64,
        /// What the sensor delivered (observable plus sensor noise).
        observable: f32,
        /// Estimated phase, rad.
        phase: f32,
        /// Estimated amplitude, observable units.
        amplitude: f32,
        /// Stimulus emitted at this sample (after the limiter), stimulus units.
        stimulus: f32,
        /// The plant's own phase at this sample (before this sample's forcing acts), rad; NaN
        /// where the plant defines none.
        true_phase: f32,
        /// The policy's stimulation clock phase at this sample, rad; NaN where there is none.
        clock_phase: f32,
    },
    /// A recorded node's observable at the preceding frame's sample.
    Node {
        /// Observable of the node.
        value: f32,
    },
    /// Every node's observable is recorded at this sample: followed by
    /// [`NodeSnapshots::chunks`] [`Record::NodeValues`] in node order (the group goes together or
    /// not at all).
    Snapshot {
        /// Sample index.
        sample: u64,
    },
    /// Up to [`NODE_CHUNK`] node observables of the preceding snapshot; unused slots are NaN.
    NodeValues {
        /// Observables, in node order.
        values: [f32; NODE_CHUNK],
    },
    /// A pulse the limiter accepted, at its emission sample.
    Pulse {
        /// Emission sample.
        sample: u64,
        /// Target phase, rad (NaN for policies without one).
        target: f32,
        /// The estimator's predicted phase at the trigger (its estimate of the phase at arrival).
        estimated: f32,
        /// Delivered amplitude at the onset sample, stimulus units.
        amplitude: f32,
    },
    /// A pulse the policy asked for and the limiter refused.
    Suppressed {
        /// Sample.
        sample: u64,
    },
    /// One processed block's timing.
    Block {
        /// First sample of the block.
        first_sample: u64,
        /// Frames in the block.
        frames: u32,
        /// Wall time spent in `process_block`, ns.
        busy_ns: u64,
        /// When the block started, ns since the processor was built (real-time runs: the
        /// callback clock whose period the summary reports).
        started_ns: u64,
    },
    /// A stimulation command ([`Command::Stim`]) was applied; `clamped` when it asked for more
    /// than the safety limits allow. The drivers' [`Command::EndRun`] is not recorded.
    Command {
        /// Sample at which it was applied (a block boundary).
        sample: u64,
        /// Whether the limiter's bounds changed what it asked for.
        clamped: bool,
    },
}

/// Node values per [`Record::NodeValues`] (a record stays the size of a frame).
pub const NODE_CHUNK: usize = 8;

/// Recording of every node's observable (`[output] nodes_rate_hz`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeSnapshots {
    /// Samples between snapshots (≥ 1).
    pub every: u64,
    /// Nodes per snapshot.
    pub nodes: usize,
    /// `(rows, cols)` of the plant's grid, or `(1, nodes)` when it has none.
    pub shape: (usize, usize),
    /// Whether the plant is a grid.
    pub grid: bool,
}

impl NodeSnapshots {
    /// [`Record::NodeValues`] per snapshot.
    pub fn chunks(&self) -> usize {
        self.nodes.div_ceil(NODE_CHUNK)
    }
}

/// A delivered pulse, for trigger lines: the sample at which it was emitted. Pushed by the
/// real-time half into its own SPSC ring (full: dropped and counted), read by the trigger
/// writer in the control half.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TriggerEvent {
    /// The sample (index since the start of the run) at which the pulse is emitted.
    pub sample: u64,
}

/// A request from the control half, applied at the next block boundary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Command {
    /// A stimulation change (target phase, amplitude, stop/start of stimulation).
    Stim(StimCommand),
    /// End the run: ramp the output to zero, then report [`Processor::finished`].
    EndRun,
}

/// Counters shared between the real-time half and the control half (relaxed atomics).
#[derive(Debug, Default)]
pub struct Counters {
    /// Telemetry records dropped because the queue was full.
    pub dropped_records: AtomicU64,
    /// Samples the engine needed from the sound-card input that had not arrived (read as 0).
    pub input_underruns: AtomicU64,
    /// Times the input link's delay was restored after it moved (an xrun, drifting clocks).
    pub input_realignments: AtomicU64,
    /// Captured samples skipped, or reads held, to restore it.
    pub input_realigned_samples: AtomicU64,
    /// Blocks whose processing took longer than their period.
    pub late_blocks: AtomicU64,
    /// Samples processed.
    pub samples: AtomicU64,
    /// Set once the run has ended and the output is silent.
    pub finished: AtomicBool,
    /// When the first block began, nanoseconds after the processor's
    /// [`Processor::origin`]: where a device's stream put sample 0.
    pub first_block_ns: AtomicU64,
}

impl Counters {
    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What the recorder and the drivers need to know about a built run.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The sample clock, Hz.
    pub sample_rate_hz: f64,
    /// Frames per block.
    pub block_frames: usize,
    /// Declared loop latency, samples.
    pub latency_samples: usize,
    /// Samples in the whole run.
    pub total_samples: u64,
    /// First sample of stimulation.
    pub stim_start_sample: u64,
    /// Sample at which stimulation starts ramping down.
    pub stim_stop_sample: u64,
    /// Nodes recorded as extra channels.
    pub record_nodes: Vec<usize>,
    /// Whether the policy stimulates at all (false for sham).
    pub stimulates: bool,
    /// The estimator's settling time, samples.
    pub settling_samples: usize,
    /// When the sensor reads a recording, a sound-card input or a plant without a phase of its
    /// own: the band (Hz) of the offline ground truth,
    /// which the recorder computes from the recorded signal at the end of the run.
    pub external_truth_band: Option<(f64, f64)>,
    /// Longest stretch of that signal kept for the offline ground truth, samples
    /// ([`crate::record::MAX_EXTERNAL_SAMPLES`] in a run): pulses after it get none.
    pub external_truth_samples: usize,
    /// Bytes of plant state and delay history.
    pub plant_bytes: usize,
    /// Every node's observable recorded this often, if asked for.
    pub node_snapshots: Option<NodeSnapshots>,
}

/// A built run: the real-time half plus the control half's handles.
pub struct Run {
    /// The real-time half; move it to the thread that drives it.
    pub processor: Processor,
    /// The telemetry consumer; give it to the recorder.
    pub telemetry: HeapCons<Record>,
    /// Send commands here (bounded; `try_send` never blocks the caller either).
    pub commands: crossbeam_channel::Sender<Command>,
    /// Counters readable while the run goes on.
    pub counters: Arc<Counters>,
    /// Facts about the run.
    pub info: RunInfo,
    /// Delivered pulses for the trigger line, when the profile has a `[trigger]` section.
    pub trigger_events: Option<HeapCons<TriggerEvent>>,
    /// The capture side of the input link, when a sound-card input is the sensor's source:
    /// the driver's input callback pushes the chosen channel's samples here.
    pub input: Option<CaptureSide>,
}

/// Pulses the trigger ring holds: far more than can be due at once at any legal pulse rate.
const TRIGGER_CAPACITY: usize = 1024;
/// Longest coupling delay, seconds.
const MAX_DELAY_S: f64 = 10.0;
/// Largest telemetry ring a run may allocate, bytes (it is touched in full when the run is
/// built).
const MAX_TELEMETRY_BYTES: f64 = 4e9;
/// Largest delay history a run may allocate, bytes.
const MAX_HISTORY_BYTES: f64 = 4e9;

/// Capacity of the command queue: commands are rare, and a full queue rejects, never blocks.
pub const COMMAND_CAPACITY: usize = 64;

/// Build a run from a validated profile. Allocation and file reading (CSV coupling) happen here
/// and nowhere later. Errors name the profile key at fault.
pub fn build(profile: &Profile) -> Result<Run, String> {
    let fs = profile.run.sample_rate_hz;
    let latency = profile.run.latency_samples();
    let plant = forced_plant(profile)?;
    let estimator = profile
        .estimator
        .build(fs, latency as f64)
        .map_err(|e| format!("estimator: {e}"))?;
    let policy = profile
        .stimulation
        .policy
        .build(fs)
        .map_err(|e| format!("stimulation: {e}"))?;
    let limits = profile.safety.limits();
    let mut limiter = Limiter::new(&limits, fs).map_err(|e| format!("safety: {e}"))?;
    // Admission reserves duty budget for a whole declared pulse and its recovery, from the
    // first onset on.
    if let Some(samples) = policy.pulse_samples() {
        limiter.declare_pulse_samples(samples);
    }

    let total = profile.run.total_samples();
    let ramp = (profile.safety.ramp_s * fs).round() as u64;
    let start = ((profile.stimulation.start_s * fs).round() as u64).min(total);
    let schedule = profile
        .stimulation
        .commands
        .iter()
        .map(|c| Ok(((c.at_s * fs).round() as u64, c.parsed()?)))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| format!("stimulation.commands: {e}"))?;
    // Stimulation ends early enough that the ramp-down, and the charge recovery of a pulse
    // accepted just before the stop (it ends within its reservation of the onset), are complete
    // when the run ends.
    let tail = match policy.pulse_samples() {
        Some(_) => ramp.max(limiter.episode_reservation()),
        None => ramp,
    };
    let stop_requested = profile
        .stimulation
        .stop_s
        .map_or(total, |s| (s * fs).round() as u64);
    let stop = stop_requested.min(total.saturating_sub(tail)).max(start);

    let record_nodes = profile.output.record_nodes.clone();
    // At least two whole blocks (a driver may wait for room for one) plus the records every
    // queued command can produce.
    let frames_capacity = ((profile.output.telemetry_buffer_s * fs).ceil() as usize)
        .max(2 * profile.run.block_frames);
    let node_snapshots = (profile.output.nodes_rate_hz > 0.0).then(|| {
        let grid = plant.plant().grid();
        NodeSnapshots {
            every: ((fs / profile.output.nodes_rate_hz).round() as u64).max(1),
            nodes: plant.plant().nodes(),
            shape: grid.unwrap_or((1, plant.plant().nodes())),
            grid: grid.is_some(),
        }
    });
    let snapshot_records = node_snapshots.map_or(0, |s| {
        (frames_capacity as u64).div_ceil(s.every) as usize * (1 + s.chunks())
    });
    let capacity =
        frames_capacity * (2 + record_nodes.len()) + snapshot_records + COMMAND_CAPACITY + 64;
    let ring_bytes = capacity as f64 * std::mem::size_of::<Record>() as f64;
    if ring_bytes > MAX_TELEMETRY_BYTES {
        return Err(format!(
            "output.telemetry_buffer_s: {} s of telemetry at {fs} Hz with {} recorded node(s){} \
             needs {:.1} GB of memory (at most {:.1} GB); lower telemetry_buffer_s (at least two \
             blocks are kept whatever it is), record fewer nodes or lower nodes_rate_hz",
            profile.output.telemetry_buffer_s,
            record_nodes.len(),
            if node_snapshots.is_some() {
                " and node snapshots"
            } else {
                ""
            },
            ring_bytes / 1e9,
            MAX_TELEMETRY_BYTES / 1e9
        ));
    }
    let (mut producer, mut consumer) = HeapRb::<Record>::new(capacity).split();
    // Touch every page of the ring now: first-touch page faults inside the audio callback
    // would otherwise cost a block its deadline in the first second of a run.
    while producer.try_push(Record::Suppressed { sample: 0 }).is_ok() {}
    consumer.clear();
    let (command_tx, command_rx) = crossbeam_channel::bounded(COMMAND_CAPACITY);
    let (input_tx, source) = if let Some(path) = &profile.sensor.file {
        let recording =
            Recording::load(path, profile.sensor.channel, fs, profile.sensor.loop_file)?;
        if !profile.sensor.loop_file && (recording.len() as u64) < total {
            return Err(format!(
                "sensor.file: {} lasts {:.3} s but the run {:.3} s; shorten run.duration_s or set \
                 sensor.loop = true",
                path.display(),
                recording.len() as f64 / fs,
                total as f64 / fs
            ));
        }
        (None, Source::Recording(recording))
    } else if profile.audio.has_input() {
        let offset = profile.audio.input_offset_blocks * profile.run.block_frames;
        let link = InputLink::new(
            offset,
            offset + 64 * profile.run.block_frames,
            fs,
            profile.run.block_frames,
        );
        (Some(link.capture), Source::Capture(link.reader))
    } else {
        (None, Source::Plant)
    };
    let (trigger_tx, trigger_rx) = match &profile.trigger {
        Some(_) => {
            let (tx, rx) = HeapRb::<TriggerEvent>::new(TRIGGER_CAPACITY).split();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let counters = Arc::new(Counters::default());

    let sensor_rng = {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(profile.run.seed);
        rng.long_jump();
        rng
    };
    // Where the model defines no phase (Wilson–Cowan, Jansen–Rit, MPR, …) the ground truth is
    // the offline estimate, as for recorded signals (ENGINE.md).
    let plant_has_phase = plant.sense(profile.sensor.node).1.is_some();
    let info = RunInfo {
        sample_rate_hz: fs,
        block_frames: profile.run.block_frames,
        latency_samples: latency,
        total_samples: total,
        stim_start_sample: start,
        stim_stop_sample: stop,
        record_nodes: record_nodes.clone(),
        stimulates: !matches!(profile.stimulation.policy, PolicySpec::None),
        settling_samples: estimator.settling_samples(),
        external_truth_band: (profile.sensor.external(&profile.audio) || !plant_has_phase)
            .then(|| profile.estimator.band()),
        external_truth_samples: crate::record::MAX_EXTERNAL_SAMPLES,
        plant_bytes: plant.plant().state_bytes(),
        node_snapshots,
    };
    let channels = profile
        .output
        .channels
        .iter()
        .enumerate()
        .map(|(i, &signal)| {
            let gain = profile.output.gain(i);
            let bound = match signal {
                ChannelSignal::Stimulus => {
                    processor::f32_at_most(gain.abs() * limits.max_amplitude)
                }
                _ => 1.0,
            };
            OutputChannel {
                signal,
                gain: gain as f32,
                bound,
            }
        })
        .collect();
    let trigger_samples = ((profile.output.trigger_width_ms * 1e-3 * fs).round() as u32).max(1);
    let processor = Processor::new(processor::Parts {
        plant,
        sensor: profile.sensor.node,
        sensor_noise_sd: profile.sensor.noise_sd,
        sensor_rng,
        estimator,
        policy,
        limiter,
        latency_samples: latency,
        stim_start_sample: start,
        stim_stop_sample: stop,
        record_nodes,
        node_snapshots,
        channels,
        trigger_samples,
        sample_rate_hz: fs,
        max_amplitude: limits.max_amplitude,
        telemetry: producer,
        trigger: trigger_tx,
        source,
        commands: command_rx,
        schedule,
        counters: Arc::clone(&counters),
    });
    Ok(Run {
        processor,
        telemetry: consumer,
        commands: command_tx,
        counters,
        info,
        trigger_events: trigger_rx,
        input: input_tx,
    })
}

/// The profile's plant with its forcing path: per-node forcing gains from
/// `stimulation.nodes`, coloured-noise input when `model.noise_color` is `pink` or `ou`, one
/// step every
/// `model.samples_per_step` samples. Errors name the profile key at fault.
pub fn forced_plant(profile: &Profile) -> Result<ForcedPlant, String> {
    let fs = profile.run.sample_rate_hz;
    let plant = build_plant(profile)?;
    let m = &profile.model;
    let plant_rate = fs / m.samples_per_step as f64;
    // Seeds of their own: a bank's streams are long jumps from its seed, which from the run's
    // seed would be the sensor's noise stream.
    let bank = match m.noise_color {
        _ if m.noise_sd == 0.0 => None,
        NoiseColor::White => None,
        NoiseColor::Pink => Some(NoiseBank::Pink(
            PinkNoiseBank::new(
                plant.nodes(),
                plant_rate,
                m.pink_lowest_hz,
                profile.run.seed ^ PINK_SEED_MIX,
            )
            .map_err(|e| format!("model.noise_color: {e}"))?,
        )),
        NoiseColor::Ou => Some(NoiseBank::Ou(
            OuNoiseBank::new(
                plant.nodes(),
                1.0 / plant_rate,
                m.ou_tau_s,
                profile.run.seed ^ OU_SEED_MIX,
            )
            .map_err(|e| format!("model.ou_tau_s: {e}"))?,
        )),
    };
    let noise = bank.map(|bank| NoiseInput::new(bank, m.noise_sd));
    let nodes = profile.model.nodes;
    let mut forcing_gain = vec![0.0; nodes];
    match &profile.stimulation.nodes {
        StimNodes::All(_) => forcing_gain.fill(profile.model.forcing_gain),
        StimNodes::List(list) => {
            for &i in list {
                forcing_gain[i] = profile.model.forcing_gain;
            }
        }
        StimNodes::Disc(disc) => {
            let (rows, cols) = plant.grid().ok_or_else(|| {
                format!(
                    "stimulation.nodes: a disc needs a grid plant (baier_grid, sl_dn_field); \
                     model.kind = \"{}\" has none: list the nodes instead",
                    profile.model.kind.name()
                )
            })?;
            if disc.row >= rows || disc.col >= cols {
                return Err(format!(
                    "stimulation.nodes: the disc's centre (row {}, col {}) is outside the \
                     {rows} × {cols} grid",
                    disc.row, disc.col
                ));
            }
            for i in disc.nodes(rows, cols) {
                forcing_gain[i] = profile.model.forcing_gain;
            }
        }
    }

    Ok(ForcedPlant::new(
        plant,
        forcing_gain,
        noise,
        profile.model.samples_per_step,
    ))
}

fn build_plant(profile: &Profile) -> Result<Box<dyn Plant>, String> {
    // Detect the per-node loops' vector width here, so that no real-time step is the first.
    crate::lanes::Lanes::chosen();
    let m = &profile.model;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(profile.run.seed);
    rng.jump();
    rng.jump();
    let coupling = Coupling::build(&profile.network.spec, m.nodes, &mut rng)
        .map_err(|e| format!("network: {e}"))?;
    let dt = m.dt(profile.run.sample_rate_hz);
    let max_delay = coupling.max_delay_s();
    if max_delay > MAX_DELAY_S {
        // Blame where the delays came from: a csv topology's file, or the key.
        let source = match &profile.network.spec.topology {
            crate::model::network::Topology::Csv {
                delays_ms: Some(file),
                ..
            } => format!("network.delays_ms ({})", file.display()),
            _ => "network.delay_ms".to_string(),
        };
        let ms = max_delay * 1e3;
        let longest = if ms < 1e6 {
            format!("{ms:.1}")
        } else {
            format!("{ms:e}")
        };
        return Err(format!(
            "{source}: the longest delay is {longest} ms; delays of at most {} ms are supported",
            MAX_DELAY_S * 1e3
        ));
    }
    let history_bytes = ((max_delay / dt).round() + 1.0) * m.nodes as f64 * 16.0;
    if history_bytes > MAX_HISTORY_BYTES {
        return Err(format!(
            "network.delay_ms: {} nodes × {:.0} ms of delay history at a {:.1} µs step need {:.1} GB; \
             shorten the delays, use fewer nodes or raise model.samples_per_step",
            m.nodes,
            max_delay * 1e3,
            dt * 1e6,
            history_bytes / 1e9
        ));
    }
    let common = PlantCommon {
        nodes: m.nodes,
        scheme: m.integrator,
        dt,
        noise_sd: match m.noise_color {
            NoiseColor::White => m.noise_sd,
            NoiseColor::Pink | NoiseColor::Ou => 0.0,
        },
        coupling,
        gain: profile.network.gain,
        seed: profile.run.seed,
        history_precision: profile.network.history_precision,
    };
    Ok(match &m.params {
        ModelParams::StuartLandau(p) => Box::new(StuartLandau::new(&common, p)?),
        ModelParams::Kuramoto(p) => Box::new(Kuramoto::new(&common, p)?),
        ModelParams::Harmonic(p) => Box::new(harmonic::build(&common, p)?),
        ModelParams::SlDnField(p) => Box::new(SlDnField::new(&common, p)?),
        ModelParams::Rate(p) => Box::new(Rate::new(&common, p)?),
        ModelParams::WilsonCowan(p) => Box::new(WilsonCowan::new(&common, p)?),
        ModelParams::BaierGrid(p) => Box::new(BaierGrid::new(&common, p)?),
        ModelParams::JansenRit(p) => Box::new(JansenRit::new(&common, p)?),
        ModelParams::Mpr(p) => Box::new(Mpr::new(&common, p)?),
        ModelParams::Horn(p) => Box::new(Horn::new(&common, p)?),
    })
}
