//! Physics of the Jansen–Rit column (MODELS.md §8): the alpha rhythm with the 1995 values,
//! where the forcing enters (pyramidal membrane input), the network term, and determinism.

use entrain::integrate::Scheme;
use entrain::model::jansen_rit::{JansenRit, JansenRitParams};
use entrain::model::network::Csr;
use entrain::model::{Coupling, Dist, ParamSpec, Plant, PlantCommon, Sampling};
use num_complex::Complex64;
use rustfft::FftPlanner;

const DT: f64 = 1e-4;

// Jansen & Rit (1995), written out here so that the fixed-point check below does not read the
// plant's defaults.
const A: f64 = 3.25;
const B: f64 = 22.0;
const A_RATE: f64 = 100.0;
const B_RATE: f64 = 50.0;
const C: f64 = 135.0;

fn sigmoid(v: f64) -> f64 {
    5.0 / (1.0 + (0.56 * (6.0 - v)).exp())
}

/// The steady state `[y0, y1, y2]` for pyramidal potential `v = y1 − y2` under input `p` and
/// DC forcing `f`: `y0 = (A/a) S(v + f)`, `y1 = (A/a)(p + C2 S(C1 y0))`, `y2 = (B/b) C4 S(C3 y0)`.
fn steady_state(v: f64, p: f64, f: f64) -> [f64; 3] {
    let y0 = A / A_RATE * sigmoid(v + f);
    let y1 = A / A_RATE * (p + 0.8 * C * sigmoid(C * y0));
    let y2 = B / B_RATE * 0.25 * C * sigmoid(0.25 * C * y0);
    [y0, y1, y2]
}

/// The root of `v = y1 − y2` (steady state) in `[lo, hi]`, by bisection.
fn fixed_point(p: f64, f: f64, mut lo: f64, mut hi: f64) -> f64 {
    let g = |v: f64| {
        let y = steady_state(v, p, f);
        v - (y[1] - y[2])
    };
    assert!(g(lo) * g(hi) < 0.0, "no sign change in [{lo}, {hi}]");
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if g(lo) * g(mid) <= 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    0.5 * (lo + hi)
}

fn common(nodes: usize, scheme: Scheme, coupling: Coupling, gain: f64) -> PlantCommon {
    PlantCommon {
        nodes,
        scheme,
        dt: DT,
        noise_sd: 0.0,
        coupling,
        gain,
        seed: 21,
        history_precision: entrain::model::HistoryPrecision::F64,
    }
}

fn with_p(p: ParamSpec) -> JansenRitParams {
    JansenRitParams {
        p_mean_per_s: p,
        ..JansenRitParams::default()
    }
}

/// Run `seconds` with DC forcing `f` (mV) on every node; record node `node`'s `y1 − y2`.
fn record(plant: &mut JansenRit, seconds: f64, f: f64, node: usize) -> Vec<f64> {
    let forcing = vec![Complex64::new(f, 0.0); plant.nodes()];
    (0..(seconds / plant.dt()).round() as usize)
        .map(|_| {
            plant.step(&forcing);
            plant.observable(node)
        })
        .collect()
}

/// Welch power spectrum: Hann windows of `segment` samples, half overlapping, mean removed per
/// segment. Returns (bin width in Hz, power per bin).
fn welch(x: &[f64], sample_rate: f64, segment: usize) -> (f64, Vec<f64>) {
    let fft = FftPlanner::new().plan_fft_forward(segment);
    let window: Vec<f64> = (0..segment)
        .map(|k| 0.5 - 0.5 * (std::f64::consts::TAU * k as f64 / segment as f64).cos())
        .collect();
    let mut power = vec![0.0; segment / 2 + 1];
    let mut start = 0;
    while start + segment <= x.len() {
        let chunk = &x[start..start + segment];
        let mean = chunk.iter().sum::<f64>() / segment as f64;
        let mut buf: Vec<Complex64> = chunk
            .iter()
            .zip(&window)
            .map(|(v, w)| Complex64::new((v - mean) * w, 0.0))
            .collect();
        fft.process(&mut buf);
        for (p, z) in power.iter_mut().zip(&buf) {
            *p += z.norm_sqr();
        }
        start += segment / 2;
    }
    (sample_rate / segment as f64, power)
}

