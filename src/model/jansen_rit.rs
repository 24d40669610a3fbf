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
use super::{copy_real_parts, CouplingPlan, ParamSpec, Plant, PlantCommon};
use crate::integrate::{Dynamics, Integrator, NoiseSd};
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

/// Per-node constants, one array each (so that the per-node passes vectorise).
struct Nodes {
    /// A·a, mV/s.
    aa: Vec<f64>,
    /// a, 1/s.
    a: Vec<f64>,
    /// B·b·C4, mV/s.
    bb_c4: Vec<f64>,
    /// b, 1/s.
    b: Vec<f64>,
    c1: Vec<f64>,
    c2: Vec<f64>,
    c3: Vec<f64>,
    /// p_mean, 1/s.
    p: Vec<f64>,
}

struct JrField {
    nodes: usize,
    node: Nodes,
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
    /// `[z_pyr…, z_1…, z_3…]`, one block of `nodes` each: the three sigmoids' exponents, then
    /// their logistics.
    sigmoid: Vec<f64>,
    /// Whether `sigmoid`'s first block holds the pyramidal logistics at the state and forcing
    /// of the next drift, as the history push left them: that drift then reuses them (the same
    /// inputs to the same kernel, so the same bits) and evaluates two sigmoids a node, not
    /// three. A step's forcing that differs from the last one's in any node clears it.
    pyramidal_pushed: bool,
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
        // sigmoids of every node go through one vectorised logistic pass, or the last two when
        // this (a step's first) drift reuses the push's pyramidal logistics.
        let n = self.nodes;
        let reuse = std::mem::take(&mut self.pyramidal_pushed);
        let exponents = if reuse {
            exponents::<false>
        } else {
            exponents::<true>
        };
        exponents(
            n,
            &self.node,
            self.s,
            state,
            &self.forcing,
            &mut self.sigmoid,
        );
        let first = if reuse { n } else { 0 };
        logistic_in_place(&mut self.sigmoid[first..3 * n]);
        for (m, l) in self.pyramidal.iter_mut().zip(&self.sigmoid) {
            *m = self.s.two_e0 * l;
        }
        let coupled = self.gain != 0.0;
        let network = if coupled {
            self.plan
                .instant_input(&self.delayed, &self.pyramidal, &mut self.coupled);
            self.plan.network_input(&self.delayed, &self.coupled)
        } else {
            &self.coupled
        };
        let input = Inputs {
            two_e0: self.s.two_e0,
            logistic: &self.sigmoid,
            pyramidal: &self.pyramidal,
            coupled: network,
            gain: self.gain,
        };
        if coupled {
            slopes::<true>(self.nodes, &self.node, input, state, out);
        } else {
            slopes::<false>(self.nodes, &self.node, input, state, out);
        }
    }

    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        self.noise.as_deref().map(NoiseSd::PerComponent)
    }
}

/// The exponents of the three sigmoids of every node at `state` (`[y0…, …, y5…]`), into
/// `z = [z_pyr…, z_1…, z_3…]`; without `PYRAMIDAL` the first block is left as it is.
/// Compiled for AVX2 as well (element-wise IEEE operations, no fused multiply-adds: the same
/// bits either way).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn exponents<const PYRAMIDAL: bool>(
    n: usize,
    c: &Nodes,
    s: Sigmoid,
    state: &[f64],
    forcing: &[f64],
    z: &mut [f64],
) {
    let (y0, y1, y2) = (&state[..n], &state[n..2 * n], &state[2 * n..3 * n]);
    let (z_pyr, rest) = z[..3 * n].split_at_mut(n);
    let (z_1, z_3) = rest.split_at_mut(n);
    let (forcing, c1, c3) = (&forcing[..n], &c.c1[..n], &c.c3[..n]);
    for i in 0..n {
        if PYRAMIDAL {
            z_pyr[i] = pyramidal_exponent(s, y1[i], y2[i], forcing[i]);
        }
        z_1[i] = s.exponent(c1[i] * y0[i]);
        z_3[i] = s.exponent(c3[i] * y0[i]);
    }
}

/// The pyramidal sigmoid's exponent, `S`'s at `y1 − y2 + F`: one expression for the drift and
/// the history push, so that the drift may reuse the push's logistic.
#[inline(always)]
fn pyramidal_exponent(s: Sigmoid, y1: f64, y2: f64, forcing: f64) -> f64 {
    s.exponent(y1 - y2 + forcing)
}

