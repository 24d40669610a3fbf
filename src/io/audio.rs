//! The real-time driver: a cpal output stream whose callback is the engine's clock.
//!
//! Owns: host and device selection (by id, name or index, with the alternatives listed when a
//! name matches nothing), the device listing of `entrain devices`, and [`run`], which moves the
//! engine's [`Processor`] into the audio callback and supervises the stream from the control
//! half: progress, Ctrl-C, device errors, xruns, and a clean stop (ramp to zero, then the stream
//! is stopped).
//!
//! The callback does only real-time work: it flushes denormals to zero, calls
//! `process_block`, converts to the device's sample type, and writes silence when the run is
//! over. The `realtime` feature of cpal asks for real-time scheduling of the callback thread; if
//! the system refuses, the error callback records it and the run carries on.

use crate::engine::{CaptureSide, Command, Counters, Processor, RunInfo};
use crate::profile::AudioSection;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, Device, FromSample, Host, SampleFormat, SizedSample, StreamConfig};
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stream just started may take to deliver its first callback before it is reopened.
const START_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts at starting one stream.
const START_ATTEMPTS: usize = 3;

/// Open and start a stream with `open` and wait until it has called back at least once. A
/// stream that stays silent for [`START_TIMEOUT`] is closed and opened again, up to
/// [`START_ATTEMPTS`] times. Returns the running stream and the sending end of a one-slot
/// hand-over: the callback pops its payload (the engine, or the capture side of the input
/// link) from the other end without blocking, so the caller decides when the payload goes in,
/// and a payload is never lost with a stream that did not start.
///
/// Why: with JACK, a process that opens an input and an output client now and then gets one
/// client that is activated but never called (about 1 start in 5 on the CI machines); without
/// this the run would go on reading silence from an input that never started.
///
/// `open` gets the receiving end of the hand-over and a counter the callback must increment
/// on every call.
pub(crate) fn start_verified<P: Send + 'static>(
    what: &str,
    mut open: impl FnMut(HeapCons<P>, Arc<AtomicU64>) -> Result<cpal::Stream, String>,
) -> Result<(cpal::Stream, HeapProd<P>), String> {
    for attempt in 1..=START_ATTEMPTS {
        let (handover, receiver) = HeapRb::<P>::new(1).split();
        let calls = Arc::new(AtomicU64::new(0));
        let stream = open(receiver, Arc::clone(&calls))?;
        stream
            .play()
            .map_err(|e| format!("cannot start the {what} stream: {e}"))?;
        let started = Instant::now();
        while calls.load(Ordering::Acquire) == 0 && started.elapsed() < START_TIMEOUT {
            std::thread::sleep(Duration::from_millis(5));
        }
        if calls.load(Ordering::Acquire) > 0 {
            return Ok((stream, handover));
        }
        drop(stream);
        if attempt < START_ATTEMPTS {
            err!(
                "warning: the {what} stream did not start within {} s; reopening it (attempt {} of {START_ATTEMPTS})",
                START_TIMEOUT.as_secs(),
                attempt + 1
            );
        }
    }
    Err(format!(
        "the {what} stream never started ({START_ATTEMPTS} attempts of {} s each): the device \
         or audio server is not delivering callbacks; check that it runs (`entrain devices`)",
        START_TIMEOUT.as_secs()
    ))
}

/// Put `payload` into a fresh hand-over from [`start_verified`].
pub(crate) fn hand_over<P>(mut handover: HeapProd<P>, payload: P) {
    if handover.try_push(payload).is_err() {
        unreachable!("a one-slot hand-over is filled once");
    }
}

/// How a real-time run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RealtimeEnding {
    /// Every sample of the run was played.
    Completed,
    /// Ctrl-C: the output ramped to zero and the stream stopped.
    Interrupted,
    /// The device failed or vanished; the message says how.
    DeviceError(String),
}

/// What the driver measured besides the engine's own telemetry.
#[derive(Clone, Debug)]
pub struct RealtimeReport {
    /// How the run ended.
    pub ending: RealtimeEnding,
    /// The device's id, as `entrain devices` lists it.
    pub device: String,
    /// Under/overruns reported by the backend.
    pub xruns: u64,
    /// Whether the system refused real-time scheduling for the callback thread.
    pub realtime_denied: bool,
    /// Callbacks served.
    pub callbacks: u64,
    /// Frames of silence the device played before the engine's first sample (while the
    /// streams were being started and checked).
    pub preroll_frames: u64,
    /// The sample format negotiated with the device.
    pub sample_format: String,
}

