//! Phase-locked loop (PLL) estimator, the method used to time stimuli to sleep slow
//! oscillations (Santostasi et al. 2016, J Neurosci Methods 259:101–114).
//!
//! In short (details and measurements on [`Pll`]):
//! - Method: biquad band-pass → complex mixer with image-cancelling one-pole low-pass
//!   (enhanced-PLL form) → unwrapped, saturating phase detector → PI loop filter → NCO; phase =
//!   NCO phase + detector residual − band-pass phase lag at the loop frequency.
//! - Parameters ([`PllConfig`]): `low_hz`, `high_hz` (band, Hz), `loop_bandwidth_hz` (natural
//!   frequency f_n, Hz, ≤ low/5, locking within an hour), `damping` (ζ, 0.25–2), `sections`
//!   (1–8).
//! - Cost per sample: the cascade (5 multiply–adds per section), a complex rotation, two
//!   `atan2`, two `sin_cos`, the cascade's response undone as a rotation; no allocation
//!   (≈ 0.14 µs measured, 2 sections).
//! - Settling: band-pass ring-down + linearised loop acquisition from the band centre
//!   ([`Pll::lock_samples`]); 1.57 s for 8–12 Hz, f_n = 1 Hz, ζ = 0.707, 2 sections.

use super::band::{check_predict, sanitize, BandPass, MAX_SETTLING_S};
use super::{Estimate, PhaseEstimator};
use crate::analysis::wrap_angle;
use num_complex::Complex64;
use std::f64::consts::{PI, TAU};

/// Mixer low-pass cut-off as a multiple of the loop's natural frequency.
const MIXER_RATIO: f64 = 4.0;
/// Lock-detector smoothing cut-off as a multiple of the loop's natural frequency.
const LOCK_RATIO: f64 = 0.5;
/// Largest natural frequency allowed, as a fraction of `low_hz`: above ≈ 0.3 the mixer's
/// low-pass no longer separates the demodulated phasor from the rhythm itself and the loop was
/// seen to oscillate instead of locking.
const MAX_LOOP_FRACTION: f64 = 0.2;
/// Damping ratios accepted.
const DAMPING_RANGE: std::ops::RangeInclusive<f64> = 0.25..=2.0;
/// Residual phase error (rad) the settling time is computed for: 2° is 0.035 rad; the margin
/// covers the approximations listed in [`Pll::settling_samples`].
const SETTLE_TOLERANCE: f64 = 0.02;
/// The detector saturates at ±this, rad.
const DETECTOR_RANGE: f64 = TAU;

/// Configuration of a [`Pll`] estimator.
#[derive(Clone, Debug, PartialEq)]
pub struct PllConfig {
    /// Lower −3 dB edge of the band-pass in front of the loop, Hz; also the lowest frequency the
    /// loop reports.
    pub low_hz: f64,
    /// Upper −3 dB edge of the band-pass, Hz; also the highest frequency the loop reports.
    pub high_hz: f64,
    /// Natural frequency of the loop `f_n = ω_n / 2π`, Hz, ≤ `low_hz / 5` and high enough
    /// to lock within an hour ([`Pll::lock_samples`]; ≥ 0.0043 Hz for 8–12 Hz). Higher
    /// follows frequency changes faster and locks sooner but lets more noise through; the
    /// closed loop's −3 dB bandwidth is ≈ 2.1·`f_n` at ζ = 0.707.
    pub loop_bandwidth_hz: f64,
    /// Damping ratio ζ of the loop (dimensionless), 0.25..=2; 0.707 is the usual choice.
    pub damping: f64,
    /// Number of identical band-pass sections, 1..=8.
    pub sections: usize,
}

impl Default for PllConfig {
    /// Alpha band 8–12 Hz, `f_n` = 1 Hz, ζ = 0.707, 2 sections.
    fn default() -> Self {
        Self {
            low_hz: 8.0,
            high_hz: 12.0,
            loop_bandwidth_hz: 1.0,
            damping: 0.707,
            sections: 2,
        }
    }
}

