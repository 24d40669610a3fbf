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
fn the_true_phase_channel_holds_the_offline_truth_the_events_are_scored_against() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("sine.wav");
    let rate = 4_000;
    write_sine(&wav, rate, 6.0, 10.0, true);
    let sets = [
        file_set(&wav),
        "sensor.noise_sd=0".into(),
        "run.sample_rate_hz=4000".into(),
        "run.duration_s=6".into(),
        "stimulation.start_s=1".into(),
        "stimulation.stop_s=6".into(),
        "stimulation.amplitude_threshold=0.1".into(),
    ];
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let profile = common::quickstart(&sets);
    let out = dir.path().join("run");
    let summary = common::run(&profile, &out);
    assert_eq!(
        summary.ground_truth_until_s, None,
        "the whole run is scored"
    );
    let mut reader = hound::WavReader::open(out.join("signals.wav")).unwrap();
    let channels = usize::from(reader.spec().channels);
    let truth: Vec<f32> = reader
        .samples::<f32>()
        .map(Result::unwrap)
        .skip(channels - 1)
        .step_by(channels)
        .collect();
    assert_eq!(
        summary.channels.last().map(String::as_str),
        Some("true_phase")
    );
    // Away from the record's ends, the channel is the recorded cosine's phase (it was all
    // zeros: the truth was computed when the run ended, after the channel was written).
    let margin = rate as usize / 2;
    let wrapped = |d: f64| d.sin().atan2(d.cos()).abs();
    let worst = truth[margin..truth.len() - margin]
        .iter()
        .enumerate()
        .map(|(i, &phase)| {
            let k = i + margin;
            let exact = TAU * 10.0 * k as f64 / f64::from(rate) + 0.3;
            wrapped(f64::from(phase) - exact)
        })
        .fold(0.0, f64::max);
    assert!(
        worst < 2f64.to_radians(),
        "worst {:.2}°",
        worst.to_degrees()
    );
    // The events are scored against the same channel, at each pulse's arrival.
    let latency = profile.run.latency_samples() as u64;
    let events = common::events(&out);
    let scored: Vec<_> = events.iter().filter(|e| e.true_deg.is_some()).collect();
    assert!(scored.len() > 30, "{} pulses scored", scored.len());
    for e in scored {
        let channel = f64::from(truth[(e.sample + latency) as usize]).to_degrees();
        let d = wrapped((channel - e.true_deg.unwrap()).to_radians());
        assert!(
            d < 1e-4,
            "pulse at {}: {channel}° against {:?}",
            e.sample,
            e.true_deg
        );
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
    // What the header shows (rate, channels, existence) is refused when the profile loads, so
    // that `check` and a sweep's pre-check see it; the samples themselves when the run is built.
    let refused_at_load = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        entrain::profile::load("quickstart", entrain::profile::QUICKSTART, &sets)
            .expect_err("refused")
            .to_string()
    };
    let build = |sets: &[&str]| {
        entrain::engine::build(&common::quickstart(sets))
            .err()
            .unwrap()
    };

    let err = refused_at_load(&[&file_set(&wav), "run.duration_s=1"]);
    assert!(
        err.contains("sensor.file")
            && err.contains("44100 Hz")
            && err.contains("run.sample_rate_hz = 44100"),
        "{err}"
    );
    let err = refused_at_load(&[
        &file_set(&wav),
        "run.duration_s=1",
        "run.sample_rate_hz=44100",
        "sensor.channel=1",
    ]);
    assert!(
        err.contains("sensor.channel") && err.contains("1 channel"),
        "{err}"
    );
    // A rate no run can take: the fix offered is resampling, not a rate `check` refuses.
    let slow = dir.path().join("at_50hz.wav");
    write_sine(&slow, 50, 4.0, 2.0, true);
    let err = refused_at_load(&[&file_set(&slow), "run.duration_s=1"]);
    assert!(
        err.contains("50 Hz") && err.contains("resample") && !err.contains("run.sample_rate_hz ="),
        "{err}"
    );
    let missing = dir.path().join("nowhere.wav");
    let err = refused_at_load(&[&file_set(&missing)]);
    assert!(
        err.contains("nowhere.wav") && err.contains("does not exist"),
        "{err}"
    );
    let text = dir.path().join("not_audio.wav");
    std::fs::write(&text, "time,value\n0,1\n").unwrap();
    let err = refused_at_load(&[&file_set(&text)]);
    assert!(err.contains("not_audio.wav"), "{err}");

    // A recording with a NaN, or a corrupt huge sample, in it.
    for (name, bad) in [("nan", f32::NAN), ("huge", 1e30)] {
        let path = dir.path().join(format!("{name}.wav"));
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for k in 0..48_000 {
            w.write_sample(if k == 100 { bad } else { 0.0 }).unwrap();
        }
        w.finalize().unwrap();
        let err = build(&[&file_set(&path), "run.duration_s=1"]);
        assert!(
            err.contains("frame 100") && err.contains("within ±1e12"),
            "{err}"
        );
    }

    // Both a recording and a sound-card input: a profile error on sensor.file.
    let sets = [file_set(&wav), "audio.input_device=\"default\"".into()];
    let e = entrain::profile::load("quickstart", entrain::profile::QUICKSTART, &sets)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("sensor.file") && e.contains("not both"), "{e}");
}

