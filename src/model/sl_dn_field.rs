//! Stuart–Landau field with divisive normalization on a `side × side` grid (MODELS.md §4,
//! seed 000). For node `i`, with `θ_i = arg z_i`:
//!
//! `dz_i/dt = (λ_i + iω_i − |z_i|²) z_i + D_i e^{iθ_i} + F_i + σ ξ_i`,
//! `D_i = (a·(G1⊗|z|)_i + b) / (c·(G2⊗|z|)_i + d)`
//!
//! - Units: time in seconds; λ in 1/s; ω = 2π·`freq_hz`; `z` in amplitude units ("unit"), the
//!   cubic coefficient is 1 /(s·unit²) as in MODELS.md (μ = 1), so an uncoupled node has radius
//!   √λ. `a` in 1/s and `b` in unit/s make the numerator a rate of change of z; `c` in 1/unit and
//!   `d` dimensionless make the denominator dimensionless. `c = 0, d = 1` is the seed's additive
//!   DN coupling `(a·G1⊗|z| + b) e^{iθ}`; `a = b = 0` leaves independent SL oscillators.
//! - Kernels: G1 (narrow, `sigma1`) and G2 (wide, `sigma2`), Gaussians in grid units,
//!   `exp(−(Δr² + Δc²)/(2σ²))`, truncated to the square `|Δr|, |Δc| ≤ R = ⌈3σ⌉` and normalised
//!   to sum 1 over it (see [`GridConvolution`]). The DN term only pushes a node along its own
//!   `z`, so it changes amplitudes, never phases; at `z_i = 0` the direction `e^{iθ}` is taken
//!   as 1.
//! - Boundary (`boundary`, stated in every profile): `zero_padded` (the field is 0 outside the
//!   grid, so edge nodes receive less) or `periodic` (a torus: every node sees a full kernel, and
//!   a uniform amplitude field convolves to itself).
//! - Update order, at every stage of the integration scheme (seed's pseudocode): amplitude field
//!   `|z|` → FFT convolutions G1⊗|z|, G2⊗|z| → DN ratio → times each node's `e^{iθ}` → added to
//!   the SL term and the forcing → the scheme combines the stages (`common.scheme`).
//! - Convolution: by FFT (rustfft), O(n log n) per stage; plans and buffers are made in `new`, so
//!   `step` never allocates.
//! - Forcing: `forcing[i]` (complex, unit/s) adds to `dz_i/dt`.
//! - Noise: complex white noise, `common.noise_sd` (unit/√s) in each of Re and Im.
//! - Observable `Re z_i`; phase `arg z_i`; mean phase `arg(Σ z_i)`.
//! - Grid layout: node `r·side + c` at row `r`, column `c` (row-major); `nodes` must be `side²`.
//!   The plant builds its own spatial coupling: it ignores `common.coupling` and `common.gain`.
//!
//! A uniform field on the periodic grid, |z_i| = r, solves `λ − r² + (a r + b)/((c r + d) r) = 0`
//! (kernels sum to 1), whatever the frequencies and phases: `tests/sl_dn_field.rs` checks the
//! integrated radius against the root of that equation.

use super::{ParamSpec, Plant, PlantCommon};
use crate::integrate::{Dynamics, Integrator, NoiseSd};
use crate::noise::GaussianNoise;
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;
use std::sync::Arc;

/// How the spatial convolutions treat the grid's edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Boundary {
    /// The amplitude field is zero outside the grid (edge nodes receive less input).
    ZeroPadded,
    /// The grid is a torus; kernels wider than the grid wrap round (their weights add up).
    Periodic,
}

/// `[model.params]` of the SL field with divisive normalization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlDnFieldParams {
    /// Bifurcation parameter λ per node, 1/s (> 0: uncoupled limit cycle of radius √λ).
    pub lambda: ParamSpec,
    /// Natural frequency per node, Hz (ω = 2π f).
    pub freq_hz: ParamSpec,
    /// Gain of the narrow-kernel amplitude drive `a`, 1/s.
    pub a: f64,
    /// Constant drive `b`, unit/s.
    pub b: f64,
    /// Gain of the wide-kernel normalization `c` (≥ 0), 1/unit; default 0 (no normalization).
    #[serde(default)]
    pub c: f64,
    /// Constant of the denominator `d` (> 0, dimensionless); default 1.
    #[serde(default = "one")]
    pub d: f64,
    /// Width σ1 of the narrow kernel G1, grid units (0 < σ1 ≤ 10·side).
    pub sigma1: f64,
    /// Width σ2 of the wide kernel G2, grid units (0 < σ2 ≤ 10·side); needed when `c ≠ 0`.
    #[serde(default)]
    pub sigma2: Option<f64>,
    /// Edge treatment of the convolutions.
    pub boundary: Boundary,
    /// Initial |z| (unit); default: √λ_i where λ_i > 0, else 1. Initial phases are uniform
    /// random from the run's seed.
    #[serde(default)]
    pub initial_amplitude: Option<f64>,
}

