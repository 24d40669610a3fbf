//! `entrain latency`: measure the round trip of a rig (output → cable or software loopback →
//! input) in samples.
//!
//! Owns: the measurement. The output callback is the clock: it emits a one-sample impulse every
//! `interval` samples on one output channel, and reads the captured input in lockstep through
//! an [`InputLink`] (the engine's lock-free ring pre-filled with a fixed offset). An impulse that comes
//! back `d` output samples after it left has a round trip of `d − offset` samples: the rig's
//! own latency (converters, buffers, cable or server routing). The output side starts reading
//! the ring at the first block start after the input side has started filling it, so the
//! offset does not depend on which stream started first, nor on whether the two callbacks run
//! at once. Each callback's processing time and the backend's xruns are
//! counted as for a run.
//!
//! Impulses start once both streams run, but only those emitted after a settling time that
//! follows the `running` hook are timed: a loopback made in that hook (a JACK connection) can
//! re-sort the server's graph a few cycles later, which moves the echo by a whole period, and a
//! converter or driver may still be filling its buffers.
//!
//! Detection is a matched filter for the impulse: the first captured sample above half the
//! impulse's amplitude after an emission (the cross-correlation of a unit impulse with the
//! capture is the capture itself).

use super::audio::{
    device, hand_over, host, input_channels, output_device, start_verified, Direction,
};
use crate::engine::{CaptureSide, InputLink, InputReader};
use cpal::traits::DeviceTrait;
use cpal::{BufferSize, StreamConfig};
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::{HeapProd, HeapRb};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of one measurement.
#[derive(Clone, Debug)]
pub struct LatencySettings {
    /// Audio host (`auto`, `alsa`, `jack`).
    pub host: String,
    /// Output device (id, name or index; empty = default).
    pub output_device: String,
    /// Input device (id, name or index; empty = default).
    pub input_device: String,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Frames per callback.
    pub block_frames: u32,
    /// Output channel carrying the impulses (0-based).
    pub output_channel: usize,
    /// Input channel listening for them (0-based).
    pub input_channel: usize,
    /// Impulses to time.
    pub repetitions: usize,
    /// Samples between impulses (longer than the longest round trip expected).
    pub interval: usize,
    /// Impulse amplitude (full scale = 1).
    pub amplitude: f32,
    /// Impulses emitted within this time after the `running` hook returns are not timed
    /// (the loopback settles).
    pub settle: Duration,
    /// Give up after this long without finishing (counted after the settling time).
    pub timeout: Duration,
}

/// The result of a measurement.
#[derive(Clone, Debug)]
pub struct LatencyReport {
    /// Round trip of every impulse that came back, samples.
    pub round_trips: Vec<i64>,
    /// Impulses that did not come back within an interval.
    pub lost: u64,
    /// Impulses that came back across a backend xrun: a dropped or repeated period moves the
    /// echo, so they measure the xrun, not the loop, and are not in `round_trips`.
    pub disturbed: u64,
    /// The link's declared offset, samples (already subtracted).
    pub offset: usize,
    /// Processing time of each output callback as a fraction of its period, sorted.
    pub block_fractions: Vec<f64>,
    /// Callbacks slower than their period.
    pub late_blocks: u64,
    /// Backend under/overruns, in all.
    pub xruns: u64,
    /// Of those, the ones after the settling time. An xrun can drop a period on one side of
    /// the loop only, which moves every later echo by a whole period: with any here, the
    /// round trips may differ by whole periods.
    pub xruns_while_timing: u64,
    /// Link underruns (input late) and overruns (input early).
    pub link_underruns: u64,
    /// Link overruns.
    pub link_overruns: u64,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Frames per callback.
    pub block_frames: u32,
}

impl LatencyReport {
    /// min, median, max of the round trips (samples).
    pub fn stats(&self) -> Option<(i64, i64, i64)> {
        let mut v = self.round_trips.clone();
        v.sort_unstable();
        Some((*v.first()?, v[v.len() / 2], *v.last()?))
    }

