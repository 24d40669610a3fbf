//! Physics of the HORN plant (MODELS.md §10): the exact symplectic-Euler update, period 2π/ω,
//! envelope e^{−γt}, resonance at ω, per-node heterogeneity, delayed coupling, reproducibility.

use entrain::analysis::wrap_angle;
use entrain::integrate::Scheme;
use entrain::model::horn::{Horn, HornParams};
use entrain::model::network::{Csr, NetworkSpec, Topology};
use entrain::model::sigmoid::tanh_in_place;
use entrain::model::{Coupling, Dist, ParamSpec, Plant, PlantCommon, Sampling};
use num_complex::Complex64;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::{PI, TAU};

/// Audio-rate engine step, s.
const DT: f64 = 1.0 / 48_000.0;

fn common(nodes: usize, dt: f64, coupling: Coupling, gain: f64, noise_sd: f64) -> PlantCommon {
    PlantCommon {
        nodes,
        scheme: Scheme::Heun,
        dt,
        noise_sd,
        coupling,
        gain,
        seed: 7,
        history_precision: entrain::model::HistoryPrecision::F64,
    }
}

/// Free oscillation from x = 1, y = 0 of nodes with the given ω and γ.
fn free(omega: Vec<f64>, gamma: Vec<f64>, dt: f64) -> Horn {
    let n = omega.len();
    let params = HornParams {
        omega: ParamSpec::List(omega),
        gamma: ParamSpec::List(gamma),
        initial_x: ParamSpec::Value(1.0),
        ..HornParams::default()
    };
    Horn::new(&common(n, dt, Coupling::None, 0.0, 0.0), &params).unwrap()
}

/// Run `steps` steps without input and return each node's x after every step.
fn run_free(plant: &mut Horn, steps: usize) -> Vec<Vec<f64>> {
    let zero = vec![Complex64::default(); plant.nodes()];
    let mut traces = vec![Vec::with_capacity(steps); plant.nodes()];
    for _ in 0..steps {
        plant.step(&zero);
        for (i, t) in traces.iter_mut().enumerate() {
            t.push(plant.observable(i));
        }
    }
    traces
}

/// Falling zero crossings of `x` (sample `k` is at time `(k + 1) dt`), linearly interpolated, s.
fn falling_crossings(x: &[f64], dt: f64) -> Vec<f64> {
    x.windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] > 0.0 && w[1] <= 0.0)
        .map(|(k, w)| (k as f64 + 1.0 + w[0] / (w[0] - w[1])) * dt)
        .collect()
}

/// Mean period between falling zero crossings, s.
fn period(x: &[f64], dt: f64) -> f64 {
    let c = falling_crossings(x, dt);
    assert!(c.len() >= 3, "too few crossings to measure a period");
    (c[c.len() - 1] - c[0]) / (c.len() - 1) as f64
}

/// Least-squares decay rate (1/s) of the local maxima of `x`: slope of ln(peak) against time.
fn peak_decay_rate(x: &[f64], dt: f64) -> f64 {
    let peaks: Vec<(f64, f64)> = x
        .windows(3)
        .enumerate()
        .filter(|(_, w)| w[1] > w[0] && w[1] >= w[2] && w[1] > 0.0)
        .map(|(k, w)| ((k as f64 + 2.0) * dt, w[1].ln()))
        .collect();
    assert!(peaks.len() >= 5, "too few peaks to fit a decay");
    let n = peaks.len() as f64;
    let (mt, ml) = peaks
        .iter()
        .fold((0.0, 0.0), |(a, b), (t, l)| (a + t / n, b + l / n));
    let (sxy, sxx) = peaks.iter().fold((0.0, 0.0), |(a, b), (t, l)| {
        (a + (t - mt) * (l - ml), b + (t - mt) * (t - mt))
    });
    -sxy / sxx
}

/// The update is brainmass's symplectic Euler step, term by term: an independent evaluation of
/// the formula (network term `Σ_j K C_ij x_j`, feedback `v x`, input inside the tanh) over a few
/// hundred steps of a small-world network with an input sequence gives the same numbers, bit for
/// bit, at the tutorial's h = 1 and at audio rate (h = 1/48).
/// `tanh z` by the plant's own vectorised kernel (within 4 ulp of `f64::tanh`, tested with
/// the kernel), so that the formula below can be held to the plant bit for bit.
fn tanh(z: f64) -> f64 {
    let mut v = [z];
    tanh_in_place(&mut v);
    v[0]
}

