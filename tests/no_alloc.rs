//! The real-time path never allocates: a counting global allocator armed around
//! `process_block` for many blocks of every shipped kind of run.

use entrain::engine;
use entrain::engine::Command;
use entrain::profile;
use entrain::stim::StimCommand;

mod alloc_count;
use alloc_count::count_allocations;

fn allocations_while_processing(path: &str, sets: &[&str]) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let (profile, _) = profile::load(path, &text, &sets).unwrap_or_else(|e| panic!("{e}"));
    let mut run = engine::build(&profile).unwrap();
    let block = profile.run.block_frames;
    let mut out = vec![0.0f32; block];
    let blocks = (profile.run.total_samples() as usize / block).min(3000);
    let mut allocations = 0;
    for k in 0..blocks {
        // Commands arrive mid-run, as from a control thread (sent outside the guard).
        if k % 500 == 250 {
            run.commands
                .try_send(Command::Stim(StimCommand::SetTargetPhaseDeg(90.0)))
                .unwrap();
            run.commands
                .try_send(Command::Stim(StimCommand::SetAmplitude(1e9)))
                .unwrap();
        }
        // The test stands in for the recorder thread: keep the telemetry ring drained.
        if k % 8 == 0 {
            use ringbuf::traits::Consumer;
            run.telemetry.clear();
        }
        allocations += count_allocations(|| run.processor.process_block(&mut out)).1;
    }
    allocations
}

#[test]
fn the_guard_counts_allocations_on_the_armed_thread() {
    let (boxed, n) = count_allocations(|| std::hint::black_box(Box::new(42u64)));
    drop(boxed);
    assert!(n > 0);
}

#[test]
fn process_block_never_allocates() {
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
            &[
                "stimulation.kind=periodic",
                "stimulation.rate_hz=8",
                "stimulation.start_s=0.1",
                "output.record_nodes=[0]",
            ][..],
        ),
    ] {
        let n = allocations_while_processing(path, sets);
        assert_eq!(n, 0, "{path}: {n} allocations inside process_block");
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
/// callback), with a missed output period and a lost input period: the link realigns inside
/// `process_block` without allocating, and the engine counts it.
#[test]
fn the_input_link_realigns_without_allocating() {
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
        match k {
            // The output side misses a period: two captures before its next block.
            400 => {
                push(&mut capture, &mut captured);
                push(&mut capture, &mut captured);
            }
            // The capture side loses a period.
            900 => captured += block,
            _ => push(&mut capture, &mut captured),
        }
        // Real time between the callbacks, for the link's clock.
        std::thread::sleep(period / 2);
        allocations += count_allocations(|| run.processor.process_block(&mut out)).1;
    }
    assert_eq!(allocations, 0);
    let counters = &run.counters;
    let realignments = engine::Counters::get(&counters.input_realignments);
    assert_eq!(realignments, 2, "one skip, one hold");
    let samples = engine::Counters::get(&counters.input_realigned_samples);
    assert!(
        samples.abs_diff(2 * block as u64) <= block as u64 / 4,
        "{samples}"
    );
    assert_eq!(engine::Counters::get(&counters.input_underruns), 0);
}