    /// A human report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let ms = |s: i64| s as f64 / self.sample_rate as f64 * 1e3;
        match self.stats() {
            Some((min, median, max)) => {
                let _ = writeln!(
                    out,
                    "round trip over {} impulses: min {min}, median {median}, max {max} samples \
                     ({:.3} / {:.3} / {:.3} ms); jitter {} samples; {} lost; {} set aside \
                     (an xrun fell between emission and return)",
                    self.round_trips.len(),
                    ms(min),
                    ms(median),
                    ms(max),
                    max - min,
                    self.lost,
                    self.disturbed
                );
                let periods = median as f64 / self.block_frames as f64;
                let _ = writeln!(
                    out,
                    "  = {periods:.2} periods of {} frames",
                    self.block_frames
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "no impulse came back ({} sent): check the loopback cable or connection \
                     (JACK: jack_connect <entrain output port> <entrain input port>)",
                    self.lost
                );
            }
        }
        if !self.block_fractions.is_empty() {
            let at = |q: f64| {
                self.block_fractions[((self.block_fractions.len() - 1) as f64 * q).round() as usize]
            };
            let _ = writeln!(
                out,
                "  callback processing / period: median {:.4}, p99 {:.4}, max {:.4}; late blocks {}; xruns {} ({} while timing); link underruns {}, overruns {}",
                at(0.5),
                at(0.99),
                at(1.0),
                self.late_blocks,
                self.xruns,
                self.xruns_while_timing,
                self.link_underruns,
                self.link_overruns
            );
        }
        out
    }
}

/// Shared between the callbacks and the control thread.
#[derive(Default)]
struct Shared {
    xruns: AtomicU64,
    failed: AtomicBool,
    /// Set once the loopback has settled: impulses emitted from then on are timed.
    timing: AtomicBool,
}

/// What the output callback reports per impulse: emitted at `sent`, seen at `seen` (output
/// sample indices), seen but with an xrun in between, or lost.
#[derive(Clone, Copy, Debug)]
enum Echo {
    Returned { sent: u64, seen: u64 },
    Disturbed,
    Lost,
}

/// An impulse on its way round the loop.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// Output sample index at which it left.
    sent: u64,
    /// The backend's xrun count when it left.
    xruns: u64,
    /// Emitted after the loopback settled: its echo is reported.
    timed: bool,
}

/// The output callback's state: emits an impulse every `interval` samples once the capture
/// side runs, and looks for each impulse's return in the captured signal.
struct Emitter {
    reader: InputReader,
    echoes: HeapProd<Echo>,
    /// (busy ns, frames) per callback.
    times: HeapProd<(u64, u32)>,
    underruns: Arc<AtomicU64>,
    channel: usize,
    channels: usize,
    /// Samples between impulses.
    interval: u64,
    /// Impulse height, full scale = 1.
    amplitude: f32,
    sample: u64,
    /// The impulse in flight.
    pending: Option<InFlight>,
    /// The backend's xrun count (read with a relaxed load: real-time safe).
    shared: Arc<Shared>,
}

impl Emitter {
    /// Fill one callback's interleaved frames. Real-time safe.
    fn render(&mut self, data: &mut [f32]) {
        let started = Instant::now();
        let frames = data.len() / self.channels;
        let threshold = self.amplitude / 2.0;
        let capturing = self.reader.start_block();
        for frame in data.chunks_exact_mut(self.channels) {
            frame.fill(0.0);
            let captured = self.reader.read().unwrap_or_else(|| {
                self.underruns.fetch_add(1, Ordering::Relaxed);
                0.0
            });
            if let Some(impulse) = self.pending {
                let echo = if captured.abs() >= threshold {
                    Some(
                        if self.shared.xruns.load(Ordering::Relaxed) == impulse.xruns {
                            Echo::Returned {
                                sent: impulse.sent,
                                seen: self.sample,
                            }
                        } else {
                            Echo::Disturbed
                        },
                    )
                } else if self.sample - impulse.sent >= self.interval {
                    Some(Echo::Lost)
                } else {
                    None
                };
                if let Some(echo) = echo {
                    if impulse.timed {
                        let _ = self.echoes.try_push(echo);
                    }
                    self.pending = None;
                }
            }
            // Emit on the interval once both streams run and the previous impulse is settled.
            if capturing && self.sample.is_multiple_of(self.interval) && self.pending.is_none() {
                frame[self.channel] = self.amplitude;
                self.pending = Some(InFlight {
                    sent: self.sample,
                    xruns: self.shared.xruns.load(Ordering::Relaxed),
                    timed: self.shared.timing.load(Ordering::Relaxed),
                });
            }
            self.sample += 1;
        }
        let busy = started.elapsed().as_nanos() as u64;
        let _ = self.times.try_push((busy, frames as u32));
    }
}

