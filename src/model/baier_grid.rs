//! Baier's coupled excitatory–inhibitory oscillators with tanh on a `side × side` grid
//! (MODELS.md §7; seed 001, the "2D_field_local_induction" notebook). For node `i`:
//!
//! `dEx_i/dt' = (h_ex,i + u_i − Ex_i − c2 tanh(In_i) + k_ee tanh(Σ_j W^EE_ji Ex_j)) τ_ex`
//! `dIn_i/dt' = (h_in,i − In_i − c4 tanh(In_i) + k_ei tanh(Σ_j W^EI_ji Ex_j)) τ_in`
//!
//! - Time: `t'` is the notebook's dimensionless time; one unit is `time_scale_s` seconds, so the
//!   right-hand side is divided by `time_scale_s` and `dt`, `time()` and the noise are in
//!   seconds. `τ_ex`, `τ_in` multiply the bracket (they are rates per model unit, as in the
//!   notebook's code, despite the name). Ex and In are dimensionless activities.
//! - Coupling: as the notebook's code, tanh acts on the coupled *sum* (its markdown writes a sum of
//!   tanh). `W = frac · A + I`: `A` the 4-neighbour grid adjacency (right and bottom neighbours,
//!   made symmetric: no wrap-round), the diagonal 1. So the sum is
//!   `Ex_i + frac · Σ_{grid neighbours j} Ex_j`; corner nodes have 2 neighbours, edge nodes 3,
//!   inner nodes 4. The plant builds `W` itself from the grid: it ignores `common.coupling` and
//!   `common.gain` (a `[network]` topology makes no sense for this model).
//! - Grid layout: node `r·side + c` at row `r`, column `c` (row-major). The centre node is
//!   `((side − 1)/2, (side − 1)/2)` (integer division, the notebook's choice; for an even side
//!   the upper-left of the four central nodes).
//! - Heterogeneous inputs, drawn from the run's seed as the notebook builds them:
//!   `h_ex,i = h_ex0 − sort(ε·N(0,1))_i` (ascending sort, so `h_ex` falls with the row-major
//!   index), `h_in,i = h_in0 − ε·N(0,1)`, and the centre node keeps `h_ex0`.
//! - Forcing: `forcing[i].re` is `u_i`, added to `h_ex,i` inside the bracket (membrane input of
//!   the excitatory population; the imaginary part is ignored). The notebook's perturbation
//!   replaces the centre's `h_ex` by `h_ex0 + 6·rect(t)`; since the centre keeps `h_ex0`, that is
//!   forcing `u = 6·rect(t)` on the centre node.
//! - Noise: white, `common.noise_sd` (activity per √s) on each Ex. The notebook's pink noise is
//!   not in this plant: the engine adds it to the forcing ([`super::pink`]).
//! - Observable `Ex_i`; no phase (`phase` and `mean_phase` are `None`).
//! - Integration: fixed step with `common.scheme` (the notebook used odeint, adaptive).
//!
//! Behaviour at the notebook's values (7 × 7, default initial state, Heun at 0.01 model units;
//! the pulse responses are checked in `tests/baier_grid.rs`): inner nodes rest at Ex ≈ −1.30,
//! In ≈ −12.62, close to a saddle-node. Corner nodes, with only two neighbours, have no rest
//! state: they drift and fire on their own, corner 0 first (at ≈ 81 model units with ε = 0, at
//! 13–16 units with ε = 0.01 for the seeds tried: the sort gives corner 0 the largest `h_ex`).
//! With the notebook's pulse train on the centre (amplitude 6, width 1.3, 0.3 per unit), the
//! "slow homoclinic" grid responds locally: the centre, then its 4 neighbours, then the 4
//! diagonal nodes fire, and the excitation goes no further (one firing neighbour is not enough
//! at `frac_ee` = 0.26; two are). In the "fast SNIC" preset the first pulse launches a wave that
//! reaches every node, the corners last, ≈ 3.5 units after the pulse onset.

use super::sigmoid::tanh_in_place;
use super::{copy_real_parts, Plant, PlantCommon};
use crate::integrate::{Dynamics, Integrator, NoiseSd};
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// The notebook's two named parameter sets for `(τ_ex, τ_in, c2, c4)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaierRegime {
    /// `(τ_ex, τ_in, c2, c4) = (1, 1.5, 10, 0)`: the notebook's active choice.
    #[default]
    SlowHomoclinic,
    /// `(τ_ex, τ_in, c2, c4) = (1, 1, 10, 0)`.
    FastSnic,
}

