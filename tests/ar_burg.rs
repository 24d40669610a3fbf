//! AR forward prediction with Burg's method: accuracy on clean tones at 1 kHz and 48 kHz, in
//! noise and on real data; real-time safety (no allocation, bounded work per call, refits on
//! schedule); non-finite input; configuration errors.

#[path = "est_common/mod.rs"]
mod common;

use common::*;
use entrain::estimate::{ArBurg, ArBurgConfig, Estimate, PhaseEstimator};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::PI;

#[test]
fn clean_tones_at_1_khz_and_48_khz() {
    // Recommended settings for 8–12 Hz (500 Hz internal rate at both input rates: blocks of 2
    // and of 96), a 10 ms prediction at 1 kHz and 2 ms at 48 kHz. Measured after settling:
    // bias ≤ 0.03°, SD ≤ 0.27°, worst ≤ 0.45° (phase and prediction alike); the error is below
    // 2° from the first refit on (settled at 0.99 of settling_samples()).
    for (fs, predict) in [(1_000.0, 10), (48_000.0, 96)] {
        let config = ArBurgConfig::with_band(8.0, 12.0, fs);
        let mut est = ArBurg::new(&config, fs, predict as f64).unwrap();
        assert_eq!(est.internal_rate_hz(), 500.0);
        let settle = est.settling_samples();
        for f in [8.5, 10.0, 11.5] {
            for phase0 in [0.0, 2.0] {
                est.reset();
                let track = run_tone(&mut est, fs, f, phase0, settle + fs as usize);
                let settled = settled_at(&track, 2.0);
                assert!(
                    settled <= settle,
                    "{fs} Hz, {f} Hz: settled at {settled} > {settle}"
                );
                let (now, ahead) = tone_errors(&track, settle, predict);
                for (what, errors) in [("phase", now), ("predicted", ahead)] {
                    let (bias, sd, worst) = stats_deg(&errors);
                    println!(
                        "AR {fs} Hz, {f} Hz, φ₀ {phase0}: {what} bias {bias:.3}°, SD {sd:.3}°, \
                         worst {worst:.3}°, settled at {settled} of {settle}"
                    );
                    assert!(
                        bias.abs() < 1.0 && sd < 2.0,
                        "{fs} Hz, {f} Hz {what}: {bias}° ± {sd}°"
                    );
                }
                let last = track.last().unwrap().1;
                assert!(
                    (last.freq_hz - f).abs() < 0.05,
                    "{fs} Hz: ω̂ = {} Hz",
                    last.freq_hz
                );
                assert!((last.amplitude - 1.0).abs() < 0.02, "{}", last.amplitude);
                assert!(last.confidence > 0.9, "{}", last.confidence);
            }
        }
    }
}

#[test]
fn settling_samples_bounds_the_measured_settling() {
    // Clean tones at ¼, ½ and ¾ of each band and three start phases, at three input rates
    // (internal rates 250, 625 and 500 Hz): the error must stay below 2° from
    // settling_samples() on.
    for fs in [250.0, 1250.0, 4000.0] {
        for (low_hz, high_hz) in [(4.0, 8.0), (8.0, 12.0), (13.0, 30.0)] {
            let config = ArBurgConfig::with_band(low_hz, high_hz, fs);
            let mut est = ArBurg::new(&config, fs, 0.0).unwrap();
            let settle = est.settling_samples();
            let mut worst = 0;
            for j in 1..=3 {
                let f = low_hz + (high_hz - low_hz) * j as f64 / 4.0;
                for p in 0..3 {
                    est.reset();
                    let track = run_tone(&mut est, fs, f, p as f64 * 2.1, settle + fs as usize);
                    worst = worst.max(settled_at(&track, 2.0));
                }
            }
            assert!(
                worst <= settle,
                "{config:?} at {fs} Hz: settled at {worst} > {settle}"
            );
        }
    }
}

#[test]
fn noisy_wandering_rhythm_at_10_db() {
    // 60 s at 1 kHz; errors against the offline ground truth of the noisy record (ENGINE.md) and,
    // for reference, of the clean one. Measured: bias 0.5°, SD 21.2° (noisy truth); 0.9°, 23.4°
    // (clean truth); mean confidence 0.15 (the band holds ~15 % of the window's power).
    let fs = 1000.0;
    let (noisy, clean) = wandering_rhythm_10db(fs, 60.0, 11);
    let mut est = ArBurg::new(&ArBurgConfig::with_band(8.0, 12.0, fs), fs, 0.0).unwrap();
    let estimates: Vec<Estimate> = noisy.iter().map(|&x| est.process(x)).collect();
    let from = est.settling_samples();
    for (name, reference) in [("noisy", &noisy), ("clean", &clean)] {
        let (bias, sd) = offline_error_stats(&estimates, reference, fs, (8.0, 12.0), from, 0.0);
        println!("AR 10 dB SNR vs {name} ground truth: bias {bias:.2}°, SD {sd:.2}°");
        assert!(sd < 30.0, "{name}: SD {sd}°");
    }
    let confidence = estimates[from..].iter().map(|e| e.confidence).sum::<f64>()
        / (estimates.len() - from) as f64;
    println!("AR 10 dB SNR mean confidence {confidence:.3}");
    assert!(confidence > 0.05 && confidence < 0.5, "{confidence}");
}

