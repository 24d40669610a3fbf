//! The real-time path never allocates: a counting global allocator armed around
//! `process_block` for many blocks of every shipped kind of run, every estimator, every
//! source of the sensor, every command and the ramp-down that ends a run.

use entrain::engine;
use entrain::engine::Command;
use entrain::profile;
use entrain::stim::StimCommand;
use std::path::Path;

mod alloc_count;
use alloc_count::count_allocations;

/// The input-link test keeps real time between its callbacks, which the CPU-heavy tests of this
/// binary, running beside it on a small machine, would disturb: they take turns.
static CPU: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cpu() -> std::sync::MutexGuard<'static, ()> {
    // A test that failed holding it has reported already; the others still run.
    CPU.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a counted stretch of a run did.
struct Processed {
    /// Allocations, reallocations and frees inside `process_block`.
    allocations: usize,
    /// Samples processed.
    samples: u64,
    /// The estimator's settling time, samples: past it, its steady-state path ran too.
    settling: u64,
    /// Largest |value| per output channel.
    peaks: Vec<f32>,
}

/// Commands a control thread sends, by fraction of the run: each kind, in and out of range.
const SCRIPT: [(usize, Command); 7] = [
    (20, Command::Stim(StimCommand::SetTargetPhaseDeg(90.0))),
    (20, Command::Stim(StimCommand::SetAmplitude(1e9))),
    (35, Command::Stim(StimCommand::Stop)),
    (50, Command::Stim(StimCommand::Start)),
    (60, Command::Stim(StimCommand::SetTargetPhaseDeg(f64::NAN))),
    (60, Command::Stim(StimCommand::SetAmplitude(-1.0))),
    (65, Command::Stim(StimCommand::SetAmplitude(0.5))),
];

/// Run `path` with `sets` for at most 3000 blocks, the [`SCRIPT`] applied along the way and
/// the run ended by `EndRun` at 90 %, counting allocations inside every `process_block`
/// (commands are sent outside the guard, and applied inside it) until the ramp-down is over,
/// past the run's end if need be (as the real-time driver does).
fn allocations_while_processing(path: &str, sets: &[&str]) -> Processed {
    let text = std::fs::read_to_string(path).unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let (profile, _) = profile::load(path, &text, &sets).unwrap_or_else(|e| panic!("{e}"));
    let mut run = engine::build(&profile).unwrap();
    let block = profile.run.block_frames;
    let channels = run.processor.channels();
    let mut out = vec![0.0f32; block * channels];
    let blocks = (profile.run.total_samples() as usize / block).min(3000);
    let mut processed = Processed {
        allocations: 0,
        samples: 0,
        settling: run.info.settling_samples as u64,
        peaks: vec![0.0; channels],
    };
    // A second of blocks: twice the longest shipped ramp-down (0.5 s).
    let ramp_blocks = (profile.run.sample_rate_hz / block as f64).ceil() as usize;
    for k in 0..blocks + ramp_blocks {
        for (percent, command) in SCRIPT {
            if k == blocks * percent / 100 {
                run.commands.try_send(command).unwrap();
            }
        }
        if k == blocks * 9 / 10 {
            run.commands.try_send(Command::EndRun).unwrap();
        }
        // The test stands in for the recorder thread: keep the telemetry ring drained.
        if k % 8 == 0 {
            use ringbuf::traits::Consumer;
            run.telemetry.clear();
        }
        processed.allocations += count_allocations(|| run.processor.process_block(&mut out)).1;
        for frame in out.chunks_exact(channels) {
            for (peak, v) in processed.peaks.iter_mut().zip(frame) {
                *peak = peak.max(v.abs());
            }
        }
        if run.processor.finished() {
            break;
        }
    }
    assert!(
        run.processor.finished(),
        "{path} {sets:?}: the ramp-down after EndRun did not end within the run"
    );
    processed.samples = run.processor.sample();
    processed
}

/// A stimulation-free quickstart run's `signals.wav` (its first channel is the observable):
/// a recorded rhythm for the sensor to read and the Kalman model to be fitted on.
fn baseline_recording(dir: &Path) -> std::path::PathBuf {
    let (profile, _) = profile::load(
        "q",
        profile::QUICKSTART,
        &[
            "stimulation.kind=\"none\"".into(),
            "run.duration_s=8".into(),
        ],
    )
    .unwrap();
    let built = engine::build(&profile).unwrap();
    let interrupt = std::sync::atomic::AtomicBool::new(false);
    entrain::run::offline(&profile, built, dir, &interrupt, |_| {}).unwrap();
    dir.join("signals.wav")
}

#[test]
fn the_guard_counts_allocations_on_the_armed_thread() {
    let (boxed, n) = count_allocations(|| std::hint::black_box(Box::new(42u64)));
    drop(boxed);
    assert!(n > 0);
}

