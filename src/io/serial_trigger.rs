//! The serial trigger: one byte on a serial port for every pulse, for a TTL line driven by an
//! Arduino/Teensy-class board or a USB-serial adapter (to fire a stimulator or mark an EEG).
//!
//! This is control-half code. The real-time half only pushes [`TriggerEvent`]s into a lock-free
//! SPSC ring (`try_push`, never blocking); a [`SerialTrigger`] thread pops them in order, sleeps
//! until each one's wall-clock due time given by a [`SampleClock`], writes the configured byte,
//! flushes, and logs a [`TriggerWrite`]. [`write_log`] saves that log as CSV.
//!
//! Timing: while the ring is empty the thread polls it every [`IDLE_POLL`]; an event that is
//! already due is written at once, a future one is waited for with a sleep and then a short spin
//! (the last [`SPIN`]), so the byte is never written before its due time. The log's `written_s`
//! is taken after the flush returned, so the lag includes the driver's transmit time.
//!
//! Boards that reset when the port is opened (e.g. an Arduino Uno, through DTR) ignore bytes
//! for a second or two while their bootloader runs: start the trigger well before the first
//! pulse.

use ringbuf::traits::Consumer;
use ringbuf::HeapCons;
use serialport::SerialPort;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Header of the trigger log CSV written by [`write_log`] (a stable contract).
pub const LOG_HEADER: &str = "sample,due_s,written_s,lag_ms";

/// How long the writer sleeps when the ring is empty: short, so a pulse that is due now is
/// written at most about this late.
pub const IDLE_POLL: Duration = Duration::from_micros(200);

/// The writer spins instead of sleeping for this last part of a wait, because a sleep can
/// overshoot by tens of microseconds.
pub const SPIN: Duration = Duration::from_micros(100);

/// How long one write may wait for room on a stalled port before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// Longest single sleep while waiting for a due time: keeps `Duration` conversion finite even
/// for absurd due times.
const MAX_SLEEP_S: f64 = 1.0;

use crate::engine::Counters;
pub use crate::engine::TriggerEvent;
pub use crate::profile::SerialTriggerConfig;

/// One write: the scheduled sample, when it was due and when the byte was actually written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TriggerWrite {
    /// The pulse's sample index.
    pub sample: u64,
    /// When the pulse was due, seconds since the clock's origin.
    pub due_s: f64,
    /// When the write and flush of its byte returned, seconds since the clock's origin
    /// (never earlier than `due_s`).
    pub written_s: f64,
}

/// Maps sample indices to wall-clock time: sample `n` is due `n / fs` seconds after sample 0,
/// which is at the origin, or (for [`SampleClock::from_first_block`]) when the processor began
/// its first block.
#[derive(Clone, Debug)]
pub struct SampleClock {
    origin: Instant,
    /// Infinite for [`SampleClock::immediate`], which makes every sample due at the origin.
    sample_rate_hz: f64,
    /// Counters whose `first_block_ns` (after the origin) places sample 0.
    first_block: Option<Arc<Counters>>,
}

impl SampleClock {
    /// A clock whose sample 0 is at `origin`, counting `sample_rate_hz` samples per second
    /// (finite and > 0).
    pub fn new(origin: Instant, sample_rate_hz: f64) -> Result<Self, String> {
        if !(sample_rate_hz.is_finite() && sample_rate_hz > 0.0) {
            return Err(format!(
                "sample clock: the sample rate must be finite and > 0 Hz, not {sample_rate_hz}"
            ));
        }
        Ok(Self {
            origin,
            sample_rate_hz,
            first_block: None,
        })
    }

    /// A clock whose sample 0 is when the processor whose `counters` these are began its first
    /// block (`first_block_ns` after `origin`, the processor's own origin): a device's stream
    /// starts some time after the run is built, and a clock started before it would make every
    /// pulse overdue, so that the bytes of a block's pulses went out back to back.
    pub fn from_first_block(
        origin: Instant,
        sample_rate_hz: f64,
        counters: Arc<Counters>,
    ) -> Result<Self, String> {
        let mut clock = Self::new(origin, sample_rate_hz)?;
        clock.first_block = Some(counters);
        Ok(clock)
    }

