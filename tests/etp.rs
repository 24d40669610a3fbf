//! Educated Temporal Prediction: clean tones at 1 and 48 kHz after training, noise, cycle
//! regularity as confidence, real-time safety, real data.

#[path = "est_common_b/mod.rs"]
mod common;

use common::*;
use entrain::estimate::{Estimate, Etp, EtpConfig, PhaseEstimator};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::TAU;

fn alpha() -> EtpConfig {
    EtpConfig::default()
}

#[test]
fn clean_tones_at_1_and_48_khz_after_training() {
    // From settling_samples() (band-pass warm-up + 5 s of training) on, 10 ms prediction,
    // tones across 8–12 Hz including the edges. Parabolic interpolation puts the peaks between
    // samples, so 48 kHz is no harder than 1 kHz. Measured: |bias| and SD < 0.001°.
    for fs in [1_000.0, 48_000.0] {
        let predict = (0.01 * fs) as usize;
        for f in [8.0, 9.3, 10.0, 11.5, 12.0] {
            let mut etp = Etp::new(&alpha(), fs, predict as f64).unwrap();
            let settle = etp.settling_samples();
            let r = clean_tone(&mut etp, fs, f, 0.7, predict, settle, 2 * fs as usize);
            println!("{fs} Hz, {f} Hz: {r:?}, settling {settle}");
            assert!(
                r.bias_deg.abs() < 1.0 && r.sd_deg < 2.0,
                "{fs} Hz, {f} Hz: {r:?}"
            );
            assert!(
                r.max_deg < 2.0 && r.settled_at <= settle,
                "{fs} Hz, {f} Hz: {r:?}"
            );
            assert!(
                r.predicted_bias_deg.abs() < 1.0 && r.predicted_sd_deg < 2.0,
                "{fs} Hz, {f} Hz: {r:?}"
            );
        }
    }
}

#[test]
fn learns_the_cycle_amplitude_and_full_confidence_on_a_clean_tone() {
    let fs = 1000.0;
    let mut etp = Etp::new(&alpha(), fs, 0.0).unwrap();
    let n = etp.settling_samples() + 1000;
    let mut last = Estimate::default();
    for k in 0..n {
        last = etp.process(1.7 * (TAU * 9.3 * k as f64 / fs).cos());
    }
    assert!((last.freq_hz - 9.3).abs() < 1e-3, "{last:?}");
    assert!((last.amplitude / 1.7 - 1.0).abs() < 0.01, "{last:?}");
    assert!(last.confidence > 0.99, "{last:?}");
}

#[test]
fn confidence_is_zero_before_training_and_falls_on_noise() {
    // Tone at 10 dB in-band SNR for 20 s, noise alone for 20 s, the tone again for 20 s.
    // Measured means per 10 s: 0.28 (training for most of it), 0.71, 0.08, 0.10, 0.63, 0.69.
    let fs = 1000.0;
    let sigma = (0.05 * 0.5 * fs / 4.0_f64).sqrt();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let noise = Normal::new(0.0, sigma).unwrap();
    let mut etp = Etp::new(&alpha(), fs, 0.0).unwrap();
    let train_end = etp.settling_samples();
    let mut means = [0.0; 6];
    for k in 0..60 * fs as usize {
        let t = k as f64 / fs;
        let rhythm = if (20.0..40.0).contains(&t) {
            0.0
        } else {
            (TAU * 10.0 * t).cos()
        };
        let e = etp.process(rhythm + noise.sample(&mut rng));
        if k + 1 < train_end {
            assert_eq!(e.confidence, 0.0, "sample {k}");
        }
        means[k / 10_000] += e.confidence / 10_000.0;
    }
    println!("mean confidence per 10 s: {means:.3?}");
    assert!(means[1] > 0.5 && means[5] > 0.5, "{means:?}");
    assert!(means[2] < 0.2 && means[3] < 0.2, "{means:?}");
}

#[test]
fn noisy_wandering_rhythm_at_10_db() {
    // Trained on the first 5 s after warm-up, adapting over 10 cycles. Measured (seed 1):
    // bias 1.4°, circular SD 25.4°.
    let (x, truth) = noisy_wandering_record(1);
    let fs = NOISY_FS;
    let mut etp = Etp::new(&alpha(), fs, 0.0).unwrap();
    let estimates: Vec<Estimate> = x.iter().map(|&v| etp.process(v)).collect();
    let (bias, sd) = errors_against(&estimates, &truth, 12 * fs as usize..x.len() - fs as usize);
    println!("ETP at 10 dB: bias {bias:.2}°, circular SD {sd:.2}°");
    assert!(bias.abs() < 10.0, "bias {bias}°");
    assert!(sd < 30.0, "circular SD {sd}°");
}

#[test]
fn process_never_allocates() {
    for fs in [1000.0, 48_000.0] {
        let config = EtpConfig {
            train_s: 1.0,
            ..alpha()
        };
        let mut etp = Etp::new(&config, fs, 3.0).unwrap();
        assert_eq!(allocations_in_process(&mut etp, fs), 0, "{fs} Hz");
    }
}

