//! The real-time driver through a real ALSA device: a `file` PCM over `null` records exactly
//! what cpal played. No sound card is needed, only libasound (which the build needs anyway), so
//! this runs everywhere the crate builds, CI included.

mod common;

use std::path::Path;
use std::process::Command;

/// A self-contained ALSA configuration: `entrain_file` converts to S32_LE (the file plugin
/// writes an integer WAV header whatever the data) and writes a WAV to $ENTRAIN_ALSA_OUT, timed
/// by `null` (free-running, so the run goes faster than real time). The hint makes cpal list it.
const ASOUNDRC: &str = r#"
pcm.entrain_file {
    type plug
    slave {
        pcm {
            type file
            slave.pcm { type null }
            file { @func getenv vars [ ENTRAIN_ALSA_OUT ] default "/tmp/entrain_out.wav" }
            format "wav"
            truncate true
        }
        format S32_LE
    }
    hint { show on description "entrain test sink (WAV S32_LE file, null clock)" }
}
"#;

/// A fixed-stimulus profile: a damped oscillator driven by open-loop biphasic pulses, with
/// every kind of output channel mapped (and non-unit gains).
const PROFILE: &str = r#"
[run]
sample_rate_hz = 48000
block_frames = 64
duration_s = 5.0
seed = 11
latency_ms = 1.0
[model]
kind = "harmonic"
integrator = "stochastic_heun"
noise_sd = 0.1
forcing_gain = 10.0
[model.params]
a = -3.0
freq_hz = 10.0
initial_amplitude = 0.5
[sensor]
node = 0
noise_sd = 0.01
[estimator]
kind = "bandpass_hilbert"
low_hz = 8.0
high_hz = 12.0
[stimulation]
kind = "periodic"
rate_hz = 7.0
width_s = 0.002
amplitude = 1.5
shape = "biphasic"
start_s = 0.5
stop_s = 4.5
[safety]
max_amplitude = 1.0
max_pulse_rate_hz = 10.0
max_duty_cycle = 0.2
ramp_s = 0.05
[output]
channels = ["stimulus", "trigger", "observable", "phase", "silence"]
gains = [0.5, 1.0, 0.25, 1.0, 1.0]
trigger_width_ms = 2.0
"#;

/// `entrain` with ALSA configured by [`ASOUNDRC`] (written into `dir`), playing into `played`.
fn entrain_on_alsa_file(dir: &Path, played: &Path) -> Command {
    let asoundrc = dir.join("asoundrc");
    std::fs::write(&asoundrc, ASOUNDRC).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_entrain"));
    command
        .env("ALSA_CONFIG_PATH", &asoundrc)
        .env("ENTRAIN_ALSA_OUT", played);
    command
}

fn offline_frames(profile_text: &str) -> (Vec<f32>, usize) {
    let (profile, _) = entrain::profile::load("fixed", profile_text, &[]).unwrap();
    let mut run = entrain::engine::build(&profile).unwrap();
    let channels = run.processor.channels();
    // Standing in for the recorder: drain the telemetry so the offline driver never waits.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let done = std::sync::Arc::clone(&done);
        let mut telemetry = run.telemetry;
        std::thread::spawn(move || {
            use ringbuf::traits::Consumer;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                telemetry.clear();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let mut frames = Vec::new();
    entrain::engine::offline::run(
        &mut run.processor,
        &run.commands,
        run.info.total_samples,
        run.info.block_frames,
        &[],
        Some(&mut frames),
        None,
        |_| {},
    );
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    drain.join().unwrap();
    (frames, channels)
}

/// S32_LE WAV samples as f32 (the plug plugin truncates x·2³¹ toward zero).
fn s32_wav(path: &Path) -> (u16, Vec<f32>) {
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_format, spec.bits_per_sample),
        (hound::SampleFormat::Int, 32)
    );
    let data = reader
        .into_samples::<i32>()
        .map(|s| s.unwrap() as f32 / 2f32.powi(31))
        .collect();
    (spec.channels, data)
}

