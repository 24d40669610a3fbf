//! Fixed-step integrators for the plants.
//!
//! Owns: [`Scheme`], the [`Dynamics`] trait a plant implements to be integrated, and the
//! [`Integrator`] that holds the stage buffers (allocated once, at build).
//! Calls nothing else in the crate. Real time needs a fixed step: no adaptive schemes here.
//!
//! Noise is additive: component `k` receives `σ_k dW_k` with `dW ~ N(0, dt)` per step.
//! - `euler` / `euler_maruyama`: `x += f(x) dt + σ dW` (weak/strong order 1 / ½ with noise).
//! - `heun` / `stochastic_heun`: predictor `x̃ = x + f(x) dt + σ dW`, corrector
//!   `x += (f(x) + f(x̃)) dt/2 + σ dW` (order 2 deterministic; strong order 1 for additive noise).
//! - `rk4`: classical fourth order, deterministic only (profiles with noise must choose another
//!   scheme; if called with noise anyway it adds `σ dW` after the step).
//!
//! The stochastic names are the deterministic ones with noise switched on: they are accepted as
//! separate names so that a profile says what its author means.

use crate::noise::GaussianNoise;
use serde::{Deserialize, Serialize};

/// The integration scheme, chosen per profile (`[model] integrator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Forward Euler (first order).
    Euler,
    /// Heun's method / explicit trapezoid (second order).
    Heun,
    /// Classical Runge–Kutta (fourth order), deterministic.
    Rk4,
    /// Euler–Maruyama: Euler with additive noise.
    EulerMaruyama,
    /// Stochastic Heun: Heun with the same noise increment in predictor and corrector.
    StochasticHeun,
}

impl Scheme {
    /// Every scheme.
    pub const ALL: [Scheme; 5] = [
        Scheme::Euler,
        Scheme::Heun,
        Scheme::Rk4,
        Scheme::EulerMaruyama,
        Scheme::StochasticHeun,
    ];

    /// The scheme's name in profiles (`model.integrator`).
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Euler => "euler",
            Scheme::Heun => "heun",
            Scheme::Rk4 => "rk4",
            Scheme::EulerMaruyama => "euler_maruyama",
            Scheme::StochasticHeun => "stochastic_heun",
        }
    }

    /// Whether the scheme is meant to carry noise.
    pub fn supports_noise(self) -> bool {
        !matches!(self, Scheme::Rk4)
    }

    /// Right-hand-side evaluations per step (the cost unit of a step).
    pub fn stages(self) -> usize {
        match self {
            Scheme::Euler | Scheme::EulerMaruyama => 1,
            Scheme::Heun | Scheme::StochasticHeun => 2,
            Scheme::Rk4 => 4,
        }
    }
}

/// A system `dx/dt = f(x) + σ ξ(t)` with its forcing held constant over one step.
pub trait Dynamics {
    /// Length of the state vector.
    fn dim(&self) -> usize;
    /// Write `f(state)` into `out` (both of length `dim`). May use internal scratch space, which
    /// is why it takes `&mut self`; must not allocate.
    fn drift(&mut self, state: &[f64], out: &mut [f64]);
    /// Noise amplitude σ (units of the state per √s), or `None` when the system is
    /// deterministic. May change between steps.
    fn noise_sd(&self) -> Option<NoiseSd<'_>>;
}

/// The noise amplitudes of a [`Dynamics`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NoiseSd<'a> {
    /// σ in every component (> 0). A step then reads no per-component amplitudes, whose
    /// slice (16 kB for 1 000 SL nodes) it would otherwise read twice per step.
    Uniform(f64),
    /// σ_k per component, 0 where a component has no noise; components past the slice have
    /// none.
    PerComponent(&'a [f64]),
}

