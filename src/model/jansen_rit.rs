//! Jansen–Rit cortical column network (MODELS.md §8; Jansen & Rit 1995), time in seconds:
//!
//! `ẏ0 = y3,  ẏ3 = A a S(y1 − y2 + F) − 2a y3 − a² y0`
//! `ẏ1 = y4,  ẏ4 = A a (p + K Σ_j C_ij S(y1_j − y2_j + F_j)(t − τ_ij) + C2 S(C1 y0)) − 2a y4 − a² y1`
//!             `+ A a σ ξ(t)`
//! `ẏ2 = y5,  ẏ5 = B b C4 S(C3 y0) − 2b y5 − b² y2`
//! `S(v) = 2e0 / (1 + e^{r (v0 − v)})`.
//!
//! - State, per node: `y0` (the EPSP that pyramidal firing causes in both interneuron
//!   populations), `y1` (the EPSP on the pyramidal cells from the excitatory interneurons and the
//!   external input `p`), `y2` (the IPSP on the pyramidal cells) in mV; `y3`, `y4`, `y5` their
//!   time derivatives in mV/s. `A`, `B` in mV, `a`, `b` in 1/s, `C`, `C1…C4` dimensionless,
//!   `e0` and `S` and `p` in 1/s (pulse densities), `v0` in mV, `r` in 1/mV.
//! - Defaults: Jansen & Rit (1995): A = 3.25 mV, B = 22 mV, a = 100 s⁻¹, b = 50 s⁻¹, C = 135,
//!   C1 = C, C2 = 0.8 C, C3 = C4 = 0.25 C, e0 = 2.5 s⁻¹, v0 = 6 mV, r = 0.56 mV⁻¹, and the mean
//!   of their input range, p = 220 s⁻¹. With constant p = 220 s⁻¹ a node is on a limit cycle of
//!   ≈ 10.9 Hz (alpha band), `y1 − y2` swinging between ≈ 6.0 and ≈ 9.1 mV.
//! - Observable: `y1 − y2` (mV), the pyramidal cells' summed postsynaptic potential that the EEG
//!   reflects. It does not include the forcing `F`, so the stimulus itself does not appear in the
//!   recorded signal; only the column's response to it does.
//! - Forcing: `F_i = Re forcing[i]`, in mV, adds to the pyramidal membrane input `y1 − y2`
//!   (MODELS.md), i.e. it enters inside the pyramidal sigmoid, `S(y1 − y2 + F)`: a field-induced
//!   depolarisation of the pyramidal cells. The imaginary part is ignored.
//! - External input and noise: `p(t) = p_mean + σ ξ(t)`, white noise through the integrator on
//!   the `ẏ4` equation. `σ` = `common.noise_sd` is the intensity of the white part of `p`, in
//!   s⁻¹/√Hz (= s^−½): the integrator adds `A a σ √dt N(0,1)` (mV/s) to `y4` each step.
//!   Jansen & Rit instead drew `p` uniformly from [120, 320] s⁻¹ at every integration step and
//!   held it over the step. That is white noise of intensity `σ² = Var(p)·dt` (Var(p) = 100²/3
//!   s⁻²), so its effect shrinks as √dt: σ ≈ 1.8 s^−½ at a 1 ms step but ≈ 0.26 s^−½ at an
//!   audio-rate step (1/48 kHz), and the same profile would behave differently at every model
//!   rate. An explicit white-noise intensity has the same effect at every `dt`; to reproduce the
//!   1995 input at their step `dt₀`, use `σ = 57.7 · √dt₀` s^−½.
//! - Network: `K` is `common.gain` (dimensionless). The long-range input to node `i` is the
//!   pyramidal output pulse density `S(y1_j − y2_j + F_j)` of each source `j` (delayed by
//!   `τ_ij`), weighted by `K C_ij` and added to the external input `p` of node `i`, i.e. into
//!   the excitatory synapse of its pyramidal cells, the channel that also carries the excitatory
//!   interneurons' output. This is how Jansen & Rit (1995) coupled two columns (one column's
//!   pyramidal output fed into the other's input `p`) and the form of The Virtual Brain's
//!   `JansenRit` model with its `SigmoidalJansenRit` coupling. The delay line holds
//!   `S(y1 − y2 + F)` (as a complex number with zero imaginary part), since the sigmoid must be
//!   applied per source before the weighted sum.
//! - No phase ([`Plant::phase`] is `None`): the alpha rhythm has no model-defined phase variable.

