//! SL field with divisive normalization: FFT convolution against the direct sum, the uncoupled
//! limit, phase preservation of the DN term, the self-consistent radius, per-stage convolutions,
//! reproducibility.

use entrain::integrate::{Dynamics, Integrator, NoiseSd, Scheme};
use entrain::model::sl_dn_field::{Boundary, GridConvolution, SlDnField, SlDnFieldParams};
use entrain::model::{Coupling, ParamSpec, Plant, PlantCommon};
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::TAU;

fn common(side: usize, dt: f64, scheme: Scheme, noise_sd: f64) -> PlantCommon {
    PlantCommon {
        nodes: side * side,
        scheme,
        dt,
        noise_sd,
        coupling: Coupling::None,
        gain: 0.0,
        seed: 2024,
        history_precision: entrain::model::HistoryPrecision::F64,
    }
}

fn params(boundary: Boundary) -> SlDnFieldParams {
    SlDnFieldParams {
        lambda: ParamSpec::Value(10.0),
        freq_hz: ParamSpec::Value(10.0),
        a: 4.0,
        b: 2.0,
        c: 0.5,
        d: 1.0,
        sigma1: 1.0,
        sigma2: Some(3.0),
        boundary,
        initial_amplitude: None,
    }
}

/// The definition, term by term: `out(r, c) = Σ w(Δr, Δc) x(r − Δr, c − Δc)` over the kernel's
/// support, with x = 0 off the grid (zero-padded) or indices mod side (periodic).
fn direct(
    conv: &GridConvolution,
    k: usize,
    side: usize,
    x: &[f64],
    boundary: Boundary,
) -> Vec<f64> {
    let r = conv.radius(k) as isize;
    let s = side as isize;
    let mut out = vec![0.0; side * side];
    for i in 0..s {
        for j in 0..s {
            let mut acc = 0.0;
            for dr in -r..=r {
                for dc in -r..=r {
                    let (mut a, mut b) = (i - dr, j - dc);
                    match boundary {
                        Boundary::Periodic => {
                            a = a.rem_euclid(s);
                            b = b.rem_euclid(s);
                        }
                        Boundary::ZeroPadded => {
                            if a < 0 || a >= s || b < 0 || b >= s {
                                continue;
                            }
                        }
                    }
                    acc += conv.weight(k, dr, dc) * x[(a * s + b) as usize];
                }
            }
            out[(i * s + j) as usize] = acc;
        }
    }
    out
}

/// FFT convolution = direct O(n²k²) sum to 1e-12, both boundaries, odd and even sides, kernels
/// narrower than, comparable to and wider than the grid (σ = 4: R = 12 > side, so periodic
/// weights wrap more than once and zero-padded ones are cut at the grid). Kernel weights sum to 1.
#[test]
fn fft_convolution_equals_the_direct_sum() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let mut worst = 0.0f64;
    for side in [8, 9, 13] {
        let x: Vec<f64> = (0..side * side)
            .map(|_| rng.random::<f64>() * 2.0)
            .collect();
        for boundary in [Boundary::ZeroPadded, Boundary::Periodic] {
            let sigmas = [0.7, 1.5, 4.0];
            let mut conv = GridConvolution::new(side, &sigmas, boundary).unwrap();
            conv.load(&x);
            for (k, sigma) in sigmas.iter().enumerate() {
                let r = conv.radius(k) as isize;
                assert_eq!(r, (3.0 * sigma).ceil() as isize);
                let total: f64 = (-r..=r)
                    .flat_map(|dr| (-r..=r).map(move |dc| (dr, dc)))
                    .map(|(dr, dc)| conv.weight(k, dr, dc))
                    .sum();
                assert!((total - 1.0).abs() < 1e-14, "weights sum to {total}");
                let mut fast = vec![0.0; side * side];
                conv.convolve(k, &mut fast);
                let slow = direct(&conv, k, side, &x, boundary);
                let err: f64 = fast
                    .iter()
                    .zip(&slow)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(
                    err < 1e-12,
                    "side {side}, {boundary:?}, σ = {}: max error {err:e} (fft len {})",
                    sigma,
                    conv.fft_len()
                );
                worst = worst.max(err);
            }
        }
    }
    eprintln!("FFT vs direct convolution: max error {worst:e}");
}

/// A single SL node, `dz/dt = (λ + iω) z − |z|² z`, integrated on its own.
struct SingleSl {
    lambda: f64,
    omega: f64,
}