fn one() -> f64 {
    1.0
}

/// Kernel truncation: weights out to ⌈3σ⌉ grid units (the dropped tail holds < 0.3 % per axis).
const TRUNCATION_SIGMAS: f64 = 3.0;

/// Largest kernel width accepted, in grid sides: wider kernels are flat over the grid anyway, and
/// the bound keeps the weight tables small.
const MAX_SIGMA_SIDES: f64 = 10.0;

/// Convolution of a `side × side` real field with one or more normalised, truncated Gaussian
/// kernels, by 2-D FFT. Plans and buffers are made once; [`Self::load`] and [`Self::convolve`]
/// never allocate.
///
/// Kernel `k` with width σ has weights `w(Δr, Δc) = g(Δr) g(Δc)`, `g(m) ∝ exp(−m²/(2σ²))` for
/// `|m| ≤ R = ⌈3σ⌉`, `Σ_m g(m) = 1`, so the 2-D weights sum to 1. The result is
/// `out(r, c) = Σ_{|Δr|,|Δc| ≤ R} w(Δr, Δc) x(r − Δr, c − Δc)`, with `x = 0` outside the grid
/// (zero-padded) or indices taken modulo `side` (periodic).
pub struct GridConvolution {
    side: usize,
    /// FFT length per axis: `side` (periodic) or a fast size ≥ side + min(R, side − 1).
    len: usize,
    /// Per kernel: the 1-D weights `g(m)`, `m = −R..=R`.
    weights: Vec<Vec<f64>>,
    /// Per kernel: its 2-D spectrum in the transposed layout the transform produces.
    spectra: Vec<Vec<Complex64>>,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
    /// The loaded field's spectrum (transposed layout), `len²`.
    spectrum: Vec<Complex64>,
    /// Work buffers, `len²` each.
    work: Vec<Complex64>,
    transposed: Vec<Complex64>,
    scratch: Vec<Complex64>,
}

