//! Physics of the Wilson–Cowan E–I model (MODELS.md §6): the 1972 limit cycle, its period
//! against an independent high-accuracy solution, the resting state below it, and the network
//! term.

use entrain::integrate::Scheme;
use entrain::model::network::Csr;
use entrain::model::wilson_cowan::{WilsonCowan, WilsonCowanParams};
use entrain::model::{Coupling, Dist, ParamSpec, Plant, PlantCommon, Sampling};
use num_complex::Complex64;

const DT: f64 = 1e-4;

fn common(nodes: usize, scheme: Scheme, coupling: Coupling, gain: f64) -> PlantCommon {
    PlantCommon {
        nodes,
        scheme,
        dt: DT,
        noise_sd: 0.0,
        coupling,
        gain,
        seed: 5,
        history_precision: entrain::model::HistoryPrecision::F64,
    }
}

fn with_p(p: ParamSpec) -> WilsonCowanParams {
    WilsonCowanParams {
        p,
        ..WilsonCowanParams::default()
    }
}

/// Run `seconds` unforced; return node `node`'s E at every step.
fn record(plant: &mut WilsonCowan, seconds: f64, node: usize) -> Vec<f64> {
    let none = vec![Complex64::default(); plant.nodes()];
    (0..(seconds / plant.dt()).round() as usize)
        .map(|_| {
            plant.step(&none);
            plant.observable(node)
        })
        .collect()
}

/// Times (in units of the sample spacing `h`) of upward crossings of `level`, linearly
/// interpolated.
fn upward_crossings(x: &[f64], level: f64, h: f64) -> Vec<f64> {
    x.windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < level && w[1] >= level)
        .map(|(k, w)| (k as f64 + (level - w[0]) / (w[1] - w[0])) * h)
        .collect()
}

/// Mean period from the crossings (first to last over the number of cycles).
fn mean_period(crossings: &[f64]) -> f64 {
    (crossings[crossings.len() - 1] - crossings[0]) / (crossings.len() - 1) as f64
}

fn peak_to_peak(x: &[f64]) -> f64 {
    let max = x.iter().copied().fold(f64::MIN, f64::max);
    let min = x.iter().copied().fold(f64::MAX, f64::min);
    max - min
}

/// The plain equations in model time units, for the independent reference below.
fn wc_rhs(s: [f64; 2], p: f64) -> [f64; 2] {
    let sig = |x: f64, a: f64, theta: f64| {
        1.0 / (1.0 + (-a * (x - theta)).exp()) - 1.0 / (1.0 + (a * theta).exp())
    };
    let (e, i) = (s[0], s[1]);
    [
        -e + (1.0 - e) * sig(16.0 * e - 12.0 * i + p, 1.3, 4.0),
        -i + (1.0 - i) * sig(15.0 * e - 3.0 * i, 2.0, 3.7),
    ]
}

/// Classical RK4 at a step of `h` model units, written here independently of the crate.
fn reference_trajectory(p: f64, h: f64, units: f64) -> Vec<f64> {
    let mut s = [0.0, 0.0];
    let add = |s: [f64; 2], k: [f64; 2], c: f64| [s[0] + c * k[0], s[1] + c * k[1]];
    (0..(units / h).round() as usize)
        .map(|_| {
            let k1 = wc_rhs(s, p);
            let k2 = wc_rhs(add(s, k1, h / 2.0), p);
            let k3 = wc_rhs(add(s, k2, h / 2.0), p);
            let k4 = wc_rhs(add(s, k3, h), p);
            for c in 0..2 {
                s[c] += h / 6.0 * (k1[c] + 2.0 * k2[c] + 2.0 * k3[c] + k4[c]);
            }
            s[0]
        })
        .collect()
}

/// P = 1.25: a sustained oscillation (the same peak-to-peak amplitude in successive windows
/// long after the transient). P = 0 and P = −2: a stable fixed point (P = 0 exactly at rest,
/// and a perturbation decays back to it).
#[test]
fn the_1972_set_oscillates_at_p_1_25_and_rests_far_below() {
    let mut plant = WilsonCowan::new(
        &common(1, Scheme::Rk4, Coupling::None, 0.0),
        &WilsonCowanParams::default(),
    )
    .unwrap();
    let e = record(&mut plant, 3.0, 0);
    // Windows of 0.25 s (five cycles) at 2.0–2.25 s and 2.75–3.0 s.
    let early = peak_to_peak(&e[20_000..22_500]);
    let late = peak_to_peak(&e[27_500..30_000]);
    println!("P = 1.25: peak-to-peak E {early:.5} then {late:.5}");
    assert!(late > 0.15, "sustained oscillation, p-p {late}");
    assert!(
        (late / early - 1.0).abs() < 1e-3,
        "limit cycle: amplitude constant ({early} vs {late})"
    );

    for p in [0.0, -2.0] {
        let params = WilsonCowanParams {
            initial_e: ParamSpec::Value(0.3),
            initial_i: ParamSpec::Value(0.1),
            ..with_p(ParamSpec::Value(p))
        };
        let mut plant =
            WilsonCowan::new(&common(1, Scheme::Rk4, Coupling::None, 0.0), &params).unwrap();
        let e = record(&mut plant, 1.0, 0);
        let tail = &e[9_000..];
        println!("P = {p}: E → {:.6}, I → {:.6}", plant.e(0), plant.i(0));
        assert!(
            peak_to_peak(tail) < 1e-9,
            "P = {p}: not at rest, p-p {}",
            peak_to_peak(tail)
        );
        if p == 0.0 {
            assert!(plant.e(0).abs() < 1e-12 && plant.i(0).abs() < 1e-12);
        }
    }
}

