//! Ornstein–Uhlenbeck noise: a coloured input with a set correlation time, one independent
//! stream per node, added to the plants' forcing (`[model] noise_color = "ou"`).
//!
//! Owns: [`OuNoiseBank`]. Calls [`crate::noise`] for its normal draws.
//!
//! Each stream is `dx = −x/τ dt + sqrt(2/τ) dW`, of unit stationary variance and
//! autocorrelation `exp(−|lag|/τ)`, stepped with its exact discretisation
//! `x ← a·x + sqrt(1 − a²)·N(0, 1)`, `a = exp(−dt/τ)`: no step-size error, so the statistics are
//! the same whatever the plant's step, and a `τ` shorter than a step is white noise, not
//! unstable. Streams start from the stationary distribution (a draw of N(0, 1)), so the input
//! has no transient.

use crate::noise::GaussianNoise;

/// `nodes` independent OU streams of unit variance, sampled every `step_s` seconds.
///
/// Invariant: after construction nothing allocates; [`OuNoiseBank::fill`] is real-time safe.
#[derive(Clone, Debug)]
pub struct OuNoiseBank {
    /// Each stream's value (dimensionless, unit variance).
    state: Vec<f64>,
    /// This step's normal draws, one per stream.
    draws: Vec<f64>,
    /// `exp(−dt/τ)`: the part of a value kept over one step.
    decay: f64,
    /// `sqrt(1 − decay²)`: the SD of what a step adds.
    kick: f64,
    normals: GaussianNoise,
}

impl OuNoiseBank {
    /// `nodes` streams with correlation time `tau_s` (seconds, > 0), sampled every `step_s`
    /// seconds (> 0), from `seed`.
    pub fn new(nodes: usize, step_s: f64, tau_s: f64, seed: u64) -> Result<Self, String> {
        if !(tau_s.is_finite() && tau_s > 0.0) {
            return Err(format!(
                "Ornstein–Uhlenbeck noise: ou_tau_s must be a finite time > 0 s (got {tau_s})"
            ));
        }
        if !(step_s.is_finite() && step_s > 0.0) {
            return Err(format!(
                "Ornstein–Uhlenbeck noise: the step must be a finite time > 0 s (got {step_s})"
            ));
        }
        let decay = (-step_s / tau_s).exp();
        // 1 − e^{−2h/τ} as −expm1(−2h/τ): exact for τ far longer than the step, where the
        // difference would cancel.
        let kick = (-(-2.0 * step_s / tau_s).exp_m1()).sqrt();
        let mut normals = GaussianNoise::new(seed);
        let mut state = vec![0.0; nodes];
        normals.fill(&mut state);
        Ok(Self {
            state,
            draws: vec![0.0; nodes],
            decay,
            kick,
            normals,
        })
    }

    /// Number of streams (count).
    pub fn nodes(&self) -> usize {
        self.state.len()
    }

    /// Advance every stream one step and write stream `i`'s new value into `out[i]`
    /// (dimensionless; `out.len()` must equal [`Self::nodes`]). Never allocates.
    pub fn fill(&mut self, out: &mut [f64]) {
        debug_assert_eq!(out.len(), self.state.len());
        self.normals.fill(&mut self.draws);
        for ((x, w), o) in self.state.iter_mut().zip(&self.draws).zip(out) {
            *x = self.decay * *x + self.kick * w;
            *o = *x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lag-k autocorrelation of one long stream, pooled over the bank's streams.
    fn autocorrelation(bank: &mut OuNoiseBank, steps: usize, lags: &[usize]) -> (f64, Vec<f64>) {
        let n = bank.nodes();
        let mut series = vec![vec![0.0; steps]; n];
        let mut out = vec![0.0; n];
        for k in 0..steps {
            bank.fill(&mut out);
            for (s, o) in series.iter_mut().zip(&out) {
                s[k] = *o;
            }
        }
        let var = series.iter().flatten().map(|x| x * x).sum::<f64>() / (n * steps) as f64;
        let rho = lags
            .iter()
            .map(|&lag| {
                let sum: f64 = series
                    .iter()
                    .map(|s| (lag..steps).map(|k| s[k] * s[k - lag]).sum::<f64>())
                    .sum();
                sum / (n * (steps - lag)) as f64 / var
            })
            .collect();
        (var, rho)
    }

    /// Unit variance and autocorrelation `exp(−lag·dt/τ)`, from the first step (the streams
    /// start stationary), for a τ of many steps and one shorter than a step.
    #[test]
    fn variance_is_one_and_the_correlation_decays_with_tau() {
        let dt = 1e-3;
        for (tau, lags) in [(0.01, vec![1, 5, 10, 20]), (2e-4, vec![1])] {
            let mut bank = OuNoiseBank::new(8, dt, tau, 7).unwrap();
            let (var, rho) = autocorrelation(&mut bank, 200_000, &lags);
            // 1.6e6 values, correlated over τ/dt steps: the estimate's SD is a few 1e-3.
            assert!((var - 1.0).abs() < 0.02, "τ {tau}: variance {var}");
            for (&lag, r) in lags.iter().zip(&rho) {
                let expected = (-(lag as f64) * dt / tau).exp();
                assert!(
                    (r - expected).abs() < 0.02,
                    "τ {tau}, lag {lag}: {r} vs {expected}"
                );
            }
        }
        // Stationary from the start: the first values already have unit variance.
        let mut first = vec![0.0; 20_000];
        OuNoiseBank::new(20_000, dt, 10.0, 3)
            .unwrap()
            .fill(&mut first);
        let var = first.iter().map(|x| x * x).sum::<f64>() / first.len() as f64;
        assert!((var - 1.0).abs() < 0.05, "first step's variance {var}");
    }

    #[test]
    fn the_same_seed_gives_the_same_streams_and_bad_times_are_refused() {
        let mut a = OuNoiseBank::new(3, 1e-3, 0.01, 5).unwrap();
        let mut b = OuNoiseBank::new(3, 1e-3, 0.01, 5).unwrap();
        let (mut x, mut y) = (vec![0.0; 3], vec![0.0; 3]);
        for _ in 0..100 {
            a.fill(&mut x);
            b.fill(&mut y);
            assert_eq!(x, y);
        }
        for tau in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = OuNoiseBank::new(3, 1e-3, tau, 5).unwrap_err();
            assert!(e.contains("ou_tau_s"), "{e}");
        }
    }
}