/// Run a measurement. `running` is told the output and input device ids once both streams
/// run (the moment to make a software loopback connection, for instance).
pub fn measure(
    settings: &LatencySettings,
    running: impl FnOnce(&str, &str),
) -> Result<LatencyReport, String> {
    let _quiet = super::audio::quiet_alsa();
    let host = host(&settings.host)?;
    let (out_device, out_id) = output_device(&host, &settings.output_device)?;
    let (in_device, in_id) = device(&host, Direction::Input, &settings.input_device)?;
    let block = settings.block_frames;
    let out_channels = (settings.output_channel + 1) as u16;
    let in_channels = input_channels(&host, &in_device, &in_id, settings.input_channel)?;
    let out_config = StreamConfig {
        channels: out_channels,
        sample_rate: settings.sample_rate,
        buffer_size: BufferSize::Fixed(block),
    };
    let in_config = StreamConfig {
        channels: in_channels,
        sample_rate: settings.sample_rate,
        buffer_size: BufferSize::Fixed(block),
    };
    // Two periods of offset absorb the order in which the two callbacks run in a cycle.
    let offset = 2 * block as usize;
    let link = InputLink::new(
        offset,
        64 * block as usize,
        f64::from(settings.sample_rate),
        block as usize,
    );
    let (echo_tx, mut echo_rx) = HeapRb::<Echo>::new(4096).split();
    let (time_tx, mut time_rx) = HeapRb::<(u64, u32)>::new(1 << 16).split();
    let shared = Arc::new(Shared::default());
    let underruns = Arc::new(AtomicU64::new(0));
    let overruns = Arc::new(AtomicU64::new(0));

    // Both streams start and are seen running before they get their state (a JACK client that
    // never starts is reopened).
    let in_overruns = Arc::clone(&overruns);
    let in_channel = settings.input_channel;
    let in_channels_usize = in_channels as usize;
    let (input_stream, input_handover) = start_verified("input", |mut handover, calls| {
        let in_overruns = Arc::clone(&in_overruns);
        let mut producer: Option<CaptureSide> = None;
        in_device
            .build_input_stream::<f32, _, _>(
                in_config,
                move |data: &[f32], _: &cpal::InputCallbackInfo| {
                    calls.fetch_add(1, Ordering::Release);
                    if producer.is_none() {
                        producer = handover.try_pop();
                    }
                    let Some(producer) = producer.as_mut() else {
                        return;
                    };
                    let dropped =
                        producer.push(data.chunks_exact(in_channels_usize).map(|f| f[in_channel]));
                    in_overruns.fetch_add(dropped as u64, Ordering::Relaxed);
                },
                error_handler(&shared),
                None,
            )
            .map_err(|e| format!("cannot open the input stream: {e}"))
    })?;

    let emitter = Emitter {
        reader: link.reader,
        echoes: echo_tx,
        times: time_tx,
        underruns: Arc::clone(&underruns),
        channel: settings.output_channel,
        channels: out_channels as usize,
        interval: settings.interval as u64,
        amplitude: settings.amplitude,
        sample: 0,
        pending: None,
        shared: Arc::clone(&shared),
    };
    let (output_stream, output_handover) = start_verified("output", |mut handover, calls| {
        let mut emitter: Option<Emitter> = None;
        out_device
            .build_output_stream::<f32, _, _>(
                out_config,
                move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                    calls.fetch_add(1, Ordering::Release);
                    if emitter.is_none() {
                        emitter = handover.try_pop();
                    }
                    match emitter.as_mut() {
                        Some(emitter) => emitter.render(data),
                        None => data.fill(0.0),
                    }
                },
                error_handler(&shared),
                None,
            )
            .map_err(|e| format!("cannot open the output stream on '{out_id}': {e}"))
    })?;
    // Both run: the emitter first, then the capture side (no capture piles up unread).
    hand_over(output_handover, emitter);
    hand_over(input_handover, link.capture);

    running(&out_id, &in_id);
    let settled = Instant::now() + settings.settle;
    // Sleep a little, then fail if the device did.
    let tick = || {
        std::thread::sleep(Duration::from_millis(10));
        if shared.failed.load(Ordering::Relaxed) {
            Err("the audio device failed during the measurement".to_string())
        } else {
            Ok(())
        }
    };
    while Instant::now() < settled {
        tick()?;
    }
    shared.timing.store(true, Ordering::Relaxed);
    let xruns_before_timing = shared.xruns.load(Ordering::Relaxed);
    let deadline = Instant::now() + settings.timeout;
    let mut round_trips = Vec::new();
    let mut lost = 0;
    let mut disturbed = 0;
    let mut fractions = Vec::new();
    let mut late_blocks = 0;
    let period_ns = |frames: u32| frames as f64 * 1e9 / settings.sample_rate as f64;
    while round_trips.len() < settings.repetitions && Instant::now() < deadline {
        tick()?;
        while let Some(echo) = echo_rx.try_pop() {
            match echo {
                Echo::Returned { sent, seen } => {
                    round_trips.push(seen as i64 - sent as i64 - offset as i64)
                }
                Echo::Disturbed => disturbed += 1,
                Echo::Lost => lost += 1,
            }
        }
        while let Some((busy, frames)) = time_rx.try_pop() {
            let f = busy as f64 / period_ns(frames.max(1));
            late_blocks += u64::from(f > 1.0);
            fractions.push(f);
        }
    }
    // Closing a client re-sorts the server's graph and may cost an xrun: not the loop's.
    let xruns = shared.xruns.load(Ordering::Relaxed);
    drop(output_stream);
    drop(input_stream);
    round_trips.truncate(settings.repetitions);
    fractions.sort_by(f64::total_cmp);
    Ok(LatencyReport {
        round_trips,
        lost,
        disturbed,
        offset,
        block_fractions: fractions,
        late_blocks,
        xruns,
        xruns_while_timing: xruns - xruns_before_timing,
        link_underruns: underruns.load(Ordering::Relaxed),
        link_overruns: overruns.load(Ordering::Relaxed),
        sample_rate: settings.sample_rate,
        block_frames: block,
    })
}