/// Phase-locked loop estimator (Santostasi et al. 2016).
///
/// Signal path per sample, all at the input rate:
/// 1. **Band-pass**: `sections` identical biquads with −3 dB points exactly at
///    `[low_hz, high_hz]` (the design [`super::BandpassHilbert`] documents), output `y`.
/// 2. **Phase detector: complex mixer + low-pass.** The NCO phasor `e^{iθ}` demodulates `y`
///    into a slowly varying phasor `c ≈ (A/2)·e^{i(φ_y − θ)}`, low-passed by a one-pole filter
///    of cut-off `4·f_n`. A real input also carries the image `(A/2)e^{−i(φ_y + θ)}` at twice the
///    rhythm's frequency, which a plain mixer would leave as a 2f ripple; here the mixer is fed
///    the residual of the modelled signal instead, `c ← c + α·e^{−iθ}·(y − 2 Re(c e^{iθ}))`,
///    so the image is cancelled by the model and the ripple vanishes at lock (the
///    "enhanced PLL" structure, Karimi-Ghartemani & Iravani 2002). The detector output is
///    `arg c` accumulated without wrapping and saturated at ±2π: a phase–frequency detector
///    whose linear range makes acquisition a linear transient instead of a cycle-slipping
///    pull-in, and whose saturation bounds how many slipped cycles it remembers.
/// 3. **Loop filter (PI)**: with natural frequency `ω_n = 2π·loop_bandwidth_hz` and damping ζ,
///    `ω ← clamp(ω + ω_n²·δ, band)` (integral path, per sample) and the NCO advances by
///    `ω + 2ζω_n·δ`, clamped to `[low/2, 1.5·high]` so that it can never run backwards (a
///    negative NCO frequency would lock onto the input's mirror image).
/// 4. **Output**: phase `θ + arg c − arg H(ω)` — the NCO phase corrected by the detector's
///    residual (zero at lock; it removes the loop's lag while the frequency drifts) and by the
///    band-pass's phase response at the loop frequency, so that the estimate refers to the
///    input, not to `y`. Amplitude `2|c| / |H(ω)|`; frequency the loop's integral path `ω`,
///    which always lies in the band; prediction `phase + ω·predict_samples`.
///
/// Confidence is lock quality: a one-pole average (cut-off `f_n / 2`) of `cos ε`, where ε is
/// the angle between the NCO and the band-passed signal's instantaneous phase (two-sample
/// quadrature at ω), clamped to [0, 1] — the phase-locking value between loop and input over
/// the last ≈ `1/(π f_n)` s. It is 1 on a locked clean rhythm. It is not 0 on noise alone,
/// because the loop partly follows band-passed noise: on white noise in 8–12 Hz with
/// `f_n` = 1 Hz it averaged 0.28–0.43 over 17 s stretches (0.96 with a rhythm at 10 dB in-band
/// SNR); a narrower loop follows less noise.
///
/// Cost per sample: the cascade (5 multiply–adds per section), one complex rotation, one
/// `atan2` for the detector and one for the estimate, `sin_cos` of the NCO phase and of the
/// loop frequency's half angle (which also give the lock detector's error and the rotation
/// that undoes the cascade's response); no allocation.
///
/// Settling (see [`Pll::settling_samples`]): band-pass ring-down + the loop's acquisition
/// from the band centre, a few `1/(ζ ω_n)`; e.g. 8–12 Hz, `f_n` = 1 Hz, ζ = 0.707, 2 sections:
/// 1.57 s stated, ≤ 0.93 s measured. [`Pll::lock_samples`] gives the time to re-lock after a
/// frequency step (1.55 s stated, 0.83–0.86 s measured for 9 ↔ 11 Hz).
pub struct Pll {
    band: BandPass,
    sample_rate: f64,
    predict_samples: f64,
    /// Proportional and integral gains, rad/sample per rad and rad/sample² per rad.
    kp: f64,
    ki: f64,
    /// One-pole coefficients per sample of the mixer and the lock detector.
    mixer_rate: f64,
    lock_rate: f64,
    /// Limits of the NCO's instantaneous frequency, rad/sample.
    nco_min: f64,
    nco_max: f64,
    settling_samples: usize,
    /// Band-pass ring-down, samples.
    ring_down_samples: usize,
    /// Natural frequency ω_n and the linearised loop's slowest decay rate σ, rad/s and s⁻¹.
    wn: f64,
    decay: f64,
    /// NCO phase (of the band-passed signal), rad.
    theta: f64,
    /// Integral path of the loop filter: the loop frequency, rad/sample.
    omega: f64,
    /// Demodulated phasor c.
    phasor: Complex64,
    /// Unwrapped, saturated detector output δ, rad.
    detector: f64,
    /// `arg c` at the previous sample, rad.
    arg_prev: f64,
    /// Band-passed sample y[n−1].
    y1: f64,
    /// Smoothed cos ε.
    lock: f64,
}

