//! Wilson–Cowan excitatory–inhibitory network with the refractory factor (MODELS.md §6):
//!
//! `τ_E dE_i/dt = −E_i + (1 − r_E E_i) S_E(c_EE E_i − c_EI I_i + P_i + F_i + K Σ_j C_ij E_j(t − τ_ij))`
//! `τ_I dI_i/dt = −I_i + (1 − r_I I_i) S_I(c_IE E_i − c_II I_i + Q_i)`
//! `S(x) = 1/(1 + e^{−a(x − θ)}) − 1/(1 + e^{aθ})` (so `S(0) = 0`),
//! plus white noise `σ ξ_i(t)` on `dE_i/dt`.
//!
//! - Units: `E`, `I` (fractions of active cells), `P`, `Q`, `F`, the weights `c` and the
//!   thresholds `θ` are dimensionless, as in Wilson & Cowan (1972); `a` is the sigmoid slope per
//!   input unit. The time constants `tau_e`, `tau_i` are in model time units and one model unit
//!   is `time_scale_s` seconds (default 0.01 s = 10 ms): the plant steps in seconds like every
//!   other plant, with `dE/dt` in 1/s equal to the right-hand side over `τ_E · time_scale_s`.
//! - Defaults: the 1972 limit-cycle set (c_EE = 16, c_EI = 12, c_IE = 15, c_II = 3, a_E = 1.3,
//!   θ_E = 4, a_I = 2, θ_I = 3.7, r_E = r_I = 1, P = 1.25, Q = 0, τ_E = τ_I = 1). With these a
//!   single node oscillates with a period of ≈ 5.003 model units (≈ 50.0 ms, ≈ 20.0 Hz at
//!   10 ms per unit); at `P = 0` it rests at `E = I = 0` (exactly, since `S(0) = 0`).
//!   Wilson & Cowan write the refractory factor as `(k_E − r_E E)` with `k_E = max S_E ≈ 0.9945`;
//!   MODELS.md's `(1 − r_E E)` is used here.
//! - Network: `K` is `common.gain` (dimensionless) and the coupled variable is the source's `E`
//!   (held in the delay line as a complex number with zero imaginary part). The coupling is an
//!   additive excitatory input inside `S_E`, not a diffusive difference.
//! - Forcing: `F_i = Re forcing[i]` (input units of `P`) enters inside `S_E`; the imaginary part
//!   is ignored.
//! - Noise: `σ` = `common.noise_sd` on the `E` equation only, in 1/√s (`E` moves by
//!   `σ √dt N(0,1)` per step of `dt` seconds).
//! - Observable: `E`. There is no phase ([`Plant::phase`] is `None`).

use super::delay::DelayLine;
use super::sigmoid::logistic_in_place;
use super::{copy_real_parts, CouplingPlan, ParamSpec, Plant, PlantCommon};
use crate::integrate::{Dynamics, Integrator, NoiseSd};
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// `[model.params]` of the Wilson–Cowan model. Every key is optional; the defaults are the
/// Wilson & Cowan (1972) limit-cycle set. All quantities except `time_scale_s` are dimensionless
/// (times in model units).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WilsonCowanParams {
    /// E → E weight c_EE (≥ 0); default 16.
    pub c_ee: f64,
    /// I → E weight c_EI (≥ 0, enters with a minus sign); default 12.
    pub c_ei: f64,
    /// E → I weight c_IE (≥ 0); default 15.
    pub c_ie: f64,
    /// I → I weight c_II (≥ 0, enters with a minus sign); default 3.
    pub c_ii: f64,
    /// Slope a_E of S_E per input unit (> 0); default 1.3.
    pub a_e: f64,
    /// Threshold θ_E of S_E, input units; default 4.
    pub theta_e: f64,
    /// Slope a_I of S_I per input unit (> 0); default 2.
    pub a_i: f64,
    /// Threshold θ_I of S_I, input units; default 3.7.
    pub theta_i: f64,
    /// Refractory factor r_E (≥ 0); default 1.
    pub r_e: f64,
    /// Refractory factor r_I (≥ 0); default 1.
    pub r_i: f64,
    /// External input P to the excitatory population, input units (per node); default 1.25.
    pub p: ParamSpec,
    /// External input Q to the inhibitory population, input units (per node); default 0.
    pub q: ParamSpec,
    /// Excitatory time constant τ_E, model time units (> 0, per node); default 1.
    pub tau_e: ParamSpec,
    /// Inhibitory time constant τ_I, model time units (> 0, per node); default 1.
    pub tau_i: ParamSpec,
    /// Seconds per model time unit (> 0); default 0.01.
    pub time_scale_s: f64,
    /// Initial E (per node, dimensionless); default 0.
    pub initial_e: ParamSpec,
    /// Initial I (per node, dimensionless); default 0.
    pub initial_i: ParamSpec,
}

