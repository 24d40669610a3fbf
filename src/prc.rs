//! Phase-response curves: what one pulse, delivered at a chosen phase, does to the rhythm.
//!
//! Owns: the measurement ([`measure`]) and its outputs ([`write`]: `prc.csv`, `prc_trials.csv`,
//! `prc.json`, `prc.svg`).
//! May call: [`crate::engine`] (the profile's plant with its forcing path,
//! [`crate::engine::forced_plant`], so a pulse does exactly what it does in a run),
//! [`crate::stim`] (the profile's pulse and safety limiter), [`crate::analysis`],
//! [`crate::render`], [`crate::profile`]. Offline only: it never touches the real-time path.
//!
//! Method (paired trials). Trial `k` builds two copies of the profile's plant with seed
//! `run.seed + k`, so both carry the same noise. Both settle for `settle_s`; when the plant's
//! phase next crosses the target θ, one copy receives one pulse (the profile's pulse shape,
//! through the profile's limiter, into the stimulated nodes with their forcing gains) and the
//! other nothing. `cycles` periods after the onset the shift is `Δ = wrap(φ_pulsed − φ_free)`:
//! positive = the pulse advanced the rhythm. Because the noise is shared, what is left of it in
//! Δ is only its interaction with the pulse, and a few trials give a tight curve.
//!
//! Phase ([`PhaseFrom`]): the plant's own (`Plant::phase` of the sensor node, or of the mean
//! field), or — for plants without one, or when asked — from the sensor's observable, as an
//! experimenter would measure it: phase −90° (the rising mean crossing of `x ≈ A cos φ`) at each
//! upward crossing of the observable's mean (with hysteresis), advancing at the period measured
//! during settling. The shift is then `2π (t_free − t_pulsed) / T` between the first upward
//! crossings after `cycles` periods.
//!
//! Order (rounds). Trials start in rounds: every phase gets its k-th trial before any phase gets
//! its (k+1)-th. An interrupted measurement keeps its completed rounds, which are the PRC it
//! would have measured with that many trials per phase, and discards the rest.

use std::f64::consts::{FRAC_PI_2, PI, TAU};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::analysis::{circular_stats, wrap_angle};
use crate::engine::{forced_plant, ForcedPlant};
use crate::model::ParamSpec;
use crate::profile::{ModelParams, Profile};
use crate::render::{chart_svg, Band, Chart, Line};
use crate::stim::{Limiter, StimSample};

/// Where the phase of a PRC comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseFrom {
    /// The plant's own phase (the sensor node's, or the mean field's).
    Plant,
    /// Upward mean crossings of the sensor's (noise-free) observable.
    Observable,
}

/// What to measure.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Target phases, evenly spaced from −180° (inclusive) to 180°.
    pub phases: usize,
    /// Trials per phase.
    pub trials: usize,
    /// Periods between the pulse onset and the phase comparison.
    pub cycles: f64,
    /// Settling time before each trial's pulse, seconds.
    pub settle_s: f64,
    /// The phase to use; `None` = the plant's own where it has one, else the observable's.
    pub phase_from: Option<PhaseFrom>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            phases: 24,
            trials: 10,
            cycles: 5.0,
            settle_s: 2.0,
            phase_from: None,
        }
    }
}

/// One trial's result.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Trial {
    /// Target phase, degrees.
    pub target_deg: f64,
    /// Trial number (0-based) at this phase.
    pub trial: usize,
    /// The plant's seed in this trial.
    pub seed: u64,
    /// Phase at the pulse onset, degrees.
    pub onset_deg: f64,
    /// Phase shift `cycles` periods later, degrees (+ = advance).
    pub shift_deg: f64,
}

/// The PRC at one target phase.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Point {
    /// Target phase, degrees.
    pub target_deg: f64,
    /// Circular mean of the phases at onset, degrees.
    pub onset_deg: f64,
    /// Circular mean shift, degrees.
    pub shift_deg: f64,
    /// Circular SD of the shifts, degrees.
    pub sd_deg: f64,
    /// 95 % confidence interval of the mean shift (± 1.96 SD/√n), degrees.
    pub ci_low_deg: f64,
    /// Upper end of that interval, degrees.
    pub ci_high_deg: f64,
    /// Trials.
    pub trials: usize,
    /// The first-order (infinitesimal-PRC) prediction for a single Stuart–Landau oscillator,
    /// degrees; NaN for other plants.
    pub first_order_deg: f64,
}

