//! Physics of the firing-rate population (MODELS.md §5): fixed points, their stability
//! `w φ'(w r* + I) < 1`, bistability and switching by a pulse, and the network term.

use entrain::integrate::Scheme;
use entrain::model::network::Csr;
use entrain::model::rate::{Rate, RateParams, Transfer};
use entrain::model::{Coupling, Dist, ParamSpec, Plant, PlantCommon, Sampling};
use num_complex::Complex64;

/// Default sigmoid of the plant: ceiling (Hz), gain (1/Hz), threshold (Hz).
const MAX_RATE: f64 = 100.0;
const GAIN: f64 = 0.1;
const THRESHOLD: f64 = 50.0;
const TAU: f64 = 0.01;
const DT: f64 = 1e-4;

fn phi(x: f64) -> f64 {
    MAX_RATE / (1.0 + (-GAIN * (x - THRESHOLD)).exp())
}

fn phi_slope(x: f64) -> f64 {
    let s = phi(x) / MAX_RATE;
    MAX_RATE * GAIN * s * (1.0 - s)
}

fn common(nodes: usize, scheme: Scheme, coupling: Coupling, gain: f64) -> PlantCommon {
    PlantCommon {
        nodes,
        scheme,
        dt: DT,
        noise_sd: 0.0,
        coupling,
        gain,
        seed: 11,
        history_precision: entrain::model::HistoryPrecision::F64,
    }
}

fn sigmoid_params(w: f64, input: f64, initial_rate: ParamSpec) -> RateParams {
    RateParams {
        tau_s: ParamSpec::Value(TAU),
        w: ParamSpec::Value(w),
        input: ParamSpec::Value(input),
        transfer: Transfer::Sigmoid,
        max_rate: None,
        sigmoid_gain: None,
        sigmoid_threshold: None,
        initial_rate,
    }
}

fn linear_params(w: f64, input: ParamSpec) -> RateParams {
    RateParams {
        tau_s: ParamSpec::Value(TAU),
        w: ParamSpec::Value(w),
        input,
        transfer: Transfer::ThresholdLinear,
        max_rate: None,
        sigmoid_gain: None,
        sigmoid_threshold: None,
        initial_rate: ParamSpec::Value(0.0),
    }
}

/// Step `plant` for `seconds` with the same forcing on every node.
fn run(plant: &mut Rate, seconds: f64, forcing: f64) {
    let f = vec![Complex64::new(forcing, 0.0); plant.nodes()];
    for _ in 0..(seconds / plant.dt()).round() as usize {
        plant.step(&f);
    }
}

/// Root of `φ(w r + I) − r` in `[lo, hi]` by bisection (the bracket must change sign).
fn bisect_fixed_point(w: f64, input: f64, mut lo: f64, mut hi: f64) -> f64 {
    let h = |r: f64| phi(w * r + input) - r;
    assert!(h(lo) * h(hi) < 0.0, "no sign change in [{lo}, {hi}]");
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if h(lo) * h(mid) <= 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    0.5 * (lo + hi)
}

/// w = 1, I = 0: off ≈ 0.72 Hz, on ≈ 99.28 Hz, unstable middle at 50 Hz. Both simulated
/// states satisfy the fixed-point equation and `w φ' < 1`; the middle root found by bisection
/// has `w φ' > 1`, and the simulation runs away from it on either side.
#[test]
fn bistable_fixed_points_and_their_stability_condition() {
    let (w, input) = (1.0, 0.0);
    let start = ParamSpec::List(vec![0.0, MAX_RATE]);
    let mut plant = Rate::new(
        &common(2, Scheme::Rk4, Coupling::None, 0.0),
        &sigmoid_params(w, input, start),
    )
    .unwrap();
    run(&mut plant, 0.5, 0.0);
    let (low, high) = (plant.observable(0), plant.observable(1));
    println!("fixed points: low {low:.6} Hz, high {high:.6} Hz");
    for r in [low, high] {
        assert!(
            (phi(w * r + input) - r).abs() < 1e-9,
            "{r} is not a fixed point"
        );
        let loop_gain = w * phi_slope(w * r + input);
        assert!(loop_gain < 1.0, "stable state {r} has w φ' = {loop_gain}");
    }
    assert!(low < 1.0 && high > 99.0, "low {low}, high {high}");

    let middle = bisect_fixed_point(w, input, low + 1e-3, high - 1e-3);
    let loop_gain = w * phi_slope(w * middle + input);
    println!("middle fixed point {middle:.6} Hz, w φ' = {loop_gain:.4}");
    assert!(
        (middle - 50.0).abs() < 1e-9,
        "symmetric sigmoid: middle at θ"
    );
    assert!(loop_gain > 1.0, "middle fixed point has w φ' = {loop_gain}");

    // Unstable: starting just either side of it, the rate leaves for the two stable states.
    let start = ParamSpec::List(vec![middle - 0.01, middle + 0.01]);
    let mut plant = Rate::new(
        &common(2, Scheme::Rk4, Coupling::None, 0.0),
        &sigmoid_params(w, input, start),
    )
    .unwrap();
    run(&mut plant, 0.5, 0.0);
    assert!((plant.observable(0) - low).abs() < 1e-6);
    assert!((plant.observable(1) - high).abs() < 1e-6);
}

