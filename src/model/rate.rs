//! Firing-rate population network (MODELS.md §5, seed 004):
//! `dr_i/dt = [−r_i + φ(w_i r_i + I_i + F_i + K Σ_j C_ij r_j(t − τ_ij))] / τ_i + σ ξ_i(t)`.
//!
//! - `r` is the population firing rate in Hz (spikes per second per neuron), and the argument of
//!   `φ` is an input in the same rate-equivalent units (Hz): `w` is dimensionless, `I` (the
//!   `input` parameter), the forcing `F` and `K Σ_j C_ij r_j` are all in Hz. `τ` is in seconds.
//! - Transfer `φ`: threshold-linear `max(0, x)`, or the logistic sigmoid
//!   `φ(x) = r_max / (1 + e^{−β (x − θ)})` with ceiling `r_max` = `max_rate` (Hz, default
//!   100), gain `β` = `sigmoid_gain` (1/Hz, default 0.1) and threshold `θ` = `sigmoid_threshold`
//!   (Hz, default 50). Its steepest slope is `φ'(θ) = r_max β / 4` (2.5 with the defaults), so a
//!   node with `w < 4 / (r_max β)` (0.4) has exactly one fixed point for every input, and with
//!   the defaults, `w = 1` and `I = 0` it is bistable: rates ≈ 0.72 Hz (off) and ≈ 99.28 Hz (on)
//!   around the unstable 50 Hz. A fixed point `r*` is stable iff `w φ'(w r* + I) < 1`.
//! - Network: `K` is `common.gain` (dimensionless) and the coupled variable is the source rate
//!   `r_j` (held in the delay line as a complex number with zero imaginary part). The coupling is
//!   an additive synaptic input inside `φ`, not a diffusive difference: a node with no incoming
//!   edges is unaffected by the others.
//! - Forcing: `F_i = Re forcing[i]` (Hz of input) enters inside `φ`, like `I`; the imaginary part
//!   is ignored.
//! - Noise: additive white noise on the rate equation, `σ` = `common.noise_sd` in Hz/√s (the
//!   state moves by `σ √dt N(0,1)` per step). It can push `r` transiently below 0; `φ` keeps its
//!   feedback non-negative.
//! - Observable: `r` (Hz). There is no phase ([`Plant::phase`] is `None`).
//!
//! With the threshold-linear transfer and `w ≥ 1` nothing bounds the rate: for positive drive it
//! grows without limit (exponentially for `w > 1`). That is the model's physics, so it is not
//! rejected; use the sigmoid for strong recurrence.

use super::delay::DelayLine;
use super::sigmoid::logistic_in_place;
use super::{copy_real_parts, CouplingPlan, ParamSpec, Plant, PlantCommon};
use crate::integrate::{Dynamics, Integrator, NoiseSd};
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// Default sigmoid ceiling `r_max`, Hz.
pub const DEFAULT_MAX_RATE_HZ: f64 = 100.0;
/// Default sigmoid gain `β`, 1/Hz.
pub const DEFAULT_SIGMOID_GAIN: f64 = 0.1;
/// Default sigmoid threshold `θ`, Hz.
pub const DEFAULT_SIGMOID_THRESHOLD_HZ: f64 = 50.0;

/// The transfer function `φ` of [`RateParams`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transfer {
    /// `φ(x) = max(0, x)` (Hz → Hz); unbounded above.
    ThresholdLinear,
    /// `φ(x) = r_max / (1 + e^{−β (x − θ)})`, bounded in `(0, r_max)`; the default because a
    /// bounded rate cannot run away.
    #[default]
    Sigmoid,
}

/// `[model.params]` of the firing-rate model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateParams {
    /// Population time constant τ, seconds (> 0); default 0.01.
    #[serde(default = "default_tau_s")]
    pub tau_s: ParamSpec,
    /// Recurrent weight w, dimensionless (> 0 self-excitation, < 0 self-inhibition).
    pub w: ParamSpec,
    /// Constant external input I, Hz (rate-equivalent input units).
    pub input: ParamSpec,
    /// Transfer function; default `"sigmoid"`.
    #[serde(default)]
    pub transfer: Transfer,
    /// Sigmoid ceiling `r_max`, Hz (> 0); sigmoid only, default [`DEFAULT_MAX_RATE_HZ`].
    #[serde(default)]
    pub max_rate: Option<f64>,
    /// Sigmoid gain `β`, 1/Hz (> 0); sigmoid only, default [`DEFAULT_SIGMOID_GAIN`].
    #[serde(default)]
    pub sigmoid_gain: Option<f64>,
    /// Sigmoid threshold `θ` (input at half the ceiling), Hz; sigmoid only, default
    /// [`DEFAULT_SIGMOID_THRESHOLD_HZ`].
    #[serde(default)]
    pub sigmoid_threshold: Option<f64>,
    /// Initial rate, Hz (≥ 0); default 0.
    #[serde(default = "zero")]
    pub initial_rate: ParamSpec,
}

