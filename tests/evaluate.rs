//! The estimator benchmark: its scoring against ground truth, every estimator's accuracy on
//! clean and noisy rhythms, and the `entrain evaluate` command.

use entrain::analysis::wrap_angle;
use entrain::estimate::{Estimate, PhaseEstimator};
use entrain::evaluate::{self, EstimatorSpec, Signal};
use std::f64::consts::TAU;

/// A clean cosine `cos(2π f t + 0.7)` at `fs`, with its exact phase as the truth.
fn cosine(freq_hz: f64, fs: f64, seconds: f64, band: (f64, f64)) -> Signal {
    let n = (fs * seconds) as usize;
    let truth: Vec<f64> = (0..n)
        .map(|k| wrap_angle(TAU * freq_hz * k as f64 / fs + 0.7))
        .collect();
    Signal {
        name: format!("cosine_{freq_hz}hz"),
        sample_rate_hz: fs,
        x: truth.iter().map(|p| p.cos()).collect(),
        truth_amplitude: vec![1.0; n],
        truth,
        band,
        snr_db: None,
    }
}

/// An oracle that knows the cosine of [`cosine`] at 10 Hz, 1 kHz, and reports its phase
/// `OFFSET_DEG` late, plus ±`SPREAD_DEG` alternating.
struct Oracle {
    n: u64,
    predict: f64,
}
const OFFSET_DEG: f64 = 10.0;
const SPREAD_DEG: f64 = 5.0;

impl PhaseEstimator for Oracle {
    fn process(&mut self, _x: f64) -> Estimate {
        let jitter = if self.n.is_multiple_of(2) {
            SPREAD_DEG
        } else {
            -SPREAD_DEG
        };
        let at = |n: f64| TAU * 10.0 * n / 1000.0 + 0.7 + (OFFSET_DEG + jitter).to_radians();
        let phase = wrap_angle(at(self.n as f64));
        let predicted = wrap_angle(at(self.n as f64 + self.predict));
        self.n += 1;
        Estimate {
            phase_rad: phase,
            predicted_phase_rad: predicted,
            amplitude: 1.0,
            freq_hz: 10.0,
            confidence: 1.0,
        }
    }
    fn reset(&mut self) {
        self.n = 0;
    }
    fn settling_samples(&self) -> usize {
        0
    }
}

fn oracle() -> EstimatorSpec {
    EstimatorSpec {
        name: "oracle",
        build: |_, _, predict, _| Ok(Box::new(Oracle { n: 0, predict })),
    }
}

#[test]
fn scoring_recovers_a_known_bias_and_spread_at_any_latency() {
    let signal = cosine(10.0, 1000.0, 10.0, (8.0, 12.0));
    for latency in [0.0, 0.013, 0.05] {
        let e = evaluate::evaluate(&signal, &oracle(), latency).unwrap();
        // An odd number of scored samples leaves one ±5° unpaired: 5°/n off at most.
        assert!((e.all.bias_deg - OFFSET_DEG).abs() < 1e-2, "{e:?}");
        // Errors of ±5° around the bias: R = cos 5°, so the circular SD is sqrt(−2 ln cos 5°).
        let sd = (-2.0 * SPREAD_DEG.to_radians().cos().ln())
            .sqrt()
            .to_degrees();
        assert!((e.all.sd_deg - sd).abs() < 1e-2, "{} vs {sd}", e.all.sd_deg);
        let accuracy = 1.0 - OFFSET_DEG / 180.0;
        assert!(
            (e.all.accuracy - accuracy).abs() < 1e-4,
            "{}",
            e.all.accuracy
        );
        // Scored from two low-edge cycles (2/8 Hz) in to two before the end, minus the latency.
        let margin = 250;
        let lag = (latency * 1000.0_f64).round() as usize;
        assert_eq!(e.all.n, 10_000 - 2 * margin - lag);
        assert_eq!(e.quartiles.iter().map(|q| q.n).sum::<usize>(), e.all.n);
    }
}