/// The first harmonic fitted to the PRC: `Δ(θ) ≈ offset + a cos θ + b sin θ` (degrees).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Fit {
    /// Mean shift over all phases, degrees.
    pub offset_deg: f64,
    /// Coefficient of cos θ, degrees.
    pub cos_deg: f64,
    /// Coefficient of sin θ, degrees.
    pub sin_deg: f64,
    /// `√(a² + b²)`, degrees.
    pub amplitude_deg: f64,
    /// Phase of the fitted largest advance, degrees.
    pub advance_phase_deg: f64,
    /// RMS of the measured points about the fit, degrees.
    pub residual_rms_deg: f64,
}

/// A measured phase-response curve.
#[derive(Clone, Debug, Serialize)]
pub struct Prc {
    /// What was measured.
    pub settings: Settings,
    /// The phase actually used.
    pub phase_from: PhaseFrom,
    /// The rhythm's period (mean over trials, measured during settling), seconds.
    pub period_s: f64,
    /// The pulse as delivered (after the limiter), stimulus units, one value per sample.
    #[serde(skip)]
    pub pulse: Vec<f64>,
    /// Net charge of the delivered pulse, stimulus units · s.
    pub pulse_charge: f64,
    /// Per phase, in order of target.
    pub points: Vec<Point>,
    /// Every trial, phase-major.
    #[serde(skip)]
    pub trials: Vec<Trial>,
    /// First-harmonic fit.
    pub fit: Fit,
    /// Largest mean advance and delay measured, degrees, with their target phases.
    pub max_advance: (f64, f64),
    /// Largest mean delay (most negative shift), degrees, with its target phase.
    pub max_delay: (f64, f64),
    /// Trials per phase measured: `settings.trials`, or fewer when interrupted.
    pub trials_per_phase: usize,
    /// Whether the measurement was interrupted before its last round: the curve is then the
    /// first `trials_per_phase` trials of every phase, a complete PRC with fewer trials.
    pub interrupted: bool,
}

/// How far a measurement is, reported after each trial.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Trials done.
    pub done: usize,
    /// Trials in the whole measurement.
    pub total: usize,
    /// Rounds complete: every phase has at least this many trials done, and an interrupt now
    /// would keep them.
    pub rounds: usize,
    /// Estimated seconds left.
    pub eta_s: f64,
}

/// Most target phases (`--phases`): one every 0.1°.
pub const MAX_PHASES: usize = 3600;
/// Most trials in one measurement (`--phases × --trials`).
pub const MAX_TRIALS: usize = 100_000;
/// Most periods between the pulse and the comparison (`--cycles`).
pub const MAX_CYCLES: f64 = 1000.0;
/// Most settling samples per trial (`--settle × fs`).
pub const MAX_SETTLE_SAMPLES: f64 = 3e7;
/// Fewest cycles of the rhythm in the second half of the settling, where its period is
/// measured: so `--settle` must span about twice this many periods.
pub const MIN_MEASURED_CYCLES: f64 = 2.0;
/// Least amplitude kept over the settling: the observable's RMS over its last quarter as a
/// fraction of that over its first. A rhythm, self-sustained or kept up by noise, keeps its
/// amplitude (the shipped rhythms, noise-driven ones included, keep more than 1/10 of it even
/// over the shortest settling); a plant at rest only rings down from its initial state, and a
/// pulse on what is left of that sets the phase rather than shifting it.
pub const MIN_KEPT_AMPLITUDE: f64 = 0.01;

