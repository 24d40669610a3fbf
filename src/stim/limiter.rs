//! The safety limiter: the last stage before every output and before the forcing into the plant.
//!
//! Whatever a policy requests, the limiter's output obeys the profile's [`SafetyLimits`]:
//!
//! - **Non-finite input** is treated as 0.
//! - **Peak**: `|value| ≤ max_amplitude` on every sample, charge recovery included.
//! - **Pulse episodes**: an episode's request runs from a requested onset until the requested
//!   value returns to exactly 0 (or a non-finite value), or until the next requested onset.
//!   Whole episodes are accepted or rejected at the onset. An onset is rejected when it comes
//!   less than `1/max_pulse_rate_hz` (rounded up to whole samples) after the last accepted onset,
//!   while an accepted episode or its charge recovery is still running, while stopping or
//!   stopped, or when the episode would not fit the duty budget (below); it is reported with
//!   `suppressed`. A rejected episode is blanked (output 0) until its request returns to 0,
//!   whatever the limiter does meanwhile: a rejected pulse whose onset came during a charge
//!   recovery stays blanked after the recovery ends, and a rejected onset during an accepted
//!   episode ends that episode's request (its recovery, if owed, follows) and blanks the new one.
//!   Pulse shapes with an interphase gap are therefore not supported: the gap ends the episode.
//!   Values requested without an onset (and outside a blanked episode) are a free-running
//!   waveform, such as tACS: they pass (ramped, peak-limited, under the duty backstop).
//! - **Duty cycle**, in two layers. The budget is `floor(max_duty_cycle · W)` non-zero output
//!   samples in every window of `W = round(duty_window_s · fs)` consecutive samples.
//!   *Admission*: an onset is accepted only if a *reservation* of `E` consecutive non-zero
//!   samples from the onset on fits the budget in every window it will overlap, given the output
//!   history. `E` is the larger of the declared episode bound (see
//!   [`Limiter::declare_pulse_samples`]: `P` non-zero samples per pulse, plus `P` recovery samples
//!   if charge balance is on, since a recovery at the episode's peak never needs more samples
//!   than the episode delivered) and the longest accepted episode so far (its non-zero samples,
//!   recovery included); 1 if neither is known yet. An episode within its reservation is
//!   therefore never truncated and its recovery never deferred; a pulse whose reservation
//!   exceeds the budget is never accepted. *Backstop*: any sample that would exceed the budget —
//!   free-running waveforms, or an episode longer than its reservation (an undeclared or
//!   misdeclared pulse) — is blanked. The budget is therefore never exceeded, with zero
//!   tolerance.
//! - **Charge balance** (if enabled): the net charge `Σ value` (stimulus units · samples; divide
//!   by fs for units · seconds) of each accepted episode's output is tracked. If, when the
//!   episode's request ends (it returns to 0, a rejected onset interrupts it, or the ramp-down
//!   closes the envelope), `|Σ value| > 1e-9 · max_amplitude`, an opposite-polarity recovery
//!   phase follows at once, at the episode's peak amplitude (≤ max_amplitude), its last sample
//!   partial, until the net charge is back within that tolerance (in practice exactly 0).
//!   Recovery samples count towards the duty budget, are not scaled by the ramp, and replace
//!   whatever the policy requests meanwhile. Once owed, a recovery is never abandoned: not by a
//!   stop, the closed envelope, onsets or blanked requests (only [`Limiter::reset`] drops it). The
//!   duty backstop can only delay it (then it resumes as soon as a window frees budget), and only
//!   for an episode longer than its reservation. Free-running waveforms are not charge balanced.
//! - **Ramp**: a raised-cosine envelope `½ − ½ cos(π k / R)`, `R = round(ramp_s · fs)`, multiplies
//!   the requested value; it rises from 0 to 1 over `R` samples after construction, `reset` and
//!   [`Limiter::start`], and falls to 0 over `R` samples after [`Limiter::stop`] (an accepted
//!   episode in progress goes on, ramped). Once it reaches 0 after a stop (the envelope is
//!   closed), an accepted episode still in progress is cut there (its recovery follows, the rest
//!   of its request is blanked even after a `start`), and the output is exactly 0, apart from
//!   charge recovery, until `start`. [`Limiter::is_silent`] is true once the envelope is closed
//!   and no recovery is owed.

use std::f64::consts::PI;

use super::{StimSample, SAMPLE_ROUNDING_SLACK};

/// Largest duty window, samples: its history costs one bit per sample (32 MiB here).
const MAX_WINDOW_SAMPLES: usize = 1 << 28;

/// Net episode charge, as a fraction of `max_amplitude` · 1 sample, below which no recovery is
/// needed.
const CHARGE_TOLERANCE: f64 = 1e-9;

/// Hard safety limits of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SafetyLimits {
    /// Peak |output|, stimulus units, > 0.
    pub max_amplitude: f64,
    /// Accepted onsets per second, Hz, > 0: an onset within `1/max_pulse_rate_hz` seconds of the
    /// last accepted onset is rejected.
    pub max_pulse_rate_hz: f64,
    /// Fraction of non-zero output samples allowed in any sliding window of `duty_window_s`,
    /// dimensionless, in (0, 1].
    pub max_duty_cycle: f64,
    /// Length of the duty-cycle window, seconds, > 0.
    pub duty_window_s: f64,
    /// Active charge recovery: after every accepted pulse episode the net charge returns to ~0.
    pub charge_balance: bool,
    /// Duration of the ramp-up at start and ramp-down on stop, seconds, ≥ 0.
    pub ramp_s: f64,
}

/// One output sample of the limiter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limited {
    /// The output, stimulus units; `|value| ≤ max_amplitude`.
    pub value: f64,
    /// True if a pulse onset was accepted on this sample.
    pub onset: bool,
    /// True if a requested onset was rejected on this sample.
    pub suppressed: bool,
}

/// Where the limiter is in a pulse episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Episode {
    /// No episode: requested values pass as a free-running waveform, unless `blanking`.
    Idle,
    /// An accepted episode: the policy's values pass until they return to 0.
    Accepted,
    /// Active charge recovery after an accepted episode.
    Recovery,
}

