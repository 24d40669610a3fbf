//! Causal band-pass cascade shared by the band-pass + quadrature estimator, the PLL and ETP:
//! identical RBJ band-pass sections whose cascade has its −3 dB points exactly on the requested
//! band edges, scaled to 0 dB at the centre, with the cascade's own frequency response and
//! ring-down time, plus the input checks they share.
//!
//! Design: bilinear pre-warping makes the digital −3 dB points land exactly on the band edges
//! (the RBJ band-pass is the bilinear transform of the analog one, pre-warped at f0); the centre
//! is the geometric mean of the edges in the warped domain and each section's Q is
//! `sqrt(2^{1/n} − 1) / (Ω_high − Ω_low)` (Ω = edge's warped frequency over the centre's), which
//! for bands far below Nyquist is `(f0 / (high − low))·sqrt(2^{1/n} − 1)` with
//! `f0 = sqrt(low·high)`. The crate's band-pass peaks at gain Q; each section is scaled to 0 dB
//! so the cascade stays in input units (Q^8 would otherwise span many decades).

use biquad::{Biquad, Coefficients, DirectForm2Transposed, Hertz, Type};
use num_complex::Complex64;
use std::f64::consts::{PI, TAU};

/// Most band-pass sections a cascade may have.
pub(super) const MAX_SECTIONS: usize = 8;
/// Longest training or lock-in time an estimator may be configured for, s (ETP's `train_s`,
/// the PLL's lock from the band centre). An hour holds hundreds of cycles even of a 0.1 Hz
/// rhythm, far more than learning a cycle length or locking a loop needs; longer only puts the
/// first usable estimate past the session, and the bound keeps sample counts far from
/// `usize::MAX`.
pub(super) const MAX_SETTLING_S: f64 = 3600.0;
/// Replaces a non-finite input sample, or one beyond ±[`super::MAX_INPUT`], by 0 (see
/// [`super::PhaseEstimator`]).
pub(super) fn sanitize(x: f64) -> f64 {
    if super::usable_input(x) {
        x
    } else {
        0.0
    }
}

/// Checks that `sample_rate` (Hz) is finite and positive; `who` prefixes the message.
pub(super) fn check_sample_rate(who: &str, sample_rate: f64) -> Result<(), String> {
    if sample_rate.is_finite() && sample_rate > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{who}: sample_rate = {sample_rate} Hz; it must be finite and > 0"
        ))
    }
}

/// Checks that `predict_samples` is finite and ≥ 0; `who` prefixes the message.
pub(super) fn check_predict(who: &str, predict_samples: f64) -> Result<(), String> {
    if predict_samples.is_finite() && predict_samples >= 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{who}: predict_samples = {predict_samples}; it must be finite and ≥ 0 (the loop \
             latency in samples)"
        ))
    }
}

/// A cascade of identical band-pass biquads with unit gain and zero phase at its centre.
pub(super) struct BandPass {
    cascade: Vec<DirectForm2Transposed<f64>>,
    section: Coefficients<f64>,
    /// Band edges (−3 dB points) and geometric (pre-warped) centre, rad/sample.
    pub(super) omega_low: f64,
    pub(super) omega_high: f64,
    pub(super) omega_centre: f64,
}

impl BandPass {
    /// Designs the cascade for `[low_hz, high_hz]` (Hz) at `sample_rate` (Hz) with `sections`
    /// sections (1..=[`MAX_SECTIONS`]); errors name the offending parameter, prefixed by `who`.
    pub(super) fn new(
        who: &str,
        low_hz: f64,
        high_hz: f64,
        sections: usize,
        sample_rate: f64,
    ) -> Result<Self, String> {
        check_sample_rate(who, sample_rate)?;
        let nyquist = 0.5 * sample_rate;
        if !(low_hz > 0.0 && low_hz < high_hz && high_hz < nyquist) {
            return Err(format!(
                "{who}: low_hz = {low_hz}, high_hz = {high_hz}; the band must satisfy \
                 0 < low_hz < high_hz < Nyquist ({nyquist} Hz)"
            ));
        }
        if !(1..=MAX_SECTIONS).contains(&sections) {
            return Err(format!(
                "{who}: sections = {sections}; use 1 to {MAX_SECTIONS} (2–4 is typical)"
            ));
        }
        let k_low = (PI * low_hz / sample_rate).tan();
        let k_high = (PI * high_hz / sample_rate).tan();
        let k_centre = (k_low * k_high).sqrt();
        let centre_hz = sample_rate / PI * k_centre.atan();
        let q = (2f64.powf(1.0 / sections as f64) - 1.0).sqrt() / ((k_high - k_low) / k_centre);
        let hz = |f: f64| Hertz::from_hz(f).map_err(|e| format!("{who}: {e:?}"));
        let mut section =
            Coefficients::<f64>::from_params(Type::BandPass, hz(sample_rate)?, hz(centre_hz)?, q)
                .map_err(|e| format!("{who}: band-pass design failed: {e:?}"))?;
        section.b0 /= q;
        section.b1 /= q;
        section.b2 /= q;
        Ok(Self {
            cascade: vec![DirectForm2Transposed::<f64>::new(section); sections],
            section,
            omega_low: TAU * low_hz / sample_rate,
            omega_high: TAU * high_hz / sample_rate,
            omega_centre: TAU * centre_hz / sample_rate,
        })
    }

