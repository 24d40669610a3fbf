//! Montbrió–Pazó–Roxin (MPR) mean field of quadratic integrate-and-fire neurons (MODELS.md §9),
//! in SI time: the exact firing-rate / mean-potential equations of an infinite population of QIF
//! neurons with Lorentzian-distributed excitabilities (Montbrió, Pazó & Roxin 2015, PRX 5, 021028).
//!
//! # Single population (`populations = "single"`, the default)
//! For node `i` (node index dropped):
//!
//! ```text
//! τ dr/dt = Δ/(π τ) + 2 r v
//! τ dv/dt = v² + η̄ + J τ s + I(t) + K τ Σ_j C_ij r_j(t − τ_ij) − (π τ r)² + τ σ ξ(t)
//! ```
//!
//! - `r`: population firing rate in **Hz** (spikes per neuron per second, SI). The dimensionless
//!   form of the literature (time in units of τ) has rate `τ r`; here time is in seconds and τ in
//!   seconds, so `r` is in 1/s and every term of the `v` equation is dimensionless.
//! - `v`: mean membrane potential, dimensionless (the QIF neurons' normalised voltage).
//! - `Δ` (half-width of the excitability distribution), `η̄` (its centre), `J` (recurrent
//!   synaptic weight; `J < 0` is an inhibitory population) and `I` are dimensionless.
//! - Synapse `s` (Hz): `s = r` (`"instantaneous"`, the 2015 form), `τ_s ds/dt = −s + r`
//!   (`"first_order"`, the exponential synapse of Devalle, Roxin & Montbrió 2017, PLoS Comput Biol
//!   13, e1005881), or the alpha synapse `τ_s² d²s/dt² + 2 τ_s ds/dt + s = r` (`"second_order"`,
//!   kernel `t e^{−t/τ_s}/τ_s²` of unit area, integrated as `ds/dt = u`,
//!   `du/dt = (r − s − 2 τ_s u)/τ_s²` with `u` in Hz/s).
//!
//! Fact (tested): the stationary state satisfies `r* = Δ/(2π τ |v*|)` with `v* < 0`. With the 2015
//! reference values (τ = 10 ms, Δ = 1, η̄ = −5, J = 15) the model is bistable: a low-activity
//! stable **node** (r* ≈ 8.11 Hz, v* ≈ −1.962) and a high-activity stable **focus**
//! (r* ≈ 103.1 Hz, v* ≈ −0.154, damped oscillation at ≈ 53 Hz), separated by a saddle.
//!
//! # Excitatory–inhibitory pair (`populations = "excitatory_inhibitory"`)
//! Two MPR populations per node, the standard two-population QIF mean field used for PING and
//! ING rhythms (the form of e.g. Keeley, Byrne, Fenton & Rinzel 2019, J Neurophysiol 121, 2181,
//! and Dumont & Gutkin 2019, PLoS Comput Biol 15, e1007019), with synaptic filtering as in
//! Devalle et al. 2017:
//!
//! ```text
//! τ_E dr_E/dt = Δ_E/(π τ_E) + 2 r_E v_E
//! τ_E dv_E/dt = v_E² + η_E + τ_E (J_EE s_E − J_EI s_I) + I(t) + K τ_E Σ_j C_ij r_E,j(t − τ_ij)
//!               − (π τ_E r_E)² + τ_E σ ξ_E(t)
//! τ_I dr_I/dt = Δ_I/(π τ_I) + 2 r_I v_I
//! τ_I dv_I/dt = v_I² + η_I + τ_I (J_IE s_E − J_II s_I) − (π τ_I r_I)² + τ_I σ ξ_I(t)
//! ```
//!
//! `J_ab ≥ 0` is the weight *into* population `a` *from* population `b` (the same "into i from j"
//! order as `C_ij`); the signs are written out, so all four are magnitudes. The synaptic variable
//! belongs to the presynaptic population: `s_E` filters `r_E` with `tau_syn_e_s` and `s_I` filters
//! `r_I` with `tau_syn_i_s`, with the kernel chosen by `synapse` (one kernel per transmitter, which
//! is why `E→E` and `E→I` share `s_E`). Default values are a PING set found by simulation (E
//! driven, I excitable only through E): oscillation at ≈ 44 Hz with first-order synapses.
//!
//! # Forcing, coupling, noise, observable
//! - Forcing: `forcing[i].re` is the common input current `I(t)` (dimensionless, the units of η̄),
//!   added to the `v` equation (of the E population in the pair); the imaginary part is ignored.
//! - Network: the other nodes' (E) rates enter as a current `K τ Σ_j C_ij r_j(t − τ_ij)` in the
//!   `v` equation (of E), with `K` = `common.gain` **dimensionless** here (the units of J; the τ
//!   makes rate × time dimensionless, as in The Virtual Brain's MPR model). The coupling is
//!   additive (rates are excitatory input), not diffusive: there is no `−r_i` term, and all-to-all
//!   coupling includes the node itself. Delays via the shared delay lines.
//! - Noise: white noise on every population's `v`, `dv += σ √dt N(0,1)` per step (Euler–Maruyama /
//!   stochastic Heun), `σ = common.noise_sd` in units of v per √s; independent for E and I.
//! - Observable: `r` (single) or `r_E` (pair), Hz. MPR has no intrinsic phase: `phase` and
//!   `mean_phase` are `None` (an oscillation's phase comes from the signal analysis).
//!
//! # Positivity of r and stiff steps
//! The exact flow keeps `r > 0` (at `r = 0`, `τ dr/dt = Δ/(π τ) > 0`), but an explicit step takes
//! `r ← r (1 + 2 v dt/τ) + …`, which turns negative when `v < −τ/(2 dt)` (−240 at τ = 10 ms and
//! 48 kHz: reached under strong inhibition or negative forcing, where `v* ≈ −√|I|`). The same
//! regime is stiff in `v`, and so are very high rates (a synchronous volley, e.g. on release from
//! strong hyperpolarisation), where explicit steps blow up. One exact fallback handles both.
//!
//! With `W = π τ r + i v` the two equations are one complex Riccati equation,
//! `τ dW/dt = Δ + i c − i W²`, where `c` is everything else in the `v` equation (η̄, synaptic,
//! external and network currents). For `c` held over a step it has the exact solution
//! `W(dt) = k (W₀ + k T)/(k + W₀ T)`, `k = √(c − iΔ)`, `T = tanh(i k dt/τ)`, which keeps
//! `Re W > 0` (r > 0) for every step size and relaxes onto the slaved rate `Δ/(2π τ |v|)` when
//! the rate's relaxation time `τ/(2|v|)` is shorter than the step.
//!
//! A step takes this fallback, for every node (so that no node reads another's unreliable stage
//! values), when some population starts it with `2 max(|W|, √|c|) dt/τ > 1/2` (at 48 kHz and
//! τ = 10 ms: `|v|` or `√|c|` above 120, or r above ≈ 3.8 kHz; `c` here without the network
//! input, to keep the check O(nodes)), or when the explicit step ends with `r ≤ 0` or a
//! non-finite value (the step is then redone from the saved state). In the fallback step the
//! synapses relax exactly towards the step-mean rate `(r₀ + r₁)/2`, and noise is added to `v`
//! after the step. It is exact in the QIF nonlinearity and first order in the coupling (inputs
//! frozen over the step); every other step uses the profile's scheme unchanged.
//!
//! Every time constant must span at least 2 steps (`τ, τ_s ≥ 2 dt`).

