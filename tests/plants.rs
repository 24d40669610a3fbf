//! Physics of the three spine plants, checked against their known analytic facts (MODELS.md).

use entrain::integrate::Scheme;
use entrain::model::harmonic::{self, HarmonicParams};
use entrain::model::network::Csr;
use entrain::model::{
    Coupling, Dist, Kuramoto, KuramotoParams, ParamSpec, Plant, PlantCommon, Sampling,
    StuartLandau, StuartLandauParams,
};
use num_complex::Complex64;
use std::f64::consts::{PI, TAU};

fn common(nodes: usize, scheme: Scheme, dt: f64, coupling: Coupling, gain: f64) -> PlantCommon {
    PlantCommon {
        nodes,
        scheme,
        dt,
        noise_sd: 0.0,
        coupling,
        gain,
        seed: 3,
        history_precision: entrain::model::HistoryPrecision::F64,
    }
}

fn sl(lambda: f64, freq_hz: f64, mu: f64, beta: f64) -> StuartLandau {
    let params = StuartLandauParams {
        lambda: ParamSpec::Value(lambda),
        freq_hz: ParamSpec::Value(freq_hz),
        mu: ParamSpec::Value(mu),
        beta: ParamSpec::Value(beta),
        initial_amplitude: Some(0.3),
        coupled_variable: Default::default(),
    };
    StuartLandau::new(&common(1, Scheme::Rk4, 1e-4, Coupling::None, 0.0), &params).unwrap()
}

/// Run `seconds`, return (mean radius, angular frequency from the unwrapped phase) over the
/// last `measure` seconds.
fn radius_and_frequency(plant: &mut StuartLandau, seconds: f64, measure: f64) -> (f64, f64) {
    let dt = plant.dt();
    let steps = (seconds / dt).round() as usize;
    let start = steps - (measure / dt).round() as usize;
    let none = [Complex64::default()];
    let (mut unwrapped, mut last, mut r_sum, mut n, mut phase_at_start) = (0.0, 0.0, 0.0, 0, 0.0);
    for k in 0..steps {
        plant.step(&none);
        let z = plant.z(0);
        let p = z.arg();
        let mut d = p - last;
        if d > PI {
            d -= TAU;
        } else if d < -PI {
            d += TAU;
        }
        unwrapped += d;
        last = p;
        if k == start {
            phase_at_start = unwrapped;
        }
        if k >= start {
            r_sum += z.norm();
            n += 1;
        }
    }
    (
        r_sum / n as f64,
        (unwrapped - phase_at_start) / (measure - dt),
    )
}

#[test]
fn stuart_landau_limit_cycle_radius_and_frequency() {
    // (λ, f, μ, β): radius √(λ/μ), angular frequency ω − βλ/μ.
    for (lambda, f, mu, beta) in [(1.0, 10.0, 1.0, 0.0), (4.0, 5.0, 2.0, 0.5)] {
        let mut plant = sl(lambda, f, mu, beta);
        let (r, w) = radius_and_frequency(&mut plant, 12.0, 4.0);
        let r_expected = (lambda / mu).sqrt();
        let w_expected = TAU * f - beta * lambda / mu;
        assert!(
            (r / r_expected - 1.0).abs() < 0.005,
            "radius {r}, expected {r_expected}"
        );
        assert!(
            (w / w_expected - 1.0).abs() < 0.005,
            "ω {w}, expected {w_expected}"
        );
    }
}

#[test]
fn stuart_landau_below_the_bifurcation_is_a_damped_focus() {
    let lambda = -2.0;
    let mut plant = sl(lambda, 10.0, 1.0, 0.0);
    let z0 = plant.z(0).norm();
    let none = [Complex64::default()];
    let mut crossings = 0;
    let mut last_im = plant.z(0).im;
    for _ in 0..10_000 {
        plant.step(&none);
        let im = plant.z(0).im;
        if last_im < 0.0 && im >= 0.0 {
            crossings += 1;
        }
        last_im = im;
    }
    // 1 s: |z| shrinks at least as fast as e^{λt} (the cubic term only adds damping), and it
    // still rotates at 10 Hz while it decays (a focus, not a node).
    let r = plant.z(0).norm();
    assert!(r <= z0 * (lambda * 1.0f64).exp() * 1.001, "r = {r}");
    assert!(
        r > z0 * (lambda * 1.0f64).exp() * 0.9,
        "decays at rate λ: r = {r}"
    );
    assert!(
        (9..=11).contains(&crossings),
        "{crossings} rotations in 1 s"
    );
}