/// Each estimator on a clean in-band cosine: bias < 1°, SD < 2° once settled, now and
/// predicted 20 ms ahead.
#[test]
fn every_estimator_tracks_a_clean_cosine_within_a_degree() {
    for (fs, seconds) in [(1000.0, 30.0), (48_000.0, 12.0)] {
        let signal = cosine(10.0, fs, seconds, (8.0, 12.0));
        for spec in evaluate::estimators() {
            for latency in [0.0, 0.02] {
                let e = evaluate::evaluate(&signal, &spec, latency).unwrap();
                assert!(
                    e.all.bias_deg.abs() < 1.0 && e.all.sd_deg < 2.0,
                    "{} at {fs} Hz, latency {latency} s: bias {:.3}°, SD {:.3}°",
                    spec.name,
                    e.all.bias_deg,
                    e.all.sd_deg
                );
            }
        }
    }
}

/// The synthetic Stuart–Landau rhythm at 10 dB SNR in 1/f background: every estimator's
/// circular SD below 30°, the best below 15°.
#[test]
fn on_a_noisy_stuart_landau_rhythm_every_estimator_stays_within_30_degrees() {
    let set = evaluate::synthetic_set(1000.0, 30.0, 3).unwrap();
    let signal = set.iter().find(|s| s.name == "sl_snr10db").unwrap();
    let mut best = f64::MAX;
    for spec in evaluate::estimators() {
        let e = evaluate::evaluate(signal, &spec, 0.0).unwrap();
        assert!(
            e.all.sd_deg < 30.0,
            "{}: SD {:.2}°",
            spec.name,
            e.all.sd_deg
        );
        best = best.min(e.all.sd_deg);
    }
    assert!(best < 15.0, "best SD {best:.2}°");
}

#[test]
fn the_synthetic_set_has_every_snr_and_protocol_with_finite_truth() {
    let set = evaluate::synthetic_set(1000.0, 10.0, 1).unwrap();
    let names: Vec<&str> = set.iter().map(|s| s.name.as_str()).collect();
    for snr in evaluate::SNRS_DB {
        assert!(
            names.contains(&format!("sl_snr{snr}db").as_str()),
            "{names:?}"
        );
    }
    for name in [
        "jansen_rit_snr10db",
        "bursts_snr10db",
        "drift_snr10db",
        "cosine_2.5hz_256hz",
    ] {
        assert!(names.contains(&name), "{names:?}");
    }
    for s in &set {
        assert_eq!(s.x.len(), s.truth.len());
        assert!(s.x.iter().all(|x| x.is_finite()), "{}", s.name);
        assert!(s
            .truth
            .iter()
            .all(|p| p.is_finite() && p.abs() <= std::f64::consts::PI));
    }
    // The SNR is the clean-to-background power ratio: at 20 dB the record is within 10 % of
    // the clean rhythm's power, at −5 dB the background dominates.
    let power = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let p20 = power(&set.iter().find(|s| s.name == "sl_snr20db").unwrap().x);
    let p_5 = power(&set.iter().find(|s| s.name == "sl_snr-5db").unwrap().x);
    assert!(p_5 > 3.0 * p20, "{p_5} vs {p20}");
}