/// A brief input pulse switches the bistable node on and it stays on after the pulse; a pulse
/// too short to carry the rate past the middle fixed point (50 Hz) does not.
#[test]
fn a_pulse_switches_the_bistable_node_on_and_it_stays_on() {
    let (w, input, pulse_hz) = (1.0, 0.0, 60.0);
    let low = bisect_fixed_point(w, input, 0.0, 10.0);
    let high = bisect_fixed_point(w, input, 90.0, MAX_RATE);
    for (pulse_s, switches) in [(0.005, false), (0.05, true)] {
        let mut plant = Rate::new(
            &common(1, Scheme::Heun, Coupling::None, 0.0),
            &sigmoid_params(w, input, ParamSpec::Value(0.0)),
        )
        .unwrap();
        run(&mut plant, 0.2, 0.0);
        assert!((plant.observable(0) - low).abs() < 1e-6, "starts off");
        run(&mut plant, pulse_s, pulse_hz);
        let at_pulse_end = plant.observable(0);
        run(&mut plant, 0.5, 0.0);
        let r = plant.observable(0);
        println!("pulse {pulse_s} s: r = {at_pulse_end:.2} Hz at its end, {r:.4} Hz 0.5 s later");
        assert_eq!(at_pulse_end > 50.0, switches);
        let target = if switches { high } else { low };
        assert!(
            (r - target).abs() < 1e-4,
            "pulse {pulse_s} s: r = {r}, expected {target}"
        );
    }
}

/// w = 0.2 < 4/(r_max β): one fixed point, reached from every initial rate.
#[test]
fn weak_recurrence_has_a_single_stable_state() {
    let (w, input) = (0.2, 30.0);
    assert!(w * MAX_RATE * GAIN / 4.0 < 1.0, "w φ' < 1 everywhere");
    let start = ParamSpec::List(vec![0.0, 30.0, 60.0, MAX_RATE]);
    let mut plant = Rate::new(
        &common(4, Scheme::Rk4, Coupling::None, 0.0),
        &sigmoid_params(w, input, start),
    )
    .unwrap();
    run(&mut plant, 0.5, 0.0);
    let expected = bisect_fixed_point(w, input, 0.0, MAX_RATE);
    println!("single fixed point {expected:.6} Hz");
    for node in 0..4 {
        let r = plant.observable(node);
        assert!(
            (r - expected).abs() < 1e-8,
            "node {node}: {r}, expected {expected}"
        );
    }
    assert!(w * phi_slope(w * expected + input) < 1.0);
}

