//! External sources for the sensor: the input link (captured samples crossing from an input
//! callback to the engine's clock) and recordings played from memory.

use crate::wav::read_channel;
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Captured samples crossing from the input callback to the output callback, with a fixed,
/// declared offset: the ring starts holding `offset` zeros, so the reader gets the input of
/// `offset` samples earlier (plus the rig's own latency). Neither side ever waits: a full ring
/// drops the capture, an empty one reads as an underrun.
pub struct InputLink {
    /// Capture side, for the input callback.
    pub capture: CaptureSide,
    /// Engine side, for the output callback.
    pub reader: InputReader,
}

impl InputLink {
    /// A link holding `offset` samples of delay, with room for `capacity` samples in flight,
    /// read at `sample_rate_hz` in blocks of `block` frames.
    pub fn new(offset: usize, capacity: usize, sample_rate_hz: f64, block: usize) -> Self {
        let (mut producer, consumer) = HeapRb::<f32>::new(capacity.max(offset + 1)).split();
        for _ in 0..offset {
            let _ = producer.try_push(0.0);
        }
        let clock = Arc::new(CaptureClock {
            epoch: Instant::now(),
            newest_ns: AtomicU64::new(0),
        });
        Self {
            capture: CaptureSide {
                producer,
                clock: Arc::clone(&clock),
            },
            reader: InputReader {
                consumer,
                offset,
                primed: false,
                clock,
                samples_per_ns: sample_rate_hz * 1e-9,
                block,
                window: Box::new([0.0; ALIGN_WINDOW_BLOCKS]),
                in_window: 0,
                windows: 0,
                reference: None,
                delay: 0.0,
                hold: 0,
                last: 0.0,
            },
        }
    }
}

/// When the newest captured sample arrived, shared by the two sides of a link.
#[derive(Debug)]
struct CaptureClock {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the end of the last capture callback.
    newest_ns: AtomicU64,
}

impl CaptureClock {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// The capture side of an [`InputLink`], for the input callback.
pub struct CaptureSide {
    producer: HeapProd<f32>,
    clock: Arc<CaptureClock>,
}

impl CaptureSide {
    /// One capture callback's samples (of the chosen channel): pushed, and the time noted.
    /// Returns how many the full ring dropped. Real-time safe.
    pub fn push(&mut self, samples: impl IntoIterator<Item = f32>) -> usize {
        let now = self.clock.now_ns();
        self.push_at(samples, now)
    }

    /// [`CaptureSide::push`] at `now_ns` on the link's clock ([`InputReader::now_ns`]).
    pub(crate) fn push_at(&mut self, samples: impl IntoIterator<Item = f32>, now_ns: u64) -> usize {
        let dropped = samples
            .into_iter()
            .filter(|&x| self.producer.try_push(x).is_err())
            .count();
        self.clock.newest_ns.store(now_ns, Ordering::Release);
        dropped
    }
}

/// Blocks over which [`InputReader::align`] gathers the link's delay before judging it (about
/// 40 ms at 48 kHz in 64-frame blocks): long enough that a median sees through a capture
/// callback caught half done, short enough to undo an xrun within a tenth of a second.
const ALIGN_WINDOW_BLOCKS: usize = 32;

/// A move of the link's delay is realigned at most this many blocks after the block in which
/// it happened: at the end of its window if it covers most of that window, else of the next.
pub const REALIGNED_WITHIN_BLOCKS: usize = 2 * ALIGN_WINDOW_BLOCKS;

/// What [`InputReader::align`] did at a block start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Realignment {
    /// The link's delay is where it started.
    None,
    /// The capture had run ahead (an output xrun, or a faster input clock): this many (at
    /// least one) of the oldest samples were skipped.
    Skipped(usize),
    /// The capture had fallen behind (lost input periods, or a slower input clock): the last
    /// sample is read again this many times (at least one) before the ring is read on.
    Held(usize),
}