/// Keep alsa-lib's chatter about absent cards (it probes every configured PCM) off stderr
/// while devices are listed or opened on this thread; the handle must stay alive meanwhile.
/// Failures reach the user through cpal's errors instead.
#[cfg(target_os = "linux")]
pub fn quiet_alsa() -> Option<impl Sized> {
    alsa::Output::local_error_handler().ok()
}

/// Nothing to quiet on other platforms.
#[cfg(not(target_os = "linux"))]
pub fn quiet_alsa() -> Option<()> {
    None
}

/// Whether `name` names an audio host at all (`auto`, empty, or a host of this platform, or
/// `jack` whether or not this build has it). Which hosts are available is known only on the
/// machine that plays the run; a name that is no host anywhere is a typo wherever a profile is
/// checked.
pub fn check_host_name(name: &str) -> Result<(), String> {
    let known = name.is_empty()
        || ["auto", "jack"]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        || cpal::ALL_HOSTS
            .iter()
            .any(|id| id.name().eq_ignore_ascii_case(name));
    if known {
        return Ok(());
    }
    let platform: Vec<String> = cpal::ALL_HOSTS
        .iter()
        .map(|id| id.name().to_ascii_lowercase())
        .filter(|h| h != "jack")
        .collect();
    Err(format!(
        "'{name}' is not an audio host; expected auto, {} or jack (`entrain devices` lists this \
         machine's)",
        platform.join(", ")
    ))
}

/// The audio host called `name` (`auto` = the platform default), or an error listing them.
pub fn host(name: &str) -> Result<Host, String> {
    if name.is_empty() || name.eq_ignore_ascii_case("auto") {
        return Ok(cpal::default_host());
    }
    let hosts = cpal::available_hosts();
    let id = hosts
        .iter()
        .find(|id| id.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = hosts.iter().map(|h| h.name()).collect();
            format!(
                "audio host '{name}' is not available; available: {} (JACK needs a build with --features jack and a running server)",
                names.join(", ")
            )
        })?;
    cpal::host_from_id(*id).map_err(|e| format!("audio host '{name}': {e}"))
}

/// Which way a device carries sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Playback.
    Output,
    /// Capture.
    Input,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Output => "output",
            Direction::Input => "input",
        }
    }
}

/// The devices of `host` that go `direction`, as (device, id, description).
fn devices(host: &Host, direction: Direction) -> Vec<(Device, String, String)> {
    let listed = match direction {
        Direction::Output => host.output_devices(),
        Direction::Input => host.input_devices(),
    };
    let Ok(listed) = listed else {
        return Vec::new();
    };
    listed
        .map(|d| {
            let id = d.id().map_or_else(|_| "?".to_string(), |id| id.to_string());
            let description = d
                .description()
                .map_or_else(|_| String::new(), |x| x.to_string());
            (d, id, description)
        })
        .collect()
}

/// The device `spec` of `host` going `direction`: empty or `default` for the host's default, else
/// an id, an exact name, or an index into that direction's list (as `entrain devices` numbers
/// output devices). A spec matching nothing lists the alternatives.
pub fn device(host: &Host, direction: Direction, spec: &str) -> Result<(Device, String), String> {
    if spec.is_empty() || spec.eq_ignore_ascii_case("default") {
        let default = match direction {
            Direction::Output => host.default_output_device(),
            Direction::Input => host.default_input_device(),
        };
        let device = default.ok_or_else(|| {
            format!(
                "the {} host has no default {} device{}",
                host.id().name(),
                direction.word(),
                alternatives(host, direction)
            )
        })?;
        let id = device
            .id()
            .map_or_else(|_| "default".into(), |id| id.to_string());
        return Ok((device, id));
    }
    let listed = devices(host, direction);
    let found = match spec.parse::<usize>() {
        Ok(index) => listed.into_iter().nth(index),
        Err(_) => listed.into_iter().find(|(_, id, description)| {
            id == spec
                || id.split_once(':').is_some_and(|(_, name)| name == spec)
                || description == spec
        }),
    };
    match found {
        Some((device, id, _)) => Ok((device, id)),
        None => Err(format!(
            "{} device '{spec}' not found on the {} host{}",
            direction.word(),
            host.id().name(),
            alternatives(host, direction)
        )),
    }
}