/// Frequency of the largest bin in `[low, high]` Hz, refined by a parabola through the peak
/// bin and its neighbours.
fn peak_frequency(bin_hz: f64, power: &[f64], low: f64, high: f64) -> f64 {
    let lo = (low / bin_hz).ceil() as usize;
    let hi = (high / bin_hz).floor() as usize;
    let k = (lo..=hi)
        .max_by(|a, b| power[*a].total_cmp(&power[*b]))
        .unwrap_or(lo);
    let (l, c, r) = (power[k - 1].ln(), power[k].ln(), power[k + 1].ln());
    let offset = 0.5 * (l - r) / (l - 2.0 * c + r);
    (k as f64 + offset) * bin_hz
}

/// With the 1995 values and p = 220 s⁻¹ the output's spectral peak lies in the alpha band, with
/// and without noise on p. (2 s discarded, then 16 s, decimated to 1 kHz, 4 s Welch segments.)
#[test]
fn the_1995_values_give_an_alpha_peak() {
    for (scheme, sigma) in [(Scheme::Rk4, 0.0), (Scheme::StochasticHeun, 5.0)] {
        let mut c = common(1, scheme, Coupling::None, 0.0);
        c.noise_sd = sigma;
        let mut plant = JansenRit::new(&c, &JansenRitParams::default()).unwrap();
        let v = record(&mut plant, 18.0, 0.0, 0);
        // y1 − y2 is smooth (its harmonics die out long before 500 Hz): every 10th sample.
        let decimated: Vec<f64> = v[20_000..].iter().step_by(10).copied().collect();
        let (bin, power) = welch(&decimated, 1000.0, 4000);
        let peak = peak_frequency(bin, &power, 1.0, 40.0);
        println!("σ = {sigma} s^-1/2 ({scheme:?}): spectral peak of y1 − y2 at {peak:.3} Hz");
        assert!((8.0..=12.0).contains(&peak), "peak {peak} Hz");
        // A peak, not a broad hump: the alpha bins carry most of the 1–40 Hz power.
        let band =
            |a: f64, b: f64| -> f64 { power[(a / bin) as usize..=(b / bin) as usize].iter().sum() };
        let share = band(8.0, 13.0) / band(1.0, 40.0);
        println!("  8–13 Hz share of 1–40 Hz power: {share:.3}");
        assert!(share > 0.5, "alpha share {share}");
    }
}

/// Forcing adds to the pyramidal membrane input. At p = 60 s⁻¹ the column rests at a stable
/// fixed point; a DC forcing of ±0.5 mV moves it to exactly the root of
/// `v = y1 − y2` with `S(v + F)` in place of `S(v)`, computed here from the equations.
#[test]
fn dc_forcing_moves_the_fixed_point_where_the_membrane_input_predicts() {
    let p = 60.0;
    let rest = fixed_point(p, 0.0, -1.0, 1.0);
    for f in [0.5, -0.5] {
        let mut plant = JansenRit::new(
            &common(1, Scheme::Rk4, Coupling::None, 0.0),
            &with_p(ParamSpec::Value(p)),
        )
        .unwrap();
        record(&mut plant, 2.0, f, 0);
        let expected_v = fixed_point(p, f, -1.0, 1.0);
        let expected = steady_state(expected_v, p, f);
        let y = plant.y(0);
        println!(
            "p = {p}, F = {f} mV: y1 − y2 = {:.6} mV (rest {rest:.6}, predicted {expected_v:.6})",
            plant.observable(0)
        );
        for k in 0..3 {
            assert!(
                (y[k] - expected[k]).abs() < 1e-7,
                "y{k} = {}, expected {}",
                y[k],
                expected[k]
            );
        }
        // On the low branch the excitatory loop wins: depolarising input raises y1 − y2.
        assert_eq!(plant.observable(0) > rest, f > 0.0);
    }
}