    /// Filters one (finite) sample.
    pub(super) fn run(&mut self, x: f64) -> f64 {
        self.cascade.iter_mut().fold(x, |v, s| s.run(v))
    }

    /// Clears the filter state.
    pub(super) fn reset(&mut self) {
        self.cascade.iter_mut().for_each(|s| s.reset_state());
    }

    /// Phase (rad, the cascade's `arg H`, negative = lag) and gain of the cascade at `omega`
    /// (rad/sample).
    pub(super) fn response(&self, omega: f64) -> (f64, f64) {
        let z1 = Complex64::from_polar(1.0, -omega);
        let z2 = z1 * z1;
        let c = &self.section;
        let h = (c.b0 + c.b1 * z1 + c.b2 * z2) / (1.0 + c.a1 * z1 + c.a2 * z2);
        let n = self.cascade.len();
        (n as f64 * h.arg(), h.norm().powi(n as i32))
    }

    /// The cascade's response at the frequency ω whose half-angle sine and cosine are given,
    /// in the form the per-sample path needs without a trigonometric call: the unit rotation
    /// `e^{−i arg H(ω)}` that undoes the cascade's phase, and `1/|H(ω)|²`. (`H = N/D` per
    /// section, so `conj(N)·D` points along `−arg H`; `e^{−iω}` is `(c² − s²) − 2isc`.)
    pub(super) fn undo(&self, sin_half: f64, cos_half: f64) -> (Complex64, f64) {
        let z1 = Complex64::new(
            cos_half * cos_half - sin_half * sin_half,
            -2.0 * sin_half * cos_half,
        );
        let z2 = z1 * z1;
        let c = &self.section;
        let num = c.b0 + c.b1 * z1 + c.b2 * z2;
        let den = 1.0 + c.a1 * z1 + c.a2 * z2;
        let w = num.conj() * den;
        let n = self.cascade.len() as i32;
        (
            (w / w.norm_sqr().sqrt()).powi(n),
            (den.norm_sqr() / num.norm_sqr()).powi(n),
        )
    }

    /// One section's coefficients (every section is the same).
    pub(super) fn section(&self) -> Coefficients<f64> {
        self.section
    }

    /// Samples after which the cascade's impulse response has less than `fraction` of its total
    /// energy still to come.
    pub(super) fn ring_down_samples(&self, fraction: f64) -> usize {
        let window = (TAU / self.omega_low).ceil() as usize;
        ring_down_samples(self.section, self.cascade.len(), window, [fraction])[0]
    }
}

/// Samples after which the impulse response of `sections` cascaded copies of `section` has
/// less than each of `fractions` (decreasing) of its total energy still to come.
///
/// The response is simulated twice: first until a `window` of samples adds under 1e-15 of the
/// energy so far (the tail beyond is then below 1e-12 even when the window is 1000× shorter
/// than the slowest decay), to get the total; then again to find the crossings.
pub(super) fn ring_down_samples<const N: usize>(
    section: Coefficients<f64>,
    sections: usize,
    window: usize,
    fractions: [f64; N],
) -> [usize; N] {
    let mut cascade = vec![DirectForm2Transposed::<f64>::new(section); sections];
    let mut total = 0.0;
    let mut k = 0;
    loop {
        let before = total;
        for _ in 0..window {
            total += impulse_energy(&mut cascade, k);
            k += 1;
        }
        if total - before <= 1e-15 * total {
            break;
        }
    }
    cascade.iter_mut().for_each(|s| s.reset_state());
    let mut out = [0; N];
    let mut so_far = 0.0;
    let mut k = 0;
    for (slot, fraction) in out.iter_mut().zip(fractions) {
        while so_far < (1.0 - fraction) * total {
            so_far += impulse_energy(&mut cascade, k);
            k += 1;
        }
        *slot = k;
    }
    out
}

