//! Endpoint-corrected Hilbert transform (ecHT) with an analytic endpoint calibration.
//!
//! Method (Schreglmann et al. 2021, "Non-invasive suppression of essential tremor via
//! phase-locked disruption of its temporal coherence", Nature Communications 12:363): on the last
//! `window_s` seconds of input, FFT → zero the negative frequencies and double the positive ones
//! (the analytic signal) → multiply by the frequency response of a *causal* band-pass, evaluated
//! on the FFT bins → inverse FFT → the angle and magnitude of the **last** sample are the phase
//! and amplitude. The causal filter pushes the Hilbert transform's edge artefact away from the
//! newest sample (its ringing runs forward from the start of the window). The paper's filter is
//! a 2nd-order Butterworth band-pass (MATLAB `butter(2, [low high]/(fs/2), 'bandpass')`, i.e.
//! four poles); `filter_order` here is the same prototype order `n` (2n poles).
//!
//! Implementation: every step is linear and fixed, so the last output sample is an inner product
//! of the window with one complex kernel `g` (`z = Σ g[n]·x[n]`). `g` is built once with an FFT
//! from the filter's response on the bins, `g[N−1−m] = Σ_k c_k e^{2πikm/N}`,
//! `c_k = 2·H(e^{2πik/N})/N` for `0 < k < N/2` and 0 for DC, Nyquist and the negative bins; the
//! result equals the FFT → mask → IFFT pipeline's last sample to rounding (checked in the tests)
//! at O(N) instead of O(N log N) per update and without FFT scratch on the real-time path.
//!
//! Frequency: the same Butterworth band-pass runs causally on the stream; over the window the
//! least-squares second-difference estimate `cos ω̂ = Σ y[n−1]·(y[n] + y[n−2]) / Σ 2y[n−1]²`
//! (exact for any sinusoid, no ripple) gives ω̂, clamped to the band.
//!
//! Calibration (`calibrate = true`): the ecHT's response to `A cos(ωn + φ₀)` at the last sample is
//! `z = α(ω)·w + β(ω)·w̄`, where `w = A e^{iθ}` is the true analytic value at that sample
//! (`θ = ω(N−1) + φ₀`), `α(ω) = ½ e^{−iω(N−1)} Σ g[n] e^{iωn}` is the method's complex gain on
//! the positive frequency (its phase is the residual lag: the band-pass's phase at ω plus the
//! endpoint distortion; Osmers & Kolossa 2026, arXiv:2601.13962, call it the calibratable gain) and
//! `β(ω) = ½ e^{iω(N−1)} Σ g[n] e^{−iωn}` the leakage of the negative frequency (the ripple
//! that depends on θ). Both are computed exactly at ω̂ from the kernel on every update and the
//! 2×2 real-linear system is inverted: `w = (ᾱ z − β z̄) / (|α|² − |β|²)`. For a sinusoid at ω̂
//! this is exact (bias and ripple both vanish); with ω̂ off by δω the residual is about
//! `δω × group delay` (≈ 0.1 s for a 4 Hz wide order-2 band: 0.4° per 0.01 Hz). When the system
//! is ill-conditioned (|β| near |α|, which happens only for windows shorter than the band-pass's
//! impulse response) only α is divided out. Without calibration the output is the paper's ecHT
//! (phase `arg z`, amplitude `|z|`).
//!
//! Parameters and units: see [`EchtConfig`]. Real-time cost: every `hop_samples` samples one
//! update makes exactly two passes over the `N = round(window_s·fs)` window (the frequency
//! statistics; then `z`, `α`, `β`, ≈ 3 complex multiply-adds per sample); other calls cost
//! O(filter_order). [`Echt::work_bound`] states the per-call maximum in window-sample iterations
//! and [`Echt::last_call_work`] reports each call's count. Between updates the phase advances by
//! ω̂ per sample. Memory: 16·N bytes of kernel and two N-sample rings, allocated at build.
//!
//! Settling: `N` samples plus the causal band-pass's ring-down (all but 1e-7 of its impulse
//! response energy) plus one hop: the frequency statistics then see no start-up transient and
//! the window is full. See [`PhaseEstimator::settling_samples`] for [`Echt`].
//!
//! Confidence: the band-power fraction of the window, `Σ y² / (|H(ω̂)|² Σ x²)` over the window
//! (causal band-passed over raw power, the band-pass's own gain at ω̂ divided out so that a pure
//! tone anywhere in the band scores 1; clamped to [0, 1]): about the band's share of the
//! bandwidth for white noise, near 0 when out-of-band power (including a DC offset) dominates.

