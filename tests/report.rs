//! `entrain report DIR`: one self-contained HTML page per run, its SVG figures and the numbers
//! behind them (`report/figures.json`), checked against the run's own files.

mod common;

use common::entrain;

use serde_json::Value;
use std::path::Path;

/// The embedded quickstart, shortened to 6 s (stimulation from 2 s to the end).
fn quickstart_run(dir: &Path) {
    let (code, _, stderr) = entrain(&[
        "run",
        "--out",
        dir.to_str().unwrap(),
        "-q",
        "--duration",
        "6",
    ]);
    assert_eq!(code, 0, "{stderr}");
}

fn report(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = entrain(&all);
    assert!(!stderr.contains("panicked"), "report panicked: {stderr}");
    (code, stdout, stderr)
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The report's binning, done independently: `bins` equal bins from −180°, +180° in the last.
fn histogram(angles: impl Iterator<Item = f64>, bins: usize) -> Vec<u64> {
    let width = 360.0 / bins as f64;
    let mut counts = vec![0; bins];
    for a in angles {
        let i = (((a + 180.0) / width).floor() as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts
}

/// Parses `path` as XML and returns the root's (name, width, height).
fn svg_size(path: &Path) -> (String, u32, u32) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    let root = doc.root_element();
    let attr = |name: &str| {
        root.attribute(name)
            .unwrap_or_else(|| panic!("{}: no {name}", path.display()))
            .parse::<u32>()
            .unwrap()
    };
    (
        root.tag_name().name().to_string(),
        attr("width"),
        attr("height"),
    )
}

#[test]
fn quickstart_report_is_self_contained_and_its_figures_match_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    quickstart_run(&dir);
    let (code, stdout, stderr) = report(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("report.html"), "{stdout}");

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.to_lowercase().contains("<script"), "no JavaScript");
    // The SVG namespace is an identifier, not a resource; nothing else may point at the network.
    let rest = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !rest.contains("http://") && !rest.contains("https://"),
        "the page must not load anything from the network"
    );
    assert!(
        !rest.contains(" src=\"") && !rest.contains("url("),
        "no external images"
    );
    for key in [
        "pulses",
        "phase error",
        "PLV",
        "loop latency",
        "sample rate",
    ] {
        assert!(html.contains(key), "the table shows {key}");
    }

    // Every figure is a well-formed SVG of its fixed size, and is inlined in the page.
    let figures_dir = dir.join("report");
    let expected = [
        ("rose.svg", 520, 520),
        ("phase_error.svg", 640, 480),
        ("plv.svg", 640, 480),
        ("spectrum.svg", 640, 480),
        ("stretch.svg", 900, 640),
    ];
    for (name, w, h) in expected {
        let path = figures_dir.join(name);
        assert_eq!(svg_size(&path), ("svg".to_string(), w, h), "{name}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            html.contains(text.trim()),
            "{name} is inlined in report.html"
        );
    }
    assert_eq!(html.matches("<svg").count(), expected.len());
    assert!(!figures_dir.join("block_time.svg").exists());
    assert!(html.contains("offline run: no block times"));

    let figures = json(&figures_dir.join("figures.json"));
    let events = common::events(&dir);
    let summary = common::summary_json(&dir);
    assert!(events.len() > 20, "{} pulses", events.len());

    // Rose: the counts are the histogram of events.csv's true_deg.
    let truth: Vec<f64> = events.iter().filter_map(|e| e.true_deg).collect();
    let rose = &figures["rose"];
    assert_eq!(rose["svg"], "rose.svg");
    assert_eq!(u64s(&rose["counts"]), histogram(truth.iter().copied(), 36));
    assert_eq!(
        u64s(&rose["counts"]).iter().sum::<u64>(),
        truth.len() as u64
    );
    assert_eq!(rose["n"].as_u64().unwrap(), truth.len() as u64);
    let edges = f64s(&rose["bin_edges_deg"]);
    assert_eq!(edges.len(), 37);
    assert_eq!((edges[0], edges[36]), (-180.0, 180.0));
    assert_eq!(rose["target_deg"].as_f64().unwrap(), 0.0);

    // Error histogram: the same from error_deg, and its statistics agree with the summary's.
    let errors: Vec<f64> = events.iter().filter_map(|e| e.error_deg).collect();
    let err = &figures["phase_error"];
    assert_eq!(u64s(&err["counts"]), histogram(errors.iter().copied(), 72));
    assert_eq!(err["n"].as_u64().unwrap(), errors.len() as u64);
    let close =
        |a: &Value, b: &Value, tol: f64| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < tol;
    assert!(close(
        &err["circular_mean_deg"],
        &summary["phase_error"]["mean_deg"],
        0.05
    ));
    assert!(close(
        &err["circular_sd_deg"],
        &summary["phase_error"]["sd_deg"],
        0.05
    ));

    // Spectra: "during" peaks at the plant's frequency.
    let plant_hz = summary["profile"]["model"]["params"]["freq_hz"]
        .as_f64()
        .unwrap();
    let periods = figures["spectra"]["periods"].as_array().unwrap();
    let during = periods
        .iter()
        .find(|p| p["period"] == "during")
        .expect("a spectrum during stimulation");
    let (freq, power) = (f64s(&during["freq_hz"]), f64s(&during["power_db"]));
    assert_eq!(freq.len(), power.len());
    let peak = (0..power.len())
        .max_by(|&a, &b| power[a].total_cmp(&power[b]))
        .unwrap();
    assert!(
        (freq[peak] - plant_hz).abs() <= 1.0,
        "spectral peak at {} Hz, plant at {plant_hz} Hz",
        freq[peak]
    );
    assert!(periods.iter().any(|p| p["period"] == "before"));

    // The PLV figure holds summary.json's series; the stretch holds pulses.
    assert_eq!(figures["plv"]["time_s"], summary["plv_series"]["time_s"]);
    assert!(figures["stretch"]["pulses"].as_u64().unwrap() > 0);
    assert_eq!(figures["stretch"]["true_phase_shown"], true);

    // --out elsewhere and --stretch: the figures go next to the page, over the stretch asked.
    let other = tmp.path().join("elsewhere.html");
    let (code, _, stderr) = report(&[
        dir.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
        "--stretch",
        "3:3.5",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let figures = json(&tmp.path().join("elsewhere/figures.json"));
    assert_eq!(figures["stretch"]["start_s"].as_f64().unwrap(), 3.0);
    assert_eq!(figures["stretch"]["end_s"].as_f64().unwrap(), 3.5);
    assert!(other.exists());
}

#[test]
fn plv_series_is_the_summary_plv_in_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    quickstart_run(&dir);
    let summary = common::summary_json(&dir);
    let series = &summary["plv_series"];
    let (window, hop) = (
        series["window_s"].as_f64().unwrap(),
        series["hop_s"].as_f64().unwrap(),
    );
    assert_eq!((window, hop), (1.0, 0.5));
    let times = f64s(&series["time_s"]);
    let values: Vec<Option<f64>> = series["plv"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect();
    assert_eq!(times.len(), values.len());
    // 6 s of run: windows centred at 0.5, 1.0, …, 5.5 s.
    assert_eq!(times.len(), 11, "{times:?}");
    assert!(values.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
    let fs = summary["sample_rate"].as_f64().unwrap();
    let latency = summary["latency_samples"].as_f64().unwrap() / fs;
    let (start, end) = (2.0 + latency, 6.0);
    let during: Vec<f64> = times
        .iter()
        .zip(&values)
        .filter(|(t, _)| **t - window / 2.0 >= start && **t + window / 2.0 <= end)
        .map(|(_, v)| v.expect("every window during stimulation has a PLV"))
        .collect();
    assert!(
        during.len() >= 5,
        "{} windows during stimulation",
        during.len()
    );
    let mean = during.iter().sum::<f64>() / during.len() as f64;
    let whole = summary["plv"]["during"].as_f64().unwrap();
    assert!(
        mean >= whole - 0.1,
        "windowed PLV during stimulation {mean:.3} vs the whole period's {whole:.3}"
    );
}

/// A run folder written by hand: a summary with just what a report needs, and `events`.
fn fake_run(dir: &Path, summary: &Value, events: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    std::fs::write(dir.join("events.csv"), events).unwrap();
}

fn minimal_summary() -> Value {
    serde_json::json!({
        "sample_rate": 1000.0,
        "samples": 4000,
        "latency_samples": 2,
        "pulses": 2,
        "plv": { "before": null, "during": null, "after": null },
        "profile": { "stimulation": { "kind": "phase_locked", "start_s": 1.0, "stop_s": null } },
        "driver": "offline",
    })
}

const HEADER: &str = "sample,time_s,target_deg,estimated_deg,true_deg,error_deg,amplitude";

#[test]
fn bad_input_is_reported_with_the_file_and_line_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();

    // Not a run folder.
    let empty = tmp.path().join("not-a-run");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, stderr) = report(&[empty.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not-a-run"), "names the folder: {stderr}");
    assert!(
        stderr.contains("entrain run"),
        "says how to fix it: {stderr}"
    );

    // A truncated events.csv: the file and the line.
    let dir = tmp.path().join("truncated");
    fake_run(
        &dir,
        &minimal_summary(),
        &format!("{HEADER}\n1000,1.000000,0.000,1.0,2.0,2.0,1\n1100,1.1"),
    );
    let (code, _, stderr) = report(&[dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("events.csv") && stderr.contains("line 3"),
        "names file and line: {stderr}"
    );
    assert!(
        stderr.contains("7 comma-separated fields"),
        "says what was expected: {stderr}"
    );

    // A garbled cell.
    let dir = tmp.path().join("garbled");
    fake_run(
        &dir,
        &minimal_summary(),
        &format!("{HEADER}\n1000,1.000000,0.000,1.0,2.0,2.0,1\n1100,1.1,0,1,abc,1,1\n"),
    );
    let (code, _, stderr) = report(&[dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("events.csv") && stderr.contains("line 3") && stderr.contains("true_deg"),
        "{stderr}"
    );

    // A wrong header.
    let dir = tmp.path().join("header");
    fake_run(&dir, &minimal_summary(), "a,b,c\n1,2,3\n");
    let (code, _, stderr) = report(&[dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 1"), "{stderr}");

    // Not JSON.
    let dir = tmp.path().join("json");
    fake_run(&dir, &minimal_summary(), HEADER);
    std::fs::write(dir.join("summary.json"), "{ truncated").unwrap();
    let (code, _, stderr) = report(&[dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("summary.json"), "{stderr}");

    // A bad --stretch.
    let dir = tmp.path().join("ok");
    fake_run(&dir, &minimal_summary(), HEADER);
    for stretch in ["2:1", "x:2", "9:10"] {
        let (code, _, stderr) = report(&[dir.to_str().unwrap(), "--stretch", stretch]);
        assert_eq!(code, 2, "--stretch {stretch}: {stderr}");
        assert!(stderr.contains("--stretch"), "{stderr}");
    }
}

#[test]
fn pulses_without_numbers_and_runs_without_pulses_or_signals_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    // NaN and empty cells (pulses that never reached the plant, no target): no figure, a note.
    let dir = tmp.path().join("nan");
    fake_run(
        &dir,
        &minimal_summary(),
        &format!("{HEADER}\n1000,1.0,,NaN,NaN,,1\n1100,1.1,0,nan,,NaN,1\n"),
    );
    let (code, _, stderr) = report(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("no pulses with a ground-truth phase"),
        "{html}"
    );
    assert!(html.contains("no pulses with a phase error"));
    assert!(
        html.contains("no signals.wav"),
        "sweeps drop it: said, not failed"
    );
    assert!(html.contains("no PLV series"));
    let figures = json(&dir.join("report/figures.json"));
    assert_eq!(figures["rose"]["n"], 0);
    assert_eq!(figures["rose"]["svg"], Value::Null);
    assert!(!dir.join("report/rose.svg").exists());

    // An empty events.csv, and one with only its header: "no pulses".
    for (name, events) in [("empty", ""), ("header-only", HEADER)] {
        let dir = tmp.path().join(name);
        fake_run(&dir, &minimal_summary(), events);
        let (code, _, stderr) = report(&[dir.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {stderr}");
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(html.contains("no pulses"), "{name}");
        assert_eq!(html.matches("<svg").count(), 0, "{name}");
    }
}

#[test]
fn realtime_runs_get_the_block_time_histogram_with_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rt");
    let mut summary = minimal_summary();
    summary["driver"] = "realtime".into();
    let histogram = serde_json::json!({
        "bin_width": 0.01,
        "edges": (0..=15).map(|i| i as f64 * 0.01).collect::<Vec<_>>(),
        "counts": [0, 0, 0, 0, 5, 60, 300, 40, 8, 2, 0, 0, 0, 0, 1],
    });
    summary["block_time"] = serde_json::json!({
        "blocks": 416, "median_fraction": 0.06, "p99_fraction": 0.09, "max_fraction": 0.145,
        "histogram": histogram,
    });
    fake_run(&dir, &summary, HEADER);
    let (code, _, stderr) = report(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let svg = dir.join("report/block_time.svg");
    assert_eq!(svg_size(&svg), ("svg".to_string(), 640, 480));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("deadline"),
        "the 1.0 deadline is drawn and named"
    );
    let figures = json(&dir.join("report/figures.json"));
    assert_eq!(figures["block_time"]["histogram"], histogram);
    assert_eq!(figures["block_time"]["svg"], "block_time.svg");

    // A real-time summary from before the histogram: a note, not a failure.
    summary["block_time"]
        .as_object_mut()
        .unwrap()
        .remove("histogram");
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    let (code, _, stderr) = report(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!svg.exists(), "the stale picture is removed");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("no block-time histogram"));
}
