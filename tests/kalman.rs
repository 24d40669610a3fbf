//! State-space (Kalman) oscillator: fit accuracy, clean tones at 1 and 48 kHz, noise,
//! confidence when the rhythm vanishes, settling time, real-time safety, real data.

#[path = "est_common_b/mod.rs"]
mod common;

use common::*;
use entrain::estimate::{
    Estimate, KalmanConfig, KalmanOscillator, OscillatorParams, PhaseEstimator,
};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::TAU;

/// Simulates the model itself: one oscillator at `f` Hz with damping `a` and state noise `q`
/// per sample, observed with noise variance `r`. Returns (observations, true state phase).
fn simulate(fs: f64, f: f64, a: f64, q: f64, r: f64, n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let w = Normal::new(0.0, q.sqrt()).unwrap();
    let v = Normal::new(0.0, r.sqrt()).unwrap();
    let (s, c) = (TAU * f / fs).sin_cos();
    let (mut x1, mut x2) = (0.0, 0.0);
    (0..n)
        .map(|_| {
            (x1, x2) = (
                a * (c * x1 - s * x2) + w.sample(&mut rng),
                a * (s * x1 + c * x2) + w.sample(&mut rng),
            );
            (x1 + v.sample(&mut rng), x2.atan2(x1))
        })
        .unzip()
}

#[test]
fn fit_recovers_a_simulated_oscillator() {
    // 10 Hz, decay rate 5 s⁻¹ (a = e^{−5/fs}), unit stationary variance, observation noise
    // density 0.5/kHz (R = 0.5 at 1 kHz, 24 at 48 kHz: the same noise per Hz), 20 s of
    // training. Tolerances: ω within 2 %; decay rate −ln(a)·fs within 35 % (i.e. |a − a_true|
    // < 0.35·(1 − a_true)); R within 30 %. Measured over seeds 0–2: frequency within 1.0 %,
    // decay within 27 %, R 7–23 % low (the fit sees R only through its density below the
    // decimated Nyquist frequency, ≈ 80 Hz, where the oscillator's skirt still adds power).
    for fs in [1000.0, 48_000.0] {
        for seed in 0..3 {
            let decay = 5.0_f64;
            let a = (-decay / fs).exp();
            let r = 0.5 * fs / 1000.0;
            let (y, true_phase) = simulate(fs, 10.0, a, 1.0 - a * a, r, (30.0 * fs) as usize, seed);
            let config = KalmanConfig {
                freq_hz: 9.0,
                oscillators: 1,
                train_s: 20.0,
            };
            let mut kalman = KalmanOscillator::fit(&y, fs, &config, 0.0).unwrap();
            let o = kalman.oscillators()[0];
            let fitted_decay = -o.damping.ln() * fs;
            let r_fit = kalman.observation_noise();
            println!(
                "{fs} Hz, seed {seed}: {:.3} Hz, a = {:.7} (true {a:.7}), decay {fitted_decay:.2}/s, \
                 stationary variance {:.3}, R {r_fit:.3} (true {r})",
                o.freq_hz,
                o.damping,
                o.state_noise / (1.0 - o.damping * o.damping)
            );
            assert!((o.freq_hz / 10.0 - 1.0).abs() < 0.02, "{o:?}");
            assert!((fitted_decay / decay - 1.0).abs() < 0.35, "{o:?}");
            assert!((o.damping - a).abs() < 0.35 * (1.0 - a), "{o:?}");
            assert!((r_fit / r - 1.0).abs() < 0.3, "R = {r_fit}");
            // The filter's phase against the simulated state's, on the 10 s after training:
            // measured SD 27–33° (the model's own posterior spread at this SNR), |bias| ≤ 1.7°.
            let estimates: Vec<Estimate> = y.iter().map(|&v| kalman.process(v)).collect();
            let start = (20.0 * fs) as usize;
            let (bias, sd) =
                bias_sd_deg((start..y.len()).map(|k| estimates[k].phase_rad - true_phase[k]));
            println!("  against the true state: bias {bias:.2}°, SD {sd:.2}°");
            assert!(bias.abs() < 3.0 && sd < 40.0, "{bias} {sd}");
        }
    }
}