use super::{Estimate, PhaseEstimator};
use crate::analysis::wrap_angle;
use biquad::{Biquad, Coefficients, DirectForm2Transposed};
use num_complex::Complex64;
use rustfft::FftPlanner;
use std::f64::consts::{PI, TAU};

/// Highest Butterworth prototype order accepted.
const MAX_FILTER_ORDER: usize = 8;
/// Largest window accepted, samples (the kernel takes 16 bytes per sample).
const MAX_WINDOW_SAMPLES: usize = 1 << 24;
/// Impulse-response energy of the causal band-pass still to come when the frequency statistics
/// may start (residual amplitude ≈ 3·10⁻⁴).
const SETTLED_ENERGY: f64 = 1e-7;
/// The image term is inverted only while the 2×2 system is well conditioned,
/// `||α|² − |β|²| ≥ this × (|α|² + |β|²)` (|β| ≤ 0.58|α| or ≥ 1.73|α|); otherwise only the gain
/// `α` is divided out. |β| stays below 0.15|α| for the recommended settings (1–80 Hz bands,
/// checked in the tests) but approaches and can exceed |α| when the window is shorter than the
/// band-pass's impulse response (measured: 0.96 for 1–1.5 Hz, order 4, a 2 s window; 34 for
/// order 8).
const WELL_CONDITIONED: f64 = 0.5;

/// Configuration of an [`Echt`] estimator.
#[derive(Clone, Debug, PartialEq)]
pub struct EchtConfig {
    /// Lower −3 dB edge of the Butterworth band-pass, Hz; also the lowest frequency reported.
    pub low_hz: f64,
    /// Upper −3 dB edge of the Butterworth band-pass, Hz; also the highest frequency reported.
    pub high_hz: f64,
    /// Length of the analysed window, s; at least one period of `low_hz`. The paper's simulations
    /// used 1 s at 256 Hz. Longer windows steady the frequency estimate and shrink the
    /// endpoint leakage but cost more per update and settle later.
    pub window_s: f64,
    /// Samples between window updates, 1..=window length; the phase advances by ω̂ per sample in
    /// between. Each update costs O(window samples), so the average cost per sample is about
    /// `3·window / hop_samples` complex multiply-adds.
    pub hop_samples: usize,
    /// Remove the endpoint bias and ripple at the estimated frequency (see the module doc);
    /// `false` gives the paper's uncalibrated ecHT.
    pub calibrate: bool,
    /// Butterworth prototype order n, 1..=8 (2n poles, MATLAB's `butter(n, …, 'bandpass')`); the
    /// paper uses 2.
    pub filter_order: usize,
}

impl EchtConfig {
    /// Recommended settings for the band `[low_hz, high_hz]` (Hz) at `sample_rate` (Hz):
    /// `window_s` = max(1 s, 4 periods of `low_hz`), `hop_samples` = 10 ms of samples (at least
    /// 1), `calibrate` = true, `filter_order` = 2. At 48 kHz with 8–12 Hz that is 48 000-sample
    /// windows updated every 480 samples (≈ 300 complex multiply-adds per sample on average).
    pub fn with_band(low_hz: f64, high_hz: f64, sample_rate: f64) -> Self {
        Self {
            low_hz,
            high_hz,
            window_s: (4.0 / low_hz).max(1.0),
            hop_samples: ((0.01 * sample_rate).round() as usize).max(1),
            calibrate: true,
            filter_order: 2,
        }
    }
}

/// Causal phase, amplitude and frequency estimator: the endpoint-corrected Hilbert transform of
/// the last `window_s` seconds, updated every `hop_samples` samples, optionally calibrated.
/// See the module documentation for the method, its cost and its settling time.
pub struct Echt {
    /// Endpoint kernel `g`, oldest window sample first.
    kernel: Vec<Complex64>,
    /// The band-pass's design (for its gain at ω̂) and its causal sections, which feed the
    /// frequency statistics and the confidence.
    filter: Butterworth,
    cascade: Vec<DirectForm2Transposed<f64>>,
    /// Raw and band-passed input rings, `window` long; `head` is the next slot to write, so the
    /// oldest sample is at `head`.
    x_ring: Vec<f64>,
    y_ring: Vec<f64>,
    head: usize,
    /// Calls until the next window update (0 = this call updates).
    countdown: usize,
    hop: usize,
    calibrate: bool,
    omega_low: f64,
    omega_high: f64,
    omega_centre: f64,
    predict_samples: f64,
    sample_rate: f64,
    settling_samples: usize,
    /// Latest estimate: phase (advanced every sample), ω̂ (rad/sample), amplitude, confidence.
    phase: f64,
    omega: f64,
    amplitude: f64,
    confidence: f64,
    last_call_work: usize,
}

