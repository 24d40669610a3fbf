//! A whole offline run: build the engine, start the recorder, drive the loop, write the summary.
//!
//! Owns: the sequence that turns a validated [`Profile`] into the outputs of ENGINE.md in a
//! folder. Used by the CLI, and by tests and sweeps that need the same outputs.
//! May call: [`crate::engine`], [`crate::record`], [`crate::profile`].

use crate::engine::{offline, Counters, Run};
use crate::profile::Profile;
use crate::record::{self, Recorder, Summary};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

pub use crate::engine::offline::{Ending, Progress};

/// Run `profile`, already built into `built` by [`engine::build`], offline into `out_dir`
/// (created if needed). `interrupt` ends it early with a ramp to zero; `progress` is called
/// about four times a second. Returns the summary that was written to `summary.json` and how
/// the run ended.
pub fn offline(
    profile: &Profile,
    mut built: Run,
    out_dir: &Path,
    interrupt: &AtomicBool,
    progress: impl FnMut(Progress),
) -> Result<(Summary, Ending), String> {
    let info = built.info.clone();
    let recorder_failed = Arc::new(AtomicBool::new(false));
    let recorder = Recorder::spawn(
        built.telemetry,
        out_dir,
        &info,
        Arc::clone(&recorder_failed),
    )?;
    let started = Instant::now();
    let ending = offline::run(
        &mut built.processor,
        &built.commands,
        info.total_samples,
        info.block_frames,
        &[interrupt, &recorder_failed],
        None,
        progress,
    );
    let wall = started.elapsed().as_secs_f64();
    let recorded = recorder.finish()?;
    let samples = built.processor.sample();
    let summary = Summary {
        version: env!("CARGO_PKG_VERSION").to_string(),
        profile: serde_json::to_value(profile).map_err(|e| format!("profile: {e}"))?,
        sample_rate: info.sample_rate_hz,
        block: info.block_frames,
        latency_samples: info.latency_samples,
        samples,
        ending: match ending {
            Ending::Completed => "completed".into(),
            Ending::Interrupted => "interrupted".into(),
        },
        pulses: recorded.pulses,
        suppressed_pulses: recorded.suppressed_pulses,
        phase_error: recorded.phase_error,
        plv: recorded.plv,
        dropped_records: Counters::get(&built.counters.dropped_records),
        gap_frames: recorded.gap_frames,
        late_blocks: Counters::get(&built.counters.late_blocks),
        xruns: 0,
        commands: recorded.commands,
        clamped_commands: recorded.clamped_commands,
        channels: record::channel_names(&info.record_nodes),
        block_time: recorded.block_time,
        wall_time_s: wall,
        realtime_factor: samples as f64 / info.sample_rate_hz / wall.max(1e-9),
        estimator_settling_s: info.settling_samples as f64 / info.sample_rate_hz,
        plant_state_bytes: info.plant_bytes,
    };
    record::write_summary(out_dir, &summary)?;
    Ok((summary, ending))
}