/// Steps a [`Dynamics`] forward by a fixed `dt` (seconds). Holds every stage buffer, so a step
/// never allocates.
#[derive(Debug)]
pub struct Integrator {
    scheme: Scheme,
    /// Step, seconds.
    dt: f64,
    k1: Vec<f64>,
    k2: Vec<f64>,
    k3: Vec<f64>,
    k4: Vec<f64>,
    tmp: Vec<f64>,
    dw: Vec<f64>,
    /// The step's standard normal draws, one per component with noise (at most `dim`).
    draws: Vec<f64>,
    /// The per-component intensities `noisy` was built for (capacity `dim`).
    sd_seen: Vec<f64>,
    /// The components with `σ_k ≠ 0` in `sd_seen`, in order (capacity `dim`).
    noisy: Vec<usize>,
    /// Whether the last draw was uniform noise, which wrote every component of `dw`.
    drew_uniform: bool,
}

impl Integrator {
    /// Build an integrator for a state of length `dim` and step `dt` seconds.
    pub fn new(scheme: Scheme, dim: usize, dt: f64) -> Self {
        let buf = || vec![0.0; dim];
        Self {
            scheme,
            dt,
            k1: buf(),
            k2: buf(),
            k3: buf(),
            k4: buf(),
            tmp: buf(),
            dw: buf(),
            draws: buf(),
            sd_seen: Vec::with_capacity(dim),
            noisy: Vec::with_capacity(dim),
            drew_uniform: false,
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The step, seconds.
    pub fn dt(&self) -> f64 {
        self.dt
    }

    /// Advance `state` by one step. `noise` is drawn from only when the system has noise.
    pub fn step<D: Dynamics + ?Sized>(
        &mut self,
        system: &mut D,
        state: &mut [f64],
        noise: &mut GaussianNoise,
    ) {
        debug_assert_eq!(state.len(), self.k1.len());
        let dt = self.dt;
        let noisy = self.draw_noise(system, noise);
        // Each update adds the noise increments in the same pass (`(x + h·k) + dW`, the order
        // of two separate passes, so the same bits) and runs as AVX2 where the CPU has it.
        let dw = &self.dw;
        match self.scheme {
            Scheme::Euler | Scheme::EulerMaruyama => {
                system.drift(state, &mut self.k1);
                if noisy {
                    euler_update::<true>(state, &self.k1, dt, dw);
                } else {
                    euler_update::<false>(state, &self.k1, dt, dw);
                }
            }
            Scheme::Heun | Scheme::StochasticHeun => {
                system.drift(state, &mut self.k1);
                if noisy {
                    stage::<true>(&mut self.tmp, state, &self.k1, dt, dw);
                } else {
                    stage::<false>(&mut self.tmp, state, &self.k1, dt, dw);
                }
                system.drift(&self.tmp, &mut self.k2);
                let half = 0.5 * dt;
                if noisy {
                    heun_update::<true>(state, &self.k1, &self.k2, half, dw);
                } else {
                    heun_update::<false>(state, &self.k1, &self.k2, half, dw);
                }
            }
            Scheme::Rk4 => {
                system.drift(state, &mut self.k1);
                stage::<false>(&mut self.tmp, state, &self.k1, 0.5 * dt, dw);
                system.drift(&self.tmp, &mut self.k2);
                stage::<false>(&mut self.tmp, state, &self.k2, 0.5 * dt, dw);
                system.drift(&self.tmp, &mut self.k3);
                stage::<false>(&mut self.tmp, state, &self.k3, dt, dw);
                system.drift(&self.tmp, &mut self.k4);
                let sixth = dt / 6.0;
                let k = [&self.k1[..], &self.k2, &self.k3, &self.k4];
                if noisy {
                    rk4_update::<true>(state, k, sixth, dw);
                } else {
                    rk4_update::<false>(state, k, sixth, dw);
                }
            }
        }
    }

    /// The step's noise increments `σ_k √dt N(0,1)`, drawn exactly as [`Integrator::step`] draws
    /// them (for a plant that fuses the scheme's passes into its own loop), or `None` without
    /// noise.
    pub fn noise_increments<D: Dynamics + ?Sized>(
        &mut self,
        system: &D,
        noise: &mut GaussianNoise,
    ) -> Option<&[f64]> {
        self.draw_noise(system, noise).then_some(&self.dw[..])
    }

    /// Fill `dw` with `σ_k √dt N(0,1)`; returns whether there is any noise.
    ///
    /// Only components with `σ_k ≠ 0` draw a number, in component order: the neural masses
    /// drive one or two of their variables (Jansen–Rit one of six), and drawing for the others
    /// only to multiply by zero was a fifth of a noisy Jansen–Rit network's step. Which
    /// components those are is worked out again only when the intensities change: testing each
    /// component every step, in a loop with a branch per component, was a tenth of it.
    fn draw_noise<D: Dynamics + ?Sized>(&mut self, system: &D, noise: &mut GaussianNoise) -> bool {
        let sqrt_dt = self.dt.sqrt();
        let sd = match system.noise_sd() {
            None => return false,
            Some(NoiseSd::Uniform(sd)) => {
                // Every component draws in place, scaled by the product the per-component path
                // would form for each (the same bits).
                noise.fill(&mut self.dw);
                let scale = sd * sqrt_dt;
                for w in self.dw.iter_mut() {
                    *w *= scale;
                }
                self.drew_uniform = true;
                return true;
            }
            Some(NoiseSd::PerComponent(sd)) => sd,
        };
        // Components past `sd` (none in the shipped plants) keep a zero increment.
        let sd = &sd[..sd.len().min(self.dw.len())];
        if std::mem::take(&mut self.drew_uniform) || !same_bits(sd, &self.sd_seen) {
            // Within the capacity reserved at construction: no allocation.
            self.sd_seen.clear();
            self.sd_seen.extend_from_slice(sd);
            self.noisy.clear();
            self.noisy.extend((0..sd.len()).filter(|&k| sd[k] != 0.0));
            // Components that fell quiet (or all of them, after uniform noise) must not keep
            // their last increment.
            self.dw.fill(0.0);
        }
        if self.noisy.len() == sd.len() {
            // Every component noisy: draw in place and scale, a loop that vectorises. The
            // scatter below, element by element, was 8 % of a 1 000-node noisy network's step.
            let dw = &mut self.dw[..sd.len()];
            noise.fill(dw);
            for (w, &s) in dw.iter_mut().zip(sd) {
                *w *= s * sqrt_dt;
            }
            return true;
        }
        let draws = &mut self.draws[..self.noisy.len()];
        noise.fill(draws);
        for (&k, z) in self.noisy.iter().zip(draws.iter()) {
            self.dw[k] = z * (sd[k] * sqrt_dt);
        }
        true
    }
}

/// Whether `a` and `b` hold the same values bit for bit (a loop without an early exit, so
/// that it vectorises).
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(true, |same, (x, y)| same & (x.to_bits() == y.to_bits()))
}

/// `out = x + h·k`, plus `dw` when `NOISY`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn stage<const NOISY: bool>(out: &mut [f64], x: &[f64], k: &[f64], h: f64, dw: &[f64]) {
    for (((o, x), k), d) in out.iter_mut().zip(x).zip(k).zip(dw) {
        let t = x + h * k;
        *o = if NOISY { t + d } else { t };
    }
}