impl Echt {
    /// Builds the estimator for input sampled at `sample_rate` (Hz), predicting
    /// `predict_samples` (samples, ≥ 0, fractional allowed: the declared loop latency) ahead.
    ///
    /// The band-pass is the bilinear transform of the analog Butterworth band-pass, pre-warped so
    /// that its −3 dB points are exactly `low_hz` and `high_hz` and its centre (unit gain, zero
    /// phase) is their warped geometric mean. Building costs one FFT of the window and a
    /// simulation of the filter's impulse response (to find the settling time).
    pub fn new(
        config: &EchtConfig,
        sample_rate: f64,
        predict_samples: f64,
    ) -> Result<Self, String> {
        let EchtConfig {
            low_hz,
            high_hz,
            window_s,
            hop_samples,
            calibrate,
            filter_order,
        } = *config;
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            return Err(format!(
                "echt: sample_rate = {sample_rate} Hz; it must be finite and > 0"
            ));
        }
        let nyquist = 0.5 * sample_rate;
        if !(low_hz > 0.0 && low_hz < high_hz && high_hz < nyquist) {
            return Err(format!(
                "echt: low_hz = {low_hz}, high_hz = {high_hz}; the band must satisfy \
                 0 < low_hz < high_hz < Nyquist ({nyquist} Hz)"
            ));
        }
        if !(window_s.is_finite() && window_s * low_hz >= 1.0) {
            return Err(format!(
                "echt: window_s = {window_s} s; it must be finite and hold at least one period \
                 of low_hz (≥ {} s)",
                1.0 / low_hz
            ));
        }
        let window = (window_s * sample_rate).round();
        if window > MAX_WINDOW_SAMPLES as f64 {
            return Err(format!(
                "echt: window_s = {window_s} s is {window} samples at {sample_rate} Hz; at most \
                 {MAX_WINDOW_SAMPLES} are allowed"
            ));
        }
        let window = window as usize;
        if !(1..=window).contains(&hop_samples) {
            return Err(format!(
                "echt: hop_samples = {hop_samples}; use 1 to the window length ({window} samples)"
            ));
        }
        if !(1..=MAX_FILTER_ORDER).contains(&filter_order) {
            return Err(format!(
                "echt: filter_order = {filter_order}; use 1 to {MAX_FILTER_ORDER} (the paper uses 2)"
            ));
        }
        if !(predict_samples.is_finite() && predict_samples >= 0.0) {
            return Err(format!(
                "echt: predict_samples = {predict_samples}; it must be finite and ≥ 0 (the loop \
                 latency in samples)"
            ));
        }

