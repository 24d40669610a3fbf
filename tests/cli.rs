//! The `entrain` binary on shipped and broken profiles.

mod common;

use common::entrain;

use std::path::Path;
use std::process::Command;

#[test]
fn quickstart_run_writes_the_three_outputs_with_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stdout, stderr) = entrain(&[
        "run",
        "profiles/quickstart.toml",
        "--out",
        out.to_str().unwrap(),
        "--duration",
        "5",
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stdout.contains("pulses:") && stdout.contains("phase error"),
        "{stdout}"
    );

    let summary = common::summary_json(&out);
    for field in [
        "version",
        "profile",
        "sample_rate",
        "block",
        "latency_samples",
        "samples",
        "pulses",
        "phase_error",
        "plv",
        "dropped_records",
        "late_blocks",
        "xruns",
        "channels",
    ] {
        assert!(summary.get(field).is_some(), "summary.json lacks `{field}`");
    }
    assert_eq!(summary["samples"], 5 * 48000);
    assert_eq!(summary["latency_samples"], 96);
    assert_eq!(summary["dropped_records"], 0);
    assert_eq!(summary["channels"][0], "observable");
    for key in ["mean_deg", "sd_deg", "r"] {
        assert!(summary["phase_error"][key].is_number(), "phase_error.{key}");
    }
    for key in ["before", "during", "after"] {
        assert!(summary["plv"].get(key).is_some(), "plv.{key}");
    }
    assert_eq!(summary["profile"]["run"]["duration_s"], 5.0);

    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(
        events.lines().next().unwrap(),
        "sample,time_s,target_deg,estimated_deg,true_deg,error_deg,amplitude"
    );
    assert_eq!(
        events.lines().count() as u64 - 1,
        summary["pulses"].as_u64().unwrap()
    );

    let wav = hound::WavReader::open(out.join("signals.wav")).unwrap();
    let spec = wav.spec();
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    assert_eq!(spec.bits_per_sample, 32);
    assert_eq!(spec.sample_rate, 48000);
    assert_eq!(
        spec.channels as usize,
        summary["channels"].as_array().unwrap().len()
    );
    assert_eq!(wav.duration(), 5 * 48000);
}

#[test]
fn every_shipped_profile_passes_check() {
    let mut checked = 0;
    for entry in std::fs::read_dir("profiles").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let (code, stdout, stderr) = entrain(&["check", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {stderr}", path.display());
        assert!(stdout.contains("declared loop latency"), "{stdout}");
        checked += 1;
    }
    assert!(checked >= 3);
}

/// Write `text` to a temporary profile, run `check` on it, return (exit code, stderr).
fn check_text(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let (code, _, stderr) = entrain(&["check", path.to_str().unwrap()]);
    assert!(
        !stderr.contains("panicked"),
        "a bad profile must not panic: {stderr}"
    );
    (code, stderr)
}

fn quickstart() -> String {
    std::fs::read_to_string("profiles/quickstart.toml").unwrap()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn bad_profiles_exit_2_with_file_line_and_key() {
    // Unknown key.
    let text = quickstart().replace("seed = 1", "seed = 1\nsead = 2");
    let (code, err) = check_text(&text);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "bad.toml:{}: run.sead: unknown key",
            line_of(&text, "sead")
        )),
        "{err}"
    );

    // Wrong type.
    let text = quickstart().replace("duration_s = 20.0", "duration_s = \"twenty\"");
    let (code, err) = check_text(&text);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "bad.toml:{}: run.duration_s: invalid type",
            line_of(&text, "twenty")
        )),
        "{err}"
    );

    // Negative sample rate.
    let text = quickstart().replace("sample_rate_hz = 48000", "sample_rate_hz = -48000");
    let (code, err) = check_text(&text);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "bad.toml:{}: run.sample_rate_hz",
            line_of(&text, "-48000")
        )),
        "{err}"
    );

    // Missing section.
    let text = quickstart().replace("[safety]", "[unsafety]");
    let (code, err) = check_text(&text);
    assert_eq!(code, 2);
    assert!(err.contains("missing section [safety]"), "{err}");
    assert!(err.contains("unsafety: unknown section"), "{err}");

    // Malformed TOML.
    let (code, err) = check_text("[run]\nsample_rate_hz = 48000\nduration_s = [1, \n");
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:") && err.contains("not valid TOML"),
        "{err}"
    );

    // A coupling matrix that does not exist.
    let text = quickstart().replace(
        "[sensor]",
        "[network]\ntopology = \"csv\"\nweights = \"no/such/matrix.csv\"\ngain = 1.0\n\n[sensor]",
    );
    let (code, err) = check_text(&text);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/matrix.csv"), "{err}");
}