#[test]
fn kuramoto_lorentzian_order_parameter_matches_ott_antonsen() {
    let n = 2000;
    let half_width_rad = 1.0; // Δ, rad/s
    let params = KuramotoParams {
        freq_hz: ParamSpec::Dist(Dist::Lorentzian {
            center: 2.0,
            half_width: half_width_rad / TAU,
            sampling: Sampling::Quantile,
        }),
        phase_lag_deg: 0.0,
    };
    // Finite-N tolerance: with quantile-sampled frequencies the N = 2000 stationary R differs
    // from the N → ∞ value by O(1/√N) ≈ 0.02; the bound 0.05 is used.
    for (k, expected) in [(3.0, None), (4.0, None), (6.0, None), (1.0, Some(0.1))] {
        let coupling = Coupling::AllToAll {
            n,
            weight: 1.0 / n as f64,
            delay_s: 0.0,
        };
        let mut plant = Kuramoto::new(&common(n, Scheme::Rk4, 0.01, coupling, k), &params).unwrap();
        let forcing = vec![Complex64::default(); n];
        let mut r_sum = 0.0;
        let (transient, measure) = (6000, 4000);
        for step in 0..transient + measure {
            plant.step(&forcing);
            if step >= transient {
                r_sum += plant.order_parameter().norm();
            }
        }
        let r = r_sum / measure as f64;
        match expected {
            None => {
                let theory = (1.0 - 2.0 * half_width_rad / k).sqrt();
                assert!(
                    (r - theory).abs() < 0.05,
                    "K = {k}: R = {r:.4}, theory {theory:.4}"
                );
            }
            Some(bound) => assert!(r < bound, "K = {k} < K_c: R = {r:.4} should be < {bound}"),
        }
    }
}

fn harmonic(a: f64, freq_hz: f64, coupling: Coupling, gain: f64, nodes: usize) -> StuartLandau {
    let params = HarmonicParams {
        a: ParamSpec::Value(a),
        freq_hz: ParamSpec::Value(freq_hz),
        initial_amplitude: 0.0,
    };
    harmonic::build(&common(nodes, Scheme::Rk4, 1e-4, coupling, gain), &params).unwrap()
}

#[test]
fn harmonic_constant_forcing_moves_the_fixed_point_to_minus_f_over_a_plus_i_omega() {
    let (a, f) = (-8.0, 3.0);
    let mut plant = harmonic(a, f, Coupling::None, 0.0, 1);
    let force = [Complex64::new(0.7, -0.2)];
    for _ in 0..30_000 {
        plant.step(&force);
    }
    let expected = -force[0] / Complex64::new(a, TAU * f);
    let z = plant.z(0);
    assert!(
        (z - expected).norm() < 1e-6 * expected.norm().max(1.0),
        "z {z}, expected {expected}"
    );
}

#[test]
fn harmonic_resonance_curve_within_one_percent() {
    let (a, f0) = (-5.0, 10.0);
    let amplitude = 0.5;
    for drive_hz in [6.0, 9.0, 9.8, 10.0, 10.5, 12.0, 15.0] {
        let mut plant = harmonic(a, f0, Coupling::None, 0.0, 1);
        let dt = plant.dt();
        let big_omega = TAU * drive_hz;
        let mut peak: f64 = 0.0;
        for k in 0..50_000 {
            // Forcing held over the step at its mid-step value (second-order accurate hold).
            let t_mid = (k as f64 + 0.5) * dt;
            plant.step(&[Complex64::from_polar(amplitude, big_omega * t_mid)]);
            if k > 45_000 {
                peak = peak.max(plant.z(0).norm());
            }
        }
        let expected = amplitude / Complex64::new(a, TAU * f0 - big_omega).norm();
        assert!(
            (peak / expected - 1.0).abs() < 0.01,
            "drive {drive_hz} Hz: |z| = {peak:.5}, expected {expected:.5}"
        );
    }
}

/// Node 1 (damped) is driven only by node 0 (undamped, same frequency) through an edge with
/// delay τ. In steady state `z1 = G z0(t − τ) / (G − a)`: it lags node 0 by exactly ωτ.
#[test]
fn delayed_edge_shows_the_expected_phase_lag() {
    let (f, tau, a, gain) = (10.0, 0.010, -40.0, 20.0);
    let csr = Csr {
        n: 2,
        row_ptr: vec![0, 0, 1],
        col: vec![0],
        weight: vec![1.0],
        delay_s: vec![tau],
    };
    let params = HarmonicParams {
        a: ParamSpec::List(vec![0.0, a]),
        freq_hz: ParamSpec::Value(f),
        initial_amplitude: 1.0,
    };
    let mut plant = harmonic::build(
        &common(2, Scheme::Rk4, 1e-4, Coupling::Sparse(csr), gain),
        &params,
    )
    .unwrap();
    let none = [Complex64::default(); 2];
    for _ in 0..20_000 {
        plant.step(&none);
    }
    let lag = (plant.z(0) / plant.z(1)).arg();
    let expected = TAU * f * tau;
    assert!(
        (lag - expected).abs().to_degrees() < 0.5,
        "lag {:.3}°, expected {:.3}°",
        lag.to_degrees(),
        expected.to_degrees()
    );
    let gain_ratio = plant.z(1).norm() / plant.z(0).norm();
    assert!(
        (gain_ratio - gain / (gain - a)).abs() < 1e-3,
        "amplitude ratio {gain_ratio}"
    );
}

#[test]
fn reset_repeats_a_noisy_run_exactly() {
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
    let mut c = common(
        4,
        Scheme::StochasticHeun,
        1e-3,
        Coupling::AllToAll {
            n: 4,
            weight: 0.25,
            delay_s: 0.005,
        },
        2.0,
    );
    c.noise_sd = 0.5;
    let mut plant = StuartLandau::new(&c, &params).unwrap();
    let forcing = [Complex64::default(); 4];
    let run = |p: &mut StuartLandau| {
        (0..500)
            .map(|_| {
                p.step(&forcing);
                p.observable(2)
            })
            .collect::<Vec<_>>()
    };
    let first = run(&mut plant);
    plant.reset();
    assert_eq!(first, run(&mut plant));
}