impl Default for WilsonCowanParams {
    fn default() -> Self {
        Self {
            c_ee: 16.0,
            c_ei: 12.0,
            c_ie: 15.0,
            c_ii: 3.0,
            a_e: 1.3,
            theta_e: 4.0,
            a_i: 2.0,
            theta_i: 3.7,
            r_e: 1.0,
            r_i: 1.0,
            p: ParamSpec::Value(1.25),
            q: ParamSpec::Value(0.0),
            tau_e: ParamSpec::Value(1.0),
            tau_i: ParamSpec::Value(1.0),
            time_scale_s: 0.01,
            initial_e: ParamSpec::Value(0.0),
            initial_i: ParamSpec::Value(0.0),
        }
    }
}

/// `S(x) = 1/(1 + e^{−a(x − θ)}) − 1/(1 + e^{aθ})`.
#[derive(Clone, Copy, Debug)]
struct Sigmoid {
    a: f64,
    theta: f64,
    /// `1/(1 + e^{aθ})`, the offset that makes `S(0) = 0`.
    offset: f64,
}

impl Sigmoid {
    fn new(a: f64, theta: f64) -> Self {
        // By the drift's own kernel, so that `S(0)` is exactly 0 (rest is a fixed point).
        let mut offset = [a * theta];
        logistic_in_place(&mut offset);
        Self {
            a,
            theta,
            offset: offset[0],
        }
    }

    /// The argument `z` of the logistic `1/(1 + e^z)` at input `x`.
    #[inline]
    fn exponent(self, x: f64) -> f64 {
        -self.a * (x - self.theta)
    }
}

struct WcField {
    nodes: usize,
    c_ee: f64,
    c_ei: f64,
    c_ie: f64,
    c_ii: f64,
    s_e: Sigmoid,
    s_i: Sigmoid,
    r_e: f64,
    r_i: f64,
    p: Vec<f64>,
    q: Vec<f64>,
    /// `1/(τ_E · time_scale)` per node, 1/s.
    rate_e: Vec<f64>,
    /// `1/(τ_I · time_scale)` per node, 1/s.
    rate_i: Vec<f64>,
    plan: CouplingPlan<f64>,
    /// K, dimensionless.
    gain: f64,
    history: DelayLine<f64>,
    /// Re of the forcing held over the step, input units.
    forcing: Vec<f64>,
    delayed: Vec<f64>,
    coupled: Vec<f64>,
    /// `[z_E…, z_I…]`: the sigmoids' exponents of every node, then their logistics (one
    /// vectorised pass over all nodes).
    sigmoid: Vec<f64>,
    /// `[σ…, 0…]`: noise on E only.
    noise: Option<Vec<f64>>,
}

impl Dynamics for WcField {
    fn dim(&self) -> usize {
        2 * self.nodes
    }

    fn drift(&mut self, state: &[f64], out: &mut [f64]) {
        let coupled = self.gain != 0.0;
        if coupled {
            // The E block is the coupled variable of every node, contiguous: no gather.
            self.plan
                .instant_input(&self.delayed, &state[..self.nodes], &mut self.coupled);
        }
        // Out of the field for the passes (a move, no allocation), so that they can read the
        // rest of it.
        let mut sigmoid = std::mem::take(&mut self.sigmoid);
        if coupled {
            let network = self.plan.network_input(&self.delayed, &self.coupled);
            exponents::<true>(self, state, network, &mut sigmoid);
        } else {
            exponents::<false>(self, state, &self.p, &mut sigmoid);
        }
        logistic_in_place(&mut sigmoid);
        slopes(self, state, &sigmoid, out);
        self.sigmoid = sigmoid;
    }

    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        self.noise.as_deref().map(NoiseSd::PerComponent)
    }
}