#[test]
fn missing_profile_file_and_bad_set_are_reported_not_panicked() {
    let (code, _, err) = entrain(&["run", "no_such_profile.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read profile 'no_such_profile.toml'"),
        "{err}"
    );
    let (code, _, err) = entrain(&["check", "profiles/quickstart.toml", "--set", "nonsense"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("KEY=VALUE") && !err.contains("panicked"),
        "{err}"
    );
    let (code, _, err) = entrain(&[
        "run",
        "profiles/quickstart.toml",
        "--duration",
        "-3",
        "--out",
        "/tmp/never",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--duration -3") && !err.contains("--set"),
        "{err}"
    );
    assert!(!Path::new("/tmp/never").exists());
    // Far too long, but a number: refused for its length, not as a malformed value.
    let (code, _, err) = entrain(&[
        "run",
        "profiles/quickstart.toml",
        "--duration",
        "1e300",
        "--out",
        "/tmp/never",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("run.duration_s") && !err.contains("invalid type"),
        "{err}"
    );
}

/// A delay past the longest supported is blamed on the file it came from, in a readable number
/// (1e300 was printed with 300 digits, against `network.delay_ms`, a key the profile never set).
#[test]
fn a_delay_file_beyond_the_longest_delay_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (w, d) = (dir.path().join("w.csv"), dir.path().join("d.csv"));
    std::fs::write(&w, "0,1\n1,0\n").unwrap();
    std::fs::write(&d, "0,1e300\n2,0\n").unwrap();
    let network = format!(
        "network={{topology=\"csv\", weights=\"{}\", delays_ms=\"{}\", gain=0.1}}",
        w.display(),
        d.display()
    );
    let (code, _, stderr) = entrain(&[
        "check",
        "profiles/quickstart.toml",
        "--set",
        "model.nodes=2",
        "--set",
        &network,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("network.delays_ms (")
            && stderr.contains("d.csv")
            && stderr.contains("1e300 ms"),
        "{stderr}"
    );
}

/// A natural frequency at or above the plant's Nyquist frequency is refused for the oscillators
/// whose step it breaks (the harmonic oscillator used to run, and diverge). Kuramoto phases
/// only alias there, and a Lorentzian spread of frequencies has such tails by design (the
/// Ott–Antonsen test draws them), so Kuramoto takes them.
#[test]
fn natural_frequencies_past_the_plants_nyquist_are_refused() {
    for profile in [
        "profiles/quickstart.toml",
        "profiles/harmonic_resonance.toml",
    ] {
        let (code, _, stderr) = entrain(&["check", profile, "--set", "model.params.freq_hz=30000"]);
        assert_eq!(code, 2, "{profile}: {stderr}");
        assert!(
            stderr.contains("model.params.freq_hz") && stderr.contains("Nyquist"),
            "{profile}: {stderr}"
        );
    }
}

/// A path that is not a profile (a device, a recording) is refused before it fills memory, and
/// a profile with a byte that is not UTF-8 is refused at that byte's line and column.
#[test]
fn a_huge_or_binary_file_given_as_a_profile_is_refused_where_it_goes_wrong() {
    let (code, _, err) = entrain(&["check", "/dev/zero"]);
    assert_eq!(code, 2);
    assert!(err.contains("larger than 16 MiB"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.toml");
    let mut text = quickstart().into_bytes();
    text.extend_from_slice(b"\n# caf\xe9\n");
    let line = text.iter().filter(|&&b| b == b'\n').count();
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = entrain(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("latin1.toml:{line}:6: not UTF-8")) && err.contains("0xe9"),
        "{err}"
    );
}

/// SIGINT (Ctrl-C), SIGTERM (`timeout`, systemd, SLURM) and SIGHUP (a dropped SSH session)
/// mid-run all end it the same way: exit code 130, the files are complete and readable, the
/// stimulus ramps to zero before the end, and the engine's own stop is not counted as a command.
#[test]
fn ctrl_c_sigterm_and_sighup_ramp_down_and_leave_complete_outputs() {
    for signal in ["INT", "TERM", "HUP"] {
        interrupt_a_run(signal);
    }
}

fn interrupt_a_run(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args([
            "run",
            "profiles/quickstart.toml",
            // Long enough never to end by itself (and within signals.wav's 4 GiB).
            "--duration",
            "4000",
            "--set",
            "stimulation.start_s=0",
            "--set",
            "safety.ramp_s=0.05",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run is under way (its WAV header and first flush exist).
    let started = std::time::Instant::now();
    while !out.join("signals.wav").exists()
        || std::fs::metadata(out.join("signals.wav")).unwrap().len() < 1_000_000
    {
        assert!(started.elapsed().as_secs() < 60, "the run did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A signal without a handler kills the process: no exit code at all.
    assert_eq!(output.status.code(), Some(130), "SIG{signal}: {stderr}");
    assert!(stderr.contains("interrupted"), "SIG{signal}: {stderr}");

    let summary = common::summary_json(&out);
    assert_eq!(summary["ending"], "interrupted", "SIG{signal}");
    assert_eq!(summary["commands"], 0, "SIG{signal}: no command was sent");
    let samples = summary["samples"].as_u64().unwrap();
    let wav = hound::WavReader::open(out.join("signals.wav")).unwrap();
    let channels = wav.spec().channels as usize;
    assert_eq!(
        wav.duration() as u64,
        samples,
        "every processed sample is in the file"
    );
    let data: Vec<f32> = wav.into_samples::<f32>().map(Result::unwrap).collect();
    let stimulus: Vec<f32> = data.iter().copied().skip(3).step_by(channels).collect();
    // The last 0.05 s ramp leaves the output at exactly zero at the end …
    assert_eq!(*stimulus.last().unwrap(), 0.0);
    // … and pulses were being delivered shortly before the stop.
    let tail = &stimulus[stimulus.len().saturating_sub(48_000)..];
    assert!(
        tail.iter().any(|&s| s != 0.0),
        "stimulation was running at the interrupt"
    );
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(
        events.lines().count() as u64 - 1,
        summary["pulses"].as_u64().unwrap()
    );
}

/// Run the Baier grid profile for `seconds` into `out` with every node recorded at
/// `nodes_rate_hz`, and check that it succeeded.
fn baier_run_with_nodes(out: &Path, seconds: &str, nodes_rate_hz: &str) {
    let rate = format!("output.nodes_rate_hz={nodes_rate_hz}");
    let (code, _, stderr) = entrain(&[
        "run",
        "profiles/baier_grid_pulses.toml",
        "-q",
        "--duration",
        seconds,
        "--set",
        &rate,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
}

/// A grid run with every node recorded, then `entrain heatmap`: a heat map and grid snapshots
/// as SVG of the asked size, each with its raster embedded; a run without a node recording is
/// bad input that says how to make one.
#[test]
fn heatmap_draws_a_grid_run_and_explains_a_missing_recording() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("baier");
    baier_run_with_nodes(&run, "1", "500");
    let (code, stdout, stderr) = entrain(&[
        "heatmap",
        run.to_str().unwrap(),
        "--snapshots",
        "4",
        "--width",
        "800",
        "--height",
        "400",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("49 nodes × 500 frames"), "{stdout}");
    let heat = std::fs::read_to_string(run.join("heatmap.svg")).unwrap();
    let root = &heat[heat.find("<svg").unwrap()..];
    let root = &root[..root.find('>').unwrap()];
    assert!(
        root.contains("width=\"800\"") && root.contains("height=\"400\""),
        "{root}"
    );
    assert_eq!(heat.matches("data:image/png;base64,").count(), 1);
    let snaps = std::fs::read_to_string(run.join("snapshots.svg")).unwrap();
    assert_eq!(snaps.matches("data:image/png;base64,").count(), 4);
    assert!(
        snaps.contains("t = 0.000 s"),
        "the first snapshot is at the start"
    );

    // The quickstart records no nodes.
    let plain = dir.path().join("plain");
    let (code, _, _) = entrain(&[
        "run",
        "-q",
        "--duration",
        "1",
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let (code, _, stderr) = entrain(&["heatmap", plain.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nodes_rate_hz"), "{stderr}");
    // A folder that is not there is named as such, not as a run without a node recording.
    let nowhere = dir.path().join("nowhere");
    let (code, _, stderr) = entrain(&["heatmap", nowhere.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no such folder") && !stderr.contains("nodes_rate_hz"),
        "{stderr}"
    );
}

/// A reader that stops early (`entrain … | head`) closes stdout: the command carries on (a run
/// completes its outputs) and exits as it would have, where it used to panic (exit 101).
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = [
        "run",
        "profiles/quickstart.toml",
        "--duration",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    for args in [&["check", "profiles/quickstart.toml"][..], &run[..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_entrain"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command has printed anything.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    for file in ["signals.wav", "events.csv", "summary.json"] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    // The same for stderr (`… 2>&1 | head`): an error still ends with its own exit code.
    let mut child = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["check", "no/such/profile.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(
        child.wait().unwrap().code(),
        Some(2),
        "bad input, not a panic"
    );
}

/// `entrain devices` gives each device one line per direction for its configurations (ALSA's
/// `null` device alone used to print over 1 600 lines of `Debug` text).
#[test]
fn devices_lists_each_devices_configurations_on_one_line_per_direction() {
    let (code, stdout, stderr) = entrain(&["devices"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("host ")), "{stdout}");
    let mut previous = "";
    for line in stdout.lines() {
        let config = line.trim_start();
        if let Some(summary) = config
            .strip_prefix("out ")
            .or_else(|| config.strip_prefix("in  "))
        {
            assert!(
                summary.contains("channels") && summary.contains("Hz"),
                "{line}"
            );
            // At most an `out` then an `in` line under each device.
            let after_out = previous.trim_start().starts_with("out ") && config.starts_with("in ");
            assert!(
                !previous.starts_with("      ") || after_out,
                "a second line for one direction: {previous} / {line}"
            );
        }
        previous = line;
    }
}

/// A model that blows up is not a successful run: the outputs are written, the summary says
/// when the observable stopped being finite, and the command exits 1 saying how to fix it.
#[test]
fn a_diverging_model_fails_the_run_and_says_when() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, _, stderr) = entrain(&[
        "run",
        "profiles/quickstart.toml",
        "--out",
        out.to_str().unwrap(),
        "--duration",
        "1",
        "--set",
        "model.params.lambda=1e9",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("non-finite") && stderr.contains("samples_per_step"),
        "{stderr}"
    );
    let summary = common::summary_json(&out);
    let t = summary["diverged_at_s"].as_f64().expect("diverged_at_s");
    assert!((0.0..0.1).contains(&t), "{t}");
    // A healthy run has no such field.
    let healthy = dir.path().join("healthy");
    let (code, _, stderr) = entrain(&[
        "run",
        "profiles/quickstart.toml",
        "--out",
        healthy.to_str().unwrap(),
        "--duration",
        "1",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(common::summary_json(&healthy)
        .get("diverged_at_s")
        .is_none());
}

/// Sizes that would exhaust memory are refused before anything is allocated, naming the key
/// (they aborted the process, or ran for minutes filling memory).
#[test]
fn runs_too_large_to_hold_are_refused_naming_the_setting() {
    let nodes: Vec<String> = (0..1024).map(|i| i.to_string()).collect();
    let record = format!("output.record_nodes=[{}]", nodes.join(","));
    let (code, _, stderr) = entrain(&[
        "check",
        "profiles/quickstart.toml",
        "--set",
        "model.nodes=1024",
        "--set",
        &record,
        "--set",
        "output.telemetry_buffer_s=60",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("output.telemetry_buffer_s") && stderr.contains("GB"),
        "{stderr}"
    );
    let (code, _, stderr) = entrain(&[
        "check",
        "profiles/quickstart.toml",
        "--set",
        "model.nodes=100000",
        "--set",
        "network.topology=random_sparse",
        "--set",
        "network.mean_degree=99999",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("edges") && stderr.contains("mean_degree"),
        "{stderr}"
    );
    // signals.wav past 4 GiB would wrap its header: 5 channels at 48 kHz hold about 74 min.
    let (code, _, stderr) = entrain(&[
        "check",
        "profiles/quickstart.toml",
        "--set",
        "run.duration_s=5000",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("run.duration_s") && stderr.contains("4 GiB"),
        "{stderr}"
    );
    for (set, key) in [
        ("model.params.freq_hz=30000", "Nyquist"),
        ("model.params.initial_amplitude=nan", "initial_amplitude"),
        ("run.duration_s=0.00001", "not one sample"),
    ] {
        let (code, _, stderr) = entrain(&["check", "profiles/quickstart.toml", "--set", set]);
        assert_eq!(code, 2, "{set}: {stderr}");
        assert!(stderr.contains(key), "{set}: {stderr}");
    }
}

/// An earlier run's folder is never replaced unasked (it may be all there is of a session);
/// with --overwrite the new run leaves nothing of the old that would pass for its own: a heat
/// map of the earlier run's nodes was drawn for a one-node run.
#[test]
fn a_new_run_into_an_old_runs_folder_needs_overwrite_and_removes_what_it_does_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    baier_run_with_nodes(&out, "1", "100");
    assert!(out.join("nodes.f32").exists() && out.join("nodes.json").exists());
    let (code, _, stderr) = entrain(&["heatmap", out_s]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.join("heatmap.svg").exists());
    let before = std::fs::read(out.join("summary.json")).unwrap();
    let again = |overwrite: bool| {
        let mut args = vec![
            "run",
            "profiles/quickstart.toml",
            "--out",
            out_s,
            "--duration",
            "1",
            "-q",
        ];
        if overwrite {
            args.push("--overwrite");
        }
        entrain(&args)
    };
    let (code, _, stderr) = again(false);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("already holds a run") && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), before);
    assert!(out.join("nodes.f32").exists() && out.join("heatmap.svg").exists());
    let (code, _, stderr) = again(true);
    assert_eq!(code, 0, "{stderr}");
    for stale in ["nodes.f32", "nodes.json", "heatmap.svg"] {
        assert!(!out.join(stale).exists(), "{stale} left behind");
    }
    let (code, _, stderr) = entrain(&["heatmap", out_s]);
    assert_eq!(code, 2, "{stderr}");
}

/// A snapshot count over the limit used to be refused only after heatmap.svg was written: it
/// is checked before anything is drawn.
#[test]
fn heatmap_refuses_too_many_snapshots_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("baier");
    baier_run_with_nodes(&run, "0.5", "100");
    let pictures = dir.path().join("pictures");
    let (code, _, stderr) = entrain(&[
        "heatmap",
        run.to_str().unwrap(),
        "--snapshots",
        "5000",
        "--out",
        pictures.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--snapshots 5000: at most 32"), "{stderr}");
    assert!(!pictures.exists(), "something was written");
    assert!(!run.join("heatmap.svg").exists());
}

/// The synthetic set's size has upper bounds too (it used to abort out of memory): exit 2 with
/// the limit and what to lower.
#[test]
fn evaluate_refuses_a_synthetic_set_too_large_to_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ev");
    for (rate, duration, expected) in [
        (
            "1e12",
            "10",
            "--rate 1000000000000: the synthetic set's sample rate must be 100 Hz … 1 MHz",
        ),
        ("100", "1e12", "lower --duration to 100000 s or less"),
        ("1000000", "11", "at most 10000000"),
        ("50", "10", "must be 100 Hz … 1 MHz"),
        (
            "1000",
            "5",
            "--duration 5: each synthetic record must last at least 10 s",
        ),
    ] {
        let (code, _, stderr) = entrain(&[
            "evaluate",
            "--synthetic",
            "--rate",
            rate,
            "--duration",
            duration,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{rate} {duration}: {stderr}");
        assert!(stderr.contains(expected), "{rate} {duration}: {stderr}");
    }
    assert!(!out.exists());
}

/// Options the CLI turns into profile settings are checked as options (not reported as a
/// --set the user never typed), and names are passed through quoted.
#[test]
fn run_options_are_checked_as_options_and_names_pass_through_whole() {
    let (code, _, stderr) = entrain(&["run", "profiles/quickstart.toml", "--duration", "nan"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--duration NaN") && !stderr.contains("--set"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = entrain(&[
        "run",
        "profiles/quickstart.toml",
        "--realtime",
        "--device",
        "a\"b\\c",
        "--out",
        dir.path().join("rt").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("'a\"b\\c' not found"), "{stderr}");
}

#[test]
fn latency_with_a_host_or_device_that_does_not_exist_is_bad_input() {
    for args in [
        &["latency", "--host", "nosuch"][..],
        &["latency", "--output-device", "nosuch"],
        &["latency", "--input-device", "nosuch"],
    ] {
        let (code, _, stderr) = entrain(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("'nosuch'"), "{args:?}: {stderr}");
    }
}

/// Each bad argument is named, not lost in a list of every rule (and all are checked before
/// any device is opened).
#[test]
fn latency_names_the_argument_at_fault() {
    for (args, named) in [
        (&["latency", "--amplitude", "2"][..], "--amplitude 2"),
        (&["latency", "--block", "1000000"], "--block 1000000"),
        (
            &["latency", "--output-channel", "70000"],
            "--output-channel 70000",
        ),
        (&["latency", "--timeout-s", "nan"], "--timeout-s NaN"),
    ] {
        let (code, _, stderr) = entrain(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn a_device_that_does_not_start_gets_a_summary_but_no_figures() {
    // Machines without a sound card have an ALSA default device that cannot play; where one
    // can, there is nothing to check here.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rt");
    let (code, stdout, stderr) = entrain(&[
        "run",
        "--realtime",
        "--duration",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    if !stderr.contains("did not start") {
        eprintln!("the default device started here (exit {code}): nothing to check");
        return;
    }
    assert_eq!(code, 1, "{stderr}");
    assert!(!stdout.contains("simulated"), "{stdout}");
    let summary = common::summary_json(&out);
    assert_eq!(summary["ending"], "device_error");
    assert_eq!(summary["samples"], 0);
}