use super::delay::DelayLine;
use super::sigmoid::logistic_in_place;
use super::{CouplingPlan, ParamSpec, Plant, PlantCommon};
use crate::integrate::{Dynamics, Integrator};
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// `[model.params]` of the Jansen–Rit model. Every key is optional; the defaults are Jansen &
/// Rit (1995) with `p` at the mean of their input range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JansenRitParams {
    /// Excitatory synaptic gain A, mV (> 0, per node); default 3.25.
    pub exc_gain_mv: ParamSpec,
    /// Inhibitory synaptic gain B, mV (> 0, per node); default 22.
    pub inh_gain_mv: ParamSpec,
    /// Excitatory synaptic rate constant a (inverse time constant), 1/s (> 0, per node);
    /// default 100.
    pub exc_rate_per_s: ParamSpec,
    /// Inhibitory synaptic rate constant b, 1/s (> 0, per node); default 50.
    pub inh_rate_per_s: ParamSpec,
    /// Connectivity constant C, dimensionless (≥ 0, per node); default 135.
    pub c: ParamSpec,
    /// C1 / C, pyramidal → excitatory interneurons (≥ 0); default 1.
    pub c1_ratio: f64,
    /// C2 / C, excitatory interneurons → pyramidal (≥ 0); default 0.8.
    pub c2_ratio: f64,
    /// C3 / C, pyramidal → inhibitory interneurons (≥ 0); default 0.25.
    pub c3_ratio: f64,
    /// C4 / C, inhibitory interneurons → pyramidal (≥ 0); default 0.25.
    pub c4_ratio: f64,
    /// Half the maximum firing rate of the sigmoid, e0, 1/s (> 0); default 2.5.
    pub e0_per_s: f64,
    /// Potential at half-maximal firing, v0, mV; default 6.
    pub v0_mv: f64,
    /// Sigmoid steepness r, 1/mV (> 0); default 0.56.
    pub r_per_mv: f64,
    /// Mean external input p, 1/s (pulse density, per node); default 220.
    pub p_mean_per_s: ParamSpec,
    /// Initial `[y0, y1, y2]` in mV and `[y3, y4, y5]` in mV/s, the same for every node; default
    /// all 0 (synapses at rest; the first ≈ 0.5 s are then a transient).
    pub initial_state: [f64; 6],
}

impl Default for JansenRitParams {
    fn default() -> Self {
        Self {
            exc_gain_mv: ParamSpec::Value(3.25),
            inh_gain_mv: ParamSpec::Value(22.0),
            exc_rate_per_s: ParamSpec::Value(100.0),
            inh_rate_per_s: ParamSpec::Value(50.0),
            c: ParamSpec::Value(135.0),
            c1_ratio: 1.0,
            c2_ratio: 0.8,
            c3_ratio: 0.25,
            c4_ratio: 0.25,
            e0_per_s: 2.5,
            v0_mv: 6.0,
            r_per_mv: 0.56,
            p_mean_per_s: ParamSpec::Value(220.0),
            initial_state: [0.0; 6],
        }
    }
}

/// `S(v) = 2e0 / (1 + e^{r (v0 − v)})`, mV → 1/s.
#[derive(Clone, Copy, Debug)]
struct Sigmoid {
    two_e0: f64,
    v0: f64,
    r: f64,
}

impl Sigmoid {
    /// The argument `z` of the logistic `1/(1 + e^z)` at membrane potential `v`: then
    /// `S(v) = 2e0 · logistic(z)`.
    #[inline]
    fn exponent(self, v: f64) -> f64 {
        self.r * (self.v0 - v)
    }

    /// `S(v)` of one potential, by the same kernel as the vectorised passes.
    fn eval(self, v: f64) -> f64 {
        let mut z = [self.exponent(v)];
        logistic_in_place(&mut z);
        self.two_e0 * z[0]
    }
}

/// Per-node constants.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// A·a, mV/s.
    aa: f64,
    /// a, 1/s.
    a: f64,
    /// B·b·C4, mV/s.
    bb_c4: f64,
    /// b, 1/s.
    b: f64,
    c1: f64,
    c2: f64,
    c3: f64,
    /// p_mean, 1/s.
    p: f64,
}