/// A Kalman baseline taken from the sensor's own recording is read from the sensor's channel
/// (it used to be channel 0 whatever the sensor read); another file from channel 0, unless
/// `training_channel` says otherwise.
#[test]
fn the_kalman_baseline_comes_from_the_sensors_channel_of_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    // Channel 0 silent, channel 1 a 10 Hz rhythm, 12 s at the quickstart's rate.
    let wav = dir.path().join("two.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    for k in 0..12 * 48_000 {
        w.write_sample(0i16).unwrap();
        let x = 0.5 * (TAU * 10.0 * k as f64 / 48_000.0).cos();
        w.write_sample((x * 32767.0).round() as i16).unwrap();
    }
    w.finalize().unwrap();
    let other = dir.path().join("mono.wav");
    write_sine(&other, 48_000, 12.0, 10.0, true);
    let load = |training: &Path, extra: &[&str]| {
        let mut sets = vec![
            file_set(&wav),
            "sensor.channel=1".to_string(),
            "run.duration_s=10".into(),
            format!(
                "estimator={{kind = \"kalman\", low_hz = 8, high_hz = 12, oscillators = 1, \
                 train_s = 5, training_file = \"{}\"}}",
                training.display()
            ),
        ];
        sets.extend(extra.iter().map(|s| s.to_string()));
        entrain::profile::load("quickstart", entrain::profile::QUICKSTART, &sets)
    };
    let channel = |p: &entrain::profile::Profile| match &p.estimator {
        entrain::profile::EstimatorSection::Kalman(k) => k.training_channel,
        other => panic!("{other:?}"),
    };
    let (same, _) = load(&wav, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(channel(&same), Some(1));
    let (mono, _) = load(&other, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(channel(&mono), Some(0));
    // Told to train on the silent channel, the fit fails and says why.
    let e = load(&wav, &["estimator.training_channel=0"])
        .expect_err("a silent baseline cannot be fitted")
        .to_string();
    assert!(e.contains("estimator"), "{e}");
    let e = load(&other, &["estimator.training_channel=3"])
        .expect_err("mono has no channel 3")
        .to_string();
    assert!(
        e.contains("estimator.training_channel") && e.contains("1 channel(s)"),
        "{e}"
    );
}

/// Phase-locked pulses before the estimator has settled land at arbitrary phases: loading
/// such a profile warns, with the time to wait.
#[test]
fn stimulating_before_the_estimator_settles_is_warned_about() {
    let load = |start: &str| {
        entrain::profile::load(
            "quickstart",
            entrain::profile::QUICKSTART,
            &[format!("stimulation.start_s={start}")],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .1
    };
    let early = load("0");
    assert!(
        early
            .iter()
            .any(|w| w.contains("stimulation.start_s") && w.contains("settles")),
        "{early:?}"
    );
    assert!(
        load("5").iter().all(|w| !w.contains("settles")),
        "{:?}",
        load("5")
    );
}
