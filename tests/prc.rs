//! Phase-response curves: the measured PRC of a Stuart–Landau oscillator against the PRC computed
//! here by perturbing its limit cycle directly, the observable-based phase against the plant's,
//! the paired-noise design, and the CLI's outputs and errors.

mod common;

use std::f64::consts::TAU;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use entrain::analysis::wrap_angle;
use entrain::prc::{self, PhaseFrom, Prc, Settings};
use entrain::profile::{self, Profile};

/// Quickstart SL (λ = μ = 2: R = 1, 10 Hz, forcing gain 20) with a 5 ms monophasic pulse of 2
/// units and no charge recovery: a kick of 20 · 2 · 0.005 = 0.2 along Re z.
const KICK: [&str; 4] = [
    "stimulation.shape=\"monophasic\"",
    "stimulation.amplitude=2",
    "stimulation.width_s=0.005",
    "safety.charge_balance=false",
];

fn sl(noise: bool) -> Profile {
    let mut sets = KICK.to_vec();
    if !noise {
        sets.push("model.noise_sd=0");
    }
    common::quickstart(&sets)
}

fn settings(trials: usize, phase_from: Option<PhaseFrom>) -> Settings {
    Settings {
        phases: 12,
        trials,
        cycles: 3.0,
        settle_s: 1.0,
        phase_from,
    }
}

fn measure(profile: &Profile, settings: &Settings, jobs: usize) -> Prc {
    prc::measure(profile, settings, jobs, &AtomicBool::new(false), |_| {})
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("not interrupted")
}

/// The exact phase shift of `dz/dt = (λ + iω) z − μ|z|² z + F(t)` started on its limit cycle at
/// `phase`, with `F = gain · pulse[j]` over sample j (held, like the engine's forcing), by RK4 at
/// 8 substeps per sample, compared after `samples` samples with the free cycle `phase + ω t`.
fn exact_shift(phase: f64, pulse: &[f64], gain: f64, samples: usize, fs: f64) -> f64 {
    let (lambda, mu, omega): (f64, f64, f64) = (2.0, 2.0, TAU * 10.0);
    let radius = (lambda / mu).sqrt();
    let f = |x: f64, y: f64, force: f64| {
        let r2 = x * x + y * y;
        (
            lambda * x - omega * y - mu * r2 * x + force,
            omega * x + lambda * y - mu * r2 * y,
        )
    };
    let (mut x, mut y) = (radius * phase.cos(), radius * phase.sin());
    let h = 1.0 / fs / 8.0;
    for j in 0..samples {
        let force = gain * pulse.get(j).copied().unwrap_or(0.0);
        for _ in 0..8 {
            let k1 = f(x, y, force);
            let k2 = f(x + 0.5 * h * k1.0, y + 0.5 * h * k1.1, force);
            let k3 = f(x + 0.5 * h * k2.0, y + 0.5 * h * k2.1, force);
            let k4 = f(x + h * k3.0, y + h * k3.1, force);
            x += h / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0);
            y += h / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1);
        }
    }
    let t = samples as f64 / fs;
    wrap_angle(y.atan2(x) - phase - omega * t)
}

#[test]
fn stuart_landau_prc_matches_the_directly_perturbed_limit_cycle_within_five_percent_of_its_peak() {
    let profile = sl(false);
    let measured = measure(&profile, &settings(1, None), 2);
    assert_eq!(measured.phase_from, PhaseFrom::Plant);
    assert_eq!(measured.pulse.len(), 240, "5 ms at 48 kHz, no recovery");
    let fs = profile.run.sample_rate_hz;
    let samples = (3.0 * 0.1 * fs) as usize;
    let exact: Vec<f64> = measured
        .points
        .iter()
        .map(|p| {
            exact_shift(p.onset_deg.to_radians(), &measured.pulse, 20.0, samples, fs).to_degrees()
        })
        .collect();
    let peak = exact.iter().fold(0.0_f64, |m, e| m.max(e.abs()));
    // A kick κ = 0.2 on a cycle of radius 1 moves the phase by up to ≈ κ/R rad (11.5°), less
    // the cycle's rotation during the 5 ms pulse.
    assert!(
        (10.0..12.5).contains(&peak),
        "peak of the exact PRC {peak:.2}°"
    );
    for (p, e) in measured.points.iter().zip(&exact) {
        assert!(
            (p.shift_deg - e).abs() <= 0.05 * peak,
            "at {:.1}°: measured {:.3}°, exact {e:.3}° (peak {peak:.2}°)",
            p.onset_deg,
            p.shift_deg
        );
    }
    // A push along +Re z advances the phase before the peak and delays it after: the fitted
    // first harmonic is ≈ −(κ/R) sin θ, its largest advance near −90°.
    assert!(measured.fit.sin_deg < -9.0, "{:?}", measured.fit);
    assert!(
        (measured.fit.advance_phase_deg + 90.0).abs() < 20.0,
        "{:?}",
        measured.fit
    );
    // The first-order (analytic) curve of the same pulse agrees to the kick's second order.
    for p in &measured.points {
        assert!(
            (p.first_order_deg - p.shift_deg).abs() < 0.15 * peak,
            "{p:?}"
        );
    }
}

