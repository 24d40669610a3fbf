//! A whole run: start the recorder, drive the loop (offline or on a device), write the summary.
//!
//! Owns: the sequence that turns a built [`Run`] into the outputs of ENGINE.md in a folder.
//! Used by the CLI, and by tests and sweeps that need the same outputs.
//! May call: [`crate::engine`], [`crate::io`], [`crate::record`], [`crate::profile`].

use crate::engine::{offline, Counters, Run, RunInfo, TriggerEvent};
use crate::io::audio::{self, RealtimeEnding};
use crate::io::serial_trigger::{self, SampleClock, SerialTrigger};
use crate::profile::Profile;
use crate::record::{self, RealtimeFigures, Recorded, Recorder, Summary};
use ringbuf::HeapCons;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

pub use crate::engine::offline::{Ending, Progress};

/// Run `profile`, already built into `built` by [`crate::engine::build`], offline into
/// `out_dir` (created if needed). `interrupt` ends it early with a ramp to zero; `progress` is
/// called about four times a second. Returns the summary that was written to `summary.json` and
/// how the run ended.
pub fn offline(
    profile: &Profile,
    mut built: Run,
    out_dir: &Path,
    interrupt: &AtomicBool,
    progress: impl FnMut(Progress),
) -> Result<(Summary, Ending), String> {
    if profile.audio.has_input() {
        return Err(format!(
            "audio.input_device = \"{}\": a sound-card input is a real-time source; run with --realtime (or remove audio.input_device to use the plant)",
            profile.audio.input_device
        ));
    }
    let info = built.info.clone();
    // A trigger line fires hardware: offline, the run then keeps to the sample clock, so that
    // its bytes go out with the spacing the pulses have (as fast as the loop computes, they
    // would exceed the pulse-rate limit on the wire many times over). Its port is opened
    // before any output is written: a port that fails leaves the folder as it was.
    let pace = profile.trigger.as_ref().map(|_| offline::Pace {
        origin: Instant::now(),
        sample_rate_hz: info.sample_rate_hz,
    });
    let trigger = match pace {
        Some(pace) => start_trigger(
            profile,
            built.trigger_events.take(),
            SampleClock::new(pace.origin, pace.sample_rate_hz)?,
        )?,
        None => None,
    };
    clear_previous_run(out_dir)?;
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
        pace,
        progress,
    );
    let wall = started.elapsed().as_secs_f64();
    let recorded = recorder.finish()?;
    finish_trigger(trigger, out_dir)?;
    let summary = summary(
        profile,
        &info,
        &built.counters,
        recorded,
        ending_name(ending),
        wall,
        None,
    );
    record::write_summary(out_dir, &summary)?;
    Ok((summary, ending))
}