/// The safety limiter (see the module docs for the rules).
///
/// Built by the control half ([`Limiter::new`] allocates the duty-window history); every other
/// method is real-time safe and allocation-free.
#[derive(Clone, Debug)]
pub struct Limiter {
    limits: SafetyLimits,
    min_onset_gap: u64,
    window: usize,
    budget: usize,
    ramp_samples: u64,
    charge_tolerance: f64,
    /// One bit per sample of the last `window` outputs (set = non-zero), at `sample % window`.
    history: Vec<u64>,
    nonzero_in_history: usize,
    sample: u64,
    /// `sample % window`, kept as a counter that wraps (a 64-bit division per sample cost more
    /// than the rest of the limiter).
    slot: usize,
    running: bool,
    ramp_pos: u64,
    episode: Episode,
    /// The request in progress belongs to a rejected (or cut) episode: blanked until the
    /// requested value returns to 0, whatever `episode` does meanwhile.
    blanking: bool,
    last_onset: Option<u64>,
    /// Net charge of the current episode, stimulus units · samples.
    charge: f64,
    episode_peak: f64,
    episode_nonzero: u64,
    /// Non-zero samples reserved at admission: the larger of `declared_episode_len` and the
    /// longest accepted episode so far.
    expected_episode_len: u64,
    /// The bound declared with [`Limiter::declare_pulse_samples`] (1 if none); kept by `reset`.
    declared_episode_len: u64,
}

