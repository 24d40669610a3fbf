//! Same profile and seed → byte-identical offline outputs; another seed → different ones.

mod common;

fn outputs(sets: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    common::run(&common::quickstart(sets), dir.path());
    (
        std::fs::read(dir.path().join("signals.wav")).unwrap(),
        std::fs::read(dir.path().join("events.csv")).unwrap(),
    )
}

/// The network profile exercises what the quickstart does not: many nodes, a random graph,
/// per-edge delays, noise on every node, a mean-field sensor, k > 1 and recorded nodes.
#[test]
fn network_profile_is_deterministic_too() {
    let text = std::fs::read_to_string("profiles/kuramoto_network.toml").unwrap();
    let run = || {
        let (p, _) = entrain::profile::load("k", &text, &["run.duration_s=4".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        common::run(&p, dir.path());
        (
            std::fs::read(dir.path().join("signals.wav")).unwrap(),
            std::fs::read(dir.path().join("events.csv")).unwrap(),
        )
    };
    let (a, b) = (run(), run());
    assert!(
        a.0 == b.0 && a.1 == b.1,
        "kuramoto_network outputs differ between runs"
    );
    let pulses = a.1.iter().filter(|&&b| b == b'\n').count() - 1;
    assert!(pulses > 10, "only {pulses} pulses were delivered");
}

#[test]
fn same_profile_and_seed_give_identical_signals_and_events() {
    let a = outputs(&["run.duration_s=6"]);
    let b = outputs(&["run.duration_s=6"]);
    assert!(
        a.0 == b.0,
        "signals.wav differs between two runs of the same profile"
    );
    assert!(
        a.1 == b.1,
        "events.csv differs between two runs of the same profile"
    );
    let c = outputs(&["run.duration_s=6", "run.seed=2"]);
    assert!(a.0 != c.0, "a different seed must give a different run");
}
