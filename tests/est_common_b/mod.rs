//! Helpers shared by the estimator tests: test signals, error statistics against the true or
//! the offline ground-truth phase, an allocation counter, and the real recording.
//!
//! Every test binary that includes this module uses every item in it.

use entrain::analysis::{analytic_band, circular_stats, wrap_angle};
use entrain::estimate::{Estimate, PhaseEstimator};
use num_complex::Complex64;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::TAU;

#[path = "../alloc_count/mod.rs"]
mod alloc_count;
use alloc_count::count_allocations;

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

/// Feeds a clean 10 Hz tone with a 0.5 s burst of NaN/±Inf in the middle; asserts every output
/// is finite and returns how many samples after the burst the phase error last exceeded 2°.
pub fn resettle_after_non_finite(est: &mut dyn PhaseEstimator, fs: f64, total_s: f64) -> usize {
    let n = (total_s * fs) as usize;
    let gap = n / 3..n / 3 + (0.5 * fs) as usize;
    let mut last_bad = 0;
    for k in 0..n {
        let phase = TAU * 10.0 * k as f64 / fs;
        let x = if gap.contains(&k) {
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][k % 3]
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

/// The rat CA1 recording (values, sample rate in Hz) or `None`, with a message, when the
/// shared data folder is absent.
pub fn rat_theta() -> Option<(Vec<f64>, f64)> {
    let path = "/work/shared/data/rat_ca1_theta_1250hz.wav";
    let Ok(mut reader) = hound::WavReader::open(path) else {
        eprintln!("skipped: {path} is absent");
        return None;
    };
    let fs = reader.spec().sample_rate as f64;
    let x = reader
        .samples::<f32>()
        .map(|s| s.map(f64::from))
        .collect::<Result<Vec<f64>, _>>()
        .unwrap();
    Some((x, fs))
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