/// Channels to open on input `device` (named `id`) so that `channel` (0-based) is among them:
/// its default configuration's, or more. The error, when the device cannot capture (ALSA's
/// default input on a machine without a sound card), names it and the way out.
pub fn input_channels(
    host: &Host,
    device: &Device,
    id: &str,
    channel: usize,
) -> Result<u16, String> {
    let config = device.default_input_config().map_err(|e| {
        format!(
            "input device '{id}' on the {} host cannot capture ({e}): choose another with \
             --input-device (`audio.input_device` in a profile){}",
            host.id().name(),
            alternatives(host, Direction::Input)
        )
    })?;
    Ok(config.channels().max(channel as u16 + 1))
}

/// The output device `spec` of `host` (see [`device`]).
pub fn output_device(host: &Host, spec: &str) -> Result<(Device, String), String> {
    device(host, Direction::Output, spec)
}

fn alternatives(host: &Host, direction: Direction) -> String {
    let listed = devices(host, direction);
    if listed.is_empty() {
        return format!("; it lists no {} devices", direction.word());
    }
    let mut text = format!("; {} devices:", direction.word());
    for (i, (_, id, description)) in listed.iter().enumerate() {
        let _ = write!(text, "\n  {i}: {id}");
        if !description.is_empty() {
            let _ = write!(text, " ({description})");
        }
    }
    text
}

/// Hosts, devices, their supported configurations and the defaults, as `entrain devices`
/// prints them.
pub fn list_devices() -> String {
    let _quiet = quiet_alsa();
    let mut out = String::new();
    let default_host = cpal::default_host().id();
    for id in cpal::available_hosts() {
        let marker = if id == default_host {
            " (default host)"
        } else {
            ""
        };
        let _ = writeln!(out, "host {}{marker}", id.name());
        let host = match cpal::host_from_id(id) {
            Ok(h) => h,
            Err(e) => {
                let _ = writeln!(out, "  unavailable: {e}");
                continue;
            }
        };
        let default_out = host
            .default_output_device()
            .and_then(|d| d.id().ok())
            .map(|id| id.to_string());
        let default_in = host
            .default_input_device()
            .and_then(|d| d.id().ok())
            .map(|id| id.to_string());
        let Ok(devices) = host.devices() else {
            let _ = writeln!(out, "  (cannot list devices)");
            continue;
        };
        let mut output_index = 0;
        for device in devices {
            let dev_id = device.id().map_or_else(|_| "?".into(), |id| id.to_string());
            let description = device
                .description()
                .map_or_else(|_| String::new(), |d| d.to_string());
            let outputs: Vec<_> = device
                .supported_output_configs()
                .map(Iterator::collect)
                .unwrap_or_default();
            let inputs: Vec<_> = device
                .supported_input_configs()
                .map(Iterator::collect)
                .unwrap_or_default();
            let mut tags = Vec::new();
            if Some(&dev_id) == default_out.as_ref() {
                tags.push("default output");
            }
            if Some(&dev_id) == default_in.as_ref() {
                tags.push("default input");
            }
            let index = if outputs.is_empty() {
                "  ".to_string()
            } else {
                output_index += 1;
                format!("{:>2}", output_index - 1)
            };
            let _ = writeln!(
                out,
                "{index} {dev_id}{}{}",
                if description.is_empty() {
                    String::new()
                } else {
                    format!(" — {description}")
                },
                if tags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", tags.join(", "))
                }
            );
            if let Some(summary) = summarise_configs(&outputs) {
                let _ = writeln!(out, "      out {summary}");
            }
            if let Some(summary) = summarise_configs(&inputs) {
                let _ = writeln!(out, "      in  {summary}");
            }
        }
    }
    out
}

