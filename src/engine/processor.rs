//! The real-time half: one call of [`Processor::process_block`] runs the whole loop for a block.

use super::{sensor_is_mean, Command, Counters, Record};
use crate::estimate::{Estimate, PhaseEstimator};
use crate::model::Plant;
use crate::profile::SensorNode;
use crate::stim::{Limiter, Policy, StimCommand, StimSample};
use num_complex::Complex64;
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
    pub plant: Box<dyn Plant>,
    pub sensor: SensorNode,
    pub sensor_noise_sd: f64,
    pub sensor_rng: Xoshiro256PlusPlus,
    pub estimator: Box<dyn PhaseEstimator>,
    pub policy: Box<dyn Policy>,
    pub limiter: Limiter,
    pub forcing_gain: Vec<f64>,
    pub samples_per_step: usize,
    pub latency_samples: usize,
    pub stim_start_sample: u64,
    pub stim_stop_sample: u64,
    pub record_nodes: Vec<usize>,
    pub sample_rate_hz: f64,
    pub max_amplitude: f64,
    pub telemetry: HeapProd<Record>,
    pub commands: crossbeam_channel::Receiver<Command>,
    pub counters: Arc<Counters>,
}

/// Where the stimulation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before `stim_start_sample`: the policy is not consulted.
    Waiting,
    /// The policy drives the limiter.
    Active,
    /// Stopped by command: the policy is not consulted until `Start`.
    Paused,
    /// Past `stim_stop_sample` or ended: ramping down, then silent for good.
    Over,
}

/// The real-time half of a run: plant → sensor → estimator → policy → limiter → output, with
/// the limited stimulus fed back into the plant exactly `latency_samples` later.
///
/// Invariants: nothing here allocates, locks or blocks after construction; every output sample
/// has passed the limiter; the forcing the plant receives is the output delayed by the declared
/// latency, scaled by each node's forcing gain.
pub struct Processor {
    plant: Box<dyn Plant>,
    sensor_mean: bool,
    sensor_node: usize,
    sensor_noise_sd: f64,
    sensor_rng: Xoshiro256PlusPlus,
    estimator: Box<dyn PhaseEstimator>,
    policy: Box<dyn Policy>,
    limiter: Limiter,
    forcing_gain: Vec<f64>,
    forcing: Vec<Complex64>,
    samples_per_step: usize,
    steps_pending: usize,
    forcing_sum: f64,
    /// Ring of the last `latency_samples` outputs; `latency_head` is the oldest.
    latency_line: Vec<f64>,
    latency_head: usize,
    stim_start_sample: u64,
    stim_stop_sample: u64,
    phase: Phase,
    ending: bool,
    record_nodes: Vec<usize>,
    sample: u64,
    period_ns: f64,
    max_amplitude: f64,
    telemetry: HeapProd<Record>,
    commands: crossbeam_channel::Receiver<Command>,
    counters: Arc<Counters>,
    last_estimate: Estimate,
}

