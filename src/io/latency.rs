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
//! That holds only while the link keeps its delay, and an xrun that costs one of the two
//! clients a period (JACK runs the output and the input stream as two clients) moves it by a
//! period: every later echo would be read a period early or late, and a JACK loopback of 0
//! samples would measure −64. So the output callback realigns the link as the engine does
//! ([`InputReader::align`]), impulses leave only once the link's delay has its reference, and
//! an echo is timed only if the link's delay was on its reference in the block it came back
//! in and no realignment came from its emission until a move before its return would have
//! been realigned ([`REALIGNED_WITHIN_BLOCKS`]); the others are set aside and counted. A
//! change in the loop itself (a re-sorted graph, a moved buffer) is not the link's, and is
//! reported as measured.
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
use crate::engine::{CaptureSide, InputLink, InputReader, Realignment, REALIGNED_WITHIN_BLOCKS};
use cpal::traits::DeviceTrait;
use cpal::{BufferSize, StreamConfig};
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::{HeapProd, HeapRb};
use std::collections::VecDeque;
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
    /// Impulses set aside because the link between the input and the output callback was off
    /// its delay where the echo was read, or was realigned around it: they would measure the
    /// link, not the loop, and are not in `round_trips`.
    pub misaligned: u64,
    /// Times the link's delay was realigned, a re-base to the nominal delay at the start
    /// included.
    pub link_realignments: u64,
    /// Samples skipped or repeated by those realignments.
    pub link_realigned_samples: u64,
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
                     ({:.3} / {:.3} / {:.3} ms); jitter {} samples; {} lost; {}",
                    self.round_trips.len(),
                    ms(min),
                    ms(median),
                    ms(max),
                    max - min,
                    self.lost,
                    self.set_aside()
                );
                let periods = median as f64 / self.block_frames as f64;
                let _ = writeln!(
                    out,
                    "  = {periods:.2} periods of {} frames",
                    self.block_frames
                );
            }
            None if self.disturbed + self.misaligned > 0 => {
                let _ = writeln!(
                    out,
                    "no impulse was timed: {} lost; {}",
                    self.lost,
                    self.set_aside()
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
                "  callback processing / period: median {:.4}, p99 {:.4}, max {:.4}; late blocks {}; xruns {} ({} while timing); link underruns {}, overruns {}; link realigned {} times ({} samples)",
                at(0.5),
                at(0.99),
                at(1.0),
                self.late_blocks,
                self.xruns,
                self.xruns_while_timing,
                self.link_underruns,
                self.link_overruns,
                self.link_realignments,
                self.link_realigned_samples
            );
        }
        out
    }

    /// The impulses that came back but were not timed, and why.
    fn set_aside(&self) -> String {
        format!(
            "{} set aside (an xrun fell between emission and return); {} set aside (the \
             input/output link was off its delay, or realigned, around the echo)",
            self.disturbed, self.misaligned
        )
    }
}

/// Shared between the callbacks and the control thread.
#[derive(Default)]
struct Shared {
    xruns: AtomicU64,
    failed: AtomicBool,
    /// Set once the loopback has settled: impulses emitted from then on are timed.
    timing: AtomicBool,
    /// Blocks the output callback has rendered (stored after the block's events are pushed).
    blocks: AtomicU64,
}

/// What became of an impulse: emitted at `sent`, seen at `seen` (output sample indices), seen
/// but with an xrun in between, seen where the link was off its delay, or lost.
#[derive(Clone, Copy, Debug)]
enum Echo {
    Returned { sent: u64, seen: u64 },
    Disturbed,
    Misaligned,
    Lost,
}

/// What the output callback tells the control thread, in order.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A timed impulse, emitted in block `left`, was judged in block `judged`.
    Echo { echo: Echo, left: u64, judged: u64 },
    /// The link was realigned by `samples` at the start of block `block`.
    Realigned { block: u64, samples: usize },
}

/// An echo held until no realignment can still come for a move of the link before it.
#[derive(Clone, Copy, Debug)]
struct Held {
    echo: Echo,
    left: u64,
    /// The last block whose realignment could be for a move before the echo.
    until: u64,
}

/// The control thread's side of the events: an echo is released once the output callback has
/// rendered past [`REALIGNED_WITHIN_BLOCKS`] blocks after it, and set aside as misaligned if
/// the link was realigned from the block after its emission until then (a realignment at the
/// start of its emission block came before it). A move of the link before the echo was read
/// is realigned within that time, so an echo released as returned was read on the delay the
/// link is held to.
#[derive(Default)]
struct Ledger {
    held: VecDeque<Held>,
    /// The block of the latest realignment.
    realigned: Option<u64>,
    realignments: u64,
    realigned_samples: u64,
}