#[test]
fn update_equals_the_symplectic_euler_formula() {
    let n = 6;
    let spec = NetworkSpec {
        topology: Topology::SmallWorld {
            neighbours: 2,
            rewire_prob: 0.3,
        },
        ..NetworkSpec::default()
    };
    let coupling = Coupling::build(&spec, n, &mut Xoshiro256PlusPlus::seed_from_u64(3)).unwrap();
    let Coupling::Sparse(csr) = &coupling else {
        panic!("small world is sparse")
    };
    let mut c = vec![vec![0.0; n]; n];
    for (i, row) in c.iter_mut().enumerate() {
        for e in csr.row_ptr[i]..csr.row_ptr[i + 1] {
            row[csr.col[e] as usize] = csr.weight[e];
        }
    }
    let omega: Vec<f64> = (0..n).map(|i| 0.15 + 0.03 * i as f64).collect();
    let gamma: Vec<f64> = (0..n).map(|i| 0.005 + 0.004 * i as f64).collect();
    let alpha: Vec<f64> = (0..n).map(|i| 0.04 + 0.01 * i as f64).collect();
    let v: Vec<f64> = (0..n).map(|i| 0.05 * i as f64).collect();
    let gain = 0.3;
    // h = 1: the tutorial's step, where any deviation from the formula would show most.
    for dt in [0.001, DT] {
        let params = HornParams {
            omega: ParamSpec::List(omega.clone()),
            gamma: ParamSpec::List(gamma.clone()),
            alpha: ParamSpec::List(alpha.clone()),
            v: ParamSpec::List(v.clone()),
            initial_x: ParamSpec::List((0..n).map(|i| 0.3 - 0.1 * i as f64).collect()),
            initial_y: ParamSpec::List((0..n).map(|i| 0.01 * i as f64).collect()),
            ..HornParams::default()
        };
        let mut plant = Horn::new(&common(n, dt, coupling.clone(), gain, 0.0), &params).unwrap();
        let h = dt / 0.001;
        assert_eq!(plant.h(), h);
        let mut x: Vec<f64> = (0..n).map(|i| 0.3 - 0.1 * i as f64).collect();
        let mut y: Vec<f64> = (0..n).map(|i| 0.01 * i as f64).collect();
        for t in 0..400 {
            let input: Vec<f64> = (0..n)
                .map(|i| 0.8 * (0.05 * t as f64 + i as f64).sin())
                .collect();
            let forcing: Vec<Complex64> = input.iter().map(|u| Complex64::new(*u, 9.0)).collect();
            plant.step(&forcing);
            let x_t = x.clone();
            for i in 0..n {
                let mut network = 0.0;
                for j in 0..n {
                    if c[i][j] != 0.0 {
                        network += x_t[j] * c[i][j];
                    }
                }
                let f = v[i] * x_t[i] + gain * network;
                y[i] += h
                    * (alpha[i] * tanh(input[i] + f)
                        - 2.0 * gamma[i] * y[i]
                        - omega[i] * omega[i] * x_t[i]);
                x[i] = x_t[i] + h * y[i];
            }
            for i in 0..n {
                let (ex, ey) = (plant.x(i) - x[i], plant.y(i) - y[i]);
                assert!(
                    ex == 0.0 && ey == 0.0,
                    "dt {dt}, step {t}, node {i}: plant ({}, {}) vs formula ({}, {})",
                    plant.x(i),
                    plant.y(i),
                    x[i],
                    y[i]
                );
            }
        }
    }
}

/// Free oscillation at the default ω = 2π/28 has period 2π/ω = 28 model units (28 ms with the
/// default 1 ms unit) within 1 %, at audio rate (h = 1/48) and at the tutorial's h = 1.
#[test]
fn free_period_is_two_pi_over_omega() {
    let omega = TAU / 28.0;
    for (dt, tol) in [(DT, 0.002), (0.001, 0.01)] {
        let mut plant = free(vec![omega], vec![0.01], dt);
        let steps = (0.3 / dt) as usize;
        let x = run_free(&mut plant, steps);
        let measured_units = period(&x[0], dt) / 0.001;
        let expected = TAU / omega;
        println!("dt {dt}: period {measured_units:.4} units, 2π/ω = {expected}");
        assert!(
            (measured_units / expected - 1.0).abs() < tol,
            "dt {dt}: period {measured_units} units, expected {expected}"
        );
    }
}