#[test]
fn the_observable_phase_gives_the_plant_phase_prc() {
    let profile = sl(false);
    let by_plant = measure(&profile, &settings(1, Some(PhaseFrom::Plant)), 2);
    let by_signal = measure(&profile, &settings(1, Some(PhaseFrom::Observable)), 2);
    assert_eq!(by_signal.phase_from, PhaseFrom::Observable);
    assert!(
        (by_signal.period_s - 0.1).abs() < 1e-4,
        "{}",
        by_signal.period_s
    );
    for (a, b) in by_plant.points.iter().zip(&by_signal.points) {
        assert!((a.shift_deg - b.shift_deg).abs() < 0.1, "{a:?} vs {b:?}");
        assert!(wrap_angle((a.onset_deg - b.onset_deg).to_radians()).abs() < 0.01);
    }
}

#[test]
fn paired_trials_cancel_the_noise_and_give_confidence_bands() {
    // With a pulse of zero amplitude both copies get the same input and the same noise: every
    // shift is exactly zero, on a noisy plant without a phase of its own (Wilson–Cowan).
    let text = std::fs::read_to_string("profiles/wilson_cowan.toml").unwrap();
    let (wc, _) = profile::load("wc", &text, &["stimulation.amplitude=0".into()]).unwrap();
    assert!(wc.model.noise_sd > 0.0);
    let nothing = measure(&wc, &settings(3, None), 2);
    assert_eq!(nothing.phase_from, PhaseFrom::Observable);
    assert!(nothing.trials.iter().all(|t| t.shift_deg == 0.0));

    // On the noisy SL the trials scatter, the band brackets the mean, and the curve keeps the
    // noise-free shape.
    let noisy = measure(&sl(true), &settings(6, None), 2);
    let clean = measure(&sl(false), &settings(1, None), 2);
    for p in &noisy.points {
        assert!(p.sd_deg > 0.0, "{p:?}");
        assert!(
            p.ci_low_deg < p.shift_deg && p.shift_deg < p.ci_high_deg,
            "{p:?}"
        );
    }
    let ratio = noisy.fit.sin_deg / clean.fit.sin_deg;
    assert!(
        (0.8..1.2).contains(&ratio),
        "{:?} vs {:?}",
        noisy.fit,
        clean.fit
    );
}

