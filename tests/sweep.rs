//! `entrain sweep`: the same table whatever the number of jobs, shards or interruptions.

use std::path::Path;
use std::process::Command;

const GRID: [&str; 10] = [
    "--vary",
    "stimulation.target_phase_deg=0:180:90",
    "--vary",
    "stimulation.amplitude=0.5:1.5:0.5",
    "--set",
    "run.duration_s=3",
    "--set",
    "stimulation.start_s=1",
    "--set",
    "stimulation.stop_s=3",
];

fn sweep(out: &Path, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["sweep", "profiles/quickstart.toml"])
        .args(GRID)
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn csv(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sweep.csv")).unwrap()
}

fn modified(dir: &Path, id: usize) -> std::time::SystemTime {
    std::fs::metadata(dir.join(format!("runs/{id:06}/summary.json")))
        .unwrap()
        .modified()
        .unwrap()
}

#[test]
fn two_jobs_give_the_same_table_as_one_with_a_row_per_grid_point() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let (code, _, stderr) = sweep(&one, &["--jobs", "1", "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = sweep(&two, &["--jobs", "2", "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let table = csv(&one);
    assert_eq!(table, csv(&two));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("stimulation.target_phase_deg,stimulation.amplitude,seed,"));
    assert_eq!(lines.len(), 1 + 9);
    // The first axis varies slowest; every row has its figures.
    let cells: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    assert_eq!((cells[0][0], cells[0][1]), ("0", "0.5"));
    assert_eq!((cells[4][0], cells[4][1]), ("90", "1"));
    assert_eq!((cells[8][0], cells[8][1]), ("180", "1.5"));
    assert!(
        cells.iter().all(|c| c[3].parse::<u64>().unwrap() > 10),
        "pulses in every run"
    );
    // The phase error follows each run's own target.
    assert!(cells
        .iter()
        .all(|c| c[4].parse::<f64>().unwrap().abs() < 10.0));
    // Signals are not kept by default.
    assert!(!one.join("runs/000000/signals.wav").exists());
    assert!(one.join("runs/000000/events.csv").exists());
}

#[test]
fn a_restarted_sweep_redoes_only_what_was_not_finished_and_shards_merge_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let (code, _, stderr) = sweep(&whole, &["--jobs", "2", "-q"]);
    assert_eq!(code, 0, "{stderr}");

    // Shards 1/2 and 2/2 in two folders (two cluster jobs), merged.
    let (a, b, merged) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("merged"),
    );
    for (out, shard) in [(&a, "1/2"), (&b, "2/2")] {
        let (code, _, stderr) = sweep(out, &["--shard", shard, "-q"]);
        assert_eq!(code, 0, "{stderr}");
    }
    assert_eq!(
        csv(&a).lines().count(),
        1 + 5,
        "shard 1 has runs 0, 2, 4, 6, 8"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["sweep", "merge", a.to_str().unwrap(), b.to_str().unwrap()])
        .args(["--out", merged.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(csv(&merged), csv(&whole));

    // A sweep killed part-way: shard 1's finished runs, plus a run that died before writing
    // its summary. Restarted in the same folder, it does the rest only.
    std::fs::create_dir_all(a.join("runs/000001")).unwrap();
    std::fs::write(a.join("runs/000001/events.csv"), "partial").unwrap();
    let before: Vec<_> = [0, 2, 4, 6, 8].iter().map(|&id| modified(&a, id)).collect();
    let (code, stdout, stderr) = sweep(&a, &["--jobs", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("4 runs done now, 5 already done"),
        "{stdout}"
    );
    let after: Vec<_> = [0, 2, 4, 6, 8].iter().map(|&id| modified(&a, id)).collect();
    assert_eq!(before, after, "finished runs were redone");
    assert_eq!(csv(&a), csv(&whole));
}

#[test]
fn a_sweep_killed_mid_run_resumes_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["sweep", "profiles/quickstart.toml"])
        .args(["--vary", "stimulation.target_phase_deg=0:160:20"])
        .args(["--set", "run.duration_s=6", "--jobs", "1", "-q"])
        .args(["--out", out.to_str().unwrap()])
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !out.join("runs/000000/summary.json").exists() {
        assert!(started.elapsed().as_secs() < 60, "no run finished");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let first = modified(&out, 0);
    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["sweep", "profiles/quickstart.toml"])
        .args(["--vary", "stimulation.target_phase_deg=0:160:20"])
        .args(["--set", "run.duration_s=6", "--jobs", "2"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(modified(&out, 0), first, "the finished run was redone");
    assert_eq!(csv(&out).lines().count(), 1 + 9);
}

#[test]
fn bad_sweeps_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad");
    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args([
            "sweep",
            "profiles/quickstart.toml",
            "--vary",
            "stimulation.amplitude=2:1:0.5",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("START ≤ STOP"));
    // A value the profile rejects fails before any run starts.
    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args([
            "sweep",
            "profiles/quickstart.toml",
            "--vary",
            "run.sample_rate_hz=-1:0:1",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("run.sample_rate_hz"));
    assert!(!out.join("runs").exists());
}

/// `entrain sweep tongue`: the heat map of a frequency × amplitude sweep with the analytic
/// edge of the swept oscillator drawn on it; a folder without a sweep is bad input.
#[test]
fn a_tongue_sweep_is_drawn_with_its_analytic_edge() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tongue");
    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["sweep", "profiles/tongue_kuramoto.toml", "-q"])
        .args(["--vary", "stimulation.freq_hz=9:11:0.5"])
        .args(["--vary", "stimulation.amplitude=0.5:1:0.5"])
        .args(["--set", "run.duration_s=8"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["sweep", "tongue", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("5 × 2 cells"));
    let svg = std::fs::read_to_string(out.join("tongue.svg")).unwrap();
    assert!(
        svg.starts_with("<svg width=\"900\" height=\"560\""),
        "{}",
        &svg[..80]
    );
    assert!(svg.contains("analytic edge"), "no analytic edge");
    assert!(svg.contains("plv_during"));

    let o = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["sweep", "tongue", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sweep.csv"));
}