impl BaierRegime {
    /// `(τ_ex, τ_in, c2, c4)` of the preset (rates per model unit; dimensionless gains).
    pub fn values(self) -> (f64, f64, f64, f64) {
        match self {
            BaierRegime::SlowHomoclinic => (1.0, 1.5, 10.0, 0.0),
            BaierRegime::FastSnic => (1.0, 1.0, 10.0, 0.0),
        }
    }
}

/// `[model.params]` of the Baier grid. Every key is optional; defaults are the notebook's values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaierGridParams {
    /// Baseline excitatory input `h_ex0` (dimensionless), −6.35.
    pub h_ex0: f64,
    /// Baseline inhibitory input `h_in0` (dimensionless), −4.0.
    pub h_in0: f64,
    /// Heterogeneity ε (≥ 0, dimensionless): SD of the input offsets, 0.01.
    pub epsilon: f64,
    /// Preset for `(τ_ex, τ_in, c2, c4)`; the explicit keys below override it.
    pub regime: BaierRegime,
    /// Excitatory rate τ_ex (> 0, per model unit); default from `regime`.
    pub tau_ex: Option<f64>,
    /// Inhibitory rate τ_in (> 0, per model unit); default from `regime`.
    pub tau_in: Option<f64>,
    /// Inhibition of Ex by In, c2 (dimensionless); default from `regime`.
    pub c2: Option<f64>,
    /// Self-inhibition of In, c4 (dimensionless); default from `regime`.
    pub c4: Option<f64>,
    /// Gain of the excitatory coupled sum onto Ex, k_EE (dimensionless), 5.
    pub k_ee: f64,
    /// Gain of the excitatory coupled sum onto In, k_EI (dimensionless), 10.
    pub k_ei: f64,
    /// Neighbour weight in W^EE (dimensionless), 0.26.
    pub frac_ee: f64,
    /// Neighbour weight in W^EI (dimensionless), 0.
    pub frac_ei: f64,
    /// Seconds per model time unit, 0.1: the notebook's 0.3-per-unit pulse train is then 3 Hz
    /// with 130 ms pulses, and one excursion of a node lasts a few hundred ms — the delta /
    /// spike-wave time scale Baier's E–I models describe.
    pub time_scale_s: f64,
    /// Initial Ex of every node (dimensionless), −1.3: with `initial_in`, the rest state of the
    /// inner nodes at the notebook's values (the notebook itself continued from a previous run).
    pub initial_ex: f64,
    /// Initial In of every node (dimensionless), −12.6.
    pub initial_in: f64,
}

impl Default for BaierGridParams {
    fn default() -> Self {
        Self {
            h_ex0: -6.35,
            h_in0: -4.0,
            epsilon: 0.01,
            regime: BaierRegime::default(),
            tau_ex: None,
            tau_in: None,
            c2: None,
            c4: None,
            k_ee: 5.0,
            k_ei: 10.0,
            frac_ee: 0.26,
            frac_ei: 0.0,
            time_scale_s: 0.1,
            initial_ex: -1.3,
            initial_in: -12.6,
        }
    }
}

/// The right-hand side: everything a stage reads.
struct Field {
    side: usize,
    h_ex: Vec<f64>,
    h_in: Vec<f64>,
    /// `(τ_ex, τ_in) / time_scale_s`, per second.
    rate_ex: f64,
    rate_in: f64,
    c2: f64,
    c4: f64,
    k_ee: f64,
    k_ei: f64,
    frac_ee: f64,
    frac_ei: f64,
    /// `Re forcing` per node, held over the step.
    forcing: Vec<f64>,
    noise: Option<Vec<f64>>,
    /// `[In, Σ_EE, Σ_EI]` per node, then their `tanh`s (one vectorised pass per stage).
    tanh: Vec<f64>,
}

impl Dynamics for Field {
    fn dim(&self) -> usize {
        2 * self.h_ex.len()
    }