/// One line for a device's configurations in one direction: the span of channel counts, of
/// sample rates and of buffer sizes over all of them, and the sample formats (None for none).
/// ALSA's plug devices list a range for every channel count and format (over 800 for `null`),
/// which as a list would bury the devices; a run asks for one configuration and is told if
/// the device refuses it.
fn summarise_configs(configs: &[cpal::SupportedStreamConfigRange]) -> Option<String> {
    let span = |low: u64, high: u64, unit: &str| {
        if low == high {
            format!("{low} {unit}")
        } else {
            format!("{low}–{high} {unit}")
        }
    };
    let first = configs.first()?;
    let (mut channels, mut rates) = (
        (first.channels(), first.channels()),
        (first.min_sample_rate(), first.max_sample_rate()),
    );
    let mut buffers: Option<(u32, u32)> = None;
    let mut formats: Vec<cpal::SampleFormat> = Vec::new();
    for c in configs {
        channels = (channels.0.min(c.channels()), channels.1.max(c.channels()));
        rates = (
            rates.0.min(c.min_sample_rate()),
            rates.1.max(c.max_sample_rate()),
        );
        if let cpal::SupportedBufferSize::Range { min, max } = *c.buffer_size() {
            buffers = Some(buffers.map_or((min, max), |(lo, hi)| (lo.min(min), hi.max(max))));
        }
        if !formats.contains(&c.sample_format()) {
            formats.push(c.sample_format());
        }
    }
    let formats: Vec<String> = formats.iter().map(ToString::to_string).collect();
    Some(format!(
        "{}, {}, {}; {}",
        span(channels.0.into(), channels.1.into(), "channels"),
        span(rates.0.into(), rates.1.into(), "Hz"),
        buffers.map_or_else(
            || "buffer size not reported".to_string(),
            |(lo, hi)| format!("buffers of {}", span(lo.into(), hi.into(), "frames"))
        ),
        formats.join(" ")
    ))
}

/// Everything the audio callback does, as a type of its own (so that tests can run exactly the
/// callback's work under an allocation guard): flush denormals, run the engine for the frames
/// the device asks for, convert to the device's sample type, and play silence once the run is
/// over.
pub struct Renderer {
    processor: Processor,
    total: u64,
    channels: usize,
    scratch: Vec<f32>,
}

impl Renderer {
    /// Take over `processor` for a run of `total` samples (allocates its scratch buffer here).
    pub fn new(processor: Processor, total: u64) -> Self {
        let channels = processor.channels();
        // Room for several periods in case the backend hands over more than the fixed size.
        Self {
            processor,
            total,
            channels,
            scratch: vec![0.0; 8 * 1024 * channels],
        }
    }

    /// Fill `data` (interleaved frames). Returns true once the run is over (every sample
    /// played, or ended and ramped down): from then on only silence is written. Real-time safe.
    pub fn render<T: SizedSample + FromSample<f32>>(&mut self, data: &mut [T]) -> bool {
        let mut over = false;
        // SAFETY: flushing denormals changes only this thread's FPU control flags for the
        // duration of the closure; the guard restores them, and the engine's arithmetic does
        // not depend on subnormal results.
        unsafe {
            no_denormals::no_denormals(|| {
                for chunk in data.chunks_mut(self.scratch.len()) {
                    let frames = chunk.len() / self.channels;
                    let left = self.total.saturating_sub(self.processor.sample()) as usize;
                    let n = if self.processor.finished() {
                        0
                    } else {
                        frames.min(left)
                    };
                    let used = n * self.channels;
                    if n > 0 {
                        self.processor.process_block(&mut self.scratch[..used]);
                    }
                    for (out, v) in chunk.iter_mut().zip(&self.scratch[..used]) {
                        *out = T::from_sample(*v);
                    }
                    for out in chunk[used..].iter_mut() {
                        *out = T::EQUILIBRIUM;
                    }
                    over |= n < frames;
                }
            })
        }
        over
    }
}

/// Shared between the callback, the error callback and the supervising thread.
#[derive(Default)]
struct StreamFlags {
    done: AtomicBool,
    device_failed: AtomicBool,
    realtime_denied: AtomicBool,
    xruns: AtomicU64,
    callbacks: AtomicU64,
    preroll_frames: AtomicU64,
}

