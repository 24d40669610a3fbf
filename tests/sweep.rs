//! `entrain sweep`: the same table whatever the number of jobs, shards or interruptions.

mod common;

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
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(!stderr.contains("missing"), "{stderr}");
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

/// Start a one-job sweep of 6 s quickstart runs over `vary` into `out`, and return it once its
/// first run has finished.
fn sweep_past_its_first_run(out: &std::path::Path, vary: &str) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(["sweep", "profiles/quickstart.toml", "--vary", vary])
        .args(["--set", "run.duration_s=6", "--jobs", "1", "-q"])
        .args(["--out", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !out.join("runs/000000/summary.json").exists() {
        // A 6 s run takes well under a second; minutes only on a machine that has stalled.
        assert!(started.elapsed().as_secs() < 600, "no run finished");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child
}

#[test]
fn a_sweep_killed_mid_run_resumes_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed");
    let mut child = sweep_past_its_first_run(&out, "stimulation.target_phase_deg=0:160:20");
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

/// SIGTERM (what `timeout`, systemd and SLURM send) ends a sweep like Ctrl-C: no new runs,
/// the running one ends cleanly, sweep.csv holds what was done, exit 130.
#[test]
fn a_sweep_ended_by_sigterm_writes_its_table_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("terminated");
    let child = sweep_past_its_first_run(&out, "stimulation.target_phase_deg=0:350:10");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    let table = csv(&out);
    let rows = table.lines().count() - 1;
    assert!((1..36).contains(&rows), "{rows} rows:\n{table}");
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

/// Run counts are counted without overflow and capped before anything is built: a huge grid or
/// seed count is bad input (exit 2) naming the option and the limit, where it used to abort out
/// of memory, or to wrap to a small count and run the wrong sweep.
#[test]
fn sweeps_too_large_to_count_or_run_are_refused_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big");
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "--vary",
                "stimulation.target_phase_deg=0:99999:1",
                "--vary",
                "stimulation.amplitude=0:99999:1",
            ],
            "10 000 000 000 runs",
        ),
        (&["--seeds", "10000000000000"], "at most 100 000 per sweep"),
        // 1e300 values: used to wrap to 0 ("the sweep has no runs").
        (
            &["--vary", "stimulation.target_phase_deg=0:1:1e-300"],
            "at most 100 000 per axis",
        ),
        // 4 × (2^62 + 1) wraps to 4: used to run 4 runs and exit 0.
        (
            &[
                "--seeds",
                "4611686018427387905",
                "--vary",
                "stimulation.target_phase_deg=0:3:1",
            ],
            "more runs than can be counted",
        ),
        (
            &["--vary", "stimulation.target_phase_deg=-1e308:1e308:1"],
            "STOP − START is too large",
        ),
        // Steps below the values' precision would repeat one value.
        (
            &["--vary", "stimulation.amplitude=1e16:10000000000000004:1"],
            "below the precision",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec![
            "sweep",
            "profiles/quickstart.toml",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (code, _, stderr) = common::entrain_bounded(&args);
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
        assert!(!out.exists(), "{extra:?} created the sweep folder");
    }
}

