//! The real-time half: one call of [`Processor::process_block`] runs the whole loop for a block.

use super::{
    Command, Counters, ForcedPlant, InputReader, NodeSnapshots, Realignment, Record, Recording,
    TriggerEvent, NODE_CHUNK,
};
use crate::estimate::PhaseEstimator;
use crate::profile::{ChannelSignal, SensorNode};
use crate::stim::{Limiter, Policy, StimCommand, StimSample};
use rand::RngExt;
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;
use ringbuf::traits::{Observer, Producer};
use ringbuf::HeapProd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Everything [`super::build`] hands to the processor.
pub(super) struct Parts {
    pub plant: ForcedPlant,
    pub sensor: SensorNode,
    pub sensor_noise_sd: f64,
    pub sensor_rng: Xoshiro256PlusPlus,
    pub estimator: Box<dyn PhaseEstimator>,
    pub policy: Box<dyn Policy>,
    pub limiter: Limiter,
    pub latency_samples: usize,
    pub stim_start_sample: u64,
    pub stim_stop_sample: u64,
    pub record_nodes: Vec<usize>,
    pub node_snapshots: Option<NodeSnapshots>,
    pub channels: Vec<OutputChannel>,
    pub trigger_samples: u32,
    pub sample_rate_hz: f64,
    pub max_amplitude: f64,
    pub telemetry: HeapProd<Record>,
    pub trigger: Option<HeapProd<TriggerEvent>>,
    pub source: Source,
    pub commands: crossbeam_channel::Receiver<Command>,
    pub schedule: Vec<(u64, StimCommand)>,
    pub counters: Arc<Counters>,
}

/// What the sensor reads.
pub(super) enum Source {
    /// The plant's observable.
    Plant,
    /// A sound-card input, through the input link.
    Capture(InputReader),
    /// A recording played from memory.
    Recording(Recording),
}

/// One output channel: what it carries, its gain, and the bound of its last stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutputChannel {
    /// The signal.
    pub signal: ChannelSignal,
    /// Output units per signal unit.
    pub gain: f32,
    /// |output| never exceeds this: `gain · max_amplitude` for stimulation, 1 for the rest.
    pub bound: f32,
}

/// What one sample produced, before the channel map.
#[derive(Clone, Copy, Debug)]
struct FrameOut {
    stimulus: f32,
    observable: f64,
    phase: f64,
    onset: bool,
}

/// Where the stimulation window is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    /// Before `stim_start_sample`: the policy is not consulted.
    Waiting,
    /// Inside the window.
    Open,
    /// Past `stim_stop_sample`, or the run was ended: ramping down, then silent for good.
    Closed,
}

/// The real-time half of a run: plant → sensor → estimator → policy → limiter → output, with
/// the limited stimulus fed back into the plant exactly `latency_samples` later.
///
/// Invariants: nothing here allocates, locks or blocks after construction; every output sample
/// has passed the limiter; the forcing the plant receives is the output delayed by the declared
/// latency, scaled by each node's forcing gain.
pub struct Processor {
    plant: ForcedPlant,
    sensor: SensorNode,
    sensor_noise_sd: f64,
    sensor_rng: Xoshiro256PlusPlus,
    /// The sensor's clean reading and the ground-truth phase, valid until the plant steps
    /// (the plant is held between steps, and a mean field over many nodes is not free).
    sensed: Option<(f64, Option<f64>)>,
    estimator: Box<dyn PhaseEstimator>,
    policy: Box<dyn Policy>,
    limiter: Limiter,
    /// Ring of the last `latency_samples` outputs; `latency_head` is the oldest.
    latency_line: Vec<f64>,
    latency_head: usize,
    stim_start_sample: u64,
    stim_stop_sample: u64,
    window: Window,
    /// Stopped by a `Stop` command (until `Start`), whatever the window.
    paused: bool,
    ending: bool,
    record_nodes: Vec<usize>,
    node_snapshots: Option<NodeSnapshots>,
    channels: Vec<OutputChannel>,
    trigger_samples: u32,
    trigger_left: u32,
    sample: u64,
    period_ns: f64,
    /// When the processor was built (the origin of `Record::Block::started_ns`).
    origin: Instant,
    max_amplitude: f64,
    /// The largest f32 not above `max_amplitude`: outputs are f32, and rounding to f32 must
    /// not take a sample past the limit.
    max_amplitude_f32: f32,
    telemetry: HeapProd<Record>,
    trigger: Option<HeapProd<TriggerEvent>>,
    /// What the sensor reads.
    source: Source,
    commands: crossbeam_channel::Receiver<Command>,
    /// The profile's timed commands, `(sample, command)` in time order: each is applied at the
    /// first block that starts at or after its sample.
    schedule: Vec<(u64, StimCommand)>,
    /// How many of `schedule` have been applied.
    scheduled: usize,
    counters: Arc<Counters>,
}