#[test]
fn process_block_never_allocates() {
    let _turn = cpu();
    for (path, sets) in [
        ("profiles/quickstart.toml", &["stimulation.start_s=0.1"][..]),
        ("profiles/kuramoto_network.toml", &[][..]),
        ("profiles/harmonic_resonance.toml", &[][..]),
        ("profiles/wilson_cowan.toml", &[][..]),
        ("profiles/jansen_rit.toml", &[][..]),
        ("profiles/mpr_ping.toml", &[][..]),
        ("profiles/horn_network.toml", &[][..]),
        ("profiles/rate_bistable.toml", &[][..]),
        (
            "profiles/baier_grid_pulses.toml",
            &["output.nodes_rate_hz=1000"][..],
        ),
        ("profiles/sl_dn_field.toml", &[][..]),
        // SL's three step paths: one fused pass (delays, stochastic Heun), stage by stage with
        // delays (RK4) and stage by stage with instantaneous edges (Heun).
        ("profiles/sl_network.toml", &["run.duration_s=1"][..]),
        (
            "profiles/sl_network.toml",
            &[
                "run.duration_s=1",
                "model.integrator=\"rk4\"",
                "model.noise_sd=0",
            ][..],
        ),
        (
            "profiles/sl_network.toml",
            &[
                "run.duration_s=1",
                "model.integrator=\"heun\"",
                "model.noise_sd=0",
                "network.delay_ms=0.0",
            ][..],
        ),
        (
            "profiles/quickstart.toml",
            &["model.noise_color=\"pink\"", "stimulation.start_s=0.1"][..],
        ),
        (
            "profiles/quickstart.toml",
            &["model.noise_color=\"ou\"", "stimulation.start_s=0.1"][..],
        ),
        (
            "profiles/quickstart.toml",
            &[
                "stimulation.kind=periodic",
                "stimulation.rate_hz=8",
                "stimulation.start_s=0.1",
                "output.record_nodes=[0]",
            ][..],
        ),
        // The profile's timed commands, applied inside process_block.
        (
            "profiles/quickstart.toml",
            &[
                "stimulation.start_s=0.1",
                "stimulation.commands=[{ at_s = 1.0, command = \"stop\" }, \
                 { at_s = 1.5, command = \"amplitude 9\" }, { at_s = 2.0, command = \"start\" }]",
            ][..],
        ),
        ("profiles/mpr_ing.toml", &["run.duration_s=2"][..]),
        ("profiles/tongue_kuramoto.toml", &["run.duration_s=3"][..]),
        ("profiles/tongue_sl.toml", &["run.duration_s=3"][..]),
    ] {
        let p = allocations_while_processing(path, sets);
        assert_eq!(
            p.allocations, 0,
            "{path} {sets:?}: {} allocations",
            p.allocations
        );
    }
}

/// Every estimator kind (ETP past the end of its training, the Kalman filter fitted on a
/// recording), a recording as the sensor's source, no stimulation at all, the trigger channel,
/// and the coupling paths the shipped profiles do not take: a dense matrix, all-to-all with
/// delays under Euler–Maruyama, Kuramoto under RK4.
#[test]
fn every_estimator_source_output_and_coupling_path_never_allocates() {
    let _turn = cpu();
    let dir = tempfile::tempdir().unwrap();
    let recording = baseline_recording(dir.path());
    let kalman = format!(
        "estimator={{kind=\"kalman\", low_hz=8, high_hz=12, oscillators=1, train_s=5, \
         training_file=\"{}\"}}",
        recording.display()
    );
    let file = format!("sensor.file=\"{}\"", recording.display());
    let q = "profiles/quickstart.toml";
    let early = "stimulation.start_s=0.1";
    let cases: [(&str, Vec<&str>); 13] = [
        (q, vec![early, "estimator={kind=\"echt\", low_hz=8, high_hz=12}"]),
        (
            q,
            vec![
                early,
                "estimator={kind=\"pll\", low_hz=8, high_hz=12, loop_bandwidth_hz=1}",
            ],
        ),
        (q, vec![early, "estimator={kind=\"etp\", low_hz=8, high_hz=12, train_s=1}"]),
        (q, vec![early, "estimator={kind=\"ar_burg\", low_hz=8, high_hz=12}"]),
        (q, vec![early, &kalman]),
        (q, vec!["stimulation={kind=\"none\"}"]),
        (q, vec![early, &file, "run.duration_s=6"]),
        (
            q,
            vec![
                early,
                "output.channels=[\"stimulus\", \"trigger\", \"phase\", \"observable\", \"silence\"]",
            ],
        ),
        (
            "profiles/sl_network.toml",
            vec![
                "run.duration_s=2",
                "model.integrator=\"heun\"",
                "model.noise_sd=0",
                "network={topology=\"random_sparse\", mean_degree=60, normalize=\"row\", gain=8}",
                "output.nodes_rate_hz=1000",
            ],
        ),
        (
            "profiles/sl_network.toml",
            vec![
                "run.duration_s=2",
                "model.integrator=\"euler_maruyama\"",
                "network={topology=\"all_to_all\", normalize=\"row\", gain=8, delay_ms=2}",
            ],
        ),
        (
            "profiles/kuramoto_network.toml",
            vec![
                "run.duration_s=2",
                "model.integrator=\"rk4\"",
                "model.noise_sd=0",
            ],
        ),
        (q, vec![early, "run.duration_s=3", "estimator={kind=\"etp\", low_hz=8, high_hz=12, train_s=1, adapt_cycles=0}"]),
        (
            "profiles/sl_network.toml",
            vec!["run.duration_s=2", "network.history_precision=\"f32\""],
        ),
    ];
    for (k, (path, sets)) in cases.iter().enumerate() {
        let p = allocations_while_processing(path, sets);
        assert_eq!(
            p.allocations, 0,
            "{path} {sets:?}: {} allocations",
            p.allocations
        );
        assert!(
            p.samples > p.settling,
            "{path} {sets:?}: ended at sample {} before the estimator settled ({})",
            p.samples,
            p.settling
        );
        if k == 7 {
            assert_eq!(
                p.peaks[1], 1.0,
                "the trigger channel never fired: {:?}",
                p.peaks
            );
        }
    }
}

