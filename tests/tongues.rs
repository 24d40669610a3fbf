//! Arnold tongues from 2-D sweeps: tACS locks a Stuart–Landau oscillator within the analytic
//! edge `|Ω − ω| = F/√(λ/μ)` and a Kuramoto oscillator iff `|Ω − ω| ≤ F` (MODELS.md §1, §3),
//! with F the co-rotating half of the real drive (`forcing_gain · A / 2`).

use entrain::sweep::{self, Axis, Plan};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// Locked when the entrainment PLV during stimulation exceeds this.
const LOCKED_PLV: f64 = 0.9;

/// Sweep `profile` over stimulation frequency × amplitude; returns amplitude → [(freq, PLV)].
fn tongue(profile: &str, freqs: &str, amps: &str) -> BTreeMap<String, Vec<(f64, f64)>> {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan {
        profile_path: profile.into(),
        profile_text: std::fs::read_to_string(profile).unwrap(),
        sets: Vec::new(),
        axes: vec![
            Axis::parse(&format!("stimulation.amplitude={amps}")).unwrap(),
            Axis::parse(&format!("stimulation.freq_hz={freqs}")).unwrap(),
        ],
        seeds: 1,
        keep_signals: false,
    };
    let outcome = sweep::run(
        &plan,
        dir.path(),
        2,
        None,
        &AtomicBool::new(false),
        |_, _, _| {},
    )
    .unwrap();
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    let csv = std::fs::read_to_string(dir.path().join("sweep.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (amp, freq, plv) = (
        col("stimulation.amplitude"),
        col("stimulation.freq_hz"),
        col("plv_during"),
    );
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        out.entry(f[amp].to_string())
            .or_default()
            .push((f[freq].parse().unwrap(), f[plv].parse().unwrap()));
    }
    out
}

/// The locked region around `centre`: its edges placed half-way between the last locked and
/// the first unlocked frequency on each side.
fn locked_edges(row: &[(f64, f64)], centre: f64) -> (f64, f64) {
    let start = row.iter().position(|(f, _)| *f >= centre - 1e-9).unwrap();
    assert!(
        row[start].1 > LOCKED_PLV,
        "not locked at the natural frequency: {row:?}"
    );
    let mut hi = start;
    while hi + 1 < row.len() && row[hi + 1].1 > LOCKED_PLV {
        hi += 1;
    }
    let mut lo = start;
    while lo > 0 && row[lo - 1].1 > LOCKED_PLV {
        lo -= 1;
    }
    assert!(
        lo > 0 && hi + 1 < row.len(),
        "the tongue reaches the sweep's edge: {row:?}"
    );
    (
        0.5 * (row[lo].0 + row[lo - 1].0),
        0.5 * (row[hi].0 + row[hi + 1].0),
    )
}

#[test]
fn stuart_landau_locks_within_ten_percent_of_the_analytic_edge_at_three_amplitudes() {
    // forcing_gain 2π and radius 1: amplitude A gives an edge at ±A/2 Hz.
    let rows = tongue("profiles/tongue_sl.toml", "8:12:0.05", "1:3:1");
    assert_eq!(rows.len(), 3);
    for (amp, row) in &rows {
        let edge = amp.parse::<f64>().unwrap() / 2.0;
        let (lo, hi) = locked_edges(row, 10.0);
        for measured in [10.0 - lo, hi - 10.0] {
            assert!(
                (measured - edge).abs() <= 0.1 * edge,
                "amplitude {amp}: edge {measured:.3} Hz, analytic {edge} Hz"
            );
        }
    }
}

#[test]
fn kuramoto_locks_iff_the_detuning_is_within_the_forcing() {
    // forcing_gain 4π: amplitude A gives a locking term of A Hz.
    let step = 0.1;
    let rows = tongue("profiles/tongue_kuramoto.toml", "8.5:11.5:0.1", "0.5:1:0.5");
    for (amp, row) in &rows {
        let forcing = amp.parse::<f64>().unwrap();
        for &(f, plv) in row {
            let detuning = (f - 10.0).abs();
            if detuning < forcing - step + 1e-9 {
                assert!(plv > LOCKED_PLV, "A = {amp}, {f} Hz should lock: PLV {plv}");
            } else if detuning > forcing + step - 1e-9 {
                assert!(
                    plv <= LOCKED_PLV,
                    "A = {amp}, {f} Hz should slip: PLV {plv}"
                );
            }
        }
    }
}

#[test]
fn the_analytic_edge_follows_the_profile() {
    let text = std::fs::read_to_string("profiles/tongue_sl.toml").unwrap();
    let (p, _) = entrain::profile::load("sl", &text, &[]).unwrap();
    let (f0, k) = sweep::analytic_edge(&p).unwrap();
    assert_eq!(f0, 10.0);
    // forcing_gain 2π, radius 1: half an Hz of detuning per amplitude unit.
    assert!((k - 0.5).abs() < 1e-12, "{k}");
    let (p, _) = entrain::profile::load("sl", &text, &["model.params.mu=12.5".into()]).unwrap();
    // Radius √(50/12.5) = 2 halves the edge.
    assert!((sweep::analytic_edge(&p).unwrap().1 - 0.25).abs() < 1e-12);
    let q = entrain::profile::load("q", entrain::profile::QUICKSTART, &["model.nodes=2".into()])
        .unwrap()
        .0;
    assert!(
        sweep::analytic_edge(&q).is_none(),
        "a network has no single-oscillator edge"
    );
}
