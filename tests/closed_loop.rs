//! The whole loop on the quickstart profile: pulses land at the requested phase of the plant.

mod common;

use entrain::analysis::circular_stats;

/// Circular mean and SD (degrees) of the pulses' phase errors, from events.csv.
fn pulse_errors(target_deg: f64) -> (f64, f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("stimulation.target_phase_deg={target_deg}");
    let summary = common::run(&common::quickstart(&[&target]), dir.path());
    let events = common::events(dir.path());
    assert_eq!(events.len() as u64, summary.pulses);
    let errors: Vec<f64> = events
        .iter()
        .filter_map(|e| e.error_deg)
        .map(f64::to_radians)
        .collect();
    let stats = circular_stats(errors.iter().copied()).expect("pulses were delivered");
    // The summary's figures are the same statistics of the same events (the CSV holds
    // degrees to 3 decimals).
    let summary_mean = summary.phase_error.mean_deg.unwrap();
    assert!((summary_mean - stats.mean_rad.to_degrees()).abs() < 1e-3);
    (
        stats.mean_rad.to_degrees(),
        stats.sd_rad.to_degrees(),
        errors.len(),
    )
}

#[test]
fn pulses_arrive_at_the_target_phase_for_peak_falling_and_trough() {
    for target in [0.0, 90.0, 180.0] {
        let (mean, sd, n) = pulse_errors(target);
        // 16 s of stimulation of a 10 Hz rhythm with a 50 ms refractory time: ~160 pulses.
        assert!(n > 100, "target {target}°: only {n} pulses");
        assert!(mean.abs() < 10.0, "target {target}°: mean error {mean:.2}°");
        assert!(sd < 30.0, "target {target}°: circular SD {sd:.2}°");
    }
}

#[test]
fn sham_stimulation_delivers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let summary = common::run(&common::quickstart(&["stimulation.kind=none"]), dir.path());
    assert_eq!(summary.pulses, 0);
    assert!(common::events(dir.path()).is_empty());
    let wav = hound::WavReader::open(dir.path().join("signals.wav")).unwrap();
    let channels = wav.spec().channels as usize;
    let stimulus: Vec<f32> = wav
        .into_samples::<f32>()
        .map(Result::unwrap)
        .skip(3)
        .step_by(channels)
        .collect();
    assert!(stimulus.iter().all(|&s| s == 0.0), "sham emits silence");
}

#[test]
fn amplitude_gate_above_the_rhythm_blocks_every_pulse() {
    // The rhythm's amplitude is about 1 (limit-cycle radius): a gate at 3 is never reached.
    let dir = tempfile::tempdir().unwrap();
    let summary = common::run(
        &common::quickstart(&["stimulation.amplitude_threshold=3.0"]),
        dir.path(),
    );
    assert_eq!(summary.pulses, 0);
    // …while the same run with the gate at 0.3 does stimulate (the gate, not something else,
    // blocked the pulses).
    let dir = tempfile::tempdir().unwrap();
    let summary = common::run(&common::quickstart(&[]), dir.path());
    assert!(summary.pulses > 100);
}