/// The whole audio callback body (denormal flushing, the engine, sample conversion, silence
/// after the end), as the real-time driver runs it, for every sample type it supports.
#[test]
fn the_audio_callback_never_allocates() {
    let (profile, _) = profile::load(
        "q",
        profile::QUICKSTART,
        &["stimulation.start_s=0.1".into(), "run.duration_s=2".into()],
    )
    .unwrap();
    let run = engine::build(&profile).unwrap();
    let mut telemetry = run.telemetry;
    let mut renderer = entrain::io::audio::Renderer::new(run.processor, run.info.total_samples);
    let mut as_f32 = vec![0.0f32; 64];
    let mut as_i32 = vec![0i32; 64];
    let mut as_i16 = vec![0i16; 64];
    let mut allocations = 0;
    let mut over = false;
    for k in 0..2000 {
        use ringbuf::traits::Consumer;
        if k % 8 == 0 {
            telemetry.clear();
        }
        let (done, n) = count_allocations(|| match k % 3 {
            0 => renderer.render(&mut as_f32),
            1 => renderer.render(&mut as_i32),
            _ => renderer.render(&mut as_i16),
        });
        over |= done;
        allocations += n;
    }
    // 2000 callbacks of 64 frames outlast the 2 s run: the silent tail was exercised too.
    assert!(over);
    assert_eq!(allocations, 0);
}

/// A sound-card input as the sensor, its capture pushed between blocks (as by the input
/// callback), with a missed output period and a lost input period: neither the capture side's
/// push nor the link's realignment inside `process_block` allocates, and the engine counts it.
#[test]
fn the_input_link_realigns_without_allocating() {
    let _turn = cpu();
    let (profile, _) = profile::load(
        "q",
        profile::QUICKSTART,
        &[
            "audio.input_device=\"default\"".into(),
            "stimulation.start_s=0.1".into(),
            "run.duration_s=4".into(),
        ],
    )
    .unwrap();
    let mut run = engine::build(&profile).unwrap();
    let mut capture = run.input.take().expect("a capture side for the input");
    let block = profile.run.block_frames;
    let fs = profile.run.sample_rate_hz;
    let mut out = vec![0.0f32; block];
    let mut captured = 0usize;
    let push = |capture: &mut engine::CaptureSide, captured: &mut usize| {
        let first = *captured;
        *captured += block;
        capture.push(
            (first..first + block)
                .map(|k| (0.5 * (std::f64::consts::TAU * 10.0 * k as f64 / fs).sin()) as f32),
        );
    };
    let period = std::time::Duration::from_secs_f64(block as f64 / fs);
    let mut allocations = 0;
    for k in 0..1500 {
        use ringbuf::traits::Consumer;
        run.telemetry.clear();
        // The input callback's side is real-time code too: counted.
        allocations += count_allocations(|| match k {
            // The output side misses a period: two captures before its next block.
            400 => {
                push(&mut capture, &mut captured);
                push(&mut capture, &mut captured);
            }
            // The capture side loses a period.
            900 => captured += block,
            _ => push(&mut capture, &mut captured),
        })
        .1;
        // Real time between the callbacks, for the link's clock.
        std::thread::sleep(period / 2);
        allocations += count_allocations(|| run.processor.process_block(&mut out)).1;
    }
    // Only the allocations are asserted: whether and how often the link realigned follows the
    // wall-clock sleeps above, which a busy machine stretches (CI once saw 1 of the 2 expected).
    // The link's unit tests in engine::input count realignments on a clock of their own.
    assert_eq!(allocations, 0);
}