/// Run `profile` in real time on the sound card its `[audio]` section (or `host`/`device`, when
/// given) names, into `out_dir`. The audio callback is the clock; Ctrl-C (`interrupt`) or a
/// device error ramp the output down and stop the stream, and the outputs are complete either
/// way. `progress` gets (samples, total).
pub fn realtime(
    profile: &Profile,
    built: Run,
    out_dir: &Path,
    interrupt: &AtomicBool,
    progress: impl FnMut(u64, u64),
) -> Result<(Summary, RealtimeEnding), String> {
    let Run {
        processor,
        telemetry,
        commands,
        counters,
        info,
        trigger_events,
        input,
    } = built;
    // Trigger bytes are due when their sample plays: sample 0 is taken to play as the stream's
    // first block begins (the device's own output latency is what `entrain latency` measures).
    // The port is opened before any output is written.
    let clock = SampleClock::from_first_block(
        processor.origin(),
        info.sample_rate_hz,
        Arc::clone(&counters),
    )?;
    let trigger = start_trigger(profile, trigger_events, clock)?;
    clear_previous_run(out_dir)?;
    let recorder_failed = Arc::new(AtomicBool::new(false));
    let recorder = Recorder::spawn(telemetry, out_dir, &info, Arc::clone(&recorder_failed))?;
    let started = Instant::now();
    let report = audio::run(
        processor,
        input,
        &commands,
        &counters,
        &info,
        &profile.audio,
        // A recorder that fails ends the stimulation too: nothing goes out unrecorded.
        &[interrupt, &recorder_failed],
        progress,
    );
    let wall = started.elapsed().as_secs_f64();
    // The recorder drains whatever the callback pushed, whether or not the device worked.
    let recorded = recorder.finish()?;
    finish_trigger(trigger, out_dir)?;
    // A stream that never started is a device error like any other: the (empty) outputs get
    // their summary, which says so.
    let report = report.unwrap_or_else(|e| audio::RealtimeReport {
        ending: RealtimeEnding::DeviceError(e),
        device: if profile.audio.output_device.is_empty() {
            "default".into()
        } else {
            profile.audio.output_device.clone()
        },
        xruns: 0,
        realtime_denied: false,
        callbacks: 0,
        preroll_frames: 0,
        sample_format: String::new(),
    });
    let ending = match &report.ending {
        RealtimeEnding::Completed => "completed",
        RealtimeEnding::Interrupted => "interrupted",
        RealtimeEnding::DeviceError(_) => "device_error",
    };
    let figures = RealtimeFigures {
        device: report.device.clone(),
        sample_format: report.sample_format.clone(),
        declared_latency_ms: info.latency_samples as f64 / info.sample_rate_hz * 1e3,
        nominal_period_ms: info.block_frames as f64 / info.sample_rate_hz * 1e3,
        callback_period: recorded.block_period.clone(),
        callbacks: report.callbacks,
        preroll_frames: report.preroll_frames,
        realtime_denied: report.realtime_denied,
        device_error: match &report.ending {
            RealtimeEnding::DeviceError(e) => Some(e.clone()),
            _ => None,
        },
        input_underruns: Counters::get(&counters.input_underruns),
        input_realignments: Counters::get(&counters.input_realignments),
        input_realigned_samples: Counters::get(&counters.input_realigned_samples),
    };
    let mut summary = summary(
        profile,
        &info,
        &counters,
        recorded,
        ending,
        wall,
        Some(figures),
    );
    summary.xruns = report.xruns;
    record::write_summary(out_dir, &summary)?;
    Ok((summary, report.ending))
}

/// Forward the stimulation commands typed on `input` (one per line, as
/// [`crate::stim::StimCommand`]'s `FromStr` reads them) to a run's `commands` queue until the
/// input ends; `say` gets a line for each command taken, refused or not delivered. A command
/// `policy` does not take ([`crate::profile::PolicySpec::takes`]) is refused, not sent. The
/// engine applies each at its next block and clamps any value to the safety limits. Empty
/// lines are skipped. A line that is not text (a stray byte from a terminal or a serial bridge)
/// is refused like any other bad line, and reading goes on: the operator must still be able to
/// type `stop`. A read error ends the console, and says so.
pub fn forward_commands(
    input: impl std::io::BufRead,
    policy: &crate::profile::PolicySpec,
    commands: &crossbeam_channel::Sender<crate::engine::Command>,
    mut say: impl FnMut(String),
) {
    for bytes in input.split(b'\n') {
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                say(format!(
                    "command input failed ({e}): no further commands are read; Ctrl-C still \
                     ends the run"
                ));
                return;
            }
        };
        let Ok(line) = String::from_utf8(bytes) else {
            say(format!(
                "command refused: the line is not text (invalid UTF-8); expected {}",
                crate::stim::COMMAND_SYNTAX
            ));
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let command = line.parse::<crate::stim::StimCommand>().and_then(|c| {
            policy
                .takes(&c)
                .map(|()| c)
                .map_err(|e| format!("'{}': {e}", line.trim()))
        });
        match command {
            Ok(command) => match commands.try_send(crate::engine::Command::Stim(command)) {
                Ok(()) => say(format!("command: {}", line.trim())),
                Err(crossbeam_channel::TrySendError::Full(_)) => say(format!(
                    "command '{}' not sent: the queue is full; try again",
                    line.trim()
                )),
                // The run has ended.
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
            },
            Err(e) => say(format!("command refused: {e}")),
        }
    }
}