/// The plant's period (RK4 at 0.1 ms = 0.01 model units, τ = 10 ms) against a reference RK4 at
/// 0.001 model units written in this test; and the period in seconds scales with `time_scale_s`.
#[test]
fn limit_cycle_period_matches_an_independent_high_accuracy_solution() {
    let h = 1e-3;
    let reference = reference_trajectory(1.25, h, 150.0);
    let settled = &reference[(100.0 / h) as usize..];
    let reference_period = mean_period(&upward_crossings(settled, 0.18, h));

    let mut periods_s = Vec::new();
    for (time_scale, scheme) in [
        (0.01, Scheme::Rk4),
        (0.01, Scheme::Heun),
        (0.02, Scheme::Rk4),
    ] {
        let params = WilsonCowanParams {
            time_scale_s: time_scale,
            ..WilsonCowanParams::default()
        };
        let mut plant = WilsonCowan::new(&common(1, scheme, Coupling::None, 0.0), &params).unwrap();
        let e = record(&mut plant, 150.0 * time_scale, 0);
        let settled = &e[(100.0 * time_scale / DT) as usize..];
        let period_s = mean_period(&upward_crossings(settled, 0.18, DT));
        let period_units = period_s / time_scale;
        println!(
            "{scheme:?}, {time_scale} s/unit: period {period_units:.6} units = {:.4} ms \
             ({:.3} Hz); reference {reference_period:.6} units",
            period_s * 1e3,
            1.0 / period_s
        );
        assert!(
            (period_units / reference_period - 1.0).abs() < 1e-3,
            "period {period_units} units vs reference {reference_period}"
        );
        periods_s.push(period_s);
    }
    assert!(
        (reference_period - 5.0034).abs() < 1e-3,
        "{reference_period}"
    );
    assert!((periods_s[2] / periods_s[0] - 2.0).abs() < 1e-6);
}

fn edge_0_to_1(delay_s: f64) -> Coupling {
    Coupling::Sparse(Csr {
        n: 2,
        row_ptr: vec![0, 0, 1],
        col: vec![0],
        weight: vec![1.0],
        delay_s: vec![delay_s],
    })
}

/// Node 0 oscillates (P = 1.25), node 1 rests (P = 0). Through an edge 0 → 1 node 1 oscillates
/// at node 0's period; without the edge (or with K = 0) it stays exactly at rest; node 0, which
/// has no incoming edge, is bit-identical to a lone node.
#[test]
fn a_resting_node_is_driven_only_through_its_edge() {
    let params = with_p(ParamSpec::List(vec![1.25, 0.0]));
    let run = |coupling: Coupling, gain: f64| {
        let mut plant = WilsonCowan::new(&common(2, Scheme::Rk4, coupling, gain), &params).unwrap();
        let none = [Complex64::default(); 2];
        let (mut e0, mut e1) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            plant.step(&none);
            e0.push(plant.e(0));
            e1.push(plant.e(1));
        }
        (e0, e1)
    };
    let (lone0, lone1) = run(Coupling::None, 2.0);
    let (zero0, zero1) = run(edge_0_to_1(0.0), 0.0);
    let (driven0, driven1) = run(edge_0_to_1(0.0), 5.0);
    assert!(lone1.iter().chain(&zero1).all(|e| *e == 0.0));
    assert_eq!(lone0, zero0);
    assert_eq!(lone0, driven0, "node 0 has no incoming edge");

    let tail = 10_000..20_000;
    let swing = peak_to_peak(&driven1[tail.clone()]);
    // Mean period from upward crossings of each node's mid-range level.
    let period = |x: &[f64]| {
        let mid = peak_to_peak(x) / 2.0 + x.iter().copied().fold(f64::MAX, f64::min);
        mean_period(&upward_crossings(x, mid, DT))
    };
    let (p0, p1) = (period(&driven0[tail.clone()]), period(&driven1[tail]));
    println!(
        "driven node: p-p {swing:.5}, period {:.3} ms (driver {:.3} ms)",
        p1 * 1e3,
        p0 * 1e3
    );
    assert!(swing > 1e-3, "driven node swing {swing}");
    assert!((p1 / p0 - 1.0).abs() < 1e-3, "period {p1} vs driver {p0}");
}

