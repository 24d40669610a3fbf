//! The serial trigger line end to end over a pseudo-terminal pair: one byte per delivered
//! pulse, in order, as many as `events.csv` has rows, with every write logged.
#![cfg(unix)]

mod common;

use serialport::{SerialPort, TTYPort};
use std::io::Read;
use std::time::Duration;

#[test]
fn one_byte_per_pulse_over_a_pty_pair() {
    let (mut master, slave) = TTYPort::pair().expect("a pseudo-terminal pair");
    let port = slave.name().expect("the slave end has a path");
    // The run opens the slave by its path (serial ports are opened exclusively).
    drop(slave);
    // Hold the slave end open (non-exclusively, before the run opens it) so that the pty never
    // hangs up: every byte the run writes stays readable from the master after it closes.
    let _held_open = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&port)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sets = [
        "run.duration_s=5".to_string(),
        format!("trigger.port=\"{port}\""),
        "trigger.byte=165".to_string(),
    ];
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let summary = common::run(&common::quickstart(&sets), dir.path());
    let events = common::events(dir.path());
    assert!(events.len() > 20, "{} pulses", events.len());
    assert_eq!(summary.pulses as usize, events.len());

    master.set_timeout(Duration::from_millis(100)).unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = master.read(&mut buf) {
        bytes.extend_from_slice(&buf[..n]);
    }
    assert_eq!(bytes.len(), events.len(), "one byte per pulse, no more");
    assert!(bytes.iter().all(|&b| b == 165));

    // The log has one row per write, in the order the pulses were emitted.
    let log = std::fs::read_to_string(dir.path().join("triggers.csv")).unwrap();
    let mut lines = log.lines();
    assert_eq!(lines.next(), Some("sample,due_s,written_s,lag_ms"));
    let rows: Vec<(u64, f64, f64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    let emitted: Vec<u64> = events.iter().map(|e| e.sample).collect();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), emitted);
    // Offline, a run with a trigger line keeps to the sample clock: each byte goes out when its
    // sample is due (it used to go out as soon as the loop computed it, hundreds per second),
    // and never closer to the last than the pulse-rate limit allows.
    let profile = common::quickstart(&[]);
    let (fs, max_rate) = (profile.run.sample_rate_hz, profile.safety.max_pulse_rate_hz);
    for &(sample, due_s, written_s) in &rows {
        assert!(
            (due_s - sample as f64 / fs).abs() < 2e-6,
            "{sample}: {due_s}"
        );
        assert!(
            written_s >= due_s - 1e-6,
            "{sample}: written {written_s} before {due_s}"
        );
    }
    for pair in rows.windows(2) {
        let gap = pair[1].2 - pair[0].2;
        assert!(gap >= 1.0 / max_rate - 2e-6, "{gap} s between {pair:?}");
    }
}

#[test]
fn a_trigger_port_that_does_not_exist_is_a_clear_error() {
    let profile = common::quickstart(&["run.duration_s=1", "trigger.port=\"/dev/no-such-port\""]);
    let built = entrain::engine::build(&profile).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let err = entrain::run::offline(&profile, built, &out, &Default::default(), |_| {})
        .expect_err("a missing port is an error");
    assert!(err.contains("/dev/no-such-port"), "{err}");
    // Refused before any output: no empty events.csv or signals.wav without a summary.
    assert!(
        !out.exists(),
        "{:?}",
        std::fs::read_dir(&out).map(|d| d.count())
    );
}