/// The amplitude of `ẍ + 2γẋ + ω²x = 0` decays as e^{−γt}: the fitted log-peak slope is γ
/// (per model unit), not the tutorial's 2γ.
#[test]
fn envelope_decays_at_gamma_not_two_gamma() {
    let gamma = 0.01;
    let mut plant = free(vec![TAU / 28.0], vec![gamma], DT);
    let x = run_free(&mut plant, (1.0 / DT) as usize);
    // Per second → per model unit (1 ms).
    let rate = peak_decay_rate(&x[0], DT) * 0.001;
    println!("decay rate {rate:.6} per unit, γ = {gamma}");
    assert!(
        (rate / gamma - 1.0).abs() < 0.01,
        "decay rate {rate}, expected γ = {gamma} (2γ would be {})",
        2.0 * gamma
    );
}

/// Sine input at a grid of frequencies (one uncoupled node per frequency): the steady-state
/// amplitude peaks within one grid step of ω, and its height matches the linear resonance
/// `α A / √((ω² − Ω²)² + 4γ²Ω²)` (A small, so tanh is nearly linear).
#[test]
fn resonance_peaks_at_omega() {
    let omega = TAU / 28.0;
    let (gamma, alpha, amp) = (0.01, 0.04, 0.05);
    let ratios: Vec<f64> = (0..17).map(|k| 0.8 + 0.025 * k as f64).collect();
    let n = ratios.len();
    let params = HornParams {
        omega: ParamSpec::Value(omega),
        gamma: ParamSpec::Value(gamma),
        alpha: ParamSpec::Value(alpha),
        ..HornParams::default()
    };
    let mut plant = Horn::new(&common(n, DT, Coupling::None, 0.0, 0.0), &params).unwrap();
    let h = plant.h();
    let settle = (0.8 / DT) as usize;
    let measure = (0.2 / DT) as usize;
    let mut peak = vec![0.0_f64; n];
    let mut forcing = vec![Complex64::default(); n];
    for k in 0..settle + measure {
        let t_units = (k + 1) as f64 * h;
        for (f, r) in forcing.iter_mut().zip(&ratios) {
            *f = Complex64::new(amp * (r * omega * t_units).sin(), 0.0);
        }
        plant.step(&forcing);
        if k >= settle {
            for (p, i) in peak.iter_mut().zip(0..n) {
                *p = p.max(plant.x(i).abs());
            }
        }
    }
    let best = (0..n).max_by(|a, b| peak[*a].total_cmp(&peak[*b])).unwrap();
    println!(
        "response: {:?}",
        ratios.iter().zip(&peak).collect::<Vec<_>>()
    );
    assert!(
        (ratios[best] - 1.0).abs() <= 0.025 + 1e-12,
        "response peaks at Ω = {} ω, expected ω (±0.025 ω)",
        ratios[best]
    );
    for (r, p) in ratios.iter().zip(&peak) {
        let w = r * omega;
        let linear = alpha * amp.tanh()
            / ((omega * omega - w * w).powi(2) + 4.0 * gamma * gamma * w * w).sqrt();
        assert!(
            (p / linear - 1.0).abs() < 0.03,
            "Ω = {r} ω: amplitude {p}, linear theory {linear}"
        );
    }
}

/// Heterogeneous ω and γ given per node are realised per node: each node oscillates at its own
/// 2π/ω_d and decays at its own γ.
#[test]
fn heterogeneous_omega_and_gamma_are_realised_per_node() {
    let omega = vec![0.15, 0.22, 0.3, 0.35];
    let gamma = vec![0.005, 0.01, 0.015, 0.02];
    let mut plant = free(omega.clone(), gamma.clone(), DT);
    assert_eq!(plant.omega(), &omega[..]);
    assert_eq!(plant.gamma(), &gamma[..]);
    let x = run_free(&mut plant, (0.4 / DT) as usize);
    for i in 0..4 {
        let p = period(&x[i], DT) / 0.001;
        let damped = TAU / (omega[i] * omega[i] - gamma[i] * gamma[i]).sqrt();
        let rate = peak_decay_rate(&x[i], DT) * 0.001;
        println!(
            "node {i}: period {p:.3} (2π/ω_d = {damped:.3}), decay {rate:.5} (γ = {})",
            gamma[i]
        );
        assert!(
            (p / damped - 1.0).abs() < 0.002,
            "node {i}: period {p}, expected {damped}"
        );
        assert!(
            (rate / gamma[i] - 1.0).abs() < 0.02,
            "node {i}: decay {rate}, expected {}",
            gamma[i]
        );
    }
}