/// With a 5 ms edge the driven node receives nothing for 5 ms and then the same drive as
/// without a delay, 5 ms later (up to the O(dt) hold of delayed input over a step).
#[test]
fn a_delayed_edge_delivers_the_drive_after_the_delay() {
    let params = with_p(ParamSpec::List(vec![1.25, 0.0]));
    let delay_steps = 50;
    let run = |delay_s: f64| {
        let mut plant =
            WilsonCowan::new(&common(2, Scheme::Rk4, edge_0_to_1(delay_s), 5.0), &params).unwrap();
        record(&mut plant, 0.5, 1)
    };
    let instant = run(0.0);
    let delayed = run(delay_steps as f64 * DT);
    assert!(delayed[..delay_steps].iter().all(|e| *e == 0.0));
    assert!(delayed[delay_steps + 1] != 0.0);
    let scale = peak_to_peak(&instant);
    let worst = instant
        .iter()
        .zip(&delayed[delay_steps..])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("delayed vs shifted instant response: worst {worst:.2e} (scale {scale:.3e})");
    assert!(worst < 0.02 * scale, "worst {worst}, scale {scale}");
}

#[test]
fn reset_repeats_a_noisy_run_exactly() {
    let params = with_p(ParamSpec::Dist(Dist::Uniform {
        low: 1.0,
        high: 1.5,
        sampling: Sampling::Random,
    }));
    let mut c = common(
        4,
        Scheme::EulerMaruyama,
        Coupling::AllToAll {
            n: 4,
            weight: 0.25,
            delay_s: 0.004,
        },
        0.5,
    );
    c.noise_sd = 0.2;
    let mut plant = WilsonCowan::new(&c, &params).unwrap();
    let forcing = [Complex64::new(0.1, 0.0); 4];
    let trajectory = |p: &mut WilsonCowan| {
        (0..3000)
            .map(|_| {
                p.step(&forcing);
                p.observable(1)
            })
            .collect::<Vec<_>>()
    };
    let first = trajectory(&mut plant);
    plant.reset();
    assert_eq!(first, trajectory(&mut plant));
}

/// `P = Q = 0`, `E = I = 0` is an exact fixed point (`S(0) = 0`): no scheme moves it when there
/// is no coupling, however large the gain on absent edges.
#[test]
fn at_rest_without_coupling_step_changes_nothing() {
    let params = with_p(ParamSpec::Value(0.0));
    for scheme in Scheme::ALL {
        for (coupling, gain) in [(Coupling::None, 3.0), (edge_0_to_1(0.002), 0.0)] {
            let mut plant = WilsonCowan::new(&common(2, scheme, coupling, gain), &params).unwrap();
            let e = record(&mut plant, 0.1, 1);
            assert!(e.iter().all(|x| *x == 0.0), "{scheme:?}");
            assert_eq!((plant.e(0), plant.i(0), plant.i(1)), (0.0, 0.0, 0.0));
        }
    }
}

/// Forcing enters inside S_E like P: a node at P = 0 forced with F = 1.25 is the P = 1.25 node.
#[test]
fn forcing_enters_like_the_external_input_p() {
    let mut forced = WilsonCowan::new(
        &common(1, Scheme::Rk4, Coupling::None, 0.0),
        &with_p(ParamSpec::Value(0.0)),
    )
    .unwrap();
    let mut reference = WilsonCowan::new(
        &common(1, Scheme::Rk4, Coupling::None, 0.0),
        &WilsonCowanParams::default(),
    )
    .unwrap();
    for _ in 0..5000 {
        forced.step(&[Complex64::new(1.25, 0.7)]);
        reference.step(&[Complex64::default()]);
        assert!((forced.e(0) - reference.e(0)).abs() < 1e-12);
    }
}

#[test]
fn bad_parameters_are_reported_by_key() {
    let c = common(1, Scheme::Rk4, Coupling::None, 0.0);
    let err = |p: WilsonCowanParams| WilsonCowan::new(&c, &p).err().unwrap_or_default();
    let cases = [
        (
            "tau_e",
            WilsonCowanParams {
                tau_e: ParamSpec::Value(-1.0),
                ..Default::default()
            },
        ),
        (
            "time_scale_s",
            WilsonCowanParams {
                time_scale_s: 0.0,
                ..Default::default()
            },
        ),
        (
            "a_i",
            WilsonCowanParams {
                a_i: -2.0,
                ..Default::default()
            },
        ),
        (
            "c_ei",
            WilsonCowanParams {
                c_ei: f64::NAN,
                ..Default::default()
            },
        ),
        ("p", with_p(ParamSpec::List(vec![1.0, 2.0]))),
    ];
    for (key, params) in cases {
        let e = err(params);
        assert!(e.starts_with(&format!("model.params.{key}:")), "{key}: {e}");
    }
    let parsed: WilsonCowanParams = toml::from_str("p = 1.5\ntime_scale_s = 0.005").unwrap();
    assert_eq!(parsed.c_ee, 16.0);
    assert_eq!(parsed.p, ParamSpec::Value(1.5));
    assert!(toml::from_str::<WilsonCowanParams>("P = 1.5").is_err());
}