/// A key varied twice used to replace the first axis silently (and label two columns with it).
#[test]
fn a_key_varied_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dup");
    let (code, _, stderr) = common::entrain_bounded(&[
        "sweep",
        "profiles/quickstart.toml",
        "--vary",
        "stimulation.amplitude=1:2:1",
        "--vary",
        "stimulation.amplitude=0.5:1:0.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--vary stimulation.amplitude: the key is varied twice"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// The seed each run used, from its summary's resolved profile.
fn run_seed(dir: &Path, id: usize) -> u64 {
    let text = std::fs::read_to_string(dir.join(format!("runs/{id:06}/summary.json"))).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    summary["profile"]["run"]["seed"].as_u64().unwrap()
}

/// `--vary run.seed=…` gives each point its seed (and `--seeds` adds to it); it used to be
/// overridden by the profile's seed, so every run had seed 1 while sweep.csv said 1, 2, 3.
#[test]
fn a_run_seed_axis_sets_the_seed_of_each_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seeds");
    let (code, _, stderr) = common::entrain_bounded(&[
        "sweep",
        "profiles/quickstart.toml",
        "--vary",
        "run.seed=5:15:5",
        "--seeds",
        "2",
        "--set",
        "run.duration_s=2",
        "--set",
        "stimulation.start_s=1",
        "--set",
        "stimulation.stop_s=2",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let seeds: Vec<u64> = (0..6).map(|id| run_seed(&out, id)).collect();
    assert_eq!(seeds, [5, 6, 10, 11, 15, 16]);
    let table = csv(&out);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(table.starts_with("run.seed,seed,"), "{table}");
    let labelled: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        labelled,
        [
            ("5", "5"),
            ("5", "6"),
            ("10", "10"),
            ("10", "11"),
            ("15", "15"),
            ("15", "16")
        ]
    );
    // Different seeds, different noise: the figures differ.
    let header: Vec<&str> = table.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "amplitude_during")
        .unwrap();
    let amplitude: Vec<&str> = rows.iter().map(|r| r[col]).collect();
    assert!(amplitude.windows(2).all(|w| w[0] != w[1]), "{table}");

    let (code, _, stderr) = common::entrain_bounded(&[
        "sweep",
        "profiles/quickstart.toml",
        "--vary",
        "run.seed=0.5:3:1",
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("seeds are whole numbers"), "{stderr}");
}

/// More workers than runs or CPUs only cost threads: `--jobs` is capped (with a note when it
/// is over the CPUs available) and the sweep is the same.
#[test]
fn jobs_beyond_the_cpus_are_capped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("jobs");
    let (code, stdout, stderr) = common::entrain_bounded(&[
        "sweep",
        "profiles/quickstart.toml",
        "--vary",
        "stimulation.amplitude=1:1:1",
        "--set",
        "run.duration_s=2",
        "--set",
        "stimulation.start_s=1",
        "--set",
        "stimulation.stop_s=2",
        "--jobs",
        "1000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 runs done now"), "{stdout}");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 1000 {
        assert!(
            stderr.contains(&format!("note: --jobs 1000: using {cpus}")),
            "{stderr}"
        );
    }
}

/// `sweep tongue` on tables it can't draw: a header only, and axis or value spans that overflow
/// f64 (which used to hang in plotters' tick finder) are bad input, exit 2, promptly.
#[test]
fn tongue_refuses_empty_tables_and_spans_that_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("a,b,plv_during\n", "no finished runs yet"),
        (
            "a,b,plv_during\n1,1,0.5\n1e308,1,0.5\n-1e308,1,1\n",
            "a: its values span",
        ),
        (
            "a,b,plv_during\n1,1,0.5\n2,1,1e308\n3,1,-1e308\n",
            "too wide for one colour scale",
        ),
    ];
    for (k, (table, expected)) in cases.iter().enumerate() {
        let sweep = dir.path().join(format!("t{k}"));
        std::fs::create_dir_all(&sweep).unwrap();
        std::fs::write(sweep.join("sweep.csv"), table).unwrap();
        let (code, _, stderr) = common::entrain_bounded(&[
            "sweep",
            "tongue",
            sweep.to_str().unwrap(),
            "--x",
            "a",
            "--y",
            "b",
        ]);
        assert_eq!(code, 2, "{table}: {stderr}");
        assert!(stderr.contains(expected), "{table}: {stderr}");
        assert!(!sweep.join("tongue.svg").exists());
    }
    // Wide but finite spans draw.
    let sweep = dir.path().join("wide");
    std::fs::create_dir_all(&sweep).unwrap();
    std::fs::write(
        sweep.join("sweep.csv"),
        "a,b,plv_during\n-1e307,1,0.5\n0,1,-1e307\n1e307,1,1e307\n",
    )
    .unwrap();
    let (code, stdout, stderr) = common::entrain_bounded(&[
        "sweep",
        "tongue",
        sweep.to_str().unwrap(),
        "--x",
        "a",
        "--y",
        "b",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("3 × 1 cells"), "{stdout}");
}

/// Merging only some of the shards used to print "3 runs in sweep.csv" and nothing else, as if
/// the sweep were whole. It still merges (a fair progress check, exit 0) but warns how many of
/// the plan's runs are missing; a folder given twice is noted and merged once.
#[test]
fn a_merge_with_shards_missing_counts_them_and_a_folder_given_twice_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, merged) = (dir.path().join("a"), dir.path().join("merged"));
    let (code, _, stderr) = sweep(&a, &["--shard", "1/3", "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let a_again = format!("{}/", a.display());
    let (code, stdout, stderr) = common::entrain(&[
        "sweep",
        "merge",
        a.to_str().unwrap(),
        &a_again,
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("3 runs in sweep.csv"), "{stdout}");
    assert!(
        stderr.contains(&format!("note: {a_again} is given twice; merged once")),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: ") && stderr.contains(": 3 of 9 runs; 6 missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("merge the other shards' folders"),
        "{stderr}"
    );
    assert_eq!(csv(&merged), csv(&a));
}

/// `--vary stimulation.amplitude=0.1:0.3:0.1` used to run and tabulate 0.30000000000000004;
/// the values are the decimals typed.
#[test]
fn swept_values_are_the_decimals_of_the_range_typed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("decimals");
    let (code, _, stderr) = common::entrain(&[
        "sweep",
        "profiles/quickstart.toml",
        "--vary",
        "stimulation.amplitude=0.1:0.3:0.1",
        "--set",
        "run.duration_s=1",
        "--set",
        "stimulation.start_s=0.5",
        "--set",
        "stimulation.stop_s=1",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let table = csv(&out);
    let amplitudes: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(amplitudes, ["0.1", "0.2", "0.3"]);
    let summary = common::summary_json(&out.join("runs/000002"));
    assert_eq!(summary["profile"]["stimulation"]["amplitude"], 0.3);
}

/// `sweep tongue --x K --y K` used to draw a diagonal of a table against itself; it is refused,
/// naming the keys to choose from.
#[test]
fn tongue_refuses_the_same_key_on_both_axes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sweep.csv"),
        "a,b,seed,plv_during\n1,1,1,0.5\n2,1,1,0.6\n1,2,1,0.7\n2,2,1,0.8\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, stderr) = common::entrain(&["sweep", "tongue", d, "--x", "a", "--y", "a"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--x and --y are both `a`; a heat map needs two different keys"),
        "{stderr}"
    );
    assert!(stderr.contains("give --x and --y two of a, b"), "{stderr}");
    assert!(!dir.path().join("tongue.svg").exists());
}
