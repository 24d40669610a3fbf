//! Offline (non-causal) ground-truth phase: zero-phase band-pass of a whole record and FFT
//! Hilbert transform, done together as one forward/inverse FFT pair.

use num_complex::Complex64;
use rustfft::FftPlanner;
use std::f64::consts::PI;

/// Width of each raised-cosine transition band as a fraction of the pass band (`high − low`).
const TRANSITION_FRACTION: f64 = 0.25;
/// Lower bound on the transition width, in FFT bins, so that short records still get a smooth
/// (not brick-wall) edge.
const MIN_TRANSITION_BINS: f64 = 4.0;
/// Mirrored padding on each side, in periods of the lower band edge (capped at the record length).
const PAD_PERIODS: f64 = 8.0;

/// Analytic signal of `signal` restricted to the band `[low_hz, high_hz]` (Hz), sampled at
/// `sample_rate` (Hz).
///
/// `arg` of each element is the ground-truth phase (rad, `x ≈ A cos φ` convention) and `abs` the
/// band amplitude (input units, peak). The filter is zero-phase: it is applied as a real gain on
/// the spectrum of the whole record, so it cannot shift the phase.
///
/// Frequency response: gain 2 on positive frequencies inside `[low_hz, high_hz]` (flat), falling
/// to 0 by a raised cosine over a transition band outside each edge (−6 dB half-way), of width
/// `max(0.25·(high − low), 4 bins)` but never crossing DC or Nyquist; DC, Nyquist and all negative
/// frequencies are zero. The taper is set in Hz, not bins, so the filter (and hence the ground
/// truth) does not depend on the record length, and its impulse response stays a few
/// `1/(high − low)` long, which keeps edge effects local.
///
/// Edges: the record is extended on each side by an even mirror image (`x[1], x[2], …` reflected
/// about the first and last samples) of `8/low_hz` seconds (at most the record length minus one
/// sample), then zero-padded to the next FFT length of the form `2^a·3^b·5^c`. Mirroring keeps
/// the extension continuous, so the filter sees no step at the record's ends, but it reflects
/// the phase, so the ends themselves remain unreliable: for a 7.3 Hz tone in 4–11 Hz the error
/// measured up to 17° on the first and last samples and < 0.15° from 1 s (7 cycles) inwards.
///
/// Memory: one complex buffer of the padded length (16 bytes per sample); decimate long
/// audio-rate records first.
///
/// Errors (never panics) on an empty record, a non-finite sample, a sample rate that is not
/// finite and positive, or a band that does not satisfy `0 < low_hz < high_hz < sample_rate / 2`.
pub fn analytic_band(
    signal: &[f64],
    sample_rate: f64,
    low_hz: f64,
    high_hz: f64,
) -> Result<Vec<Complex64>, String> {
    if signal.is_empty() {
        return Err("analytic_band: the signal is empty; pass at least one sample".into());
    }
    if let Some(i) = signal.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "analytic_band: sample {i} is {}; the record must be finite (clean or interpolate it first)",
            signal[i]
        ));
    }
    if !(sample_rate.is_finite() && sample_rate > 0.0) {
        return Err(format!(
            "analytic_band: sample_rate = {sample_rate} Hz; it must be finite and > 0"
        ));
    }
    let nyquist = 0.5 * sample_rate;
    if !(low_hz > 0.0 && low_hz < high_hz && high_hz < nyquist) {
        return Err(format!(
            "analytic_band: band [{low_hz}, {high_hz}] Hz is invalid; it needs 0 < low_hz < high_hz < Nyquist ({nyquist} Hz)"
        ));
    }

    let n = signal.len();
    let pad = ((PAD_PERIODS * sample_rate / low_hz).ceil() as usize).min(n - 1);
    let len = fast_fft_len(n + 2 * pad);

    let mut buf = vec![Complex64::new(0.0, 0.0); len];
    // Layout: [left mirror | record | right mirror | zeros]; circularly the zeros sit between the
    // right and the left mirror, away from the record.
    for (k, slot) in buf[..pad].iter_mut().enumerate() {
        *slot = signal[pad - k].into();
    }
    for (slot, &x) in buf[pad..pad + n].iter_mut().zip(signal) {
        *slot = x.into();
    }
    for (k, slot) in buf[pad + n..n + 2 * pad].iter_mut().enumerate() {
        *slot = signal[n - 2 - k].into();
    }

    let mut planner = FftPlanner::<f64>::new();
    planner.plan_fft_forward(len).process(&mut buf);

    let df = sample_rate / len as f64;
    let width = (TRANSITION_FRACTION * (high_hz - low_hz)).max(MIN_TRANSITION_BINS * df);
    let low_width = width.min(low_hz);
    let high_width = width.min(nyquist - high_hz);
    // Gain 2 doubles the positive frequencies that stand in for the zeroed negative ones; 1/len
    // undoes rustfft's unnormalised inverse.
    let scale = 2.0 / len as f64;
    for (k, bin) in buf.iter_mut().enumerate() {
        let positive = k > 0 && 2 * k < len;
        let gain = if positive {
            let f = k as f64 * df;
            band_gain(f, low_hz, high_hz, low_width, high_width)
        } else {
            0.0
        };
        *bin *= gain * scale;
    }
    planner.plan_fft_inverse(len).process(&mut buf);

    buf.truncate(pad + n);
    buf.drain(..pad);
    Ok(buf)
}

/// Flat pass band `[low, high]` with raised-cosine skirts of the given widths (Hz) outside it.
fn band_gain(f: f64, low: f64, high: f64, low_width: f64, high_width: f64) -> f64 {
    let skirt = |distance: f64, width: f64| {
        if distance >= width {
            0.0
        } else {
            0.5 * (1.0 + (PI * distance / width).cos())
        }
    };
    if f < low {
        skirt(low - f, low_width)
    } else if f > high {
        skirt(f - high, high_width)
    } else {
        1.0
    }
}