impl GridConvolution {
    /// Plan the convolution of a `side × side` field with Gaussians of the given widths (grid
    /// units, each in `(0, 10·side]`).
    pub fn new(side: usize, sigmas: &[f64], boundary: Boundary) -> Result<Self, String> {
        if side == 0 {
            return Err("the grid side must be at least 1".into());
        }
        let max_sigma = MAX_SIGMA_SIDES * side as f64;
        if let Some(s) = sigmas
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0 && **s <= max_sigma))
        {
            return Err(format!(
                "kernel width must be > 0 and ≤ {max_sigma} grid units (10 × the side), got {s}"
            ));
        }
        let weights: Vec<Vec<f64>> = sigmas.iter().map(|s| gaussian(*s)).collect();
        let radius = |w: &Vec<f64>| (w.len() - 1) / 2;
        let len = match boundary {
            Boundary::Periodic => side,
            Boundary::ZeroPadded => {
                // Offsets beyond side − 1 never reach a grid node from inside the grid; with
                // len ≥ side + R' the circular convolution cannot alias onto the grid.
                let reach = weights.iter().map(radius).max().unwrap_or(0).min(side - 1);
                fast_len(side + reach)
            }
        };
        let mut planner = FftPlanner::new();
        let forward = planner.plan_fft_forward(len);
        let inverse = planner.plan_fft_inverse(len);
        let scratch_len = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        let mut conv = Self {
            side,
            len,
            weights: Vec::new(),
            spectra: Vec::new(),
            forward,
            inverse,
            spectrum: vec![Complex64::default(); len * len],
            work: vec![Complex64::default(); len * len],
            transposed: vec![Complex64::default(); len * len],
            scratch: vec![Complex64::default(); scratch_len],
        };
        for w in &weights {
            // The kernel image on the len × len torus: offset m sits at m mod len. Periodic:
            // offsets wrap and add (len = side). Zero-padded: offsets past side − 1 are dropped.
            let r = radius(w);
            let reach = match boundary {
                Boundary::Periodic => r,
                Boundary::ZeroPadded => r.min(side - 1),
            };
            let mut axis = vec![0.0; len];
            for (m, wm) in w.iter().enumerate().take(r + reach + 1).skip(r - reach) {
                let offset = m as isize - r as isize;
                axis[offset.rem_euclid(len as isize) as usize] += wm;
            }
            for (p, row) in conv.work.chunks_exact_mut(len).enumerate() {
                for (q, v) in row.iter_mut().enumerate() {
                    *v = Complex64::new(axis[p] * axis[q], 0.0);
                }
            }
            conv.forward_work();
            conv.spectra.push(conv.transposed.clone());
        }
        conv.weights = weights;
        Ok(conv)
    }

    /// FFT length per axis (count).
    pub fn fft_len(&self) -> usize {
        self.len
    }

    /// Truncation radius `R = ⌈3σ⌉` of kernel `k`, grid units.
    pub fn radius(&self, k: usize) -> usize {
        (self.weights[k].len() - 1) / 2
    }

    /// Weight `w(Δr, Δc)` of kernel `k` (0 outside its support; the weights sum to 1).
    pub fn weight(&self, k: usize, dr: isize, dc: isize) -> f64 {
        let r = self.radius(k) as isize;
        if dr.abs() > r || dc.abs() > r {
            return 0.0;
        }
        let w = &self.weights[k];
        w[(dr + r) as usize] * w[(dc + r) as usize]
    }

    /// Transform the field `input` (`side²` values, row-major) for the convolutions that follow.
    pub fn load(&mut self, input: &[f64]) {
        debug_assert_eq!(input.len(), self.side * self.side);
        self.work.fill(Complex64::default());
        for (row, src) in self
            .work
            .chunks_exact_mut(self.len)
            .zip(input.chunks_exact(self.side))
        {
            for (v, x) in row.iter_mut().zip(src) {
                *v = Complex64::new(*x, 0.0);
            }
        }
        self.forward_work();
        self.spectrum.copy_from_slice(&self.transposed);
    }

    /// Write kernel `k` convolved with the last loaded field into `out` (`side²`, row-major).
    pub fn convolve(&mut self, k: usize, out: &mut [f64]) {
        debug_assert_eq!(out.len(), self.side * self.side);
        let n = self.len;
        for ((t, s), g) in self
            .transposed
            .iter_mut()
            .zip(&self.spectrum)
            .zip(&self.spectra[k])
        {
            *t = s * g;
        }
        self.inverse
            .process_with_scratch(&mut self.transposed, &mut self.scratch);
        transpose(&self.transposed, &mut self.work, n);
        self.inverse
            .process_with_scratch(&mut self.work, &mut self.scratch);
        let scale = 1.0 / (n * n) as f64;
        for (dst, row) in out
            .chunks_exact_mut(self.side)
            .zip(self.work.chunks_exact(n))
        {
            for (o, v) in dst.iter_mut().zip(row) {
                *o = v.re * scale;
            }
        }
    }

    /// 2-D forward FFT of `work`: rows, transpose, rows. The result is left in `transposed`
    /// (frequency domain, transposed layout; kernel spectra share the layout, so products match).
    fn forward_work(&mut self) {
        self.forward
            .process_with_scratch(&mut self.work, &mut self.scratch);
        transpose(&self.work, &mut self.transposed, self.len);
        self.forward
            .process_with_scratch(&mut self.transposed, &mut self.scratch);
    }
}