use super::delay::DelayLine;
use super::{copy_real_parts, CouplingPlan, ParamSpec, Plant, PlantCommon};
use crate::integrate::{Dynamics, Integrator, NoiseSd};
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Which MPR variant a node is (`model.params.populations`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Populations {
    /// One population (MPR 2015; excitatory for `J > 0`, inhibitory for `J < 0`).
    #[default]
    Single,
    /// An excitatory and an inhibitory population per node (PING / ING pair).
    ExcitatoryInhibitory,
}

/// The recurrent synapse's kernel (`model.params.synapse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synapse {
    /// `s = r` (no synaptic dynamics; MPR 2015).
    #[default]
    Instantaneous,
    /// Exponential synapse `τ_s ds/dt = −s + r`.
    FirstOrder,
    /// Alpha synapse `τ_s² s'' + 2 τ_s s' + s = r`.
    SecondOrder,
}

impl Synapse {
    /// Extra state variables per population (s, and its derivative for the alpha synapse).
    fn order(self) -> usize {
        match self {
            Synapse::Instantaneous => 0,
            Synapse::FirstOrder => 1,
            Synapse::SecondOrder => 2,
        }
    }
}

/// `[model.params]` of the MPR plant. Every numeric key is a [`ParamSpec`] (one value, a list
/// with one value per node, or a seeded distribution). Keys of the other `populations` variant,
/// and synaptic time constants with `synapse = "instantaneous"`, are rejected rather than ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MprParams {
    /// `"single"` (default) or `"excitatory_inhibitory"`.
    pub populations: Populations,
    /// `"instantaneous"` (default), `"first_order"` or `"second_order"`.
    pub synapse: Synapse,
    /// Single: membrane time constant τ, s (≥ 2 dt); default 0.01.
    pub tau_s: Option<ParamSpec>,
    /// Single: half-width Δ of the Lorentzian excitability distribution, dimensionless (> 0);
    /// default 1.
    pub delta: Option<ParamSpec>,
    /// Single: centre η̄ of the excitability distribution, dimensionless; default −5.
    pub eta: Option<ParamSpec>,
    /// Single: recurrent synaptic weight J, dimensionless (< 0 inhibitory); default 15.
    pub j: Option<ParamSpec>,
    /// Single: synaptic time constant τ_s, s (≥ 2 dt; only with synaptic dynamics); default 0.005.
    pub tau_syn_s: Option<ParamSpec>,
    /// Pair: E membrane time constant τ_E, s (≥ 2 dt); default 0.01.
    pub tau_e_s: Option<ParamSpec>,
    /// Pair: I membrane time constant τ_I, s (≥ 2 dt); default 0.01.
    pub tau_i_s: Option<ParamSpec>,
    /// Pair: E excitability half-width Δ_E, dimensionless (> 0); default 1.
    pub delta_e: Option<ParamSpec>,
    /// Pair: I excitability half-width Δ_I, dimensionless (> 0); default 1.
    pub delta_i: Option<ParamSpec>,
    /// Pair: E excitability centre η_E, dimensionless; default 10 (E fires on its own).
    pub eta_e: Option<ParamSpec>,
    /// Pair: I excitability centre η_I, dimensionless; default −5 (I fires only when driven).
    pub eta_i: Option<ParamSpec>,
    /// Pair: weight into E from E, J_EE ≥ 0, dimensionless; default 5.
    pub j_ee: Option<ParamSpec>,
    /// Pair: weight into E from I, J_EI ≥ 0 (enters with a minus sign); default 20.
    pub j_ei: Option<ParamSpec>,
    /// Pair: weight into I from E, J_IE ≥ 0, dimensionless; default 10.
    pub j_ie: Option<ParamSpec>,
    /// Pair: weight into I from I, J_II ≥ 0 (enters with a minus sign); default 0.
    pub j_ii: Option<ParamSpec>,
    /// Pair: time constant of synapses made by E cells (AMPA-like), s (≥ 2 dt); default 0.002.
    pub tau_syn_e_s: Option<ParamSpec>,
    /// Pair: time constant of synapses made by I cells (GABA_A-like), s (≥ 2 dt); default 0.005.
    pub tau_syn_i_s: Option<ParamSpec>,
    /// Initial rate of every population, Hz (> 0); default 1.
    pub initial_r_hz: Option<ParamSpec>,
    /// Initial mean potential of every population, dimensionless; default −2 (near the resting
    /// state of the default single population).
    pub initial_v: Option<ParamSpec>,
}

// Defaults of `[model.params]` (their units and meaning are on [`MprParams`]'s fields).
const TAU_S: f64 = 0.01;
const DELTA: f64 = 1.0;
const ETA: f64 = -5.0;
const J: f64 = 15.0;
const TAU_SYN_S: f64 = 0.005;
const TAU_E_S: f64 = 0.01;
const TAU_I_S: f64 = 0.01;
const DELTA_E: f64 = 1.0;
const DELTA_I: f64 = 1.0;
const ETA_E: f64 = 10.0;
const ETA_I: f64 = -5.0;
const J_EE: f64 = 5.0;
const J_EI: f64 = 20.0;
const J_IE: f64 = 10.0;
const J_II: f64 = 0.0;
const TAU_SYN_E_S: f64 = 0.002;
const TAU_SYN_I_S: f64 = 0.005;
const INITIAL_R_HZ: f64 = 1.0;
const INITIAL_V: f64 = -2.0;