/// Measure the PRC of `profile`'s plant with its stimulation pulse. `jobs` trials run at a time,
/// in rounds (see the module's doc); `progress` is called after each trial, one call at a time.
///
/// `interrupt` set: no new trial starts, the running ones stop, and the completed rounds are
/// the result ([`Prc::interrupted`]); `Ok(None)` when not one round was complete.
pub fn measure(
    profile: &Profile,
    settings: &Settings,
    jobs: usize,
    interrupt: &AtomicBool,
    progress: impl FnMut(Progress) + Send,
) -> Result<Option<Prc>, String> {
    let fs = profile.run.sample_rate_hz;
    let shape = profile.stimulation.policy.pulse().ok_or_else(|| {
        "stimulation: a phase-response curve needs a pulse; set stimulation.kind = \
         \"phase_locked\" or \"periodic\" (its width_s, amplitude and shape are the pulse)"
            .to_string()
    })?;
    let pulse = shape
        .waveform(fs)
        .map_err(|e| format!("stimulation: {e}"))?;
    if settings.phases < 1 || settings.trials < 1 {
        return Err("--phases and --trials must be at least 1".into());
    }
    if settings.phases > MAX_PHASES {
        return Err(format!(
            "--phases {}: at most {MAX_PHASES} (a phase every 0.1°)",
            settings.phases
        ));
    }
    let total = settings
        .phases
        .checked_mul(settings.trials)
        .filter(|&n| n <= MAX_TRIALS)
        .ok_or_else(|| {
            format!(
                "--phases {} × --trials {} is too many trials; at most {MAX_TRIALS} in all: \
                 lower --trials (or --phases)",
                settings.phases, settings.trials
            )
        })?;
    if !(settings.cycles.is_finite() && (1.0..=MAX_CYCLES).contains(&settings.cycles)) {
        return Err(format!(
            "--cycles must be a number of periods from 1 to {MAX_CYCLES} (got {})",
            settings.cycles
        ));
    }
    if !(settings.settle_s.is_finite() && settings.settle_s > 0.0) {
        return Err(format!(
            "--settle must be a number of seconds > 0 (got {})",
            settings.settle_s
        ));
    }
    // The second half of the settling is kept to measure the period (8 bytes a sample per
    // worker).
    if settings.settle_s * fs > MAX_SETTLE_SAMPLES {
        return Err(format!(
            "--settle {} s is {:.3e} samples at {fs} Hz; at most {MAX_SETTLE_SAMPLES:.0} \
             ({:.0} s at this rate): lower --settle",
            settings.settle_s,
            settings.settle_s * fs,
            (MAX_SETTLE_SAMPLES / fs).floor()
        ));
    }
    if profile.sensor.file.is_some() || profile.audio.has_input() {
        return Err(
            "sensor: a phase-response curve needs the simulated plant; remove sensor.file and \
             audio.input_device"
                .into(),
        );
    }
    // Fail fast (and learn whether the plant has a phase) before any thread starts.
    let probe = forced_plant(profile)?;
    let has_phase = probe.sense(profile.sensor.node).1.is_some();
    let phase_from = match settings.phase_from {
        Some(PhaseFrom::Plant) if !has_phase => {
            return Err(format!(
                "--phase plant: model.kind = \"{}\" defines no phase of its own; use --phase \
                 observable",
                profile.model.kind.name()
            ))
        }
        Some(p) => p,
        None if has_phase => PhaseFrom::Plant,
        None => PhaseFrom::Observable,
    };
    let targets: Vec<f64> = (0..settings.phases)
        .map(|i| (-180.0 + 360.0 * i as f64 / settings.phases as f64).to_radians())
        .collect();
    // Trial i is trial i / phases of phase i % phases: taken in order of i, they run in rounds.
    let phases = settings.phases;
    // More workers than trials would only idle (and each costs a thread).
    let jobs = jobs.clamp(1, total);
    let next = AtomicUsize::new(0);
    // A failed trial stops the others from starting: the measurement fails anyway.
    let failed = AtomicBool::new(false);
    let board = Mutex::new(Board {
        outcomes: (0..total).map(|_| None).collect(),
        done: 0,
        complete: 0,
        progress,
    });
    let started = Instant::now();
    let worker = || loop {
        if interrupt.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed) {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            break;
        }
        let (p, t) = (i % phases, i / phases);
        let seed = profile.run.seed.wrapping_add(t as u64);
        let outcome = match trial(
            profile, &pulse, targets[p], seed, settings, phase_from, interrupt,
        ) {
            // Only the first trial's delivered pulse is reported: the others' are not kept
            // (100 000 trials of a few hundred samples each would hold tens of MB).
            Ok(Some(mut o)) => {
                if i != 0 {
                    o.delivered = Vec::new();
                }
                Ok(o)
            }
            // Stopped by the interrupt: its slot stays empty, ending the completed rounds.
            Ok(None) => break,
            Err(e) => {
                failed.store(true, Ordering::Relaxed);
                Err(format!(
                    "phase {:.1}°, trial {t}: {e}",
                    targets[p].to_degrees()
                ))
            }
        };
        // A worker that panicked poisons the board; its panic is re-raised at the join.
        let Ok(mut board) = board.lock() else { break };
        board.outcomes[i] = Some(outcome);
        board.done += 1;
        while board.complete < total && board.outcomes[board.complete].is_some() {
            board.complete += 1;
        }
        let done = board.done;
        let per = started.elapsed().as_secs_f64() / done as f64;
        let report = Progress {
            done,
            total,
            rounds: board.complete / phases,
            eta_s: per * (total - done) as f64,
        };
        (board.progress)(report);
    };
    std::thread::scope(|scope| {
        for k in 0..jobs {
            let spawned = std::thread::Builder::new()
                .name(format!("entrain-prc-{k}"))
                .spawn_scoped(scope, worker);
            if let Err(e) = spawned {
                // The workers already started stop after their trial.
                failed.store(true, Ordering::Relaxed);
                return Err(format!("cannot start {jobs} worker threads: {e}"));
            }
        }
        Ok(())
    })?;
    let board = board
        .into_inner()
        .map_err(|_| "a PRC worker thread panicked")?;
    let mut outcomes = board.outcomes;
    if let Some(Err(e)) = outcomes.iter_mut().flatten().find(|o| o.is_err()) {
        return Err(std::mem::take(e));
    }
    // The completed rounds: every trial before the first one missing is done.
    let rounds = board.complete / phases;
    if rounds == 0 {
        return Ok(None);
    }
    let mut trials = Vec::with_capacity(rounds * phases);
    let mut periods = Vec::with_capacity(rounds * phases);
    let mut delivered = Vec::new();
    // Phase-major, as the points and the files list them.
    for (p, &target) in targets.iter().enumerate() {
        for t in 0..rounds {
            let Some(Ok(o)) = outcomes[t * phases + p].take() else {
                unreachable!("trials before the first missing one are done");
            };
            periods.push(o.period_s);
            if (p, t) == (0, 0) {
                delivered = o.delivered;
            }
            trials.push(Trial {
                target_deg: target.to_degrees(),
                trial: t,
                seed: profile.run.seed.wrapping_add(t as u64),
                onset_deg: o.onset_rad.to_degrees(),
                shift_deg: o.shift_rad.to_degrees(),
            });
        }
    }
    let period_s = periods.iter().sum::<f64>() / periods.len() as f64;
    let first_order = first_order_sl(profile, &delivered);
    let points: Vec<Point> = targets
        .iter()
        .enumerate()
        .map(|(p, &target)| {
            let mine = &trials[p * rounds..(p + 1) * rounds];
            let onset = circular_stats(mine.iter().map(|t| t.onset_deg.to_radians()));
            let shift = circular_stats(mine.iter().map(|t| t.shift_deg.to_radians()));
            let (mean, sd) = shift.map_or((f64::NAN, f64::NAN), |s| {
                // `+ 0.0`: identical shifts give an SD of −0.
                (s.mean_rad.to_degrees(), s.sd_rad.to_degrees() + 0.0)
            });
            let half = 1.96 * sd / (mine.len() as f64).sqrt();
            let onset_rad = onset.map_or(target, |s| s.mean_rad);
            Point {
                target_deg: target.to_degrees(),
                onset_deg: onset_rad.to_degrees(),
                shift_deg: mean,
                sd_deg: sd,
                ci_low_deg: mean - half,
                ci_high_deg: mean + half,
                trials: mine.len(),
                first_order_deg: first_order
                    .as_ref()
                    .map_or(f64::NAN, |f| f(onset_rad).to_degrees()),
            }
        })
        .collect();
    let fit = fit_first_harmonic(&points);
    let extreme = |better: fn(f64, f64) -> bool| {
        points
            .iter()
            .filter(|p| p.shift_deg.is_finite())
            .fold((f64::NAN, f64::NAN), |acc, p| {
                if acc.0.is_nan() || better(p.shift_deg, acc.0) {
                    (p.shift_deg, p.target_deg)
                } else {
                    acc
                }
            })
    };
    let charge = delivered.iter().sum::<f64>() / fs;
    let (max_advance, max_delay) = (extreme(|a, b| a > b), extreme(|a, b| a < b));
    Ok(Some(Prc {
        settings: settings.clone(),
        phase_from,
        period_s,
        pulse: delivered,
        pulse_charge: charge,
        points,
        trials,
        fit,
        max_advance,
        max_delay,
        trials_per_phase: rounds,
        interrupted: rounds < settings.trials,
    }))
}