#[test]
fn clean_tones_at_1_and_48_khz_after_fitting_on_them() {
    // Fit on the tone's first 5 s, then run from the start; errors from settling_samples() on,
    // 10 ms prediction. Measured: |bias| ≤ 0.04°, SD ≤ 0.26° (a ripple at twice the tone's
    // frequency), settled within 6 ms.
    for fs in [1000.0, 48_000.0] {
        let predict = (0.01 * fs) as usize;
        for f in [8.0, 10.0, 11.5] {
            let n = (6.0 * fs) as usize;
            let tone: Vec<f64> = (0..n)
                .map(|k| (TAU * f * k as f64 / fs + 0.7).cos())
                .collect();
            let config = KalmanConfig {
                freq_hz: 10.0,
                oscillators: 1,
                train_s: 5.0,
            };
            let mut kalman = KalmanOscillator::fit(&tone, fs, &config, predict as f64).unwrap();
            let settle = kalman.settling_samples();
            let r = clean_tone(&mut kalman, fs, f, 0.7, predict, settle, 2 * fs as usize);
            println!(
                "{fs} Hz, {f} Hz: fitted {:.4} Hz, settling {settle}: {r:?}",
                kalman.oscillators()[0].freq_hz
            );
            assert!(r.bias_deg.abs() < 1.0 && r.sd_deg < 2.0, "{r:?}");
            assert!(r.max_deg < 2.0, "{r:?}");
            assert!(r.settled_at <= settle, "{r:?}");
            assert!(
                r.predicted_bias_deg.abs() < 1.0 && r.predicted_sd_deg < 2.0,
                "{r:?}"
            );
            assert!((kalman.oscillators()[0].freq_hz / f - 1.0).abs() < 0.02);
        }
    }
}

#[test]
fn settling_and_steady_tone_error_match_the_measurements() {
    // Direct parameters, clean tones. From settling_samples() on, the largest phase error must
    // equal tone_error_deg() (the converged filter's bias + 2f ripple) to within 0.05°, and
    // when that is below 2° the error must be below 2° from settling_samples() on. The last
    // model is the narrow one a 10 dB fit gives, set 0.33 Hz above the tone: the mismatch bias
    // the KalmanOscillator docs warn of. Measured: tone errors 0.46°, 2.35°, 0.05° and 15.9°.
    let fs = 1000.0;
    let cases = [
        (10.0, 0.999, 1e-3, 1e-2),
        (10.0, 0.995, 1e-2, 1.0),
        (10.0, 0.9999, 1e-5, 1e-3),
        (10.33, 0.99929, 0.0072, 60.0),
    ];
    for (model_hz, a, q, r) in cases {
        let params = [OscillatorParams {
            freq_hz: model_hz,
            damping: a,
            state_noise: q,
        }];
        let mut kalman = KalmanOscillator::new(&params, r, 0, fs, 0.0).unwrap();
        let settle = kalman.settling_samples();
        let predicted = kalman.tone_error_deg(10.0);
        let (mut worst_settled, mut worst_error) = (0, 0.0_f64);
        for p in 0..4 {
            kalman.reset();
            let result = clean_tone(&mut kalman, fs, 10.0, 1.6 * p as f64, 0, settle, 3000);
            worst_settled = worst_settled.max(result.settled_at);
            worst_error = worst_error.max(result.max_deg);
        }
        println!(
            "{model_hz} Hz, a {a}, q {q}, R {r}: settling {settle}, settled at {worst_settled}; \
             largest error {worst_error:.3}°, tone_error_deg {predicted:.3}°"
        );
        assert!(
            (worst_error - predicted).abs() < 0.05,
            "{worst_error} vs {predicted}"
        );
        if predicted < 2.0 {
            assert!(
                worst_settled <= settle,
                "settled at {worst_settled} > {settle}"
            );
        }
    }
}

#[test]
fn confidence_falls_when_the_rhythm_vanishes_and_recovers() {
    // 10 Hz at 10 dB in-band SNR (8–12 Hz), the rhythm off from 20 to 40 s; fitted on the first
    // 10 s. Measured means per 10 s: 0.98, 0.98, 0.48, 0.39, 0.97, 0.98.
    let fs = 1000.0;
    let sigma = (0.05 * 0.5 * fs / 4.0_f64).sqrt();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let noise = Normal::new(0.0, sigma).unwrap();
    let n = 60 * fs as usize;
    let x: Vec<f64> = (0..n)
        .map(|k| {
            let t = k as f64 / fs;
            let rhythm = if (20.0..40.0).contains(&t) {
                0.0
            } else {
                (TAU * 10.0 * t).cos()
            };
            rhythm + noise.sample(&mut rng)
        })
        .collect();
    let config = KalmanConfig {
        freq_hz: 10.0,
        oscillators: 1,
        train_s: 10.0,
    };
    let mut kalman = KalmanOscillator::fit(&x, fs, &config, 0.0).unwrap();
    let mut means = [0.0; 6];
    for (k, &v) in x.iter().enumerate() {
        means[k / 10_000] += kalman.process(v).confidence / 10_000.0;
    }
    println!("mean confidence per 10 s: {means:.3?}");
    assert!(means[1] > 0.9, "{means:?}");
    assert!(means[2] < 0.6 && means[3] < 0.6, "{means:?}");
    assert!(means[5] > 0.9, "{means:?}");
}