/// The reading side of an [`InputLink`]. It starts reading at the first block start after the
/// capture side has started filling the ring, so the offset does not depend on which stream
/// started first, nor on whether the two callbacks run at once (the
/// drivers hand the capture side its end of the link only once both streams run, so no
/// backlog builds up before the first read).
///
/// Invariant (with [`InputReader::align`] called at every block start): from the second window
/// after priming on, the delay from capture to read stays within half a block of that window's,
/// re-based by whole periods to the nominal delay (the offset plus one period, see
/// [`InputReader::align`]). An xrun on either side, or two clocks that drift, would otherwise move
/// it by whole periods for the rest of the run, and with it the phase of every pulse.
pub struct InputReader {
    consumer: HeapCons<f32>,
    offset: usize,
    primed: bool,
    clock: Arc<CaptureClock>,
    /// The sample rate, per nanosecond.
    samples_per_ns: f64,
    /// Frames per block.
    block: usize,
    /// The delay at the block starts of the window being gathered, samples (boxed: the
    /// reader sits in the engine's source beside much smaller alternatives).
    window: Box<[f64; ALIGN_WINDOW_BLOCKS]>,
    in_window: usize,
    /// Windows completed since priming.
    windows: u64,
    /// The median delay of the second window after priming (the first may still hold the
    /// streams' start-up), re-based to the nominal delay: the delay the run is held to.
    reference: Option<f64>,
    /// The delay at the start of the current block, after any realignment there.
    delay: f64,
    /// Reads still to answer with `last` instead of the ring.
    hold: usize,
    /// The last sample read from the ring.
    last: f32,
}

impl InputReader {
    /// The next captured sample: `Some(0.0)` until the capture side has started (as seen by
    /// [`InputReader::start_block`]), `None` on an underrun (the caller counts it and reads 0).
    /// Real-time safe.
    #[inline]
    pub fn read(&mut self) -> Option<f32> {
        if !self.primed {
            return Some(0.0);
        }
        if self.hold > 0 {
            self.hold -= 1;
            return Some(self.last);
        }
        let x = self.consumer.try_pop()?;
        self.last = x;
        Some(x)
    }

    /// Whether the capture side has started.
    pub fn primed(&self) -> bool {
        self.primed
    }

    /// Whether the link's delay is held to its reference (from the second window after priming
    /// on; see [`InputReader::align`]).
    pub fn aligned(&self) -> bool {
        self.reference.is_some()
    }

    /// Whether the delay measured at the start of this block (by [`InputReader::align`]) was
    /// within half a block of the reference. A single block's measure can be off by a callback
    /// that ran late in its period, so false means "not sure", not "moved".
    pub fn on_reference(&self) -> bool {
        self.reference
            .is_some_and(|reference| (self.delay - reference).abs() < self.block as f64 / 2.0)
    }

    /// Nanoseconds since the link was made, on the clock both sides share.
    pub(crate) fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Call at the start of every block, before its reads: once the capture side has started
    /// filling the ring, reading begins here. Returns whether it has begun. Real-time safe.
    ///
    /// Reading begins only on a block start, never within a block: the capture side pushes
    /// whole capture periods, and its first sample is a period's first, so the link's delay is
    /// the offset plus whole periods. On a server that runs the two callbacks at once (JACK2
    /// runs unrelated clients in parallel) the first capture lands in the middle of an output
    /// block; beginning there would add a fraction of a period to the delay.
    ///
    /// Nor does the delay depend on the order in which the two callbacks ran when the streams
    /// started. A capture period counts as captured in the period whose output block started
    /// nearest to its arrival, and is read `offset` samples after that block's start: if the
    /// capture already holds a period that came nearer the previous block start (the output
    /// callback ran first), or more than one period, the periods that would be read late are
    /// skipped (the offset's zeros first). Otherwise the delay would be a period longer
    /// whenever the output callback happened to run first at the start. This is judged from
    /// one block's timing; [`InputReader::align`] checks it over a window and re-bases it.
    pub fn start_block(&mut self) -> bool {
        let now = self.clock.now_ns();
        self.start_block_at(now)
    }