/// A harmonic oscillator at rest, no noise, open-loop pulses: the plant stays exactly at rest
/// until the first pulse *arrives*, `latency` samples after it was emitted.
#[test]
fn the_stimulus_reaches_the_plant_exactly_the_declared_latency_after_emission() {
    let text = r#"
[run]
sample_rate_hz = 8000
duration_s = 0.5
latency_ms = 12.5
[model]
kind = "harmonic"
integrator = "rk4"
[model.params]
a = -5.0
freq_hz = 10.0
[sensor]
node = 0
[estimator]
kind = "bandpass_hilbert"
low_hz = 8.0
high_hz = 12.0
[stimulation]
kind = "periodic"
rate_hz = 5.0
width_s = 0.002
amplitude = 1.0
shape = "monophasic"
start_s = 0.1
[safety]
max_amplitude = 1.0
max_pulse_rate_hz = 10.0
max_duty_cycle = 0.5
ramp_s = 0.0
"#;
    let (profile, _) = entrain::profile::load("inline", text, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = common::run(&profile, dir.path());
    assert_eq!(summary.latency_samples, 100);
    let wav = hound::WavReader::open(dir.path().join("signals.wav")).unwrap();
    let channels = wav.spec().channels as usize;
    let samples: Vec<f32> = wav.into_samples::<f32>().map(Result::unwrap).collect();
    let observable: Vec<f32> = samples.iter().copied().step_by(channels).collect();
    let stimulus: Vec<f32> = samples.iter().copied().skip(3).step_by(channels).collect();
    let emitted = stimulus.iter().position(|&s| s != 0.0).unwrap();
    assert_eq!(emitted, 800, "the first pulse is emitted at start_s");
    assert_eq!(common::events(dir.path())[0].sample, 800);
    // Frame n shows the plant before sample n's forcing acts: the pulse delivered at
    // emitted + latency first shows one sample later.
    let moved = observable.iter().position(|&x| x != 0.0).unwrap();
    assert_eq!(moved, emitted + 100 + 1);
}

/// Every estimator kind closes the loop on the quickstart rhythm: pulses land on the peak.
#[test]
fn every_estimator_kind_locks_the_quickstart_pulses_to_the_peak() {
    // The Kalman model is fitted on a baseline: a stimulation-free run's observable. One
    // oscillator, the model of one rhythm in white sensor noise: the default three put pulses
    // 7–17° early here, depending on the noise realisation (see the estimator's limitations).
    let baseline = tempfile::tempdir().unwrap();
    common::run(
        &common::quickstart(&["stimulation.kind=\"none\"", "run.duration_s=12"]),
        baseline.path(),
    );
    let training = baseline.path().join("signals.wav");
    for kind in [
        "bandpass_hilbert",
        "echt",
        "ar_burg",
        "pll",
        "etp",
        "kalman",
    ] {
        // The quickstart's band-pass-only keys go when another kind is asked for.
        let text: String = entrain::profile::QUICKSTART
            .lines()
            .filter(|l| {
                kind == "bandpass_hilbert"
                    || !(l.starts_with("sections") || l.starts_with("freq_smoothing_s"))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let mut sets: Vec<String> = vec![
            format!("estimator.kind=\"{kind}\""),
            "run.duration_s=10".into(),
            "stimulation.start_s=3".into(),
            "stimulation.stop_s=10".into(),
        ];
        if kind == "kalman" {
            sets.push(format!(
                "estimator.training_file=\"{}\"",
                training.display()
            ));
            sets.push("estimator.oscillators=1".into());
        }
        let (profile, _) = entrain::profile::load("quickstart", &text, &sets)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let summary = common::run(&profile, dir.path());
        let e = summary.phase_error;
        let (mean, sd) = (e.mean_deg.unwrap(), e.sd_deg.unwrap());
        eprintln!("{kind}: mean {mean:.2}°, SD {sd:.2}°, n {}", e.n);
        assert!(e.n > 50, "{kind}: only {} pulses", e.n);
        assert!(
            mean.abs() < 10.0 && sd < 20.0,
            "{kind}: mean {mean:.2}°, SD {sd:.2}°"
        );
    }
}

#[test]
fn the_target_phase_decides_whether_pulses_grow_or_shrink_the_rhythm() {
    // Strong biphasic pulses (2 units, 3 ms per phase): on the SL cycle their net push is
    // radial, outward around +60° and inward around −120°; before stimulation the two runs
    // are the same run.
    let amplitude = |target: f64| {
        let dir = tempfile::tempdir().unwrap();
        let target = format!("stimulation.target_phase_deg={target}");
        let profile = common::quickstart(&[
            &target,
            "stimulation.amplitude=2",
            "stimulation.width_s=0.003",
        ]);
        common::run(&profile, dir.path()).amplitude
    };
    let (out, inward) = (amplitude(60.0), amplitude(-120.0));
    assert_eq!(out.before, inward.before);
    let before = out.before.unwrap();
    assert!(
        (0.9..1.1).contains(&before),
        "limit-cycle radius 1: {before}"
    );
    let (grown, shrunk) = (out.during.unwrap(), inward.during.unwrap());
    assert!(grown > 1.02 * before, "{grown} vs {before}");
    assert!(shrunk < 0.96 * before, "{shrunk} vs {before}");
}
