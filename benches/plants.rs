//! Plant stepping cost (ns per node-step) and the whole loop in real-time units.
//!
//! `cargo bench --bench plants`; figures are recorded in benches/README.md.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use entrain::integrate::Scheme;
use entrain::model::network::{NetworkSpec, Normalize, Topology};
use entrain::model::{
    Coupling, Dist, Kuramoto, KuramotoParams, ParamSpec, Plant, PlantCommon, Sampling,
    StuartLandau, StuartLandauParams,
};
use entrain::{engine, profile};
use num_complex::Complex64;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;

const FS: f64 = 48_000.0;

fn sl_sparse_delays(c: &mut Criterion) {
    let n = 1000;
    let spec = NetworkSpec {
        topology: Topology::RandomSparse { mean_degree: 10.0 },
        normalize: Normalize::Row,
        delay_ms: Some(ParamSpec::Dist(Dist::Uniform {
            low: 1.0,
            high: 20.0,
            sampling: Sampling::Random,
        })),
    };
    let coupling = Coupling::build(&spec, n, &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    let common = PlantCommon {
        nodes: n,
        scheme: Scheme::StochasticHeun,
        dt: 1.0 / FS,
        noise_sd: 0.1,
        coupling,
        gain: 5.0,
        seed: 1,
        history_precision: entrain::model::HistoryPrecision::F64,
    };
    let params = StuartLandauParams {
        lambda: ParamSpec::Value(5.0),
        freq_hz: ParamSpec::Dist(Dist::Normal {
            mean: 10.0,
            sd: 1.0,
            sampling: Sampling::Random,
        }),
        mu: ParamSpec::Value(5.0),
        beta: ParamSpec::Value(0.0),
        initial_amplitude: None,
        coupled_variable: Default::default(),
    };
    let mut plant = StuartLandau::new(&common, &params).unwrap();
    let forcing = vec![Complex64::default(); n];
    let mut group = c.benchmark_group("sl_n1000_sparse_k10_delays_1-20ms_heun_noise");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("step", |b| b.iter(|| plant.step(black_box(&forcing))));
    group.finish();
}

fn kuramoto_all_to_all(c: &mut Criterion) {
    let n = 1000;
    let common = PlantCommon {
        nodes: n,
        scheme: Scheme::Heun,
        dt: 1.0 / FS,
        noise_sd: 0.0,
        coupling: Coupling::AllToAll {
            n,
            weight: 1.0 / n as f64,
            delay_s: 0.0,
        },
        gain: 5.0,
        seed: 1,
        history_precision: entrain::model::HistoryPrecision::F64,
    };
    let params = KuramotoParams {
        freq_hz: ParamSpec::Dist(Dist::Lorentzian {
            center: 10.0,
            half_width: 0.5,
            sampling: Sampling::Quantile,
        }),
        phase_lag_deg: 0.0,
    };
    let mut plant = Kuramoto::new(&common, &params).unwrap();
    let forcing = vec![Complex64::default(); n];
    let mut group = c.benchmark_group("kuramoto_n1000_all_to_all_heun");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("step", |b| b.iter(|| plant.step(black_box(&forcing))));
    group.finish();
}

/// One second of audio through the whole quickstart loop (plant, estimator, policy, limiter,
/// telemetry push), in 64-frame blocks.
fn quickstart_loop(c: &mut Criterion) {
    let (profile, _) = profile::load(
        "quickstart",
        profile::QUICKSTART,
        &["stimulation.start_s=0".into()],
    )
    .unwrap();
    let mut group = c.benchmark_group("quickstart_loop");
    group.throughput(Throughput::Elements(FS as u64));
    group.sample_size(20);
    group.bench_function("one_second_of_audio", |b| {
        b.iter_batched(
            || engine::build(&profile).unwrap(),
            |mut run| {
                let mut out = [0.0f32; 64];
                for k in 0..(FS as usize / 64) {
                    run.processor.process_block(&mut out);
                    if k % 64 == 0 {
                        use ringbuf::traits::Consumer;
                        run.telemetry.clear();
                    }
                }
                run
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A plant of `n` nodes of `kind` with `params` (TOML), Heun at 48 kHz, on a random sparse
/// graph (mean degree 10, row-normalised, no delays) unless the model builds its own coupling.
fn ladder_plant(kind: &str, n: usize, params: &str, coupled: bool) -> Box<dyn Plant> {
    use entrain::model::{
        baier_grid, harmonic, horn, jansen_rit, mpr, rate, sl_dn_field, wilson_cowan,
    };
    let coupling = if coupled {
        let spec = NetworkSpec {
            topology: Topology::RandomSparse { mean_degree: 10.0 },
            normalize: Normalize::Row,
            delay_ms: None,
        };
        Coupling::build(&spec, n, &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap()
    } else {
        Coupling::None
    };
    let common = PlantCommon {
        nodes: n,
        scheme: Scheme::Heun,
        dt: 1.0 / FS,
        noise_sd: 0.0,
        coupling,
        gain: 0.1,
        seed: 1,
        history_precision: entrain::model::HistoryPrecision::F64,
    };
    match kind {
        "harmonic" => Box::new(harmonic::build(&common, &toml::from_str(params).unwrap()).unwrap()),
        "rate" => Box::new(rate::Rate::new(&common, &toml::from_str(params).unwrap()).unwrap()),
        "wilson_cowan" => Box::new(
            wilson_cowan::WilsonCowan::new(&common, &toml::from_str(params).unwrap()).unwrap(),
        ),
        "jansen_rit" => {
            Box::new(jansen_rit::JansenRit::new(&common, &toml::from_str(params).unwrap()).unwrap())
        }
        "mpr" => Box::new(mpr::Mpr::new(&common, &toml::from_str(params).unwrap()).unwrap()),
        "horn" => Box::new(horn::Horn::new(&common, &toml::from_str(params).unwrap()).unwrap()),
        "baier_grid" => {
            Box::new(baier_grid::BaierGrid::new(&common, &toml::from_str(params).unwrap()).unwrap())
        }
        "sl_dn_field" => Box::new(
            sl_dn_field::SlDnField::new(&common, &toml::from_str(params).unwrap()).unwrap(),
        ),
        other => panic!("no model {other}"),
    }
}

/// ns per node-step of every ladder model (Heun, 48 kHz step; sparse coupling where the model
/// takes the spine's topologies, its own grid coupling otherwise).
fn ladder(c: &mut Criterion) {
    let cases: [(&str, &str, bool, &[usize]); 9] = [
        ("harmonic", "a = -1.0\nfreq_hz = 10.0", true, &[100, 1000]),
        ("rate", "w = 0.5\ninput = 10.0", true, &[100, 1000]),
        ("wilson_cowan", "", true, &[100, 1000]),
        ("jansen_rit", "", true, &[100, 1000]),
        (
            "mpr",
            "synapse = \"first_order\"\neta = 10.0\nj = -20.0",
            true,
            &[100, 1000],
        ),
        ("horn", "", true, &[100, 1000]),
        ("baier_grid", "", false, &[100, 1024]),
        (
            "sl_dn_field",
            "lambda = 4.0\nfreq_hz = 10.0\na = 2.0\nb = 0.5\nc = 1.0\nsigma1 = 1.0\nsigma2 = 4.0\nboundary = \"periodic\"",
            false,
            &[256, 1024],
        ),
        (
            "mpr",
            "populations = \"excitatory_inhibitory\"\nsynapse = \"first_order\"",
            true,
            &[100],
        ),
    ];
    for (kind, params, coupled, sizes) in cases {
        for &n in sizes {
            let mut plant = ladder_plant(kind, n, params, coupled);
            let forcing = vec![Complex64::default(); n];
            let label = if params.contains("excitatory_inhibitory") {
                "mpr_ei"
            } else {
                kind
            };
            let mut group = c.benchmark_group(format!("ladder_{label}_n{n}_heun"));
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function("step", |b| b.iter(|| plant.step(black_box(&forcing))));
            group.finish();
        }
    }
}

/// The peers' standard problem and its variants (`entrain bench` lists them): one step each.
fn standard_problem(c: &mut Criterion) {
    for problem in entrain::bench::problems() {
        let mut plant = problem.plant(0).expect("the standard problems build");
        let forcing = vec![Complex64::default(); problem.nodes];
        let mut group = c.benchmark_group(format!("standard_{}", problem.name));
        group.throughput(Throughput::Elements(problem.nodes as u64));
        group.bench_function("step", |b| b.iter(|| plant.step(black_box(&forcing))));
        group.finish();
    }
}

/// The plants' noise: 2 000 standard normals (one step of 1 000 noisy SL nodes), drawn in bulk
/// by [`GaussianNoise::fill`] and, for comparison, one at a time through `rand_distr`.
fn gaussian_noise(c: &mut Criterion) {
    use rand::RngExt;
    let mut out = vec![0.0; 2000];
    let mut group = c.benchmark_group("gaussian_noise_2000");
    group.throughput(Throughput::Elements(out.len() as u64));
    let mut noise = entrain::noise::GaussianNoise::new(1);
    group.bench_function("fill", |b| {
        b.iter(|| noise.fill(black_box(&mut out)));
    });
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    group.bench_function("rand_distr_one_at_a_time", |b| {
        b.iter(|| {
            for o in out.iter_mut() {
                *o = rng.sample(rand_distr::StandardNormal);
            }
            black_box(&out);
        });
    });
    group.finish();
}

/// The sigmoid kernels of the neural masses over 256 arguments spread over the range that
/// matters (−8 to 8), against libm one value at a time. (256: each iteration restores the
/// arguments, and a copy of 4 kB or more goes to glibc's `rep movsb`, which on the Zen 3 VM
/// took longer than the kernels.)
fn sigmoids(c: &mut Criterion) {
    use entrain::model::sigmoid::{logistic_in_place, tanh_in_place};
    let z: Vec<f64> = (0..256).map(|k| -8.0 + 16.0 * k as f64 / 256.0).collect();
    let mut out = z.clone();
    let mut group = c.benchmark_group("sigmoid_256");
    group.throughput(Throughput::Elements(z.len() as u64));
    type Kernel = fn(&mut [f64]);
    let kernels: [(&str, Kernel); 4] = [
        ("logistic_in_place", logistic_in_place),
        ("tanh_in_place", tanh_in_place),
        ("logistic_libm", |v| {
            v.iter_mut().for_each(|x| *x = 1.0 / (1.0 + x.exp()))
        }),
        ("tanh_libm", |v| v.iter_mut().for_each(|x| *x = x.tanh())),
    ];
    for (name, kernel) in kernels {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.copy_from_slice(black_box(&z));
                kernel(&mut out);
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    standard_problem,
    gaussian_noise,
    sigmoids,
    sl_sparse_delays,
    kuramoto_all_to_all,
    quickstart_loop,
    ladder
);
criterion_main!(benches);