/// Play the run whose real-time half is `processor` on the device `device_spec` of host
/// `host_name` until its samples are done, any of `interrupts` is set (Ctrl-C, a failed
/// recorder: the output then ramps to zero), or the device fails. `commands` and `counters` are
/// the run's control handles. `progress` gets (samples, total) about four
/// times a second.
#[allow(clippy::too_many_arguments)]
pub fn run(
    processor: Processor,
    input: Option<CaptureSide>,
    commands: &crossbeam_channel::Sender<Command>,
    counters: &Arc<Counters>,
    info: &RunInfo,
    audio: &AudioSection,
    interrupts: &[&AtomicBool],
    mut progress: impl FnMut(u64, u64),
) -> Result<RealtimeReport, String> {
    let _quiet = quiet_alsa();
    let host = host(&audio.host)?;
    let (device, device_id) = output_device(&host, &audio.output_device)?;
    // Both streams are started and seen running before either gets its payload: the engine
    // first, then the capture side's end of the link, so no capture piles up in the link
    // before the engine reads it (the engine reads silence until the capture starts).
    let input_stream = match input {
        Some(link) => Some((open_input(&host, audio, info)?, link)),
        None => None,
    };
    let channels = processor.channels();
    let config = StreamConfig {
        channels: channels as u16,
        sample_rate: info.sample_rate_hz.round() as u32,
        buffer_size: BufferSize::Fixed(info.block_frames as u32),
    };
    let format = pick_format(&device, &config)?;
    let flags = Arc::new(StreamFlags::default());
    let (error_tx, error_rx) = crossbeam_channel::bounded::<String>(16);
    let (stream, handover) = start_verified("output", |handover, calls| {
        let (flags, errors) = (Arc::clone(&flags), error_tx.clone());
        match format {
            SampleFormat::F32 => build::<f32>(&device, &config, handover, calls, flags, errors),
            SampleFormat::I32 => build::<i32>(&device, &config, handover, calls, flags, errors),
            SampleFormat::I16 => build::<i16>(&device, &config, handover, calls, flags, errors),
            other => Err(format!("sample format {other} is not supported")),
        }
        .map_err(|e| format!("{e} (device '{device_id}')"))
    })?;
    hand_over(handover, Renderer::new(processor, info.total_samples));
    let input_stream = input_stream.map(|((stream, handover), link)| {
        hand_over(handover, link);
        stream
    });

    let mut ending = RealtimeEnding::Completed;
    let mut end_sent = false;
    let mut last_samples = 0;
    let mut last_progress = Instant::now();
    let mut stalled_since = Instant::now();
    while !flags.done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
        if let Ok(message) = error_rx.try_recv() {
            if flags.device_failed.load(Ordering::Acquire) {
                ending = RealtimeEnding::DeviceError(message);
                break;
            }
        }
        if !end_sent && interrupts.iter().any(|f| f.load(Ordering::Relaxed)) {
            ending = RealtimeEnding::Interrupted;
            end_sent = commands.try_send(Command::EndRun).is_ok();
        }
        let samples = Counters::get(&counters.samples);
        if samples != last_samples {
            last_samples = samples;
            stalled_since = Instant::now();
        } else if stalled_since.elapsed() > Duration::from_secs(3) {
            ending = RealtimeEnding::DeviceError(format!(
                "the device '{device_id}' stopped asking for samples (no callback for 3 s)"
            ));
            break;
        }
        if last_progress.elapsed() >= Duration::from_millis(250) {
            last_progress = Instant::now();
            progress(samples, info.total_samples);
        }
    }
    // Give the callback a moment to play the ramp's last block, then stop the stream; dropping
    // it joins the audio thread and drops the processor there, after its last callback.
    std::thread::sleep(Duration::from_millis(
        (2.0 * info.block_frames as f64 / info.sample_rate_hz * 1e3).ceil() as u64 + 5,
    ));
    let _ = stream.pause();
    drop(stream);
    drop(input_stream);
    progress(Counters::get(&counters.samples), info.total_samples);
    Ok(RealtimeReport {
        ending,
        device: device_id,
        xruns: flags.xruns.load(Ordering::Relaxed),
        realtime_denied: flags.realtime_denied.load(Ordering::Relaxed),
        callbacks: flags.callbacks.load(Ordering::Relaxed),
        preroll_frames: flags.preroll_frames.load(Ordering::Relaxed),
        sample_format: format.to_string(),
    })
}

/// Open and start the input stream that feeds the engine's input link with channel
/// `audio.input_channel` of `audio.input_device` (a full link drops samples; the engine counts
/// what it misses).
fn open_input(
    host: &Host,
    audio: &AudioSection,
    info: &RunInfo,
) -> Result<(cpal::Stream, HeapProd<CaptureSide>), String> {
    let (device, id) = device(host, Direction::Input, &audio.input_device)?;
    let channels = input_channels(host, &device, &id, audio.input_channel)?;
    let config = StreamConfig {
        channels,
        sample_rate: info.sample_rate_hz.round() as u32,
        buffer_size: BufferSize::Fixed(info.block_frames as u32),
    };
    let channel = audio.input_channel;
    start_verified("input", |mut handover, calls| {
        let mut link: Option<CaptureSide> = None;
        device
            .build_input_stream::<f32, _, _>(
                config,
                move |data: &[f32], _: &cpal::InputCallbackInfo| {
                    calls.fetch_add(1, Ordering::Release);
                    if link.is_none() {
                        link = handover.try_pop();
                    }
                    if let Some(link) = link.as_mut() {
                        link.push(data.chunks_exact(channels as usize).map(|f| f[channel]));
                    }
                },
                |_err: cpal::Error| {},
                None,
            )
            .map_err(|e| format!("cannot open the input stream: {e}"))
    })
}