impl MprParams {
    /// These parameters with every unset key of the chosen `populations` set to its default
    /// (the synaptic time constants only with synaptic dynamics), so that a resolved profile
    /// shows the values a run uses. Parameters that [`Mpr::new`] would refuse for a key of the
    /// wrong variant are returned as they are, for it to name the key. A default is one value,
    /// which draws nothing from the seed: the plant built is the same bit for bit.
    pub fn with_defaults(&self) -> Self {
        let mut p = self.clone();
        if check_keys(&p).is_err() {
            return p;
        }
        let fill = |key: &mut Option<ParamSpec>, value: f64| {
            key.get_or_insert(ParamSpec::Value(value));
        };
        let synaptic = p.synapse != Synapse::Instantaneous;
        match p.populations {
            Populations::Single => {
                fill(&mut p.tau_s, TAU_S);
                fill(&mut p.delta, DELTA);
                fill(&mut p.eta, ETA);
                fill(&mut p.j, J);
                if synaptic {
                    fill(&mut p.tau_syn_s, TAU_SYN_S);
                }
            }
            Populations::ExcitatoryInhibitory => {
                fill(&mut p.tau_e_s, TAU_E_S);
                fill(&mut p.tau_i_s, TAU_I_S);
                fill(&mut p.delta_e, DELTA_E);
                fill(&mut p.delta_i, DELTA_I);
                fill(&mut p.eta_e, ETA_E);
                fill(&mut p.eta_i, ETA_I);
                fill(&mut p.j_ee, J_EE);
                fill(&mut p.j_ei, J_EI);
                fill(&mut p.j_ie, J_IE);
                fill(&mut p.j_ii, J_II);
                if synaptic {
                    fill(&mut p.tau_syn_e_s, TAU_SYN_E_S);
                    fill(&mut p.tau_syn_i_s, TAU_SYN_I_S);
                }
            }
        }
        fill(&mut p.initial_r_hz, INITIAL_R_HZ);
        fill(&mut p.initial_v, INITIAL_V);
        p
    }
}

/// Per node and population: the coefficients the right-hand side reads.
#[derive(Clone, Copy, Debug)]
struct PopCoef {
    /// τ, s.
    tau: f64,
    /// 1/τ, 1/s.
    inv_tau: f64,
    /// Δ, the excitability half-width.
    delta: f64,
    /// Δ/(π τ), Hz (the `r` equation's source term).
    delta_over_pi_tau: f64,
    /// π τ, s.
    pi_tau: f64,
    /// η̄.
    eta: f64,
    /// Synaptic time constant of the synapses this population makes, s.
    tau_syn: f64,
}

/// [`PopCoef`] of every node and population, one vector per coefficient (entry `p · lane +
/// node`, see [`MprField::lane`]), so that the single-population passes read each as a slice
/// and vectorise.
struct Coefs {
    tau: Vec<f64>,
    inv_tau: Vec<f64>,
    delta: Vec<f64>,
    delta_over_pi_tau: Vec<f64>,
    pi_tau: Vec<f64>,
    eta: Vec<f64>,
    tau_syn: Vec<f64>,
}

impl Coefs {
    /// Entry `k`'s coefficients.
    #[inline(always)]
    fn get(&self, k: usize) -> PopCoef {
        PopCoef {
            tau: self.tau[k],
            inv_tau: self.inv_tau[k],
            delta: self.delta[k],
            delta_over_pi_tau: self.delta_over_pi_tau[k],
            pi_tau: self.pi_tau[k],
            eta: self.eta[k],
            tau_syn: self.tau_syn[k],
        }
    }
}

/// The right-hand side and everything a step reads.
struct MprField {
    nodes: usize,
    /// Populations per node (1 or 2).
    pops: usize,
    /// State variables per population: r, v, then s (and u for the alpha synapse).
    block: usize,
    /// Values from one block of the state to the next: `nodes` padded by
    /// [`staggered_len`](super::staggered_len), so that the ~15 streams of a pass (state,
    /// slopes, coefficients) do not share L1 sets when the node count is a multiple of 512.
    /// The padding's values are constant (their slopes are never written).
    lane: usize,
    synapse: Synapse,
    /// Population `p` of node `i` at `p · lane + i`.
    coef: Coefs,
    /// Signed weights, `weight[(node * pops + p) * pops + q]` into population p from q.
    weight: Vec<f64>,
    plan: CouplingPlan<f64>,
    gain: f64,
    history: DelayLine<f64>,
    /// `I_i(t)`, the real part of the forcing.
    forcing: Vec<f64>,
    delayed: Vec<f64>,
    input: Vec<f64>,
    noise: Option<Vec<f64>>,
}

impl MprField {
    /// Blocks in the state: one per population and variable.
    fn blocks(&self) -> usize {
        self.pops * self.block
    }

    /// Where variable `var` (0: r, 1: v, 2: s, 3: u) of population `p` of `node` sits in the
    /// state: one block of `lane` values per population and variable (see [`Mpr::state`]).
    #[inline(always)]
    fn at(&self, p: usize, var: usize, node: usize) -> usize {
        (p * self.block + var) * self.lane + node
    }

    /// Population `p` of `node`: its coefficients and its variables `[r, v, (s, (u))]` (unused
    /// entries 0).
    #[inline(always)]
    fn population(&self, state: &[f64], p: usize, node: usize) -> (PopCoef, [f64; 4]) {
        let b = std::array::from_fn(|var| {
            if var < self.block {
                state[self.at(p, var, node)]
            } else {
                0.0
            }
        });
        (self.coef.get(p * self.lane + node), b)
    }

    /// Where each population's synaptic variable sits in its block: r itself when instantaneous.
    fn synaptic_index(&self) -> usize {
        if self.synapse == Synapse::Instantaneous {
            0
        } else {
            2
        }
    }

    /// Prepare `Σ_j C_ij r_j(t − τ_ij)` for the stage `state` (read it with
    /// [`MprField::network`]); returns whether the network is coupled at all.
    fn prepare_network_input(&mut self, state: &[f64]) -> bool {
        let coupled = self.gain != 0.0;
        if coupled {
            // The (first) populations' rates are the state's first block, in node order.
            self.plan
                .instant_input(&self.delayed, &state[..self.nodes], &mut self.input);
        }
        coupled
    }

    /// The network input per node that [`MprField::prepare_network_input`] prepared.
    fn network(&self) -> &[f64] {
        self.plan.network_input(&self.delayed, &self.input)
    }

    /// The drift for any number of populations per node, with the network input `network`: the
    /// straightforward loop [`block_drift`] equals bit for bit (test).
    #[cfg(test)]
    fn general_drift(&self, state: &[f64], out: &mut [f64], network: (bool, &[f64])) {
        for i in 0..self.nodes {
            for p in 0..self.pops {
                let (c, b) = self.population(state, p, i);
                let current = self.current(i, p, state, network);
                let o = population_slopes(&c, self.synapse, b, current);
                for (var, o) in o.into_iter().enumerate().take(self.block) {
                    out[self.at(p, var, i)] = o;
                }
            }
        }
    }

