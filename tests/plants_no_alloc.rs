//! After construction, the ladder's plants never allocate: `step` and `reset` of the rate,
//! Wilson–Cowan and Jansen–Rit plants (every scheme, noise, instant, delayed and mean-field
//! coupling), the grid plants, and the pink-noise bank, under a counting global allocator armed
//! per thread around the real-time calls.

use entrain::integrate::Scheme;
use entrain::model::baier_grid::{BaierGrid, BaierGridParams};
use entrain::model::jansen_rit::{JansenRit, JansenRitParams};
use entrain::model::network::Csr;
use entrain::model::pink::PinkNoiseBank;
use entrain::model::rate::{Rate, RateParams, Transfer};
use entrain::model::sl_dn_field::{Boundary, SlDnField, SlDnFieldParams};
use entrain::model::wilson_cowan::{WilsonCowan, WilsonCowanParams};
use entrain::model::{Coupling, ParamSpec, Plant, PlantCommon};
use num_complex::Complex64;

mod alloc_count;
use alloc_count::count_allocations;

/// Three nodes: 0 → 1 instant, 1 → 2 delayed 3 ms, 2 → 0 delayed 1 ms.
fn sparse() -> Coupling {
    Coupling::Sparse(Csr {
        n: 3,
        row_ptr: vec![0, 1, 2, 3],
        col: vec![2, 0, 1],
        weight: vec![0.5, 1.0, 0.7],
        delay_s: vec![0.001, 0.0, 0.003],
    })
}

fn couplings() -> [Coupling; 3] {
    [
        sparse(),
        Coupling::AllToAll {
            n: 3,
            weight: 1.0 / 3.0,
            delay_s: 0.002,
        },
        Coupling::AllToAll {
            n: 3,
            weight: 1.0 / 3.0,
            delay_s: 0.0,
        },
    ]
}

fn common(scheme: Scheme, coupling: Coupling) -> PlantCommon {
    PlantCommon {
        nodes: 3,
        scheme,
        dt: 1e-4,
        noise_sd: 0.5,
        coupling,
        gain: 1.5,
        seed: 9,
        history_precision: entrain::model::HistoryPrecision::F64,
    }
}

/// Allocations during 500 steps, a reset and 100 more steps.
fn allocations_while_stepping(plant: &mut dyn Plant) -> usize {
    let forcing = [Complex64::new(0.3, 0.0); 3];
    count_allocations(|| {
        for _ in 0..500 {
            plant.step(&forcing);
        }
        plant.reset();
        for _ in 0..100 {
            plant.step(&forcing);
        }
    })
    .1
}

#[test]
fn rate_wilson_cowan_and_jansen_rit_steps_never_allocate() {
    // The guard counts: an allocation while armed is seen.
    let ((), n) = count_allocations(|| drop(std::hint::black_box(vec![0u8; 16])));
    assert_eq!(n, 2, "alloc + dealloc");

    let rate = RateParams {
        tau_s: ParamSpec::Value(0.01),
        w: ParamSpec::Value(0.8),
        input: ParamSpec::Value(10.0),
        transfer: Transfer::Sigmoid,
        max_rate: None,
        sigmoid_gain: None,
        sigmoid_threshold: None,
        initial_rate: ParamSpec::List(vec![1.0, 2.0, 3.0]),
    };
    for scheme in Scheme::ALL {
        for coupling in couplings() {
            let c = common(scheme, coupling);
            let mut plants: [Box<dyn Plant>; 3] = [
                Box::new(Rate::new(&c, &rate).unwrap()),
                Box::new(WilsonCowan::new(&c, &WilsonCowanParams::default()).unwrap()),
                Box::new(JansenRit::new(&c, &JansenRitParams::default()).unwrap()),
            ];
            for (name, plant) in ["rate", "wilson_cowan", "jansen_rit"]
                .iter()
                .zip(plants.iter_mut())
            {
                let n = allocations_while_stepping(plant.as_mut());
                assert_eq!(n, 0, "{name}, {scheme:?}: {n} allocations");
            }
        }
    }
}

/// Allocations made by `f` on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    count_allocations(f).1
}

fn grid_common(nodes: usize, scheme: Scheme) -> PlantCommon {
    PlantCommon {
        nodes,
        scheme,
        dt: 1e-3,
        noise_sd: 0.1,
        coupling: Coupling::None,
        gain: 0.0,
        seed: 1,
        history_precision: entrain::model::HistoryPrecision::F64,
    }
}

#[test]
fn plants_and_pink_noise_do_not_allocate_after_construction() {
    let mut plants: Vec<Box<dyn Plant>> = Vec::new();
    for scheme in [Scheme::EulerMaruyama, Scheme::StochasticHeun, Scheme::Rk4] {
        plants.push(Box::new(
            BaierGrid::new(&grid_common(49, scheme), &BaierGridParams::default()).unwrap(),
        ));
        for boundary in [Boundary::ZeroPadded, Boundary::Periodic] {
            let p = SlDnFieldParams {
                lambda: ParamSpec::Value(5.0),
                freq_hz: ParamSpec::Value(10.0),
                a: 1.0,
                b: 0.5,
                c: 0.5,
                d: 1.0,
                sigma1: 1.0,
                sigma2: Some(3.0),
                boundary,
                initial_amplitude: None,
            };
            plants.push(Box::new(
                SlDnField::new(&grid_common(100, scheme), &p).unwrap(),
            ));
        }
    }
    for plant in &mut plants {
        let forcing = vec![Complex64::new(0.5, 0.1); plant.nodes()];
        let n = allocations_in(|| {
            for _ in 0..200 {
                plant.step(&forcing);
            }
            plant.reset();
            plant.step(&forcing);
        });
        assert_eq!(n, 0, "a plant allocated {n} times while stepping");
    }

    let mut bank = PinkNoiseBank::new(49, 1000.0, 0.5, 3).unwrap();
    let mut out = vec![0.0; 49];
    let n = allocations_in(|| {
        for _ in 0..1000 {
            bank.fill(&mut out);
        }
        bank.reset();
        bank.fill(&mut out);
    });
    assert_eq!(n, 0, "pink noise allocated {n} times");
}