/// f32 where the device takes it (no conversion), else the widest integer format it offers.
fn pick_format(device: &Device, config: &StreamConfig) -> Result<SampleFormat, String> {
    let supported: Vec<_> = device
        .supported_output_configs()
        .map_err(|e| {
            format!(
                "cannot query the output device's configurations ({e}): it cannot play; \
                 choose another with --device (`entrain devices` lists them)"
            )
        })?
        .filter(|c| {
            c.channels() == config.channels
                && c.min_sample_rate() <= config.sample_rate
                && config.sample_rate <= c.max_sample_rate()
        })
        .collect();
    for format in [SampleFormat::F32, SampleFormat::I32, SampleFormat::I16] {
        if supported.iter().any(|c| c.sample_format() == format) {
            return Ok(format);
        }
    }
    Err(format!(
        "the device offers no f32/i32/i16 configuration with {} channels at {} Hz; `entrain devices` lists what it supports",
        config.channels, config.sample_rate
    ))
}

/// The output stream: silence until the [`Renderer`] arrives through `handover`, then the run.
fn build<T>(
    device: &Device,
    config: &StreamConfig,
    mut handover: HeapCons<Renderer>,
    calls: Arc<AtomicU64>,
    flags: Arc<StreamFlags>,
    errors: crossbeam_channel::Sender<String>,
) -> Result<cpal::Stream, String>
where
    T: SizedSample + FromSample<f32> + Send + 'static,
{
    let mut renderer: Option<Renderer> = None;
    let channels = usize::from(config.channels);
    let data_flags = Arc::clone(&flags);
    let data_callback = move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
        calls.fetch_add(1, Ordering::Release);
        if renderer.is_none() {
            renderer = handover.try_pop();
        }
        match renderer.as_mut() {
            Some(renderer) => {
                data_flags.callbacks.fetch_add(1, Ordering::Relaxed);
                if renderer.render(data) {
                    data_flags.done.store(true, Ordering::Release);
                }
            }
            None => {
                let frames = (data.len() / channels.max(1)) as u64;
                data_flags
                    .preroll_frames
                    .fetch_add(frames, Ordering::Relaxed);
                data.fill(T::EQUILIBRIUM);
            }
        }
    };
    let error_flags = flags;
    let error_callback = move |err: cpal::Error| match err.kind() {
        cpal::ErrorKind::Xrun => {
            error_flags.xruns.fetch_add(1, Ordering::Relaxed);
        }
        cpal::ErrorKind::RealtimeDenied => {
            error_flags.realtime_denied.store(true, Ordering::Relaxed)
        }
        cpal::ErrorKind::DeviceChanged => {}
        _ => {
            error_flags.device_failed.store(true, Ordering::Release);
            let _ = errors.try_send(err.to_string());
        }
    };
    device
        .build_output_stream::<T, _, _>(*config, data_callback, error_callback, None)
        .map_err(|e| format!("cannot open the output stream: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::{SampleFormat, SupportedBufferSize, SupportedStreamConfigRange};

    fn range(
        channels: u16,
        rates: (u32, u32),
        buffer: Option<(u32, u32)>,
        format: SampleFormat,
    ) -> SupportedStreamConfigRange {
        let buffer = buffer.map_or(SupportedBufferSize::Unknown, |(min, max)| {
            SupportedBufferSize::Range { min, max }
        });
        SupportedStreamConfigRange::new(channels, rates.0, rates.1, buffer, format)
    }

    #[test]
    fn a_devices_configurations_fit_on_one_line() {
        assert_eq!(summarise_configs(&[]), None);
        let one = [range(2, (48_000, 48_000), None, SampleFormat::F32)];
        assert_eq!(
            summarise_configs(&one).unwrap(),
            "2 channels, 48000 Hz, buffer size not reported; f32"
        );
        // As ALSA's plug devices list them: a range per channel count and format.
        let many: Vec<_> = (1..=64)
            .flat_map(|ch| {
                [SampleFormat::I16, SampleFormat::F32, SampleFormat::I16].map(|format| {
                    range(ch, (1, 384_000), Some((16, 4_096 + u32::from(ch))), format)
                })
            })
            .collect();
        assert_eq!(
            summarise_configs(&many).unwrap(),
            "1–64 channels, 1–384000 Hz, buffers of 16–4160 frames; i16 f32"
        );
    }
}