impl Pll {
    /// Builds the loop for input sampled at `sample_rate` (Hz), predicting `predict_samples`
    /// (samples, ≥ 0, fractional allowed) ahead. Errors name the offending parameter.
    pub fn new(config: &PllConfig, sample_rate: f64, predict_samples: f64) -> Result<Self, String> {
        let band = BandPass::new(
            "pll",
            config.low_hz,
            config.high_hz,
            config.sections,
            sample_rate,
        )?;
        check_predict("pll", predict_samples)?;
        let fn_hz = config.loop_bandwidth_hz;
        let fn_max = MAX_LOOP_FRACTION * config.low_hz;
        if !(fn_hz > 0.0 && fn_hz <= fn_max) {
            return Err(format!(
                "pll: loop_bandwidth_hz = {fn_hz}; it must be > 0 and ≤ low_hz / 5 = {fn_max} Hz"
            ));
        }
        let zeta = config.damping;
        if !DAMPING_RANGE.contains(&zeta) {
            return Err(format!(
                "pll: damping = {zeta}; use {} to {} (0.707 is typical)",
                DAMPING_RANGE.start(),
                DAMPING_RANGE.end()
            ));
        }

        let wn = TAU * fn_hz;
        let centre = band.omega_centre;
        let widest_offset_hz =
            (centre - band.omega_low).max(band.omega_high - centre) * sample_rate / TAU;
        let wn_sample = wn / sample_rate;
        let one_pole = |hz: f64| -(-TAU * hz / sample_rate).exp_m1();
        let pll = Self {
            kp: 2.0 * zeta * wn_sample,
            ki: wn_sample * wn_sample,
            mixer_rate: one_pole(MIXER_RATIO * fn_hz),
            lock_rate: one_pole(LOCK_RATIO * fn_hz),
            nco_min: 0.5 * band.omega_low,
            nco_max: (1.5 * band.omega_high).min(0.5 * (band.omega_high + PI)),
            settling_samples: 0,
            ring_down_samples: band.ring_down_samples(1e-7),
            wn,
            decay: slowest_decay(zeta) * wn,
            theta: 0.0,
            omega: centre,
            phasor: Complex64::new(0.0, 0.0),
            detector: 0.0,
            arg_prev: 0.0,
            y1: 0.0,
            lock: 0.0,
            band,
            sample_rate,
            predict_samples,
        };
        // The lock time grows as 1/f_n²: a tiny loop bandwidth would never lock in a session
        // (and its sample count overflowed).
        let lock_s = pll.loop_lock_s(widest_offset_hz);
        if !(lock_s.is_finite() && lock_s <= MAX_SETTLING_S) {
            return Err(format!(
                "pll: loop_bandwidth_hz = {fn_hz} Hz; the loop would take {lock_s:.3e} s to lock \
                 from the band centre, more than {MAX_SETTLING_S} s: raise it (the time falls \
                 as 1/loop_bandwidth_hz²; 1 Hz locks 8–12 Hz in 1.6 s)"
            ));
        }
        Ok(pll.with_settling(widest_offset_hz))
    }

