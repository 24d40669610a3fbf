//! Harmonic-oscillator network (MODELS.md §2):
//! `dz_i/dt = (a_i + iω_i) z_i + G Σ_j C_ij (z_j(t − τ_ij) − z_i) + F_i + σ ξ_i` (complex noise).
//!
//! `a = 0` undamped (amplitude set by the initial condition), `a < 0` damped with decay time
//! `−1/a` seconds. It is the Stuart–Landau network with the cubic term removed, so it is built as
//! a [`StuartLandau`] plant; observable `Re z`, phase `arg z`.

use super::stuart_landau::NodeCoefficients;
use super::{ParamSpec, PlantCommon, StuartLandau};
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// `[model.params]` of `kind = "harmonic"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarmonicParams {
    /// Growth rate a, 1/s: 0 undamped, < 0 damped (decay time −1/a), > 0 growing.
    pub a: ParamSpec,
    /// Natural frequency, Hz (ω = 2π f).
    pub freq_hz: ParamSpec,
    /// Initial |z| (phases uniform random from the seed); default 0 (at rest).
    #[serde(default)]
    pub initial_amplitude: f64,
}

/// Build a harmonic network (a [`StuartLandau`] plant without the cubic term).
pub fn build(common: &PlantCommon, params: &HarmonicParams) -> Result<StuartLandau, String> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed);
    let n = common.nodes;
    let a = params
        .a
        .realize(n, &mut rng)
        .map_err(|e| format!("model.params.a: {e}"))?;
    let freq = params
        .freq_hz
        .realize(n, &mut rng)
        .map_err(|e| format!("model.params.freq_hz: {e}"))?;
    super::check_below_nyquist(&freq, common.dt)?;
    if !params.initial_amplitude.is_finite() || params.initial_amplitude < 0.0 {
        return Err(format!(
            "model.params.initial_amplitude: must be a finite number ≥ 0, got {}",
            params.initial_amplitude
        ));
    }
    let initial = (0..n)
        .map(|_| Complex64::from_polar(params.initial_amplitude, rng.random::<f64>() * TAU))
        .collect();
    let coef = NodeCoefficients {
        lambda: a,
        omega: freq.iter().map(|f| TAU * f).collect(),
        mu: vec![0.0; n],
        beta: vec![0.0; n],
        cubic: false,
        real_coupling: false,
        initial,
    };
    Ok(StuartLandau::from_coefficients(common, coef))
}
