//! Helpers shared by the estimator tests: test signals, error statistics against the true or
//! the offline ground-truth phase, and, from `est_common`, the allocation counter, the non-finite and reset checks and the
//! real recording.
//!
//! Every test binary that includes this module uses every item in it.

use entrain::analysis::{analytic_band, circular_stats, wrap_angle};
use entrain::estimate::{Estimate, PhaseEstimator};
use num_complex::Complex64;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::TAU;

#[path = "../est_common/mod.rs"]
mod shared;
pub use shared::{
    assert_finite, assert_reset_matches_fresh, count_allocations, rat_theta,
    resettle_after_non_finite,
};

/// Feeds `est` a mix of noise, a tone, NaN, ±Inf and huge values (prepared beforehand) and
/// counts the allocations made inside `process` and `reset`, with the guard armed only around
/// those calls. Also checks every output is finite.
pub fn allocations_in_process(est: &mut dyn PhaseEstimator, fs: f64) -> usize {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let noise = Normal::new(0.0, 1.0).unwrap();
    let input: Vec<f64> = (0..20_000)
        .map(|k| match k % 1000 {
            17 => f64::NAN,
            18 => f64::INFINITY,
            19 => f64::NEG_INFINITY,
            20 => 1e300,
            _ => (TAU * 10.0 * k as f64 / fs).cos() + noise.sample(&mut rng),
        })
        .collect();
    let mut allocations = 0;
    for (k, &x) in input.iter().enumerate() {
        let (e, n) = count_allocations(|| {
            let e = est.process(x);
            if k == 10_000 {
                est.reset();
            }
            e
        });
        allocations += n;
        assert_finite(&e);
    }
    allocations
}

/// Circular mean (bias) and circular SD of angle errors, both in degrees.
pub fn bias_sd_deg(errors: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let s = circular_stats(errors).unwrap();
    (s.mean_rad.to_degrees(), s.sd_rad.to_degrees())
}

/// What a clean-tone run measured after settling.
#[derive(Debug)]
pub struct CleanTone {
    /// Bias and circular SD of the phase error, degrees.
    pub bias_deg: f64,
    pub sd_deg: f64,
    /// Same for the predicted phase against the true phase `predict` samples later.
    pub predicted_bias_deg: f64,
    pub predicted_sd_deg: f64,
    /// Largest phase error after settling, degrees.
    pub max_deg: f64,
    /// One past the last sample whose phase error exceeded 2° (0 if none did).
    pub settled_at: usize,
}

/// Feeds `cos(2π f t + phase0)` for `settle + extra` samples (from the estimator's current
/// state) and measures the errors from `settle` on (`predict` = the estimator's horizon).
pub fn clean_tone(
    est: &mut dyn PhaseEstimator,
    fs: f64,
    f: f64,
    phase0: f64,
    predict: usize,
    settle: usize,
    extra: usize,
) -> CleanTone {
    let n = settle + extra;
    let truth = |k: usize| TAU * f * k as f64 / fs + phase0;
    let track: Vec<Estimate> = (0..n).map(|k| est.process(truth(k).cos())).collect();
    let err = |a: f64, b: f64| wrap_angle(a - b);
    let settled_at = track
        .iter()
        .enumerate()
        .rposition(|(k, e)| err(e.phase_rad, truth(k)).abs() > 2f64.to_radians())
        .map_or(0, |k| k + 1);
    let range = settle..n - predict;
    let (bias_deg, sd_deg) = bias_sd_deg(range.clone().map(|k| err(track[k].phase_rad, truth(k))));
    let (predicted_bias_deg, predicted_sd_deg) = bias_sd_deg(
        range
            .clone()
            .map(|k| err(track[k].predicted_phase_rad, truth(k + predict))),
    );
    let max_deg = range
        .map(|k| err(track[k].phase_rad, truth(k)).abs().to_degrees())
        .fold(0.0, f64::max);
    CleanTone {
        bias_deg,
        sd_deg,
        predicted_bias_deg,
        predicted_sd_deg,
        max_deg,
        settled_at,
    }
}

/// Sample rate of the noisy test record, Hz.
pub const NOISY_FS: f64 = 1000.0;
/// Band the noisy record's SNR and ground truth refer to, Hz.
pub const NOISY_BAND: (f64, f64) = (8.0, 12.0);

/// 60 s at 1 kHz of a unit cosine whose frequency wanders slowly around 10 Hz,
/// `f(t) = 10 + 0.5 sin(2π t/10 s) + 0.25 sin(2π t/3.3 s + 1)` Hz (8.75–10.75 Hz, at most
/// 0.8 Hz/s), plus white Gaussian noise at 10 dB SNR within 8–12 Hz (noise variance σ² with
/// σ²·4 Hz/500 Hz = 0.05 = signal power 0.5 / 10), and its ground truth: the analytic signal
/// from `analytic_band` (zero-phase 8–12 Hz band-pass of the whole noisy record + FFT Hilbert).
pub fn noisy_wandering_record(seed: u64) -> (Vec<f64>, Vec<Complex64>) {
    let fs = NOISY_FS;
    let n = (60.0 * fs) as usize;
    let (low, high) = NOISY_BAND;
    let sigma = (0.05 * 0.5 * fs / (high - low)).sqrt();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let noise = Normal::new(0.0, sigma).unwrap();
    let mut phase = 0.0;
    let x: Vec<f64> = (0..n)
        .map(|k| {
            let t = k as f64 / fs;
            let f = 10.0 + 0.5 * (TAU * t / 10.0).sin() + 0.25 * (TAU * t / 3.3 + 1.0).sin();
            phase += TAU * f / fs;
            phase.cos() + noise.sample(&mut rng)
        })
        .collect();
    let truth = analytic_band(&x, fs, low, high).unwrap();
    (x, truth)
}

/// Bias and circular SD (degrees) of `estimates[k].phase_rad − arg truth[k]` over `range`.
pub fn errors_against(
    estimates: &[Estimate],
    truth: &[Complex64],
    range: std::ops::Range<usize>,
) -> (f64, f64) {
    bias_sd_deg(range.map(|k| estimates[k].phase_rad - truth[k].arg()))
}

/// Circular SD (degrees) of `est` against the 6–10 Hz offline ground truth of the recording,
/// from `start` to 1 s before the end (the ground truth's edges are unreliable).
pub fn theta_sd_deg(est: &mut dyn PhaseEstimator, x: &[f64], fs: f64, start: usize) -> f64 {
    let truth = analytic_band(x, fs, 6.0, 10.0).unwrap();
    let estimates: Vec<Estimate> = x.iter().map(|&v| est.process(v)).collect();
    let (bias, sd) = errors_against(&estimates, &truth, start..x.len() - fs as usize);
    println!("  bias {bias:.1}°, circular SD {sd:.1}°");
    sd
}
