//! Helpers shared by the estimator integration tests: a counting allocator, tone and noisy test
//! signals, error statistics against a known or offline ground truth, and the real recordings.
#![allow(dead_code)]

use entrain::analysis::{analytic_band, circular_stats, wrap_angle};
use entrain::estimate::{Estimate, PhaseEstimator};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::TAU;
use std::path::PathBuf;

#[path = "../alloc_count/mod.rs"]
mod alloc_count;
pub use alloc_count::count_allocations;

/// Feeds `cos(2π f t + phase0)` for `n` samples at `fs`; returns the true phase (rad, unwrapped)
/// and the estimate at every sample.
pub fn run_tone(
    est: &mut dyn PhaseEstimator,
    fs: f64,
    f: f64,
    phase0: f64,
    n: usize,
) -> Vec<(f64, Estimate)> {
    (0..n)
        .map(|k| {
            let phase = TAU * f * k as f64 / fs + phase0;
            (phase, est.process(phase.cos()))
        })
        .collect()
}

/// Wrapped error `estimated − truth`, degrees.
pub fn err_deg(estimated: f64, truth: f64) -> f64 {
    wrap_angle(estimated - truth).to_degrees()
}

/// Circular mean and SD (degrees) and largest absolute error (degrees) of `errors_deg`.
pub fn stats_deg(errors_deg: &[f64]) -> (f64, f64, f64) {
    let s = circular_stats(errors_deg.iter().map(|e| e.to_radians())).expect("no errors");
    let max = errors_deg.iter().fold(0.0_f64, |m, e| m.max(e.abs()));
    (s.mean_rad.to_degrees(), s.sd_rad.to_degrees(), max)
}

/// One past the last sample whose phase error exceeds `limit_deg` (0 if none does).
pub fn settled_at(track: &[(f64, Estimate)], limit_deg: f64) -> usize {
    track
        .iter()
        .rposition(|(truth, e)| err_deg(e.phase_rad, *truth).abs() > limit_deg)
        .map_or(0, |k| k + 1)
}

/// Phase and predicted-phase errors (degrees) of a tone track from sample `from` on; the
/// prediction made at `k` is compared with the true phase at `k + predict`.
pub fn tone_errors(track: &[(f64, Estimate)], from: usize, predict: usize) -> (Vec<f64>, Vec<f64>) {
    let now = track[from..]
        .iter()
        .map(|(truth, e)| err_deg(e.phase_rad, *truth))
        .collect();
    let ahead = (from..track.len() - predict)
        .map(|k| err_deg(track[k].1.predicted_phase_rad, track[k + predict].0))
        .collect();
    (now, ahead)
}

/// A 10 Hz-ish rhythm whose frequency wanders slowly within 9.2–10.8 Hz (two incommensurate
/// 0.07 and 0.031 Hz modulations), amplitude 1, plus white Gaussian noise whose power inside
/// 8–12 Hz is a tenth of the rhythm's (10 dB in-band SNR). Returns the noisy and clean records.
pub fn wandering_rhythm_10db(fs: f64, seconds: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let n = (seconds * fs) as usize;
    // White noise of variance σ² has σ²·(2·4 Hz)/fs of its power in ±(8–12) Hz.
    let sigma = (0.1 * 0.5 * fs / 8.0_f64).sqrt();
    let noise = Normal::new(0.0, sigma).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut phase: f64 = 0.3;
    let mut clean = Vec::with_capacity(n);
    let mut noisy = Vec::with_capacity(n);
    for k in 0..n {
        let t = k as f64 / fs;
        let f = 10.0 + 0.5 * (TAU * 0.07 * t).sin() + 0.3 * (TAU * 0.031 * t + 1.0).sin();
        clean.push(phase.cos());
        noisy.push(phase.cos() + noise.sample(&mut rng));
        phase += TAU * f / fs;
    }
    (noisy, clean)
}