impl Ledger {
    fn record(&mut self, event: Event) {
        match event {
            Event::Realigned { block, samples } => {
                self.realigned = Some(block);
                self.realignments += 1;
                self.realigned_samples += samples as u64;
                for held in &mut self.held {
                    if held.left < block && block <= held.until {
                        held.echo = Echo::Misaligned;
                    }
                }
            }
            Event::Echo { echo, left, judged } => {
                let moved = self.realigned.is_some_and(|block| block > left);
                self.held.push_back(Held {
                    echo: if moved { Echo::Misaligned } else { echo },
                    left,
                    until: judged + REALIGNED_WITHIN_BLOCKS as u64,
                });
            }
        }
    }

    /// The next echo that no realignment can set aside any more, with `blocks` rendered and
    /// every event of theirs recorded.
    fn release(&mut self, blocks: u64) -> Option<Echo> {
        if self.held.front()?.until < blocks {
            self.held.pop_front().map(|held| held.echo)
        } else {
            None
        }
    }
}

/// An impulse on its way round the loop.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// Output sample index at which it left.
    sent: u64,
    /// The block it left in.
    block: u64,
    /// The backend's xrun count when it left.
    xruns: u64,
    /// Emitted after the loopback settled: its echo is reported.
    timed: bool,
}

/// The output callback's state: emits an impulse every `interval` samples once the link has
/// its delay, looks for each impulse's return in the captured signal, and keeps the link on
/// its delay.
struct Emitter {
    reader: InputReader,
    events: HeapProd<Event>,
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
    /// Blocks rendered.
    block: u64,
    /// The impulse in flight.
    pending: Option<InFlight>,
    /// The backend's xrun count (read with a relaxed load: real-time safe).
    shared: Arc<Shared>,
}

impl Emitter {
    /// Fill one callback's interleaved frames. Real-time safe.
    fn render(&mut self, data: &mut [f32]) {
        let now = self.reader.now_ns();
        self.render_at(data, now);
    }