/// What [`slopes`] reads besides the state and the constants.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    /// 2e0, 1/s.
    two_e0: f64,
    /// The logistics `[l_pyr…, l_1…, l_3…]`.
    logistic: &'a [f64],
    /// `S(y1 − y2 + F)` per node, 1/s.
    pyramidal: &'a [f64],
    /// The network input per node (read only when coupled: [`slopes`]' `COUPLED`).
    coupled: &'a [f64],
    /// K.
    gain: f64,
}

/// The six derivatives of every node, block by block like the state.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn slopes<const COUPLED: bool>(n: usize, c: &Nodes, u: Inputs, state: &[f64], out: &mut [f64]) {
    let y = |k: usize| &state[k * n..(k + 1) * n];
    let (y0, y1, y2, y3, y4, y5) = (y(0), y(1), y(2), y(3), y(4), y(5));
    let out = &mut out[..6 * n];
    let (o0, rest) = out.split_at_mut(n);
    let (o1, rest) = rest.split_at_mut(n);
    let (o2, rest) = rest.split_at_mut(n);
    let (o3, rest) = rest.split_at_mut(n);
    let (o4, o5) = rest.split_at_mut(n);
    let (l1, l3) = (&u.logistic[n..2 * n], &u.logistic[2 * n..3 * n]);
    let (pyramidal, coupled) = (&u.pyramidal[..n], &u.coupled[..n]);
    let (aa, a, bb_c4, b) = (&c.aa[..n], &c.a[..n], &c.bb_c4[..n], &c.b[..n]);
    let (c2, p) = (&c.c2[..n], &c.p[..n]);
    for i in 0..n {
        // ẏ0, ẏ1, ẏ2 are y3, y4, y5: copied in this pass, which reads them anyway (a
        // separate copy was 5 % of a delayed network's step).
        (o0[i], o1[i], o2[i]) = (y3[i], y4[i], y5[i]);
        let mut input = p[i] + c2[i] * (u.two_e0 * l1[i]);
        if COUPLED {
            input += u.gain * coupled[i];
        }
        o3[i] = aa[i] * pyramidal[i] - 2.0 * a[i] * y3[i] - a[i] * a[i] * y0[i];
        o4[i] = aa[i] * input - 2.0 * a[i] * y4[i] - a[i] * a[i] * y1[i];
        o5[i] = bb_c4[i] * (u.two_e0 * l3[i]) - 2.0 * b[i] * y5[i] - b[i] * b[i] * y2[i];
    }
}