fn start_trigger(
    profile: &Profile,
    events: Option<HeapCons<TriggerEvent>>,
    clock: SampleClock,
) -> Result<Option<SerialTrigger>, String> {
    // The limiter spaces onsets in samples; the writer holds the same spacing in wall time.
    let min_interval =
        std::time::Duration::try_from_secs_f64(1.0 / profile.safety.max_pulse_rate_hz)
            .unwrap_or(std::time::Duration::MAX);
    match (&profile.trigger, events) {
        (Some(config), Some(events)) => Ok(Some(SerialTrigger::start(
            config,
            events,
            clock,
            min_interval,
        )?)),
        _ => Ok(None),
    }
}

/// Wait for the trigger writer to send what is queued and write its log to `triggers.csv`.
fn finish_trigger(trigger: Option<SerialTrigger>, out_dir: &Path) -> Result<(), String> {
    if let Some(trigger) = trigger {
        let log = trigger.finish()?;
        serial_trigger::write_log(&out_dir.join("triggers.csv"), &log)?;
    }
    Ok(())
}

/// Outputs a run writes only sometimes, and what `report` and `heatmap` derive from a run: a
/// new run into the folder of an old one removes them, so that none describes the old run as
/// if it were the new one (a heat map of nodes the new run never recorded).
const PREVIOUS_RUN_FILES: [&str; 5] = [
    "nodes.f32",
    "nodes.json",
    "triggers.csv",
    "report.html",
    "heatmap.svg",
];

/// Clear what a previous run left in `dir` (only where a previous run's `summary.json` is).
fn clear_previous_run(dir: &Path) -> Result<(), String> {
    if !dir.join("summary.json").is_file() {
        return Ok(());
    }
    let gone = |r: std::io::Result<()>, path: &Path| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!(
            "cannot remove the previous run's {} from the output folder: {e}",
            path.display()
        )),
        _ => Ok(()),
    };
    for name in PREVIOUS_RUN_FILES {
        let path = dir.join(name);
        gone(std::fs::remove_file(&path), &path)?;
    }
    let figures = dir.join("report");
    gone(std::fs::remove_dir_all(&figures), &figures)
}

fn ending_name(ending: Ending) -> &'static str {
    match ending {
        Ending::Completed => "completed",
        Ending::Interrupted => "interrupted",
    }
}