#[test]
fn non_finite_input_stays_finite_and_recovers() {
    // The burst is read as silence; the learned cycle survives it and the first peak after
    // the band-pass has refilled restores the phase.
    let fs = 1000.0;
    let mut etp = Etp::new(&alpha(), fs, 0.0).unwrap();
    let resettled = resettle_after_non_finite(&mut etp, fs, 24.0);
    assert!(resettled <= etp.settling_samples(), "{resettled}");
}

#[test]
fn reset_matches_a_fresh_estimator() {
    let config = EtpConfig {
        train_s: 1.0,
        sections: 3,
        ..alpha()
    };
    let mut used = Etp::new(&config, 1000.0, 2.5).unwrap();
    let mut fresh = Etp::new(&config, 1000.0, 2.5).unwrap();
    assert_reset_matches_fresh(&mut used, &mut fresh);
}

#[test]
fn invalid_configs_name_the_parameter() {
    let with = |f: fn(&mut EtpConfig)| {
        let mut c = alpha();
        f(&mut c);
        c
    };
    let cases = [
        (with(|c| c.low_hz = -1.0), 1000.0, 0.0, "low_hz"),
        (with(|c| c.high_hz = 7.0), 1000.0, 0.0, "high_hz"),
        (with(|c| c.sections = 9), 1000.0, 0.0, "sections"),
        (with(|c| c.train_s = 0.1), 1000.0, 0.0, "train_s"),
        (with(|c| c.train_s = f64::NAN), 1000.0, 0.0, "train_s"),
        (with(|c| c.train_s = 3601.0), 1000.0, 0.0, "train_s"),
        // Its sample count once saturated and wrapped: training was skipped.
        (with(|c| c.train_s = 1e15), 1000.0, 0.0, "train_s"),
        (with(|c| c.adapt_cycles = 0.5), 1000.0, 0.0, "adapt_cycles"),
        (
            with(|c| c.adapt_cycles = f64::INFINITY),
            1000.0,
            0.0,
            "adapt_cycles",
        ),
        (alpha(), 0.0, 0.0, "sample_rate"),
        (alpha(), 1000.0, -2.0, "predict_samples"),
    ];
    for (config, fs, predict, field) in cases {
        match Etp::new(&config, fs, predict) {
            Ok(_) => panic!("{config:?} at {fs} Hz, predict {predict} was accepted"),
            Err(e) => assert!(e.contains(field), "{e:?} does not name {field}"),
        }
    }
}

#[test]
fn a_training_time_beyond_an_hour_is_refused_at_load() {
    let text = std::fs::read_to_string("profiles/quickstart.toml").unwrap();
    let with_train_s = |train_s: &str| {
        let set = format!("estimator={{kind=\"etp\",low_hz=8,high_hz=12,train_s={train_s}}}");
        entrain::profile::load("quickstart", &text, &[set])
    };
    let e = with_train_s("1e15").unwrap_err().to_string();
    assert!(
        e.contains("estimator.train_s") && e.contains("at most 3600 s"),
        "{e}"
    );
    assert!(with_train_s("3600").is_ok());
}

#[test]
fn real_theta_recording() {
    let Some((x, fs)) = rat_theta() else { return };
    let config = EtpConfig {
        low_hz: 6.0,
        high_hz: 10.0,
        train_s: 8.0,
        ..alpha()
    };
    let mut etp = Etp::new(&config, fs, 0.0).unwrap();
    let start = etp.settling_samples().max(10 * fs as usize);
    println!("ETP on rat CA1 theta (6–10 Hz, from 10 s):");
    let sd = theta_sd_deg(&mut etp, &x, fs, start);
    assert!(sd.is_finite() && sd < 90.0, "{sd}°");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn any_config_is_an_error_or_gives_finite_output(
        low_hz in 0.2..40.0f64,
        width in 1.05..4.0f64,
        train_s in 0.0..20.0f64,
        sections in 0usize..10,
        adapt_cycles in -1.0..50.0f64,
        predict in -1.0..500.0f64,
        xs in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::any::<f64>(),
                -10.0..10.0f64,
                proptest::strategy::Just(f64::NAN)
            ],
            1..3000,
        ),
    ) {
        let high_hz = low_hz * width;
        let config = EtpConfig { low_hz, high_hz, train_s, sections, adapt_cycles };
        if let Ok(mut etp) = Etp::new(&config, 250.0, predict) {
            for x in xs {
                let e = etp.process(x);
                assert_finite(&e);
                // Cycle lengths outside [1/(1.5·high), 1.5/low] are discarded.
                proptest::prop_assert!(
                    e.freq_hz >= low_hz / 1.5 * (1.0 - 1e-9)
                        && e.freq_hz <= 1.5 * high_hz * (1.0 + 1e-9),
                    "{}", e.freq_hz
                );
            }
        }
    }
}