    /// The `v` equation's terms other than `v² − (π τ r)²` for population `p` of node `i`
    /// ([`block_current`] for this network's populations per node), the network term read
    /// only when `coupled`.
    fn current(
        &self,
        i: usize,
        p: usize,
        state: &[f64],
        (coupled, network): (bool, &[f64]),
    ) -> f64 {
        let c = self.coef.get(p * self.lane + i);
        let at = (p, i);
        match (self.pops, coupled) {
            (1, false) => block_current::<1, false>(self, state, &c, at, network),
            (1, true) => block_current::<1, true>(self, state, &c, at, network),
            (_, false) => block_current::<2, false>(self, state, &c, at, network),
            (_, true) => block_current::<2, true>(self, state, &c, at, network),
        }
    }

    /// Whether an explicit step would not resolve some population's rate/potential dynamics:
    /// `2 max(|W|, √|c|) dt/τ > 1/2`, with `W = π τ r + i v` at the start of the step and `c` its
    /// local current (η̄, synaptic and external input; `√|c|` is the `|v|` a strong input drives
    /// towards within the step). Network input is left out to keep the check O(nodes).
    ///
    /// Compared squared, `max(|W|², |c|) > (STIFF τ / 2dt)²`: the same test without a square
    /// root or libm's `hypot` (which guards an overflow that would make the step stiff either
    /// way), and `hypot` was a sixth of a noisy MPR network's step.
    fn stiff(&self, state: &[f64], dt: f64) -> bool {
        match self.pops {
            1 => block_stiff::<1>(self, state, dt),
            _ => block_stiff::<2>(self, state, dt),
        }
    }

    /// [`MprField::stiff`] for any number of populations per node, with an early exit: the
    /// straightforward test [`block_stiff`] answers as (test).
    #[cfg(test)]
    fn stiff_general(&self, state: &[f64], dt: f64) -> bool {
        (0..self.nodes).any(|i| {
            (0..self.pops).any(|p| {
                let (c, b) = self.population(state, p, i);
                let (x, v) = (c.pi_tau * b[0], b[1]);
                let drive = self.current(i, p, state, (false, &[])).abs();
                let limit = STIFF / (2.0 * dt * c.inv_tau);
                (x * x + v * v).max(drive) > limit * limit
            })
        })
    }

    /// The fallback step of the module docs: the exact Riccati solution for (r, v) with the
    /// other currents frozen at the start of the step, exact synapses for the step-mean rate,
    /// then white noise on v.
    fn riccati_step(&mut self, state: &mut [f64], dt: f64, noise: &mut GaussianNoise) {
        let coupled = self.prepare_network_input(state);
        let network = (coupled, self.network());
        for i in 0..self.nodes {
            // Every current of the node is read before any of its populations moves.
            let mut currents = [0.0; 2];
            for (p, current) in currents.iter_mut().enumerate().take(self.pops) {
                *current = self.current(i, p, state, network);
            }
            for (p, current) in currents.iter().enumerate().take(self.pops) {
                let (c, mut b) = self.population(state, p, i);
                let r0 = b[0];
                let w0 = Complex64::new(c.pi_tau * r0, b[1]);
                let k = Complex64::new(*current, -c.delta).sqrt();
                let t = tanh(Complex64::i() * k * (dt * c.inv_tau));
                let w = k * (w0 + k * t) / (k + w0 * t);
                b[0] = w.re / c.pi_tau;
                b[1] = w.im;
                let mean_rate = 0.5 * (r0 + b[0]);
                let decay = (-dt / c.tau_syn).exp();
                match self.synapse {
                    Synapse::Instantaneous => {}
                    Synapse::FirstOrder => b[2] = mean_rate + (b[2] - mean_rate) * decay,
                    Synapse::SecondOrder => {
                        // Critically damped relaxation of (s − r̄, u) towards (0, 0).
                        let (e, u) = (b[2] - mean_rate, b[3]);
                        let slope = u + e / c.tau_syn;
                        b[2] = mean_rate + (e + slope * dt) * decay;
                        b[3] = (u - slope * dt / c.tau_syn) * decay;
                    }
                }
                for (var, b) in b.into_iter().enumerate().take(self.block) {
                    state[self.at(p, var, i)] = b;
                }
            }
        }
        if let Some(sd) = &self.noise {
            let sqrt_dt = dt.sqrt();
            for (x, sigma) in state.iter_mut().zip(sd) {
                if *sigma > 0.0 {
                    *x += sigma * sqrt_dt * noise.normal();
                }
            }
        }
    }
}

/// Threshold of `2 max(|W|, √|c|) dt/τ` (about the phase advance per step of the r–v rotation)
/// above which a step takes the exact Riccati fallback.
const STIFF: f64 = 0.5;

/// `tanh z` without the overflow of `cosh`/`sinh` for large `|Re z|` (where tanh is ±1 to
/// double precision).
fn tanh(z: Complex64) -> Complex64 {
    if z.re.abs() > 20.0 {
        Complex64::new(z.re.signum(), 0.0)
    } else {
        z.tanh()
    }
}

/// The `v` equation's terms other than `v² − (π τ r)²` for population `p` of node `i` of a
/// network of `POPS` populations per node: `η̄ + τ Σ_q J_pq s_q`, plus `I + K τ Σ_j C_ij r_j`
/// for the first population when `COUPLED` (`Σ_j C_ij r_j = network[i]`). The one definition:
/// the block passes call it with their constants, [`MprField::current`] with the network's.
#[inline(always)]
fn block_current<const POPS: usize, const COUPLED: bool>(
    f: &MprField,
    state: &[f64],
    c: &PopCoef,
    (p, i): (usize, usize),
    network: &[f64],
) -> f64 {
    let (lane, block, syn) = (f.lane, f.block, f.synaptic_index());
    let w = &f.weight[(i * POPS + p) * POPS..(i * POPS + p + 1) * POPS];
    let recurrent: f64 = (0..POPS)
        .map(|q| w[q] * state[(q * block + syn) * lane + i])
        .sum();
    let mut current = c.eta + c.tau * recurrent;
    if p == 0 {
        current += f.forcing[i];
        if COUPLED {
            current += f.gain * c.tau * network[i];
        }
    }
    current
}

/// One population's derivatives `(ṙ, v̇, synapse…)` from its variables `b = [r, v, (s, (u))]`,
/// given `current`, its `v` equation's terms other than `v² − (π τ r)²`
/// ([`MprField::current`]); entries past the synapse's are 0.
#[inline(always)]
fn population_slopes(c: &PopCoef, synapse: Synapse, b: [f64; 4], current: f64) -> [f64; 4] {
    let (r, v) = (b[0], b[1]);
    let pi_tau_r = c.pi_tau * r;
    let current = v * v - pi_tau_r * pi_tau_r + current;
    let mut o = [0.0; 4];
    o[0] = (c.delta_over_pi_tau + 2.0 * r * v) * c.inv_tau;
    o[1] = current * c.inv_tau;
    match synapse {
        Synapse::Instantaneous => {}
        Synapse::FirstOrder => o[2] = (r - b[2]) / c.tau_syn,
        Synapse::SecondOrder => {
            let (sv, u) = (b[2], b[3]);
            o[2] = u;
            o[3] = (r - sv - 2.0 * c.tau_syn * u) / (c.tau_syn * c.tau_syn);
        }
    }
    o
}