impl Dynamics for SingleSl {
    fn dim(&self) -> usize {
        2
    }
    fn drift(&mut self, s: &[f64], out: &mut [f64]) {
        let z = Complex64::new(s[0], s[1]);
        let dz = Complex64::new(self.lambda, self.omega) * z - z.norm_sqr() * z;
        out[0] = dz.re;
        out[1] = dz.im;
    }
    fn noise_sd(&self) -> Option<NoiseSd<'_>> {
        None
    }
}

/// a = b = 0 (c = 0, d = 1): every node is an independent SL oscillator. Each node equals a
/// single SL integrated separately from the same start with the same scheme, to 1e-10 after 1 s.
#[test]
fn without_dn_gains_the_nodes_are_independent_sl_oscillators() {
    let side = 6;
    let n = side * side;
    let dt = 1e-4;
    let lambdas: Vec<f64> = (0..n).map(|i| 2.0 + 0.25 * i as f64).collect();
    let freqs: Vec<f64> = (0..n).map(|i| 5.0 + 0.5 * i as f64).collect();
    for (scheme, boundary) in [
        (Scheme::Rk4, Boundary::Periodic),
        (Scheme::Heun, Boundary::ZeroPadded),
    ] {
        let p = SlDnFieldParams {
            lambda: ParamSpec::List(lambdas.clone()),
            freq_hz: ParamSpec::List(freqs.clone()),
            a: 0.0,
            b: 0.0,
            c: 0.0,
            d: 1.0,
            sigma1: 1.0,
            sigma2: None,
            boundary,
            initial_amplitude: Some(0.3),
        };
        let mut field = SlDnField::new(&common(side, dt, scheme, 0.0), &p).unwrap();
        let mut singles: Vec<(SingleSl, Integrator, [f64; 2])> = (0..n)
            .map(|i| {
                let z = field.z(i);
                (
                    SingleSl {
                        lambda: lambdas[i],
                        omega: TAU * freqs[i],
                    },
                    Integrator::new(scheme, 2, dt),
                    [z.re, z.im],
                )
            })
            .collect();
        let mut noise = entrain::noise::GaussianNoise::new(0);
        let zero = vec![Complex64::default(); n];
        for _ in 0..10_000 {
            field.step(&zero);
            for (sys, integ, x) in &mut singles {
                integ.step(sys, x, &mut noise);
            }
        }
        let mut worst = 0.0f64;
        for (i, (_, _, x)) in singles.iter().enumerate() {
            worst = worst.max((field.z(i) - Complex64::new(x[0], x[1])).norm());
        }
        eprintln!("{scheme:?}: max |z_field − z_single| = {worst:e}");
        assert!(worst < 1e-10, "{worst}");
    }
}

/// The DN term is parallel to z at every node: |Im(conj(z)·DN)| ≤ 1e-13·|z|·|DN|, for a random
/// field, both boundaries, with and without the denominator; and it is not trivially zero.
#[test]
fn the_dn_term_preserves_each_nodes_phase() {
    let side = 10;
    let n = side * side;
    for boundary in [Boundary::ZeroPadded, Boundary::Periodic] {
        for c in [0.0, 0.5] {
            let p = SlDnFieldParams {
                c,
                lambda: ParamSpec::Value(-1.0),
                freq_hz: ParamSpec::Value(8.0),
                initial_amplitude: None,
                ..params(boundary)
            };
            let mut field =
                SlDnField::new(&common(side, 1e-3, Scheme::EulerMaruyama, 0.5), &p).unwrap();
            let zero = vec![Complex64::default(); n];
            // Noise roughens the amplitude field so that the convolutions differ node to node.
            for _ in 0..200 {
                field.step(&zero);
            }
            let mut dn = vec![Complex64::default(); n];
            field.dn_terms(&mut dn);
            let mut worst = 0.0f64;
            for (i, term) in dn.iter().enumerate() {
                let z = field.z(i);
                let cross = (z.conj() * term).im;
                worst = worst.max(cross.abs() / (z.norm() * term.norm()));
                assert!(term.norm() > 1.0);
                // Parallel, not anti-parallel: a, b > 0 push outwards.
                assert!((z.conj() * term).re > 0.0);
            }
            assert!(
                worst < 1e-13,
                "{boundary:?}, c = {c}: relative cross product {worst:e}"
            );
        }
    }
}