/// In the alpha regime (p = 220 s⁻¹) a DC forcing moves the mean pyramidal membrane potential
/// `y1 − y2 + F` with the sign of F, but by less than F: the forcing raises pyramidal firing,
/// which recruits the strong inhibitory loop (B·C4 ≫ A·C2 at this operating point), so the
/// synaptic part `y1 − y2` (the observable) moves the other way.
#[test]
fn dc_forcing_in_the_alpha_regime_is_partly_cancelled_by_inhibition() {
    let mean_v = |f: f64| {
        let mut plant = JansenRit::new(
            &common(1, Scheme::Rk4, Coupling::None, 0.0),
            &JansenRitParams::default(),
        )
        .unwrap();
        let v = record(&mut plant, 4.0, f, 0);
        v[10_000..].iter().sum::<f64>() / (v.len() - 10_000) as f64
    };
    let (m0, m_up, m_down) = (mean_v(0.0), mean_v(1.0), mean_v(-1.0));
    println!("mean y1 − y2: F = 0: {m0:.4} mV, F = +1: {m_up:.4} mV, F = −1: {m_down:.4} mV");
    assert!(
        m_up + 1.0 > m0 && m_down - 1.0 < m0,
        "membrane input follows F"
    );
    assert!(
        m_up < m0 && m_down > m0,
        "synaptic part opposes F (inhibition)"
    );
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

/// Node 0 oscillates (p = 220), node 1 rests (p = 60). With an edge 0 → 1 (K = 10) node 1
/// oscillates at node 0's frequency; with K = 0 it settles at its fixed point; node 0, with no
/// incoming edge, is bit-identical either way.
#[test]
fn a_resting_column_is_driven_only_through_its_edge() {
    let params = with_p(ParamSpec::List(vec![220.0, 60.0]));
    let run = |gain: f64| {
        let mut plant =
            JansenRit::new(&common(2, Scheme::Rk4, edge_0_to_1(0.01), gain), &params).unwrap();
        let none = [Complex64::default(); 2];
        let (mut v0, mut v1) = (Vec::new(), Vec::new());
        for _ in 0..50_000 {
            plant.step(&none);
            v0.push(plant.observable(0));
            v1.push(plant.observable(1));
        }
        (v0, v1)
    };
    let (free0, free1) = run(0.0);
    let (driven0, driven1) = run(10.0);
    assert_eq!(free0, driven0, "node 0 has no incoming edge");
    let swing = |x: &[f64]| {
        x.iter().copied().fold(f64::MIN, f64::max) - x.iter().copied().fold(f64::MAX, f64::min)
    };
    let tail = 20_000..50_000;
    let rest = fixed_point(60.0, 0.0, -1.0, 1.0);
    assert!(
        swing(&free1[tail.clone()]) < 1e-6 && (free1[49_999] - rest).abs() < 1e-6,
        "undriven node rests at {rest}"
    );
    let driven_swing = swing(&driven1[tail.clone()]);
    // Mean period from interpolated upward crossings of each node's mean over the last 3 s.
    let period = |x: &[f64]| {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let t: Vec<f64> = x
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < mean && w[1] >= mean)
            .map(|(k, w)| (k as f64 + (mean - w[0]) / (w[1] - w[0])) * DT)
            .collect();
        (t[t.len() - 1] - t[0]) / (t.len() - 1) as f64
    };
    let (p0, p1) = (period(&driven0[tail.clone()]), period(&driven1[tail]));
    println!(
        "driven node: swing {driven_swing:.4} mV at {:.4} Hz (driver {:.4} Hz)",
        1.0 / p1,
        1.0 / p0
    );
    assert!(driven_swing > 0.05, "swing {driven_swing}");
    assert!(
        (p1 / p0 - 1.0).abs() < 1e-3,
        "period {p1} s vs driver {p0} s"
    );
}