        let filter = Butterworth::new(low_hz, high_hz, sample_rate, filter_order);
        let kernel = endpoint_kernel(&filter, window);
        let sections = filter.sections();
        let ring_down = ring_down_samples(&sections, (sample_rate / low_hz).ceil() as usize);
        let omega_centre = 2.0 * filter.centre.atan();
        Ok(Self {
            filter,
            kernel,
            cascade: sections
                .iter()
                .map(|&c| DirectForm2Transposed::<f64>::new(c))
                .collect(),
            x_ring: vec![0.0; window],
            y_ring: vec![0.0; window],
            head: 0,
            countdown: 0,
            hop: hop_samples,
            calibrate,
            omega_low: TAU * low_hz / sample_rate,
            omega_high: TAU * high_hz / sample_rate,
            omega_centre,
            predict_samples,
            sample_rate,
            settling_samples: ring_down + window + hop_samples,
            phase: 0.0,
            omega: omega_centre,
            amplitude: 0.0,
            confidence: 0.0,
            last_call_work: 0,
        })
    }

    /// Window-sample iterations done by the last [`PhaseEstimator::process`] call: 0 between
    /// updates, `2 × window` at an update (each iteration is at most three complex
    /// multiply-adds). A diagnostic for the real-time cost bound.
    pub fn last_call_work(&self) -> usize {
        self.last_call_work
    }

    /// Most window-sample iterations any single `process` call does: `2 × window samples`.
    pub fn work_bound(&self) -> usize {
        2 * self.x_ring.len()
    }

    /// Recomputes ω̂, the confidence and the calibrated endpoint value from the window.
    fn update(&mut self) {
        let n = self.x_ring.len();
        let (older, newer) = self.y_ring.split_at(self.head);
        let mut y = newer.iter().chain(older.iter()).copied();
        // Pass 1: frequency statistics and powers over the band-passed window.
        let (mut num, mut den, mut band_power) = (0.0, 0.0, 0.0);
        let (mut y2, mut y1) = (0.0, 0.0);
        for (k, v) in y.by_ref().enumerate() {
            if k >= 2 {
                num += y1 * (v + y2);
                den += 2.0 * y1 * y1;
            }
            band_power += v * v;
            y2 = y1;
            y1 = v;
        }
        let cos_omega = num / den;
        self.omega = if cos_omega.is_finite() {
            cos_omega.clamp(-1.0, 1.0).acos()
        } else {
            self.omega_centre
        }
        .clamp(self.omega_low, self.omega_high);

        // Pass 2: endpoint value z and, at ω̂, the gains α and β (phasor p = e^{iω̂k}).
        let (older, newer) = self.x_ring.split_at(self.head);
        let x = newer.iter().chain(older.iter());
        let step = Complex64::from_polar(1.0, self.omega);
        let mut p = Complex64::new(1.0, 0.0);
        let (mut z, mut fwd, mut back) = (
            Complex64::default(),
            Complex64::default(),
            Complex64::default(),
        );
        let mut input_power = 0.0;
        for (&g, &v) in self.kernel.iter().zip(x) {
            z += g * v;
            fwd += g * p;
            back += g * p.conj();
            input_power += v * v;
            p *= step;
        }
        self.last_call_work = 2 * n;
        let expected = input_power * self.filter.response(self.omega).norm_sqr();
        self.confidence = if expected > 0.0 {
            (band_power / expected).min(1.0)
        } else {
            0.0
        };
        let end = Complex64::from_polar(1.0, self.omega * (n - 1) as f64);
        let alpha = 0.5 * fwd * end.conj();
        let beta = 0.5 * back * end;
        let w = if !self.calibrate {
            z
        } else if (alpha.norm_sqr() - beta.norm_sqr()).abs()
            >= WELL_CONDITIONED * (alpha.norm_sqr() + beta.norm_sqr())
        {
            (alpha.conj() * z - beta * z.conj()) / (alpha.norm_sqr() - beta.norm_sqr())
        } else {
            z / alpha
        };
        if w.re.is_finite() && w.im.is_finite() {
            self.phase = w.arg();
            self.amplitude = w.norm();
        } else {
            self.phase = 0.0;
            self.amplitude = 0.0;
        }
    }
}

impl PhaseEstimator for Echt {
    fn process(&mut self, x: f64) -> Estimate {
        let x = super::band::sanitize(x);
        let y = self.cascade.iter_mut().fold(x, |v, s| s.run(v));
        self.x_ring[self.head] = x;
        self.y_ring[self.head] = if y.is_finite() { y } else { 0.0 };
        self.head = (self.head + 1) % self.x_ring.len();
        if self.countdown == 0 {
            self.update();
            self.countdown = self.hop;
        } else {
            self.phase = wrap_angle(self.phase + self.omega);
            self.last_call_work = 0;
        }
        self.countdown -= 1;
        Estimate {
            phase_rad: wrap_angle(self.phase),
            predicted_phase_rad: wrap_angle(self.phase + self.omega * self.predict_samples),
            amplitude: self.amplitude,
            freq_hz: self.omega * self.sample_rate / TAU,
            confidence: self.confidence,
        }
    }

    fn reset(&mut self) {
        self.cascade.iter_mut().for_each(|s| s.reset_state());
        self.x_ring.fill(0.0);
        self.y_ring.fill(0.0);
        self.head = 0;
        self.countdown = 0;
        self.phase = 0.0;
        self.omega = self.omega_centre;
        self.amplitude = 0.0;
        self.confidence = 0.0;
        self.last_call_work = 0;
    }

    /// Window length + the band-pass's ring-down to 1e-7 of its impulse-response energy + one
    /// hop. Checked (calibrated) on clean tones inside the band, start phases, orders 1–4 and
    /// hops in the tests: settled after 0.45–0.88 of it. Without calibration the error off the
    /// band centre never falls below 2° (the band-pass's own phase at the tone is not removed),
    /// so there this is only when the window and frequency statistics have settled.
    fn settling_samples(&self) -> usize {
        self.settling_samples
    }
}