/// Root of λ − r² + (a r + b)/((c r + d) r) = 0 by bisection (the left side falls from +∞ at
/// r → 0+ to −∞).
fn self_consistent_radius(lambda: f64, a: f64, b: f64, c: f64, d: f64) -> f64 {
    let f = |r: f64| lambda - r * r + (a * r + b) / ((c * r + d) * r);
    let (mut lo, mut hi) = (1e-9, 1e3);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Periodic grid, uniform λ, heterogeneous frequencies, random initial amplitudes: every node
/// converges to the self-consistent radius (to 1e-9 after 2 s) whatever its phase. The zero-padded
/// grid is not uniform: its corner node ends with a smaller radius than an inner node (it loses
/// more of the narrow kernel's drive than of the wide kernel's normalization).
#[test]
fn the_uniform_radius_solves_the_self_consistent_equation() {
    let side = 8;
    let n = side * side;
    let p0 = params(Boundary::Periodic);
    let expected = self_consistent_radius(10.0, p0.a, p0.b, p0.c, p0.d);
    eprintln!(
        "self-consistent radius {expected:.9} (uncoupled √λ = {:.6})",
        10f64.sqrt()
    );
    for boundary in [Boundary::Periodic, Boundary::ZeroPadded] {
        let p = SlDnFieldParams {
            freq_hz: ParamSpec::Dist(entrain::model::Dist::Uniform {
                low: 5.0,
                high: 15.0,
                sampling: Default::default(),
            }),
            initial_amplitude: Some(1.0),
            ..params(boundary)
        };
        let mut field = SlDnField::new(&common(side, 1e-4, Scheme::Rk4, 0.0), &p).unwrap();
        let zero = vec![Complex64::default(); n];
        // Scatter the amplitudes first (a short forcing kick per node), then let it settle.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let kick: Vec<Complex64> = (0..n)
            .map(|_| Complex64::from_polar(rng.random::<f64>() * 40.0, rng.random::<f64>() * TAU))
            .collect();
        for _ in 0..500 {
            field.step(&kick);
        }
        for _ in 0..20_000 {
            field.step(&zero);
        }
        let radii: Vec<f64> = (0..n).map(|i| field.z(i).norm()).collect();
        match boundary {
            Boundary::Periodic => {
                let worst = radii
                    .iter()
                    .map(|r| (r - expected).abs())
                    .fold(0.0, f64::max);
                eprintln!("periodic: max |r − r*| = {worst:e}");
                assert!(worst < 1e-9, "{worst}");
            }
            Boundary::ZeroPadded => {
                let corner = radii[0];
                let inner = radii[(side / 2) * side + side / 2];
                eprintln!("zero-padded: corner r = {corner:.6}, inner r = {inner:.6}");
                assert!(corner < inner - 1e-3);
            }
        }
    }
}

/// The convolutions are recomputed at every stage: with strong DN coupling, RK4 still converges
/// at fourth order (error ratio ≈ 16 per halving of dt; a convolution frozen over the step would
/// make it first order).
#[test]
fn rk4_keeps_fourth_order_with_the_dn_term() {
    let side = 6;
    let n = side * side;
    let run = |dt: f64| {
        let p = SlDnFieldParams {
            a: 40.0,
            c: 2.0,
            freq_hz: ParamSpec::List((0..n).map(|i| 3.0 + 0.2 * i as f64).collect()),
            initial_amplitude: Some(0.2),
            ..params(Boundary::ZeroPadded)
        };
        let mut field = SlDnField::new(&common(side, dt, Scheme::Rk4, 0.0), &p).unwrap();
        let zero = vec![Complex64::default(); n];
        for _ in 0..(0.2 / dt).round() as usize {
            field.step(&zero);
        }
        (0..n).map(|i| field.z(i)).collect::<Vec<_>>()
    };
    let reference = run(2.5e-5);
    let err = |dt: f64| {
        run(dt)
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max)
    };
    let (e1, e2) = (err(1e-3), err(5e-4));
    let order = (e1 / e2).log2();
    eprintln!("RK4 with DN: errors {e1:e}, {e2:e}, order {order:.2}");
    assert!((order - 4.0).abs() < 0.5, "order {order}");
}

/// Complex noise, then reset: the same trajectory bit for bit, the clock back at 0.
#[test]
fn reset_repeats_the_noisy_run_bit_for_bit() {
    let side = 5;
    let n = side * side;
    let mut field = SlDnField::new(
        &common(side, 1e-3, Scheme::StochasticHeun, 0.3),
        &params(Boundary::ZeroPadded),
    )
    .unwrap();
    let record = |f: &mut SlDnField| {
        let mut out = Vec::new();
        for k in 0..2000 {
            let drive = Complex64::new((k as f64 * 0.01).sin(), 0.0);
            f.step(&vec![drive; n]);
            out.extend((0..n).map(|i| f.z(i)));
        }
        out
    };
    let a = record(&mut field);
    field.reset();
    assert_eq!(field.time(), 0.0);
    let b = record(&mut field);
    assert_eq!(a, b);
}