/// Euler's update: `x ← x + h·k`, plus `dw` when `NOISY`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn euler_update<const NOISY: bool>(x: &mut [f64], k: &[f64], h: f64, dw: &[f64]) {
    for ((x, k), d) in x.iter_mut().zip(k).zip(dw) {
        let t = *x + h * k;
        *x = if NOISY { t + d } else { t };
    }
}

/// Heun's corrector: `x ← x + h·(k₁ + k₂)`, plus `dw` when `NOISY`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn heun_update<const NOISY: bool>(x: &mut [f64], k1: &[f64], k2: &[f64], h: f64, dw: &[f64]) {
    for (((x, a), b), d) in x.iter_mut().zip(k1).zip(k2).zip(dw) {
        let t = *x + h * (a + b);
        *x = if NOISY { t + d } else { t };
    }
}

/// RK4's update: `x ← x + h·(k₁ + 2k₂ + 2k₃ + k₄)`, plus `dw` when `NOISY`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn rk4_update<const NOISY: bool>(x: &mut [f64], k: [&[f64]; 4], h: f64, dw: &[f64]) {
    let slopes = k[0].iter().zip(k[1]).zip(k[2]).zip(k[3]);
    for ((x, (((a, b), c), d)), w) in x.iter_mut().zip(slopes).zip(dw) {
        let t = *x + h * (a + 2.0 * b + 2.0 * c + d);
        *x = if NOISY { t + w } else { t };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dz/dt = (a + iω) z`, a damped rotation with the exact solution `z0 e^{(a+iω)t}`.
    struct Rotation {
        a: f64,
        omega: f64,
        sd: Option<Vec<f64>>,
    }

    impl Dynamics for Rotation {
        fn dim(&self) -> usize {
            2
        }
        fn drift(&mut self, s: &[f64], out: &mut [f64]) {
            out[0] = self.a * s[0] - self.omega * s[1];
            out[1] = self.omega * s[0] + self.a * s[1];
        }
        fn noise_sd(&self) -> Option<NoiseSd<'_>> {
            self.sd.as_deref().map(NoiseSd::PerComponent)
        }
    }

    fn global_error(scheme: Scheme, steps: usize) -> f64 {
        let (a, omega, t_end) = (-0.3, 2.0, 2.0);
        let dt = t_end / steps as f64;
        let mut sys = Rotation { a, omega, sd: None };
        let mut integ = Integrator::new(scheme, 2, dt);
        let mut x = [1.0, 0.0];
        let mut noise = GaussianNoise::new(0);
        for _ in 0..steps {
            integ.step(&mut sys, &mut x, &mut noise);
        }
        let r = (a * t_end).exp();
        let exact = [r * (omega * t_end).cos(), r * (omega * t_end).sin()];
        ((x[0] - exact[0]).powi(2) + (x[1] - exact[1]).powi(2)).sqrt()
    }

    #[test]
    fn names_are_the_profile_spellings() {
        for scheme in Scheme::ALL {
            let parsed: Scheme =
                serde_json::from_value(serde_json::Value::from(scheme.name())).unwrap();
            assert_eq!(parsed, scheme);
        }
    }

    #[test]
    fn convergence_orders_are_one_two_four() {
        for (scheme, order) in [
            (Scheme::Euler, 1.0),
            (Scheme::Heun, 2.0),
            (Scheme::Rk4, 4.0),
        ] {
            let e1 = global_error(scheme, 100);
            let e2 = global_error(scheme, 200);
            let e3 = global_error(scheme, 400);
            let p1 = (e1 / e2).log2();
            let p2 = (e2 / e3).log2();
            assert!(
                (p1 - order).abs() < 0.15 && (p2 - order).abs() < 0.1,
                "{scheme:?}: measured orders {p1:.3}, {p2:.3}, expected {order}"
            );
        }
    }

    /// No drift; the noise intensity `sd` per component (zeros for components without noise).
    struct Still {
        sd: Vec<f64>,
    }

    impl Dynamics for Still {
        fn dim(&self) -> usize {
            self.sd.len()
        }
        fn drift(&mut self, _: &[f64], out: &mut [f64]) {
            out.fill(0.0);
        }
        fn noise_sd(&self) -> Option<NoiseSd<'_>> {
            Some(NoiseSd::PerComponent(&self.sd))
        }
    }

    #[test]
    fn only_components_with_noise_draw_numbers() {
        let dt: f64 = 0.01;
        let mut still = Still {
            sd: vec![0.0, 0.5, 0.0, 2.0],
        };
        let mut integ = Integrator::new(Scheme::EulerMaruyama, 4, dt);
        let mut x = [0.0; 4];
        let mut noise = GaussianNoise::new(7);
        integ.step(&mut still, &mut x, &mut noise);
        // The first two numbers of the same seed feed the two noisy components, in order.
        let mut z = [0.0; 2];
        GaussianNoise::new(7).fill(&mut z);
        let want = [0.0, z[0] * (0.5 * dt.sqrt()), 0.0, z[1] * (2.0 * dt.sqrt())];
        assert_eq!(x.map(f64::to_bits), want.map(f64::to_bits));
    }

    #[test]
    fn when_every_component_is_noisy_each_draws_the_seeds_next_number_in_order() {
        let dt: f64 = 0.01;
        let sd: Vec<f64> = (1..=11).map(|k| 0.25 * k as f64).collect();
        let mut still = Still { sd: sd.clone() };
        let mut integ = Integrator::new(Scheme::EulerMaruyama, sd.len(), dt);
        let mut x = vec![0.0; sd.len()];
        let mut noise = GaussianNoise::new(7);
        integ.step(&mut still, &mut x, &mut noise);
        let mut z = vec![0.0; sd.len()];
        GaussianNoise::new(7).fill(&mut z);
        for (k, ((x, z), s)) in x.iter().zip(&z).zip(&sd).enumerate() {
            assert_eq!(
                x.to_bits(),
                (z * (s * dt.sqrt())).to_bits(),
                "component {k}"
            );
        }
    }

    #[test]
    fn a_change_of_sigma_moves_the_draws_to_the_newly_noisy_components() {
        let dt: f64 = 0.01;
        let mut still = Still {
            sd: vec![0.0, 0.5, 0.0, 2.0],
        };
        let mut integ = Integrator::new(Scheme::EulerMaruyama, 4, dt);
        let mut noise = GaussianNoise::new(9);
        let mut same = GaussianNoise::new(9);
        let mut z = [0.0; 2];
        for _ in 0..3 {
            let dw = integ.noise_increments(&still, &mut noise).unwrap().to_vec();
            same.fill(&mut z);
            let want = [0.0, z[0] * (0.5 * dt.sqrt()), 0.0, z[1] * (2.0 * dt.sqrt())];
            assert_eq!(dw, want);
        }
        // Component 0 starts, 1 and 3 stop (their last increments must not linger), 2 stays off.
        still.sd = vec![1.5, 0.0, 0.0, 0.0];
        let dw = integ.noise_increments(&still, &mut noise).unwrap().to_vec();
        same.fill(&mut z[..1]);
        assert_eq!(dw, [z[0] * (1.5 * dt.sqrt()), 0.0, 0.0, 0.0]);
        // Every component on: each draws the seed's next number in order.
        still.sd = vec![1.0, 2.0, 3.0, 4.0];
        let dw = integ.noise_increments(&still, &mut noise).unwrap().to_vec();
        let mut all = [0.0; 4];
        same.fill(&mut all);
        let want: Vec<f64> = (0..4).map(|k| all[k] * (still.sd[k] * dt.sqrt())).collect();
        assert_eq!(dw, want);
    }

    /// No drift; the same σ in every component, given as one number.
    struct Even {
        dim: usize,
        sd: Option<f64>,
    }

    impl Dynamics for Even {
        fn dim(&self) -> usize {
            self.dim
        }
        fn drift(&mut self, _: &[f64], out: &mut [f64]) {
            out.fill(0.0);
        }
        fn noise_sd(&self) -> Option<NoiseSd<'_>> {
            self.sd.map(NoiseSd::Uniform)
        }
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn uniform_noise_draws_what_the_same_sigma_per_component_draws() {
        let dt: f64 = 1.0 / 48_000.0;
        let mut even = Even {
            dim: 7,
            sd: Some(0.3),
        };
        let listed = Still { sd: vec![0.3; 7] };
        let (mut a, mut b) = (
            Integrator::new(Scheme::StochasticHeun, 7, dt),
            Integrator::new(Scheme::StochasticHeun, 7, dt),
        );
        let (mut na, mut nb) = (GaussianNoise::new(3), GaussianNoise::new(3));
        for _ in 0..5 {
            let x = a.noise_increments(&even, &mut na).unwrap().to_vec();
            let y = b.noise_increments(&listed, &mut nb).unwrap().to_vec();
            assert_eq!(bits(&x), bits(&y));
        }
        // Off, then on again: None draws nothing, and the stream continues where it was.
        even.sd = None;
        assert!(a.noise_increments(&even, &mut na).is_none());
        even.sd = Some(0.3);
        let x = a.noise_increments(&even, &mut na).unwrap().to_vec();
        let y = b.noise_increments(&listed, &mut nb).unwrap().to_vec();
        assert_eq!(bits(&x), bits(&y));
    }

    #[test]
    fn per_component_noise_after_uniform_noise_leaves_the_quiet_components_at_zero() {
        let dt: f64 = 0.01;
        let mut integ = Integrator::new(Scheme::EulerMaruyama, 4, dt);
        let mut noise = GaussianNoise::new(5);
        let mut same = GaussianNoise::new(5);
        let mut all = [0.0; 4];
        let mut z = [0.0; 2];
        for _ in 0..2 {
            // The same per-component σ before and after: only the uniform step in between
            // wrote the quiet components.
            let still = Still {
                sd: vec![0.0, 0.5, 0.0, 2.0],
            };
            let dw = integ.noise_increments(&still, &mut noise).unwrap().to_vec();
            same.fill(&mut z);
            assert_eq!(
                dw,
                [0.0, z[0] * (0.5 * dt.sqrt()), 0.0, z[1] * (2.0 * dt.sqrt())]
            );
            let even = Even {
                dim: 4,
                sd: Some(1.0),
            };
            let dw = integ.noise_increments(&even, &mut noise).unwrap().to_vec();
            same.fill(&mut all);
            assert_eq!(dw, all.map(|w| w * dt.sqrt()));
        }
    }

    #[test]
    fn stochastic_names_equal_deterministic_schemes_without_noise() {
        assert_eq!(
            global_error(Scheme::Euler, 50),
            global_error(Scheme::EulerMaruyama, 50)
        );
        assert_eq!(
            global_error(Scheme::Heun, 50),
            global_error(Scheme::StochasticHeun, 50)
        );
    }

    /// Ornstein–Uhlenbeck `dx = −a x dt + σ dW` has stationary variance σ²/(2a).
    #[test]
    fn euler_maruyama_and_stochastic_heun_reach_the_ou_stationary_variance() {
        let (a, sigma, dt) = (5.0, 2.0, 1e-3);
        for scheme in [Scheme::EulerMaruyama, Scheme::StochasticHeun] {
            let mut sys = Rotation {
                a: -a,
                omega: 0.0,
                sd: Some(vec![sigma, sigma]),
            };
            let mut integ = Integrator::new(scheme, 2, dt);
            let mut noise = GaussianNoise::new(42);
            let mut x = [0.0, 0.0];
            let (mut sum2, mut n) = (0.0, 0);
            for i in 0..400_000 {
                integ.step(&mut sys, &mut x, &mut noise);
                if i > 2_000 {
                    sum2 += x[0] * x[0] + x[1] * x[1];
                    n += 2;
                }
            }
            let var = sum2 / n as f64;
            let expected = sigma * sigma / (2.0 * a);
            assert!(
                (var / expected - 1.0).abs() < 0.05,
                "{scheme:?}: variance {var:.4}, expected {expected:.4}"
            );
        }
    }
}
