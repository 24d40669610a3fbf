//! Streaming pink noise: spectrum, moments, reproducibility and independence of streams.

use entrain::model::pink::{PinkNoise, PinkNoiseBank};
use num_complex::Complex64;
use rustfft::FftPlanner;

const FS: f64 = 1000.0;

/// Welch power spectrum (Hann window, 50 % overlap, segments of `seg` samples): returns
/// `(frequency in Hz, power)` for bins 1..seg/2 (arbitrary but consistent power units).
fn welch(x: &[f64], seg: usize, fs: f64) -> Vec<(f64, f64)> {
    let fft = FftPlanner::new().plan_fft_forward(seg);
    let window: Vec<f64> = (0..seg)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / seg as f64).cos())
        .collect();
    let mut power = vec![0.0; seg / 2];
    let mut buf = vec![Complex64::default(); seg];
    let mut count = 0;
    let mut start = 0;
    while start + seg <= x.len() {
        let seg_x = &x[start..start + seg];
        let mean = seg_x.iter().sum::<f64>() / seg as f64;
        for ((b, v), w) in buf.iter_mut().zip(seg_x).zip(&window) {
            *b = Complex64::new((v - mean) * w, 0.0);
        }
        fft.process(&mut buf);
        for (p, b) in power.iter_mut().zip(&buf) {
            *p += b.norm_sqr();
        }
        count += 1;
        start += seg / 2;
    }
    (1..seg / 2)
        .map(|k| (k as f64 * fs / seg as f64, power[k] / count as f64))
        .collect()
}