    fn start_block_at(&mut self, now_ns: u64) -> bool {
        if self.primed || self.consumer.occupied_len() <= self.offset {
            return self.primed;
        }
        self.primed = true;
        // The whole periods captured (a push under way on the other thread is this period's),
        // and how long ago the last of them arrived (read after the fill: a push that ends in
        // between counts as just now; none ended yet, as now).
        let block = self.block as f64;
        let captured = (self.consumer.occupied_len() - self.offset) / self.block * self.block;
        let since = self.since_capture(now_ns);
        // One period captured, just now, is this period's: nothing to skip. Each further
        // period in the ring, or a last period that came nearer the previous block start than
        // this one, would be read a period late.
        let late = ((captured as f64 + since - block) / block).round();
        if late >= 1.0 {
            self.consumer.skip(late as usize * self.block);
        }
        true
    }

    /// Samples since the last capture callback ended, at `now_ns`; 0 while the first is still
    /// under way (its samples are this period's).
    fn since_capture(&self, now_ns: u64) -> f64 {
        match self.clock.newest_ns.load(Ordering::Acquire) {
            0 => 0.0,
            newest => now_ns.saturating_sub(newest) as f64 * self.samples_per_ns,
        }
    }

    /// Call at the start of every block, before its reads: begins reading as
    /// [`InputReader::start_block`] does, and keeps the link's delay where it started.
    /// Real-time safe.
    ///
    /// The delay, in samples, from the newest capture to the next read is the ring's fill
    /// (with the reads still held) plus the time since the capture callback last ran. The fill
    /// alone swings by a period with the order in which the two callbacks happen to run, which
    /// does not move the delay; adding the time takes that swing out. Over each window of
    /// [`ALIGN_WINDOW_BLOCKS`] blocks the median is compared with the reference window's: a lost or
    /// repeated period, or clocks that drift apart, move it, and once it is half a block or
    /// more away the difference is skipped or held.
    ///
    /// The reference itself is re-based by whole periods to within half a period of the
    /// nominal delay, the offset plus one period: a capture period read `offset` after the
    /// start of the output block nearest its arrival. Priming judges that nearness from one
    /// block's timing, which a callback running late in its period (a loaded machine) fools,
    /// and a period lost or repeated before the reference window would be held for the whole
    /// run; either puts the delay a period off, and `entrain latency`'s figure, or a run's
    /// declared latency, with it. A window's median is not fooled by a few late callbacks.
    /// Only whole periods are re-based: the phase between two devices' periods is kept.
    pub fn align(&mut self) -> Realignment {
        let now = self.clock.now_ns();
        self.align_at(now)
    }

    /// [`InputReader::align`] at `now_ns` on the link's clock.
    pub(crate) fn align_at(&mut self, now_ns: u64) -> Realignment {
        if !self.start_block_at(now_ns) {
            return Realignment::None;
        }
        let since = self.since_capture(now_ns);
        self.delay = (self.consumer.occupied_len() + self.hold) as f64 + since;
        self.window[self.in_window] = self.delay;
        self.in_window += 1;
        if self.in_window < ALIGN_WINDOW_BLOCKS {
            return Realignment::None;
        }
        self.in_window = 0;
        self.windows += 1;
        self.window.sort_unstable_by(f64::total_cmp);
        let median = self.window[ALIGN_WINDOW_BLOCKS / 2];
        if self.windows == 1 {
            return Realignment::None;
        }
        let block = self.block as f64;
        let moved = match self.reference {
            Some(reference) => median - reference,
            None => {
                let nominal = (self.offset + self.block) as f64;
                let periods = ((median - nominal) / block).round();
                self.reference = Some(median - periods * block);
                periods * block
            }
        };
        if moved.abs() < block / 2.0 {
            return Realignment::None;
        }
        // A lost or repeated period moves the delay by whole periods, which the measure sees
        // give or take a few samples of scheduling: put back exactly those. Drifting clocks
        // move it by what is measured.
        let periods = (moved / block).round();
        let moved = if (moved - periods * block).abs() < block / 4.0 {
            periods * block
        } else {
            moved
        };
        let samples = moved.abs().round() as usize;
        if moved > 0.0 {
            // Held reads not yet given count as delay: give up those first.
            let from_hold = samples.min(self.hold);
            self.hold -= from_hold;
            match from_hold + self.consumer.skip(samples - from_hold) {
                // A capture that stopped (a vanished device) leaves nothing to skip.
                0 => Realignment::None,
                skipped => {
                    self.delay -= skipped as f64;
                    Realignment::Skipped(skipped)
                }
            }
        } else {
            self.hold += samples;
            self.delay += samples as f64;
            Realignment::Held(samples)
        }
    }
}

