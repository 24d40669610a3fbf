//! HORN — harmonic oscillator recurrent network (MODELS.md §10; seed 003, brainmass `HORNStep`).
//!
//! Each node is a damped, driven harmonic oscillator `ẍ + 2γẋ + ω²x = α tanh(I(t) + F)`, stepped
//! with the symplectic (semi-implicit) Euler scheme of brainmass, velocity first:
//!
//! ```text
//! y_{t+1} = y_t + h (α tanh(I_{t+1} + F_t) − 2γ y_t − ω² x_t)  [+ σ √dt N(0,1)]
//! x_{t+1} = x_t + h y_{t+1}
//! F_t     = Σ_j W_ij x_j(t − τ_ij) + v x_t,    W = K C  (K = common.gain, C the topology)
//! ```
//!
//! HORN always uses this scheme: `common.scheme` is ignored (a symplectic step keeps the
//! oscillator's energy balance right, which an explicit Euler step would not).
//!
//! # Time and units
//! HORN's literature counts time in model units ("steps" of the tutorial, 1 unit = 1 ms there).
//! `time_scale_s` is the length of one model time unit in seconds (default 0.001). The engine
//! steps at `dt` seconds, so the scheme's step is `h = dt / time_scale_s` model units (1/48 at
//! 48 kHz with 1 ms units; `h = 1` reproduces the tutorial when `dt = time_scale_s`). `ω` is in
//! rad per model unit (default 2π/28: a 28-unit period), `γ` in 1/model unit, `x` in arbitrary
//! activity units and `y` in x-units per model unit.
//!
//! Facts (tested): free oscillation with period `2π/√(ω² − γ²)` ≈ `2π/ω` model units; the
//! envelope decays as `e^{−γt}` (not `e^{−2γt}`: the `2γ` multiplies the velocity); a sinusoidal
//! input resonates at `Ω ≈ ω`; critical damping at `γ = ω`. The step is stable iff
//! `h²ω² + 4γh < 4` (checked at build for every node).
//!
//! # Forcing, coupling, noise
//! - Forcing: `forcing[i].re` is the external input `I` inside the `tanh` (held over the step;
//!   it is the `I_{t+1}` of the update). The imaginary part is ignored.
//! - Network: additive coupling through positions, `Σ_j K C_ij x_j(t − τ_ij)`, inside the `tanh`
//!   with the amplitude feedback `v x_i`; not diffusive (no `−x_i` term), as in brainmass. The
//!   gain `K = common.gain` is here per x-unit (an input to the tanh), not 1/s. Any
//!   topology of [`super::network`]; delays are rounded to whole engine steps by the delay lines.
//!   All coupled inputs use positions at the start of the step (`x_t`).
//! - Noise: with `common.noise_sd = σ > 0`, each node's new velocity receives `σ √dt N(0,1)`
//!   (`dt` in seconds, σ in y-units per √s) before the position update, i.e. Euler–Maruyama for
//!   the velocity equation. Re-seeded on reset.
//!
//! # Observable and phase
//! Observable `x`. Phase: the complex amplitude `a = x − i y/ω` (its modulus `√(x² + y²/ω²)` is
//! the amplitude of the oscillator's energy `½y² + ½ω²x²`) and `φ = arg a`. This puts MODELS.md's
//! landmarks exactly where they belong: a peak of x (y = 0, x > 0) is 0, a falling zero
//! crossing (x = 0, y < 0) is +90°, a trough ±180°, a rising zero crossing −90°. Between
//! landmarks φ advances at ≈ √(ω² − γ²) with a ripple of order γ/ω (0.045 rad at the defaults).
//! The symplectic step's `y_t` is the velocity about half a step earlier, a phase lag of about
//! `ω h/2` rad (0.13° at `h = 1/48`). Overdamped nodes (`γ ≥ ω`) do not oscillate and have no
//! phase; `mean_phase` is `arg Σ a_i` over the nodes that have one.