/// A distribution of ω and γ is drawn per node from the seed: values differ between nodes, lie
/// in the range, repeat with the seed, and each node's period follows its own ω.
#[test]
fn distributed_omega_is_drawn_per_node_from_the_seed() {
    let params = HornParams {
        omega: ParamSpec::Dist(Dist::Uniform {
            low: 0.15,
            high: 0.35,
            sampling: Sampling::Random,
        }),
        gamma: ParamSpec::Dist(Dist::Uniform {
            low: 0.005,
            high: 0.015,
            sampling: Sampling::Random,
        }),
        initial_x: ParamSpec::Value(1.0),
        ..HornParams::default()
    };
    let make = || Horn::new(&common(8, DT, Coupling::None, 0.0, 0.0), &params).unwrap();
    let mut plant = make();
    let omega = plant.omega().to_vec();
    assert_eq!(make().omega(), &omega[..], "same seed, same draws");
    assert!(omega.iter().all(|w| (0.15..=0.35).contains(w)));
    assert!(plant.gamma().iter().all(|g| (0.005..=0.015).contains(g)));
    let mut sorted = omega.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(
        sorted.windows(2).all(|w| w[1] > w[0]),
        "values differ per node"
    );
    let gamma = plant.gamma().to_vec();
    let x = run_free(&mut plant, (0.3 / DT) as usize);
    for i in 0..8 {
        let damped = TAU / (omega[i] * omega[i] - gamma[i] * gamma[i]).sqrt();
        let p = period(&x[i], DT) / 0.001;
        assert!(
            (p / damped - 1.0).abs() < 0.002,
            "node {i}: period {p}, expected {damped}"
        );
    }
}

/// Coupling 0 → 1 with delay τ: kicking node 0 changes node 1's trajectory exactly
/// `τ/dt + 1` steps after node 0 moved (τ/dt steps of delay, then one step for the velocity to
/// reach the position), and not a step earlier — checked bit for bit against an unkicked run.
#[test]
fn delayed_coupling_reaches_node_one_only_after_the_delay() {
    for delay_s in [0.0, 0.002, 0.005] {
        let coupling = Coupling::Sparse(Csr {
            n: 2,
            row_ptr: vec![0, 0, 1],
            col: vec![0],
            weight: vec![1.0],
            delay_s: vec![delay_s],
        });
        let params = HornParams {
            initial_x: ParamSpec::List(vec![0.5, -0.3]),
            ..HornParams::default()
        };
        let run = |kick: bool| {
            let mut plant = Horn::new(&common(2, DT, coupling.clone(), 0.8, 0.0), &params).unwrap();
            let mut x = Vec::new();
            let mut x0_change = None;
            for k in 0..2000 {
                let input = if kick && (500..548).contains(&k) {
                    3.0
                } else {
                    0.0
                };
                plant.step(&[Complex64::new(input, 0.0), Complex64::default()]);
                if kick && input != 0.0 && x0_change.is_none() {
                    x0_change = Some(k);
                }
                x.push((plant.x(0), plant.x(1)));
            }
            (x, x0_change)
        };
        let (base, _) = run(false);
        let (kicked, _) = run(true);
        let first = |node: usize| {
            (0..base.len()).find(|&k| {
                let (a, b) = (base[k], kicked[k]);
                if node == 0 {
                    a.0 != b.0
                } else {
                    a.1 != b.1
                }
            })
        };
        let delay_steps = (delay_s / DT).round() as usize;
        let node0 = first(0).expect("the kick moves node 0");
        let node1 = first(1).expect("the coupling carries the kick to node 1");
        println!("delay {delay_s} s: node 0 changes at sample {node0}, node 1 at {node1}");
        assert_eq!(
            node0, 500,
            "node 0 moves in the step that receives the kick"
        );
        assert_eq!(
            node1,
            node0 + delay_steps + 1,
            "delay {delay_s} s = {delay_steps} steps"
        );
        let late = kicked[node1 + 200].1 - base[node1 + 200].1;
        assert!(
            late.abs() > 1e-6,
            "the kick's effect on node 1 is not negligible ({late})"
        );
    }
}