fn entrain(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entrain"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_scores_a_recorded_csv_and_writes_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("theta.csv");
    let mut text = String::from("time_s,value\n");
    for k in 0..20_000 {
        let t = k as f64 / 1000.0;
        text.push_str(&format!("{t},{}\n", (TAU * 7.0 * t).cos()));
    }
    std::fs::write(&csv, text).unwrap();
    let out = dir.path().join("eval");
    let (code, stdout, stderr) = entrain(&[
        "evaluate",
        "--file",
        csv.to_str().unwrap(),
        "--band",
        "5:9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("theta"), "{stdout}");
    // Whole samples of latency go by without a note.
    assert!(!stderr.contains("--latency"), "{stderr}");
    let table = std::fs::read_to_string(out.join("evaluate.csv")).unwrap();
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some(evaluate::EVALUATE_HEADER));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), evaluate::estimators().len());
    for row in rows {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(f[0], "theta");
        let sd: f64 = f[3].parse().unwrap();
        assert!(sd < 2.0, "{row}");
    }
    let strata = std::fs::read_to_string(out.join("evaluate_strata.csv")).unwrap();
    assert_eq!(strata.lines().count(), 1 + 5 * evaluate::estimators().len());
    // A latency between samples says what it is scored as.
    let (code, _, stderr) = entrain(&[
        "evaluate",
        "--file",
        csv.to_str().unwrap(),
        "--band",
        "5:9",
        "--latency",
        "0.0016",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("1.600 samples") && stderr.contains("scored with 2 samples (2.000 ms)"),
        "{stderr}"
    );

    let (code, _, stderr) =
        entrain(&["evaluate", "--file", csv.to_str().unwrap(), "--band", "9-5"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("LO:HI"), "{stderr}");
    let (code, _, stderr) = entrain(&["evaluate", "--file", csv.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--band"), "{stderr}");
}

/// Real data (skipped where the recordings are absent): on the rat CA1 theta recording every
/// estimator scores finite figures, and the best of entrain's own estimators beats both
/// published baselines, AR forward prediction and ecHT.
#[test]
fn real_theta_recording_is_scored() {
    let path = std::path::Path::new("../shared/data/rat_ca1_theta_1250hz.wav");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let signal = evaluate::load_recording(path, (6.0, 10.0), 0, None).unwrap();
    assert_eq!(signal.sample_rate_hz, 1250.0);
    for spec in evaluate::estimators() {
        let e = evaluate::evaluate(&signal, &spec, 0.0).unwrap();
        assert!(
            e.all.sd_deg.is_finite() && e.all.sd_deg < 90.0,
            "{}: {e:?}",
            spec.name
        );
    }
}

/// The synthetic run draws error vs SNR with one line per estimator.
#[test]
fn the_synthetic_run_plots_error_against_snr_for_every_estimator() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = entrain(&[
        "evaluate",
        "--synthetic",
        "--duration",
        "12",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("sl_snr-5db") && stdout.contains("cosine_2.5hz_256hz"));
    let svg = std::fs::read_to_string(dir.path().join("error_vs_snr.svg")).unwrap();
    assert!(svg.contains("SNR (dB)"), "no x label");
    for spec in evaluate::estimators() {
        // plotters writes each text on its own line inside <text>.
        let key = format!("\n{}\n</text>", spec.name);
        assert!(svg.contains(&key), "no line for {}", spec.name);
    }
    let rows = std::fs::read_to_string(dir.path().join("evaluate.csv")).unwrap();
    let expected = (2 * evaluate::SNRS_DB.len() + 3) * evaluate::estimators().len();
    assert_eq!(rows.lines().count(), 1 + expected, "{rows}");
}

/// A two-channel 16-bit WAV at 1 kHz: silence on channel 0, a 10 Hz cosine on channel 1.
fn silent_then_rhythm(path: &std::path::Path) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 1000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for k in 0..20_000 {
        w.write_sample(0i16).unwrap();
        let x = 0.5 * (TAU * 10.0 * k as f64 / 1000.0).cos();
        w.write_sample((x * 32767.0).round() as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// A record without a rhythm in its band would score perfectly (the truth of silence is
/// arg 0 = 0) or on noise: it is refused, and the channel that holds the rhythm is scored.
#[test]
fn a_record_is_scored_only_on_the_channel_and_band_that_hold_a_rhythm() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("two.wav");
    silent_then_rhythm(&wav);
    let Err(e) = evaluate::load_recording(&wav, (8.0, 12.0), 0, None) else {
        panic!("silence refused");
    };
    assert!(
        e.contains("no rhythm in 8–12 Hz") && e.contains("--channel"),
        "{e}"
    );
    let signal = evaluate::load_recording(&wav, (8.0, 12.0), 1, None).unwrap();
    let e = evaluate::evaluate(&signal, &evaluate::estimators()[0], 0.0).unwrap();
    assert!(e.all.sd_deg < 2.0, "{e:?}");
    let Err(e) = evaluate::load_recording(&wav, (8.0, 12.0), 2, None) else {
        panic!("no channel 2");
    };
    assert!(
        e.contains("--channel 2") && e.contains("2 channel(s)"),
        "{e}"
    );
    // A band the filters could not settle in (it hung the command before).
    for band in [(10.0, 10.000001), (1e-300, 10.0)] {
        let Err(e) = evaluate::load_recording(&wav, band, 1, None) else {
            panic!("band refused");
        };
        assert!(e.contains("too low or too narrow"), "{e}");
    }
    let (code, _, stderr) = entrain(&[
        "evaluate",
        "--file",
        wav.to_str().unwrap(),
        "--band",
        "8:12",
        "--out",
        dir.path().join("eval").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no rhythm"), "{stderr}");
}

/// CSV records must keep one layout and an even clock: a gap would be scored as phase error.
#[test]
fn csv_records_with_gaps_mixed_rows_or_two_rates_are_refused_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: &dyn Fn(usize) -> String| {
        let path = dir.path().join(name);
        let mut text = String::from("# exported by hand\ntime_s,value\n");
        for k in 0..5000 {
            text.push_str(&rows(k));
        }
        std::fs::write(&path, text).unwrap();
        path
    };
    let cosine = |t: f64| (TAU * 10.0 * t).cos();
    let even = write("even.csv", &|k| {
        let t = k as f64 / 1000.0;
        format!("{t},{}\n", cosine(t))
    });
    let signal = evaluate::load_recording(&even, (8.0, 12.0), 0, None).unwrap();
    assert!((signal.sample_rate_hz - 1000.0).abs() < 1e-6);
    // A comment before the header is allowed; a rate given twice is not.
    let Err(e) = evaluate::load_recording(&even, (8.0, 12.0), 0, Some(500.0)) else {
        panic!("two rates refused");
    };
    assert!(e.contains("--csv-rate") && e.contains("time column"), "{e}");
    let gap = write("gap.csv", &|k| {
        let t = k as f64 / 1000.0 + if k >= 2500 { 5.0 } else { 0.0 };
        format!("{t},{}\n", cosine(t))
    });
    let Err(e) = evaluate::load_recording(&gap, (8.0, 12.0), 0, None) else {
        panic!("gap refused");
    };
    // Row 2500 is line 2503 (a comment and a header first).
    assert!(
        e.contains("gap.csv:2503") && e.contains("evenly spaced"),
        "{e}"
    );
    // A corrupt huge value is refused like a non-finite one, naming the sample.
    let huge = write("huge.csv", &|k| {
        let t = k as f64 / 1000.0;
        format!("{t},{}\n", if k == 40 { 1e30 } else { cosine(t) })
    });
    let Err(e) = evaluate::load_recording(&huge, (8.0, 12.0), 0, None) else {
        panic!("a 1e30 sample refused");
    };
    assert!(e.contains("sample 40") && e.contains("within ±1e12"), "{e}");
    let mixed = write("mixed.csv", &|k| {
        let t = k as f64 / 1000.0;
        if k == 10 {
            format!("{}\n", cosine(t))
        } else {
            format!("{t},{}\n", cosine(t))
        }
    });
    let Err(e) = evaluate::load_recording(&mixed, (8.0, 12.0), 0, None) else {
        panic!("mixed rows refused");
    };
    assert!(e.contains("mixed.csv:13") && e.contains("1 column"), "{e}");
}