use super::delay::DelayLine;
use super::sigmoid::tanh_in_place;
use super::{CouplingPlan, ParamSpec, Plant, PlantCommon};
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// `[model.params]` of the HORN plant. Node parameters are [`ParamSpec`]s (one value, one per
/// node, or a seeded distribution).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HornParams {
    /// Natural angular frequency ω, rad per model time unit (> 0); default 2π/28.
    pub omega: ParamSpec,
    /// Damping γ, 1 per model time unit (≥ 0; the envelope decays as e^{−γt}); default 0.01.
    pub gamma: ParamSpec,
    /// Input gain α, x-units per model time unit²; default 0.04.
    pub alpha: ParamSpec,
    /// Amplitude feedback v (inside the tanh, per x-unit); default 0.
    pub v: ParamSpec,
    /// Seconds per model time unit (> 0); default 0.001 (1 unit = 1 ms, as in the tutorial).
    pub time_scale_s: f64,
    /// Initial position x, x-units; default 0 (at rest).
    pub initial_x: ParamSpec,
    /// Initial velocity y, x-units per model time unit; default 0.
    pub initial_y: ParamSpec,
}

impl Default for HornParams {
    fn default() -> Self {
        Self {
            omega: ParamSpec::Value(TAU / 28.0),
            gamma: ParamSpec::Value(0.01),
            alpha: ParamSpec::Value(0.04),
            v: ParamSpec::Value(0.0),
            time_scale_s: 0.001,
            initial_x: ParamSpec::Value(0.0),
            initial_y: ParamSpec::Value(0.0),
        }
    }
}

/// `I + F` per node, the `tanh`'s argument: `F` the forcing's real part, `I = v x` plus, when
/// `COUPLED`, `K` times the network input. Zipped slices (no bounds checks), compiled for AVX2
/// as well (element-wise IEEE operations: the same bits either way).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn tanh_arguments<const COUPLED: bool>(
    out: &mut [f64],
    forcing: &[Complex64],
    v: &[f64],
    x: &[f64],
    input: &[f64],
    gain: f64,
) {
    let nodes = out.iter_mut().zip(forcing).zip(v.iter().zip(x)).zip(input);
    for (((out, f), (&v, &x)), &u) in nodes {
        let mut feedback = v * x;
        if COUPLED {
            feedback += gain * u;
        }
        *out = f.re + feedback;
    }
}

/// Per-node coefficients of the velocity update.
#[derive(Clone, Copy)]
struct Coefficients<'a> {
    alpha: &'a [f64],
    two_gamma: &'a [f64],
    omega_sq: &'a [f64],
}

/// The symplectic Euler step of every node from its `tanh` (in `drive`): velocity first, then
/// position with the new velocity; with `NOISY`, `kicks.1 · kicks.0[i]` added to the velocity.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn advance<const NOISY: bool>(
    x: &mut [f64],
    y: &mut [f64],
    drive: &[f64],
    c: Coefficients,
    kicks: (&[f64], f64),
    h: f64,
) {
    let (kicks, noise_step) = kicks;
    let nodes = x
        .iter_mut()
        .zip(y.iter_mut())
        .zip(drive.iter().zip(c.alpha))
        .zip(c.two_gamma.iter().zip(c.omega_sq))
        .zip(kicks);
    for ((((x, y), (&tanh, &alpha)), (&two_gamma, &omega_sq)), &kick) in nodes {
        let drive = alpha * tanh;
        let mut y_new = *y + h * (drive - two_gamma * *y - omega_sq * *x);
        if NOISY {
            y_new += noise_step * kick;
        }
        *y = y_new;
        *x += h * y_new;
    }
}