/// Forcing adds to dz/dt: a constant forcing F on a damped, uncoupled node (λ < 0, ω = 0,
/// a = b = 0) settles where λz − |z|²z + F = 0.
#[test]
fn forcing_adds_to_the_rate_of_change() {
    let side = 3;
    let n = side * side;
    let p = SlDnFieldParams {
        lambda: ParamSpec::Value(-5.0),
        freq_hz: ParamSpec::Value(0.0),
        a: 0.0,
        b: 0.0,
        c: 0.0,
        d: 1.0,
        sigma1: 1.0,
        sigma2: None,
        boundary: Boundary::Periodic,
        initial_amplitude: Some(0.0),
    };
    let mut field = SlDnField::new(&common(side, 1e-3, Scheme::Rk4, 0.0), &p).unwrap();
    let force = Complex64::from_polar(2.0, 0.7);
    for _ in 0..5000 {
        field.step(&vec![force; n]);
    }
    for i in 0..n {
        let z = field.z(i);
        let residual = -5.0 * z - z.norm_sqr() * z + force;
        assert!(residual.norm() < 1e-9, "{residual}");
        assert!((z.arg() - 0.7).abs() < 1e-9);
    }
}

#[test]
fn parameters_parse_and_bad_values_are_named() {
    let text = r#"
        lambda = 10.0
        freq_hz = { dist = "normal", mean = 10.0, sd = 1.0 }
        a = 1.0
        b = 0.5
        sigma1 = 1.5
        boundary = "periodic"
    "#;
    let p: SlDnFieldParams = toml::from_str(text).unwrap();
    assert_eq!((p.c, p.d, p.sigma2), (0.0, 1.0, None));
    assert_eq!(p.boundary, Boundary::Periodic);
    assert!(toml::from_str::<SlDnFieldParams>(&format!("{text}\nmu = 1.0")).is_err());
    assert!(toml::from_str::<SlDnFieldParams>(&text.replace("periodic", "mirror")).is_err());

    let ok = params(Boundary::ZeroPadded);
    let mut c = common(4, 1e-3, Scheme::Heun, 0.0);
    c.nodes = 15;
    let err = SlDnField::new(&c, &ok).err().unwrap();
    assert!(err.starts_with("model.nodes:"), "{err}");
    let cases = [
        (
            "d",
            SlDnFieldParams {
                d: 0.0,
                ..ok.clone()
            },
        ),
        (
            "c",
            SlDnFieldParams {
                c: -1.0,
                ..ok.clone()
            },
        ),
        (
            "sigma1",
            SlDnFieldParams {
                sigma1: 0.0,
                ..ok.clone()
            },
        ),
        (
            "sigma2",
            SlDnFieldParams {
                sigma2: None,
                ..ok.clone()
            },
        ),
        (
            "sigma2",
            SlDnFieldParams {
                sigma2: Some(1e6),
                ..ok.clone()
            },
        ),
        (
            "a",
            SlDnFieldParams {
                a: f64::NAN,
                ..ok.clone()
            },
        ),
        (
            "lambda",
            SlDnFieldParams {
                lambda: ParamSpec::List(vec![1.0]),
                ..ok.clone()
            },
        ),
    ];
    for (key, bad) in cases {
        let err = SlDnField::new(&common(4, 1e-3, Scheme::Heun, 0.0), &bad)
            .err()
            .unwrap();
        assert!(
            err.starts_with(&format!("model.params.{key}:")),
            "{key}: {err}"
        );
    }
}

#[test]
fn plant_interface() {
    let side = 4;
    let field = SlDnField::new(
        &common(side, 1e-3, Scheme::Heun, 0.0),
        &params(Boundary::Periodic),
    )
    .unwrap();
    assert_eq!(field.nodes(), 16);
    assert_eq!(field.side(), 4);
    let z = field.z(3);
    assert_eq!(field.observable(3), z.re);
    assert_eq!(field.phase(3), Some(z.arg()));
    let mean: Complex64 = (0..16).map(|i| field.z(i)).sum();
    assert_eq!(field.mean_phase(), Some(mean.arg()));
    assert!((z.norm() - 10f64.sqrt()).abs() < 1e-12);
    assert_eq!(field.state_bytes(), 16 * 2 * 8);
}