/// The drift's first pass: the sigmoids' exponents `[z_E, z_I]` of every node at `state`, with
/// the network input `network` when `COUPLED` (else unread). Loops over zipped slices (no
/// bounds checks) that vectorise, compiled for AVX2 as well (element-wise IEEE operations, no
/// fused multiply-adds: the same bits either way).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn exponents<const COUPLED: bool>(w: &WcField, state: &[f64], network: &[f64], z: &mut [f64]) {
    let n = w.nodes;
    let (e, inh) = state[..2 * n].split_at(n);
    let (z_e, z_i) = z[..2 * n].split_at_mut(n);
    let nodes = e
        .iter()
        .zip(inh)
        .zip(z_e.iter_mut().zip(z_i))
        .zip(w.p[..n].iter().zip(&w.q[..n]))
        .zip(w.forcing[..n].iter().zip(&network[..n]));
    for ((((&e, &inh), (z_e, z_i)), (&p, &q)), (&f, &u)) in nodes {
        let mut x_e = w.c_ee * e - w.c_ei * inh + p + f;
        if COUPLED {
            x_e += w.gain * u;
        }
        let x_i = w.c_ie * e - w.c_ii * inh + q;
        *z_e = w.s_e.exponent(x_e);
        *z_i = w.s_i.exponent(x_i);
    }
}

/// The drift's last pass: `(Ė, İ)` of every node from `state` and its logistics `l`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn slopes(w: &WcField, state: &[f64], l: &[f64], out: &mut [f64]) {
    let n = w.nodes;
    let (off_e, off_i) = (w.s_e.offset, w.s_i.offset);
    let (e, inh) = state[..2 * n].split_at(n);
    let (o_e, o_i) = out[..2 * n].split_at_mut(n);
    let (l_e, l_i) = l[..2 * n].split_at(n);
    let excitatory = e.iter().zip(o_e).zip(l_e).zip(&w.rate_e[..n]);
    for (((&e, o), &l), &rate) in excitatory {
        *o = (-e + (1.0 - w.r_e * e) * (l - off_e)) * rate;
    }
    let inhibitory = inh.iter().zip(o_i).zip(l_i).zip(&w.rate_i[..n]);
    for (((&inh, o), &l), &rate) in inhibitory {
        *o = (-inh + (1.0 - w.r_i * inh) * (l - off_i)) * rate;
    }
}

/// A Wilson–Cowan E–I network.
pub struct WilsonCowan {
    field: WcField,
    integrator: Integrator,
    /// `E` of every node, then `I` of every node (`[E_0 … E_{n−1}, I_0 … I_{n−1}]`): two
    /// blocks, so that the per-node passes vectorise and the coupled `E` is one slice.
    state: Vec<f64>,
    initial: Vec<f64>,
    /// Initial E per node as the delay line stores it.
    initial_history: Vec<f64>,
    noise: GaussianNoise,
    seed: u64,
    steps: u64,
}