    fn with_settling(mut self, offset_hz: f64) -> Self {
        self.settling_samples = self.lock_samples(offset_hz);
        self
    }

    /// The loop's part of [`Pll::lock_samples`], s.
    fn loop_lock_s(&self, step_hz: f64) -> f64 {
        let width_hz = (self.band.omega_high - self.band.omega_low) * self.sample_rate / TAU;
        let step = if step_hz.is_finite() {
            step_hz.abs().min(width_hz)
        } else {
            width_hz
        };
        let dw = TAU * step;
        let wn = self.wn;
        let sweep_s = dw / (DETECTOR_RANGE * wn * wn);
        let transient_s = ((1.0 + dw / wn) / SETTLE_TOLERANCE).ln() / self.decay;
        sweep_s + transient_s
    }

    /// Samples to lock within 2° after the input's frequency steps by `step_hz` (Hz) inside
    /// the band, from a locked state (or, for the offset from the band centre, from reset).
    ///
    /// Band-pass ring-down (all but 1e-7 of its impulse response's energy: the band-pass's own
    /// transient after the step) plus the loop's: with Δω = 2π·`step_hz`,
    /// `Δω / (2π ω_n²)` (the frequency sweep while the detector is saturated) +
    /// `ln((1 + Δω/ω_n) / 0.02) / σ`, σ the slowest decay rate of the linearised loop
    /// including the mixer's low-pass. Approximations: linearised, continuous-time loop; the
    /// band-pass transient and the loop's are added although they overlap. `step_hz` is taken
    /// as its magnitude, capped at the band's width (non-finite counts as the width).
    pub fn lock_samples(&self, step_hz: f64) -> usize {
        let loop_samples = (self.loop_lock_s(step_hz) * self.sample_rate).ceil() as usize;
        self.ring_down_samples.saturating_add(loop_samples)
    }
}

