//! Kuramoto phase-oscillator network (MODELS.md §1):
//! `dθ_i/dt = ω_i + K Σ_j C_ij sin(θ_j(t − τ_ij) − θ_i − α) + Im(F_i e^{−iθ_i}) + σ ξ_i`.
//!
//! The forcing term is the phase reduction of an additive complex forcing on a unit limit cycle,
//! the same convention as the Stuart–Landau plant: a rotating drive `F e^{iΩt}` gives the
//! textbook `F sin(Ωt − θ)` (locking iff `|Ω − ω| ≤ F`), and a real stimulus `u` gives kicks
//! with the phase response `−u sin θ` (a pulse at the falling zero crossing, θ = π/2, retards).
//! With all-to-all coupling and row normalisation `C_ij = 1/N`: the `K/N` convention, evaluated
//! as a mean field in O(N). Observable `cos θ`; phase `θ` wrapped.

use super::delay::DelayLine;
use super::{CouplingPlan, ParamSpec, Plant, PlantCommon};
use crate::analysis::wrap_angle;
use crate::integrate::{Dynamics, Integrator, NoiseSd};
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// `[model.params]` of `kind = "kuramoto"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KuramotoParams {
    /// Natural frequency, Hz (ω = 2π f).
    pub freq_hz: ParamSpec,
    /// Phase lag α of the Sakaguchi–Kuramoto coupling, degrees.
    #[serde(default)]
    pub phase_lag_deg: f64,
}

struct PhaseField {
    nodes: usize,
    omega: Vec<f64>,
    /// `e^{−iα}`.
    lag_rotation: Complex64,
    plan: CouplingPlan<Complex64>,
    gain: f64,
    history: DelayLine<Complex64>,
    forcing: Vec<Complex64>,
    delayed: Vec<Complex64>,
    stage_u: Vec<Complex64>,
    input: Vec<Complex64>,
    /// σ of every state component (units of the state per √s), `None` without noise.
    noise: Option<f64>,
}

impl Dynamics for PhaseField {
    fn dim(&self) -> usize {
        self.nodes
    }

    fn drift(&mut self, theta: &[f64], out: &mut [f64]) {
        // One sin/cos per node per stage: e^{iθ} serves the coupling sum and, conjugated, the
        // projections onto each node's phase.
        for (u, t) in self.stage_u.iter_mut().zip(theta) {
            let (sin, cos) = t.sin_cos();
            *u = Complex64::new(cos, sin);
        }
        let coupled = self.gain != 0.0;
        if coupled {
            self.plan
                .total_input(&self.delayed, &self.stage_u, &mut self.input);
        }
        for (i, o) in out.iter_mut().enumerate() {
            let back = self.stage_u[i].conj();
            let mut d = self.omega[i] + (self.forcing[i] * back).im;
            if coupled {
                d += self.gain * (self.input[i] * back * self.lag_rotation).im;
            }
            *o = d;
        }
    }

    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        self.noise.map(NoiseSd::Uniform)
    }
}

/// A Kuramoto network.
pub struct Kuramoto {
    field: PhaseField,
    integrator: Integrator,
    theta: Vec<f64>,
    initial: Vec<f64>,
    initial_unit: Vec<Complex64>,
    noise: GaussianNoise,
    seed: u64,
    steps: u64,
}

impl Kuramoto {
    /// Build from the common plant settings and the Kuramoto parameters. Initial phases are
    /// uniform random from the seed.
    pub fn new(common: &PlantCommon, params: &KuramotoParams) -> Result<Self, String> {
        let n = common.nodes;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let freq = params
            .freq_hz
            .realize(n, &mut rng)
            .map_err(|e| format!("model.params.freq_hz: {e}"))?;
        if !params.phase_lag_deg.is_finite() {
            return Err("model.params.phase_lag_deg: must be a finite number of degrees".into());
        }
        let initial: Vec<f64> = (0..n)
            .map(|_| rng.random::<f64>() * TAU - TAU / 2.0)
            .collect();
        let plan = CouplingPlan::new(&common.coupling, n, common.dt);
        let unit: Vec<Complex64> = initial
            .iter()
            .map(|t| Complex64::from_polar(1.0, *t))
            .collect();
        let field = PhaseField {
            nodes: n,
            omega: freq.iter().map(|f| TAU * f).collect(),
            lag_rotation: Complex64::from_polar(1.0, -params.phase_lag_deg.to_radians()),
            history: DelayLine::new(n, plan.max_delay_steps, common.history_precision, &unit),
            plan,
            gain: common.gain,
            forcing: vec![Complex64::default(); n],
            delayed: vec![Complex64::default(); n],
            stage_u: vec![Complex64::default(); n],
            input: vec![Complex64::default(); n],
            noise: (common.noise_sd > 0.0).then_some(common.noise_sd),
        };
        Ok(Self {
            integrator: Integrator::new(common.scheme, n, common.dt),
            field,
            theta: initial.clone(),
            initial,
            initial_unit: unit,
            noise: GaussianNoise::new(common.seed),
            seed: common.seed,
            steps: 0,
        })
    }

    /// The order parameter `R e^{iΨ} = (1/N) Σ_j e^{iθ_j}`.
    pub fn order_parameter(&self) -> Complex64 {
        self.theta
            .iter()
            .map(|t| Complex64::from_polar(1.0, *t))
            .sum::<Complex64>()
            / self.field.nodes as f64
    }

    /// Unwrapped phase of `node`, rad.
    pub fn theta(&self, node: usize) -> f64 {
        self.theta[node]
    }
}

impl Plant for Kuramoto {
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
        self.field.forcing.copy_from_slice(forcing);
        if self.field.gain != 0.0 {
            self.field
                .plan
                .delayed_input(&self.field.history, &mut self.field.delayed);
        }
        self.integrator
            .step(&mut self.field, &mut self.theta, &mut self.noise);
        // Keep θ bounded so that precision does not degrade over hours of audio-rate steps.
        if self.steps.is_multiple_of(4096) {
            for t in self.theta.iter_mut() {
                *t = wrap_angle(*t);
            }
        }
        if self.field.plan.max_delay_steps > 0 {
            self.field
                .history
                .push(self.theta.iter().map(|t| Complex64::from_polar(1.0, *t)));
        }
        self.steps += 1;
    }

    fn observable(&self, node: usize) -> f64 {
        self.theta[node].cos()
    }

    fn phase(&self, node: usize) -> Option<f64> {
        Some(wrap_angle(self.theta[node]))
    }

    fn mean_phase(&self) -> Option<f64> {
        Some(self.order_parameter().arg())
    }

    fn reset(&mut self) {
        self.theta.copy_from_slice(&self.initial);
        self.field.history.reset(&self.initial_unit);
        self.noise = GaussianNoise::new(self.seed);
        self.steps = 0;
    }

    fn state_bytes(&self) -> usize {
        self.theta.len() * 8 + self.field.history.bytes() + self.field.plan.bytes()
    }
}