impl Processor {
    pub(super) fn new(mut p: Parts) -> Self {
        // Silent until the stimulation window opens; `start` then ramps up from zero.
        p.limiter.stop();
        Self {
            sensor: p.sensor,
            sensor_noise_sd: p.sensor_noise_sd,
            sensor_rng: p.sensor_rng,
            sensed: None,
            estimator: p.estimator,
            policy: p.policy,
            limiter: p.limiter,
            latency_line: vec![0.0; p.latency_samples],
            latency_head: 0,
            stim_start_sample: p.stim_start_sample,
            stim_stop_sample: p.stim_stop_sample,
            window: Window::Waiting,
            paused: false,
            ending: false,
            record_nodes: p.record_nodes,
            node_snapshots: p.node_snapshots,
            channels: p.channels,
            trigger_samples: p.trigger_samples,
            trigger_left: 0,
            sample: 0,
            period_ns: 1e9 / p.sample_rate_hz,
            origin: Instant::now(),
            max_amplitude: p.max_amplitude,
            max_amplitude_f32: f32_at_most(p.max_amplitude),
            telemetry: p.telemetry,
            trigger: p.trigger,
            source: p.source,
            commands: p.commands,
            schedule: p.schedule,
            scheduled: 0,
            counters: p.counters,
            plant: p.plant,
        }
    }

    /// Samples processed so far.
    pub fn sample(&self) -> u64 {
        self.sample
    }

    /// Whether the run has been ended (by [`Command::EndRun`]) and its output is silent.
    pub fn finished(&self) -> bool {
        self.ending && self.limiter.is_silent()
    }

    /// Records the telemetry ring can still take (drivers that may wait use it; the real-time
    /// driver never does).
    pub fn telemetry_vacancy(&self) -> usize {
        self.telemetry.vacant_len()
    }

    /// Records one sample produces at most (a frame, its node values, a pulse record).
    pub fn records_per_sample(&self) -> usize {
        2 + self.record_nodes.len()
    }

    /// When the processor was built: the origin of its block times and of
    /// [`super::Counters::first_block_ns`].
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Output channels per frame.
    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    /// Run the loop for `output.len() / channels()` frames, writing interleaved frames of the
    /// channel map to `output` (whose length must be a multiple of `channels()`).
    ///
    /// Real-time safe: no allocation, no locks, no blocking, no I/O.
    pub fn process_block(&mut self, output: &mut [f32]) {
        let started = Instant::now();
        let first_sample = self.sample;
        if first_sample == 0 {
            self.counters.first_block_ns.store(
                started.duration_since(self.origin).as_nanos() as u64,
                Ordering::Relaxed,
            );
        }
        self.apply_commands();
        if let Source::Capture(input) = &mut self.source {
            if let Realignment::Skipped(k) | Realignment::Held(k) = input.align() {
                self.counters
                    .input_realignments
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .input_realigned_samples
                    .fetch_add(k as u64, Ordering::Relaxed);
            }
        }
        let width = self.channels.len();
        let frames = output.len() / width;
        for frame in output.chunks_exact_mut(width) {
            let out = self.process_sample();
            if out.onset {
                self.trigger_left = self.trigger_samples;
            }
            let trigger = if self.trigger_left > 0 {
                self.trigger_left -= 1;
                1.0
            } else {
                0.0
            };
            for (slot, ch) in frame.iter_mut().zip(&self.channels) {
                let value = match ch.signal {
                    ChannelSignal::Stimulus => out.stimulus,
                    ChannelSignal::Trigger => trigger,
                    ChannelSignal::Observable => out.observable as f32,
                    ChannelSignal::Phase => (out.phase / std::f64::consts::PI) as f32,
                    ChannelSignal::Silence => 0.0,
                };
                // The last stage of every channel: nothing leaves beyond its bound (NaN → 0).
                let v = ch.gain * value;
                *slot = if v.is_nan() {
                    0.0
                } else {
                    v.clamp(-ch.bound, ch.bound)
                };
            }
        }
        let busy_ns = started.elapsed().as_nanos() as u64;
        if busy_ns as f64 > self.period_ns * frames as f64 {
            self.counters.late_blocks.fetch_add(1, Ordering::Relaxed);
        }
        self.push(Record::Block {
            first_sample,
            frames: frames as u32,
            busy_ns,
            started_ns: started.duration_since(self.origin).as_nanos() as u64,
        });
        self.counters.samples.store(self.sample, Ordering::Relaxed);
        if self.finished() {
            self.counters.finished.store(true, Ordering::Relaxed);
        }
    }