    /// State interleaved `[Ex_0, In_0, Ex_1, In_1, …]`, as the notebook's.
    fn drift(&mut self, s: &[f64], out: &mut [f64]) {
        let n = self.side;
        let ex = |r: usize, c: usize| s[2 * (r * n + c)];
        for r in 0..n {
            for c in 0..n {
                let i = r * n + c;
                // Missing neighbours count 0. Summing the pairs (left + right) + (up + down) keeps
                // the sum bit-identical under the grid's reflections (each maps a pair to a
                // pair, and floating-point addition is commutative).
                let left = if c > 0 { ex(r, c - 1) } else { 0.0 };
                let right = if c + 1 < n { ex(r, c + 1) } else { 0.0 };
                let up = if r > 0 { ex(r - 1, c) } else { 0.0 };
                let down = if r + 1 < n { ex(r + 1, c) } else { 0.0 };
                let neighbours = (left + right) + (up + down);
                let e = s[2 * i];
                let t = &mut self.tanh[3 * i..3 * i + 3];
                t[0] = s[2 * i + 1];
                t[1] = e + self.frac_ee * neighbours;
                t[2] = e + self.frac_ei * neighbours;
            }
        }
        // Three tanh per node: one vectorised pass instead of libm's call per value.
        tanh_in_place(&mut self.tanh);
        let nodes = s
            .chunks_exact(2)
            .zip(out.chunks_exact_mut(2))
            .zip(self.tanh.chunks_exact(3))
            .zip(self.h_ex.iter().zip(&self.h_in))
            .zip(&self.forcing);
        for ((((s, o), t), (&h_ex, &h_in)), &forcing) in nodes {
            let (e, inh) = (s[0], s[1]);
            o[0] = (h_ex + forcing - e - self.c2 * t[0] + self.k_ee * t[1]) * self.rate_ex;
            o[1] = (h_in - inh - self.c4 * t[0] + self.k_ei * t[2]) * self.rate_in;
        }
    }

    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        self.noise.as_deref().map(NoiseSd::PerComponent)
    }
}

/// Baier's E–I tanh oscillators on a square grid (module docs).
pub struct BaierGrid {
    field: Field,
    integrator: Integrator,
    /// Interleaved `[Ex_0, In_0, Ex_1, …]` (dimensionless).
    state: Vec<f64>,
    initial: Vec<f64>,
    noise: GaussianNoise,
    seed: u64,
    steps: u64,
    time_scale_s: f64,
}

/// Check that a parameter is a finite number (and positive when `positive`).
fn check(key: &str, value: f64, positive: bool) -> Result<f64, String> {
    if !value.is_finite() {
        return Err(format!(
            "model.params.{key}: must be a finite number, got {value}"
        ));
    }
    if positive && value <= 0.0 {
        return Err(format!("model.params.{key}: must be > 0, got {value}"));
    }
    Ok(value)
}