/// A recording played as the sensor's source, one sample per engine sample, from its start.
///
/// Loaded whole at build time (the control half reads the file); reading a sample is an index
/// into memory, so it is real-time safe.
pub struct Recording {
    /// The chosen channel, full scale ±1 for integer files.
    samples: Vec<f32>,
    position: usize,
    looping: bool,
}

impl Recording {
    /// Load `channel` of the WAV file at `path`, which must be at `sample_rate_hz`.
    /// Errors name the file and say what to change.
    pub fn load(
        path: &Path,
        channel: usize,
        sample_rate_hz: f64,
        looping: bool,
    ) -> Result<Self, String> {
        let shown = path.display();
        crate::profile::check_sensor_file(path, channel, sample_rate_hz)
            .map_err(|(key, e)| format!("{key}: {e}"))?;
        // The channel exists (checked above): what can still fail is the file.
        let wav = read_channel(path, channel).map_err(|e| format!("sensor.file: {e}"))?;
        let samples: Vec<f32> = wav.samples.iter().map(|&x| x as f32).collect();
        if samples.is_empty() {
            return Err(format!("sensor.file: {shown} holds no samples"));
        }
        let max = crate::estimate::MAX_INPUT;
        let usable = |s: &f64| crate::estimate::usable_input(*s);
        if let Some(at) = wav.samples.iter().position(|s| !usable(s)) {
            return Err(format!(
                "sensor.file: {shown} has a sample of {} at frame {at} of channel {channel} \
                 (entrain takes finite samples within ±{max:e}); clean the recording first",
                wav.samples[at]
            ));
        }
        Ok(Self {
            samples,
            position: 0,
            looping,
        })
    }