/// The normalised 1-D Gaussian `g(m)`, `m = −R..=R`, `R = ⌈3σ⌉`.
fn gaussian(sigma: f64) -> Vec<f64> {
    let r = (TRUNCATION_SIGMAS * sigma).ceil() as isize;
    let mut g: Vec<f64> = (-r..=r)
        .map(|m| (-((m * m) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = g.iter().sum();
    for v in &mut g {
        *v /= sum;
    }
    g
}

/// Smallest length ≥ `n` of the form 2^i 3^j 5^k 7^l (fast for rustfft).
fn fast_len(n: usize) -> usize {
    let mut best = n.max(1).next_power_of_two();
    let mut p7 = 1;
    while p7 < best {
        let mut p5 = p7;
        while p5 < best {
            let mut p3 = p5;
            while p3 < best {
                let mut m = p3;
                while m < n {
                    m *= 2;
                }
                best = best.min(m);
                p3 *= 3;
            }
            p5 *= 5;
        }
        p7 *= 7;
    }
    best
}

fn transpose(src: &[Complex64], dst: &mut [Complex64], n: usize) {
    for r in 0..n {
        for c in 0..n {
            dst[c * n + r] = src[r * n + c];
        }
    }
}

/// The right-hand side with its buffers.
struct DnField {
    lambda: Vec<f64>,
    /// Angular frequency, rad/s.
    omega: Vec<f64>,
    a: f64,
    b: f64,
    c: f64,
    d: f64,
    conv: GridConvolution,
    /// `|z|`, `G1⊗|z|`, `G2⊗|z|` per node.
    amp: Vec<f64>,
    g1: Vec<f64>,
    g2: Vec<f64>,
    /// The DN term per node at the last evaluated state, unit/s.
    dn: Vec<Complex64>,
    forcing: Vec<Complex64>,
    /// σ of every state component (units of the state per √s), `None` without noise.
    noise: Option<f64>,
}

impl DnField {
    /// Fill `dn` with the divisive-normalization term at `state` (interleaved Re, Im).
    fn normalization(&mut self, state: &[f64]) {
        // √(x² + y²) rather than `hypot`: |z| is O(1) here (no overflow to guard against), and
        // libm's hypot was the step's single largest cost.
        for (r, s) in self.amp.iter_mut().zip(state.chunks_exact(2)) {
            *r = (s[0] * s[0] + s[1] * s[1]).sqrt();
        }
        // Only the convolutions a non-zero gain needs; the unused ones stay 0.
        if self.a != 0.0 || self.c != 0.0 {
            self.conv.load(&self.amp);
            if self.a != 0.0 {
                self.conv.convolve(0, &mut self.g1);
            }
            if self.c != 0.0 {
                self.conv.convolve(1, &mut self.g2);
            }
        }
        for (i, (dn, s)) in self.dn.iter_mut().zip(state.chunks_exact(2)).enumerate() {
            let ratio = (self.a * self.g1[i] + self.b) / (self.c * self.g2[i] + self.d);
            let r = self.amp[i];
            let direction = if r > 0.0 {
                Complex64::new(s[0] / r, s[1] / r)
            } else {
                Complex64::new(1.0, 0.0)
            };
            *dn = direction * ratio;
        }
    }
}

impl Dynamics for DnField {
    fn dim(&self) -> usize {
        2 * self.lambda.len()
    }

    fn drift(&mut self, state: &[f64], out: &mut [f64]) {
        self.normalization(state);
        for (i, (s, o)) in state
            .chunks_exact(2)
            .zip(out.chunks_exact_mut(2))
            .enumerate()
        {
            let z = Complex64::new(s[0], s[1]);
            let r2 = self.amp[i] * self.amp[i];
            let dz = Complex64::new(self.lambda[i] - r2, self.omega[i]) * z
                + self.dn[i]
                + self.forcing[i];
            o[0] = dz.re;
            o[1] = dz.im;
        }
    }

    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        self.noise.map(NoiseSd::Uniform)
    }
}

/// The SL field with divisive normalization (module docs).
pub struct SlDnField {
    side: usize,
    field: DnField,
    integrator: Integrator,
    /// Interleaved `[Re z_0, Im z_0, Re z_1, …]`, unit.
    state: Vec<f64>,
    initial: Vec<f64>,
    noise: GaussianNoise,
    seed: u64,
    steps: u64,
}

impl SlDnField {
    /// Build from the common settings (`nodes = side²`) and the parameters; draws the
    /// per-node parameters and the initial phases from `common.seed`.
    pub fn new(common: &PlantCommon, params: &SlDnFieldParams) -> Result<Self, String> {
        let n = common.nodes;
        let side = (n as f64).sqrt().round() as usize;
        if n == 0 || side * side != n {
            return Err(format!(
                "model.nodes: the SL field needs a perfect square number of nodes \
                 (side × side, e.g. 64 for 8 × 8), got {n}"
            ));
        }
        if !(common.dt.is_finite() && common.dt > 0.0) {
            return Err(format!(
                "model.dt: must be a finite number of seconds > 0, got {}",
                common.dt
            ));
        }
        let p = params;
        for (key, v) in [("a", p.a), ("b", p.b), ("c", p.c), ("d", p.d)] {
            if !v.is_finite() {
                return Err(format!(
                    "model.params.{key}: must be a finite number, got {v}"
                ));
            }
        }
        if p.c < 0.0 {
            return Err(format!(
                "model.params.c: must be ≥ 0 (with d > 0 it keeps the denominator positive), \
                 got {}",
                p.c
            ));
        }
        if p.d <= 0.0 {
            return Err(format!(
                "model.params.d: must be > 0 (it keeps the denominator positive), got {}",
                p.d
            ));
        }
        let mut sigmas = vec![p.sigma1];
        match p.sigma2 {
            Some(s) => sigmas.push(s),
            None if p.c != 0.0 => {
                return Err(
                    "model.params.sigma2: the wide kernel's width (grid units) is needed when \
                     c ≠ 0"
                        .into(),
                )
            }
            None => {}
        }
        let max_sigma = MAX_SIGMA_SIDES * side as f64;
        for (key, s) in ["sigma1", "sigma2"].iter().zip(&sigmas) {
            if !(s.is_finite() && *s > 0.0 && *s <= max_sigma) {
                return Err(format!(
                    "model.params.{key}: must be > 0 and ≤ {max_sigma} grid units \
                     (10 × the side), got {s}"
                ));
            }
        }
        if let Some(a0) = p.initial_amplitude {
            if !(a0.is_finite() && a0 >= 0.0) {
                return Err(format!(
                    "model.params.initial_amplitude: must be a finite number ≥ 0, got {a0}"
                ));
            }
        }
        let conv = GridConvolution::new(side, &sigmas, p.boundary)
            .map_err(|e| format!("model.params.sigma1/sigma2: {e}"))?;

        let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
        let lambda = p
            .lambda
            .realize(n, &mut rng)
            .map_err(|e| format!("model.params.lambda: {e}"))?;
        let freq = p
            .freq_hz
            .realize(n, &mut rng)
            .map_err(|e| format!("model.params.freq_hz: {e}"))?;
        let initial: Vec<f64> = lambda
            .iter()
            .flat_map(|l| {
                let r = p
                    .initial_amplitude
                    .unwrap_or(if *l > 0.0 { l.sqrt() } else { 1.0 });
                let z = Complex64::from_polar(r, rng.random::<f64>() * TAU);
                [z.re, z.im]
            })
            .collect();
        let noise = (common.noise_sd > 0.0).then_some(common.noise_sd);
        let field = DnField {
            lambda,
            omega: freq.iter().map(|f| TAU * f).collect(),
            a: p.a,
            b: p.b,
            c: p.c,
            d: p.d,
            conv,
            amp: vec![0.0; n],
            g1: vec![0.0; n],
            g2: vec![0.0; n],
            dn: vec![Complex64::default(); n],
            forcing: vec![Complex64::default(); n],
            noise,
        };
        Ok(Self {
            side,
            field,
            integrator: Integrator::new(common.scheme, 2 * n, common.dt),
            state: initial.clone(),
            initial,
            noise: GaussianNoise::new(common.seed),
            seed: common.seed,
            steps: 0,
        })
    }

    /// Grid side (count of nodes along a row).
    pub fn side(&self) -> usize {
        self.side
    }

    /// The complex state of `node`, unit.
    pub fn z(&self, node: usize) -> Complex64 {
        Complex64::new(self.state[2 * node], self.state[2 * node + 1])
    }

    /// Write the divisive-normalization term `[(a·G1⊗|z| + b)/(c·G2⊗|z| + d)] e^{iθ}` at the
    /// current state into `out` (one per node, unit/s). Never allocates.
    pub fn dn_terms(&mut self, out: &mut [Complex64]) {
        self.field.normalization(&self.state);
        out.copy_from_slice(&self.field.dn);
    }
}

impl Plant for SlDnField {
    fn nodes(&self) -> usize {
        self.field.lambda.len()
    }

    fn dt(&self) -> f64 {
        self.integrator.dt()
    }

    fn time(&self) -> f64 {
        self.steps as f64 * self.integrator.dt()
    }

    fn step(&mut self, forcing: &[Complex64]) {
        self.field.forcing.copy_from_slice(forcing);
        self.integrator
            .step(&mut self.field, &mut self.state, &mut self.noise);
        self.steps += 1;
    }

    fn observable(&self, node: usize) -> f64 {
        self.state[2 * node]
    }

    fn phase(&self, node: usize) -> Option<f64> {
        Some(self.z(node).arg())
    }

    fn mean_phase(&self) -> Option<f64> {
        let sum: Complex64 = (0..self.nodes()).map(|i| self.z(i)).sum();
        Some(sum.arg())
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