/// The step's sigmoid runs over all nodes in one vectorised pass (its own exponential): one
/// Euler step from rates spread over the whole transfer, deep below θ to saturation, equals
/// `r + dt (φ(w r + I + F) − r) / τ` with libm's `exp` to round-off.
#[test]
fn one_euler_step_applies_the_sigmoid_to_round_off() {
    let n = 400;
    let rates: Vec<f64> = (0..n).map(|i| 0.5 * i as f64).collect();
    let inputs: Vec<f64> = (0..n).map(|i| -300.0 + 1.5 * i as f64).collect();
    let params = RateParams {
        input: ParamSpec::List(inputs.clone()),
        ..sigmoid_params(0.7, 0.0, ParamSpec::List(rates.clone()))
    };
    let mut plant = Rate::new(&common(n, Scheme::Euler, Coupling::None, 0.0), &params).unwrap();
    let forcing = 3.0;
    run(&mut plant, DT, forcing);
    for (i, (r, input)) in rates.iter().zip(&inputs).enumerate() {
        let want = r + DT * (phi(0.7 * r + input + forcing) - r) / TAU;
        let got = plant.observable(i);
        assert!(
            (got - want).abs() <= 1e-14 * want.abs().max(1.0),
            "node {i}: {got} vs {want}"
        );
    }
}