/// Phase convention of MODELS.md: released from a peak the phase is 0, at the next falling zero
/// crossing +90°, at the trough ±180°, at the rising zero crossing −90°; the mean phase of
/// identical nodes is theirs.
#[test]
fn phase_follows_the_models_convention() {
    let mut plant = free(vec![TAU / 28.0; 3], vec![0.01; 3], DT);
    assert!(plant.phase(0).unwrap().abs() < 1e-12);
    let zero = [Complex64::default(); 3];
    let (mut prev_x, mut prev_phase) = (plant.x(0), plant.phase(0).unwrap());
    let mut seen = [false; 3];
    for _ in 0..(0.06 / DT) as usize {
        plant.step(&zero);
        let (x, phase) = (plant.x(0), plant.phase(0).unwrap());
        // Tolerance: the symplectic y lags by about half a step (ωh/2 ≈ 0.13°), plus a step.
        let tol = 0.6_f64.to_radians();
        if prev_x > 0.0 && x <= 0.0 {
            assert!(
                (phase - PI / 2.0).abs() < tol,
                "falling zero crossing at {}°",
                phase.to_degrees()
            );
            seen[0] = true;
        }
        if prev_x < 0.0 && x >= 0.0 {
            assert!(
                (phase + PI / 2.0).abs() < tol,
                "rising zero crossing at {}°",
                phase.to_degrees()
            );
            seen[1] = true;
        }
        if prev_phase > 0.0 && phase < 0.0 {
            // Wrapping from +180° to −180°: this is the trough.
            assert!(x < 0.0 && plant.y(0).abs() < 2e-3, "trough at x = {x}");
            seen[2] = true;
        }
        let mean = plant.mean_phase().unwrap();
        assert!(wrap_angle(mean - plant.phase(1).unwrap()).abs() < 1e-12);
        prev_x = x;
        prev_phase = phase;
    }
    assert_eq!(seen, [true; 3], "each landmark was passed");
}

/// Reset returns to the initial state and re-seeds the noise: the same trajectory bit for bit,
/// with noise and delayed ring coupling.
#[test]
fn reset_reproduces_the_trajectory_bit_for_bit() {
    let spec = NetworkSpec {
        topology: Topology::Ring { neighbours: 2 },
        delay_ms: Some(ParamSpec::Value(3.0)),
        ..NetworkSpec::default()
    };
    let coupling = Coupling::build(&spec, 5, &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    let params = HornParams {
        initial_x: ParamSpec::List(vec![0.1, -0.2, 0.3, 0.0, 0.5]),
        ..HornParams::default()
    };
    let mut plant = Horn::new(&common(5, DT, coupling, 0.2, 0.5), &params).unwrap();
    let run = |plant: &mut Horn| {
        let mut out = Vec::new();
        for k in 0..5000 {
            let u = (k as f64 * 0.01).sin();
            plant.step(&[Complex64::new(u, 0.0); 5]);
            out.extend((0..5).map(|i| (plant.x(i).to_bits(), plant.y(i).to_bits())));
        }
        out
    };
    let first = run(&mut plant);
    plant.reset();
    assert_eq!(plant.time(), 0.0);
    let second = run(&mut plant);
    assert!(first == second, "reset must reproduce the run exactly");
    let noiseless = Horn::new(
        &common(5, DT, Coupling::None, 0.0, 0.0),
        &HornParams::default(),
    )
    .unwrap();
    assert!(noiseless.state_bytes() > 0);
}

/// Bad parameters are errors that name the key and say what is expected.
#[test]
fn bad_parameters_name_the_key() {
    let c = common(2, DT, Coupling::None, 0.0, 0.0);
    let err = |p: HornParams| Horn::new(&c, &p).err().expect("must be rejected");
    let e = err(HornParams {
        omega: ParamSpec::Value(-1.0),
        ..HornParams::default()
    });
    assert!(e.starts_with("model.params.omega:"), "{e}");
    let e = err(HornParams {
        gamma: ParamSpec::List(vec![0.01, f64::NAN]),
        ..HornParams::default()
    });
    assert!(e.starts_with("model.params.gamma:"), "{e}");
    let e = err(HornParams {
        time_scale_s: 0.0,
        ..HornParams::default()
    });
    assert!(e.starts_with("model.params.time_scale_s:"), "{e}");
    // ω = 3 rad/unit at h = 1 (dt = time_scale_s): h²ω² = 9 > 4, unstable.
    let e = Horn::new(
        &common(1, 0.001, Coupling::None, 0.0, 0.0),
        &HornParams {
            omega: ParamSpec::Value(3.0),
            ..HornParams::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        e.starts_with("model.params.omega:") && e.contains("stable"),
        "{e}"
    );
    let parsed: HornParams = toml::from_str("omega = [0.2, 0.3]\ntime_scale_s = 0.002").unwrap();
    assert_eq!(parsed.omega, ParamSpec::List(vec![0.2, 0.3]));
    assert_eq!(parsed.gamma, ParamSpec::Value(0.01));
    assert!(toml::from_str::<HornParams>("omegaa = 1.0").is_err());
}