    /// A clock that makes every event due at once (offline runs, tests): its origin is now and
    /// every sample is due at the origin (`due_s` = 0), so a log's lag is the time since this
    /// call.
    pub fn immediate() -> Self {
        Self {
            origin: Instant::now(),
            sample_rate_hz: f64::INFINITY,
            first_block: None,
        }
    }

    /// The `Instant` of sample 0.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// When `sample` is due, seconds since the origin (`sample / fs` after sample 0). Events
    /// exist only once the first block has begun, so its time is known whenever this is asked.
    pub fn due_s(&self, sample: u64) -> f64 {
        let start_s = self.first_block.as_ref().map_or(0.0, |c| {
            c.first_block_ns.load(Ordering::Relaxed) as f64 * 1e-9
        });
        start_s + sample as f64 / self.sample_rate_hz
    }

    /// Seconds elapsed since the origin.
    fn now_s(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// Block until `due_s` (seconds since the origin) has passed.
    fn wait_until(&self, due_s: f64) {
        let spin_s = SPIN.as_secs_f64();
        loop {
            let left = due_s - self.now_s();
            if left <= 0.0 {
                return;
            }
            if left > spin_s {
                std::thread::sleep(Duration::from_secs_f64((left - spin_s).min(MAX_SLEEP_S)));
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// The running writer thread. Dropping it without [`SerialTrigger::finish`] also stops the
/// thread (after it has written what is queued), without waiting for it.
pub struct SerialTrigger {
    thread: JoinHandle<Result<Vec<TriggerWrite>, String>>,
    stop: StopOnDrop,
}

/// Sets the writer's stop flag when dropped: without it a dropped trigger would leave its
/// thread polling the ring forever.
struct StopOnDrop(Arc<AtomicBool>);

impl StopOnDrop {
    fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SerialTrigger {
    /// Open `config.port` at `config.baud` (8N1, no flow control) and start the writer thread
    /// (see [`SerialTrigger::start_with_port`]). If the port can't be opened, the error names
    /// it and lists the ports that are available.
    pub fn start(
        config: &SerialTriggerConfig,
        events: HeapCons<TriggerEvent>,
        clock: SampleClock,
        min_interval: Duration,
    ) -> Result<Self, String> {
        let port = serialport::new(&config.port, config.baud)
            .timeout(WRITE_TIMEOUT)
            .open()
            .map_err(|e| {
                format!(
                    "serial trigger: cannot open port '{}': {e} (available ports: {})",
                    config.port,
                    available_ports()
                )
            })?;
        Self::start_with_port(port, config.byte, events, clock, min_interval)
    }

    /// Start the writer thread on an already-open port: it pops events from `events` in order,
    /// waits until each one's due time on `clock`, and no less than `min_interval` after the
    /// previous write (the profile's pulse-rate limit, held on the wire whatever the timing
    /// upstream), writes `byte`, flushes, and logs the write.
    /// The real-time half is never blocked: this side only pops. The port's own timeout bounds
    /// each write; a write or flush error ends the thread, and [`SerialTrigger::finish`] then
    /// reports it.
    pub fn start_with_port(
        port: Box<dyn SerialPort>,
        byte: u8,
        events: HeapCons<TriggerEvent>,
        clock: SampleClock,
        min_interval: Duration,
    ) -> Result<Self, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("entrain-serial-trigger".into())
            .spawn(move || run(port, byte, events, clock, min_interval, &thread_stop))
            .map_err(|e| format!("serial trigger: cannot start the writer thread: {e}"))?;
        Ok(Self {
            thread,
            stop: StopOnDrop(stop),
        })
    }

    /// Stop once every event already queued has been written (waiting for the due time of any
    /// that lie in the future) and return the log, in event order. Events pushed after this
    /// call may or may not be written. If a write failed, the error says which port, which
    /// sample, and how many bytes had been written before it.
    pub fn finish(self) -> Result<Vec<TriggerWrite>, String> {
        self.stop.stop();
        self.thread
            .join()
            .map_err(|_| "serial trigger: the writer thread panicked".to_string())?
    }
}

/// The writer thread's loop.
fn run(
    mut port: Box<dyn SerialPort>,
    byte: u8,
    mut events: HeapCons<TriggerEvent>,
    clock: SampleClock,
    min_interval: Duration,
    stop: &AtomicBool,
) -> Result<Vec<TriggerWrite>, String> {
    let name = port.name().unwrap_or_else(|| "(unnamed port)".to_string());
    let mut log: Vec<TriggerWrite> = Vec::new();
    loop {
        // Read the flag before popping: every push made before `finish` set it is then
        // visible to this pop, so an empty ring really means all queued events are written.
        let stopping = stop.load(Ordering::Acquire);
        let Some(event) = events.try_pop() else {
            if stopping {
                return Ok(log);
            }
            std::thread::sleep(IDLE_POLL);
            continue;
        };
        let due_s = clock.due_s(event.sample);
        let spaced_s = log
            .last()
            .map_or(0.0, |w| w.written_s + min_interval.as_secs_f64());
        clock.wait_until(due_s.max(spaced_s));
        let failed = |stage: &str, e: std::io::Error| {
            format!(
                "serial trigger on '{name}': write failed for the pulse at sample {} ({stage}); \
                 {} earlier byte(s) were written: {e}",
                event.sample,
                log.len()
            )
        };
        port.write_all(&[byte])
            .map_err(|e| failed("its byte was not sent", e))?;
        port.flush()
            .map_err(|e| failed("its byte was sent but the flush failed", e))?;
        log.push(TriggerWrite {
            sample: event.sample,
            due_s,
            written_s: clock.now_s(),
        });
    }
}

/// The names of the serial ports found on this machine, for error messages.
fn available_ports() -> String {
    match serialport::available_ports() {
        Ok(ports) if ports.is_empty() => "none found".to_string(),
        Ok(ports) => ports
            .iter()
            .map(|p| p.port_name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("cannot list them: {e}"),
    }
}

/// Write `log` as CSV to `path`: header [`LOG_HEADER`], then one row per write with `due_s`
/// and `written_s` in seconds (µs resolution) and `lag_ms` = written − due in milliseconds
/// (µs resolution).
pub fn write_log(path: &Path, log: &[TriggerWrite]) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write '{}': {e}", path.display());
    let mut out = BufWriter::new(File::create(path).map_err(err)?);
    writeln!(out, "{LOG_HEADER}").map_err(err)?;
    for w in log {
        writeln!(
            out,
            "{},{:.6},{:.6},{:.3}",
            w.sample,
            w.due_s,
            w.written_s,
            (w.written_s - w.due_s) * 1e3
        )
        .map_err(err)?;
    }
    out.flush().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringbuf::traits::{Producer, Split};
    use ringbuf::HeapRb;
    use std::io::Read;

    #[cfg(unix)]
    use serialport::TTYPort;

    fn ring(capacity: usize) -> (ringbuf::HeapProd<TriggerEvent>, HeapCons<TriggerEvent>) {
        HeapRb::<TriggerEvent>::new(capacity).split()
    }

    fn push(prod: &mut ringbuf::HeapProd<TriggerEvent>, sample: u64) {
        prod.try_push(TriggerEvent { sample })
            .expect("test ring has room");
    }

    /// Read exactly `n` bytes from the pty's master end while the slave is still open (its
    /// reads time out after 100 ms; once the slave closes they fail with a hang-up instead).
    #[cfg(unix)]
    fn read_bytes(master: &mut TTYPort, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        master.read_exact(&mut buf).expect("bytes arrive");
        buf
    }

    /// Bytes waiting at the pty's master end, polled until `n` have arrived or 1 s passed
    /// (usable after the slave closed).
    #[cfg(unix)]
    fn pending_bytes(master: &TTYPort, n: u32) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let pending = master.bytes_to_read().expect("FIONREAD");
            if pending >= n || Instant::now() > deadline {
                return pending;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    #[cfg(unix)]
    fn writes_one_byte_per_event_in_order() {
        const N: u64 = 25;
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        let (mut prod, cons) = ring(64);
        let trigger = SerialTrigger::start_with_port(
            Box::new(slave),
            0xA5,
            cons,
            SampleClock::immediate(),
            Duration::ZERO,
        )
        .unwrap();
        // Pushed while the thread runs, and with gaps in the sample numbers.
        for k in 0..N {
            push(&mut prod, 10 * k + 3);
        }
        assert_eq!(read_bytes(&mut master, N as usize), vec![0xA5; N as usize]);
        // Nothing beyond the N bytes: one more read times out.
        let mut extra = [0u8; 1];
        let e = master.read(&mut extra).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        let log = trigger.finish().unwrap();

        let samples: Vec<u64> = log.iter().map(|w| w.sample).collect();
        assert_eq!(samples, (0..N).map(|k| 10 * k + 3).collect::<Vec<_>>());
        for w in &log {
            assert_eq!(w.due_s, 0.0);
            assert!(w.written_s >= 0.0);
        }
        assert!(log.windows(2).all(|p| p[0].written_s <= p[1].written_s));
    }

    #[test]
    #[cfg(unix)]
    fn real_clock_writes_at_due_time() {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let (mut prod, cons) = ring(8);
        let clock = SampleClock::new(Instant::now(), 1000.0).unwrap();
        let trigger =
            SerialTrigger::start_with_port(Box::new(slave), 1, cons, clock, Duration::ZERO)
                .unwrap();
        for sample in [0, 50, 100] {
            push(&mut prod, sample);
        }
        // `finish` right away: it must still wait for the two future events.
        let log = trigger.finish().unwrap();
        assert_eq!(pending_bytes(&master, 3), 3);

        assert_eq!(log.len(), 3);
        for (w, sample) in log.iter().zip([0u64, 50, 100]) {
            let lag_ms = (w.written_s - w.due_s) * 1e3;
            println!("sample {sample}: due {:.6} s, lag {lag_ms:.3} ms", w.due_s);
            assert_eq!(w.sample, sample);
            assert!((w.due_s - sample as f64 / 1000.0).abs() < 1e-12);
            assert!(w.written_s >= w.due_s, "written before due: {w:?}");
            // Loose on purpose: CI machines are noisy; typical lags are well under 1 ms.
            assert!(lag_ms < 50.0, "lag {lag_ms} ms: {w:?}");
        }
    }

    /// Events that arrive overdue all at once (a burst) still go out no closer than the
    /// pulse-rate limit's interval.
    #[test]
    #[cfg(unix)]
    fn overdue_events_are_written_no_closer_than_the_rate_limit() {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let (mut prod, cons) = ring(8);
        let interval = Duration::from_millis(20);
        for sample in [0, 1, 2, 3] {
            push(&mut prod, sample);
        }
        let trigger = SerialTrigger::start_with_port(
            Box::new(slave),
            1,
            cons,
            SampleClock::immediate(),
            interval,
        )
        .unwrap();
        let log = trigger.finish().unwrap();
        assert_eq!(pending_bytes(&master, 4), 4);
        assert_eq!(log.len(), 4);
        for pair in log.windows(2) {
            let gap = pair[1].written_s - pair[0].written_s;
            assert!(gap >= interval.as_secs_f64(), "{gap} s between {pair:?}");
        }
    }

    /// A device's clock starts at its first block: sample n is due n / fs after it, not after
    /// the moment the run was built.
    #[test]
    fn a_device_clock_counts_from_the_first_block() {
        let origin = Instant::now();
        let counters = Arc::new(Counters::default());
        let clock = SampleClock::from_first_block(origin, 250.0, Arc::clone(&counters)).unwrap();
        counters
            .first_block_ns
            .store(1_500_000_000, Ordering::Relaxed);
        assert!((clock.due_s(0) - 1.5).abs() < 1e-12);
        assert!((clock.due_s(250) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn nonexistent_port_is_an_error_naming_it() {
        let (_prod, cons) = ring(4);
        let config = SerialTriggerConfig {
            port: "/dev/entrain-no-such-port".into(),
            baud: 115_200,
            byte: 1,
        };
        let Err(e) = SerialTrigger::start(&config, cons, SampleClock::immediate(), Duration::ZERO)
        else {
            panic!("opening a nonexistent port succeeded");
        };
        assert!(e.contains("/dev/entrain-no-such-port"), "{e}");
        assert!(e.contains("available ports"), "{e}");
    }

    #[test]
    #[cfg(unix)]
    fn write_error_after_peer_closes_is_reported_by_finish() {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        let slave_name = slave.name().expect("a pty slave has a path");
        let (mut prod, cons) = ring(8);
        let trigger = SerialTrigger::start_with_port(
            Box::new(slave),
            7,
            cons,
            SampleClock::immediate(),
            Duration::ZERO,
        )
        .unwrap();
        for sample in 0..3 {
            push(&mut prod, sample);
        }
        // Once these arrived, close the master: writes to the slave then fail (EIO on Linux).
        assert_eq!(read_bytes(&mut master, 3), vec![7, 7, 7]);
        // Let the thread finish flushing the third byte (see the assertions below).
        std::thread::sleep(Duration::from_millis(20));
        drop(master);
        push(&mut prod, 3);
        push(&mut prod, 4);

        let e = trigger.finish().unwrap_err();
        assert!(e.contains(&slave_name), "{e}");
        assert!(e.contains("write failed"), "{e}");
        // Usually the write for sample 3 fails. Rarely the master closes while the thread is
        // still flushing sample 2's byte (which it already read), and that flush fails first.
        if e.contains("sample 3") {
            assert!(e.contains("not sent); 3 earlier byte(s)"), "{e}");
        } else {
            assert!(e.contains("sample 2"), "{e}");
            assert!(e.contains("flush failed); 2 earlier byte(s)"), "{e}");
        }
    }

    #[test]
    #[cfg(unix)]
    fn dropping_the_trigger_stops_its_thread() {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        let (mut prod, cons) = ring(4);
        let trigger = SerialTrigger::start_with_port(
            Box::new(slave),
            9,
            cons,
            SampleClock::immediate(),
            Duration::ZERO,
        )
        .unwrap();
        push(&mut prod, 0);
        drop(trigger);
        // The queued event is still written, then the thread ends and closes the slave end,
        // which the master sees as a hang-up instead of a read timeout.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut received = 0;
        loop {
            let mut buf = [0u8; 1];
            match master.read(&mut buf) {
                Ok(n) => {
                    assert_eq!(buf, [9]);
                    received += n as u32;
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    assert!(Instant::now() < deadline, "the thread is still running");
                }
                Err(_) => break,
            }
        }
        assert_eq!(received + pending_bytes(&master, 1 - received), 1);
    }

    #[test]
    fn clock_maps_samples_to_seconds() {
        let origin = Instant::now();
        let clock = SampleClock::new(origin, 250.0).unwrap();
        assert_eq!(clock.origin(), origin);
        assert_eq!(clock.due_s(0), 0.0);
        assert_eq!(clock.due_s(375), 1.5);
        assert_eq!(SampleClock::immediate().due_s(1_000_000), 0.0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(SampleClock::new(origin, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_log_round_trip() {
        let log = [
            TriggerWrite {
                sample: 0,
                due_s: 0.0,
                written_s: 0.000_250,
            },
            TriggerWrite {
                sample: 1500,
                due_s: 1.5,
                written_s: 1.501_125,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trigger.csv");
        write_log(&path, &log).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("sample,due_s,written_s,lag_ms"));
        let rows: Vec<Vec<f64>> = lines
            .map(|l| l.split(',').map(|f| f.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), log.len());
        for (row, w) in rows.iter().zip(&log) {
            assert_eq!(row.len(), 4);
            assert_eq!(row[0], w.sample as f64);
            assert!((row[1] - w.due_s).abs() < 1e-9);
            assert!((row[2] - w.written_s).abs() < 1e-9);
            assert!((row[3] - (w.written_s - w.due_s) * 1e3).abs() < 1e-6);
        }
        assert!((rows[1][3] - 1.125).abs() < 1e-9);
    }

    #[test]
    fn write_log_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-folder").join("trigger.csv");
        let e = write_log(&path, &[]).unwrap_err();
        assert!(e.contains("missing-folder"), "{e}");
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: SerialTriggerConfig = toml::from_str(r#"port = "/dev/ttyACM0""#).unwrap();
        assert_eq!(
            c,
            SerialTriggerConfig {
                port: "/dev/ttyACM0".into(),
                baud: 115_200,
                byte: 1,
            }
        );
        let c: SerialTriggerConfig =
            toml::from_str("port = \"COM3\"\nbaud = 9600\nbyte = 0xFF").unwrap();
        assert_eq!((c.baud, c.byte), (9600, 255));
        assert!(toml::from_str::<SerialTriggerConfig>("port = \"x\"\nbyte = 256").is_err());
        assert!(toml::from_str::<SerialTriggerConfig>("port = \"x\"\nbuad = 9600").is_err());
    }
}