/// Digital Butterworth band-pass, described by its bilinear-warped analog prototype.
struct Butterworth {
    /// Warped bandwidth `tan(π high/fs) − tan(π low/fs)` and centre `sqrt(tan·tan)`.
    bandwidth: f64,
    centre: f64,
    /// Low-pass prototype poles (left half-plane, unit circle).
    poles: Vec<Complex64>,
}

impl Butterworth {
    fn new(low_hz: f64, high_hz: f64, sample_rate: f64, order: usize) -> Self {
        let k_low = (PI * low_hz / sample_rate).tan();
        let k_high = (PI * high_hz / sample_rate).tan();
        let poles = (1..=order)
            .map(|k| {
                let angle = PI * (2 * k + order - 1) as f64 / (2 * order) as f64;
                Complex64::from_polar(1.0, angle)
            })
            .collect();
        Self {
            bandwidth: k_high - k_low,
            centre: (k_low * k_high).sqrt(),
            poles,
        }
    }

    /// Complex response at `omega` (rad/sample, in (0, π)): the analog band-pass
    /// `Π B s / (s² − p B s + Ω₀²)` at `s = i tan(ω/2)`, which is what the bilinear transform
    /// gives on the unit circle.
    fn response(&self, omega: f64) -> Complex64 {
        let s = Complex64::new(0.0, (0.5 * omega).tan());
        let b = self.bandwidth;
        let w2 = self.centre * self.centre;
        self.poles
            .iter()
            .map(|&p| b * s / (s * s - p * b * s + w2))
            .product()
    }

    /// Real second-order sections (one per band-pass pole pair, each `B s / (s² + a₁s + a₀)`)
    /// after the bilinear transform `s = (1 − z⁻¹)/(1 + z⁻¹)`.
    fn sections(&self) -> Vec<Coefficients<f64>> {
        let b = self.bandwidth;
        let w2 = self.centre * self.centre;
        let mut quadratics = Vec::new();
        for &p in &self.poles {
            if p.im.abs() < 1e-12 {
                // Real prototype pole: its two band-pass poles share one real quadratic.
                quadratics.push((-p.re * b, w2));
            } else if p.im > 0.0 {
                // Roots of s² − pBs + Ω₀²; the conjugate prototype pole gives their conjugates.
                let disc = (p * p * b * b - 4.0 * w2).sqrt();
                for r in [0.5 * (p * b + disc), 0.5 * (p * b - disc)] {
                    quadratics.push((-2.0 * r.re, r.norm_sqr()));
                }
            }
        }
        quadratics
            .into_iter()
            .map(|(a1, a0)| {
                let d = 1.0 + a1 + a0;
                Coefficients {
                    a1: (2.0 * a0 - 2.0) / d,
                    a2: (1.0 - a1 + a0) / d,
                    b0: b / d,
                    b1: 0.0,
                    b2: -b / d,
                }
            })
            .collect()
    }
}

/// The complex kernel `g` (oldest sample first) whose inner product with a window equals the
/// last sample of IFFT(mask · H · FFT(window)) for the ecHT mask (×2 on positive bins, 0 on DC,
/// Nyquist and negative bins).
fn endpoint_kernel(filter: &Butterworth, n: usize) -> Vec<Complex64> {
    let mut buf = vec![Complex64::default(); n];
    for (k, slot) in buf.iter_mut().enumerate().take(n.div_ceil(2)).skip(1) {
        *slot = filter.response(TAU * k as f64 / n as f64) * (2.0 / n as f64);
    }
    FftPlanner::<f64>::new()
        .plan_fft_inverse(n)
        .process(&mut buf);
    buf.reverse();
    buf
}