struct JrField {
    nodes: usize,
    node: Vec<Node>,
    s: Sigmoid,
    plan: CouplingPlan<f64>,
    /// K, dimensionless.
    gain: f64,
    history: DelayLine<f64>,
    /// Re of the forcing held over the step, mV.
    forcing: Vec<f64>,
    delayed: Vec<f64>,
    /// Each node's pyramidal output `S(y1 − y2 + F)` at the current stage, 1/s.
    pyramidal: Vec<f64>,
    /// `[z_pyr, z_1, z_3]` per node: the three sigmoids' exponents, then their logistics.
    sigmoid: Vec<f64>,
    coupled: Vec<f64>,
    /// `A a σ` on each node's `y4`, 0 elsewhere.
    noise: Option<Vec<f64>>,
}

impl Dynamics for JrField {
    fn dim(&self) -> usize {
        6 * self.nodes
    }

    fn drift(&mut self, state: &[f64], out: &mut [f64]) {
        // The pyramidal output drives the local interneurons and is what the other nodes
        // receive: evaluate each node's sigmoid once per stage and use it for both. All three
        // sigmoids of every node go through one vectorised logistic pass.
        for (((z, y), f), c) in self
            .sigmoid
            .chunks_exact_mut(3)
            .zip(state.chunks_exact(6))
            .zip(&self.forcing)
            .zip(&self.node)
        {
            z[0] = self.s.exponent(y[1] - y[2] + f);
            z[1] = self.s.exponent(c.c1 * y[0]);
            z[2] = self.s.exponent(c.c3 * y[0]);
        }
        logistic_in_place(&mut self.sigmoid);
        for (m, l) in self.pyramidal.iter_mut().zip(self.sigmoid.chunks_exact(3)) {
            *m = self.s.two_e0 * l[0];
        }
        let coupled = self.gain != 0.0;
        if coupled {
            self.plan
                .total_input(&self.delayed, &self.pyramidal, &mut self.coupled);
        }
        for (i, ((y, o), l)) in state
            .chunks_exact(6)
            .zip(out.chunks_exact_mut(6))
            .zip(self.sigmoid.chunks_exact(3))
            .enumerate()
        {
            let c = &self.node[i];
            let mut input = c.p + c.c2 * (self.s.two_e0 * l[1]);
            if coupled {
                input += self.gain * self.coupled[i];
            }
            o[0] = y[3];
            o[1] = y[4];
            o[2] = y[5];
            o[3] = c.aa * self.pyramidal[i] - 2.0 * c.a * y[3] - c.a * c.a * y[0];
            o[4] = c.aa * input - 2.0 * c.a * y[4] - c.a * c.a * y[1];
            o[5] = c.bb_c4 * (self.s.two_e0 * l[2]) - 2.0 * c.b * y[5] - c.b * c.b * y[2];
        }
    }

    fn noise_sd(&self) -> Option<&[f64]> {
        self.noise.as_deref()
    }
}

/// A Jansen–Rit network.
pub struct JansenRit {
    field: JrField,
    integrator: Integrator,
    /// `[y0 … y5]` of node 0, then of node 1, …
    state: Vec<f64>,
    initial: Vec<f64>,
    /// Each node's initial pyramidal output, as the delay line stores it.
    initial_history: Vec<f64>,
    noise: GaussianNoise,
    seed: u64,
    steps: u64,
}