/// The trials' results as they come in, and how far the measurement is.
struct Board<F> {
    /// By trial index; `None` until done.
    outcomes: Vec<Option<Result<TrialOutcome, String>>>,
    done: usize,
    /// Trials before the first one not done.
    complete: usize,
    progress: F,
}

struct TrialOutcome {
    onset_rad: f64,
    shift_rad: f64,
    period_s: f64,
    delivered: Vec<f64>,
}

/// The two copies of one trial, stepped sample by sample.
struct Pair {
    pulsed: ForcedPlant,
    free: ForcedPlant,
    profile_sensor: crate::profile::SensorNode,
    fs: f64,
    sample: u64,
}

impl Pair {
    fn step(&mut self, stimulus: f64) {
        self.pulsed.push(stimulus);
        self.free.push(0.0);
        self.sample += 1;
    }
    fn time(&self) -> f64 {
        self.sample as f64 / self.fs
    }
    /// (observable, phase) of the pulsed and the free copy.
    fn sense(&self) -> ((f64, Option<f64>), (f64, Option<f64>)) {
        (
            self.pulsed.sense(self.profile_sensor),
            self.free.sense(self.profile_sensor),
        )
    }
}

/// One paired trial; `Ok(None)` when `interrupt` stopped it (checked in its long stretches,
/// the settling and the `cycles` periods after the pulse).
fn trial(
    profile: &Profile,
    pulse: &[f64],
    target: f64,
    seed: u64,
    settings: &Settings,
    phase_from: PhaseFrom,
    interrupt: &AtomicBool,
) -> Result<Option<TrialOutcome>, String> {
    let mut seeded = profile.clone();
    seeded.run.seed = seed;
    let fs = profile.run.sample_rate_hz;
    let mut pair = Pair {
        pulsed: forced_plant(&seeded)?,
        free: forced_plant(&seeded)?,
        profile_sensor: profile.sensor.node,
        fs,
        sample: 0,
    };
    let mut limiter =
        Limiter::new(&profile.safety.limits(), fs).map_err(|e| format!("safety: {e}"))?;
    limiter.declare_pulse_samples(pulse.len() as u64);
    let idle = StimSample {
        value: 0.0,
        onset: false,
        clock_phase_rad: f64::NAN,
    };
    // At least 4 samples, so the period is measured from 2 or more (and refused below).
    let settle = (settings.settle_s * fs).round().max(4.0) as u64;
    // Settle (the limiter's ramp-up runs meanwhile, so the pulse passes it at full scale).
    let mut tail = Vec::new();
    // The observable's spread over the first and the last quarter: is the rhythm kept up?
    let (mut first, mut last) = (Spread::default(), Spread::default());
    for n in 0..settle {
        if interrupt.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let v = limiter.process(idle).value;
        pair.step(v);
        let (obs, phase) = pair.sense().1;
        if n < settle / 4 {
            first.push(obs);
        } else if n >= settle - settle / 4 {
            last.push(obs);
        }
        if n >= settle / 2 {
            tail.push(match phase_from {
                PhaseFrom::Plant => phase.unwrap_or(f64::NAN),
                PhaseFrom::Observable => obs,
            });
        }
    }
    let (start, end) = (first.sd(), last.sd());
    if end < MIN_KEPT_AMPLITUDE * start {
        return Err(format!(
            "the plant's oscillation died out while settling: its amplitude (RMS of the \
             observable) decayed from {start:.3e} over the first quarter of the --settle {} s \
             to {end:.3e} over the last, below 1/{:.0} of it. The plant is below its \
             oscillation threshold (at rest), and a PRC needs a plant with a rhythm: raise its \
             excitability or drive above the threshold (e.g. model.params.lambda > 0 for \
             Stuart–Landau)",
            settings.settle_s,
            1.0 / MIN_KEPT_AMPLITUDE
        ));
    }
    let clock = match phase_from {
        PhaseFrom::Plant => PhaseClock::from_phases(&tail, fs)?,
        PhaseFrom::Observable => PhaseClock::from_observable(&tail, fs)?,
    };
    // A period measured over a fraction of a cycle is the transient's, not the rhythm's.
    let measured_s = tail.len() as f64 / fs;
    let cycles = measured_s * clock.omega / TAU;
    if cycles < MIN_MEASURED_CYCLES {
        return Err(format!(
            "--settle {} s: the rhythm's period is measured over the second half of the \
             settling, which held only {cycles:.2} cycles; at least {MIN_MEASURED_CYCLES} are \
             needed. Raise --settle to at least {} periods of the rhythm (about {:.3} s from \
             the {:.1} ms period measured so far)",
            settings.settle_s,
            2.0 * (MIN_MEASURED_CYCLES + 0.5),
            2.0 * (MIN_MEASURED_CYCLES + 0.5) * TAU / clock.omega,
            TAU / clock.omega * 1e3
        ));
    }
    let period = TAU / clock.omega;
    let limit = settle + (3.0 * period * fs).ceil() as u64;

    // Wait for the target phase.
    let onset_rad = match phase_from {
        PhaseFrom::Plant => {
            let mut previous = wrap_angle(pair.sense().1 .1.unwrap_or(0.0) - target);
            loop {
                if pair.sample > limit {
                    return Err(not_reached(target));
                }
                let v = limiter.process(idle).value;
                pair.step(v);
                let phase = pair.sense().1 .1.unwrap_or(f64::NAN);
                let d = wrap_angle(phase - target);
                if previous < 0.0 && d >= 0.0 && d - previous < PI {
                    break phase;
                }
                previous = d;
            }
        }
        PhaseFrom::Observable => {
            let mut crossing = Crossing::new(clock.level, clock.hysteresis);
            let t_up = loop {
                if pair.sample > limit {
                    return Err(not_reached(target));
                }
                let x = pair.sense().1 .0;
                let t = pair.time();
                if let Some(t_up) = crossing.feed(t, x, 1.0 / fs) {
                    break t_up;
                }
                let v = limiter.process(idle).value;
                pair.step(v);
            };
            let wait = (target + FRAC_PI_2).rem_euclid(TAU) / clock.omega;
            let onset = ((t_up + wait) * fs).ceil() as u64;
            while pair.sample < onset {
                let v = limiter.process(idle).value;
                pair.step(v);
            }
            wrap_angle(-FRAC_PI_2 + clock.omega * (pair.time() - t_up))
        }
    };

    // The pulse, through the limiter, then `cycles` periods.
    let onset_sample = pair.sample;
    let horizon = onset_sample + (settings.cycles * period * fs).round() as u64;
    let mut delivered = Vec::with_capacity(pulse.len());
    for (k, &value) in pulse.iter().enumerate() {
        let limited = limiter.process(StimSample {
            value,
            onset: k == 0,
            clock_phase_rad: f64::NAN,
        });
        if k == 0 && !limited.onset {
            return Err(
                "the profile's safety limits refuse the pulse; check [safety] \
                        (max_pulse_rate_hz, max_duty_cycle, duty_window_s)"
                    .into(),
            );
        }
        delivered.push(limited.value);
        pair.step(limited.value);
    }
    // Whatever the limiter still delivers (a charge recovery) belongs to the pulse too.
    while pair.sample < horizon {
        if interrupt.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let v = limiter.process(idle).value;
        if v != 0.0 {
            delivered.resize((pair.sample - onset_sample) as usize, 0.0);
            delivered.push(v);
        }
        pair.step(v);
    }
    let shift_rad = match phase_from {
        PhaseFrom::Plant => {
            let ((_, pulsed), (_, free)) = pair.sense();
            wrap_angle(pulsed.unwrap_or(f64::NAN) - free.unwrap_or(f64::NAN))
        }
        PhaseFrom::Observable => {
            let mut a = Crossing::new(clock.level, clock.hysteresis);
            let mut b = Crossing::new(clock.level, clock.hysteresis);
            let (mut t_pulsed, mut t_free) = (None, None);
            let give_up = pair.sample + (3.0 * period * fs).ceil() as u64;
            while t_pulsed.is_none() || t_free.is_none() {
                if pair.sample > give_up {
                    return Err(format!(
                        "no rising crossing of the observable within 3 periods after {} \
                         cycles: the pulse may have stopped the rhythm",
                        settings.cycles
                    ));
                }
                let ((x_pulsed, _), (x_free, _)) = pair.sense();
                let t = pair.time();
                t_pulsed = t_pulsed.or(a.feed(t, x_pulsed, 1.0 / fs));
                t_free = t_free.or(b.feed(t, x_free, 1.0 / fs));
                pair.step(0.0);
            }
            wrap_angle(clock.omega * (t_free.unwrap_or(0.0) - t_pulsed.unwrap_or(0.0)))
        }
    };
    Ok(Some(TrialOutcome {
        onset_rad,
        shift_rad,
        period_s: period,
        delivered,
    }))
}