impl BaierGrid {
    /// Build from the common plant settings (`nodes` must be a perfect square, `side²`) and the
    /// parameters. Draws the heterogeneous inputs from `common.seed`.
    pub fn new(common: &PlantCommon, params: &BaierGridParams) -> Result<Self, String> {
        let n = common.nodes;
        let side = (n as f64).sqrt().round() as usize;
        if n == 0 || side * side != n {
            return Err(format!(
                "model.nodes: the Baier grid needs a perfect square number of nodes \
                 (side × side, e.g. 49 for 7 × 7), got {n}"
            ));
        }
        if !(common.dt.is_finite() && common.dt > 0.0) {
            return Err(format!(
                "model.dt: must be a finite number of seconds > 0, got {}",
                common.dt
            ));
        }
        let p = params;
        let (tau_ex, tau_in, c2, c4) = p.regime.values();
        let tau_ex = check("tau_ex", p.tau_ex.unwrap_or(tau_ex), true)?;
        let tau_in = check("tau_in", p.tau_in.unwrap_or(tau_in), true)?;
        let c2 = check("c2", p.c2.unwrap_or(c2), false)?;
        let c4 = check("c4", p.c4.unwrap_or(c4), false)?;
        let h_ex0 = check("h_ex0", p.h_ex0, false)?;
        let h_in0 = check("h_in0", p.h_in0, false)?;
        let epsilon = check("epsilon", p.epsilon, false)?;
        if epsilon < 0.0 {
            return Err(format!(
                "model.params.epsilon: the SD of the input offsets must be ≥ 0, got {epsilon}"
            ));
        }
        let time_scale_s = check("time_scale_s", p.time_scale_s, true)?;
        for (key, v) in [
            ("k_ee", p.k_ee),
            ("k_ei", p.k_ei),
            ("frac_ee", p.frac_ee),
            ("frac_ei", p.frac_ei),
            ("initial_ex", p.initial_ex),
            ("initial_in", p.initial_in),
        ] {
            check(key, v, false)?;
        }

        // The notebook's order of draws: all Ex offsets (then sorted), then all In offsets.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let mut offsets: Vec<f64> = (0..n)
            .map(|_| epsilon * rng.sample::<f64, _>(StandardNormal))
            .collect();
        offsets.sort_by(f64::total_cmp);
        let mut h_ex: Vec<f64> = offsets.iter().map(|o| h_ex0 - o).collect();
        let h_in = (0..n)
            .map(|_| h_in0 - epsilon * rng.sample::<f64, _>(StandardNormal))
            .collect();
        let centre = centre_of(side);
        h_ex[centre] = h_ex0;

        let noise = (common.noise_sd > 0.0).then(|| {
            (0..2 * n)
                .map(|k| if k % 2 == 0 { common.noise_sd } else { 0.0 })
                .collect()
        });
        let field = Field {
            side,
            h_ex,
            h_in,
            rate_ex: tau_ex / time_scale_s,
            rate_in: tau_in / time_scale_s,
            c2,
            c4,
            k_ee: p.k_ee,
            k_ei: p.k_ei,
            frac_ee: p.frac_ee,
            frac_ei: p.frac_ei,
            forcing: vec![0.0; n],
            noise,
            tanh: vec![0.0; 3 * n],
        };
        let initial: Vec<f64> = (0..n).flat_map(|_| [p.initial_ex, p.initial_in]).collect();
        Ok(Self {
            field,
            integrator: Integrator::new(common.scheme, 2 * n, common.dt),
            state: initial.clone(),
            initial,
            noise: GaussianNoise::new(common.seed),
            seed: common.seed,
            steps: 0,
            time_scale_s,
        })
    }

    /// Grid side (count of nodes along a row).
    pub fn side(&self) -> usize {
        self.field.side
    }

    /// Index of the centre node, `((side − 1)/2)·side + (side − 1)/2`.
    pub fn centre(&self) -> usize {
        centre_of(self.field.side)
    }

    /// Seconds per model time unit.
    pub fn time_scale_s(&self) -> f64 {
        self.time_scale_s
    }

    /// Excitatory inputs `h_ex,i` per node (dimensionless).
    pub fn h_ex(&self) -> &[f64] {
        &self.field.h_ex
    }

    /// Inhibitory inputs `h_in,i` per node (dimensionless).
    pub fn h_in(&self) -> &[f64] {
        &self.field.h_in
    }

    /// Excitatory activity Ex of `node` (dimensionless; the observable).
    pub fn ex(&self, node: usize) -> f64 {
        self.state[2 * node]
    }

    /// Inhibitory activity In of `node` (dimensionless).
    pub fn inh(&self, node: usize) -> f64 {
        self.state[2 * node + 1]
    }
}

fn centre_of(side: usize) -> usize {
    let mid = (side - 1) / 2;
    mid * side + mid
}

impl Plant for BaierGrid {
    fn nodes(&self) -> usize {
        self.field.h_ex.len()
    }

    fn dt(&self) -> f64 {
        self.integrator.dt()
    }

    fn time(&self) -> f64 {
        self.steps as f64 * self.integrator.dt()
    }

    /// `forcing[i].re` adds to `h_ex,i` over the step; the imaginary part is ignored.
    fn step(&mut self, forcing: &[Complex64]) {
        copy_real_parts(&mut self.field.forcing, forcing);
        self.integrator
            .step(&mut self.field, &mut self.state, &mut self.noise);
        self.steps += 1;
    }

    fn observable(&self, node: usize) -> f64 {
        self.state[2 * node]
    }

    fn phase(&self, _node: usize) -> Option<f64> {
        None
    }

    fn mean_phase(&self) -> Option<f64> {
        None
    }

    fn reset(&mut self) {
        self.state.copy_from_slice(&self.initial);
        self.noise = GaussianNoise::new(self.seed);
        self.steps = 0;
    }

    fn state_bytes(&self) -> usize {
        self.state.len() * 8
    }

    fn grid(&self) -> Option<(usize, usize)> {
        Some((self.side(), self.side()))
    }
}
