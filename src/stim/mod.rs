//! Stimulation: policies that decide when and what to stimulate, and the safety limiter.
//!
//! Owns: the [`Policy`] trait, the policies ([`PhaseLockedPulses`], [`PeriodicPulses`],
//! [`TacsSine`], [`Sham`]), pulse shapes, and the [`Limiter`] that is the last stage before every
//! output and before the forcing into the plant.
//! May call: [`crate::estimate`] (reads [`Estimate`]s). No I/O, no threads; the per-sample path
//! never allocates.

use crate::estimate::Estimate;

mod limiter;
mod policies;

pub use limiter::{Limited, Limiter, SafetyLimits};
pub use policies::{
    PeriodicConfig, PeriodicPulses, PhaseLockedConfig, PhaseLockedPulses, PulseShape, Sham,
    TacsConfig, TacsSine,
};

/// Slack, in samples, when converting a time to whole samples, so that e.g.
/// 0.1 s · 48 kHz = 4800.000000000001 still means 4800 samples.
const SAMPLE_ROUNDING_SLACK: f64 = 1e-9;

/// One sample of a policy's requested waveform, before the limiter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StimSample {
    /// Requested output, in stimulus units (the same units as `SafetyLimits::max_amplitude`).
    pub value: f64,
    /// True on the first sample of a pulse (a stimulation event).
    pub onset: bool,
    /// The policy's own stimulation clock phase, rad (tACS phase, pulse-train phase), or NaN if
    /// the policy has no clock (phase-locked pulses).
    pub clock_phase_rad: f64,
}

/// A runtime command for the stimulator, sent from the control half and applied at a block
/// boundary. Values outside the safety limits are clamped by the limiter, never obeyed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StimCommand {
    /// Change the phase-locked target phase, degrees.
    SetTargetPhaseDeg(f64),
    /// Change the pulse / sine amplitude, stimulus units.
    SetAmplitude(f64),
    /// Ramp the output down to zero and stop stimulating (until `Start`).
    Stop,
    /// Ramp the output back up and resume stimulating.
    Start,
}

/// A stimulation policy: per sample, it reads the estimate and requests a waveform sample.
pub trait Policy: Send {
    /// Request the waveform for `sample`, counted from the start of stimulation (the policy's
    /// own clock starts there: a periodic train's first pulse, a tACS sine's `phase_deg`), given
    /// the current estimate.
    fn next(&mut self, sample: u64, estimate: &Estimate) -> StimSample;
    /// Apply a runtime command (real-time safe). Commands that do not apply are ignored.
    fn apply(&mut self, command: &StimCommand);
    /// The target phase of phase-locked policies, rad; `None` for others.
    fn target_phase_rad(&self) -> Option<f64>;
    /// For pulse policies, the most non-zero samples one pulse can have from its onset (every
    /// phase); `None` for policies without pulses. The engine declares it to the [`Limiter`]
    /// (see [`Limiter::declare_pulse_samples`]), which reserves duty budget for a whole pulse and
    /// its charge recovery before accepting an onset.
    fn pulse_samples(&self) -> Option<u64>;
    /// Return to the freshly built state without allocating.
    fn reset(&mut self);
}