/// Least-squares slope of log10 power against log10 frequency over `[f_lo, f_hi]` Hz, after
/// averaging the periodogram in bins of 1/10 decade (so each decade weighs the same).
fn loglog_slope(psd: &[(f64, f64)], f_lo: f64, f_hi: f64) -> f64 {
    let bins_per_decade = 10.0;
    let n_bins = ((f_hi / f_lo).log10() * bins_per_decade).round() as usize;
    let mut pts = Vec::new();
    for b in 0..n_bins {
        let lo = f_lo * 10f64.powf(b as f64 / bins_per_decade);
        let hi = f_lo * 10f64.powf((b + 1) as f64 / bins_per_decade);
        let inside: Vec<&(f64, f64)> = psd.iter().filter(|(f, _)| *f >= lo && *f < hi).collect();
        if inside.is_empty() {
            continue;
        }
        let lf = inside.iter().map(|(f, _)| f.log10()).sum::<f64>() / inside.len() as f64;
        let lp = (inside.iter().map(|(_, p)| p).sum::<f64>() / inside.len() as f64).log10();
        pts.push((lf, lp));
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    sxy / sxx
}

fn series(noise: &mut PinkNoise, n: usize) -> Vec<f64> {
    (0..n).map(|_| noise.sample()).collect()
}

/// At 1 kHz with the lowest corner at 0.1 Hz, the Welch PSD (2^20 samples, 2^14-sample segments,
/// 0.061 Hz resolution) falls as 1/f: slope −1 ± 0.1 over 1–100 Hz (the two decades asked for),
/// over each of its decades and over 0.5–400 Hz (5 f_lo to 0.4 f_s). Outside the band (printed,
/// not asserted) the spectrum flattens: below f_lo towards white, near Nyquist ≈ −0.7.
#[test]
fn power_spectrum_is_one_over_f_over_two_decades() {
    let mut noise = PinkNoise::new(FS, 0.1, 3).unwrap();
    // Two sections per octave from 0.1 Hz up to the last corner below 500 Hz.
    assert_eq!(noise.sections(), 25);
    let x = series(&mut noise, 1 << 20);
    let psd = welch(&x, 1 << 14, FS);
    for (lo, hi) in [(1.0, 100.0), (1.0, 10.0), (10.0, 100.0), (0.5, 400.0)] {
        let slope = loglog_slope(&psd, lo, hi);
        eprintln!("pink slope {lo}–{hi} Hz: {slope:.4}");
        assert!(
            (slope + 1.0).abs() < 0.1,
            "slope over {lo}–{hi} Hz is {slope:.4}, expected −1 ± 0.1"
        );
    }
    for (lo, hi) in [(0.05, 0.5), (200.0, 500.0)] {
        eprintln!(
            "pink slope {lo}–{hi} Hz (outside the band): {:.4}",
            loglog_slope(&psd, lo, hi)
        );
    }
}

/// Pooled over 8 streams of 2^20 samples (1 kHz, lowest corner 1 Hz): mean 0 ± 0.015 (≈ 6 SD of
/// the sample mean of this correlated process) and variance 1 ± 0.02; each stream 1 ± 0.05.
#[test]
fn zero_mean_and_unit_variance() {
    let nodes = 8;
    let n = 1 << 20;
    let mut bank = PinkNoiseBank::new(nodes, FS, 1.0, 11).unwrap();
    let mut out = vec![0.0; nodes];
    let mut sum = vec![0.0; nodes];
    let mut sum2 = vec![0.0; nodes];
    for _ in 0..n {
        bank.fill(&mut out);
        for i in 0..nodes {
            sum[i] += out[i];
            sum2[i] += out[i] * out[i];
        }
    }
    let total = (nodes * n) as f64;
    let mean = sum.iter().sum::<f64>() / total;
    let var = sum2.iter().sum::<f64>() / total - mean * mean;
    eprintln!("pink pooled mean {mean:.5}, variance {var:.5}");
    assert!(mean.abs() < 0.015, "mean {mean}");
    assert!((var - 1.0).abs() < 0.02, "variance {var}");
    for i in 0..nodes {
        let m = sum[i] / n as f64;
        let v = sum2[i] / n as f64 - m * m;
        assert!((v - 1.0).abs() < 0.05, "stream {i}: variance {v}");
    }
}

#[test]
fn same_seed_same_stream_and_reset_repeats_it() {
    let mut a = PinkNoise::new(FS, 0.5, 42).unwrap();
    let mut b = PinkNoise::new(FS, 0.5, 42).unwrap();
    let xa = series(&mut a, 10_000);
    assert_eq!(xa, series(&mut b, 10_000));
    a.reset();
    assert_eq!(xa, series(&mut a, 10_000));
    let mut c = PinkNoise::new(FS, 0.5, 43).unwrap();
    assert_ne!(xa, series(&mut c, 10_000));

    // Node 0 of a bank is the single stream; a reset bank repeats itself.
    let mut bank = PinkNoiseBank::new(3, FS, 0.5, 42).unwrap();
    let mut out = [0.0; 3];
    let mut first = Vec::new();
    for x in &xa[..1000] {
        bank.fill(&mut out);
        assert_eq!(out[0], *x);
        first.push(out);
    }
    bank.reset();
    for row in &first {
        bank.fill(&mut out);
        assert_eq!(&out, row);
    }
}

/// Zero-lag correlation between streams of a bank: |r| < 0.01 over 2^20 samples (the SD of the
/// estimate for this spectrum is ≈ 0.0015).
#[test]
fn streams_of_a_bank_are_uncorrelated() {
    let nodes = 4;
    let n = 1 << 20;
    let mut bank = PinkNoiseBank::new(nodes, FS, 1.0, 5).unwrap();
    let mut out = vec![0.0; nodes];
    let mut xs: Vec<Vec<f64>> = (0..nodes).map(|_| Vec::with_capacity(n)).collect();
    for _ in 0..n {
        bank.fill(&mut out);
        for (x, o) in xs.iter_mut().zip(&out) {
            x.push(*o);
        }
    }
    let stats = |x: &[f64]| {
        let m = x.iter().sum::<f64>() / n as f64;
        let s = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt();
        (m, s)
    };
    for i in 0..nodes {
        for j in i + 1..nodes {
            let (mi, si) = stats(&xs[i]);
            let (mj, sj) = stats(&xs[j]);
            let r = xs[i]
                .iter()
                .zip(&xs[j])
                .map(|(a, b)| (a - mi) * (b - mj))
                .sum::<f64>()
                / (n as f64 * si * sj);
            eprintln!("pink corr({i},{j}) = {r:.5}");
            assert!(r.abs() < 0.01, "streams {i} and {j}: correlation {r}");
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    for (fs, lo) in [
        (0.0, 1.0),
        (f64::NAN, 1.0),
        (1000.0, 0.0),
        (1000.0, 500.0),
        (1000.0, -1.0),
    ] {
        let err = PinkNoise::new(fs, lo, 0).unwrap_err();
        assert!(err.starts_with("pink noise:"), "{err}");
    }
}
