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

/// Every ladder profile, and pink noise, repeat bit for bit (the nodes file included); pink
/// noise depends on the seed.
#[test]
fn ladder_profiles_and_pink_noise_are_deterministic() {
    let run = |name: &str, sets: &[&str]| {
        let path = format!("profiles/{name}.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut all = vec![
            "run.duration_s=1".to_string(),
            "output.nodes_rate_hz=500".into(),
        ];
        all.extend(sets.iter().map(|s| s.to_string()));
        let (p, _) = entrain::profile::load(&path, &text, &all).unwrap();
        let dir = tempfile::tempdir().unwrap();
        common::run(&p, dir.path());
        ["signals.wav", "events.csv", "nodes.f32"]
            .map(|f| std::fs::read(dir.path().join(f)).unwrap())
    };
    for name in [
        "wilson_cowan",
        "jansen_rit",
        "mpr_ping",
        "horn_network",
        "baier_grid_pulses",
        "sl_dn_field",
    ] {
        assert!(
            run(name, &[]) == run(name, &[]),
            "{name} differs between runs"
        );
    }
    let pink = ["model.noise_color=\"pink\"", "model.noise_sd=0.5"];
    let a = run("jansen_rit", &pink);
    assert!(
        a == run("jansen_rit", &pink),
        "pink noise differs between runs"
    );
    assert!(a != run("jansen_rit", &[]), "pink noise changed nothing");
    let mut reseeded = pink.to_vec();
    reseeded.push("run.seed=99");
    assert!(
        a[0] != run("jansen_rit", &reseeded)[0],
        "pink noise ignores the seed"
    );
    let ou = ["model.noise_color=\"ou\"", "model.noise_sd=0.5"];
    let b = run("jansen_rit", &ou);
    assert!(b == run("jansen_rit", &ou), "OU noise differs between runs");
    assert!(b != run("jansen_rit", &[]), "OU noise changed nothing");
    assert!(b != a, "OU noise is the pink noise");
    let mut slower = ou.to_vec();
    slower.push("model.ou_tau_s=0.05");
    assert!(b != run("jansen_rit", &slower), "OU noise ignores ou_tau_s");
}