    /// [`Emitter::render`] at `now_ns` on the link's clock.
    fn render_at(&mut self, data: &mut [f32], now_ns: u64) {
        let started = Instant::now();
        let frames = data.len() / self.channels;
        let threshold = self.amplitude / 2.0;
        if let Realignment::Skipped(samples) | Realignment::Held(samples) =
            self.reader.align_at(now_ns)
        {
            let _ = self.events.try_push(Event::Realigned {
                block: self.block,
                samples,
            });
        }
        let aligned = self.reader.aligned();
        let on_delay = self.reader.on_reference();
        for frame in data.chunks_exact_mut(self.channels) {
            frame.fill(0.0);
            let captured = self.reader.read().unwrap_or_else(|| {
                self.underruns.fetch_add(1, Ordering::Relaxed);
                0.0
            });
            if let Some(impulse) = self.pending {
                let echo = if captured.abs() >= threshold {
                    Some(
                        if self.shared.xruns.load(Ordering::Relaxed) != impulse.xruns {
                            Echo::Disturbed
                        } else if !on_delay {
                            Echo::Misaligned
                        } else {
                            Echo::Returned {
                                sent: impulse.sent,
                                seen: self.sample,
                            }
                        },
                    )
                } else if self.sample - impulse.sent >= self.interval {
                    Some(Echo::Lost)
                } else {
                    None
                };
                if let Some(echo) = echo {
                    if impulse.timed {
                        let _ = self.events.try_push(Event::Echo {
                            echo,
                            left: impulse.block,
                            judged: self.block,
                        });
                    }
                    self.pending = None;
                }
            }
            // Emit on the interval once the link has its delay and the previous impulse is
            // settled.
            if aligned && self.sample.is_multiple_of(self.interval) && self.pending.is_none() {
                frame[self.channel] = self.amplitude;
                self.pending = Some(InFlight {
                    sent: self.sample,
                    block: self.block,
                    xruns: self.shared.xruns.load(Ordering::Relaxed),
                    timed: self.shared.timing.load(Ordering::Relaxed),
                });
            }
            self.sample += 1;
        }
        self.block += 1;
        self.shared.blocks.store(self.block, Ordering::Release);
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
    let (event_tx, mut event_rx) = HeapRb::<Event>::new(4096).split();
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
        events: event_tx,
        times: time_tx,
        underruns: Arc::clone(&underruns),
        channel: settings.output_channel,
        channels: out_channels as usize,
        interval: settings.interval as u64,
        amplitude: settings.amplitude,
        sample: 0,
        block: 0,
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
    // Drained while settling too, so that the ring never fills and drops a realignment.
    let mut ledger = Ledger::default();
    while Instant::now() < settled {
        tick()?;
        while let Some(event) = event_rx.try_pop() {
            ledger.record(event);
        }
    }
    shared.timing.store(true, Ordering::Relaxed);
    let xruns_before_timing = shared.xruns.load(Ordering::Relaxed);
    let deadline = Instant::now() + settings.timeout;
    let mut round_trips = Vec::new();
    let mut lost = 0;
    let mut disturbed = 0;
    let mut misaligned = 0;
    let mut fractions = Vec::new();
    let mut late_blocks = 0;
    let period_ns = |frames: u32| frames as f64 * 1e9 / settings.sample_rate as f64;
    while round_trips.len() < settings.repetitions && Instant::now() < deadline {
        tick()?;
        // Read before draining: every event of the blocks counted is in the ring by then.
        let blocks = shared.blocks.load(Ordering::Acquire);
        while let Some(event) = event_rx.try_pop() {
            ledger.record(event);
        }
        while let Some(echo) = ledger.release(blocks) {
            match echo {
                Echo::Returned { sent, seen } => {
                    round_trips.push(seen as i64 - sent as i64 - offset as i64)
                }
                Echo::Disturbed => disturbed += 1,
                Echo::Misaligned => misaligned += 1,
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
        misaligned,
        link_realignments: ledger.realignments,
        link_realigned_samples: ledger.realigned_samples,
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

    const BLOCK: usize = 64;
    /// One block's period on the link's clock, ns.
    const PERIOD_NS: f64 = BLOCK as f64 / 48_000.0 * 1e9;

    /// What the control thread made of a simulated measurement.
    #[derive(Debug, Default)]
    struct Measured {
        round_trips: Vec<i64>,
        misaligned: u64,
        realignments: u64,
    }

    /// The output callback over a simulated loopback, as a JACK server with the loop connected
    /// runs it: each cycle the emitter renders 64 frames, then the capture side pushes what the
    /// loop delivers, a tenth of a period later. The loop's delay, one period at first, drops
    /// to none after `reorder_at` cycles (as when a JACK connection re-sorts the server's
    /// graph); in cycle `capture_lost_at` the capture callback does not run (an xrun that
    /// costs the input client a period); timing starts after `timing_from` cycles.
    fn measure_loop(
        reorder_at: usize,
        capture_lost_at: Option<usize>,
        timing_from: usize,
        cycles: usize,
    ) -> Measured {
        let offset = 2 * BLOCK;
        let link = InputLink::new(offset, 64 * BLOCK, 48_000.0, BLOCK);
        let mut capture = link.capture;
        let (event_tx, mut event_rx) = HeapRb::<Event>::new(4096).split();
        let (time_tx, _times) = HeapRb::<(u64, u32)>::new(1 << 16).split();
        let shared = Arc::new(Shared::default());
        let mut emitter = Emitter {
            reader: link.reader,
            events: event_tx,
            times: time_tx,
            underruns: Arc::new(AtomicU64::new(0)),
            channel: 0,
            channels: 1,
            interval: 4 * BLOCK as u64,
            amplitude: 0.5,
            sample: 0,
            block: 0,
            pending: None,
            shared: Arc::clone(&shared),
        };
        let mut wire: VecDeque<f32> = std::iter::repeat_n(0.0, BLOCK).collect();
        let mut data = [0.0f32; BLOCK];
        let mut ledger = Ledger::default();
        let mut measured = Measured::default();
        for cycle in 0..cycles {
            if cycle == timing_from {
                shared.timing.store(true, Ordering::Relaxed);
            }
            if cycle == reorder_at {
                wire.drain(..BLOCK);
            }
            let start = (cycle + 1) as f64 * PERIOD_NS;
            emitter.render_at(&mut data, start as u64);
            wire.extend(data);
            let delivered: Vec<f32> = wire.drain(..BLOCK).collect();
            if capture_lost_at != Some(cycle) {
                let at = (start + 0.1 * PERIOD_NS) as u64;
                assert_eq!(capture.push_at(delivered, at), 0);
            }
            let blocks = shared.blocks.load(Ordering::Acquire);
            while let Some(event) = event_rx.try_pop() {
                ledger.record(event);
            }
            while let Some(echo) = ledger.release(blocks) {
                match echo {
                    Echo::Returned { sent, seen } => measured
                        .round_trips
                        .push(seen as i64 - sent as i64 - offset as i64),
                    Echo::Misaligned => measured.misaligned += 1,
                    other => panic!("every impulse comes back: {other:?}"),
                }
            }
        }
        measured.realignments = ledger.realignments;
        measured
    }

    /// Impulses leave once the link has its delay: at the end of the second window of
    /// [`REALIGNED_WITHIN_BLOCKS`] / 2 blocks from block 1 (the first capture is in cycle 0).
    const FIRST_IMPULSE_BLOCK: usize = REALIGNED_WITHIN_BLOCKS;

    /// Impulses (every 4 blocks, each back two blocks later) emitted from block `from` whose
    /// echo is released within `cycles`.
    fn released(from: usize, cycles: usize) -> usize {
        (from..cycles)
            .step_by(4)
            .filter(|&left| left + 2 + REALIGNED_WITHIN_BLOCKS < cycles)
            .count()
    }

    #[test]
    fn impulses_emitted_before_the_loop_settles_are_not_timed() {
        // Timed from the start, the reorder shows as two round trips a period apart: a change
        // of the loop is reported as measured.
        let all = measure_loop(100, None, 0, 400);
        let mut distinct = all.round_trips.clone();
        distinct.dedup();
        assert_eq!(distinct, vec![64, 0]);
        assert_eq!(all.round_trips.len(), released(FIRST_IMPULSE_BLOCK, 400));
        // Timed after it, every impulse has the settled loop's round trip, and every impulse
        // emitted after the settling time is reported.
        let settled = measure_loop(100, None, 120, 400);
        assert_eq!(settled.round_trips, vec![0; released(120, 400)]);
        assert_eq!((settled.misaligned, settled.realignments), (0, 0));
    }

    /// The flake of `entrain latency --host jack`: an xrun cost the input client a period, the
    /// link read every later capture a period early, and a loop of 0 samples measured −64. Now
    /// the link is realigned, the echoes read off its delay are set aside and counted, and
    /// every impulse timed has the loop's round trip.
    #[test]
    fn a_period_the_capture_loses_moves_no_round_trip() {
        let lost_at = 202;
        let measured = measure_loop(100, Some(lost_at), 120, 600);
        assert!(!measured.round_trips.is_empty());
        assert!(
            measured.round_trips.iter().all(|&trip| trip == 0),
            "{:?}",
            measured.round_trips
        );
        assert_eq!(measured.realignments, 1);
        assert!(measured.misaligned > 0);
        // Only impulses around the loss are set aside: one window to see it, one to realign.
        let timed = released(120, 600) as u64;
        assert_eq!(
            measured.round_trips.len() as u64 + measured.misaligned,
            timed
        );
        assert!(measured.misaligned * 4 <= 3 * REALIGNED_WITHIN_BLOCKS as u64);
    }

    /// The ledger sets aside an echo when a realignment comes after its emission block and no
    /// later than [`REALIGNED_WITHIN_BLOCKS`] after its return, in either order of arrival,
    /// and releases nothing before then.
    #[test]
    fn an_echo_is_released_only_once_no_realignment_can_set_it_aside() {
        let returned = Echo::Returned { sent: 0, seen: 1 };
        let within = REALIGNED_WITHIN_BLOCKS as u64;
        let echo = |left: u64| Event::Echo {
            echo: returned,
            left,
            judged: left + 2,
        };
        let realigned = |block: u64| Event::Realigned { block, samples: 64 };
        let verdict = |events: &[Event]| {
            let mut ledger = Ledger::default();
            for &event in events {
                ledger.record(event);
            }
            assert!(ledger.release(12 + within).is_none(), "released too soon");
            match ledger.release(13 + within) {
                Some(Echo::Returned { .. }) => "returned",
                Some(Echo::Misaligned) => "misaligned",
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(verdict(&[echo(10)]), "returned");
        // At the start of the emission block: before the impulse left.
        assert_eq!(verdict(&[realigned(10), echo(10)]), "returned");
        assert_eq!(verdict(&[realigned(11), echo(10)]), "misaligned");
        assert_eq!(verdict(&[echo(10), realigned(12 + within)]), "misaligned");
        assert_eq!(verdict(&[echo(10), realigned(13 + within)]), "returned");
    }
}