fn not_reached(target: f64) -> String {
    format!(
        "the plant's phase did not reach {:.1}° within 3 periods after settling; is it \
         oscillating? (try a longer --settle)",
        target.to_degrees()
    )
}

/// The rhythm's angular frequency (and, for observable phases, its crossing level) measured
/// during settling.
struct PhaseClock {
    /// rad/s.
    omega: f64,
    /// The observable's mean.
    level: f64,
    /// Half-width of the hysteresis band around `level`.
    hysteresis: f64,
}

impl PhaseClock {
    /// From the plant's phases sampled at `fs`: the mean unwrapped advance.
    fn from_phases(phases: &[f64], fs: f64) -> Result<Self, String> {
        if phases.len() < 2 || phases.iter().any(|p| !p.is_finite()) {
            return Err("the plant's phase is undefined while settling".into());
        }
        let advance: f64 = phases.windows(2).map(|w| wrap_angle(w[1] - w[0])).sum();
        let omega = advance * fs / (phases.len() - 1) as f64;
        if omega.is_nan() || omega <= 0.0 {
            return Err(format!(
                "the plant's phase does not advance while settling (ω = {omega:.3} rad/s): \
                 it is not oscillating"
            ));
        }
        Ok(Self {
            omega,
            level: 0.0,
            hysteresis: 0.0,
        })
    }