/// Threshold-linear, w < 1: `r* = max(0, I / (1 − w))`.
#[test]
fn threshold_linear_fixed_point_is_input_over_one_minus_w() {
    let w = 0.5;
    let mut plant = Rate::new(
        &common(2, Scheme::Rk4, Coupling::None, 0.0),
        &linear_params(w, ParamSpec::List(vec![10.0, -10.0])),
    )
    .unwrap();
    run(&mut plant, 0.5, 0.0);
    assert!((plant.observable(0) - 20.0).abs() < 1e-9);
    assert_eq!(plant.observable(1), 0.0, "negative drive: silent");
    // A DC forcing is an input: +5 Hz of forcing adds 5 / (1 − w) = 10 Hz.
    run(&mut plant, 0.5, 5.0);
    assert!((plant.observable(0) - 30.0).abs() < 1e-9);
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

/// Edge 0 → 1 with gain K: node 1 settles at `(I_1 + K r_0*) / (1 − w)`; node 0 has no incoming
/// edge and is exactly what it is alone.
#[test]
fn coupling_adds_the_source_rate_inside_phi() {
    let (w, k) = (0.5, 0.5);
    let params = linear_params(w, ParamSpec::List(vec![10.0, 2.0]));
    let mut coupled = Rate::new(&common(2, Scheme::Rk4, edge_0_to_1(0.0), k), &params).unwrap();
    let mut alone = Rate::new(&common(2, Scheme::Rk4, Coupling::None, k), &params).unwrap();
    for _ in 0..10_000 {
        coupled.step(&[Complex64::default(); 2]);
        alone.step(&[Complex64::default(); 2]);
        assert_eq!(coupled.observable(0), alone.observable(0));
    }
    assert!((coupled.observable(0) - 20.0).abs() < 1e-9);
    assert!((coupled.observable(1) - (2.0 + k * 20.0) / (1.0 - w)).abs() < 1e-9);
    assert!((alone.observable(1) - 2.0 / (1.0 - w)).abs() < 1e-9);
}

/// A linear chain with a 20 ms edge: node 0 charges as `I (1 − e^{−t/τ})`, node 1 (w = 0, K = 1)
/// is silent until the delay has passed and then follows the analytic
/// `I (1 − e^{−s/τ} − (s/τ) e^{−s/τ})`, `s = t − delay`.
#[test]
fn a_delayed_edge_delivers_the_source_rate_after_the_delay() {
    let (input, delay) = (10.0, 0.02);
    let params = RateParams {
        w: ParamSpec::Value(0.0),
        ..linear_params(0.0, ParamSpec::List(vec![input, 0.0]))
    };
    let mut plant = Rate::new(&common(2, Scheme::Rk4, edge_0_to_1(delay), 1.0), &params).unwrap();
    let mut worst: f64 = 0.0;
    for k in 1..=1000 {
        plant.step(&[Complex64::default(); 2]);
        let t = k as f64 * DT;
        let s = t - delay;
        if s <= 1e-12 {
            assert_eq!(plant.observable(1), 0.0, "nothing arrives before the delay");
        } else {
            let x = s / TAU;
            let expected = input * (1.0 - (-x).exp() - x * (-x).exp());
            worst = worst.max((plant.observable(1) - expected).abs());
        }
    }
    println!("largest deviation from the analytic delayed response: {worst:.2e} Hz");
    // The delayed input is held over each step (O(dt) error): 10 Hz · dt/(2τ) = 0.05 Hz bound.
    assert!(worst < 0.05, "deviation {worst}");
    assert!(plant.observable(1) > 5.0, "the response did arrive");
}

#[test]
fn reset_repeats_a_noisy_run_exactly() {
    let params = RateParams {
        w: ParamSpec::Dist(Dist::Normal {
            mean: 0.8,
            sd: 0.2,
            sampling: Sampling::Random,
        }),
        ..sigmoid_params(0.8, 10.0, ParamSpec::List(vec![0.0, 20.0, 40.0, 80.0]))
    };
    let mut c = common(
        4,
        Scheme::StochasticHeun,
        Coupling::AllToAll {
            n: 4,
            weight: 0.25,
            delay_s: 0.003,
        },
        0.5,
    );
    c.noise_sd = 30.0;
    let mut plant = Rate::new(&c, &params).unwrap();
    let forcing = [Complex64::new(2.0, 0.0); 4];
    let trajectory = |p: &mut Rate| {
        (0..2000)
            .map(|_| {
                p.step(&forcing);
                p.observable(3)
            })
            .collect::<Vec<_>>()
    };
    let first = trajectory(&mut plant);
    plant.reset();
    assert_eq!(plant.time(), 0.0);
    assert_eq!(first, trajectory(&mut plant));
}

/// At a fixed point (`r = 20 = max(0, 0.5·20 + 10)`, exact in floating point) nothing moves when
/// there is no coupling (no edges, or edges with gain 0), whatever the scheme; an edge with a
/// gain does move it.
#[test]
fn at_a_fixed_point_without_coupling_step_changes_nothing() {
    let params = RateParams {
        initial_rate: ParamSpec::Value(20.0),
        ..linear_params(0.5, ParamSpec::Value(10.0))
    };
    for scheme in Scheme::ALL {
        for (coupling, gain) in [(Coupling::None, 2.0), (edge_0_to_1(0.004), 0.0)] {
            let mut plant = Rate::new(&common(2, scheme, coupling, gain), &params).unwrap();
            run(&mut plant, 0.1, 0.0);
            assert_eq!(plant.observable(0), 20.0, "{scheme:?}");
            assert_eq!(plant.observable(1), 20.0, "{scheme:?}");
        }
    }
    let mut plant = Rate::new(&common(2, Scheme::Rk4, edge_0_to_1(0.0), 0.1), &params).unwrap();
    run(&mut plant, 0.1, 0.0);
    assert!(plant.observable(1) > 20.0);
}

#[test]
fn bad_parameters_are_reported_by_key() {
    let c = common(1, Scheme::Rk4, Coupling::None, 0.0);
    let err = |p: RateParams| Rate::new(&c, &p).err().unwrap_or_default();
    let base = sigmoid_params(1.0, 0.0, ParamSpec::Value(0.0));
    let e = err(RateParams {
        tau_s: ParamSpec::Value(0.0),
        ..base.clone()
    });
    assert!(e.starts_with("model.params.tau_s:"), "{e}");
    let e = err(RateParams {
        max_rate: Some(-1.0),
        ..base.clone()
    });
    assert!(e.starts_with("model.params.max_rate:"), "{e}");
    let e = err(RateParams {
        sigmoid_gain: Some(f64::NAN),
        ..base.clone()
    });
    assert!(e.starts_with("model.params.sigmoid_gain:"), "{e}");
    let e = err(RateParams {
        initial_rate: ParamSpec::Value(-3.0),
        ..base.clone()
    });
    assert!(e.starts_with("model.params.initial_rate:"), "{e}");
    let e = err(RateParams {
        transfer: Transfer::ThresholdLinear,
        sigmoid_threshold: Some(10.0),
        ..base.clone()
    });
    assert!(e.starts_with("model.params.sigmoid_threshold:"), "{e}");
    let e = err(RateParams {
        w: ParamSpec::Value(f64::INFINITY),
        ..base
    });
    assert!(e.starts_with("model.params.w:"), "{e}");

    let parsed: RateParams =
        toml::from_str("w = 1.2\ninput = 3.0\ntransfer = \"threshold_linear\"").unwrap();
    assert_eq!(parsed.tau_s, ParamSpec::Value(0.01));
    assert!(toml::from_str::<RateParams>("w = 1.0\ninput = 0.0\nbogus = 1").is_err());
}