impl Processor {
    pub(super) fn new(mut p: Parts) -> Self {
        let nodes = p.plant.nodes();
        // Silent until the stimulation window opens; `start` then ramps up from zero.
        p.limiter.stop();
        let sensor_node = match p.sensor {
            SensorNode::Index(i) => i,
            SensorNode::Mean(_) => 0,
        };
        Self {
            sensor_mean: sensor_is_mean(p.sensor),
            sensor_node,
            sensor_noise_sd: p.sensor_noise_sd,
            sensor_rng: p.sensor_rng,
            estimator: p.estimator,
            policy: p.policy,
            limiter: p.limiter,
            forcing_gain: p.forcing_gain,
            forcing: vec![Complex64::default(); nodes],
            samples_per_step: p.samples_per_step,
            steps_pending: 0,
            forcing_sum: 0.0,
            latency_line: vec![0.0; p.latency_samples],
            latency_head: 0,
            stim_start_sample: p.stim_start_sample,
            stim_stop_sample: p.stim_stop_sample,
            phase: Phase::Waiting,
            ending: false,
            record_nodes: p.record_nodes,
            sample: 0,
            period_ns: 1e9 / p.sample_rate_hz,
            max_amplitude: p.max_amplitude,
            telemetry: p.telemetry,
            commands: p.commands,
            counters: p.counters,
            plant: p.plant,
            last_estimate: Estimate::default(),
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

    /// Run the loop for `output.len()` frames, writing the limited stimulus to `output`.
    ///
    /// Real-time safe: no allocation, no locks, no blocking, no I/O.
    pub fn process_block(&mut self, output: &mut [f32]) {
        let started = Instant::now();
        let first_sample = self.sample;
        self.apply_commands();
        for out in output.iter_mut() {
            *out = self.process_sample() as f32;
        }
        let busy_ns = started.elapsed().as_nanos() as u64;
        if busy_ns as f64 > self.period_ns * output.len() as f64 {
            self.counters.late_blocks.fetch_add(1, Ordering::Relaxed);
        }
        self.push(Record::Block {
            first_sample,
            frames: output.len() as u32,
            busy_ns,
        });
        self.counters.samples.store(self.sample, Ordering::Relaxed);
        if self.finished() {
            self.counters.finished.store(true, Ordering::Relaxed);
        }
    }

    fn apply_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            let mut clamped = false;
            match command {
                Command::EndRun => {
                    self.ending = true;
                    self.phase = Phase::Over;
                    self.limiter.stop();
                }
                Command::Stim(StimCommand::Stop) => {
                    if self.phase == Phase::Active {
                        self.phase = Phase::Paused;
                        self.limiter.stop();
                    }
                }
                Command::Stim(StimCommand::Start) => {
                    if self.phase == Phase::Paused {
                        self.phase = Phase::Active;
                        self.limiter.start();
                    }
                }
                Command::Stim(StimCommand::SetAmplitude(a)) => {
                    let bounded = if a.is_finite() {
                        a.clamp(-self.max_amplitude, self.max_amplitude)
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
    }

    #[inline]
    fn process_sample(&mut self) -> f64 {
        let n = self.sample;
        // 1. Sensor: the plant as it is at this sample, before this sample's forcing acts.
        let (clean, true_phase) = if self.sensor_mean {
            (self.plant.mean_observable(), self.plant.mean_phase())
        } else {
            (
                self.plant.observable(self.sensor_node),
                self.plant.phase(self.sensor_node),
            )
        };
        let mut observable = clean;
        if self.sensor_noise_sd > 0.0 {
            let z: f64 = self.sensor_rng.sample(StandardNormal);
            observable += self.sensor_noise_sd * z;
        }
        // 2. Estimator.
        let estimate = self.estimator.process(observable);
        self.last_estimate = estimate;
        // 3. Policy, gated by the stimulation window.
        if self.phase == Phase::Waiting && n >= self.stim_start_sample {
            self.phase = Phase::Active;
            self.limiter.start();
        }
        if matches!(self.phase, Phase::Active) && n >= self.stim_stop_sample {
            self.phase = Phase::Over;
            self.limiter.stop();
        }
        let since_start = n.saturating_sub(self.stim_start_sample);
        let request = match self.phase {
            Phase::Active => self.policy.next(since_start, &estimate),
            Phase::Over | Phase::Paused if !self.limiter.is_silent() => {
                self.policy.next(since_start, &estimate)
            }
            _ => StimSample {
                value: 0.0,
                onset: false,
                clock_phase_rad: f64::NAN,
            },
        };
        // 4. Limiter: the last stage before the output and the forcing.
        let limited = self.limiter.process(request);
        let out = limited.value;
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
                observable: observable as f32,
                phase: estimate.phase_rad as f32,
                amplitude: estimate.amplitude as f32,
                stimulus: out as f32,
                true_phase: true_phase.map_or(f32::NAN, |p| p as f32),
                clock_phase: request.clock_phase_rad as f32,
            });
            for k in 0..self.record_nodes.len() {
                let value = self.plant.observable(self.record_nodes[k]) as f32;
                self.push(Record::Node { value });
            }
        } else {
            self.counters
                .dropped_records
                .fetch_add(group as u64, Ordering::Relaxed);
        }
        // 7. Plant: one step every `samples_per_step` samples, forced by the mean delivered
        //    stimulus over those samples (a short pulse keeps its charge).
        self.forcing_sum += delivered;
        self.steps_pending += 1;
        if self.steps_pending == self.samples_per_step {
            let mean = self.forcing_sum / self.samples_per_step as f64;
            for (f, g) in self.forcing.iter_mut().zip(&self.forcing_gain) {
                *f = Complex64::new(g * mean, 0.0);
            }
            self.plant.step(&self.forcing);
            self.forcing_sum = 0.0;
            self.steps_pending = 0;
        }
        if limited.onset {
            self.push(Record::Pulse {
                sample: n,
                target: self
                    .policy
                    .target_phase_rad()
                    .map_or(f32::NAN, |t| t as f32),
                estimated: estimate.predicted_phase_rad as f32,
                amplitude: out as f32,
            });
        }
        if limited.suppressed {
            self.push(Record::Suppressed { sample: n });
        }
        self.sample += 1;
        out
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