/// A Jansen–Rit network.
pub struct JansenRit {
    field: JrField,
    integrator: Integrator,
    /// `y0` of every node, then `y1` of every node, … `y5`: six blocks of `nodes` values, so
    /// that the per-node passes vectorise.
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
        let each = |f: &dyn Fn(usize) -> f64| (0..n).map(f).collect::<Vec<f64>>();
        // Fields in order: each product reads `a`, `b` before they move in.
        let node = Nodes {
            aa: each(&|i| big_a[i] * a[i]),
            a,
            bb_c4: each(&|i| big_b[i] * b[i] * params.c4_ratio * c[i]),
            b,
            c1: each(&|i| params.c1_ratio * c[i]),
            c2: each(&|i| params.c2_ratio * c[i]),
            c3: each(&|i| params.c3_ratio * c[i]),
            p,
        };
        let s = Sigmoid {
            two_e0: 2.0 * params.e0_per_s,
            v0: params.v0_mv,
            r: params.r_per_mv,
        };
        let y = params.initial_state;
        let initial_history = vec![s.eval(y[1] - y[2]); n];
        let plan = CouplingPlan::new(&common.coupling, n, common.dt);
        // On each node's y4 (the fifth block), in node order.
        let noise = (common.noise_sd > 0.0).then(|| {
            let mut sd = vec![0.0; 6 * n];
            for (s, aa) in sd[4 * n..5 * n].iter_mut().zip(&node.aa) {
                *s = aa * common.noise_sd;
            }
            sd
        });
        let field = JrField {
            nodes: n,
            node,
            s,
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
            pyramidal: vec![0.0; n],
            sigmoid: vec![0.0; 3 * n],
            pyramidal_pushed: false,
            coupled: vec![0.0; n],
            noise,
        };
        let initial: Vec<f64> = y.iter().flat_map(|&v| std::iter::repeat_n(v, n)).collect();
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
        let n = self.field.nodes;
        for (k, y) in y.iter_mut().enumerate() {
            *y = self.state[k * n + node];
        }
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
        self.field.pyramidal_pushed &= copy_real_parts(&mut self.field.forcing, forcing);
        if self.field.gain != 0.0 {
            self.field
                .plan
                .delayed_input_unless_row(&self.field.history, &mut self.field.delayed);
        }
        self.integrator
            .step(&mut self.field, &mut self.state, &mut self.noise);
        if self.field.plan.max_delay_steps > 0 {
            let field = &mut self.field;
            let n = field.nodes;
            let z = &mut field.sigmoid[..n];
            let (y1, y2) = (&self.state[n..2 * n], &self.state[2 * n..3 * n]);
            for (((z, y1), y2), f) in z.iter_mut().zip(y1).zip(y2).zip(&field.forcing) {
                *z = pyramidal_exponent(field.s, *y1, *y2, *f);
            }
            logistic_in_place(z);
            let two_e0 = field.s.two_e0;
            field.history.push(z.iter().map(|l| two_e0 * l));
            field.pyramidal_pushed = true;
        }
        self.steps += 1;
    }

    /// `y1 − y2` of `node`, mV.
    fn observable(&self, node: usize) -> f64 {
        let n = self.field.nodes;
        self.state[n + node] - self.state[2 * n + node]
    }

    fn phase(&self, _node: usize) -> Option<f64> {
        None
    }

    fn mean_phase(&self) -> Option<f64> {
        None
    }

    fn reset(&mut self) {
        self.state.copy_from_slice(&self.initial);
        self.field.pyramidal_pushed = false;
        self.field.history.reset(&self.initial_history);
        self.noise = GaussianNoise::new(self.seed);
        self.steps = 0;
    }

    fn state_bytes(&self) -> usize {
        self.state.len() * 8 + self.field.history.bytes() + self.field.plan.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::Scheme;
    use crate::model::network::Csr;
    use crate::model::{Coupling, PlantCommon};

    /// Six columns, each driven by two others through delays of 1–3 ms and by one more without
    /// delay, with noise: a network whose history push runs every step.
    fn delayed_network() -> JansenRit {
        let n = 6;
        let (mut row_ptr, mut col, mut weight, mut delay_s) = (vec![0], vec![], vec![], vec![]);
        for i in 0..n {
            for (k, delay) in [(1, 0.0), (2, 1e-3 * (1 + i % 3) as f64), (3, 2.5e-3)] {
                col.push(((i + k) % n) as u32);
                weight.push(1.0 / 3.0);
                delay_s.push(delay);
            }
            row_ptr.push(col.len());
        }
        let mut sorted = Csr {
            n,
            row_ptr,
            col,
            weight,
            delay_s,
        };
        // CSR rows are sorted by source node.
        for i in 0..n {
            let edges = sorted.row_ptr[i]..sorted.row_ptr[i + 1];
            let mut row: Vec<(u32, f64, f64)> = edges
                .clone()
                .map(|e| (sorted.col[e], sorted.weight[e], sorted.delay_s[e]))
                .collect();
            row.sort_by_key(|e| e.0);
            for (e, (c, w, d)) in edges.zip(row) {
                (sorted.col[e], sorted.weight[e], sorted.delay_s[e]) = (c, w, d);
            }
        }
        let common = PlantCommon {
            nodes: n,
            scheme: Scheme::StochasticHeun,
            dt: 1.0 / 48_000.0,
            noise_sd: 5.0,
            coupling: Coupling::Sparse(sorted),
            gain: 0.1,
            seed: 4,
            history_precision: crate::model::HistoryPrecision::F64,
        };
        JansenRit::new(&common, &JansenRitParams::default()).unwrap()
    }

    /// The drift that reuses the history push's pyramidal logistics gives the bits of one that
    /// evaluates all three sigmoids, through forcing that stays, changes in one node, and a
    /// reset.
    #[test]
    fn reusing_the_pushed_pyramidal_sigmoid_changes_no_bit() {
        let (mut reusing, mut fresh) = (delayed_network(), delayed_network());
        const RESET: usize = 1_700;
        // 2 ms pulses every 10 ms, on node 2 only.
        let pulse = |step: usize| step % 480 < 96;
        let mut reused = 0;
        for step in 0..3_000 {
            if step == RESET {
                reusing.reset();
                fresh.reset();
            }
            let mut forcing = [Complex64::default(); 6];
            if pulse(step) {
                forcing[2] = Complex64::new(4.0, 0.0);
            }
            fresh.field.pyramidal_pushed = false;
            // The drift reuses when a push left the logistics and the forcing stayed.
            reused += usize::from(reusing.field.pyramidal_pushed && pulse(step) == pulse(step - 1));
            reusing.step(&forcing);
            fresh.step(&forcing);
            let bits = |p: &JansenRit| p.state.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&reusing), bits(&fresh), "step {step}");
        }
        // Every step but a run's first and the 13 whose forcing changed.
        assert_eq!(reused, 3_000 - 2 - 13);
    }
}