    /// Samples in the recording.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the recording is empty (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The next sample; past the end, the start again (looping) or silence. Real-time safe.
    #[inline]
    pub fn read(&mut self) -> f32 {
        if self.position == self.samples.len() {
            if !self.looping {
                return 0.0;
            }
            self.position = 0;
        }
        let x = self.samples[self.position];
        self.position += 1;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS: f64 = 48_000.0;
    const BLOCK: usize = 64;
    /// One block's period, ns.
    const PERIOD_NS: f64 = BLOCK as f64 / FS * 1e9;

    #[test]
    fn before_the_capture_side_starts_the_reader_gets_silence_not_underruns() {
        let InputLink {
            mut capture,
            mut reader,
        } = InputLink::new(128, 4096, FS, BLOCK);
        for _ in 0..1000 / BLOCK {
            assert!(!reader.start_block());
            for _ in 0..BLOCK {
                assert_eq!(reader.read(), Some(0.0));
            }
        }
        assert!(!reader.primed());
        // One block captured: from the next block start the reader reads the 128 samples of
        // fill, then the block.
        capture.push((1..=64).map(|k| k as f32));
        assert!(reader.start_block());
        let read: Vec<f32> = (0..192).map(|_| reader.read().unwrap()).collect();
        assert!(read[..128].iter().all(|&x| x == 0.0));
        assert_eq!(read[128], 1.0);
        assert_eq!(read[191], 64.0);
        // Nothing more captured: an underrun.
        assert_eq!(reader.read(), None);
    }

    /// A capture that starts while an output block is being read (a server running the two
    /// callbacks at once) is read from a block start, and counts as captured in the period
    /// whose output block started nearest to its arrival: every captured sample is read the
    /// offset after that block's start, plus its place in the capture.
    #[test]
    fn a_capture_starting_mid_block_is_read_from_a_block_start() {
        let offset = 2 * BLOCK;
        let frame_ns = |frames: usize| (frames as f64 / FS * 1e9) as u64;
        for (arrives_at, nearest_block) in [(1, 0), (28, 0), (36, 1), (63, 1)] {
            let InputLink {
                mut capture,
                mut reader,
            } = InputLink::new(offset, 64 * BLOCK, FS, BLOCK);
            // Output sample index at which each captured value (its capture index, from 1)
            // was read.
            let mut read_at = Vec::new();
            let mut captured = 0usize;
            for block in 0..8 {
                reader.start_block_at(frame_ns(block * BLOCK));
                for frame in 0..BLOCK {
                    // A capture period is pushed during each output block, `arrives_at`
                    // frames in, as the other thread would.
                    if frame == arrives_at {
                        capture.push_at(
                            (captured + 1..=captured + BLOCK).map(|v| v as f32),
                            frame_ns(block * BLOCK + frame),
                        );
                        captured += BLOCK;
                    }
                    let x = reader.read().expect("no underrun");
                    if x != 0.0 {
                        read_at.push((x as usize, block * BLOCK + frame));
                    }
                }
            }
            assert!(!read_at.is_empty(), "arriving at frame {arrives_at}");
            for (value, at) in read_at {
                assert_eq!(
                    at,
                    nearest_block * BLOCK + offset + (value - 1),
                    "capture arriving at frame {arrives_at}: value {value}"
                );
            }
        }
    }

    /// A rig whose capture and output callbacks both run once a period, at nearly the same
    /// moment, so that either may come first. Sample `v` (from 1) carries the value `v`; on one
    /// clock, output block `k` plays at sample `k · BLOCK`, so the delay from capture to output
    /// is `k · BLOCK − v` for the block's first sample `v`.
    struct Rig {
        capture: CaptureSide,
        reader: InputReader,
        /// Samples the converter has produced (captured or lost).
        produced: usize,
        /// Periods elapsed.
        period: usize,
        jitter: u64,
        realignments: Vec<Realignment>,
        /// The ring's fill as each output block starts.
        fills: Vec<usize>,
        /// Whether the output callback ran first in the first period.
        output_first: bool,
        /// Periods by which the output callback of the next period runs late.
        output_late: f64,
        /// Periods by which every capture callback runs later than it did at the start.
        capture_lag: f64,
    }

    /// What the capture callback does in a period.
    #[derive(Clone, Copy, PartialEq)]
    enum Capture {
        /// Delivers this many samples.
        Delivers(usize),
        /// Loses a period: the converter ran, the samples never arrive.
        Loses,
    }

    impl Rig {
        fn new(offset: usize) -> Self {
            Self::seeded(offset, 0x9e37_79b9_7f4a_7c15)
        }

        /// A rig whose callbacks' moments come from `seed` (non-zero).
        fn seeded(offset: usize, seed: u64) -> Self {
            let InputLink { capture, reader } = InputLink::new(offset, 64 * BLOCK, FS, BLOCK);
            Self {
                capture,
                reader,
                produced: 0,
                period: 0,
                jitter: seed,
                realignments: Vec::new(),
                fills: Vec::new(),
                output_first: false,
                output_late: 0.0,
                capture_lag: 0.0,
            }
        }

        /// When a callback of this period runs: mid-period, ±5 % of a period.
        fn moment(&mut self) -> u64 {
            self.jitter ^= self.jitter << 13;
            self.jitter ^= self.jitter >> 7;
            self.jitter ^= self.jitter << 17;
            let u = (self.jitter >> 11) as f64 / (1u64 << 53) as f64;
            ((self.period as f64 + 0.45 + 0.1 * u) * PERIOD_NS) as u64
        }

        /// One period. Returns the output block's delay (None when its callback is missed).
        fn run(&mut self, capture: Capture, output: bool) -> Option<usize> {
            let (at_capture, at_output) = (self.moment(), self.moment());
            let at_output = at_output + (std::mem::take(&mut self.output_late) * PERIOD_NS) as u64;
            let at_capture = at_capture + (self.capture_lag * PERIOD_NS) as u64;
            if self.period == 0 {
                self.output_first = at_output < at_capture;
            }
            let mut delay = None;
            if output && at_output < at_capture {
                delay = Some(self.output(at_output));
            }
            match capture {
                Capture::Delivers(n) => {
                    let first = self.produced + 1;
                    self.capture
                        .push_at((first..first + n).map(|v| v as f32), at_capture);
                    self.produced += n;
                }
                Capture::Loses => self.produced += BLOCK,
            }
            if output && at_output >= at_capture {
                delay = Some(self.output(at_output));
            }
            self.period += 1;
            delay
        }

        fn steady(&mut self) -> usize {
            self.run(Capture::Delivers(BLOCK), true).unwrap()
        }

        fn output(&mut self, at: u64) -> usize {
            self.fills.push(self.reader.consumer.occupied_len());
            let realignment = self.reader.align_at(at);
            if realignment != Realignment::None {
                self.realignments.push(realignment);
            }
            let first = self.reader.read().expect("no underrun");
            for _ in 1..BLOCK {
                self.reader.read().expect("no underrun");
            }
            (self.period * BLOCK).wrapping_sub(first as usize)
        }

        /// Run until the reference window is in; the delay then.
        fn settle(&mut self) -> usize {
            for _ in 0..3 * ALIGN_WINDOW_BLOCKS {
                self.steady();
            }
            assert!(self.reader.reference.is_some());
            self.steady()
        }
    }

    #[test]
    fn callbacks_that_swap_order_never_move_the_delay() {
        let mut rig = Rig::new(2 * BLOCK);
        let settled = rig.settle();
        rig.fills.clear();
        for _ in 0..5000 {
            assert_eq!(rig.steady(), settled);
        }
        assert!(rig.realignments.is_empty(), "{:?}", rig.realignments);
        // The order did swap: the fill as blocks started took two values a period apart.
        let fills = &rig.fills;
        let (low, high) = (fills.iter().min().unwrap(), fills.iter().max().unwrap());
        assert_eq!(high - low, BLOCK);
    }

    /// Whichever callback ran first when the streams started, the link settles at the same
    /// delay: the offset from the start of the period a sample was captured in.
    #[test]
    fn the_delay_does_not_depend_on_which_callback_ran_first_at_the_start() {
        let mut orders = [false; 2];
        for seed in 1..=16u64 {
            let mut rig = Rig::seeded(2 * BLOCK, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let settled = rig.settle();
            orders[usize::from(rig.output_first)] = true;
            // Value 1, the first sample captured (in period 0), is read as output block 2
            // starts: `offset` after block 0 started.
            assert_eq!(
                settled,
                2 * BLOCK - 1,
                "seed {seed}, output first: {}",
                rig.output_first
            );
            assert!(rig.realignments.is_empty(), "{:?}", rig.realignments);
        }
        assert_eq!(orders, [true; 2], "both orders at the start were tried");
    }

    /// An output callback that ran more than half a period late in the period the capture
    /// started (a loaded machine) makes that capture look like the previous period's, and
    /// priming reads it a period early. The reference window sees the delay a period short of
    /// the nominal one and re-bases it, so the link settles where it does otherwise.
    #[test]
    fn an_output_callback_late_at_the_start_is_re_based_to_the_nominal_delay() {
        let mut rig = Rig::new(2 * BLOCK);
        rig.output_late = 0.6;
        rig.run(Capture::Delivers(BLOCK), true);
        // Value 1 (period 0) would be read as block 1 starts: a period early.
        assert_eq!(
            rig.steady(),
            BLOCK - 1,
            "priming misjudged the late callback"
        );
        assert_eq!(rig.settle(), 2 * BLOCK - 1);
        assert_eq!(rig.realignments, [Realignment::Held(BLOCK)]);
    }

    /// A capture period lost before the reference window (an xrun as the streams start) would
    /// otherwise be held for the whole run.
    #[test]
    fn a_period_lost_before_the_reference_window_is_re_based_to_the_nominal_delay() {
        let mut rig = Rig::new(2 * BLOCK);
        for _ in 0..4 {
            rig.steady();
        }
        rig.run(Capture::Loses, true);
        assert_eq!(rig.settle(), 2 * BLOCK - 1);
        assert_eq!(rig.realignments, [Realignment::Held(BLOCK)]);
    }

    /// After one xrun: the one realignment, of about a period, and from the third window on
    /// (`delays` start at the xrun) the delay back where it had settled.
    fn undone_once(rig: &Rig, delays: &[usize], settled: usize) -> Realignment {
        let [realignment] = rig.realignments[..] else {
            panic!("one realignment, not {:?}", rig.realignments);
        };
        let (Realignment::Skipped(samples) | Realignment::Held(samples)) = realignment else {
            panic!("{realignment:?}");
        };
        assert_eq!(samples, BLOCK, "{realignment:?}");
        let restored = &delays[2 * ALIGN_WINDOW_BLOCKS..];
        assert!(restored.iter().all(|&d| d == settled), "{restored:?}");
        realignment
    }

    #[test]
    fn an_output_xrun_is_undone_within_two_windows() {
        let mut rig = Rig::new(2 * BLOCK);
        let settled = rig.settle();
        assert_eq!(rig.run(Capture::Delivers(BLOCK), false), None);
        let delays: Vec<usize> = (0..3 * ALIGN_WINDOW_BLOCKS).map(|_| rig.steady()).collect();
        assert_eq!(
            delays[0],
            settled + BLOCK,
            "the xrun moved the delay a period"
        );
        let undone = undone_once(&rig, &delays, settled);
        assert!(matches!(undone, Realignment::Skipped(_)), "{undone:?}");
    }

    #[test]
    fn a_lost_input_period_is_held_back_to_the_delay() {
        let mut rig = Rig::new(2 * BLOCK);
        let settled = rig.settle();
        rig.run(Capture::Loses, true);
        let delays: Vec<usize> = (0..3 * ALIGN_WINDOW_BLOCKS).map(|_| rig.steady()).collect();
        // The reads reach the gap once the ring's backlog (the offset) is read.
        assert_eq!(
            delays[2] + BLOCK,
            settled,
            "the loss moved the delay a period"
        );
        let undone = undone_once(&rig, &delays, settled);
        assert!(matches!(undone, Realignment::Held(_)), "{undone:?}");
    }

    /// The delay measure moves with the moments the callbacks run at, not only with the
    /// samples in the ring: a lost period is put back as the whole period it was, not as a
    /// period and the few samples the capture callback now runs later by.
    #[test]
    fn a_lost_period_is_put_back_exactly_when_the_callbacks_moments_shift() {
        let mut rig = Rig::new(2 * BLOCK);
        let settled = rig.settle();
        rig.capture_lag = 0.05;
        rig.run(Capture::Loses, true);
        let delays: Vec<usize> = (0..3 * ALIGN_WINDOW_BLOCKS).map(|_| rig.steady()).collect();
        let undone = undone_once(&rig, &delays, settled);
        assert!(matches!(undone, Realignment::Held(_)), "{undone:?}");
    }

    #[test]
    fn drifting_clocks_keep_the_link_within_a_block_of_its_fill() {
        for extra in [1isize, -1] {
            let mut rig = Rig::new(2 * BLOCK);
            rig.settle();
            let start = rig.reader.consumer.occupied_len() as isize;
            // An input clock 0.16 % fast or slow: one sample more or less every ten periods.
            let mut worst = 0isize;
            for k in 0..20_000 {
                let n = BLOCK as isize + if k % 10 == 0 { extra } else { 0 };
                rig.run(Capture::Delivers(n as usize), true);
                let fill = rig.reader.consumer.occupied_len() as isize;
                worst = worst.max((fill - start).abs());
            }
            // Uncorrected, the fill would have moved by 2 000 samples.
            assert!(
                worst <= 2 * BLOCK as isize,
                "extra {extra}: fill moved {worst}"
            );
            let corrected: usize = rig
                .realignments
                .iter()
                .map(|r| match (r, extra > 0) {
                    (Realignment::Skipped(k), true) | (Realignment::Held(k), false) => *k,
                    other => panic!("extra {extra}: {other:?}"),
                })
                .sum();
            assert!(corrected.abs_diff(2000) <= BLOCK, "corrected {corrected}");
        }
    }
}