    /// From the observable sampled at `fs`: the mean interval between rising crossings of its
    /// mean, with a hysteresis of a quarter of its SD against noise.
    fn from_observable(x: &[f64], fs: f64) -> Result<Self, String> {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        if sd.is_nan() || sd <= 0.0 || !mean.is_finite() {
            return Err(
                "the observable is constant while settling: the plant does not \
                        oscillate (or raise --settle)"
                    .into(),
            );
        }
        let mut crossing = Crossing::new(mean, 0.25 * sd);
        let times: Vec<f64> = x
            .iter()
            .enumerate()
            .filter_map(|(k, &v)| crossing.feed(k as f64 / fs, v, 1.0 / fs))
            .collect();
        if times.len() < 3 {
            return Err(format!(
                "the observable crossed its mean upwards {} times while settling; at least 3 \
                 are needed to measure the period: a PRC needs a plant with a rhythm (if this \
                 one has a slow one, raise --settle)",
                times.len()
            ));
        }
        let period = (times[times.len() - 1] - times[0]) / (times.len() - 1) as f64;
        Ok(Self {
            omega: TAU / period,
            level: mean,
            hysteresis: 0.25 * sd,
        })
    }
}

/// Running mean and standard deviation (Welford's, so a large mean does not cancel a small
/// spread).
#[derive(Default)]
struct Spread {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Spread {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }

