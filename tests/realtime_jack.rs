//! The real-time driver against a JACK server on the dummy driver: a real audio server, paced
//! in real time, with no sound card. `scripts/test.sh` installs and starts one and builds with
//! `--features jack`; elsewhere these tests skip and say how to run them (under CI=true a
//! missing server is a failure, not a skip).
#![cfg(feature = "jack")]

mod common;

use std::process::Command;

/// Whether a JACK server answers; under CI its absence fails the test.
fn jack_running() -> bool {
    let up = Command::new("jack_wait")
        .arg("-c")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "running")
        .unwrap_or(false);
    if !up {
        assert!(
            std::env::var("CI").is_err(),
            "CI must exercise the JACK path: scripts/test.sh starts a dummy server"
        );
        eprintln!(
            "skipped: no JACK server. Run scripts/test.sh, or start one with \
             `jackd -R -d dummy -r 48000 -p 64` and build with --features jack"
        );
    }
    up
}

#[test]
fn quickstart_in_real_time_has_no_late_blocks_and_matches_the_offline_phase_errors() {
    if !jack_running() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rt");
    let result = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args([
            "run",
            "profiles/quickstart.toml",
            "--realtime",
            "--host",
            "jack",
            "-q",
        ])
        .args(["--duration", "10", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let rt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(rt["driver"], "realtime");
    assert_eq!(rt["ending"], "completed");
    assert_eq!(rt["block"], 64);
    assert_eq!(rt["samples"], 480_000);
    assert_eq!(rt["late_blocks"], 0, "{}", rt["block_time"]);
    // Paced by the server: callbacks arrive every 64 / 48 kHz on average.
    let period = rt["realtime"]["callback_period"]["median_ms"]
        .as_f64()
        .unwrap();
    assert!(
        (period - 64.0 / 48.0).abs() < 0.05,
        "callback period {period} ms"
    );

    let offline_dir = dir.path().join("offline");
    let offline = common::run(&common::quickstart(&["run.duration_s=10"]), &offline_dir);
    let mean_rt = rt["phase_error"]["mean_deg"].as_f64().unwrap();
    let sd_rt = rt["phase_error"]["sd_deg"].as_f64().unwrap();
    let (mean, sd) = (
        offline.phase_error.mean_deg.unwrap(),
        offline.phase_error.sd_deg.unwrap(),
    );
    assert!(
        (mean_rt - mean).abs() < 5.0,
        "mean error: real time {mean_rt:.2}°, offline {mean:.2}°"
    );
    assert!(
        (sd_rt - sd).abs() < 5.0,
        "SD: real time {sd_rt:.2}°, offline {sd:.2}°"
    );
}