impl Limiter {
    /// Validate `limits` for `sample_rate` (Hz) and build the limiter, ramping up from 0.
    pub fn new(limits: &SafetyLimits, sample_rate: f64) -> Result<Self, String> {
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            return Err(format!(
                "sample_rate must be a finite number of Hz > 0 (got {sample_rate})"
            ));
        }
        if !(limits.max_amplitude.is_finite() && limits.max_amplitude > 0.0) {
            return Err(format!(
                "max_amplitude must be a finite number of stimulus units > 0 (got {})",
                limits.max_amplitude
            ));
        }
        if !(limits.max_pulse_rate_hz.is_finite() && limits.max_pulse_rate_hz > 0.0) {
            return Err(format!(
                "max_pulse_rate_hz must be a finite number of Hz > 0 (got {})",
                limits.max_pulse_rate_hz
            ));
        }
        if !(limits.max_duty_cycle > 0.0 && limits.max_duty_cycle <= 1.0) {
            return Err(format!(
                "max_duty_cycle must be in (0, 1] (got {})",
                limits.max_duty_cycle
            ));
        }
        let window_f = (limits.duty_window_s * sample_rate).round();
        if !(limits.duty_window_s > 0.0 && window_f >= 1.0 && window_f <= MAX_WINDOW_SAMPLES as f64)
        {
            return Err(format!(
                "duty_window_s must be at least one sample and at most {MAX_WINDOW_SAMPLES} \
                 samples ({} s at this sample rate) (got {} s)",
                MAX_WINDOW_SAMPLES as f64 / sample_rate,
                limits.duty_window_s
            ));
        }
        let window = window_f as usize;
        let budget = (limits.max_duty_cycle * window_f + SAMPLE_ROUNDING_SLACK).floor() as usize;
        if budget == 0 {
            return Err(format!(
                "max_duty_cycle · duty_window_s · sample_rate must allow at least one non-zero \
                 sample per window: raise max_duty_cycle or duty_window_s (got {} · {} s · {} Hz)",
                limits.max_duty_cycle, limits.duty_window_s, sample_rate
            ));
        }
        if !(limits.ramp_s.is_finite() && limits.ramp_s >= 0.0) {
            return Err(format!(
                "ramp_s must be a finite number of seconds ≥ 0 (got {})",
                limits.ramp_s
            ));
        }
        if limits.ramp_s > 0.0 && (limits.ramp_s * sample_rate).round() == 0.0 {
            // It would round to no ramp at all: the first sample at full amplitude.
            return Err(format!(
                "ramp_s = {} s is under half a sample at {sample_rate} Hz, which is no ramp at \
                 all: use 0 for none, or at least {} s",
                limits.ramp_s,
                1.0 / sample_rate
            ));
        }
        Ok(Self {
            limits: *limits,
            min_onset_gap: (sample_rate / limits.max_pulse_rate_hz - SAMPLE_ROUNDING_SLACK).ceil()
                as u64,
            window,
            budget,
            ramp_samples: (limits.ramp_s * sample_rate).round() as u64,
            charge_tolerance: CHARGE_TOLERANCE * limits.max_amplitude,
            history: vec![0; window.div_ceil(64)],
            nonzero_in_history: 0,
            sample: 0,
            slot: 0,
            running: true,
            ramp_pos: 0,
            episode: Episode::Idle,
            blanking: false,
            last_onset: None,
            charge: 0.0,
            episode_peak: 0.0,
            episode_nonzero: 0,
            expected_episode_len: 1,
            declared_episode_len: 1,
        })
    }

    /// Declare that every pulse the policy requests has at most `pulse_samples` non-zero samples
    /// from its onset. From now on (and after [`Limiter::reset`]) admission reserves room for
    /// such a pulse plus, if charge balance is on, as many recovery samples, from the very first
    /// onset: a declared pulse is never truncated by the duty backstop and its charge recovery
    /// never deferred. A pulse whose reservation exceeds the duty budget is never accepted (see
    /// [`Limiter::episode_reservation`]). Call it before the first sample.
    pub fn declare_pulse_samples(&mut self, pulse_samples: u64) {
        let recovery = if self.limits.charge_balance {
            pulse_samples
        } else {
            0
        };
        self.declared_episode_len = pulse_samples.saturating_add(recovery).max(1);
        self.expected_episode_len = self.expected_episode_len.max(self.declared_episode_len);
    }

    /// Non-zero samples an onset currently needs free in every window it overlaps to be
    /// accepted (see the module docs).
    pub fn episode_reservation(&self) -> u64 {
        self.expected_episode_len
    }

    /// Non-zero samples allowed in any duty window.
    pub fn duty_budget(&self) -> u64 {
        self.budget as u64
    }

    /// Limit one requested sample. Allocation-free.
    pub fn process(&mut self, s: StimSample) -> Limited {
        let n = self.sample;
        self.sample += 1;
        let slot = self.slot;
        self.slot = if slot + 1 == self.window { 0 } else { slot + 1 };
        if self.running {
            self.ramp_pos = (self.ramp_pos + 1).min(self.ramp_samples);
        } else {
            self.ramp_pos = self.ramp_pos.saturating_sub(1);
        }
        // Sample n takes the history slot of sample n − window, which leaves the window.
        if self.history_bit(slot) {
            self.nonzero_in_history -= 1;
            self.history[slot / 64] &= !(1 << (slot % 64));
        }

        let x = if s.value.is_finite() { s.value } else { 0.0 };
        let closed = self.envelope_closed();
        let mut out = Limited::default();
        if s.onset {
            if !closed && self.admit(n) {
                self.begin_episode(n);
                out.onset = true;
            } else {
                // The policy has moved on to a new pulse: an accepted episode's request ends
                // here, and the rejected one is blanked to its end, whatever follows (a
                // recovery, its end, a start).
                out.suppressed = true;
                self.cut_episode();
                self.blanking = true;
            }
        }
        if self.episode == Episode::Accepted && (x == 0.0 || closed) {
            // The request returned to 0, or the closed envelope cuts it (the rest of it is
            // blanked): recovery follows if charge is owed.
            self.cut_episode();
            self.blanking = true;
        }
        let value = match self.episode {
            Episode::Accepted => self.limit_peak(self.gain() * x),
            // A recovery is never abandoned, not even by a stop: it runs unramped, at the
            // episode's peak (≤ max_amplitude), and the limiter is silent only once it is done.
            Episode::Recovery => self.recovery_value(),
            Episode::Idle if closed || self.blanking => 0.0,
            Episode::Idle => self.limit_peak(self.gain() * x),
        };
        // Duty backstop: never more than `budget` non-zero samples in any window.
        let value = if value != 0.0 && self.nonzero_in_history >= self.budget {
            0.0
        } else {
            value
        };
        if x == 0.0 {
            self.blanking = false;
        }

        if matches!(self.episode, Episode::Accepted | Episode::Recovery) {
            if value != 0.0 {
                self.episode_nonzero += 1;
                self.episode_peak = self.episode_peak.max(value.abs());
            }
            if self.limits.charge_balance {
                self.charge += value;
            }
            if self.episode == Episode::Recovery && self.charge.abs() <= self.charge_tolerance {
                self.end_episode();
            }
        }
        if value != 0.0 {
            self.history[slot / 64] |= 1 << (slot % 64);
            self.nonzero_in_history += 1;
        }
        out.value = value;
        out
    }

    /// Begin the ramp-down to zero; no new onsets are accepted from now on.
    pub fn stop(&mut self) {
        self.running = false;
    }

    /// Ramp back up (from wherever the envelope is) and accept onsets again.
    pub fn start(&mut self) {
        self.running = true;
    }

    /// True once stopped, the ramp-down has finished and any charge recovery is complete: the
    /// output is exactly 0 from here until `start`.
    pub fn is_silent(&self) -> bool {
        self.envelope_closed()
            && !(self.limits.charge_balance
                && matches!(self.episode, Episode::Accepted | Episode::Recovery)
                && self.charge.abs() > self.charge_tolerance)
    }

    /// Stopped and the ramp envelope is at zero.
    fn envelope_closed(&self) -> bool {
        !self.running && self.ramp_pos == 0
    }

    /// Return to the freshly built state (running, ramping up from 0, empty duty history, no
    /// episode; a declared pulse length is kept) without allocating.
    pub fn reset(&mut self) {
        self.history.fill(0);
        self.nonzero_in_history = 0;
        self.sample = 0;
        self.slot = 0;
        self.running = true;
        self.ramp_pos = 0;
        self.episode = Episode::Idle;
        self.blanking = false;
        self.last_onset = None;
        self.charge = 0.0;
        self.episode_peak = 0.0;
        self.episode_nonzero = 0;
        self.expected_episode_len = self.declared_episode_len;
    }

    /// The limits this limiter enforces.
    pub fn limits(&self) -> &SafetyLimits {
        &self.limits
    }

    fn history_bit(&self, slot: usize) -> bool {
        self.history[slot / 64] & (1 << (slot % 64)) != 0
    }

    fn gain(&self) -> f64 {
        if self.ramp_samples == 0 {
            if self.running {
                1.0
            } else {
                0.0
            }
        } else if self.ramp_pos == self.ramp_samples {
            // The raised cosine's ends, exactly (cos π = −1, cos 0 = 1), without a `cos` per
            // sample for the whole run outside the ramps.
            1.0
        } else if self.ramp_pos == 0 {
            0.0
        } else {
            0.5 - 0.5 * (PI * self.ramp_pos as f64 / self.ramp_samples as f64).cos()
        }
    }

    fn limit_peak(&self, x: f64) -> f64 {
        x.clamp(-self.limits.max_amplitude, self.limits.max_amplitude)
    }

    /// Whether an onset at sample `n` may start an episode. Called after sample n − window has
    /// left the history.
    fn admit(&self, n: u64) -> bool {
        let free = self.episode == Episode::Idle;
        let spaced = match self.last_onset {
            None => true,
            Some(t) => n - t >= self.min_onset_gap,
        };
        self.running && free && spaced && self.episode_fits(n)
    }

    /// Whether `expected_episode_len` consecutive non-zero samples from `n` on keep every window
    /// within the budget: the window ending at n + j holds the history's samples after the j
    /// oldest ones, plus j + 1 new ones.
    fn episode_fits(&self, n: u64) -> bool {
        let len = self.expected_episode_len.min(self.window as u64) as usize;
        let mut dropped = 0;
        for j in 0..len {
            if self.nonzero_in_history - dropped + j + 1 > self.budget {
                return false;
            }
            // Moving on to the window ending at n + j + 1 drops sample n + j + 1 − window.
            let oldest = ((n + 1 + j as u64) % self.window as u64) as usize;
            dropped += usize::from(self.history_bit(oldest));
        }
        true
    }

    fn begin_episode(&mut self, n: u64) {
        self.episode = Episode::Accepted;
        self.blanking = false;
        self.last_onset = Some(n);
        self.charge = 0.0;
        self.episode_peak = 0.0;
        self.episode_nonzero = 0;
    }

    /// End the request of an accepted episode (if one is running): its charge recovery follows
    /// if charge is owed, otherwise the episode is over.
    fn cut_episode(&mut self) {
        if self.episode == Episode::Accepted {
            if self.limits.charge_balance && self.charge.abs() > self.charge_tolerance {
                self.episode = Episode::Recovery;
            } else {
                self.end_episode();
            }
        }
    }

    fn end_episode(&mut self) {
        self.episode = Episode::Idle;
        self.charge = 0.0;
        self.expected_episode_len = self.expected_episode_len.max(self.episode_nonzero);
    }

    /// The next recovery sample: opposite to the net charge, at the episode's peak amplitude,
    /// partial on the last sample so the charge lands on 0.
    fn recovery_value(&self) -> f64 {
        let q = self.charge;
        -q.signum() * q.abs().min(self.episode_peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FS: f64 = 1000.0;

    fn limits() -> SafetyLimits {
        SafetyLimits {
            max_amplitude: 1.0,
            max_pulse_rate_hz: 100.0,
            max_duty_cycle: 1.0,
            duty_window_s: 0.1,
            charge_balance: true,
            ramp_s: 0.0,
        }
    }

    fn req(value: f64, onset: bool) -> StimSample {
        StimSample {
            value,
            onset,
            clock_phase_rad: f64::NAN,
        }
    }

    /// Feed a monophasic pulse train: `width` samples of `amp` every `period` samples.
    fn pulse_train(
        l: &mut Limiter,
        amp: f64,
        width: usize,
        period: usize,
        n: usize,
    ) -> Vec<Limited> {
        (0..n)
            .map(|i| {
                let pos = i % period;
                let v = if pos < width { amp } else { 0.0 };
                l.process(req(v, pos == 0))
            })
            .collect()
    }

    #[test]
    fn non_finite_input_is_zero_and_peak_is_clamped() {
        let mut l = Limiter::new(&limits(), FS).unwrap();
        for (v, want) in [
            (f64::NAN, 0.0),
            (f64::INFINITY, 0.0),
            (f64::NEG_INFINITY, 0.0),
            (5.0, 1.0),
            (-5.0, -1.0),
            (0.25, 0.25),
        ] {
            assert_eq!(l.process(req(v, false)).value, want, "input {v}");
        }
    }

    #[test]
    fn onsets_closer_than_the_rate_limit_are_suppressed() {
        // 100 Hz at 1 kHz: one onset per 10 samples at most.
        let mut l = Limiter::new(&limits(), FS).unwrap();
        let out: Vec<Limited> = (0..100).map(|_| l.process(req(0.0, true))).collect();
        let accepted: Vec<usize> = (0..100).filter(|&i| out[i].onset).collect();
        assert_eq!(accepted, (0..100).step_by(10).collect::<Vec<_>>());
        assert!(out.iter().all(|o| o.onset != o.suppressed));
    }

    #[test]
    fn monophasic_pulse_gets_an_equal_and_opposite_recovery_phase() {
        let mut l = Limiter::new(&limits(), FS).unwrap();
        let out = pulse_train(&mut l, 0.5, 5, 50, 50);
        let values: Vec<f64> = out.iter().map(|o| o.value).collect();
        assert_eq!(&values[..5], &[0.5; 5]);
        assert_eq!(&values[5..10], &[-0.5; 5]);
        assert!(values[10..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn onsets_during_recovery_are_rejected_and_blanked() {
        let mut l = Limiter::new(&limits(), FS).unwrap();
        let mut out = pulse_train(&mut l, 1.0, 20, 1000, 20);
        // Recovery runs for 20 samples; a pulse requested at sample 30 (after the rate limit
        // allows it) arrives during recovery and is dropped whole.
        out.extend((20..30).map(|_| l.process(req(0.0, false))));
        out.extend((30..35).map(|_| l.process(req(1.0, true))));
        out.extend((35..60).map(|_| l.process(req(0.0, false))));
        assert!(out[30].suppressed);
        let values: Vec<f64> = out.iter().map(|o| o.value).collect();
        assert_eq!(&values[20..40], &[-1.0; 20]);
        assert!(values[40..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn balanced_biphasic_pulse_passes_unchanged() {
        let mut l = Limiter::new(&limits(), FS).unwrap();
        let input: Vec<f64> = [[0.7; 4], [-0.7; 4], [0.0; 4]].concat();
        let out: Vec<f64> = input
            .iter()
            .enumerate()
            .map(|(i, &v)| l.process(req(v, i == 0)).value)
            .collect();
        assert_eq!(out, input);
    }

    #[test]
    fn without_charge_balance_there_is_no_recovery() {
        let mut l = Limiter::new(
            &SafetyLimits {
                charge_balance: false,
                ..limits()
            },
            FS,
        )
        .unwrap();
        let out = pulse_train(&mut l, 0.5, 5, 50, 50);
        assert!(out[5..].iter().all(|o| o.value == 0.0));
    }

    #[test]
    fn duty_admission_rejects_whole_pulses() {
        // Budget 30 of 100 samples; the train asks for 10 of every 23 (43 %), a period that does
        // not divide the window, so blanking alone would cut pulses short.
        let lim = SafetyLimits {
            max_duty_cycle: 0.3,
            charge_balance: false,
            ..limits()
        };
        let mut l = Limiter::new(&lim, FS).unwrap();
        let out = pulse_train(&mut l, 1.0, 10, 23, 23 * 100);
        let mut accepted = 0;
        for (k, pulse) in out.chunks(23).enumerate() {
            let n_nonzero = pulse.iter().filter(|o| o.value != 0.0).count();
            // Every pulse is either emitted whole or not at all.
            assert!(
                n_nonzero == 0 || n_nonzero == 10,
                "pulse {k}: {n_nonzero} samples"
            );
            assert_eq!(pulse[0].onset, n_nonzero == 10, "pulse {k}");
            assert_eq!(pulse[0].suppressed, n_nonzero == 0, "pulse {k}");
            accepted += usize::from(pulse[0].onset);
        }
        // 30 % of 2300 samples in 10-sample pulses allows at most 69 + 3 (the first window).
        assert!((55..=72).contains(&accepted), "{accepted} accepted");
    }

    #[test]
    fn free_running_waveform_is_blanked_at_the_duty_budget() {
        let lim = SafetyLimits {
            max_duty_cycle: 0.25,
            ..limits()
        };
        let mut l = Limiter::new(&lim, FS).unwrap();
        let out: Vec<f64> = (0..1000)
            .map(|_| l.process(req(0.5, false)).value)
            .collect();
        // 25 of every 100 samples pass, as a block at the start of each window.
        for (k, w) in out.chunks(100).enumerate() {
            assert!(w[..25].iter().all(|&v| v == 0.5), "window {k}");
            assert!(w[25..].iter().all(|&v| v == 0.0), "window {k}");
        }
    }

    #[test]
    fn ramp_is_a_raised_cosine_up_and_down_then_exactly_zero() {
        let r = 20;
        let lim = SafetyLimits {
            ramp_s: r as f64 / FS,
            ..limits()
        };
        let mut l = Limiter::new(&lim, FS).unwrap();
        let envelope = |k: usize| 0.5 - 0.5 * (PI * k as f64 / r as f64).cos();
        for k in 1..=2 * r {
            let got = l.process(req(1.0, false)).value;
            assert!((got - envelope(k.min(r))).abs() < 1e-15, "up {k}: {got}");
            if k >= r {
                assert_eq!(got, 1.0, "past the ramp the request passes exactly");
            }
        }
        l.stop();
        assert!(!l.is_silent());
        for k in 1..=r {
            let got = l.process(req(1.0, false)).value;
            assert!((got - envelope(r - k)).abs() < 1e-15, "down {k}: {got}");
        }
        assert!(l.is_silent());
        for _ in 0..100 {
            let o = l.process(req(1.0, true));
            assert_eq!(o.value.to_bits(), 0.0f64.to_bits());
            assert!(o.suppressed && !o.onset);
        }
        l.start();
        // The rest of the last rejected episode stays blanked until its request returns to 0;
        // then the envelope, which has been rising since the start, shapes the output again.
        assert_eq!(l.process(req(1.0, false)).value, 0.0);
        assert_eq!(l.process(req(0.0, false)).value, 0.0);
        assert!((l.process(req(1.0, false)).value - envelope(3)).abs() < 1e-15);
    }

    #[test]
    fn stop_mid_pulse_still_recovers_the_charge_before_silence() {
        let mut l = Limiter::new(&limits(), FS).unwrap();
        // A monophasic pulse cut by a stop after 5 samples (ramp 0: the stop acts at once).
        let delivered: f64 = pulse_train(&mut l, 1.0, 10, 1000, 5)
            .iter()
            .map(|o| o.value)
            .sum();
        assert_eq!(delivered, 5.0);
        l.stop();
        assert!(!l.is_silent(), "charge is owed: not silent yet");
        let after: Vec<f64> = (0..20).map(|_| l.process(req(1.0, false)).value).collect();
        // The stop cut the pulse; the recovery phase pays the charge back, within the peak.
        assert!(
            after.iter().all(|v| *v <= 0.0 && v.abs() <= 1.0),
            "{after:?}"
        );
        assert!((delivered + after.iter().sum::<f64>()).abs() < 1e-9);
        assert!(l.is_silent());
        assert!((0..20).all(|_| l.process(req(0.5, true)).value == 0.0));
    }

    /// Regression (tests/safety.rs, periodic train at 4 kHz): an onset rejected while a charge
    /// recovery ran left the limiter in `Recovery`, not blanking, so once the recovery ended the
    /// rest of the rejected pulse passed as a free-running waveform, never charge balanced.
    #[test]
    fn a_pulse_rejected_during_recovery_stays_blanked_after_it() {
        let mut l = Limiter::new(&limits(), FS).unwrap();
        // Pulse 1: 5 samples of 1.0, recovered over samples 5..10. Pulse 2 starts at sample 7,
        // during that recovery, and lasts 10 samples.
        let input = |i: usize| match i {
            0..5 => (1.0, i == 0),
            7..17 => (1.0, i == 7),
            _ => (0.0, false),
        };
        let out: Vec<Limited> = (0..40)
            .map(|i| {
                let (v, onset) = input(i);
                l.process(req(v, onset))
            })
            .collect();
        let values: Vec<f64> = out.iter().map(|o| o.value).collect();
        assert!(out[0].onset && out[7].suppressed && !out[7].onset);
        assert_eq!(&values[..5], &[1.0; 5]);
        assert_eq!(&values[5..10], &[-1.0; 5]);
        assert!(values[10..].iter().all(|&v| v == 0.0), "{values:?}");
        assert_eq!(values.iter().sum::<f64>(), 0.0);
        assert_eq!(l.episode, Episode::Idle);
    }

    /// Same, for the biphasic pulse of the failing engine run: the recovery of an unbalanced
    /// (ramped) episode overlaps the next pulse's onset, whose two phases differ in what is left.
    #[test]
    fn a_biphasic_pulse_rejected_during_recovery_leaves_no_charge() {
        let lim = SafetyLimits {
            max_pulse_rate_hz: 1.0,
            ramp_s: 0.2,
            ..limits()
        };
        let mut l = Limiter::new(&lim, FS).unwrap();
        // Biphasic 2 × 19 samples of ±30 (clamped to 1) every 50 samples, from the start of
        // the ramp: the ramp shrinks the first phase, the clamp hides it from the second, and
        // the recovery of the net charge runs past the next onset.
        // The rate limit (1 Hz) admits the next onset at sample 1000.
        let out: Vec<f64> = (0..1000)
            .map(|i| {
                let pos = i % 50;
                let v = match pos {
                    0..19 => 30.0,
                    19..38 => -30.0,
                    _ => 0.0,
                };
                l.process(req(v, pos == 0)).value
            })
            .collect();
        let first_end = out.iter().position(|&v| v == 0.0).unwrap();
        assert!(first_end > 50, "the recovery overlaps the second onset");
        assert!(out[first_end..].iter().all(|&v| v == 0.0));
        assert!(out.iter().sum::<f64>().abs() < 1e-9);
    }

    #[test]
    fn a_rejected_onset_ends_the_accepted_episode_and_is_not_delivered() {
        let mut l = Limiter::new(&limits(), FS).unwrap();
        // A 5-sample pulse runs straight into a second onset (refused by the rate limit) and
        // 10 more samples: the first episode ends at that onset, the second is blanked.
        let out: Vec<Limited> = (0..40)
            .map(|i| l.process(req(if i < 15 { 1.0 } else { 0.0 }, i == 0 || i == 5)))
            .collect();
        let values: Vec<f64> = out.iter().map(|o| o.value).collect();
        assert!(out[0].onset && out[5].suppressed);
        assert_eq!(&values[..5], &[1.0; 5]);
        assert_eq!(&values[5..10], &[-1.0; 5]);
        assert!(values[10..].iter().all(|&v| v == 0.0), "{values:?}");
    }

    #[test]
    fn a_pulse_cut_by_the_closed_envelope_stays_blanked_after_start() {
        let mut l = Limiter::new(&limits(), FS).unwrap();
        // A 20-sample pulse; a stop (ramp 0) after 5 samples, a start after 10, while the
        // request is still non-zero: only the first 5 samples and their recovery come out.
        let mut values = Vec::new();
        for i in 0..40 {
            match i {
                5 => l.stop(),
                10 => l.start(),
                _ => {}
            }
            values.push(l.process(req(if i < 20 { 1.0 } else { 0.0 }, i == 0)).value);
        }
        assert_eq!(&values[..5], &[1.0; 5]);
        assert_eq!(&values[5..10], &[-1.0; 5]);
        assert!(values[10..].iter().all(|&v| v == 0.0), "{values:?}");
        // The next pulse is a new episode and passes.
        assert_eq!(l.process(req(0.5, true)).value, 0.5);
    }

    #[test]
    fn a_declared_pulse_is_reserved_from_the_first_onset() {
        // 15-sample monophasic pulses every 100 samples; budget 20 of 200 samples.
        let lim = SafetyLimits {
            max_duty_cycle: 0.1,
            duty_window_s: 0.2,
            ..limits()
        };
        let train = |l: &mut Limiter| -> Vec<Limited> { pulse_train(l, 1.0, 15, 100, 1000) };
        // Undeclared, the first onset is admitted on a 1-sample guess: the backstop truncates
        // the episode (15 + 5 recovery samples) and defers the rest of the recovery.
        let mut l = Limiter::new(&lim, FS).unwrap();
        let out = train(&mut l);
        assert!(out[0].onset);
        assert_eq!(out[..200].iter().filter(|o| o.value != 0.0).count(), 20);
        assert_eq!(out[20..200].iter().filter(|o| o.value != 0.0).count(), 0);
        // Declared, 15 + 15 > 20: no pulse is ever accepted, nothing is delivered.
        let mut l = Limiter::new(&lim, FS).unwrap();
        l.declare_pulse_samples(15);
        assert_eq!(l.episode_reservation(), 30);
        assert_eq!(l.duty_budget(), 20);
        let out = train(&mut l);
        assert!(out.iter().all(|o| o.value == 0.0 && !o.onset));
        assert_eq!(out.iter().filter(|o| o.suppressed).count(), 10);
        // With room for 30 (budget 30 of 200), every accepted pulse is whole, recovery at once.
        let lim = SafetyLimits {
            max_duty_cycle: 0.15,
            ..lim
        };
        let mut l = Limiter::new(&lim, FS).unwrap();
        l.declare_pulse_samples(15);
        for _ in 0..2 {
            let out = train(&mut l);
            for (k, pulse) in out.chunks(100).enumerate() {
                let got: Vec<f64> = pulse.iter().map(|o| o.value).collect();
                if pulse[0].onset {
                    assert_eq!(&got[..15], &[1.0; 15], "pulse {k}");
                    assert_eq!(&got[15..30], &[-1.0; 15], "pulse {k}");
                    assert!(got[30..].iter().all(|&v| v == 0.0), "pulse {k}");
                } else {
                    assert!(got.iter().all(|&v| v == 0.0), "pulse {k}");
                }
            }
            assert_eq!(out.iter().filter(|o| o.onset).count(), 5);
            // The declaration survives a reset.
            l.reset();
            assert_eq!(l.episode_reservation(), 30);
        }
    }

    #[test]
    fn onsets_are_rejected_during_the_ramp_down() {
        let lim = SafetyLimits {
            ramp_s: 0.05,
            ..limits()
        };
        let mut l = Limiter::new(&lim, FS).unwrap();
        for _ in 0..60 {
            l.process(req(0.0, false));
        }
        l.stop();
        let out: Vec<Limited> = (0..40).map(|i| l.process(req(0.5, i % 20 == 0))).collect();
        assert!(!l.is_silent());
        assert!(out.iter().all(|o| !o.onset && o.value == 0.0));
        assert!(out[0].suppressed && out[20].suppressed);
    }

    #[test]
    fn reset_reproduces_the_same_output() {
        let lim = SafetyLimits {
            max_duty_cycle: 0.3,
            ramp_s: 0.01,
            ..limits()
        };
        let mut l = Limiter::new(&lim, FS).unwrap();
        let first = pulse_train(&mut l, 3.0, 7, 13, 3000);
        l.reset();
        assert_eq!(pulse_train(&mut l, 3.0, 7, 13, 3000), first);
    }

    #[test]
    fn invalid_limits_name_the_field() {
        let cases: [(SafetyLimits, &str); 6] = [
            (
                SafetyLimits {
                    max_amplitude: 0.0,
                    ..limits()
                },
                "max_amplitude",
            ),
            (
                SafetyLimits {
                    max_pulse_rate_hz: f64::NAN,
                    ..limits()
                },
                "max_pulse_rate_hz",
            ),
            (
                SafetyLimits {
                    max_duty_cycle: 1.5,
                    ..limits()
                },
                "max_duty_cycle",
            ),
            (
                SafetyLimits {
                    duty_window_s: 0.0,
                    ..limits()
                },
                "duty_window_s",
            ),
            (
                SafetyLimits {
                    max_duty_cycle: 0.001,
                    ..limits()
                },
                "max_duty_cycle",
            ),
            (
                SafetyLimits {
                    ramp_s: -1.0,
                    ..limits()
                },
                "ramp_s",
            ),
        ];
        for (lim, field) in cases {
            let err = Limiter::new(&lim, FS).unwrap_err();
            assert!(err.contains(field), "{err}");
        }
        assert!(Limiter::new(&limits(), 0.0)
            .unwrap_err()
            .contains("sample_rate"));
    }

    /// One step of a property-test script.
    #[derive(Clone, Debug)]
    enum Op {
        Sample(f64, bool),
        Stop,
        Start,
    }

    fn any_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -20.0..20.0f64,
            2 => Just(0.0),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => any::<f64>(),
        ]
    }

    /// Pulse-like segments (an onset, some values, some zeros) mixed with free-running values,
    /// stray onsets and stop / start.
    fn script() -> impl Strategy<Value = Vec<Op>> {
        let segment = prop_oneof![
            6 => (prop::collection::vec(any_value(), 1..40), 0..60usize).prop_map(|(v, z)| {
                let mut ops: Vec<Op> = v
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| Op::Sample(x, i == 0))
                    .collect();
                ops.extend((0..z).map(|_| Op::Sample(0.0, false)));
                ops
            }),
            2 => prop::collection::vec((any_value(), prop::bool::weighted(0.1)), 1..60)
                .prop_map(|v| v.into_iter().map(|(x, o)| Op::Sample(x, o)).collect()),
            1 => Just(vec![Op::Stop]),
            1 => Just(vec![Op::Start]),
        ];
        prop::collection::vec(segment, 1..60).prop_map(|s| s.concat())
    }

    /// Longest pulse in [`pulse_script`], samples.
    const MAX_PULSE: usize = 40;

    /// Pulses only (an onset, non-zero finite values, then zeros), with stops and starts.
    fn pulse_script() -> impl Strategy<Value = Vec<Op>> {
        let value = prop_oneof![-20.0..-1e-3f64, 1e-3..20.0f64];
        let segment = prop_oneof![
            8 => (prop::collection::vec(value, 1..MAX_PULSE), 0..60usize).prop_map(|(v, z)| {
                let mut ops: Vec<Op> = v
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| Op::Sample(x, i == 0))
                    .collect();
                ops.extend((0..z).map(|_| Op::Sample(0.0, false)));
                ops
            }),
            1 => Just(vec![Op::Stop]),
            1 => Just(vec![Op::Start]),
        ];
        prop::collection::vec(segment, 1..60).prop_map(|s| s.concat())
    }

    fn any_limits() -> impl Strategy<Value = SafetyLimits> {
        (
            0.1..10.0f64,
            5.0..500.0f64,
            0.05..=1.0f64,
            0.001..0.2f64,
            any::<bool>(),
            0.0..0.05f64,
        )
            .prop_map(|(a, r, d, w, c, ramp)| SafetyLimits {
                max_amplitude: a,
                max_pulse_rate_hz: r,
                max_duty_cycle: d,
                duty_window_s: w,
                charge_balance: c,
                ramp_s: ramp,
            })
            .prop_filter("the budget must allow one sample per window", |l| {
                Limiter::new(l, FS).is_ok()
            })
    }

    proptest! {
        /// A regular pulse train whose episodes can fit the budget is thinned by whole pulses:
        /// every accepted pulse (and its recovery) comes out intact.
        #[test]
        fn accepted_pulses_are_never_truncated(
            width in 1usize..20,
            extra_window in 0usize..160,
            spare in 0.0..=1.0f64,
            gap in 1usize..60,
            biphasic in any::<bool>(),
        ) {
            let pulse_len = if biphasic { 2 * width } else { width };
            // Monophasic pulses are followed by a recovery as long as the pulse.
            let episode_len = 2 * width;
            // A window and budget that can hold at least one whole episode.
            let window = episode_len + extra_window;
            let budget = episode_len + (spare * extra_window as f64).round() as usize;
            let duty = budget as f64 / window as f64;
            let lim = SafetyLimits {
                max_pulse_rate_hz: FS,
                max_duty_cycle: duty,
                duty_window_s: window as f64 / FS,
                ..limits()
            };
            let mut l = Limiter::new(&lim, FS).unwrap();
            let period = episode_len + gap;
            let input = |pos: usize| match pos {
                p if p < width => 0.8,
                p if p < pulse_len => -0.8,
                _ => 0.0,
            };
            let out: Vec<Limited> =
                (0..period * 200).map(|i| l.process(req(input(i % period), i % period == 0))).collect();
            for (k, pulse) in out.chunks(period).enumerate() {
                let want: Vec<f64> = (0..period)
                    .map(|p| match p {
                        p if p < pulse_len => input(p),
                        p if p < episode_len => -0.8,
                        _ => 0.0,
                    })
                    .collect();
                let got: Vec<f64> = pulse.iter().map(|o| o.value).collect();
                if pulse[0].onset {
                    prop_assert_eq!(got, want);
                } else {
                    prop_assert!(pulse[0].suppressed && got.iter().all(|&v| v == 0.0));
                    // Rejected only if some window would really have gone over the budget.
                    let t = k * period;
                    let over = (0..episode_len).any(|j| {
                        let oldest = (t + j + 1).saturating_sub(window);
                        let old = out[oldest..t].iter().filter(|o| o.value != 0.0).count();
                        old + j + 1 > budget
                    });
                    prop_assert!(over, "pulse {} rejected needlessly", k);
                }
            }
        }

        /// Pulse trains (every non-zero run of the request starts with an onset), cut by stops
        /// and starts anywhere, leave no net charge once the recoveries are done; declared
        /// pulses are never truncated.
        #[test]
        fn pulse_trains_leave_no_net_charge(
            lim in any_limits(),
            ops in pulse_script(),
            declare in any::<bool>(),
        ) {
            let lim = SafetyLimits { charge_balance: true, ..lim };
            let mut l = Limiter::new(&lim, FS).unwrap();
            if declare {
                l.declare_pulse_samples(MAX_PULSE as u64);
            }
            let window = (lim.duty_window_s * FS).round() as usize;
            let tail = (window + 1) * 2 * MAX_PULSE;
            let ops = ops.into_iter().chain((0..tail).map(|_| Op::Sample(0.0, false)));
            let mut out = Vec::new();
            let mut onsets = 0;
            let mut stopped = false;
            let mut episode_start = None;
            for op in ops {
                let s = match op {
                    Op::Stop => { l.stop(); stopped = true; continue; }
                    Op::Start => { l.start(); continue; }
                    Op::Sample(v, onset) => req(v, onset),
                };
                let o = l.process(s);
                if o.onset {
                    onsets += 1;
                    episode_start = Some(out.len());
                }
                out.push(o.value);
                // Without stops, a declared episode comes out whole: no blanked sample until
                // its request and recovery are done.
                if let (Some(t), true, false) = (episode_start, declare, stopped) {
                    if l.episode == Episode::Idle {
                        // The sample it ended on is 0 if no recovery was owed.
                        let episode = &out[t..out.len() - 1];
                        prop_assert!(
                            episode.iter().all(|&v| v != 0.0),
                            "episode from {} truncated: {:?}", t, &out[t..]
                        );
                        episode_start = None;
                    }
                }
            }
            prop_assert_eq!(l.episode, Episode::Idle);
            let net: f64 = out.iter().sum();
            let total: f64 = out.iter().map(|v| v.abs()).sum();
            let tol = 1e-9 * lim.max_amplitude * (onsets + 1) as f64 + 1e-12 * total;
            prop_assert!(net.abs() <= tol, "net charge {} after {} onsets", net, onsets);
        }

        #[test]
        fn output_obeys_every_limit(lim in any_limits(), ops in script()) {
            let mut l = Limiter::new(&lim, FS).unwrap();
            let window = (lim.duty_window_s * FS).round() as usize;
            let budget = (lim.max_duty_cycle * window as f64 + 1e-9).floor() as usize;
            let ramp = (lim.ramp_s * FS).round() as usize;
            let tol = 1e-9 * lim.max_amplitude;
            // Enough trailing zeros for any recovery to finish, even when the duty budget
            // defers it to one sample per window.
            let tail = (window + 1) * 50;
            let ops = ops.into_iter().chain((0..tail).map(|_| Op::Sample(0.0, false)));

            let mut out = Vec::new();
            let mut since_stop: Option<usize> = None;
            let mut last_onset: Option<usize> = None;
            let mut episode: Option<f64> = None;
            for op in ops {
                let s = match op {
                    Op::Stop => { l.stop(); since_stop.get_or_insert(0); continue; }
                    Op::Start => { l.start(); since_stop = None; continue; }
                    Op::Sample(v, onset) => req(v, onset),
                };
                let was_silent = l.is_silent();
                let o = l.process(s);
                let n = out.len();
                if was_silent {
                    prop_assert_eq!(o.value, 0.0, "output after silence at {}", n);
                }
                prop_assert!(o.value.is_finite() && o.value.abs() <= lim.max_amplitude);
                prop_assert!(!(o.onset && o.suppressed));
                prop_assert!(!o.onset || s.onset);
                if o.onset {
                    if let Some(t) = last_onset {
                        prop_assert!((n - t) as f64 >= FS / lim.max_pulse_rate_hz - 1e-9);
                    }
                    last_onset = Some(n);
                    prop_assert!(episode.is_none(), "onset during an episode at {}", n);
                    episode = Some(0.0);
                }
                if let Some(k) = since_stop.as_mut() {
                    // Silent after the ramp plus, at most, one episode's charge recovery,
                    // which the duty budget may stretch to a sample per window (loose bound).
                    if *k >= ramp + (window + 1) * 50 {
                        prop_assert!(l.is_silent(), "not silent {} samples after stop", k);
                    }
                    *k += 1;
                }
                if let Some(q) = episode.as_mut() {
                    *q += o.value;
                }
                if l.is_silent() {
                    // A stop ends the episode, but never with charge owed.
                    if let (Some(q), true) = (episode, lim.charge_balance) {
                        prop_assert!(q.abs() <= tol, "charge {} owed at silence ({})", q, n);
                    }
                    episode = None;
                } else if let Some(q) = episode {
                    if l.episode == Episode::Idle {
                        if lim.charge_balance {
                            prop_assert!(q.abs() <= tol, "charge {} at {}", q, n);
                        }
                        episode = None;
                    }
                }
                out.push(o.value);
            }
            prop_assert!(episode.is_none(), "an episode never ended");
            let mut count = 0;
            for (n, v) in out.iter().enumerate() {
                count += usize::from(*v != 0.0);
                if n >= window {
                    count -= usize::from(out[n - window] != 0.0);
                }
                prop_assert!(count <= budget, "{} non-zero in the window ending at {}", count, n);
            }
        }
    }
}