#[test]
fn real_time_path_does_not_allocate_and_work_per_call_is_bounded() {
    // White noise makes every refit run all Burg orders (the most work). Each call must stay
    // within work_bound, refits must complete on schedule, and all of a refit's work must have
    // been done by calls (none skipped, none done twice).
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    for fs in [1_000.0, 48_000.0] {
        let config = ArBurgConfig::with_band(8.0, 12.0, fs);
        let mut est = ArBurg::new(&config, fs, 7.0).unwrap();
        let bound = est.work_bound();
        assert_eq!(bound, est.refit_work().div_ceil(config.refit_every_samples));
        let n = 4 * fs as usize;
        let signal: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
        let ((max_work, total_work, refits), allocations) = count_allocations(|| {
            let (mut max_work, mut total_work) = (0, 0);
            for &x in &signal {
                est.process(x);
                max_work = max_work.max(est.last_call_work());
                total_work += est.last_call_work();
            }
            let refits = est.refits();
            est.reset();
            (max_work, total_work, refits)
        });
        assert_eq!(allocations, 0, "{fs} Hz");
        assert!(max_work <= bound, "{fs} Hz: {max_work} > {bound}");
        // The first refit starts when the window is full, then one every refit_every_samples.
        let first =
            (config.window_s * est.internal_rate_hz()).round() as usize * (fs as usize / 500);
        let expected = (n - first) / config.refit_every_samples;
        assert!(
            (expected..=expected + 1).contains(&(refits as usize)),
            "{fs} Hz: {refits} refits, expected {expected}"
        );
        let work = est.refit_work();
        assert!(
            total_work >= refits as usize * work && total_work < (refits as usize + 1) * work,
            "{fs} Hz: {total_work} units for {refits} refits of {work}"
        );
        println!(
            "AR {fs} Hz: refit work {work} units, bound {bound} per call, max seen {max_work}"
        );
    }
}

#[test]
fn non_finite_input_stays_finite_and_recovers() {
    // Half a second of NaN/±Inf (read as silence) inside a clean tone.
    let fs = 1000.0;
    let mut est = ArBurg::new(&ArBurgConfig::with_band(8.0, 12.0, fs), fs, 5.0).unwrap();
    let resettled = resettle_after_non_finite(&mut est, fs, 8.0);
    assert!(
        resettled < est.settling_samples(),
        "still off {resettled} samples after the burst"
    );
}

#[test]
fn reset_matches_a_fresh_estimator() {
    let config = ArBurgConfig {
        refit_every_samples: 7,
        ..ArBurgConfig::with_band(4.0, 8.0, 1000.0)
    };
    let mut used = ArBurg::new(&config, 1000.0, 3.5).unwrap();
    let mut fresh = ArBurg::new(&config, 1000.0, 3.5).unwrap();
    assert_reset_matches_fresh(&mut used, &mut fresh);
}

#[test]
fn real_theta_recording() {
    // CA1 LFP at 1250 Hz (625 Hz internal rate), theta 6–10 Hz; ground truth = analytic_band of
    // the whole record; every sample after settling is scored. Measured: bias 1.5°, circular SD
    // 31.9° (ecHT with its recommended settings: 3.7°, 35.1°).
    let Some((x, fs)) = rat_theta() else {
        return;
    };
    let mut est = ArBurg::new(&ArBurgConfig::with_band(6.0, 10.0, fs), fs, 0.0).unwrap();
    let estimates: Vec<Estimate> = x.iter().map(|&v| est.process(v)).collect();
    let from = est.settling_samples();
    let (bias, sd) = offline_error_stats(&estimates, &x, fs, (6.0, 10.0), from, 0.0);
    println!("AR real theta (6–10 Hz, 1250 Hz): bias {bias:.2}°, circular SD {sd:.2}°");
    assert!(bias.is_finite() && sd < 90.0, "{bias}° ± {sd}°");
}