    /// The population SD; 0 with no values.
    fn sd(&self) -> f64 {
        if self.n > 0.0 {
            (self.m2 / self.n).sqrt()
        } else {
            0.0
        }
    }
}

/// A rising-crossing detector with hysteresis: armed below `level − h`, fires when the signal
/// reaches `level`, at the linearly interpolated time.
struct Crossing {
    level: f64,
    h: f64,
    armed: bool,
    previous: Option<f64>,
}

impl Crossing {
    fn new(level: f64, h: f64) -> Self {
        Self {
            level,
            h,
            armed: false,
            previous: None,
        }
    }

    /// Feed the value at time `t` (samples `dt` apart); the crossing time when one completes.
    fn feed(&mut self, t: f64, x: f64, dt: f64) -> Option<f64> {
        let previous = self.previous.replace(x);
        if x < self.level - self.h {
            self.armed = true;
            return None;
        }
        if self.armed && x >= self.level {
            self.armed = false;
            let p = previous.unwrap_or(x);
            let frac = if x > p {
                (x - self.level) / (x - p)
            } else {
                0.0
            };
            return Some(t - frac.clamp(0.0, 1.0) * dt);
        }
        None
    }
}

/// For a single Stuart–Landau oscillator with scalar parameters and λ > 0: the first-order PRC
/// of the delivered pulse, `Δ(φ) = Σ_j Z(φ + ω t_j) g v_j / fs` with the infinitesimal PRC to a
/// push along Re z, `Z(φ) = −(sin φ + (β/μ) cos φ) / R`, `R = √(λ/μ)`, `ω = 2πf − βλ/μ`.
fn first_order_sl(profile: &Profile, delivered: &[f64]) -> Option<impl Fn(f64) -> f64> {
    let ModelParams::StuartLandau(p) = &profile.model.params else {
        return None;
    };
    let value = |s: &ParamSpec| match s {
        ParamSpec::Value(v) => Some(*v),
        _ => None,
    };
    let (lambda, freq, mu, beta) = (
        value(&p.lambda)?,
        value(&p.freq_hz)?,
        value(&p.mu)?,
        value(&p.beta)?,
    );
    if profile.model.nodes != 1 || !(lambda > 0.0 && mu > 0.0) || delivered.is_empty() {
        return None;
    }
    let radius = (lambda / mu).sqrt();
    let omega = TAU * freq - beta * lambda / mu;
    let fs = profile.run.sample_rate_hz;
    let gain = profile.model.forcing_gain;
    let pulse = delivered.to_vec();
    Some(move |phase: f64| {
        pulse
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let phi = phase + omega * j as f64 / fs;
                -(phi.sin() + beta / mu * phi.cos()) / radius * gain * v / fs
            })
            .sum()
    })
}