impl WilsonCowan {
    /// Build from the common plant settings and the Wilson–Cowan parameters. Errors name the
    /// offending `model.params.<key>`.
    pub fn new(common: &PlantCommon, params: &WilsonCowanParams) -> Result<Self, String> {
        let n = common.nodes;
        check_scalars(params)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let mut realize = |name: &str, spec: &ParamSpec| {
            spec.realize(n, &mut rng)
                .map_err(|e| format!("model.params.{name}: {e}"))
        };
        let p = realize("p", &params.p)?;
        let q = realize("q", &params.q)?;
        let tau_e = realize("tau_e", &params.tau_e)?;
        let tau_i = realize("tau_i", &params.tau_i)?;
        let e0 = realize("initial_e", &params.initial_e)?;
        let i0 = realize("initial_i", &params.initial_i)?;
        for (name, taus) in [("tau_e", &tau_e), ("tau_i", &tau_i)] {
            if let Some(t) = taus.iter().find(|t| **t <= 0.0) {
                return Err(format!(
                    "model.params.{name}: a time constant must be > 0 model time units, got {t}"
                ));
            }
        }
        let per_second = |taus: &[f64]| -> Vec<f64> {
            taus.iter()
                .map(|t| 1.0 / (t * params.time_scale_s))
                .collect()
        };
        let plan = CouplingPlan::new(&common.coupling, n, common.dt);
        let initial_history: Vec<f64> = e0.to_vec();
        let field = WcField {
            nodes: n,
            c_ee: params.c_ee,
            c_ei: params.c_ei,
            c_ie: params.c_ie,
            c_ii: params.c_ii,
            s_e: Sigmoid::new(params.a_e, params.theta_e),
            s_i: Sigmoid::new(params.a_i, params.theta_i),
            r_e: params.r_e,
            r_i: params.r_i,
            p,
            q,
            rate_e: per_second(&tau_e),
            rate_i: per_second(&tau_i),
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
            sigmoid: vec![0.0; 2 * n],
            noise: (common.noise_sd > 0.0).then(|| {
                let mut sd = vec![common.noise_sd; n];
                sd.resize(2 * n, 0.0);
                sd
            }),
        };
        let initial: Vec<f64> = e0.iter().chain(&i0).copied().collect();
        Ok(Self {
            integrator: Integrator::new(common.scheme, 2 * n, common.dt),
            field,
            state: initial.clone(),
            initial,
            initial_history,
            noise: GaussianNoise::new(common.seed),
            seed: common.seed,
            steps: 0,
        })
    }

    /// Excitatory activity `E` of `node` (dimensionless, the observable).
    pub fn e(&self, node: usize) -> f64 {
        self.state[node]
    }

    /// Inhibitory activity `I` of `node` (dimensionless).
    pub fn i(&self, node: usize) -> f64 {
        self.state[self.field.nodes + node]
    }
}

/// Validate the scalar (network-wide) parameters.
fn check_scalars(p: &WilsonCowanParams) -> Result<(), String> {
    let non_negative = [
        ("c_ee", p.c_ee),
        ("c_ei", p.c_ei),
        ("c_ie", p.c_ie),
        ("c_ii", p.c_ii),
        ("r_e", p.r_e),
        ("r_i", p.r_i),
    ];
    for (key, v) in non_negative {
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!(
                "model.params.{key}: must be a finite number ≥ 0 (the sign is in the equation), \
                 got {v}"
            ));
        }
    }
    for (key, v) in [("a_e", p.a_e), ("a_i", p.a_i)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!(
                "model.params.{key}: the sigmoid slope must be finite and > 0, got {v}"
            ));
        }
    }
    for (key, v) in [("theta_e", p.theta_e), ("theta_i", p.theta_i)] {
        if !v.is_finite() {
            return Err(format!(
                "model.params.{key}: the sigmoid threshold must be a finite number, got {v}"
            ));
        }
    }
    if !(p.time_scale_s.is_finite() && p.time_scale_s > 0.0) {
        return Err(format!(
            "model.params.time_scale_s: seconds per model time unit must be finite and > 0 \
             (Wilson & Cowan's τ ≈ 0.01 s), got {}",
            p.time_scale_s
        ));
    }
    Ok(())
}

impl Plant for WilsonCowan {
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
            self.field
                .history
                .push(self.state[..self.field.nodes].iter().copied());
        }
        self.steps += 1;
    }

    /// `E` of `node` (dimensionless).
    fn observable(&self, node: usize) -> f64 {
        self.state[node]
    }

    fn phase(&self, _node: usize) -> Option<f64> {
        None
    }

    fn mean_observable(&self) -> f64 {
        self.state[..self.field.nodes].iter().sum::<f64>() / self.field.nodes as f64
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