#[test]
fn noisy_wandering_rhythm_at_10_db() {
    // Fitted on the first 10 s (one oscillator). Measured (seed 1): bias 0.9°, SD 19.3°.
    let (x, truth) = noisy_wandering_record(1);
    let fs = NOISY_FS;
    let config = KalmanConfig {
        freq_hz: 10.0,
        oscillators: 1,
        train_s: 10.0,
    };
    let mut kalman = KalmanOscillator::fit(&x, fs, &config, 0.0).unwrap();
    println!(
        "fitted: {:?}, R {:.2}",
        kalman.oscillators(),
        kalman.observation_noise()
    );
    let estimates: Vec<Estimate> = x.iter().map(|&v| kalman.process(v)).collect();
    let (bias, sd) = errors_against(&estimates, &truth, 12 * fs as usize..x.len() - fs as usize);
    println!("Kalman at 10 dB: bias {bias:.2}°, circular SD {sd:.2}°");
    assert!(bias.abs() < 10.0, "bias {bias}°");
    assert!(sd < 30.0, "circular SD {sd}°");
}

fn model() -> KalmanOscillator {
    let params = [
        OscillatorParams {
            freq_hz: 10.0,
            damping: 0.995,
            state_noise: 0.01,
        },
        OscillatorParams {
            freq_hz: 2.0,
            damping: 0.999,
            state_noise: 0.001,
        },
    ];
    KalmanOscillator::new(&params, 0.5, 0, 1000.0, 4.0).unwrap()
}

#[test]
fn process_never_allocates() {
    let mut kalman = model();
    assert_eq!(allocations_in_process(&mut kalman, 1000.0), 0);
}

#[test]
fn non_finite_input_stays_finite_and_recovers() {
    let fs = 1000.0;
    let params = [OscillatorParams {
        freq_hz: 10.0,
        damping: 0.999,
        state_noise: 1e-3,
    }];
    let mut kalman = KalmanOscillator::new(&params, 1e-2, 0, fs, 0.0).unwrap();
    let resettled = resettle_after_non_finite(&mut kalman, fs, 6.0);
    assert!(resettled <= kalman.settling_samples(), "{resettled}");
}

#[test]
fn reset_matches_a_fresh_filter() {
    assert_reset_matches_fresh(&mut model(), &mut model());
}

#[test]
fn invalid_parameters_name_the_parameter() {
    let good = OscillatorParams {
        freq_hz: 10.0,
        damping: 0.99,
        state_noise: 1.0,
    };
    let with = |f: fn(&mut OscillatorParams)| {
        let mut p = good;
        f(&mut p);
        vec![p]
    };
    let cases = [
        (with(|p| p.freq_hz = 0.0), 1.0, 0, 1000.0, 0.0, "freq_hz"),
        (with(|p| p.freq_hz = 500.0), 1.0, 0, 1000.0, 0.0, "freq_hz"),
        (with(|p| p.damping = 1.0), 1.0, 0, 1000.0, 0.0, "damping"),
        (
            with(|p| p.damping = f64::NAN),
            1.0,
            0,
            1000.0,
            0.0,
            "damping",
        ),
        (
            with(|p| p.state_noise = 0.0),
            1.0,
            0,
            1000.0,
            0.0,
            "state_noise",
        ),
        (vec![good], 0.0, 0, 1000.0, 0.0, "observation_noise"),
        (
            vec![good],
            f64::INFINITY,
            0,
            1000.0,
            0.0,
            "observation_noise",
        ),
        (vec![good], 1.0, 1, 1000.0, 0.0, "target"),
        (vec![], 1.0, 0, 1000.0, 0.0, "oscillators"),
        (vec![good; 5], 1.0, 0, 1000.0, 0.0, "oscillators"),
        (vec![good], 1.0, 0, -1.0, 0.0, "sample_rate"),
        (vec![good], 1.0, 0, 1000.0, f64::NAN, "predict_samples"),
    ];
    for (params, r, target, fs, predict, field) in cases {
        match KalmanOscillator::new(&params, r, target, fs, predict) {
            Ok(_) => panic!("{params:?}, R {r}, target {target} at {fs} Hz was accepted"),
            Err(e) => assert!(e.contains(field), "{e:?} does not name {field}"),
        }
    }

    let signal: Vec<f64> = (0..20_000).map(|k| (k as f64 * 0.06).cos()).collect();
    let config = KalmanConfig::default();
    let fit_with = |f: fn(&mut KalmanConfig)| {
        let mut c = config.clone();
        f(&mut c);
        c
    };
    let mut with_nan = signal.clone();
    with_nan[100] = f64::NAN;
    let fit_cases = [
        (signal.clone(), fit_with(|c| c.freq_hz = 0.0), "freq_hz"),
        (signal.clone(), fit_with(|c| c.freq_hz = 300.0), "freq_hz"),
        (
            signal.clone(),
            fit_with(|c| c.oscillators = 0),
            "oscillators",
        ),
        (signal.clone(), fit_with(|c| c.train_s = 0.5), "train_s"),
        (signal.clone(), fit_with(|c| c.train_s = 30.0), "training"),
        (with_nan, config.clone(), "training"),
        (vec![0.0; 20_000], config.clone(), "variance"),
    ];
    for (training, config, field) in fit_cases {
        match KalmanOscillator::fit(&training, 1000.0, &config, 0.0) {
            Ok(_) => panic!("{config:?} was accepted"),
            Err(e) => assert!(e.contains(field), "{e:?} does not name {field}"),
        }
    }
}

