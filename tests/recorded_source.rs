//! A recording as the sensor's source: the estimator and policy lock to a recorded rhythm, and
//! bad recordings are refused at build time with errors that name the file and the fix.

mod common;

use std::f64::consts::TAU;
use std::path::Path;

/// Write a mono recording of `amplitude · cos(2π f t + phase)`, float or 16-bit integer.
fn write_sine(path: &Path, rate: u32, seconds: f64, freq_hz: f64, float: bool) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = (seconds * f64::from(rate)).round() as usize;
    for k in 0..n {
        let x = 0.5 * (TAU * freq_hz * k as f64 / f64::from(rate) + 0.3).cos();
        if float {
            w.write_sample(x as f32).unwrap();
        } else {
            w.write_sample((x * 32767.0).round() as i16).unwrap();
        }
    }
    w.finalize().unwrap();
}

fn file_set(path: &Path) -> String {
    format!("sensor.file=\"{}\"", path.display())
}

#[test]
fn pulses_lock_to_a_recorded_sine_within_ten_degrees() {
    let dir = tempfile::tempdir().unwrap();
    for float in [true, false] {
        let wav = dir.path().join(format!("sine_{float}.wav"));
        write_sine(&wav, 48_000, 6.0, 10.0, float);
        for target in [0.0, 90.0, 180.0] {
            let sets = [
                file_set(&wav),
                "sensor.noise_sd=0".into(),
                "run.duration_s=6".into(),
                "stimulation.start_s=1".into(),
                "stimulation.stop_s=6".into(),
                "stimulation.amplitude_threshold=0.1".into(),
                format!("stimulation.target_phase_deg={target}"),
            ];
            let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
            let profile = common::quickstart(&sets);
            let out = dir.path().join(format!("run_{float}_{target}"));
            common::run(&profile, &out);
            let errors: Vec<f64> = common::events(&out)
                .iter()
                .filter_map(|e| e.error_deg)
                .collect();
            assert!(
                errors.len() > 30,
                "{} pulses with a ground truth",
                errors.len()
            );
            let worst = errors.iter().map(|e| e.abs()).fold(0.0, f64::max);
            assert!(
                worst < 10.0,
                "target {target}°, float {float}: worst pulse {worst:.2}° off"
            );
        }
    }
}

#[test]
fn a_looped_recording_outlasts_itself_and_a_short_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("one_second.wav");
    // Whole cycles, so the loop is seamless.
    write_sine(&wav, 48_000, 1.0, 10.0, true);
    let file = file_set(&wav);
    let short = common::quickstart(&[&file, "run.duration_s=3"]);
    let err = entrain::engine::build(&short).err().expect("refused");
    assert!(
        err.contains("sensor.file") && err.contains("lasts 1.000 s") && err.contains("sensor.loop"),
        "{err}"
    );

    let looped = common::quickstart(&[
        &file,
        "sensor.loop=true",
        "sensor.noise_sd=0",
        "run.duration_s=3",
        "stimulation.start_s=0.5",
        "stimulation.stop_s=3",
        "stimulation.amplitude_threshold=0.1",
    ]);
    let out = dir.path().join("looped");
    common::run(&looped, &out);
    let events = common::events(&out);
    // Pulses keep coming in the third second, two loops in, and still land on the peak.
    let late: Vec<f64> = events
        .iter()
        .filter(|e| e.sample > 2 * 48_000)
        .filter_map(|e| e.error_deg)
        .collect();
    assert!(late.len() >= 5, "{} pulses after 2 s", late.len());
    assert!(late.iter().all(|e| e.abs() < 10.0), "{late:?}");
}

#[test]
fn bad_recordings_are_refused_with_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("at_44k.wav");
    write_sine(&wav, 44_100, 1.0, 10.0, true);
    let build = |sets: &[&str]| {
        entrain::engine::build(&common::quickstart(sets))
            .err()
            .unwrap()
    };

    let err = build(&[&file_set(&wav), "run.duration_s=1"]);
    assert!(
        err.contains("44100 Hz") && err.contains("run.sample_rate_hz = 44100"),
        "{err}"
    );
    let err = build(&[&file_set(&wav), "sensor.channel=1"]);
    assert!(
        err.contains("sensor.channel") && err.contains("1 channel"),
        "{err}"
    );
    let missing = dir.path().join("nowhere.wav");
    let err = build(&[&file_set(&missing)]);
    assert!(
        err.contains("nowhere.wav") && err.contains("cannot read"),
        "{err}"
    );
    let text = dir.path().join("not_audio.wav");
    std::fs::write(&text, "time,value\n0,1\n").unwrap();
    let err = build(&[&file_set(&text)]);
    assert!(err.contains("not_audio.wav"), "{err}");

    // A recording with a NaN in it.
    let nan = dir.path().join("nan.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&nan, spec).unwrap();
    for k in 0..48_000 {
        w.write_sample(if k == 100 { f32::NAN } else { 0.0 })
            .unwrap();
    }
    w.finalize().unwrap();
    let err = build(&[&file_set(&nan), "run.duration_s=1"]);
    assert!(
        err.contains("frame 100") && err.contains("non-finite"),
        "{err}"
    );

    // Both a recording and a sound-card input: a profile error on sensor.file.
    let sets = [file_set(&wav), "audio.input_device=\"default\"".into()];
    let e = entrain::profile::load("quickstart", entrain::profile::QUICKSTART, &sets)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("sensor.file") && e.contains("not both"), "{e}");
}