/// A HORN network.
pub struct Horn {
    nodes: usize,
    /// Engine step, s.
    dt: f64,
    /// Scheme step `dt / time_scale_s`, model time units.
    h: f64,
    omega: Vec<f64>,
    gamma: Vec<f64>,
    /// ω², per node.
    omega_sq: Vec<f64>,
    /// 2γ, per node.
    two_gamma: Vec<f64>,
    /// Whether the node oscillates (γ < ω), i.e. has a phase.
    underdamped: Vec<bool>,
    alpha: Vec<f64>,
    v: Vec<f64>,
    x: Vec<f64>,
    y: Vec<f64>,
    initial_x: Vec<f64>,
    initial_y: Vec<f64>,
    /// Initial positions as the delay lines hold them.
    initial_history: Vec<f64>,
    plan: CouplingPlan<f64>,
    gain: f64,
    history: DelayLine<f64>,
    delayed: Vec<f64>,
    input: Vec<f64>,
    /// σ √dt, the SD of the velocity kick per step (0: no noise).
    noise_step: f64,
    noise: GaussianNoise,
    /// The step's standard normal draws, one per node (drawn in bulk: cheaper than one at a
    /// time).
    kicks: Vec<f64>,
    /// The step's `tanh` arguments, then their `tanh`s, one per node.
    drive: Vec<f64>,
    seed: u64,
    steps: u64,
}

impl Horn {
    /// Build from the common plant settings and the HORN parameters. Errors name the key at
    /// fault (`model.params.<key>: …`) and what is expected.
    pub fn new(common: &PlantCommon, params: &HornParams) -> Result<Self, String> {
        let n = common.nodes;
        let ts = params.time_scale_s;
        if !(ts > 0.0 && ts.is_finite()) {
            return Err(format!(
                "model.params.time_scale_s: must be a finite number of seconds > 0 (seconds per \
                 model time unit, e.g. 0.001), got {ts}"
            ));
        }
        let h = common.dt / ts;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let mut realize = |name: &str, spec: &ParamSpec| {
            spec.realize(n, &mut rng)
                .map_err(|e| format!("model.params.{name}: {e}"))
        };
        let omega = realize("omega", &params.omega)?;
        let gamma = realize("gamma", &params.gamma)?;
        let alpha = realize("alpha", &params.alpha)?;
        let v = realize("v", &params.v)?;
        let initial_x = realize("initial_x", &params.initial_x)?;
        let initial_y = realize("initial_y", &params.initial_y)?;
        if let Some(w) = omega.iter().find(|w| **w <= 0.0) {
            return Err(format!(
                "model.params.omega: must be > 0 rad per model time unit, got {w}"
            ));
        }
        if let Some(g) = gamma.iter().find(|g| **g < 0.0) {
            return Err(format!(
                "model.params.gamma: must be ≥ 0 per model time unit, got {g}"
            ));
        }
        // Eigenvalues of the linear step map lie inside the unit circle iff γh < 1 and
        // h²ω² + 4γh < 4 (the first follows from the second).
        if let Some((w, g)) = omega.iter().zip(&gamma).find(|(w, g)| {
            let load = h * h * *w * *w + 4.0 * *g * h;
            // NaN (a non-finite step) fails too.
            load.is_nan() || load >= 4.0
        }) {
            return Err(format!(
                "model.params.omega: the symplectic Euler step needs h²ω² + 4γh < 4 to be stable, \
                 but h = dt/time_scale_s = {h} with ω = {w}, γ = {g}; lower ω or γ, or raise \
                 time_scale_s or the model rate"
            ));
        }
        let plan = CouplingPlan::new(&common.coupling, n, common.dt);
        let initial_history: Vec<f64> = initial_x.to_vec();
        Ok(Self {
            nodes: n,
            dt: common.dt,
            h,
            omega_sq: omega.iter().map(|w| w * w).collect(),
            two_gamma: gamma.iter().map(|g| 2.0 * g).collect(),
            underdamped: omega.iter().zip(&gamma).map(|(w, g)| g < w).collect(),
            omega,
            gamma,
            alpha,
            v,
            x: initial_x.clone(),
            y: initial_y.clone(),
            initial_x,
            initial_y,
            history: DelayLine::new(
                n,
                plan.max_delay_steps,
                common.history_precision,
                &initial_history,
            ),
            initial_history,
            plan,
            gain: common.gain,
            delayed: vec![0.0; n],
            input: vec![0.0; n],
            noise_step: if common.noise_sd > 0.0 {
                common.noise_sd * common.dt.sqrt()
            } else {
                0.0
            },
            noise: GaussianNoise::new(common.seed),
            kicks: vec![0.0; n],
            drive: vec![0.0; n],
            seed: common.seed,
            steps: 0,
        })
    }