    /// The profile's commands now due, then those queued by the control half.
    fn apply_commands(&mut self) {
        while let Some(&(sample, command)) = self.schedule.get(self.scheduled) {
            if sample > self.sample {
                break;
            }
            self.scheduled += 1;
            self.apply(Command::Stim(command));
        }
        while let Ok(command) = self.commands.try_recv() {
            self.apply(command);
        }
    }

    /// Apply one command at this block boundary (real-time safe), and record it unless it is
    /// the driver's own end of run.
    fn apply(&mut self, command: Command) {
        let mut clamped = false;
        match command {
            // The drivers' own stop (an interrupt, a failed recorder, the device's end): not
            // a user's command, so no `Record::Command` (the summary counts those).
            Command::EndRun => {
                self.ending = true;
                self.window = Window::Closed;
                self.limiter.stop();
                return;
            }
            Command::Stim(c @ StimCommand::Stop) => {
                self.paused = true;
                self.limiter.stop();
                self.policy.apply(&c);
            }
            Command::Stim(c @ StimCommand::Start) => {
                self.paused = false;
                self.policy.apply(&c);
                if self.window == Window::Open {
                    self.limiter.start();
                }
            }
            Command::Stim(StimCommand::SetAmplitude(a)) => {
                // Amplitudes are magnitudes (polarity is the pulse shape's): a negative
                // one is applied as 0, and reported as clamped like any other bound.
                let bounded = if a.is_finite() {
                    a.clamp(0.0, self.max_amplitude)
                } else {
                    0.0
                };
                clamped = bounded != a;
                self.policy.apply(&StimCommand::SetAmplitude(bounded));
            }
            Command::Stim(c @ StimCommand::SetTargetPhaseDeg(deg)) => {
                if deg.is_finite() {
                    self.policy.apply(&c);
                } else {
                    clamped = true;
                }
            }
        }
        self.push(Record::Command {
            sample: self.sample,
            clamped,
        });
    }

    /// Every node's observable at sample `n`, as one all-or-nothing group of records.
    fn push_snapshot(&mut self, n: u64, snapshots: NodeSnapshots) {
        let group = 1 + snapshots.chunks();
        if self.telemetry.vacant_len() < group {
            self.counters
                .dropped_records
                .fetch_add(group as u64, Ordering::Relaxed);
            return;
        }
        self.push(Record::Snapshot { sample: n });
        for chunk in 0..snapshots.chunks() {
            let mut values = [f32::NAN; NODE_CHUNK];
            let first = chunk * NODE_CHUNK;
            for (k, v) in values.iter_mut().enumerate() {
                if first + k < snapshots.nodes {
                    *v = self.plant.plant().observable(first + k) as f32;
                }
            }
            self.push(Record::NodeValues { values });
        }
    }