#[test]
fn realtime_run_through_alsa_plays_exactly_the_offline_output_on_every_channel() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("fixed.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let played = dir.path().join("played.wav");
    let out = dir.path().join("run");
    let result = entrain_on_alsa_file(dir.path(), &played)
        .args([
            "run",
            profile.to_str().unwrap(),
            "--realtime",
            "--host",
            "alsa",
        ])
        .args([
            "--device",
            "alsa:entrain_file",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "realtime run failed: {stderr}");
    // The null clock takes blocks as fast as they come: the run is told it was not paced.
    assert!(stderr.contains("did not pace the run"), "{stderr}");

    let summary = common::summary_json(&out);
    assert_eq!(summary["driver"], "realtime");
    assert_eq!(summary["ending"], "completed");
    assert_eq!(summary["realtime"]["device"], "alsa:entrain_file");
    assert_eq!(summary["samples"], 5 * 48_000);

    let (expected, channels) = offline_frames(PROFILE);
    assert_eq!(channels, 5);
    let (file_channels, played) = s32_wav(&played);
    assert_eq!(file_channels as usize, channels);
    // The device plays silence while the stream starts and is checked; the run's first frame
    // comes right after, and the summary says where.
    let preroll = summary["realtime"]["preroll_frames"].as_u64().unwrap() as usize * channels;
    assert!(played[..preroll].iter().all(|&x| x == 0.0));
    let played = &played[preroll..];
    assert!(
        played.len() >= expected.len(),
        "the device got {} of {} samples",
        played.len(),
        expected.len()
    );
    // Offset 0 after the pre-roll: the engine's frames, exactly.
    let quantum = 2f32.powi(-30);
    for (i, (got, want)) in played.iter().zip(&expected).enumerate() {
        assert!(
            (got - want).abs() <= quantum.max(want.abs() * 1e-7),
            "frame {}, channel {}: played {got}, offline {want}",
            i / channels,
            i % channels
        );
    }
    // After the run the device hears silence.
    assert!(played[expected.len()..].iter().all(|&x| x == 0.0));
    // The mapped channels carry what they should: pulses clamped to gain · max_amplitude,
    // a trigger marker per pulse, and silence.
    let column = |c: usize| {
        expected
            .iter()
            .skip(c)
            .step_by(channels)
            .copied()
            .collect::<Vec<f32>>()
    };
    let stimulus = column(0);
    assert!((stimulus.iter().fold(0.0f32, |m, v| m.max(v.abs())) - 0.5).abs() < 1e-6);
    let trigger = column(1);
    let marker_onsets = trigger
        .windows(2)
        .filter(|w| w[0] == 0.0 && w[1] == 1.0)
        .count();
    let pulses = summary["pulses"].as_u64().unwrap() as usize;
    assert!(
        pulses > 20 && marker_onsets == pulses,
        "{marker_onsets} markers, {pulses} pulses"
    );
    assert!(column(4).iter().all(|&x| x == 0.0));
}

/// SIGINT during a real-time run: exit code 130, outputs complete and readable, and the last
/// samples the device played ramp down to exactly zero.
#[test]
fn ctrl_c_during_a_realtime_run_ramps_the_device_output_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let played = dir.path().join("played.wav");
    let out = dir.path().join("run");
    // A long tACS run: the output is non-zero almost everywhere, so the ramp shows.
    let child = entrain_on_alsa_file(dir.path(), &played)
        .args([
            "run",
            "profiles/harmonic_resonance.toml",
            "--realtime",
            "--host",
            "alsa",
        ])
        .args([
            "--device",
            "alsa:entrain_file",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        // Long enough never to end by itself (and within signals.wav's 4 GiB).
        .args([
            "--duration",
            "4000",
            "--set",
            "stimulation.start_s=0",
            "--set",
            "stimulation.stop_s=4000",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::fs::metadata(&played).map_or(0, |m| m.len()) < 4_000_000 {
        assert!(
            started.elapsed().as_secs() < 60,
            "the device was never written"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(130), "{stderr}");

    let summary = common::summary_json(&out);
    assert_eq!(summary["ending"], "interrupted");
    assert_eq!(summary["driver"], "realtime");
    let samples = summary["samples"].as_u64().unwrap() as usize;
    let recorded = hound::WavReader::open(out.join("signals.wav")).unwrap();
    assert_eq!(
        recorded.duration() as usize,
        samples,
        "every processed sample was recorded"
    );

    let (channels, played) = s32_wav(&played);
    assert_eq!(channels, 1);
    let preroll = summary["realtime"]["preroll_frames"].as_u64().unwrap() as usize;
    let played = &played[preroll..];
    // What the device played: the engine's samples, then silence after the stop.
    assert!(played.len() >= samples);
    let ramp = (0.5 * 48_000.0) as usize; // the profile's ramp_s
    let tail = &played[samples - ramp..samples];
    let head_peak = played[samples - 2 * ramp..samples - ramp]
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        head_peak > 0.5,
        "the sine was playing before the stop ({head_peak})"
    );
    // Raised-cosine ramp: the envelope falls monotonically to zero over ramp_s.
    let envelope = |chunk: &[f32]| chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let quarters: Vec<f32> = tail.chunks(ramp / 4).map(envelope).collect();
    assert!(quarters.windows(2).all(|w| w[1] <= w[0]), "{quarters:?}");
    assert_eq!(played[samples - 1], 0.0);
    assert!(played[samples..].iter().all(|&x| x == 0.0));
}

/// A device name that matches nothing is bad input: exit 2, the alternatives listed, and no
/// output folder left behind.
#[test]
fn an_unknown_device_lists_the_alternatives_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let played = dir.path().join("played.wav");
    let result = entrain_on_alsa_file(dir.path(), &played)
        .args([
            "run",
            "--realtime",
            "--host",
            "alsa",
            "--device",
            "no-such-card",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("output device 'no-such-card' not found"),
        "{stderr}"
    );
    assert!(
        stderr.contains("alsa:entrain_file"),
        "the alternatives are listed: {stderr}"
    );
    assert!(!out.exists());
}