#[test]
fn invalid_configs_name_the_field() {
    let good = ArBurgConfig::with_band(8.0, 12.0, 1000.0);
    let with = |f: fn(&mut ArBurgConfig)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let cases = [
        (with(|c| c.low_hz = 0.0), 1000.0, 0.0, "low_hz"),
        (with(|c| c.low_hz = f64::NAN), 1000.0, 0.0, "low_hz"),
        (with(|c| c.high_hz = 7.0), 1000.0, 0.0, "high_hz"),
        (with(|c| c.high_hz = 600.0), 1000.0, 0.0, "Nyquist"),
        (with(|c| c.window_s = 0.1), 1000.0, 0.0, "window_s"),
        (with(|c| c.window_s = f64::NAN), 1000.0, 0.0, "window_s"),
        (with(|c| c.window_s = 1e9), 1000.0, 0.0, "window_s"),
        (with(|c| c.order = 1), 1000.0, 0.0, "order"),
        (with(|c| c.order = 129), 1000.0, 0.0, "order"),
        (
            with(|c| {
                c.order = 60;
                c.window_s = 0.3
            }),
            1000.0,
            0.0,
            "window_s",
        ),
        (with(|c| c.forecast_s = 0.01), 1000.0, 0.0, "forecast_s"),
        (with(|c| c.forecast_s = 5.0), 1000.0, 0.0, "forecast_s"),
        (
            with(|c| c.refit_every_samples = 0),
            1000.0,
            0.0,
            "refit_every_samples",
        ),
        // Longer than the 0.75 s window (750 samples); usize::MAX once sized the ring to it
        // and aborted on the allocation.
        (
            with(|c| c.refit_every_samples = 751),
            1000.0,
            0.0,
            "refit_every_samples",
        ),
        (
            with(|c| c.refit_every_samples = usize::MAX),
            1000.0,
            0.0,
            "refit_every_samples",
        ),
        // 8 Hz–Nyquist runs the model at 48 kHz: refitting every 10 ms would ask 1.9e10 work
        // units per second.
        (
            ArBurgConfig {
                refit_every_samples: 480,
                ..ArBurgConfig::with_band(8.0, 23_999.0, 48_000.0)
            },
            48_000.0,
            0.0,
            "refit_every_samples",
        ),
        (good.clone(), -1.0, 0.0, "sample_rate"),
        (good.clone(), 1000.0, -1.0, "predict_samples"),
        (good.clone(), 1000.0, 5000.0, "predict_samples"),
    ];
    for (config, fs, predict, field) in cases {
        match ArBurg::new(&config, fs, predict) {
            Ok(_) => panic!("{config:?} at {fs} Hz, predict {predict} was accepted"),
            Err(e) => assert!(e.contains(field), "{e:?} does not name {field}"),
        }
    }
}

#[test]
fn a_band_too_costly_to_refit_every_10_ms_loads_with_longer_refits() {
    // The audit's band: with 10 ms refits 3 s took 40 s to run. The recommended interval now
    // keeps the refits within the bound; a 10 ms one given explicitly is refused at its key.
    let text = std::fs::read_to_string("profiles/quickstart.toml").unwrap();
    let load = |extra: &str| {
        let set = format!("estimator={{kind=\"ar_burg\",low_hz=8,high_hz=23999{extra}}}");
        entrain::profile::load("quickstart", &text, &[set])
    };
    assert!(load("").is_ok());
    let e = load(",refit_every_samples=480").unwrap_err().to_string();
    assert!(
        e.contains("estimator.refit_every_samples") && e.contains("set refit_every_samples ≥"),
        "{e}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn outputs_stay_finite_wrapped_and_in_range(
        fs in proptest::sample::select(vec![250.0, 1000.0, 4000.0]),
        low_hz in 2.0..20.0f64,
        width in 1.2..3.0f64,
        order in 2usize..40,
        refit_every_samples in 1usize..50,
        predict in 0.0..100.0f64,
        xs in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::num::f64::ANY,
                -10.0..10.0f64,
                proptest::strategy::Just(f64::NAN),
            ],
            1..4000,
        ),
    ) {
        let high_hz = low_hz * width;
        let config = ArBurgConfig {
            order,
            refit_every_samples,
            ..ArBurgConfig::with_band(low_hz, high_hz, fs)
        };
        let mut est = match ArBurg::new(&config, fs, predict) {
            Ok(est) => est,
            // Only an order too high for the default window, or refits too frequent for the
            // work bound (1 sample at 4 kHz for 2–6 Hz), may be refused here.
            Err(e) => {
                proptest::prop_assert!(
                    order > 10 || e.contains("set refit_every_samples ≥"),
                    "{}",
                    e
                );
                return Ok(());
            }
        };
        for x in xs {
            let e = est.process(x);
            for phase in [e.phase_rad, e.predicted_phase_rad] {
                proptest::prop_assert!(phase > -PI && phase <= PI, "{}", phase);
            }
            proptest::prop_assert!(e.amplitude.is_finite() && e.amplitude >= 0.0, "{}", e.amplitude);
            proptest::prop_assert!((0.0..=1.0).contains(&e.confidence), "{}", e.confidence);
            let f = e.freq_hz;
            proptest::prop_assert!(f >= low_hz * (1.0 - 1e-9) && f <= high_hz * (1.0 + 1e-9), "{}", f);
            proptest::prop_assert!(est.last_call_work() <= est.work_bound());
        }
    }
}