impl JansenRit {
    /// Build from the common plant settings and the Jansen–Rit parameters. Errors name the
    /// offending `model.params.<key>`.
    pub fn new(common: &PlantCommon, params: &JansenRitParams) -> Result<Self, String> {
        let n = common.nodes;
        check_scalars(params)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let mut realize = |name: &str, spec: &ParamSpec| {
            spec.realize(n, &mut rng)
                .map_err(|e| format!("model.params.{name}: {e}"))
        };
        let big_a = realize("exc_gain_mv", &params.exc_gain_mv)?;
        let big_b = realize("inh_gain_mv", &params.inh_gain_mv)?;
        let a = realize("exc_rate_per_s", &params.exc_rate_per_s)?;
        let b = realize("inh_rate_per_s", &params.inh_rate_per_s)?;
        let c = realize("c", &params.c)?;
        let p = realize("p_mean_per_s", &params.p_mean_per_s)?;
        for (key, what, values) in [
            ("exc_gain_mv", "the excitatory synaptic gain A, mV", &big_a),
            ("inh_gain_mv", "the inhibitory synaptic gain B, mV", &big_b),
            ("exc_rate_per_s", "the excitatory rate constant a, 1/s", &a),
            ("inh_rate_per_s", "the inhibitory rate constant b, 1/s", &b),
        ] {
            if let Some(v) = values.iter().find(|v| **v <= 0.0) {
                return Err(format!("model.params.{key}: {what}, must be > 0, got {v}"));
            }
        }
        if let Some(v) = c.iter().find(|v| **v < 0.0) {
            return Err(format!(
                "model.params.c: the connectivity constant must be ≥ 0, got {v}"
            ));
        }
        let node: Vec<Node> = (0..n)
            .map(|i| Node {
                aa: big_a[i] * a[i],
                a: a[i],
                bb_c4: big_b[i] * b[i] * params.c4_ratio * c[i],
                b: b[i],
                c1: params.c1_ratio * c[i],
                c2: params.c2_ratio * c[i],
                c3: params.c3_ratio * c[i],
                p: p[i],
            })
            .collect();
        let s = Sigmoid {
            two_e0: 2.0 * params.e0_per_s,
            v0: params.v0_mv,
            r: params.r_per_mv,
        };
        let y = params.initial_state;
        let initial_history = vec![s.eval(y[1] - y[2]); n];
        let plan = CouplingPlan::new(&common.coupling, n, common.dt);
        let noise = (common.noise_sd > 0.0).then(|| {
            node.iter()
                .flat_map(|c| [0.0, 0.0, 0.0, 0.0, c.aa * common.noise_sd, 0.0])
                .collect::<Vec<_>>()
        });
        let field = JrField {
            nodes: n,
            node,
            s,
            history: DelayLine::new(n, plan.max_delay_steps, &initial_history),
            plan,
            gain: common.gain,
            forcing: vec![0.0; n],
            delayed: vec![0.0; n],
            pyramidal: vec![0.0; n],
            sigmoid: vec![0.0; 3 * n],
            coupled: vec![0.0; n],
            noise,
        };
        let initial: Vec<f64> = (0..n).flat_map(|_| y).collect();
        Ok(Self {
            integrator: Integrator::new(common.scheme, 6 * n, common.dt),
            field,
            state: initial.clone(),
            initial,
            initial_history,
            noise: GaussianNoise::new(common.seed),
            seed: common.seed,
            steps: 0,
        })
    }

    /// The state `[y0, y1, y2]` (mV), `[y3, y4, y5]` (mV/s) of `node`.
    pub fn y(&self, node: usize) -> [f64; 6] {
        let mut y = [0.0; 6];
        y.copy_from_slice(&self.state[6 * node..6 * node + 6]);
        y
    }
}

/// Validate the scalar (network-wide) parameters.
fn check_scalars(p: &JansenRitParams) -> Result<(), String> {
    for (key, v) in [
        ("c1_ratio", p.c1_ratio),
        ("c2_ratio", p.c2_ratio),
        ("c3_ratio", p.c3_ratio),
        ("c4_ratio", p.c4_ratio),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!(
                "model.params.{key}: a connectivity ratio must be a finite number ≥ 0, got {v}"
            ));
        }
    }
    for (key, v) in [("e0_per_s", p.e0_per_s), ("r_per_mv", p.r_per_mv)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!(
                "model.params.{key}: must be finite and > 0, got {v}"
            ));
        }
    }
    if !p.v0_mv.is_finite() {
        return Err(format!(
            "model.params.v0_mv: must be a finite potential in mV, got {}",
            p.v0_mv
        ));
    }
    if let Some(v) = p.initial_state.iter().find(|v| !v.is_finite()) {
        return Err(format!(
            "model.params.initial_state: six finite numbers [y0, y1, y2 in mV, y3, y4, y5 in \
             mV/s] are expected, got {v}"
        ));
    }
    Ok(())
}

impl Plant for JansenRit {
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
        for (f, x) in self.field.forcing.iter_mut().zip(forcing) {
            *f = x.re;
        }
        if self.field.gain != 0.0 {
            self.field
                .plan
                .delayed_input(&self.field.history, &mut self.field.delayed);
        }
        self.integrator
            .step(&mut self.field, &mut self.state, &mut self.noise);
        if self.field.plan.max_delay_steps > 0 {
            let field = &mut self.field;
            let z = &mut field.sigmoid[..field.nodes];
            for ((z, y), f) in z
                .iter_mut()
                .zip(self.state.chunks_exact(6))
                .zip(&field.forcing)
            {
                *z = field.s.exponent(y[1] - y[2] + f);
            }
            logistic_in_place(z);
            let two_e0 = field.s.two_e0;
            field.history.push(z.iter().map(|l| two_e0 * l));
        }
        self.steps += 1;
    }

    /// `y1 − y2` of `node`, mV.
    fn observable(&self, node: usize) -> f64 {
        self.state[6 * node + 1] - self.state[6 * node + 2]
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