#[test]
fn reset_repeats_a_noisy_run_exactly() {
    let params = JansenRitParams {
        c: ParamSpec::Dist(Dist::Normal {
            mean: 135.0,
            sd: 5.0,
            sampling: Sampling::Random,
        }),
        ..JansenRitParams::default()
    };
    let mut c = common(
        3,
        Scheme::EulerMaruyama,
        Coupling::AllToAll {
            n: 3,
            weight: 1.0 / 3.0,
            delay_s: 0.008,
        },
        5.0,
    );
    c.noise_sd = 10.0;
    let mut plant = JansenRit::new(&c, &params).unwrap();
    let trajectory = |p: &mut JansenRit| record(p, 0.3, 0.2, 2);
    let first = trajectory(&mut plant);
    plant.reset();
    assert_eq!(first, trajectory(&mut plant));
}

/// Started at its fixed point (p = 60 s⁻¹, found by bisection above), an uncoupled column does
/// not move (to the rounding of the fixed point), whatever the scheme or the gain.
#[test]
fn at_its_fixed_point_without_coupling_step_changes_nothing() {
    let p = 60.0;
    let v = fixed_point(p, 0.0, -1.0, 1.0);
    let y = steady_state(v, p, 0.0);
    let params = JansenRitParams {
        initial_state: [y[0], y[1], y[2], 0.0, 0.0, 0.0],
        ..with_p(ParamSpec::Value(p))
    };
    for scheme in Scheme::ALL {
        for (coupling, gain) in [(Coupling::None, 10.0), (edge_0_to_1(0.002), 0.0)] {
            let mut plant = JansenRit::new(&common(2, scheme, coupling, gain), &params).unwrap();
            record(&mut plant, 0.2, 0.0, 0);
            for node in 0..2 {
                let now = plant.y(node);
                for (k, (y, initial)) in now.iter().zip(&params.initial_state).enumerate() {
                    assert!(
                        (y - initial).abs() < 1e-10,
                        "{scheme:?}: y{k} moved from {initial} to {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_parameters_are_reported_by_key() {
    let c = common(1, Scheme::Rk4, Coupling::None, 0.0);
    let err = |p: JansenRitParams| JansenRit::new(&c, &p).err().unwrap_or_default();
    let cases = [
        (
            "exc_gain_mv",
            JansenRitParams {
                exc_gain_mv: ParamSpec::Value(0.0),
                ..Default::default()
            },
        ),
        (
            "inh_rate_per_s",
            JansenRitParams {
                inh_rate_per_s: ParamSpec::Value(-50.0),
                ..Default::default()
            },
        ),
        (
            "c",
            JansenRitParams {
                c: ParamSpec::Value(-1.0),
                ..Default::default()
            },
        ),
        (
            "r_per_mv",
            JansenRitParams {
                r_per_mv: 0.0,
                ..Default::default()
            },
        ),
        (
            "c2_ratio",
            JansenRitParams {
                c2_ratio: f64::INFINITY,
                ..Default::default()
            },
        ),
        (
            "initial_state",
            JansenRitParams {
                initial_state: [0.0, f64::NAN, 0.0, 0.0, 0.0, 0.0],
                ..Default::default()
            },
        ),
        ("p_mean_per_s", with_p(ParamSpec::Value(f64::NAN))),
    ];
    for (key, params) in cases {
        let e = err(params);
        assert!(e.starts_with(&format!("model.params.{key}:")), "{key}: {e}");
    }
    let parsed: JansenRitParams = toml::from_str("p_mean_per_s = 180.0").unwrap();
    assert_eq!(parsed.exc_gain_mv, ParamSpec::Value(3.25));
    assert_eq!(parsed.p_mean_per_s, ParamSpec::Value(180.0));
    assert!(toml::from_str::<JansenRitParams>("p = 180.0").is_err());
}
