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

/// The commands a user types (`entrain run --realtime --commands`), for the errors.
pub const COMMAND_SYNTAX: &str =
    "`stop`, `start`, `phase DEG` (target phase, degrees) or `amplitude A` (stimulus units)";

impl std::str::FromStr for StimCommand {
    type Err = String;

    /// A command as typed: `stop`, `start`, `phase DEG`, `amplitude A` (case-insensitive,
    /// surrounding spaces ignored).
    fn from_str(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let word = words.next().unwrap_or("").to_ascii_lowercase();
        let value = words.next();
        if let Some(extra) = words.next() {
            return Err(format!(
                "'{line}': unexpected '{extra}'; commands are {COMMAND_SYNTAX}"
            ));
        }
        let number = |what: &str| -> Result<f64, String> {
            let v =
                value.ok_or_else(|| format!("'{line}': {word} needs {what}, e.g. `{word} 90`"))?;
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(format!(
                    "'{line}': expected {what} after '{word}', got '{v}'"
                )),
            }
        };
        let command = match word.as_str() {
            "stop" => StimCommand::Stop,
            "start" => StimCommand::Start,
            "phase" => match number("a phase in degrees")? {
                deg if deg.abs() <= 360.0 => StimCommand::SetTargetPhaseDeg(deg),
                deg => {
                    return Err(format!(
                        "'{line}': a phase is within ±360 degrees, got {deg}"
                    ))
                }
            },
            "amplitude" => StimCommand::SetAmplitude(number("an amplitude in stimulus units")?),
            _ => {
                return Err(format!(
                    "'{line}' is not a command; commands are {COMMAND_SYNTAX}"
                ))
            }
        };
        if matches!(command, StimCommand::Stop | StimCommand::Start) {
            if let Some(v) = value {
                return Err(format!("'{line}': {word} takes no value, got '{v}'"));
            }
        }
        Ok(command)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_commands_parse_and_mistakes_say_what_is_expected() {
        let ok = |line: &str| line.parse::<StimCommand>().unwrap();
        assert_eq!(ok("stop"), StimCommand::Stop);
        assert_eq!(ok("  Start "), StimCommand::Start);
        assert_eq!(ok("phase -90"), StimCommand::SetTargetPhaseDeg(-90.0));
        assert_eq!(ok("phase 360"), StimCommand::SetTargetPhaseDeg(360.0));
        assert_eq!(ok("AMPLITUDE 0.25"), StimCommand::SetAmplitude(0.25));
        for (line, says) in [
            ("pause", "not a command"),
            ("phase", "needs a phase"),
            ("phase ninety", "got 'ninety'"),
            ("amplitude inf", "got 'inf'"),
            ("stop now", "takes no value"),
            ("phase 90 deg", "unexpected 'deg'"),
            ("phase 1e308", "within ±360"),
        ] {
            let e = line.parse::<StimCommand>().unwrap_err();
            assert!(e.contains(says) && e.contains(line), "{line}: {e}");
        }
    }
}
