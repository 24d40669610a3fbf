//! The offline driver: calls `process_block` in a plain loop, as fast as the machine allows, or
//! paced to the sample clock when the run drives hardware (a trigger line).
//!
//! Deterministic: the same profile and seed give the same samples. Unlike the real-time driver
//! it may wait, so it waits for room in the telemetry ring before each block instead of letting
//! records drop — an offline run loses nothing.

use super::{Command, Processor, COMMAND_CAPACITY};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How an offline run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// All samples of the profile's duration were processed.
    Completed,
    /// Interrupted (Ctrl-C): the output was ramped to zero and the run ended early.
    Interrupted,
}

/// Progress of a run, reported about every `interval`.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Samples processed.
    pub samples: u64,
    /// Samples in the whole run.
    pub total: u64,
    /// Wall time since the start.
    pub elapsed: Duration,
}

/// The sample clock an offline run keeps to: sample 0 at `origin`, `sample_rate_hz` after.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// When sample 0 is due.
    pub origin: Instant,
    /// Hz (finite, > 0).
    pub sample_rate_hz: f64,
}

/// Drive `processor` for `total` samples in blocks of `block` frames. `output` receives every
/// output frame, interleaved as the channel map says (for tests and file sinks; `None`
/// discards them). Any of `interrupts` set
/// (a Ctrl-C handler, a failed recorder) ends the run early with a ramp to zero; from then on
/// the driver no longer waits for the telemetry consumer.
///
/// With `pace` the driver runs no faster than the sample clock: sample `n` is processed no
/// earlier than `n / fs` after the pace's origin (a run that drives hardware, such as a trigger
/// line, keeps the timing it would have on a device).
#[allow(clippy::too_many_arguments)]
pub fn run(
    processor: &mut Processor,
    commands: &crossbeam_channel::Sender<Command>,
    total: u64,
    block: usize,
    interrupts: &[&AtomicBool],
    mut output: Option<&mut Vec<f32>>,
    pace: Option<Pace>,
    mut progress: impl FnMut(Progress),
) -> Ending {
    let started = Instant::now();
    let channels = processor.channels();
    let mut buffer = vec![0.0f32; block * channels];
    let mut last_report = Instant::now();
    let mut ending = Ending::Completed;
    let needed = block * processor.records_per_sample() + COMMAND_CAPACITY + 1;
    let interrupted = || interrupts.iter().any(|f| f.load(Ordering::Relaxed));
    loop {
        let done = processor.sample();
        if done >= total || (ending == Ending::Interrupted && processor.finished()) {
            break;
        }
        if ending == Ending::Completed && interrupted() {
            ending = Ending::Interrupted;
            // The queue holds at most a few commands; were it full, the run is ending anyway.
            let _ = commands.try_send(Command::EndRun);
        }
        let frames = block.min((total - done) as usize);
        while ending == Ending::Completed && processor.telemetry_vacancy() < needed {
            if interrupted() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if let Some(pace) = pace {
            let due = pace.origin + Duration::from_secs_f64(done as f64 / pace.sample_rate_hz);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        processor.process_block(&mut buffer[..frames * channels]);
        if let Some(out) = output.as_deref_mut() {
            out.extend_from_slice(&buffer[..frames * channels]);
        }
        if last_report.elapsed() >= Duration::from_millis(250) {
            last_report = Instant::now();
            progress(Progress {
                samples: processor.sample(),
                total,
                elapsed: started.elapsed(),
            });
        }
    }
    progress(Progress {
        samples: processor.sample(),
        total,
        elapsed: started.elapsed(),
    });
    ending
}