fn fit_first_harmonic(points: &[Point]) -> Fit {
    // Least squares of offset + a cos θ + b sin θ at the onset phases (3 × 3 normal equations).
    let rows: Vec<([f64; 3], f64)> = points
        .iter()
        .filter(|p| p.shift_deg.is_finite())
        .map(|p| {
            let t = p.onset_deg.to_radians();
            ([1.0, t.cos(), t.sin()], p.shift_deg)
        })
        .collect();
    let mut m = [[0.0; 3]; 3];
    let mut r = [0.0; 3];
    for (x, y) in &rows {
        for i in 0..3 {
            r[i] += x[i] * y;
            for j in 0..3 {
                m[i][j] += x[i] * x[j];
            }
        }
    }
    let c = solve3(m, r).unwrap_or([f64::NAN; 3]);
    let residual = (rows
        .iter()
        .map(|(x, y)| (y - (c[0] * x[0] + c[1] * x[1] + c[2] * x[2])).powi(2))
        .sum::<f64>()
        / rows.len().max(1) as f64)
        .sqrt();
    Fit {
        offset_deg: c[0],
        cos_deg: c[1],
        sin_deg: c[2],
        amplitude_deg: c[1].hypot(c[2]),
        advance_phase_deg: c[2].atan2(c[1]).to_degrees(),
        residual_rms_deg: residual,
    }
}

/// Gaussian elimination with partial pivoting; `None` when singular (fewer than 3 phases).
fn solve3(mut m: [[f64; 3]; 3], mut r: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-12 {
            return None;
        }
        m.swap(col, pivot);
        r.swap(col, pivot);
        let pivot_row = m[col];
        for row in col + 1..3 {
            let f = m[row][col] / pivot_row[col];
            for (a, b) in m[row].iter_mut().zip(&pivot_row).skip(col) {
                *a -= f * b;
            }
            r[row] -= f * r[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|k| m[row][k] * x[k]).sum();
        x[row] = (r[row] - s) / m[row][row];
    }
    Some(x)
}

/// Write `prc.csv` (one row per phase), `prc_trials.csv` (one row per trial), `prc.json`
/// (settings, period, pulse charge, fit, extremes) and `prc.svg` into `dir`.
pub fn write(dir: &Path, prc: &Prc, title: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create output folder '{}': {e}", dir.display()))?;
    let file = |name: &str| dir.join(name);
    let fail =
        |name: &str, e: std::io::Error| format!("cannot write '{}': {e}", file(name).display());
    let mut csv = String::from(
        "target_deg,onset_deg,shift_deg,sd_deg,ci_low_deg,ci_high_deg,trials,first_order_deg\n",
    );
    for p in &prc.points {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            p.target_deg,
            p.onset_deg,
            p.shift_deg,
            p.sd_deg,
            p.ci_low_deg,
            p.ci_high_deg,
            p.trials,
            p.first_order_deg
        ));
    }
    std::fs::write(file("prc.csv"), csv).map_err(|e| fail("prc.csv", e))?;
    let mut trials = std::io::BufWriter::new(
        std::fs::File::create(file("prc_trials.csv")).map_err(|e| fail("prc_trials.csv", e))?,
    );
    let mut body = String::from("target_deg,trial,seed,onset_deg,shift_deg\n");
    for t in &prc.trials {
        body.push_str(&format!(
            "{},{},{},{},{}\n",
            t.target_deg, t.trial, t.seed, t.onset_deg, t.shift_deg
        ));
    }
    trials
        .write_all(body.as_bytes())
        .and_then(|_| trials.flush())
        .map_err(|e| fail("prc_trials.csv", e))?;
    let json = serde_json::to_string_pretty(prc).map_err(|e| e.to_string())?;
    std::fs::write(file("prc.json"), json).map_err(|e| fail("prc.json", e))?;

    // Plotted in order of the onset phase (a target of ±180° may land on either end).
    let mut order: Vec<&Point> = prc.points.iter().collect();
    order.sort_by(|a, b| a.onset_deg.total_cmp(&b.onset_deg));
    let measured = Line {
        name: "measured (mean)".into(),
        points: order.iter().map(|p| (p.onset_deg, p.shift_deg)).collect(),
    };
    let mut lines = vec![measured];
    if order.iter().any(|p| p.first_order_deg.is_finite()) {
        lines.push(Line {
            name: "first-order SL (analytic)".into(),
            points: order
                .iter()
                .map(|p| (p.onset_deg, p.first_order_deg))
                .collect(),
        });
    }
    let band = Band {
        name: "95 % CI".into(),
        points: order
            .iter()
            .map(|p| (p.onset_deg, p.ci_low_deg, p.ci_high_deg))
            .collect(),
    };
    let chart = Chart {
        title,
        x_label: "phase at pulse onset (deg, 0 = peak)",
        y_label: "phase shift (deg, + = advance)",
        lines: &lines,
        bands: &[band],
        markers: true,
        ..Chart::default()
    };
    chart_svg(&file("prc.svg"), &chart, (800, 500))
}