#[test]
fn the_prc_is_the_same_with_one_or_two_workers() {
    let profile = sl(true);
    let one = measure(&profile, &settings(2, None), 1);
    let two = measure(&profile, &settings(2, None), 2);
    let shifts = |p: &Prc| {
        p.trials
            .iter()
            .map(|t| t.shift_deg.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(shifts(&one), shifts(&two));
}

/// An interrupt during round 3 keeps rounds 1 and 2: exactly the PRC measured with 2 trials per
/// phase, marked interrupted. One before any round is complete keeps nothing.
#[test]
fn an_interrupted_prc_keeps_its_completed_rounds() {
    let profile = sl(true);
    let phases = settings(1, None).phases;
    let interrupt = AtomicBool::new(false);
    let cut = prc::measure(&profile, &settings(5, None), 1, &interrupt, |p| {
        if p.done == 2 * phases + 1 {
            assert_eq!(p.rounds, 2);
            interrupt.store(true, Ordering::Relaxed);
        }
    })
    .unwrap()
    .expect("two rounds were complete");
    assert!(cut.interrupted);
    assert_eq!(cut.trials_per_phase, 2);
    assert!(cut.points.iter().all(|p| p.trials == 2));
    let whole = measure(&profile, &settings(2, None), 1);
    assert!(!whole.interrupted);
    let rows = |p: &Prc| {
        p.trials
            .iter()
            .map(|t| (t.target_deg.to_bits(), t.trial, t.shift_deg.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&cut), rows(&whole));
    assert_eq!(cut.fit.amplitude_deg, whole.fit.amplitude_deg);

    let stopped = AtomicBool::new(true);
    let nothing = prc::measure(&profile, &settings(5, None), 2, &stopped, |_| {}).unwrap();
    assert!(nothing.is_none());
}

/// SIGTERM (or Ctrl-C) on `entrain prc` writes the completed rounds as a complete, marked PRC
/// and exits 130, instead of losing every trial.
#[test]
fn prc_ended_by_sigterm_writes_its_completed_rounds() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prc");
    let mut child = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args([
            "prc", "--phases", "2", "--trials", "5000", "--settle", "0.6",
        ])
        .args([
            "--cycles",
            "1",
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(KICK.iter().flat_map(|s| ["--set", s]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Away from a terminal it logs each completed round: signal once the first is done.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("trials per phase done") {
        assert_ne!(
            stderr.read_line(&mut log).unwrap(),
            0,
            "no round done: {log}"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{log}");
    assert!(log.contains("interrupted: kept the first"), "{log}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("prc.json")).unwrap()).unwrap();
    assert_eq!(json["interrupted"], true);
    let kept = json["trials_per_phase"].as_u64().unwrap();
    assert!((1..5000).contains(&kept), "{kept}");
    let table = std::fs::read_to_string(out.join("prc.csv")).unwrap();
    for line in table.lines().skip(1) {
        assert_eq!(
            line.split(',').nth(6),
            Some(kept.to_string().as_str()),
            "{line}"
        );
    }
    let trials = std::fs::read_to_string(out.join("prc_trials.csv")).unwrap();
    assert_eq!(trials.lines().count() as u64, 1 + 2 * kept);
}

#[test]
fn prc_command_writes_the_table_the_trials_and_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prc");
    let mut args = vec![
        "prc".to_string(),
        "--phases".into(),
        "8".into(),
        "--trials".into(),
        "2".into(),
        "--settle".into(),
        "1".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    for s in KICK {
        args.push("--set".into());
        args.push(s.into());
    }
    let status = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(&args)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let table = std::fs::read_to_string(out.join("prc.csv")).unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next(),
        Some("target_deg,onset_deg,shift_deg,sd_deg,ci_low_deg,ci_high_deg,trials,first_order_deg")
    );
    let targets: Vec<f64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        targets,
        [-180.0, -135.0, -90.0, -45.0, 0.0, 45.0, 90.0, 135.0]
    );
    let trials = std::fs::read_to_string(out.join("prc_trials.csv")).unwrap();
    assert_eq!(trials.lines().count(), 1 + 8 * 2);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("prc.json")).unwrap()).unwrap();
    assert!(
        json["fit"]["amplitude_deg"].as_f64().unwrap() > 5.0,
        "{json}"
    );
    let svg = std::fs::read_to_string(out.join("prc.svg")).unwrap();
    assert!(
        svg.contains("<polygon") || svg.contains("<path"),
        "no band drawn"
    );
    assert!(svg.contains("first-order SL"));
}

#[test]
fn prc_refuses_what_it_cannot_measure() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_entrain"))
            .args(args)
            .output()
            .unwrap()
    };
    let tacs = run(&[
        "prc",
        "--set",
        "stimulation.kind=\"tacs\"",
        "--set",
        "stimulation.freq_hz=10",
        // A valid tACS profile (the quickstart's duty limit would cut the sine).
        "--set",
        "safety.max_duty_cycle=1",
        "--out",
        "/nonexistent/never",
    ]);
    assert_eq!(tacs.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&tacs.stderr).contains("needs a pulse"));
    let wc = run(&["prc", "profiles/wilson_cowan.toml", "--phase", "plant"]);
    assert_eq!(wc.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wc.stderr).contains("--phase observable"));
    let zero = run(&["prc", "--trials", "0"]);
    assert_eq!(zero.status.code(), Some(2));
}

/// Counts with no upper bound used to abort out of memory (`--phases`, `--trials`) or run for
/// ever (`--cycles`, `--settle`): each is refused, exit 2, naming the option and its limit.
#[test]
fn prc_refuses_counts_beyond_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    for (args, expected) in [
        (
            ["--phases", "100000000000"],
            "--phases 100000000000: at most 3600",
        ),
        (["--trials", "100000000000"], "at most 100000 in all"),
        (["--cycles", "1e9"], "from 1 to 1000"),
        (["--settle", "1e9"], "at most 30000000 (625 s at this rate)"),
    ] {
        // The child is watched: before the limits, these ran for ever (or until memory ran out).
        let mut command = vec!["prc"];
        command.extend(args);
        command.extend(["--out", out.to_str().unwrap()]);
        let (code, _, stderr) = common::entrain_bounded(&command);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(!out.exists());
}

/// A settling too short to hold two cycles of the rhythm used to measure the period from a
/// couple of samples of the transient (38.6 ms for a 100 ms rhythm) and exit 0; now it is
/// refused with the settling to use, and that settling measures the true period.
#[test]
fn a_settling_too_short_to_measure_the_period_is_refused_with_the_minimum() {
    let quiet = sl(false);
    let short = Settings {
        phases: 2,
        trials: 1,
        cycles: 1.0,
        settle_s: 0.0001,
        phase_from: None,
    };
    let running = AtomicBool::new(false);
    let e = prc::measure(&quiet, &short, 1, &running, |_| {}).unwrap_err();
    assert!(e.contains("Raise --settle to at least 5 periods"), "{e}");
    let e = prc::measure(
        &quiet,
        &Settings {
            settle_s: 0.2,
            ..short.clone()
        },
        1,
        &running,
        |_| {},
    )
    .unwrap_err();
    assert!(e.contains("cycles; at least 2 are needed"), "{e}");
    let enough = measure(
        &quiet,
        &Settings {
            settle_s: 0.5,
            ..short
        },
        1,
    );
    assert!((enough.period_s - 0.1).abs() < 0.005, "{}", enough.period_s);

    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args([
            "prc", "--settle", "0.0001", "--phases", "2", "--trials", "1",
        ])
        .args(["--out", "/nonexistent/never"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Raise --settle"));
}

/// `--jobs` over the CPUs available is capped with a note; the result is unchanged.
#[test]
fn prc_jobs_beyond_the_cpus_are_capped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prc");
    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["prc", "--phases", "2", "--trials", "1", "--settle", "1"])
        .args(["--jobs", "1000", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 1000 {
        assert!(
            stderr.contains(&format!("note: --jobs 1000: using {cpus}")),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(out.join("prc_trials.csv"))
            .unwrap()
            .lines()
            .count(),
        1 + 2
    );
}

#[test]
fn a_plant_without_a_rhythm_is_told_that_a_prc_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = common::entrain(&[
        "prc",
        "profiles/rate_bistable.toml",
        "--phases",
        "4",
        "--trials",
        "1",
        "--out",
        dir.path().join("prc").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("needs a plant with a rhythm"), "{stderr}");
}

/// A Stuart–Landau oscillator below its Hopf threshold (λ = −5) only rings down from its initial
/// state: after the 2 s settling its oscillation is e^−10 of what it was, and each pulse simply
/// set the phase (the old code printed shifts of −88°, −179°, +89°, +1° and exited 0). It is
/// refused, naming the decay; the same plant kept ringing by noise still has a rhythm to measure.
#[test]
fn a_plant_whose_oscillation_dies_out_while_settling_is_refused_with_its_decay() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prc");
    let (code, _, stderr) = common::entrain(&[
        "prc",
        "profiles/quickstart.toml",
        "--set",
        "model.params.lambda=-5",
        "--set",
        "model.noise_sd=0",
        "--phases",
        "4",
        "--trials",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    for expected in [
        "amplitude (RMS of the observable) decayed from",
        "below 1/100 of it",
        "below its oscillation threshold",
        "model.params.lambda > 0",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(!out.exists());

    let noisy = common::quickstart(&["model.params.lambda=-5"]);
    let kept = measure(&noisy, &settings(1, None), 2);
    assert_eq!(kept.points.len(), 12);
}