/// The drift of `POPS` populations per node with a synapse of order `ORDER` (0: instantaneous)
/// and the network input `network` when `COUPLED`: [`MprField::general_drift`]'s operations in
/// its order (so the same bits), node by node over the state's blocks, with the populations
/// and variables unrolled, compiled for AVX2 as well (no fused multiply-adds, so the same bits
/// either way). The node-major general loop with runtime counts was two fifths of a delayed
/// network's time.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn block_drift<const POPS: usize, const ORDER: u8, const COUPLED: bool>(
    f: &MprField,
    state: &[f64],
    network: &[f64],
    out: &mut [f64],
) {
    let (n, lane) = (f.nodes, f.lane);
    let block = 2 + ORDER as usize;
    let synapse = match ORDER {
        0 => Synapse::Instantaneous,
        1 => Synapse::FirstOrder,
        _ => Synapse::SecondOrder,
    };
    let state = &state[..POPS * block * lane];
    let out = &mut out[..POPS * block * lane];
    for i in 0..n {
        for p in 0..POPS {
            let c = f.coef.get(p * lane + i);
            let current = block_current::<POPS, COUPLED>(f, state, &c, (p, i), network);
            let at = |var: usize| (p * block + var) * lane + i;
            let b = std::array::from_fn(|var| if var < block { state[at(var)] } else { 0.0 });
            let o = population_slopes(&c, synapse, b, current);
            for (var, o) in o.into_iter().enumerate().take(block) {
                out[at(var)] = o;
            }
        }
    }
}

/// [`MprField::stiff`] for `POPS` populations per node: [`MprField::stiff_general`]'s test
/// node by node, without an early exit (the same answer; a branch per node costs more than
/// the nodes an early exit skips in the usual step, which is not stiff). Compiled for AVX2 as
/// well.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn block_stiff<const POPS: usize>(f: &MprField, state: &[f64], dt: f64) -> bool {
    let (n, lane, block) = (f.nodes, f.lane, f.block);
    let mut stiff = false;
    for i in 0..n {
        for p in 0..POPS {
            let c = f.coef.get(p * lane + i);
            let drive = block_current::<POPS, false>(f, state, &c, (p, i), &[]);
            let (x, v) = (
                c.pi_tau * state[p * block * lane + i],
                state[(p * block + 1) * lane + i],
            );
            let limit = STIFF / (2.0 * dt * c.inv_tau);
            stiff |= (x * x + v * v).max(drive.abs()) > limit * limit;
        }
    }
    stiff
}

impl Dynamics for MprField {
    fn dim(&self) -> usize {
        self.lane * self.blocks()
    }

    fn drift(&mut self, state: &[f64], out: &mut [f64]) {
        let coupled = self.prepare_network_input(state);
        let network = self.network();
        let drift = match (self.pops, self.synapse, coupled) {
            (1, Synapse::Instantaneous, false) => block_drift::<1, 0, false>,
            (1, Synapse::Instantaneous, true) => block_drift::<1, 0, true>,
            (1, Synapse::FirstOrder, false) => block_drift::<1, 1, false>,
            (1, Synapse::FirstOrder, true) => block_drift::<1, 1, true>,
            (1, Synapse::SecondOrder, false) => block_drift::<1, 2, false>,
            (1, Synapse::SecondOrder, true) => block_drift::<1, 2, true>,
            (_, Synapse::Instantaneous, false) => block_drift::<2, 0, false>,
            (_, Synapse::Instantaneous, true) => block_drift::<2, 0, true>,
            (_, Synapse::FirstOrder, false) => block_drift::<2, 1, false>,
            (_, Synapse::FirstOrder, true) => block_drift::<2, 1, true>,
            (_, Synapse::SecondOrder, false) => block_drift::<2, 2, false>,
            (_, Synapse::SecondOrder, true) => block_drift::<2, 2, true>,
        };
        drift(self, state, network, out);
    }

    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        self.noise.as_deref().map(NoiseSd::PerComponent)
    }
}

/// Whether an explicit step left a value that is not finite or a rate `r` (the first `nodes`
/// values of the first of each population's `block` blocks of `lane` values) that is not
/// positive. Folds without an early exit, which vectorise: the step almost never fails, and
/// the two short-circuiting scans this replaces were a tenth of a noisy MPR network's step.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn failed(state: &[f64], nodes: usize, lane: usize, block: usize) -> bool {
    let not_finite = state.iter().fold(false, |bad, x| bad | !x.is_finite());
    let rates = state
        .chunks_exact(lane.max(1))
        .step_by(block)
        .flat_map(|rates| &rates[..nodes]);
    let not_positive = rates.fold(false, |bad, &r| bad | (r <= 0.0));
    not_finite | not_positive
}

/// A network of MPR nodes (single populations or E–I pairs).
pub struct Mpr {
    field: MprField,
    integrator: Integrator,
    /// One block of `lane` values (`nodes` and padding) per population and variable:
    /// `[r…, v…, (s…, (u…))]` of the first population, then the same for the second (E–I), r in
    /// Hz. Blocks, so that the per-node passes vectorise and the coupled rates are the first
    /// block's first `nodes` values as they stand.
    state: Vec<f64>,
    initial: Vec<f64>,
    /// The initial (E) rates, the history before the start.
    initial_rates: Vec<f64>,
    /// The state at the start of the step, to redo a failed explicit step.
    start: Vec<f64>,
    noise: GaussianNoise,
    seed: u64,
    steps: u64,
}

/// Realise `spec` (or the default value) for `n` nodes, naming the key in errors.
fn realize(
    name: &str,
    spec: Option<&ParamSpec>,
    default: f64,
    n: usize,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Vec<f64>, String> {
    spec.unwrap_or(&ParamSpec::Value(default))
        .realize(n, rng)
        .map_err(|e| format!("model.params.{name}: {e}"))
}

/// Fail with `model.params.<name>: must be <expected>, got <value>` unless every value passes.
fn require(
    name: &str,
    values: &[f64],
    ok: impl Fn(f64) -> bool,
    expected: &str,
) -> Result<(), String> {
    match values.iter().find(|v| !ok(**v)) {
        Some(bad) => Err(format!(
            "model.params.{name}: must be {expected}, got {bad}"
        )),
        None => Ok(()),
    }
}

/// One population's realised parameters.
struct PopValues {
    tau: Vec<f64>,
    delta: Vec<f64>,
    eta: Vec<f64>,
    tau_syn: Vec<f64>,
}

/// The keys of one population and their defaults.
struct PopKeys<'a> {
    tau: (&'static str, Option<&'a ParamSpec>, f64),
    delta: (&'static str, Option<&'a ParamSpec>, f64),
    eta: (&'static str, Option<&'a ParamSpec>, f64),
    tau_syn: (&'static str, Option<&'a ParamSpec>, f64),
}