/// Smallest `2^a·3^b·5^c ≥ min_len`: lengths rustfft handles with its fast radix kernels.
fn fast_fft_len(min_len: usize) -> usize {
    let mut best = min_len.next_power_of_two();
    let mut p5 = 1;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            let mut candidate = p35;
            while candidate < min_len {
                candidate *= 2;
            }
            best = best.min(candidate);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::circular::wrap_angle;
    use std::f64::consts::TAU;

    fn is_smooth(mut m: usize) -> bool {
        for p in [2, 3, 5] {
            while m.is_multiple_of(p) {
                m /= p;
            }
        }
        m == 1
    }

    #[test]
    fn fast_fft_len_is_smooth_and_minimal() {
        assert_eq!(fast_fft_len(1), 1);
        assert_eq!(fast_fft_len(7), 8);
        assert_eq!(fast_fft_len(11), 12);
        assert_eq!(fast_fft_len(1001), 1024);
        assert_eq!(fast_fft_len(1025), 1080);
        for m in 1..3000 {
            let l = fast_fft_len(m);
            assert!(l >= m && is_smooth(l), "{m} → {l}");
            assert!(!(m..l).any(is_smooth), "{m} → {l} skips a smaller length");
        }
    }

    #[test]
    fn recovers_phase_and_amplitude_of_fm_tone_beside_an_out_of_band_tone() {
        // φ(t) = 2π·7.3·t + 0.4 sin(2π·0.5·t): its Bessel sidebands (7.3 ± 0.5k Hz, J₂ = 0.02,
        // J₃ = 0.0013) lie well inside 4–11 Hz, so a flat pass band keeps phase and unit amplitude;
        // the 25 Hz tone and the 0.8 Hz drift must be rejected.
        let fs = 250.0;
        let n = (40.0 * fs) as usize;
        let phase = |t: f64| TAU * 7.3 * t + 0.4 * (TAU * 0.5 * t).sin();
        let x: Vec<f64> = (0..n)
            .map(|k| {
                let t = k as f64 / fs;
                phase(t).cos() + 1.5 * (TAU * 25.0 * t + 1.0).cos() + 2.0 * (TAU * 0.8 * t).sin()
            })
            .collect();
        let z = analytic_band(&x, fs, 4.0, 11.0).unwrap();
        assert_eq!(z.len(), n);
        // Mirroring reflects the phase at the ends, so the first and last ≈ 0.75 s (5 cycles) carry
        // errors of up to 17° at the very end samples; 1 s in, the error is < 0.15°.
        let edge = fs as usize;
        let (mut max_phase, mut max_amp) = (0.0_f64, 0.0_f64);
        for (k, zk) in z.iter().enumerate().take(n - edge).skip(edge) {
            let t = k as f64 / fs;
            max_phase = max_phase.max(wrap_angle(zk.arg() - phase(t)).abs());
            max_amp = max_amp.max((zk.norm() - 1.0).abs());
        }
        assert!(max_phase.to_degrees() < 0.5, "{}°", max_phase.to_degrees());
        assert!(max_amp < 0.01, "{max_amp}");
    }

    #[test]
    fn pass_band_is_flat_to_its_edges_and_half_gain_mid_transition() {
        // Band 8–12 Hz: transition width 1 Hz, so 7.5 and 12.5 Hz sit at −6 dB (gain ½), 8 and
        // 12 Hz at full gain, and 2, 6, 14, 20 and 60 Hz are stopped.
        let fs = 200.0;
        let n = 4000;
        let amplitude_at = |f: f64| {
            let x: Vec<f64> = (0..n)
                .map(|k| (TAU * f * k as f64 / fs + 0.3).cos())
                .collect();
            let z = analytic_band(&x, fs, 8.0, 12.0).unwrap();
            let mid = &z[n / 4..3 * n / 4];
            mid.iter().map(|c| c.norm()).sum::<f64>() / mid.len() as f64
        };
        for (f, gain) in [
            (8.0, 1.0),
            (10.0, 1.0),
            (12.0, 1.0),
            (7.5, 0.5),
            (12.5, 0.5),
        ] {
            let a = amplitude_at(f);
            assert!((a - gain).abs() < 1e-3, "{f} Hz: gain {a}, expected {gain}");
        }
        for f in [2.0, 6.0, 14.0, 20.0, 60.0] {
            assert!(amplitude_at(f) < 1e-4, "{f} Hz leaks: {}", amplitude_at(f));
        }
    }

    #[test]
    fn invalid_input_is_an_error_not_a_panic() {
        let x = vec![0.0; 100];
        assert!(analytic_band(&[], 100.0, 1.0, 2.0).is_err());
        assert!(analytic_band(&[0.0, f64::NAN], 100.0, 1.0, 2.0).is_err());
        assert!(analytic_band(&x, 100.0, 0.0, 2.0).is_err());
        assert!(analytic_band(&x, 100.0, 3.0, 2.0).is_err());
        assert!(analytic_band(&x, 100.0, 10.0, 50.0).is_err());
        assert!(analytic_band(&x, f64::NAN, 1.0, 2.0).is_err());
        assert!(analytic_band(&x, -100.0, 1.0, 2.0).is_err());
        // A single sample or a record shorter than the padding is valid.
        assert_eq!(analytic_band(&[1.0], 100.0, 1.0, 2.0).unwrap().len(), 1);
        assert_eq!(analytic_band(&x[..3], 100.0, 1.0, 2.0).unwrap().len(), 3);
    }
}