fn default_tau_s() -> ParamSpec {
    ParamSpec::Value(0.01)
}
fn zero() -> ParamSpec {
    ParamSpec::Value(0.0)
}

/// `φ` with its parameters resolved.
#[derive(Clone, Copy, Debug)]
enum Phi {
    ThresholdLinear,
    Sigmoid {
        max_rate: f64,
        gain: f64,
        threshold: f64,
    },
}

impl Phi {
    /// `out[i] ← (φ(x_i) − r_i) / τ_i`, for the net inputs `x` given in `out`. The sigmoid's
    /// logistics run in one vectorised pass over the slice, between two passes that vectorise.
    /// Far below θ it returns the kernel's `r_max/(1 + e^708)`, a rate below 1e-305 Hz, not 0.
    fn relax(self, r: &[f64], inv_tau: &[f64], out: &mut [f64]) {
        match self {
            Phi::ThresholdLinear => {
                for ((o, r), k) in out.iter_mut().zip(r).zip(inv_tau) {
                    *o = (o.max(0.0) - r) * k;
                }
            }
            Phi::Sigmoid {
                max_rate,
                gain,
                threshold,
            } => {
                for o in out.iter_mut() {
                    *o = -gain * (*o - threshold);
                }
                logistic_in_place(out);
                for ((o, r), k) in out.iter_mut().zip(r).zip(inv_tau) {
                    *o = (max_rate * *o - r) * k;
                }
            }
        }
    }
}

/// The right-hand side and everything a step reads.
struct RateField {
    nodes: usize,
    phi: Phi,
    /// 1/τ per node, 1/s.
    inv_tau: Vec<f64>,
    w: Vec<f64>,
    /// I per node, Hz.
    input: Vec<f64>,
    plan: CouplingPlan<f64>,
    /// K, dimensionless.
    gain: f64,
    history: DelayLine<f64>,
    /// Re of the forcing held over the step, Hz.
    forcing: Vec<f64>,
    delayed: Vec<f64>,
    coupled: Vec<f64>,
    /// σ of every state component (units of the state per √s), `None` without noise.
    noise: Option<f64>,
}

impl Dynamics for RateField {
    fn dim(&self) -> usize {
        self.nodes
    }

    fn drift(&mut self, r: &[f64], out: &mut [f64]) {
        let own = self.w.iter().zip(r).zip(&self.input).zip(&self.forcing);
        let own = own.map(|(((w, r), input), f)| w * r + input + f);
        if self.gain != 0.0 {
            self.plan.instant_input(&self.delayed, r, &mut self.coupled);
            let network = self.plan.network_input(&self.delayed, &self.coupled);
            for ((o, x), c) in out.iter_mut().zip(own).zip(network) {
                *o = x + self.gain * c;
            }
        } else {
            for (o, x) in out.iter_mut().zip(own) {
                *o = x;
            }
        }
        self.phi.relax(r, &self.inv_tau, out);
    }

    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        self.noise.map(NoiseSd::Uniform)
    }
}

/// A network of firing-rate populations.
pub struct Rate {
    field: RateField,
    integrator: Integrator,
    /// Rate per node, Hz.
    state: Vec<f64>,
    /// Initial rate per node, Hz.
    initial: Vec<f64>,
    /// The initial rates as the delay line stores them.
    initial_history: Vec<f64>,
    noise: GaussianNoise,
    seed: u64,
    steps: u64,
}