/// Circular mean and SD (degrees) of the estimates' phase against the offline ground truth
/// (`analytic_band` over `[low_hz, high_hz]` of `reference`), over samples `from..len − 1 s`
/// (the ground truth's own end effects are excluded) whose ground-truth amplitude is at least
/// `min_amplitude`.
pub fn offline_error_stats(
    estimates: &[Estimate],
    reference: &[f64],
    fs: f64,
    (low_hz, high_hz): (f64, f64),
    from: usize,
    min_amplitude: f64,
) -> (f64, f64) {
    let truth = analytic_band(reference, fs, low_hz, high_hz).unwrap();
    let to = reference.len() - fs as usize;
    let errors: Vec<f64> = (from..to)
        .filter(|&k| truth[k].norm() >= min_amplitude)
        .map(|k| err_deg(estimates[k].phase_rad, truth[k].arg()))
        .collect();
    let (mean, sd, _) = stats_deg(&errors);
    (mean, sd)
}

/// The real CA1 theta recording (samples, sample rate in Hz), or `None` with a message on
/// stderr when the shared data folder is absent (a user's own clone). Looked for in
/// `../shared/data` beside the checkout (as in CI) and two levels up (scratch copies).
pub fn rat_theta() -> Option<(Vec<f64>, f64)> {
    let name = "rat_ca1_theta_1250hz.wav";
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = [root.join("../shared/data"), root.join("../../shared/data")]
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|p| p.exists());
    let Some(path) = path else {
        eprintln!("skipped: {name} not found in ../shared/data (the shared data folder is absent)");
        return None;
    };
    let mut reader = hound::WavReader::open(&path).unwrap();
    let fs = reader.spec().sample_rate as f64;
    let samples = reader.samples::<f32>().map(|s| s.unwrap() as f64).collect();
    Some((samples, fs))
}

/// Asserts every field of `e` is finite, phases wrapped, amplitude ≥ 0, confidence in [0, 1].
pub fn assert_finite(e: &Estimate) {
    for phase in [e.phase_rad, e.predicted_phase_rad] {
        assert!(
            phase > -std::f64::consts::PI && phase <= std::f64::consts::PI,
            "{e:?}"
        );
    }
    assert!(e.amplitude.is_finite() && e.amplitude >= 0.0, "{e:?}");
    assert!(e.freq_hz.is_finite() && e.freq_hz > 0.0, "{e:?}");
    assert!((0.0..=1.0).contains(&e.confidence), "{e:?}");
}

/// Feeds a clean 10 Hz tone with a 0.5 s burst of NaN/±Inf and huge finite samples (a corrupt
/// stretch of a recording) in the middle; asserts every output is finite and returns how many
/// samples after the burst the phase error last exceeded 2°.
pub fn resettle_after_non_finite(est: &mut dyn PhaseEstimator, fs: f64, total_s: f64) -> usize {
    let n = (total_s * fs) as usize;
    let gap = n / 3..n / 3 + (0.5 * fs) as usize;
    let mut last_bad = 0;
    for k in 0..n {
        let phase = TAU * 10.0 * k as f64 / fs;
        let x = if gap.contains(&k) {
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e30][k % 5]
        } else {
            phase.cos()
        };
        let e = est.process(x);
        assert_finite(&e);
        if k >= gap.end && wrap_angle(e.phase_rad - phase).abs() > 2f64.to_radians() {
            last_bad = k + 1 - gap.end;
        }
    }
    last_bad
}

/// After noise (with NaNs) and a reset, `used` must behave exactly like `fresh`.
pub fn assert_reset_matches_fresh(used: &mut dyn PhaseEstimator, fresh: &mut dyn PhaseEstimator) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let noise = Normal::new(0.0, 1.0).unwrap();
    for k in 0..5000 {
        let x = if k % 997 == 0 {
            f64::NAN
        } else {
            noise.sample(&mut rng)
        };
        used.process(x);
    }
    used.reset();
    for k in 0..5000 {
        let x = (TAU * 9.5 * k as f64 / 1000.0).sin() + 0.3 * noise.sample(&mut rng);
        assert_eq!(used.process(x), fresh.process(x), "sample {k}");
    }
}