fn error_handler(shared: &Arc<Shared>) -> impl FnMut(cpal::Error) + Send + 'static {
    let shared = Arc::clone(shared);
    move |err: cpal::Error| match err.kind() {
        cpal::ErrorKind::Xrun => {
            shared.xruns.fetch_add(1, Ordering::Relaxed);
        }
        cpal::ErrorKind::RealtimeDenied | cpal::ErrorKind::DeviceChanged => {}
        _ => shared.failed.store(true, Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// The output callback over a simulated loopback: each cycle the emitter renders 64 frames,
    /// then the capture side pushes what the loop delivers. The loop's delay drops by one period
    /// after `reorder_at` cycles (as when a JACK connection re-sorts the server's graph), and
    /// timing starts after `timing_from` cycles. Returns the round trips reported.
    fn round_trips(reorder_at: usize, timing_from: usize, cycles: usize) -> Vec<i64> {
        const BLOCK: usize = 64;
        let offset = 2 * BLOCK;
        let link = InputLink::new(offset, 64 * BLOCK, 48_000.0, BLOCK);
        let mut capture = link.capture;
        let (echo_tx, mut echo_rx) = HeapRb::<Echo>::new(4096).split();
        let (time_tx, _times) = HeapRb::<(u64, u32)>::new(1 << 16).split();
        let shared = Arc::new(Shared::default());
        let mut emitter = Emitter {
            reader: link.reader,
            echoes: echo_tx,
            times: time_tx,
            underruns: Arc::new(AtomicU64::new(0)),
            channel: 0,
            channels: 1,
            interval: 4 * BLOCK as u64,
            amplitude: 0.5,
            sample: 0,
            pending: None,
            shared: Arc::clone(&shared),
        };
        let mut wire: VecDeque<f32> = std::iter::repeat_n(0.0, BLOCK).collect();
        let mut data = [0.0f32; BLOCK];
        let mut trips = Vec::new();
        for cycle in 0..cycles {
            if cycle == timing_from {
                shared.timing.store(true, Ordering::Relaxed);
            }
            if cycle == reorder_at {
                wire.drain(..BLOCK);
            }
            emitter.render(&mut data);
            wire.extend(data);
            assert_eq!(capture.push(wire.drain(..BLOCK)), 0);
            while let Some(echo) = echo_rx.try_pop() {
                match echo {
                    Echo::Returned { sent, seen } => {
                        trips.push(seen as i64 - sent as i64 - offset as i64)
                    }
                    other => panic!("every impulse comes back: {other:?}"),
                }
            }
        }
        trips
    }

    #[test]
    fn impulses_emitted_before_the_loop_settles_are_not_timed() {
        // Timed from the start, the reorder shows as two round trips a period apart.
        let mut all = round_trips(40, 0, 200);
        all.dedup();
        assert_eq!(all, vec![128, 64]);
        // Timed after it, every impulse has the settled loop's round trip, and every impulse
        // emitted after the settling time is reported.
        let settled = round_trips(40, 60, 200);
        assert_eq!(settled, vec![64; (200 - 60) / 4]);
    }
}