/// Slowest decay rate, in units of ω_n, of the linearised closed loop: PI filter
/// `2ζω_n + ω_n²/s`, integrating NCO `1/s` and the mixer's one-pole low-pass at `r·ω_n`
/// (r = [`MIXER_RATIO`]), whose characteristic polynomial is `s³ + r s² + 2ζr s + r` in units
/// of ω_n.
fn slowest_decay(zeta: f64) -> f64 {
    let r = MIXER_RATIO;
    let p = |s: f64| ((s + r) * s + 2.0 * zeta * r) * s + r;
    // p(0) = r > 0 and p(−r) = r(1 − 2ζr) < 0 for ζ > 1/(2r), so a real root lies in (−r, 0).
    let (mut lo, mut hi) = (-r, 0.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if p(mid) > 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let real = 0.5 * (lo + hi);
    // Deflate: p(s) = (s − real)(s² + b s + c).
    let b = r + real;
    let c = 2.0 * zeta * r + real * b;
    let disc = b * b - 4.0 * c;
    let pair = if disc < 0.0 {
        0.5 * b
    } else {
        0.5 * (b - disc.sqrt())
    };
    (-real).min(pair)
}

impl PhaseEstimator for Pll {
    fn process(&mut self, x: f64) -> Estimate {
        let y = self.band.run(sanitize(x));
        let nco = Complex64::from_polar(1.0, self.theta);
        let residual = y - 2.0 * (self.phasor * nco).re;
        self.phasor += self.mixer_rate * residual * nco.conj();
        let arg = self.phasor.arg();
        self.detector = (self.detector + wrap_angle(arg - self.arg_prev))
            .clamp(-DETECTOR_RANGE, DETECTOR_RANGE);
        self.arg_prev = arg;

        // Lock detector: instantaneous phase of y at n from the two-sample quadrature at ω
        // (exact for a sinusoid at ω; see BandpassHilbert), against the NCO.
        let half = 0.5 * self.omega;
        let (sin_half, cos_half) = half.sin_cos();
        let in_phase = 0.5 * (y + self.y1) / cos_half;
        let quadrature = -(y - self.y1) / (2.0 * sin_half);
        self.y1 = y;
        // cos(arg(in_phase + i·quadrature) + half − θ), expanded with the sines and cosines
        // of half and θ already at hand instead of an `atan2` and a `cos`.
        let magnitude = in_phase.hypot(quadrature);
        let cos_eps = if magnitude > 0.0 {
            let cos_lead = cos_half * nco.re + sin_half * nco.im;
            let sin_lead = sin_half * nco.re - cos_half * nco.im;
            (in_phase * cos_lead - quadrature * sin_lead) / magnitude
        } else {
            0.0
        };
        self.lock += self.lock_rate * (cos_eps - self.lock);

        // θ + arg(phasor) − arg H(ω), with the response undone as a rotation built from the
        // half angle's sine and cosine above (no further trigonometric call).
        let (undo_lag, inverse_gain_sq) = self.band.undo(sin_half, cos_half);
        let phase = wrap_angle(self.theta + (self.phasor * undo_lag).arg());
        let estimate = Estimate {
            phase_rad: phase,
            predicted_phase_rad: wrap_angle(phase + self.omega * self.predict_samples),
            amplitude: 2.0 * (self.phasor.norm_sqr() * inverse_gain_sq).sqrt(),
            freq_hz: self.omega * self.sample_rate / TAU,
            confidence: self.lock.clamp(0.0, 1.0),
        };

        let delta = self.detector;
        self.omega =
            (self.omega + self.ki * delta).clamp(self.band.omega_low, self.band.omega_high);
        let step = (self.omega + self.kp * delta).clamp(self.nco_min, self.nco_max);
        self.theta = wrap_angle(self.theta + step);
        estimate
    }

    fn reset(&mut self) {
        self.band.reset();
        self.theta = 0.0;
        self.omega = self.band.omega_centre;
        self.phasor = Complex64::new(0.0, 0.0);
        self.detector = 0.0;
        self.arg_prev = 0.0;
        self.y1 = 0.0;
        self.lock = 0.0;
    }

    /// [`Pll::lock_samples`] for the step from the band centre (where the loop starts) to the
    /// farther band edge. Checked on clean
    /// tones across the band (edges included) and start phases for bands 0.5–2 … 13–30 Hz,
    /// `f_n` 0.1–3 Hz (≤ low/5), ζ 0.25–2, 1–4 sections: the error stayed below 2° from
    /// 0.3–1.0 of this time on (the overdamped ζ = 2 and underdamped ζ = 0.25 loops are the
    /// most pessimistic).
    fn settling_samples(&self) -> usize {
        self.settling_samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowest_decay_is_the_slowest_root() {
        // Roots of s³ + 4s² + 8ζ s + 4 (units of ω_n), found by hand: ζ = 0.5 → −3.13 and a
        // pair at −0.435 ± …; ζ = 0.707 → −2.29 and −0.855 ± …; ζ = 1 → −0.703 (real) and a
        // pair at −1.65 ± ….
        for (zeta, expected) in [(0.5, 0.435), (0.707, 0.855), (1.0, 0.703)] {
            let got = slowest_decay(zeta);
            assert!((got - expected).abs() < 0.005, "ζ = {zeta}: {got}");
        }
        // Every accepted damping gives a stable loop.
        for k in 0..=35 {
            let zeta = 0.25 + 0.05 * k as f64;
            assert!(slowest_decay(zeta) > 0.0, "ζ = {zeta}");
        }
    }

    #[test]
    fn lock_samples_grow_with_the_step_and_cap_at_the_band_width() {
        let pll = Pll::new(&PllConfig::default(), 1000.0, 0.0).unwrap();
        let steps = [0.0, 0.5, 1.0, 2.0, 4.0];
        let times: Vec<usize> = steps.iter().map(|&s| pll.lock_samples(s)).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        assert_eq!(pll.lock_samples(-4.0), times[4]);
        assert_eq!(pll.lock_samples(100.0), times[4]);
        assert_eq!(pll.lock_samples(f64::NAN), times[4]);
    }
}
