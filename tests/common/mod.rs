//! Helpers shared by the integration tests.
#![allow(dead_code)]

use entrain::profile::{self, Profile};
use entrain::record::Summary;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// The quickstart profile with `--set`-style overrides.
pub fn quickstart(sets: &[&str]) -> Profile {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    profile::load("quickstart", profile::QUICKSTART, &sets)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// Run a profile offline into `dir` and return its summary.
pub fn run(profile: &Profile, dir: &Path) -> Summary {
    let built = entrain::engine::build(profile).unwrap_or_else(|e| panic!("{e}"));
    entrain::run::offline(profile, built, dir, &AtomicBool::new(false), |_| {})
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// One row of events.csv.
#[derive(Debug)]
pub struct Event {
    pub sample: u64,
    pub target_deg: Option<f64>,
    pub estimated_deg: Option<f64>,
    pub true_deg: Option<f64>,
    pub error_deg: Option<f64>,
    pub amplitude: f64,
}

/// Parse events.csv, checking its header.
pub fn events(dir: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(entrain::record::EVENTS_HEADER));
    let opt = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 7, "row {l}");
            Event {
                sample: f[0].parse().unwrap(),
                target_deg: opt(f[2]),
                estimated_deg: opt(f[3]),
                true_deg: opt(f[4]),
                error_deg: opt(f[5]),
                amplitude: f[6].parse().unwrap(),
            }
        })
        .collect()
}

/// A run's summary.json, parsed.
pub fn summary_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json exists");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// Run the `entrain` binary; (exit code, stdout, stderr).
pub fn entrain(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `entrain ARGS…` with a watchdog: a command that never ends fails the test instead of
/// hanging it. Returns (exit code, stdout, stderr).
pub fn entrain_bounded(args: &[&str]) -> (i32, String, String) {
    use std::io::{Read, Seek};
    // Files, not pipes: a child that never ends must not also block on a full pipe.
    let (mut stdout, mut stderr) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(args)
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed().as_secs() > 300 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`entrain {}` never ended", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let read = |file: &mut std::fs::File| {
        let mut text = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    };
    let (out, err) = (read(&mut stdout), read(&mut stderr));
    (status.code().unwrap_or(-1), out, err)
}