impl PopKeys<'_> {
    fn realize(
        &self,
        n: usize,
        dt: f64,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Result<PopValues, String> {
        let time_constant = format!(
            "a time constant > 0 s spanning at least 2 steps (≥ {})",
            2.0 * dt
        );
        let long_enough = |t: f64| t > 0.0 && t >= 2.0 * dt;
        let (name, spec, default) = self.tau;
        let tau = realize(name, spec, default, n, rng)?;
        require(name, &tau, long_enough, &time_constant)?;
        let (name, spec, default) = self.delta;
        let delta = realize(name, spec, default, n, rng)?;
        require(
            name,
            &delta,
            |d| d > 0.0,
            "> 0 (the half-width of the excitability distribution)",
        )?;
        let (name, spec, default) = self.eta;
        let eta = realize(name, spec, default, n, rng)?;
        let (name, spec, default) = self.tau_syn;
        let tau_syn = realize(name, spec, default, n, rng)?;
        require(name, &tau_syn, long_enough, &time_constant)?;
        Ok(PopValues {
            tau,
            delta,
            eta,
            tau_syn,
        })
    }
}

impl Mpr {
    /// Build from the common plant settings and the MPR parameters. Errors name the key at
    /// fault (`model.params.<key>: …`) and what is expected.
    pub fn new(common: &PlantCommon, params: &MprParams) -> Result<Self, String> {
        let p = params;
        let n = common.nodes;
        check_keys(p)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let ei = p.populations == Populations::ExcitatoryInhibitory;
        // Values of the synaptic time constant are still drawn (and checked) when the synapse is
        // instantaneous; they are then unused, and drawing them keeps the seed → values map the
        // same whichever synapse is chosen.
        let (pop_values, weights) = if ei {
            let e = PopKeys {
                tau: ("tau_e_s", p.tau_e_s.as_ref(), TAU_E_S),
                delta: ("delta_e", p.delta_e.as_ref(), DELTA_E),
                eta: ("eta_e", p.eta_e.as_ref(), ETA_E),
                tau_syn: ("tau_syn_e_s", p.tau_syn_e_s.as_ref(), TAU_SYN_E_S),
            }
            .realize(n, common.dt, &mut rng)?;
            let i = PopKeys {
                tau: ("tau_i_s", p.tau_i_s.as_ref(), TAU_I_S),
                delta: ("delta_i", p.delta_i.as_ref(), DELTA_I),
                eta: ("eta_i", p.eta_i.as_ref(), ETA_I),
                tau_syn: ("tau_syn_i_s", p.tau_syn_i_s.as_ref(), TAU_SYN_I_S),
            }
            .realize(n, common.dt, &mut rng)?;
            let mut magnitude = |name: &str, spec: Option<&ParamSpec>, default: f64| {
                let v = realize(name, spec, default, n, &mut rng)?;
                require(
                    name,
                    &v,
                    |x| x >= 0.0,
                    "≥ 0 (a magnitude; the sign is in the equations)",
                )?;
                Ok::<_, String>(v)
            };
            let j_ee = magnitude("j_ee", p.j_ee.as_ref(), J_EE)?;
            let j_ei = magnitude("j_ei", p.j_ei.as_ref(), J_EI)?;
            let j_ie = magnitude("j_ie", p.j_ie.as_ref(), J_IE)?;
            let j_ii = magnitude("j_ii", p.j_ii.as_ref(), J_II)?;
            // Row p = target population, column q = source: E→ excites, I→ inhibits.
            let weights = (0..n)
                .flat_map(|k| [j_ee[k], -j_ei[k], j_ie[k], -j_ii[k]])
                .collect();
            (vec![e, i], weights)
        } else {
            let single = PopKeys {
                tau: ("tau_s", p.tau_s.as_ref(), TAU_S),
                delta: ("delta", p.delta.as_ref(), DELTA),
                eta: ("eta", p.eta.as_ref(), ETA),
                tau_syn: ("tau_syn_s", p.tau_syn_s.as_ref(), TAU_SYN_S),
            }
            .realize(n, common.dt, &mut rng)?;
            let j = realize("j", p.j.as_ref(), J, n, &mut rng)?;
            (vec![single], j)
        };
        let r0 = realize(
            "initial_r_hz",
            p.initial_r_hz.as_ref(),
            INITIAL_R_HZ,
            n,
            &mut rng,
        )?;
        require("initial_r_hz", &r0, |r| r > 0.0, "a rate > 0 Hz")?;
        let v0 = realize("initial_v", p.initial_v.as_ref(), INITIAL_V, n, &mut rng)?;

        let pops = pop_values.len();
        let lane = super::staggered_len(n, 8);
        // Population by population, node by node (entry p · lane + k; the padding 0).
        let each = |f: &dyn Fn(&PopValues, usize) -> f64| -> Vec<f64> {
            pop_values
                .iter()
                .flat_map(|pv| (0..lane).map(move |k| if k < n { f(pv, k) } else { 0.0 }))
                .collect()
        };
        let coef = Coefs {
            tau: each(&|pv, k| pv.tau[k]),
            inv_tau: each(&|pv, k| 1.0 / pv.tau[k]),
            delta: each(&|pv, k| pv.delta[k]),
            delta_over_pi_tau: each(&|pv, k| pv.delta[k] / (PI * pv.tau[k])),
            pi_tau: each(&|pv, k| PI * pv.tau[k]),
            eta: each(&|pv, k| pv.eta[k]),
            tau_syn: each(&|pv, k| pv.tau_syn[k]),
        };
        let block = 2 + p.synapse.order();
        let dim = pops * block * lane;
        // Blocks r, v, then the synapse's: it starts at equilibrium with the initial rate
        // (s = r, ds/dt = 0). The padding's rate is 1 Hz, so it never reads as a failed step.
        let mut initial = Vec::with_capacity(dim);
        let mut push_block = |values: &[f64], padding: f64| {
            let start = initial.len();
            initial.extend_from_slice(values);
            initial.resize(start + lane, padding);
        };
        for _ in 0..pops {
            push_block(&r0, 1.0);
            push_block(&v0, 0.0);
            if block > 2 {
                push_block(&r0, 1.0);
            }
            if block > 3 {
                push_block(&[], 0.0);
            }
        }
        let noise = (common.noise_sd > 0.0).then(|| {
            (0..dim)
                .map(|x| {
                    if (x / lane) % block == 1 && x % lane < n {
                        common.noise_sd
                    } else {
                        0.0
                    }
                })
                .collect()
        });
        let plan = CouplingPlan::new(&common.coupling, n, common.dt);
        let initial_rates: Vec<f64> = r0.to_vec();
        let field = MprField {
            nodes: n,
            pops,
            block,
            lane,
            synapse: p.synapse,
            coef,
            weight: weights,
            history: DelayLine::new(
                n,
                plan.max_delay_steps,
                common.history_precision,
                &initial_rates,
            ),
            plan,
            gain: common.gain,
            forcing: vec![0.0; n],
            delayed: vec![0.0; n],
            input: vec![0.0; n],
            noise,
        };
        Ok(Self {
            integrator: Integrator::new(common.scheme, dim, common.dt),
            field,
            state: initial.clone(),
            initial,
            initial_rates,
            start: vec![0.0; dim],
            noise: GaussianNoise::new(common.seed),
            seed: common.seed,
            steps: 0,
        })
    }