    #[inline]
    fn process_sample(&mut self) -> FrameOut {
        let n = self.sample;
        // 1. Sensor: the plant as it is at this sample, before this sample's forcing acts.
        let (clean, true_phase) = match &mut self.source {
            Source::Capture(input) => {
                let x = input.read().unwrap_or_else(|| {
                    self.counters
                        .input_underruns
                        .fetch_add(1, Ordering::Relaxed);
                    0.0
                });
                (f64::from(x), None)
            }
            Source::Recording(recording) => (f64::from(recording.read()), None),
            Source::Plant => match self.sensed {
                Some(reading) => reading,
                None => {
                    let reading = self.plant.sense(self.sensor);
                    self.sensed = Some(reading);
                    reading
                }
            },
        };
        let mut observable = clean;
        if self.sensor_noise_sd > 0.0 {
            let z: f64 = self.sensor_rng.sample(StandardNormal);
            observable += self.sensor_noise_sd * z;
        }
        // 2. Estimator.
        let estimate = self.estimator.process(observable);
        // 3. Policy, gated by the stimulation window and by Stop/Start commands; while the
        //    limiter ramps down the policy still runs, so a pulse in progress ends cleanly.
        if self.window == Window::Waiting && n >= self.stim_start_sample {
            self.window = Window::Open;
            if !self.paused {
                self.limiter.start();
            }
        }
        if self.window == Window::Open && n >= self.stim_stop_sample {
            self.window = Window::Closed;
            self.limiter.stop();
        }
        let since_start = n.saturating_sub(self.stim_start_sample);
        let consult = (self.window == Window::Open && !self.paused) || !self.limiter.is_silent();
        let request = if consult {
            self.policy.next(since_start, &estimate)
        } else {
            StimSample {
                value: 0.0,
                onset: false,
                clock_phase_rad: f64::NAN,
            }
        };
        // 4. Limiter: the last stage before the output and the forcing.
        let limited = self.limiter.process(request);
        let out = limited.value;
        let out_f32 = (out as f32).clamp(-self.max_amplitude_f32, self.max_amplitude_f32);
        // 5. Latency line: what was emitted `latency` samples ago reaches the plant now.
        let delivered = if self.latency_line.is_empty() {
            out
        } else {
            let oldest = self.latency_line[self.latency_head];
            self.latency_line[self.latency_head] = out;
            self.latency_head += 1;
            if self.latency_head == self.latency_line.len() {
                self.latency_head = 0;
            }
            oldest
        };
        // 6. Telemetry, of the state this sample saw: a frame and its node values go together
        //    or not at all.
        let group = 1 + self.record_nodes.len();
        if self.telemetry.vacant_len() >= group {
            self.push(Record::Frame {
                sample: n,
                observable: saturate(observable),
                phase: estimate.phase_rad as f32,
                amplitude: saturate(estimate.amplitude),
                stimulus: out_f32,
                true_phase: true_phase.map_or(f32::NAN, |p| p as f32),
                clock_phase: request.clock_phase_rad as f32,
            });
            for k in 0..self.record_nodes.len() {
                let value = self.plant.plant().observable(self.record_nodes[k]) as f32;
                self.push(Record::Node { value });
            }
        } else {
            self.counters
                .dropped_records
                .fetch_add(group as u64, Ordering::Relaxed);
        }
        if let Some(snapshots) = self.node_snapshots {
            if n.is_multiple_of(snapshots.every) {
                self.push_snapshot(n, snapshots);
            }
        }
        // 7. Plant: one step every `samples_per_step` samples, forced by the mean delivered
        //    stimulus over those samples (a short pulse keeps its charge).
        if self.plant.push(delivered) {
            self.sensed = None;
        }
        if limited.onset {
            if let Some(trigger) = self.trigger.as_mut() {
                if trigger.try_push(TriggerEvent { sample: n }).is_err() {
                    self.counters
                        .dropped_records
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            self.push(Record::Pulse {
                sample: n,
                target: self
                    .policy
                    .target_phase_rad()
                    .map_or(f32::NAN, |t| t as f32),
                estimated: estimate.predicted_phase_rad as f32,
                amplitude: out_f32,
            });
        }
        if limited.suppressed {
            self.push(Record::Suppressed { sample: n });
        }
        self.sample += 1;
        FrameOut {
            stimulus: out_f32,
            observable,
            phase: estimate.phase_rad,
            onset: limited.onset,
        }
    }

    #[inline]
    fn push(&mut self, record: Record) {
        if self.telemetry.try_push(record).is_err() {
            self.counters
                .dropped_records
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `x` as `f32`, held to the finite range (NaN stays NaN): a recording keeps values beyond
/// `f32` as the largest it can hold instead of infinities.
#[inline]
fn saturate(x: f64) -> f32 {
    (x as f32).clamp(f32::MIN, f32::MAX)
}

/// The largest `f32` that is not above `x` (for `x` ≥ 0).
pub(super) fn f32_at_most(x: f64) -> f32 {
    let rounded = x as f32;
    if rounded as f64 > x {
        f32::from_bits(rounded.to_bits() - 1)
    } else {
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::f32_at_most;

    #[test]
    fn f32_limit_never_rounds_up() {
        for x in [0.1, 1.0 / 3.0, 2.0, 1e-7, 123.456] {
            let f = f32_at_most(x);
            assert!(f as f64 <= x && (x - f as f64) < x * 1e-6, "{x} → {f}");
        }
    }
}