/// Samples until the impulse response of the cascade has delivered all but `SETTLED_ENERGY` of
/// its energy. Simulated in blocks of `block` samples until a block adds under 1e-15 of the
/// energy so far (to get the total), then again to find the crossing.
fn ring_down_samples(sections: &[Coefficients<f64>], block: usize) -> usize {
    let fresh = || -> Vec<DirectForm2Transposed<f64>> {
        sections
            .iter()
            .map(|&c| DirectForm2Transposed::<f64>::new(c))
            .collect()
    };
    let energy = |cascade: &mut [DirectForm2Transposed<f64>], k: usize| {
        let y = cascade
            .iter_mut()
            .fold(if k == 0 { 1.0 } else { 0.0 }, |v, s| s.run(v));
        y * y
    };
    let mut cascade = fresh();
    let (mut total, mut k) = (0.0, 0);
    loop {
        let before = total;
        for _ in 0..block {
            total += energy(&mut cascade, k);
            k += 1;
        }
        if total - before <= 1e-15 * total {
            break;
        }
    }
    let mut cascade = fresh();
    let (mut so_far, mut k) = (0.0, 0);
    while so_far < (1.0 - SETTLED_ENERGY) * total {
        so_far += energy(&mut cascade, k);
        k += 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn butterworth_edges_centre_and_sections_agree() {
        for (fs, low, high, order) in [
            (256.0, 1.5, 3.5, 2),
            (1000.0, 8.0, 12.0, 3),
            (48_000.0, 8.0, 12.0, 2),
        ] {
            let f = Butterworth::new(low, high, fs, order);
            for edge in [low, high] {
                let g = f.response(TAU * edge / fs).norm();
                assert!((g - 0.5f64.sqrt()).abs() < 1e-9, "{fs} {order}: {g}");
            }
            let centre = f.response(2.0 * f.centre.atan());
            assert!((centre - 1.0).norm() < 1e-9, "{centre}");
            // The cascaded sections must have the same response as the analog formula.
            for omega in [0.3, 1.0, 1.7].map(|r| r * TAU * low / fs) {
                let z1 = Complex64::from_polar(1.0, -omega);
                let h: Complex64 = f
                    .sections()
                    .iter()
                    .map(|c| {
                        (c.b0 + c.b1 * z1 + c.b2 * z1 * z1) / (1.0 + c.a1 * z1 + c.a2 * z1 * z1)
                    })
                    .product();
                assert!(
                    (h - f.response(omega)).norm() < 1e-9,
                    "{h} vs {}",
                    f.response(omega)
                );
            }
        }
    }

    #[test]
    fn kernel_equals_the_fft_pipeline() {
        // The paper's steps done literally on a random window: FFT, mask, filter response,
        // inverse FFT, last sample.
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        for (n, fs) in [(256, 256.0), (255, 256.0), (1000, 1000.0)] {
            let filter = Butterworth::new(2.0, 6.0, fs, 2);
            let kernel = endpoint_kernel(&filter, n);
            let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
            let mut buf: Vec<Complex64> = x.iter().map(|&v| v.into()).collect();
            let mut planner = FftPlanner::<f64>::new();
            planner.plan_fft_forward(n).process(&mut buf);
            for (k, bin) in buf.iter_mut().enumerate() {
                let positive = k > 0 && 2 * k < n;
                // The mask's weight 1 on DC and Nyquist meets a band-pass response of 0 there.
                *bin *= if positive {
                    2.0 * filter.response(TAU * k as f64 / n as f64)
                } else {
                    Complex64::default()
                };
            }
            planner.plan_fft_inverse(n).process(&mut buf);
            let expected = buf[n - 1] / n as f64;
            let got: Complex64 = kernel.iter().zip(&x).map(|(g, v)| g * v).sum();
            assert!((got - expected).norm() < 1e-12, "{n}: {got} vs {expected}");
        }
    }

    #[test]
    fn image_term_is_small_for_recommended_settings() {
        // |β|/|α| across each band for the recommended window and order (the claim in the
        // WELL_CONDITIONED doc). Measured: at most 0.12.
        let fs = 1000.0;
        let mut worst = 0.0_f64;
        for (low, high) in [
            (1.0, 4.0),
            (4.0, 8.0),
            (8.0, 12.0),
            (13.0, 30.0),
            (30.0, 80.0),
        ] {
            let config = EchtConfig::with_band(low, high, fs);
            let n = (config.window_s * fs).round() as usize;
            let kernel = endpoint_kernel(&Butterworth::new(low, high, fs, config.filter_order), n);
            for j in 0..=20 {
                let omega = TAU * (low + (high - low) * j as f64 / 20.0) / fs;
                let (mut fwd, mut back) = (Complex64::default(), Complex64::default());
                for (k, g) in kernel.iter().enumerate() {
                    let p = Complex64::from_polar(1.0, omega * k as f64);
                    fwd += g * p;
                    back += g * p.conj();
                }
                worst = worst.max(back.norm() / fwd.norm());
            }
        }
        assert!(worst < 0.15, "{worst}");
    }
}