    /// Firing rate of `node`'s (excitatory) population, Hz.
    pub fn rate_hz(&self, node: usize) -> f64 {
        self.state[self.field.at(0, 0, node)]
    }

    /// Mean membrane potential of `node`'s (excitatory) population, dimensionless.
    pub fn potential(&self, node: usize) -> f64 {
        self.state[self.field.at(0, 1, node)]
    }

    /// The inhibitory population of `node` as (rate in Hz, potential), in the E–I variant.
    pub fn inhibitory(&self, node: usize) -> Option<(f64, f64)> {
        (self.field.pops == 2).then(|| {
            let f = &self.field;
            (self.state[f.at(1, 0, node)], self.state[f.at(1, 1, node)])
        })
    }
}

/// Reject keys of the other variant and synaptic time constants without synaptic dynamics.
fn check_keys(p: &MprParams) -> Result<(), String> {
    let single = [
        ("tau_s", &p.tau_s),
        ("delta", &p.delta),
        ("eta", &p.eta),
        ("j", &p.j),
        ("tau_syn_s", &p.tau_syn_s),
    ];
    let pair = [
        ("tau_e_s", &p.tau_e_s),
        ("tau_i_s", &p.tau_i_s),
        ("delta_e", &p.delta_e),
        ("delta_i", &p.delta_i),
        ("eta_e", &p.eta_e),
        ("eta_i", &p.eta_i),
        ("j_ee", &p.j_ee),
        ("j_ei", &p.j_ei),
        ("j_ie", &p.j_ie),
        ("j_ii", &p.j_ii),
        ("tau_syn_e_s", &p.tau_syn_e_s),
        ("tau_syn_i_s", &p.tau_syn_i_s),
    ];
    let (foreign, owner, chosen) = match p.populations {
        Populations::Single => (&pair[..], "excitatory_inhibitory", "single"),
        Populations::ExcitatoryInhibitory => (&single[..], "single", "excitatory_inhibitory"),
    };
    if let Some((name, _)) = foreign.iter().find(|(_, v)| v.is_some()) {
        return Err(format!(
            "model.params.{name}: is a parameter of populations = \"{owner}\" but populations = \
             \"{chosen}\"; remove it or change populations"
        ));
    }
    if p.synapse == Synapse::Instantaneous {
        let syn = [
            ("tau_syn_s", &p.tau_syn_s),
            ("tau_syn_e_s", &p.tau_syn_e_s),
            ("tau_syn_i_s", &p.tau_syn_i_s),
        ];
        if let Some((name, _)) = syn.iter().find(|(_, v)| v.is_some()) {
            return Err(format!(
                "model.params.{name}: has no effect with synapse = \"instantaneous\"; remove it \
                 or set synapse = \"first_order\" or \"second_order\""
            ));
        }
    }
    Ok(())
}