fn summary(
    profile: &Profile,
    info: &RunInfo,
    counters: &Counters,
    recorded: Recorded,
    ending: &str,
    wall: f64,
    realtime: Option<RealtimeFigures>,
) -> Summary {
    let samples = Counters::get(&counters.samples);
    Summary {
        version: env!("CARGO_PKG_VERSION").to_string(),
        profile: serde_json::to_value(profile).unwrap_or(serde_json::Value::Null),
        sample_rate: info.sample_rate_hz,
        block: info.block_frames,
        latency_samples: info.latency_samples,
        samples,
        ending: ending.to_string(),
        pulses: recorded.pulses,
        suppressed_pulses: recorded.suppressed_pulses,
        phase_error: recorded.phase_error,
        plv: recorded.plv,
        plv_series: recorded.plv_series,
        amplitude: recorded.amplitude,
        dropped_records: Counters::get(&counters.dropped_records),
        gap_frames: recorded.gap_frames,
        node_frames: recorded.node_frames,
        node_gap_frames: recorded.node_frames.map(|_| recorded.node_gap_frames),
        late_blocks: Counters::get(&counters.late_blocks),
        xruns: 0,
        commands: recorded.commands,
        clamped_commands: recorded.clamped_commands,
        diverged_at_s: recorded
            .first_non_finite
            .map(|n| n as f64 / info.sample_rate_hz),
        ground_truth_until_s: recorded
            .truth_frames
            .map(|n| n as f64 / info.sample_rate_hz),
        channels: record::channel_names(&info.record_nodes),
        block_time: recorded.block_time,
        wall_time_s: wall,
        realtime_factor: samples as f64 / info.sample_rate_hz / wall.max(1e-9),
        estimator_settling_s: info.settling_samples as f64 / info.sample_rate_hz,
        plant_state_bytes: info.plant_bytes,
        driver: if realtime.is_some() {
            "realtime"
        } else {
            "offline"
        }
        .to_string(),
        realtime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Command;
    use crate::profile::PolicySpec;
    use crate::stim::StimCommand;

    #[test]
    fn typed_lines_become_commands_and_mistakes_are_reported_not_sent() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let mut said = Vec::new();
        let (quickstart, _) =
            crate::profile::load("quickstart", crate::profile::QUICKSTART, &[]).unwrap();
        let policy = &quickstart.stimulation.policy;
        assert!(matches!(policy, PolicySpec::PhaseLocked(_)));
        let typed = "phase 45\n\nbogus\namplitude 1e6\nstop\n";
        forward_commands(std::io::Cursor::new(typed), policy, &tx, |line| {
            said.push(line)
        });
        let sent: Vec<Command> = rx.try_iter().collect();
        assert_eq!(
            sent,
            [
                Command::Stim(StimCommand::SetTargetPhaseDeg(45.0)),
                Command::Stim(StimCommand::SetAmplitude(1e6)),
                Command::Stim(StimCommand::Stop),
            ]
        );
        assert_eq!(said.len(), 4, "{said:?}");
        assert!(
            said[1].contains("refused") && said[1].contains("bogus"),
            "{said:?}"
        );
        // Sham has neither a target phase nor an amplitude: only `stop` goes through.
        said.clear();
        let typed = "phase 10\namplitude 1\nstop\n";
        forward_commands(
            std::io::Cursor::new(typed),
            &PolicySpec::None,
            &tx,
            |line| said.push(line),
        );
        let sent: Vec<Command> = rx.try_iter().collect();
        assert_eq!(sent, [Command::Stim(StimCommand::Stop)]);
        assert!(
            said[0].contains("refused") && said[0].contains("target phase"),
            "{said:?}"
        );
        assert!(
            said[1].contains("refused") && said[1].contains("no amplitude"),
            "{said:?}"
        );
    }

    /// A stray byte that is not text must not end the console: `stop` typed after it goes
    /// through (it used to end the reading silently, leaving the operator unable to stop).
    #[test]
    fn a_line_that_is_not_text_is_refused_and_later_commands_still_go_through() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let mut said = Vec::new();
        let (quickstart, _) =
            crate::profile::load("quickstart", crate::profile::QUICKSTART, &[]).unwrap();
        let typed: &[u8] = b"amplitude 1.5\n\xff\xfe\r\nstop\r\nphase 90\n";
        forward_commands(typed, &quickstart.stimulation.policy, &tx, |line| {
            said.push(line)
        });
        let sent: Vec<Command> = rx.try_iter().collect();
        assert_eq!(
            sent,
            [
                Command::Stim(StimCommand::SetAmplitude(1.5)),
                Command::Stim(StimCommand::Stop),
                Command::Stim(StimCommand::SetTargetPhaseDeg(90.0)),
            ]
        );
        assert!(
            said[1].contains("refused") && said[1].contains("not text"),
            "{said:?}"
        );
    }

    /// A read error ends the console and says so.
    #[test]
    fn a_failing_input_is_reported() {
        struct Broken;
        impl std::io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("device unplugged"))
            }
        }
        let (tx, rx) = crossbeam_channel::bounded(8);
        let mut said = Vec::new();
        forward_commands(
            std::io::BufReader::new(Broken),
            &PolicySpec::None,
            &tx,
            |line| said.push(line),
        );
        assert_eq!(rx.try_iter().count(), 0);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("device unplugged"), "{said:?}");
    }
}
