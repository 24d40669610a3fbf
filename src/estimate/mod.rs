//! Causal estimators of a rhythm's instantaneous phase, amplitude and frequency.
//!
//! Owns: the [`PhaseEstimator`] trait every estimator implements and the estimators themselves.
//! May call: [`crate::analysis`] (pure maths). Estimators do no I/O and start no threads; they are
//! built with everything they need (sample rate, prediction horizon) and their per-sample path
//! never allocates.
//!
//! Phase convention (see MODELS.md): a signal `x ≈ A cos φ`; peak = 0, falling zero crossing =
//! +π/2, trough = ±π, rising zero crossing = −π/2; phases are wrapped to (−π, π].

mod ar_burg;
mod band;
mod bandpass_hilbert;
mod echt;
mod etp;
mod kalman;
mod pll;

pub use ar_burg::{ArBurg, ArBurgConfig};
pub use bandpass_hilbert::{BandpassHilbert, BandpassHilbertConfig};
pub use echt::{Echt, EchtConfig};
pub use etp::{Etp, EtpConfig};
pub use kalman::{KalmanConfig, KalmanOscillator, OscillatorParams, MAX_OSCILLATORS};
pub use pll::{Pll, PllConfig};

/// What an estimator knows about the rhythm after consuming one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Instantaneous phase at the current sample, rad, wrapped to (−π, π].
    pub phase_rad: f64,
    /// Phase predicted `predict_samples` ahead (the declared loop latency), rad, wrapped.
    pub predicted_phase_rad: f64,
    /// Instantaneous amplitude of the rhythm, in the input's units (peak, not RMS).
    pub amplitude: f64,
    /// Instantaneous frequency, Hz.
    pub freq_hz: f64,
    /// How far to trust this estimate, in [0, 1] (0 = no information, 1 = certain); each
    /// estimator's doc says what it measures (band-power fraction, posterior certainty, …).
    pub confidence: f64,
}

/// The largest input magnitude an estimator takes; beyond it a sample is treated like a
/// non-finite one (as 0). No recording or model gives such values (a 32-bit ADC counts to
/// 2.1e9), and one sample of 1e30 had filled the filters for the rest of a record (clamped at
/// 1e100 before, its ring-down spanned a hundred decades).
pub const MAX_INPUT: f64 = 1e12;

/// Whether an estimator takes `x` as it is: finite and within ±[`MAX_INPUT`].
pub fn usable_input(x: f64) -> bool {
    x.abs() <= MAX_INPUT
}

/// A causal, sample-by-sample phase estimator.
///
/// Built once (allocation allowed), then `process` is called for every input sample from the
/// real-time thread: it must not allocate, lock or block, and must stay finite whatever it is fed
/// (NaN/Inf inputs, and any beyond ±[`MAX_INPUT`], are treated as 0 and the state recovers).
pub trait PhaseEstimator: Send {
    /// Consume one input sample and report the estimate at this sample.
    fn process(&mut self, x: f64) -> Estimate;
    /// Return to the freshly built state without allocating.
    fn reset(&mut self);
    /// Samples after which, on a clean in-band sinusoid, the phase error is below 2°.
    fn settling_samples(&self) -> usize;
}