/// Squared output of `cascade` at sample `k` of a unit impulse (fed in order from k = 0).
fn impulse_energy(cascade: &mut [DirectForm2Transposed<f64>], k: usize) -> f64 {
    let impulse = if k == 0 { 1.0 } else { 0.0 };
    let y = cascade.iter_mut().fold(impulse, |v, s| s.run(v));
    y * y
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trigonometry-free rotation and inverse squared gain are the response's `−arg H` and
    /// `1/|H|²`, across the band and beyond it, for narrow and wide bands and every cascade.
    #[test]
    fn undo_is_the_inverse_of_the_response() {
        for (fs, low, high) in [
            (1000.0, 8.0, 12.0),
            (48_000.0, 8.0, 12.0),
            (250.0, 1.0, 60.0),
        ] {
            for sections in 1..=MAX_SECTIONS {
                let band = BandPass::new("test", low, high, sections, fs).unwrap();
                for k in 1..200 {
                    let omega = band.omega_high * 1.5 * k as f64 / 200.0;
                    let (lag, gain) = band.response(omega);
                    let half = 0.5 * omega;
                    let (rotation, inverse_gain_sq) = band.undo(half.sin(), half.cos());
                    let case = format!("{fs} Hz, {low}–{high} Hz, {sections}, ω {omega}");
                    assert!((rotation.norm() - 1.0).abs() < 1e-13, "{case}");
                    let error = (rotation * Complex64::from_polar(1.0, lag)).arg();
                    assert!(error.abs() < 1e-9, "{case}: {error}");
                    assert!(
                        (inverse_gain_sq * gain * gain - 1.0).abs() < 1e-9,
                        "{case}: {inverse_gain_sq} against {gain}"
                    );
                }
            }
        }
    }

    #[test]
    fn edges_are_at_minus_3_db_and_the_centre_is_unity() {
        for fs in [100.0, 1000.0, 48_000.0] {
            for sections in 1..=MAX_SECTIONS {
                let band = BandPass::new("test", 8.0, 12.0, sections, fs).unwrap();
                for edge in [band.omega_low, band.omega_high] {
                    let (_, gain) = band.response(edge);
                    assert!(
                        (gain - 0.5f64.sqrt()).abs() < 1e-9,
                        "{fs} Hz, {sections}: {gain}"
                    );
                }
                let (lag, gain) = band.response(band.omega_centre);
                assert!(
                    (gain - 1.0).abs() < 1e-9 && lag.abs() < 1e-7,
                    "{gain} {lag}"
                );
            }
        }
    }

    #[test]
    fn ring_down_leaves_the_requested_energy() {
        let mut band = BandPass::new("test", 8.0, 12.0, 2, 1000.0).unwrap();
        let k = band.ring_down_samples(1e-6);
        let energies: Vec<f64> = (0..20 * k)
            .map(|i| band.run(if i == 0 { 1.0 } else { 0.0 }).powi(2))
            .collect();
        let total: f64 = energies.iter().sum();
        let before: f64 = energies[..k].iter().sum();
        let one_less: f64 = energies[..k - 1].iter().sum();
        assert!(before >= (1.0 - 1e-6) * total && one_less < (1.0 - 1e-6) * total);
    }

    #[test]
    fn bad_parameters_are_named() {
        let error = |low, high, sections, fs| match BandPass::new("x", low, high, sections, fs) {
            Ok(_) => String::new(),
            Err(e) => e,
        };
        assert!(error(8.0, 12.0, 2, f64::NAN).contains("sample_rate"));
        assert!(error(12.0, 8.0, 2, 1000.0).contains("low_hz"));
        assert!(error(8.0, 12.0, 0, 1000.0).contains("sections"));
        assert!(check_predict("x", f64::NAN)
            .unwrap_err()
            .contains("predict_samples"));
        assert_eq!(sanitize(f64::NAN), 0.0);
        assert_eq!(sanitize(f64::NEG_INFINITY), 0.0);
        // Beyond MAX_INPUT a sample is as unusable as a non-finite one.
        assert_eq!(sanitize(1e300), 0.0);
        assert_eq!(sanitize(-2e12), 0.0);
        assert_eq!(sanitize(-1e12), -1e12);
    }
}