impl Rate {
    /// Build from the common plant settings and the rate parameters. Errors name the offending
    /// `model.params.<key>`.
    pub fn new(common: &PlantCommon, params: &RateParams) -> Result<Self, String> {
        let n = common.nodes;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let mut realize = |name: &str, spec: &ParamSpec| {
            spec.realize(n, &mut rng)
                .map_err(|e| format!("model.params.{name}: {e}"))
        };
        let tau = realize("tau_s", &params.tau_s)?;
        let w = realize("w", &params.w)?;
        let input = realize("input", &params.input)?;
        let initial = realize("initial_rate", &params.initial_rate)?;
        if let Some(t) = tau.iter().find(|t| **t <= 0.0) {
            return Err(format!(
                "model.params.tau_s: the time constant must be > 0 seconds, got {t}"
            ));
        }
        if let Some(r) = initial.iter().find(|r| **r < 0.0) {
            return Err(format!(
                "model.params.initial_rate: a firing rate must be ≥ 0 Hz, got {r}"
            ));
        }
        let phi = resolve_transfer(params)?;
        let plan = CouplingPlan::new(&common.coupling, n, common.dt);
        let initial_history: Vec<f64> = initial.to_vec();
        let field = RateField {
            nodes: n,
            phi,
            inv_tau: tau.iter().map(|t| 1.0 / t).collect(),
            w,
            input,
            history: DelayLine::new(
                n,
                plan.max_delay_steps,
                common.history_precision,
                &initial_history,
            ),
            plan,
            gain: common.gain,
            forcing: vec![0.0; n],
            delayed: vec![0.0; n],
            coupled: vec![0.0; n],
            noise: (common.noise_sd > 0.0).then_some(common.noise_sd),
        };
        Ok(Self {
            integrator: Integrator::new(common.scheme, n, common.dt),
            field,
            state: initial.clone(),
            initial,
            initial_history,
            noise: GaussianNoise::new(common.seed),
            seed: common.seed,
            steps: 0,
        })
    }
}

/// Check the transfer keys: the sigmoid's must be valid, and none may be given for
/// threshold-linear (a silently ignored key would hide a mistake in the profile).
fn resolve_transfer(params: &RateParams) -> Result<Phi, String> {
    let keys = [
        ("max_rate", params.max_rate),
        ("sigmoid_gain", params.sigmoid_gain),
        ("sigmoid_threshold", params.sigmoid_threshold),
    ];
    match params.transfer {
        Transfer::ThresholdLinear => {
            if let Some((key, _)) = keys.iter().find(|(_, v)| v.is_some()) {
                return Err(format!(
                    "model.params.{key}: only applies to transfer = \"sigmoid\"; remove it or \
                     set transfer = \"sigmoid\""
                ));
            }
            Ok(Phi::ThresholdLinear)
        }
        Transfer::Sigmoid => {
            let max_rate = params.max_rate.unwrap_or(DEFAULT_MAX_RATE_HZ);
            let gain = params.sigmoid_gain.unwrap_or(DEFAULT_SIGMOID_GAIN);
            let threshold = params
                .sigmoid_threshold
                .unwrap_or(DEFAULT_SIGMOID_THRESHOLD_HZ);
            if !(max_rate.is_finite() && max_rate > 0.0) {
                return Err(format!(
                    "model.params.max_rate: the sigmoid ceiling must be a finite rate > 0 Hz, \
                     got {max_rate}"
                ));
            }
            if !(gain.is_finite() && gain > 0.0) {
                return Err(format!(
                    "model.params.sigmoid_gain: must be finite and > 0 (1/Hz), got {gain}"
                ));
            }
            if !threshold.is_finite() {
                return Err(format!(
                    "model.params.sigmoid_threshold: must be a finite input in Hz, got {threshold}"
                ));
            }
            Ok(Phi::Sigmoid {
                max_rate,
                gain,
                threshold,
            })
        }
    }
}

impl Plant for Rate {
    fn nodes(&self) -> usize {
        self.field.nodes
    }

    fn dt(&self) -> f64 {
        self.integrator.dt()
    }

    fn time(&self) -> f64 {
        self.steps as f64 * self.integrator.dt()
    }

    fn step(&mut self, forcing: &[Complex64]) {
        copy_real_parts(&mut self.field.forcing, forcing);
        if self.field.gain != 0.0 {
            self.field
                .plan
                .delayed_input_unless_row(&self.field.history, &mut self.field.delayed);
        }
        self.integrator
            .step(&mut self.field, &mut self.state, &mut self.noise);
        if self.field.plan.max_delay_steps > 0 {
            self.field.history.push(self.state.iter().copied());
        }
        self.steps += 1;
    }

    /// The rate `r` of `node`, Hz.
    fn observable(&self, node: usize) -> f64 {
        self.state[node]
    }

    fn phase(&self, _node: usize) -> Option<f64> {
        None
    }

    fn mean_phase(&self) -> Option<f64> {
        None
    }

    fn reset(&mut self) {
        self.state.copy_from_slice(&self.initial);
        self.field.history.reset(&self.initial_history);
        self.noise = GaussianNoise::new(self.seed);
        self.steps = 0;
    }

    fn state_bytes(&self) -> usize {
        self.state.len() * 8 + self.field.history.bytes() + self.field.plan.bytes()
    }
}
