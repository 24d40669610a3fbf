//! Heterogeneous node parameters: one value, a list, or a seeded distribution.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// A per-node (or per-edge) parameter as written in a profile: `10.0`, `[9.5, 10.0, 10.5]`, or
/// `{ dist = "lorentzian", center = 10.0, half_width = 0.5 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a number, a list of numbers, or a table such as \
    { dist = \"normal\", mean = 10.0, sd = 0.5 } (dist: normal, uniform, lorentzian)"
)]
pub enum ParamSpec {
    /// The same value everywhere.
    Value(f64),
    /// One value per element, in order; its length must equal the element count.
    List(Vec<f64>),
    /// Drawn from a distribution with the run's seed.
    Dist(Dist),
}

/// How a [`Dist`] is sampled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Independent random draws from the seeded generator.
    #[default]
    Random,
    /// Deterministic quantiles `F⁻¹((i + ½)/n)`: the finite-n sample closest to the density
    /// (reduces finite-size fluctuations in order-parameter experiments).
    Quantile,
}

/// A parameter distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Gaussian with mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (≥ 0).
        sd: f64,
        /// Random draws or quantiles.
        #[serde(default)]
        sampling: Sampling,
    },
    /// Uniform on `[low, high]`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound (≥ low).
        high: f64,
        /// Random draws or quantiles.
        #[serde(default)]
        sampling: Sampling,
    },
    /// Cauchy–Lorentz with centre and half-width at half-maximum (Kuramoto's Ott–Antonsen case).
    Lorentzian {
        /// Centre.
        center: f64,
        /// Half-width at half-maximum (> 0).
        half_width: f64,
        /// Random draws or quantiles.
        #[serde(default)]
        sampling: Sampling,
    },
}

impl ParamSpec {
    /// Realise `n` values; draws from `rng` only for random sampling. Errors say what is wrong.
    pub fn realize<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Result<Vec<f64>, String> {
        let values = match self {
            ParamSpec::Value(v) => vec![*v; n],
            ParamSpec::List(list) => {
                if list.len() != n {
                    return Err(format!(
                        "a list of {} values was given but {} are needed (one per element)",
                        list.len(),
                        n
                    ));
                }
                list.clone()
            }
            ParamSpec::Dist(dist) => dist.realize(n, rng)?,
        };
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(format!("values must be finite numbers, found {bad}"));
        }
        Ok(values)
    }
}

impl Dist {
    fn realize<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Result<Vec<f64>, String> {
        let quantile = |sampling: Sampling, i: usize| match sampling {
            Sampling::Quantile => Some((i as f64 + 0.5) / n as f64),
            Sampling::Random => None,
        };
        match *self {
            Dist::Normal { mean, sd, sampling } => {
                if sd.is_nan() || sd < 0.0 {
                    return Err(format!("normal: sd must be ≥ 0, got {sd}"));
                }
                if sampling == Sampling::Quantile {
                    return Err(
                        "normal: quantile sampling is available for uniform and lorentzian \
                                distributions only; use sampling = \"random\""
                            .into(),
                    );
                }
                let normal = Normal::new(mean, sd).map_err(|e| format!("normal: {e}"))?;
                Ok((0..n).map(|_| normal.sample(rng)).collect())
            }
            Dist::Uniform {
                low,
                high,
                sampling,
            } => {
                if high.is_nan() || low.is_nan() || high < low {
                    return Err(format!("uniform: high ({high}) must be ≥ low ({low})"));
                }
                Ok((0..n)
                    .map(|i| {
                        let p = quantile(sampling, i).unwrap_or_else(|| rng.random::<f64>());
                        low + (high - low) * p
                    })
                    .collect())
            }
            Dist::Lorentzian {
                center,
                half_width,
                sampling,
            } => {
                if half_width.is_nan() || half_width <= 0.0 {
                    return Err(format!(
                        "lorentzian: half_width must be > 0, got {half_width}"
                    ));
                }
                Ok((0..n)
                    .map(|i| {
                        let p = quantile(sampling, i).unwrap_or_else(|| rng.random::<f64>());
                        center + half_width * (std::f64::consts::PI * (p - 0.5)).tan()
                    })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn quantile_lorentzian_has_the_requested_median_and_half_width() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let spec = ParamSpec::Dist(Dist::Lorentzian {
            center: 2.0,
            half_width: 0.5,
            sampling: Sampling::Quantile,
        });
        let mut v = spec.realize(1000, &mut rng).unwrap();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = 0.5 * (v[499] + v[500]);
        let iqr_half = 0.5 * (v[750] - v[249]);
        assert!((median - 2.0).abs() < 1e-9);
        assert!((iqr_half - 0.5).abs() < 0.01, "half IQR {iqr_half}");
    }

    #[test]
    fn list_length_must_match() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let err = ParamSpec::List(vec![1.0, 2.0])
            .realize(3, &mut rng)
            .unwrap_err();
        assert!(
            err.contains("2 values") && err.contains("3 are needed"),
            "{err}"
        );
    }

    #[test]
    fn same_seed_same_draws() {
        let spec = ParamSpec::Dist(Dist::Normal {
            mean: 0.0,
            sd: 1.0,
            sampling: Sampling::Random,
        });
        let a = spec
            .realize(10, &mut Xoshiro256PlusPlus::seed_from_u64(7))
            .unwrap();
        let b = spec
            .realize(10, &mut Xoshiro256PlusPlus::seed_from_u64(7))
            .unwrap();
        assert_eq!(a, b);
    }
}