impl Plant for Mpr {
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
        let dt = self.integrator.dt();
        if self.field.stiff(&self.state, dt) {
            self.field
                .riccati_step(&mut self.state, dt, &mut self.noise);
        } else {
            self.start.copy_from_slice(&self.state);
            self.integrator
                .step(&mut self.field, &mut self.state, &mut self.noise);
            let f = &self.field;
            let failed = failed(&self.state, f.nodes, f.lane, f.block);
            if failed {
                self.state.copy_from_slice(&self.start);
                self.field
                    .riccati_step(&mut self.state, dt, &mut self.noise);
            }
        }
        if self.field.plan.max_delay_steps > 0 {
            let rates = &self.state[..self.field.nodes];
            self.field.history.push(rates.iter().copied());
        }
        self.steps += 1;
    }

    fn observable(&self, node: usize) -> f64 {
        self.rate_hz(node)
    }

    fn phase(&self, _node: usize) -> Option<f64> {
        None
    }

    fn mean_phase(&self) -> Option<f64> {
        None
    }

    fn reset(&mut self) {
        self.state.copy_from_slice(&self.initial);
        self.field.history.reset(&self.initial_rates);
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
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// The state's blocks are padded to an odd number of cache lines; the padding never moves
    /// (noise, coupling and stiff fallback steps included) and the failed-step check reads the
    /// rates of every node, the last included, and nothing of the padding.
    #[test]
    fn padded_blocks_stay_put_and_every_rate_is_checked() {
        let n = 13;
        let mut csr = Csr::empty(n);
        for i in 0..n {
            csr.push_edge(((i + 1) % n) as u32, 0.5, 0.0);
            csr.push_edge(((i + 5) % n) as u32, 0.5, 3e-3);
            csr.end_row();
        }
        let common = PlantCommon {
            nodes: n,
            scheme: Scheme::Heun,
            dt: 1e-4,
            noise_sd: 0.5,
            coupling: Coupling::Sparse(csr),
            gain: 0.7,
            seed: 4,
            history_precision: crate::model::HistoryPrecision::F64,
        };
        let params = MprParams {
            populations: Populations::ExcitatoryInhibitory,
            synapse: Synapse::SecondOrder,
            ..MprParams::default()
        };
        let mut plant = Mpr::new(&common, &params).unwrap();
        let lane = plant.field.lane;
        assert!(lane >= n && (lane * 8 / 64) % 2 == 1, "lane {lane}");
        assert_eq!(plant.state.len(), plant.field.blocks() * lane);
        let padding = |state: &[f64]| -> Vec<u64> {
            state
                .chunks_exact(lane)
                .flat_map(|b| b[n..].iter().map(|x| x.to_bits()))
                .collect()
        };
        let before = padding(&plant.state);
        // Strong forcing drives some steps onto the stiff fallback.
        let mut fallback = false;
        for k in 0..3_000 {
            let drive = if k % 500 < 20 { 2e4 } else { 0.0 };
            fallback |= plant.field.stiff(&plant.state, 1e-4);
            plant.step(&vec![Complex64::new(drive, 0.0); n]);
        }
        assert!(fallback, "no step took the fallback");
        assert_eq!(padding(&plant.state), before);
        let (f, state) = (&plant.field, &plant.state);
        assert!(!failed(state, f.nodes, f.lane, f.block));
        for p in 0..f.pops {
            let mut bad = state.clone();
            bad[f.at(p, 0, n - 1)] = -1.0;
            assert!(failed(&bad, f.nodes, f.lane, f.block), "population {p}");
        }
    }

    /// A resolved profile shows every default the plant uses, for the chosen variant only, and
    /// builds the same plant bit for bit; a key of the other variant is left for `new` to name.
    #[test]
    fn filled_defaults_are_the_variants_own_and_build_the_same_plant() {
        let value = |v: f64| Some(ParamSpec::Value(v));
        let single = MprParams::default().with_defaults();
        assert_eq!(
            (single.tau_s.clone(), single.j.clone()),
            (value(0.01), value(15.0))
        );
        assert_eq!(
            (single.eta.clone(), single.initial_v.clone()),
            (value(-5.0), value(-2.0))
        );
        // Instantaneous synapses take no time constant; the pair's keys stay unset.
        assert!(single.tau_syn_s.is_none() && single.tau_e_s.is_none() && single.j_ee.is_none());
        let pair = MprParams {
            populations: Populations::ExcitatoryInhibitory,
            synapse: Synapse::FirstOrder,
            eta_e: value(7.0),
            ..MprParams::default()
        };
        let filled = pair.with_defaults();
        assert_eq!(filled.eta_e, value(7.0), "a value given is kept");
        assert_eq!(
            (filled.j_ei.clone(), filled.tau_syn_e_s.clone()),
            (value(20.0), value(0.002))
        );
        assert!(filled.tau_s.is_none() && filled.tau_syn_s.is_none());
        let wrong = MprParams {
            tau_e_s: value(0.02),
            ..MprParams::default()
        };
        assert_eq!(wrong.with_defaults(), wrong);

        let common = PlantCommon {
            nodes: 3,
            scheme: Scheme::Heun,
            dt: 1e-4,
            noise_sd: 0.0,
            coupling: Coupling::None,
            gain: 0.0,
            seed: 4,
            history_precision: crate::model::HistoryPrecision::F64,
        };
        for params in [MprParams::default(), pair] {
            let mut given = Mpr::new(&common, &params).unwrap();
            let mut resolved = Mpr::new(&common, &params.with_defaults()).unwrap();
            let forcing = vec![Complex64::new(0.5, 0.0); 3];
            let (mut a, mut b) = (vec![0.0; 3], vec![0.0; 3]);
            for _ in 0..2_000 {
                given.step(&forcing);
                resolved.step(&forcing);
            }
            given.observe_all(&mut a);
            resolved.observe_all(&mut b);
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
            assert!(a.iter().all(|x| x.is_finite() && *x != 0.0), "{a:?}");
        }
    }

    /// The block stiffness test answers as the general one, one population a node or an E–I
    /// pair, for states on both sides of its threshold.
    #[test]
    fn the_block_stiffness_test_equals_the_general_one() {
        let common = PlantCommon {
            nodes: 5,
            scheme: Scheme::Heun,
            dt: 1e-4,
            noise_sd: 0.0,
            coupling: Coupling::None,
            gain: 0.0,
            seed: 2,
            history_precision: crate::model::HistoryPrecision::F64,
        };
        for populations in [Populations::Single, Populations::ExcitatoryInhibitory] {
            let params = MprParams {
                populations,
                ..MprParams::default()
            };
            let plant = Mpr::new(&common, &params).unwrap();
            let field = &plant.field;
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
            let mut answers = [0; 2];
            for k in 0..4_000 {
                // Magnitudes from 1 to 10⁴: the threshold, (STIFF τ / 2dt)², lies in between.
                let scale = 10f64.powf(4.0 * k as f64 / 4_000.0);
                let state: Vec<f64> = (0..field.dim())
                    .map(|_| scale * (rng.random::<f64>() - 0.5))
                    .collect();
                let stiff = field.stiff(&state, 1e-4);
                let general = field.stiff_general(&state, 1e-4);
                assert_eq!(stiff, general, "{populations:?}, scale {scale}");
                answers[usize::from(stiff)] += 1;
            }
            assert!(answers[0] > 100 && answers[1] > 100, "{answers:?}");
        }
    }

    /// The block drift gives the general drift's bits, one population a node or an E–I pair,
    /// for every synapse, coupled (instantaneous and delayed edges) or not, at random states.
    #[test]
    fn the_block_drift_equals_the_general_one_bit_for_bit() {
        let n = 9;
        let mut csr = Csr::empty(n);
        for i in 0..n {
            for k in [1, 4] {
                let j = ((i + k) % n) as u32;
                csr.push_edge(j, 0.5, if k == 1 { 0.0 } else { 2e-3 });
            }
            csr.end_row();
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let cases = [Populations::Single, Populations::ExcitatoryInhibitory].map(|populations| {
            [
                Synapse::Instantaneous,
                Synapse::FirstOrder,
                Synapse::SecondOrder,
            ]
            .map(|synapse| (populations, synapse))
        });
        for (populations, synapse) in cases.into_iter().flatten() {
            for gain in [0.0, 0.7] {
                let common = PlantCommon {
                    nodes: n,
                    scheme: Scheme::Heun,
                    dt: 1e-4,
                    noise_sd: 0.0,
                    coupling: Coupling::Sparse(csr.clone()),
                    gain,
                    seed: 2,
                    history_precision: crate::model::HistoryPrecision::F64,
                };
                let single = populations == Populations::Single;
                let params = MprParams {
                    populations,
                    synapse,
                    tau_syn_s: (single && synapse != Synapse::Instantaneous)
                        .then_some(crate::model::ParamSpec::Value(0.005)),
                    ..MprParams::default()
                };
                let mut plant = Mpr::new(&common, &params).unwrap();
                let field = &mut plant.field;
                assert_eq!(field.pops, if single { 1 } else { 2 });
                for f in field.forcing.iter_mut() {
                    *f = rng.random::<f64>() - 0.5;
                }
                for d in field.delayed.iter_mut() {
                    *d = rng.random::<f64>() * 20.0;
                }
                let dim = field.dim();
                let state: Vec<f64> = (0..dim).map(|_| rng.random::<f64>() * 4.0 - 1.0).collect();
                let (mut blocks, mut general) = (vec![0.0; dim], vec![0.0; dim]);
                field.drift(&state, &mut blocks);
                let network = (gain != 0.0, field.network());
                field.general_drift(&state, &mut general, network);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let case = format!("{populations:?}, {synapse:?}, K = {gain}");
                assert_eq!(bits(&blocks), bits(&general), "{case}");
            }
        }
    }
}