#[test]
fn real_theta_recording() {
    let Some((x, fs)) = rat_theta() else { return };
    // Fitted on the first 10 s; one oscillator, then three (theta plus a slow and a fast
    // component for the background). Measured circular SD: ≈ 37° and ≈ 21°.
    for oscillators in [1, 3] {
        let config = KalmanConfig {
            freq_hz: 8.0,
            oscillators,
            train_s: 10.0,
        };
        let mut kalman = KalmanOscillator::fit(&x, fs, &config, 0.0).unwrap();
        println!(
            "Kalman ({oscillators} oscillators) on rat CA1 theta, fitted {:.2?} Hz (target {}), \
             from 10 s:",
            kalman
                .oscillators()
                .iter()
                .map(|o| o.freq_hz)
                .collect::<Vec<_>>(),
            kalman.target()
        );
        let start = kalman.settling_samples().max(10 * fs as usize);
        let sd = theta_sd_deg(&mut kalman, &x, fs, start);
        assert!(sd.is_finite() && sd < 90.0, "{sd}°");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn any_parameters_are_an_error_or_give_finite_output(
        freqs in proptest::collection::vec(0.0..130.0f64, 0..6),
        decay_hz in 0.01..50.0f64,
        state_noise in 1e-9..1e3f64,
        observation_noise in 0.0..1e3f64,
        target in 0usize..5,
        predict in -1.0..500.0f64,
        xs in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::any::<f64>(),
                -10.0..10.0f64,
                proptest::strategy::Just(f64::NAN)
            ],
            1..2000,
        ),
    ) {
        let fs = 250.0;
        let params: Vec<OscillatorParams> = freqs
            .iter()
            .map(|&freq_hz| OscillatorParams {
                freq_hz,
                damping: (-TAU * decay_hz / fs).exp(),
                state_noise,
            })
            .collect();
        if let Ok(mut kalman) =
            KalmanOscillator::new(&params, observation_noise, target, fs, predict)
        {
            for x in xs {
                assert_finite(&kalman.process(x));
            }
        }
    }
}

/// A slow drift under the rhythm pulls one of three oscillators towards 0 Hz (4.7e-52 Hz here
/// before the fit was bounded; exactly 0 on one evaluation signal, which the model then
/// rejected). A line slower than half a cycle per training window cannot be told from a drift:
/// the fit keeps every frequency between that and the decimated Nyquist frequency.
#[test]
fn a_drift_under_the_rhythm_fits_a_slow_oscillator_not_a_zero_frequency() {
    let fs = 1000.0;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let mut drift = 0.0;
    let y: Vec<f64> = (0..12_000)
        .map(|n| {
            drift += 0.01 * normal.sample(&mut rng);
            (TAU * 10.0 * n as f64 / fs).cos() + drift + 0.1 * normal.sample(&mut rng)
        })
        .collect();
    let config = KalmanConfig {
        freq_hz: 10.0,
        oscillators: 3,
        train_s: 10.0,
    };
    let kalman = KalmanOscillator::fit(&y, fs, &config, 0.0).unwrap();
    let freqs: Vec<f64> = kalman.oscillators().iter().map(|o| o.freq_hz).collect();
    let slowest = 0.5 / config.train_s;
    assert!(
        freqs.iter().all(|&f| f >= slowest * 0.999 && f < 0.5 * fs),
        "{freqs:?}"
    );
    assert!(freqs.iter().any(|&f| (f - 10.0).abs() < 0.1), "{freqs:?}");
}