    /// The scheme step `h = dt / time_scale_s`, model time units.
    pub fn h(&self) -> f64 {
        self.h
    }

    /// Each node's realised ω, rad per model time unit.
    pub fn omega(&self) -> &[f64] {
        &self.omega
    }

    /// Each node's realised γ, 1 per model time unit.
    pub fn gamma(&self) -> &[f64] {
        &self.gamma
    }

    /// Position of `node`, x-units.
    pub fn x(&self, node: usize) -> f64 {
        self.x[node]
    }

    /// Velocity of `node`, x-units per model time unit.
    pub fn y(&self, node: usize) -> f64 {
        self.y[node]
    }

    /// The complex amplitude `x − i y/ω` of `node` (modulus: amplitude in x-units, argument:
    /// phase in rad), or `None` for an overdamped node.
    pub fn amplitude(&self, node: usize) -> Option<Complex64> {
        self.underdamped[node]
            .then(|| Complex64::new(self.x[node], -self.y[node] / self.omega[node]))
    }
}

impl Plant for Horn {
    fn nodes(&self) -> usize {
        self.nodes
    }

    fn dt(&self) -> f64 {
        self.dt
    }

    fn time(&self) -> f64 {
        self.steps as f64 * self.dt
    }

    fn step(&mut self, forcing: &[Complex64]) {
        let coupled = self.gain != 0.0;
        let h = self.h;
        let noisy = self.noise_step > 0.0;
        if noisy {
            self.noise.fill(&mut self.kicks);
        }
        // The tanh of every node in one vectorised pass, between two passes that vectorise.
        // Without coupling (or noise) `v` stands in for the unread inputs.
        if coupled {
            self.plan
                .delayed_input_unless_row(&self.history, &mut self.delayed);
            // Every node's input is computed from x_t before any node moves.
            self.plan
                .instant_input(&self.delayed, &self.x, &mut self.input);
            let input = self.plan.network_input(&self.delayed, &self.input);
            tanh_arguments::<true>(&mut self.drive, forcing, &self.v, &self.x, input, self.gain);
        } else {
            tanh_arguments::<false>(&mut self.drive, forcing, &self.v, &self.x, &self.v, 0.0);
        }
        tanh_in_place(&mut self.drive);
        let node = Coefficients {
            alpha: &self.alpha,
            two_gamma: &self.two_gamma,
            omega_sq: &self.omega_sq,
        };
        if noisy {
            let kicks = (&self.kicks[..], self.noise_step);
            advance::<true>(&mut self.x, &mut self.y, &self.drive, node, kicks, h);
        } else {
            advance::<false>(
                &mut self.x,
                &mut self.y,
                &self.drive,
                node,
                (&self.v, 0.0),
                h,
            );
        }
        if self.plan.max_delay_steps > 0 {
            self.history.push(self.x.iter().copied());
        }
        self.steps += 1;
    }

    fn observable(&self, node: usize) -> f64 {
        self.x[node]
    }

    fn phase(&self, node: usize) -> Option<f64> {
        self.amplitude(node).map(|a| a.arg())
    }

    fn mean_observable(&self) -> f64 {
        self.x.iter().sum::<f64>() / self.nodes as f64
    }

    fn mean_phase(&self) -> Option<f64> {
        let mut any = false;
        let mut sum = Complex64::default();
        for a in (0..self.nodes).filter_map(|i| self.amplitude(i)) {
            sum += a;
            any = true;
        }
        any.then(|| sum.arg())
    }

    fn reset(&mut self) {
        self.x.copy_from_slice(&self.initial_x);
        self.y.copy_from_slice(&self.initial_y);
        self.history.reset(&self.initial_history);
        self.noise = GaussianNoise::new(self.seed);
        self.steps = 0;
    }

    fn state_bytes(&self) -> usize {
        (self.x.len() + self.y.len() + self.kicks.len() + self.drive.len()) * 8
            + self.history.bytes()
            + self.plan.bytes()
    }
}
