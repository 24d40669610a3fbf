//! The `entrain` command line.
//!
//! Owns: argument parsing (clap), reading profile files, progress and human summaries, exit
//! codes. May call everything else; it is the control half's front door.
//!
//! Exit codes: 0 success; 1 a run failed (I/O, recorder, audio device); 2 bad input
//! (arguments, profile, coupling files, unknown device); 130 interrupted by Ctrl-C, SIGTERM or
//! SIGHUP (outputs are complete up to the stop).

use crate::engine;
use crate::io::audio::RealtimeEnding;
use crate::profile::{self, Profile};
use crate::record::Summary;
use crate::run;
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `print!("{text}")` in the manner of `out!`.
fn write_out(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// Real-time closed-loop phase-locked stimulation: simulate a rhythm, estimate its phase, and
/// stimulate at a chosen phase through a safety limiter — offline or on hardware.
#[derive(Debug, Parser)]
#[command(name = "entrain", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a profile and write its outputs: offline (as fast as possible, deterministic) or,
    /// with --realtime, on a sound card.
    Run {
        /// Profile file (TOML). Omit it to run the embedded quickstart.
        profile: Option<PathBuf>,
        /// Output folder (default: runs/<profile name>-<n>, never overwriting an earlier run).
        /// A folder that already holds a run is refused unless --overwrite is given.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the run already in --out (its outputs, report and heat map).
        #[arg(long, requires = "out")]
        overwrite: bool,
        /// Override the profile's duration, seconds.
        #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
        duration: Option<f64>,
        /// Override any profile value, e.g. --set stimulation.target_phase_deg=90 (repeatable).
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        set: Vec<String>,
        /// Print only warnings and errors: no progress, no summary.
        #[arg(long, short)]
        quiet: bool,
        /// Run in real time on a sound card: the audio callback is the clock and the channel
        /// map of [output] goes to the device of [audio].
        #[arg(long)]
        realtime: bool,
        /// Audio host for --realtime (auto, alsa, jack); overrides audio.host.
        #[arg(long, requires = "realtime")]
        host: Option<String>,
        /// Output device for --realtime: id, name or index from `entrain devices`; overrides
        /// audio.output_device.
        #[arg(long, requires = "realtime")]
        device: Option<String>,
        /// With --realtime: read stimulation commands from standard input while the run plays,
        /// one per line: `stop`, `start`, `phase DEG`, `amplitude A`. Each applies at the next
        /// block; values beyond the profile's safety limits are clamped (the summary counts
        /// `commands` and `clamped_commands`).
        #[arg(long, requires = "realtime")]
        commands: bool,
    },
    /// List audio hosts, devices, their supported configurations and the defaults.
    Devices,
    /// Measure the round-trip latency of an output → input loopback (a cable, or a software
    /// route such as a JACK connection) with test impulses.
    Latency {
        /// Audio host: auto, alsa, jack.
        #[arg(long, default_value = "auto")]
        host: String,
        /// Output device (id, name or index from `entrain devices`; default: the host's).
        #[arg(long, default_value = "")]
        output_device: String,
        /// Input device (id, name or index; default: the host's).
        #[arg(long, default_value = "")]
        input_device: String,
        /// Sample rate, Hz.
        #[arg(long, default_value_t = 48000)]
        rate: u32,
        /// Frames per callback.
        #[arg(long, default_value_t = 64)]
        block: u32,
        /// Output channel carrying the impulses (0-based).
        #[arg(long, default_value_t = 0)]
        output_channel: usize,
        /// Input channel listening for them (0-based).
        #[arg(long, default_value_t = 0)]
        input_channel: usize,
        /// Impulses to time.
        #[arg(long, default_value_t = 20)]
        repetitions: usize,
        /// Time between impulses, ms (longer than the longest round trip expected).
        #[arg(long, default_value_t = 100.0)]
        interval_ms: f64,
        /// Impulse amplitude (full scale = 1).
        #[arg(long, default_value_t = 0.5)]
        amplitude: f32,
        /// Impulses in the first this many ms after both streams run are not timed: the
        /// loopback settles (a JACK connection made then re-sorts the server's graph).
        #[arg(long, default_value_t = 500.0)]
        settle_ms: f64,
        /// Give up after this many seconds (after the settling time).
        #[arg(long, default_value_t = 30.0)]
        timeout_s: f64,
    },
    /// Run a grid of offline runs over profile keys (in parallel, resumable, shardable) and
    /// collect their figures in DIR/sweep.csv; `entrain sweep merge` joins shard folders.
    Sweep(SweepArgs),
    /// Time the peers' standard problem (100 Stuart–Landau nodes, dense coupling, dt = 0.1 ms)
    /// and its variants (ns per node-step, the closed loop's µs per step), the cost of each
    /// stage of the loop, and with --capacity the largest real-time network per model.
    Bench(BenchArgs),
    /// Measure the phase-response curve of the profile's plant to its stimulation pulse:
    /// single pulses at evenly spaced phases, paired with unpulsed copies that share the noise;
    /// writes prc.csv, prc_trials.csv, prc.json and prc.svg.
    Prc(PrcArgs),
    /// Draw a run's node recording (`nodes.f32`, from `[output] nodes_rate_hz`): a time × node
    /// heat map, and for grid plants snapshots of the grid, as SVG files.
    Heatmap {
        /// The run's output folder.
        dir: PathBuf,
        /// Where to write the pictures (default: the run's folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Grid snapshots at this many times spread over the run (grid plants; 0 = none, at
        /// most 32).
        #[arg(long, default_value_t = 6)]
        snapshots: usize,
        /// Heat map width, pixels.
        #[arg(long, default_value_t = 1200)]
        width: u32,
        /// Heat map height, pixels.
        #[arg(long, default_value_t = 600)]
        height: u32,
    },
    /// Write one self-contained HTML page of a run's figures: pulse phases (rose), phase
    /// error, PLV over time, spectra before / during / after, a stretch of signal, and for
    /// real-time runs the block times. Images also go to DIR/report/ with figures.json.
    Report {
        /// The run's output folder (from `entrain run ... --out DIR`).
        dir: PathBuf,
        /// The page (default: DIR/report.html); its figures go in the folder of the same name
        /// without .html.
        #[arg(long, value_name = "FILE.html")]
        out: Option<PathBuf>,
        /// The stretch of signal to draw, seconds since the run's start (default: 1 s from
        /// 0.25 s before stimulation starts).
        #[arg(long, value_name = "START:END")]
        stretch: Option<String>,
    },
    /// Benchmark every phase estimator against ground truth on the synthetic set and/or
    /// recorded files; prints the table and writes evaluate.csv, evaluate_strata.csv and
    /// error_vs_snr.svg.
    Evaluate {
        /// Include the synthetic set (the default when no --file is given).
        #[arg(long)]
        synthetic: bool,
        /// A recorded file (WAV, or CSV of `value` or `time_s,value` rows); repeatable, each
        /// followed by its --band.
        #[arg(long = "file", value_name = "PATH")]
        files: Vec<PathBuf>,
        /// The rhythm's band of each --file, Hz, as LO:HI (in the same order).
        #[arg(long = "band", value_name = "LO:HI")]
        bands: Vec<String>,
        /// Sample rate of one-column CSV files, Hz.
        #[arg(long, value_name = "HZ")]
        csv_rate: Option<f64>,
        /// The channel of each WAV --file to score (0-based).
        #[arg(long, default_value_t = 0, value_name = "N")]
        channel: usize,
        /// Declared loop latency: estimators predict this far ahead and are scored against the
        /// truth that far ahead, seconds.
        #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
        latency: f64,
        /// Sample rate of the synthetic set, Hz (100 Hz … 1 MHz; --rate × --duration at most
        /// 10 000 000 samples).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Length of each synthetic record, seconds (at least 10).
        #[arg(long, default_value_t = 60.0)]
        duration: f64,
        /// Seed of the synthetic set.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder (default: runs/evaluate).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate a profile and print the resolved configuration and its declared latency.
    Check {
        /// Profile file (TOML). Omit it to check the embedded quickstart.
        profile: Option<PathBuf>,
        /// Override any profile value, as for `run`.
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        set: Vec<String>,
    },
}

/// `entrain bench …`.
#[derive(Debug, Args)]
struct BenchArgs {
    /// Run only this problem (an exact name), or those whose name contains this; the stage
    /// costs and the SL-DN scaling are then skipped (a profile of one problem sees only it);
    /// --capacity still runs after it.
    #[arg(long)]
    only: Option<String>,
    /// Timed repeats per problem (the fastest is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Also write the problems' table as CSV here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Find each model's real-time capacity: the most nodes (sparse graph, mean degree 10,
    /// delays 1–20 ms, noise on, plant stepped every sample) whose 99th-percentile block time
    /// stays within --budget of the block period. Takes minutes.
    #[arg(long)]
    capacity: bool,
    /// Models for --capacity (repeatable; default: all).
    #[arg(long = "model")]
    models: Vec<String>,
    /// Sample rate for --capacity, Hz.
    #[arg(long, default_value_t = 48_000.0)]
    rate: f64,
    /// Block size for --capacity, frames.
    #[arg(long, default_value_t = 64)]
    block: usize,
    /// Share of the block period the 99th-percentile block may use.
    #[arg(long, default_value_t = 0.5)]
    budget: f64,
    /// Time the real-time capacity alone (as --capacity, without the problems, the stage costs
    /// and the SL-DN scaling).
    #[arg(long)]
    capacity_only: bool,
    /// With --capacity or --capacity-only: measure each model's block load at this many nodes
    /// instead of searching (median and p99 share of the period, and the median ns per
    /// node-step: a steadier figure than the search's for comparing two builds).
    #[arg(long, value_name = "N")]
    nodes: Option<usize>,
    /// Override a setting of every capacity run, as `entrain run --set` (repeatable), e.g.
    /// `--set model.integrator=euler_maruyama`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Write the SL-DN field's cost-per-step against grid size here (SVG).
    #[arg(long, value_name = "FILE.svg")]
    fft_plot: Option<PathBuf>,
}

/// Every `entrain bench` argument checked before any timing, so that a mistake costs seconds,
/// not the minutes of the problems that would otherwise run first.
fn check_bench_args(args: &BenchArgs) -> Result<(), String> {
    let capacity = args.capacity || args.capacity_only;
    if args.nodes.is_some() && !capacity {
        return Err("--nodes sizes the capacity runs: add --capacity or --capacity-only".into());
    }
    if !args.models.is_empty() && !capacity {
        return Err(
            "--model picks the capacity runs' models: add --capacity or --capacity-only".into(),
        );
    }
    let fewest = crate::bench::CAPACITY_MEAN_DEGREE + 1;
    if args.nodes.is_some_and(|n| n < fewest) {
        return Err(format!(
            "--nodes must be at least {fewest}: the capacity network is a random graph of mean \
             degree {}",
            crate::bench::CAPACITY_MEAN_DEGREE
        ));
    }
    if args.repeats == 0 {
        return Err("--repeats must be at least 1 (the fastest repeat is reported)".into());
    }
    for (option, path) in [("--out", &args.out), ("--fft-plot", &args.fft_plot)] {
        if let Some(parent) = path.as_deref().and_then(Path::parent) {
            if !parent.as_os_str().is_empty() && !parent.is_dir() {
                return Err(format!(
                    "{option} {}: the folder '{}' does not exist; create it first",
                    path.as_deref().unwrap_or(parent).display(),
                    parent.display()
                ));
            }
        }
    }
    if capacity {
        if !(args.budget > 0.0 && args.budget <= 1.0) {
            return Err(format!(
                "--budget {}: expected a share of the block period in (0, 1], e.g. 0.5",
                args.budget
            ));
        }
        crate::profile::check_sample_rate(args.rate).map_err(|e| format!("--rate: {e}"))?;
        crate::profile::check_block_frames(args.block).map_err(|e| format!("--block: {e}"))?;
        // Building each model's capacity profile checks the model's name and the --set
        // overrides with the profile's own rules and messages.
        let models: Vec<&str> = if args.models.is_empty() {
            crate::bench::capacity_models()
        } else {
            args.models.iter().map(String::as_str).collect()
        };
        for model in models {
            let nodes = args.nodes.unwrap_or(64);
            crate::bench::capacity_profile(model, nodes, args.rate, args.block, 1.0, &args.sets)?;
        }
    }
    Ok(())
}

/// `entrain bench`: the problems' table, the stage costs, and the capacity search.
fn bench(args: &BenchArgs) -> ExitCode {
    use crate::bench;
    if let Err(e) = check_bench_args(args) {
        err!("error: {e}");
        return ExitCode::from(BAD_INPUT);
    }
    // Figures from two machines compare only with this in view.
    out!(
        "per-node loops: {} (AVX-512 only on AMD CPUs, see src/lanes.rs)",
        crate::lanes::Lanes::chosen().name()
    );
    if !args.capacity_only {
        let code = bench_problems(args.only.as_deref(), args.repeats, args.out.as_deref());
        if code != ExitCode::SUCCESS {
            return code;
        }
    }
    if !args.capacity_only && args.only.is_none() {
        match bench::stage_costs(480_000) {
            Ok(stages) => {
                out!("\nper-stage cost of the loop (quickstart components, ns per sample):");
                for (name, ns) in stages {
                    out!("  {name:<40} {ns:>8.1}");
                }
            }
            Err(e) => {
                err!("error: stage costs: {e}");
                return ExitCode::from(FAILED);
            }
        }
        match bench::sl_dn_scaling(&[8, 16, 32, 64, 128], args.repeats) {
            Ok(points) => {
                // c · n log2 n fitted by least squares through the origin.
                let model = |n: usize| n as f64 * (n as f64).log2();
                let c = points.iter().map(|&(n, t)| t * model(n)).sum::<f64>()
                    / points.iter().map(|&(n, _)| model(n).powi(2)).sum::<f64>();
                out!("\nSL-DN field, one step (two FFT convolutions per stage), by grid size:");
                for &(n, us) in &points {
                    out!(
                        "  {n:>6} nodes {us:>10.2} µs/step {:>7.1} ns/node-step   measured / (c·n·log2 n) {:.2}",
                        us * 1e3 / n as f64,
                        us / (c * model(n))
                    );
                }
                if let Some(path) = &args.fft_plot {
                    let lines = [
                        crate::render::Line {
                            name: "measured".into(),
                            points: points.iter().map(|&(n, t)| (n as f64, t)).collect(),
                        },
                        crate::render::Line {
                            name: format!("{c:.2e} · n · log2 n"),
                            points: points
                                .iter()
                                .map(|&(n, _)| (n as f64, c * model(n)))
                                .collect(),
                        },
                    ];
                    if let Err(e) = crate::render::lines_svg(
                        path,
                        "SL-DN field: cost of one step against grid size",
                        "nodes n (square grid, periodic)",
                        "µs per step",
                        &lines,
                        (800, 500),
                    ) {
                        err!("error: {e}");
                        return ExitCode::from(FAILED);
                    }
                }
            }
            Err(e) => {
                err!("error: SL-DN scaling: {e}");
                return ExitCode::from(FAILED);
            }
        }
    }
    if args.capacity || args.capacity_only {
        let models: Vec<String> = if args.models.is_empty() {
            bench::capacity_models()
                .iter()
                .map(|m| m.to_string())
                .collect()
        } else {
            args.models.clone()
        };
        if let Some(n) = args.nodes {
            return bench_load_at(&models, n, args);
        }
        out!(
            "\nreal-time capacity at {} Hz, {}-frame blocks, p99 block time ≤ {:.0} % of the period:",
            args.rate,
            args.block,
            args.budget * 100.0
        );
        for model in &models {
            let progress = |n: usize, load: &bench::BlockLoad| {
                err!("  {model}: {n} nodes → p99 {:.1} %", load.p99 * 100.0);
            };
            match bench::capacity(model, args.rate, args.block, args.budget, &args.sets, progress) {
                Ok((n, load)) => out!(
                    "  {model:<14} {:<16} {n:>7} nodes   p99 {:>5.1} %   median {:>5.1} %   {:.0} bytes/node",
                    load.scheme,
                    load.p99 * 100.0,
                    load.median * 100.0,
                    load.plant_bytes as f64 / n as f64
                ),
                Err(e) => {
                    err!("error: {e}");
                    return ExitCode::from(BAD_INPUT);
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// `entrain bench --capacity --nodes N`: each model's block load at `n` nodes.
fn bench_load_at(models: &[String], n: usize, args: &BenchArgs) -> ExitCode {
    use crate::bench;
    out!(
        "\nblock load at {} Hz, {}-frame blocks, {n} nodes (the capacity runs' network):",
        args.rate,
        args.block
    );
    for model in models {
        let load = bench::capacity_profile(model, n, args.rate, args.block, 1.0, &args.sets)
            .and_then(|profile| bench::block_load(&profile));
        match load {
            Ok(load) => out!(
                "  {model:<14} {:<16} {n:>7} nodes   p99 {:>5.1} %   median {:>5.1} %   {:.2} ns/node-step (median)   {:.0} bytes/node",
                load.scheme,
                load.p99 * 100.0,
                load.median * 100.0,
                load.median / (args.rate * n as f64) * 1e9,
                load.plant_bytes as f64 / n as f64
            ),
            Err(e) => {
                err!("error: {e}");
                return ExitCode::from(BAD_INPUT);
            }
        }
    }
    ExitCode::SUCCESS
}

/// The table of the standard problem and its variants.
fn bench_problems(only: Option<&str>, repeats: usize, out: Option<&Path>) -> ExitCode {
    use crate::bench;
    // An exact name picks one problem; otherwise every name containing the text.
    let all = bench::problems();
    let exact = only.and_then(|o| all.iter().find(|p| p.name == o).cloned());
    let problems: Vec<_> = match exact {
        Some(p) => vec![p],
        None => all
            .into_iter()
            .filter(|p| only.is_none_or(|o| p.name.contains(o)))
            .collect(),
    };
    if problems.is_empty() {
        let names: Vec<_> = bench::problems().iter().map(|p| p.name).collect();
        err!(
            "error: --only {}: no such problem; the problems are {}",
            only.unwrap_or(""),
            names.join(", ")
        );
        return ExitCode::from(BAD_INPUT);
    }
    let mut csv = String::from("problem,nodes,steps,ns_per_node_step,wall_s,peer\n");
    out!(
        "{:<34} {:>6} {:>8} {:>16}   compare with",
        "problem",
        "nodes",
        "steps",
        "ns/node-step"
    );
    for p in &problems {
        match bench::measure(p, repeats) {
            Ok(t) => {
                out!(
                    "{:<34} {:>6} {:>8} {:>16.2}   {}",
                    p.name,
                    p.nodes,
                    p.steps,
                    t.ns_per_node_step,
                    p.peer
                );
                // The peers are a comma-separated list: quoted, as one field.
                csv.push_str(&format!(
                    "{},{},{},{},{},\"{}\"\n",
                    p.name, p.nodes, p.steps, t.ns_per_node_step, t.wall_s, p.peer
                ));
            }
            Err(e) => {
                err!("error: {}: {e}", p.name);
                return ExitCode::from(FAILED);
            }
        }
    }
    if let Some(standard) = problems.iter().find(|p| p.name == "sl_dense_n100_euler") {
        match bench::closed_loop(standard, repeats) {
            Ok(us) => out!(
                "closed loop, {} (new input in, every state out, each step): {us:.3} µs/step",
                standard.name
            ),
            Err(e) => err!("error: closed loop: {e}"),
        }
    }
    if let Some(path) = out {
        if let Err(e) = std::fs::write(path, csv) {
            err!("error: cannot write '{}': {e}", path.display());
            return ExitCode::from(FAILED);
        }
    }
    ExitCode::SUCCESS
}

/// `entrain prc …`.
#[derive(Debug, Args)]
struct PrcArgs {
    /// Profile file (TOML). Omit it to use the embedded quickstart.
    profile: Option<PathBuf>,
    /// Override any profile value, as for `run` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Target phases, evenly spaced over the cycle (at most 3600).
    #[arg(long, default_value_t = 24)]
    phases: usize,
    /// Trials per phase (each with its own noise seed: run.seed, +1, …); at most 100 000
    /// trials in all.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Periods from the pulse to the phase comparison (1 to 1000).
    #[arg(long, default_value_t = 5.0)]
    cycles: f64,
    /// Settling time before each pulse, seconds: at least 5 periods of the rhythm (its second
    /// half measures the period).
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    settle: f64,
    /// The phase: `plant` (the model's own) or `observable` (rising mean crossings of the
    /// sensor signal); default: the plant's where the model has one.
    #[arg(long, value_parser = ["plant", "observable"])]
    phase: Option<String>,
    /// Trials at a time (default and most: the CPUs available).
    #[arg(long)]
    jobs: Option<usize>,
    /// Output folder (default: runs/prc-<profile name>-<n>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only warnings and errors: no progress, no summary.
    #[arg(long, short)]
    quiet: bool,
}

/// The worker threads for `--jobs` (sweep, prc): every CPU available by default, and never
/// more (CPU-bound runs gain nothing from more threads, and each idle one still costs); a larger
/// request is capped with a note unless `quiet`.
fn workers(requested: Option<usize>, quiet: bool) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match requested {
        None => cpus,
        Some(n) if n > cpus => {
            if !quiet {
                err!(
                    "note: --jobs {n}: using {cpus}, the number of CPUs available (more \
                     workers would only share them)"
                );
            }
            cpus
        }
        Some(n) => n.max(1),
    }
}

/// `entrain prc`: measure, write the files, print the table's headline. An interrupt (Ctrl-C,
/// SIGTERM, SIGHUP) keeps the completed rounds of trials, writes them, and exits 130.
fn prc(args: PrcArgs) -> ExitCode {
    use crate::prc::{self, PhaseFrom, Settings};
    let (profile, name) = match load(args.profile.as_deref(), &args.set) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let settings = Settings {
        phases: args.phases,
        trials: args.trials,
        cycles: args.cycles,
        settle_s: args.settle,
        phase_from: match args.phase.as_deref() {
            Some("plant") => Some(PhaseFrom::Plant),
            Some(_) => Some(PhaseFrom::Observable),
            None => None,
        },
    };
    let jobs = workers(args.jobs, args.quiet);
    let quiet = args.quiet;
    let terminal = std::io::stderr().is_terminal();
    // Away from a terminal (a log file, a batch job) a line per completed round, at most one
    // every 10 s: what an interrupt would keep.
    let mut logged: Option<(usize, std::time::Instant)> = None;
    let progress = |p: prc::Progress| {
        if quiet {
            return;
        }
        if terminal {
            if p.done.is_multiple_of(10) || p.done == p.total {
                err_inline!("\r  {}/{} trials, ETA {:.0} s   ", p.done, p.total, p.eta_s);
                if p.done == p.total {
                    err!();
                }
            }
        } else if p.rounds > logged.map_or(0, |(r, _)| r)
            && logged.is_none_or(|(_, at)| at.elapsed().as_secs() >= 10)
        {
            logged = Some((p.rounds, std::time::Instant::now()));
            err!(
                "  {}/{} trials per phase done ({}/{} trials), ETA {:.0} s",
                p.rounds,
                settings.trials,
                p.done,
                p.total,
                p.eta_s
            );
        }
    };
    let interrupt = interrupt_flag();
    let measured = match prc::measure(&profile, &settings, jobs, &interrupt, progress) {
        Ok(Some(m)) => m,
        Ok(None) => {
            if terminal && !quiet {
                err!();
            }
            err!(
                "interrupted before every phase had its first trial: nothing written (the \
                 trials run in rounds, and an interrupt keeps the completed ones)"
            );
            return ExitCode::from(INTERRUPTED);
        }
        Err(e) => {
            err!("error: {name}: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let out = args.out.unwrap_or_else(|| {
        let stem = args
            .profile
            .as_deref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "quickstart".into());
        (1..)
            .map(|n| PathBuf::from("runs").join(format!("prc-{stem}-{n:03}")))
            .find(|p| !p.exists())
            .unwrap_or_else(|| PathBuf::from("runs").join(format!("prc-{stem}")))
    });
    let kept = measured.trials_per_phase;
    let title = if measured.interrupted {
        format!(
            "Phase-response curve: {name} (interrupted: {kept} of {} trials per phase)",
            settings.trials
        )
    } else {
        format!("Phase-response curve: {name}")
    };
    if let Err(e) = prc::write(&out, &measured, &title) {
        err!("error: {e}");
        return ExitCode::from(FAILED);
    }
    if !quiet {
        let f = &measured.fit;
        out!(
            "{} phases × {} trials, period {:.2} ms, phase from the {} → {}",
            settings.phases,
            kept,
            measured.period_s * 1e3,
            match measured.phase_from {
                PhaseFrom::Plant => "plant",
                PhaseFrom::Observable => "observable",
            },
            out.display()
        );
        out!(
            "  largest advance {:+.2}° at {:.0}°, largest delay {:+.2}° at {:.0}°",
            measured.max_advance.0,
            measured.max_advance.1,
            measured.max_delay.0,
            measured.max_delay.1
        );
        out!(
            "  first harmonic: {:+.2}° {:+.2}° cos θ {:+.2}° sin θ (amplitude {:.2}°, advance peak at {:.0}°, residual {:.2}°)",
            f.offset_deg, f.cos_deg, f.sin_deg, f.amplitude_deg, f.advance_phase_deg, f.residual_rms_deg
        );
        out!("  outputs: prc.csv, prc_trials.csv, prc.json, prc.svg");
    }
    if measured.interrupted {
        if terminal && !quiet {
            err!();
        }
        err!(
            "interrupted: kept the first {kept} of {} trials at every phase, a complete PRC \
             with fewer trials (prc.json says \"interrupted\": true); the other {} trials were \
             not run or not kept",
            settings.trials,
            settings.phases * (settings.trials - kept)
        );
        return ExitCode::from(INTERRUPTED);
    }
    ExitCode::SUCCESS
}

/// `entrain sweep …`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct SweepArgs {
    #[command(subcommand)]
    action: Option<SweepAction>,
    /// Profile file (TOML).
    #[arg(required = true)]
    profile: Option<PathBuf>,
    /// A varied key, KEY=START:STOP:STEP (repeatable, each key once; the first varies
    /// slowest; at most 100 000 values). `run.seed=…` gives each point its first seed.
    #[arg(long = "vary", value_name = "KEY=START:STOP:STEP")]
    vary: Vec<String>,
    /// Override any profile value for every run (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Seeds per grid point (the profile's seed, or a run.seed axis's value, +1, …); grid
    /// points × seeds at most 100 000 runs.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Runs at a time (default and most: the CPUs available).
    #[arg(long)]
    jobs: Option<usize>,
    /// Output folder (default: runs/sweep-<profile name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only the I-th of N disjoint slices (e.g. a cluster array job); merge them after.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Keep each run's signals.wav (dropped by default: a sweep is about the figures).
    #[arg(long)]
    keep_signals: bool,
    /// Print only warnings and errors: no progress, no summary.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum SweepAction {
    /// Merge shard folders of one sweep into one folder and rebuild its sweep.csv.
    Merge {
        /// The shard folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Draw a 2-D sweep as a heat map (an Arnold tongue when x is the stimulation frequency and
    /// y its amplitude, with the analytic edge of a single SL or Kuramoto oscillator overlaid).
    Tongue {
        /// The sweep folder.
        dir: PathBuf,
        /// Key on the x axis.
        #[arg(long, default_value = "stimulation.freq_hz")]
        x: String,
        /// Key on the y axis.
        #[arg(long, default_value = "stimulation.amplitude")]
        y: String,
        /// The sweep.csv column drawn.
        #[arg(long, default_value = "plv_during")]
        value: String,
        /// The picture (default: DIR/tongue.svg).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `entrain sweep tongue`: the heat map of a 2-D sweep, with the analytic locking edge where the
/// swept profile has one.
fn tongue(dir: &Path, x: &str, y: &str, value: &str, out: Option<PathBuf>) -> ExitCode {
    use crate::render::{grid_svg, Line};
    use crate::sweep as sw;
    let bad = |e: String| {
        err!("error: {e}");
        ExitCode::from(BAD_INPUT)
    };
    let sw::Grid { xs, ys, values } = match sw::grid(dir, x, y, value) {
        Ok(g) => g,
        Err(e) => return bad(e),
    };
    // What can't be drawn is bad input (exit 2); only a failed write is exit 1.
    if let Err(e) = crate::render::check_grid((x, y, value), &xs, &ys, &values) {
        return bad(format!("{}: {e}", dir.join("sweep.csv").display()));
    }
    let mut lines = Vec::new();
    let edge = sw::read_plan(dir)
        .ok()
        .and_then(|plan| {
            profile::load(&plan.profile_path, &plan.profile_text, &plan.sets)
                .ok()
                .map(|(p, _)| p)
        })
        .and_then(|p| sw::analytic_edge(&p));
    if let (Some((f0, k)), "stimulation.freq_hz", "stimulation.amplitude") = (edge, x, y) {
        let top = ys.last().copied().unwrap_or(0.0) * 1.05;
        let n = 50;
        for sign in [-1.0, 1.0] {
            lines.push(Line {
                name: if sign < 0.0 {
                    "analytic edge |Ω − ω| = F/r".into()
                } else {
                    String::new()
                },
                points: (0..=n)
                    .map(|i| {
                        let a = top * i as f64 / n as f64;
                        (f0 + sign * k * a, a)
                    })
                    .collect(),
            });
        }
    }
    let out = out.unwrap_or_else(|| dir.join("tongue.svg"));
    match grid_svg(
        &out,
        &format!("{value} over {x} × {y}"),
        (x, y, value),
        &xs,
        &ys,
        &values,
        &lines,
        (900, 560),
    ) {
        Ok(()) => {
            out!("{}: {} × {} cells", out.display(), xs.len(), ys.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            err!("error: {e}");
            ExitCode::from(FAILED)
        }
    }
}

/// `entrain sweep`: bad arguments exit 2, failed runs 1, an interrupt (Ctrl-C, SIGTERM, SIGHUP)
/// 130 (done runs are kept).
fn sweep(args: SweepArgs) -> ExitCode {
    use crate::sweep::{self as sw, Axis, Plan, Shard};
    let bad = |e: String| {
        err!("error: {e}");
        ExitCode::from(BAD_INPUT)
    };
    match args.action {
        Some(SweepAction::Merge { dirs, out }) => {
            return match sw::merge(&dirs, &out) {
                Ok(rows) => {
                    let runs = if rows == 1 { "run" } else { "runs" };
                    out!("{}: {rows} {runs} in sweep.csv", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => bad(e),
            };
        }
        Some(SweepAction::Tongue {
            dir,
            x,
            y,
            value,
            out,
        }) => return tongue(&dir, &x, &y, &value, out),
        None => {}
    }
    let Some(path) = args.profile else {
        return bad("give a profile: entrain sweep PROFILE --vary KEY=START:STOP:STEP".into());
    };
    let text = match profile::read(&path) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    let mut axes = Vec::new();
    for v in &args.vary {
        match Axis::parse(v) {
            Ok(a) => axes.push(a),
            Err(e) => return bad(e),
        }
    }
    if args.seeds == 0 {
        return bad("--seeds must be at least 1".into());
    }
    let shard = match args.shard.as_deref().map(Shard::parse).transpose() {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let plan = Plan {
        profile_path: path.display().to_string(),
        profile_text: text,
        sets: args.set,
        axes,
        seeds: args.seeds,
        keep_signals: args.keep_signals,
    };
    if let Err(e) = plan.check() {
        return bad(e);
    }
    let out = args.out.unwrap_or_else(|| {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("profile");
        PathBuf::from(format!("runs/sweep-{stem}"))
    });
    let jobs = workers(args.jobs, args.quiet);
    let interrupt = interrupt_flag();
    let quiet = args.quiet;
    let progress = |done: usize, total: usize, eta_s: f64| {
        if !quiet {
            err!("  {done}/{total} runs, ETA {eta_s:.0} s");
        }
    };
    match sw::run(&plan, &out, jobs, shard, &interrupt, progress) {
        Err(e) => bad(e),
        Ok(outcome) => {
            for (id, e) in &outcome.failed {
                err!("error: run {id}: {e}");
            }
            if !quiet {
                out!(
                    "{}: {} runs done now, {} already done; sweep.csv written",
                    out.display(),
                    outcome.ran,
                    outcome.skipped
                );
            }
            if !outcome.failed.is_empty() {
                ExitCode::from(FAILED)
            } else if outcome.interrupted {
                ExitCode::from(INTERRUPTED)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

/// Parse the arguments and run; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            profile,
            out,
            duration,
            mut set,
            quiet,
            realtime,
            host,
            device,
            commands,
            overwrite,
        } => {
            if let Some(dir) = out.as_deref().filter(|_| !overwrite) {
                // An earlier run's data may be all there is of a session: never replaced
                // unasked.
                if dir.join("summary.json").is_file() {
                    err!(
                        "error: --out {}: the folder already holds a run (summary.json); choose \
                         another --out, move that run away, or add --overwrite to replace it",
                        dir.display()
                    );
                    return ExitCode::from(BAD_INPUT);
                }
            }
            if let Some(d) = duration {
                if !(d.is_finite() && d > 0.0) {
                    err!("error: --duration {d}: expected a number of seconds > 0");
                    return ExitCode::from(BAD_INPUT);
                }
                // As a TOML float: `{d}` writes 1e300 as 301 digits, an integer TOML refuses.
                set.push(format!("run.duration_s={}", toml::Value::Float(d)));
            }
            // As TOML strings, quoted and escaped (a name may hold quotes or backslashes).
            if let Some(h) = host {
                set.push(format!("audio.host={}", toml::Value::String(h)));
            }
            if let Some(d) = device {
                set.push(format!("audio.output_device={}", toml::Value::String(d)));
            }
            run(profile.as_deref(), out, &set, quiet, realtime, commands)
        }
        Command::Devices => {
            write_out(&crate::io::audio::list_devices());
            ExitCode::SUCCESS
        }
        Command::Latency {
            host,
            output_device,
            input_device,
            rate,
            block,
            output_channel,
            input_channel,
            repetitions,
            interval_ms,
            amplitude,
            settle_ms,
            timeout_s,
        } => {
            // Each argument on its own, so that the message names the one at fault.
            let wrong = [
                (
                    (1000..=1_000_000).contains(&rate),
                    format!("--rate {rate}: expected 1000 to 1000000 Hz"),
                ),
                (
                    (1..=16384).contains(&block),
                    format!("--block {block}: expected 1 to 16384 frames"),
                ),
                (
                    output_channel < 256 && input_channel < 256,
                    format!(
                        "--output-channel {output_channel} / --input-channel {input_channel}: \
                         expected channels 0 to 255"
                    ),
                ),
                (
                    repetitions >= 1,
                    "--repetitions 0: expected at least 1".to_string(),
                ),
                (
                    interval_ms.is_finite() && interval_ms > 0.0,
                    format!("--interval-ms {interval_ms}: expected a time > 0"),
                ),
                (
                    amplitude.is_finite() && amplitude > 0.0 && amplitude <= 1.0,
                    format!("--amplitude {amplitude}: expected 0 < amplitude ≤ 1 (full scale)"),
                ),
                (
                    settle_ms.is_finite() && settle_ms >= 0.0,
                    format!("--settle-ms {settle_ms}: expected a time ≥ 0"),
                ),
                (
                    timeout_s.is_finite() && timeout_s > 0.0,
                    format!("--timeout-s {timeout_s}: expected a time > 0"),
                ),
            ];
            let wrong: Vec<&String> = wrong.iter().filter(|(ok, _)| !ok).map(|(_, m)| m).collect();
            if !wrong.is_empty() {
                for message in wrong {
                    err!("error: latency: {message}");
                }
                return ExitCode::from(BAD_INPUT);
            }
            // As for a real-time run: a host or device that does not exist is bad input.
            let _quiet = crate::io::audio::quiet_alsa();
            let checked = crate::io::audio::host(&host).and_then(|h| {
                crate::io::audio::output_device(&h, &output_device)?;
                crate::io::audio::device(&h, crate::io::audio::Direction::Input, &input_device)
            });
            if let Err(e) = checked {
                err!("error: {e}");
                return ExitCode::from(BAD_INPUT);
            }
            let settings = crate::io::latency::LatencySettings {
                host,
                output_device,
                input_device,
                sample_rate: rate,
                block_frames: block,
                output_channel,
                input_channel,
                repetitions,
                interval: ((interval_ms * 1e-3 * rate as f64).round() as usize)
                    .max(2 * block as usize),
                amplitude,
                settle: std::time::Duration::from_secs_f64(settle_ms * 1e-3),
                timeout: std::time::Duration::from_secs_f64(timeout_s),
            };
            let running = |output: &str, input: &str| {
                err!(
                    "streams running (output '{output}', input '{input}'); measuring after \
                     {settle_ms} ms of settling"
                );
            };
            match crate::io::latency::measure(&settings, running) {
                Ok(report) => {
                    write_out(&report.render());
                    if report.round_trips.is_empty() {
                        ExitCode::from(FAILED)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    err!("error: {e}");
                    ExitCode::from(FAILED)
                }
            }
        }
        Command::Check { profile, set } => check(profile.as_deref(), &set),
        Command::Sweep(args) => sweep(args),
        Command::Prc(args) => prc(args),
        Command::Bench(args) => bench(&args),
        Command::Evaluate {
            synthetic,
            files,
            bands,
            csv_rate,
            channel,
            latency,
            rate,
            duration,
            seed,
            out,
        } => evaluate(EvaluateArgs {
            synthetic: synthetic || files.is_empty(),
            files,
            bands,
            csv_rate,
            channel,
            latency,
            rate,
            duration,
            seed,
            out: out.unwrap_or_else(|| PathBuf::from("runs/evaluate")),
        }),
        Command::Heatmap {
            dir,
            out,
            snapshots,
            width,
            height,
        } => heatmap(&dir, out.as_deref(), snapshots, width, height),
        Command::Report { dir, out, stretch } => report(&dir, out, stretch.as_deref()),
    }
}

/// `entrain report`: a folder that is not a run, a bad file in it or a bad option exits 2, a
/// failed write 1.
fn report(dir: &Path, html: Option<PathBuf>, stretch: Option<&str>) -> ExitCode {
    use crate::report::{self as rp, ReportError};
    let stretch = match stretch.map(rp::parse_stretch).transpose() {
        Ok(s) => s,
        Err(e) => {
            err!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    match rp::report(dir, &rp::Options { html, stretch }) {
        Ok(written) => {
            out!(
                "{}: {} figures ({}), data in {}",
                written.html.display(),
                written.svgs.len(),
                written.svgs.join(", "),
                written.figures_dir.join("figures.json").display()
            );
            for note in &written.notes {
                out!("  note: {note}");
            }
            ExitCode::SUCCESS
        }
        Err(ReportError::BadInput(e)) => {
            err!("error: {e}");
            ExitCode::from(BAD_INPUT)
        }
        Err(ReportError::Failed(e)) => {
            err!("error: {e}");
            ExitCode::from(FAILED)
        }
    }
}

/// Highest synthetic sample rate for `evaluate`, Hz (as for profiles).
const EVALUATE_MAX_RATE_HZ: f64 = 1e6;
/// Most samples per synthetic record (`--rate × --duration`): 1 MHz for the shortest 10 s. The
/// set keeps about 400 bytes per sample (its 15 records, each with its truth), so this is ~4 GB.
const EVALUATE_MAX_SAMPLES: f64 = 1e7;

struct EvaluateArgs {
    synthetic: bool,
    files: Vec<PathBuf>,
    bands: Vec<String>,
    csv_rate: Option<f64>,
    channel: usize,
    latency: f64,
    rate: f64,
    duration: f64,
    seed: u64,
    out: PathBuf,
}

/// `entrain evaluate`: bad arguments or files exit 2, a failed write 1.
fn evaluate(args: EvaluateArgs) -> ExitCode {
    use crate::evaluate as ev;
    let bad = |e: String| {
        err!("error: {e}");
        ExitCode::from(BAD_INPUT)
    };
    if args.files.len() != args.bands.len() {
        return bad(format!(
            "{} --file but {} --band: give each file its band, e.g. --file theta.wav --band 6:10",
            args.files.len(),
            args.bands.len()
        ));
    }
    if !(args.latency.is_finite() && args.latency >= 0.0) {
        return bad(format!("--latency {}: expected seconds ≥ 0", args.latency));
    }
    if !(args.rate.is_finite() && (100.0..=EVALUATE_MAX_RATE_HZ).contains(&args.rate)) {
        return bad(format!(
            "--rate {}: the synthetic set's sample rate must be 100 Hz … 1 MHz",
            args.rate
        ));
    }
    if !(args.duration.is_finite() && args.duration >= 10.0) {
        return bad(format!(
            "--duration {}: each synthetic record must last at least 10 s",
            args.duration
        ));
    }
    if args.rate * args.duration > EVALUATE_MAX_SAMPLES {
        return bad(format!(
            "--rate {} Hz × --duration {} s = {:.3e} samples per synthetic record; at most \
             {EVALUATE_MAX_SAMPLES:.0} (the set holds about 400 bytes per sample): lower \
             --duration to {:.0} s or less at this rate, or lower --rate",
            args.rate,
            args.duration,
            args.rate * args.duration,
            (EVALUATE_MAX_SAMPLES / args.rate).floor()
        ));
    }
    let mut signals = Vec::new();
    if args.synthetic {
        match ev::synthetic_set(args.rate, args.duration, args.seed) {
            Ok(s) => signals.extend(s),
            Err(e) => return bad(e),
        }
    }
    for (file, band) in args.files.iter().zip(&args.bands) {
        let parsed = band
            .split_once(':')
            .and_then(|(lo, hi)| Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?)));
        let Some(band) = parsed else {
            return bad(format!("--band {band}: expected LO:HI in Hz, e.g. 6:10"));
        };
        match ev::load_recording(file, band, args.channel, args.csv_rate) {
            Ok(s) => signals.push(s),
            Err(e) => return bad(e),
        }
    }
    let estimators = ev::estimators();
    let mut results = Vec::new();
    out!(
        "{:<22} {:<18} {:>9} {:>8} {:>7} {:>8} {:>9}",
        "signal",
        "estimator",
        "bias_deg",
        "sd_deg",
        "plv",
        "accuracy",
        "ns/sample"
    );
    for signal in &signals {
        // The loop's delay is whole samples: say so where --latency falls between them.
        let fs = signal.sample_rate_hz;
        let samples = ev::latency_samples(args.latency, fs) as f64;
        if (args.latency * fs - samples).abs() > 1e-6 {
            err!(
                "note: --latency {} s is {:.3} samples at {fs:.1} Hz: {} is scored with \
                 {samples} samples ({:.3} ms)",
                args.latency,
                args.latency * fs,
                signal.name,
                samples / fs * 1e3
            );
        }
        for spec in &estimators {
            match ev::evaluate(signal, spec, args.latency) {
                Ok(r) => {
                    out!(
                        "{:<22} {:<18} {:>9.2} {:>8.2} {:>7.4} {:>8.4} {:>9.1}",
                        r.signal,
                        r.estimator,
                        r.all.bias_deg,
                        r.all.sd_deg,
                        r.all.plv,
                        r.all.accuracy,
                        r.ns_per_sample
                    );
                    results.push(r);
                }
                Err(e) => err!("warning: {e}"),
            }
        }
    }
    if let Some(s) = signals
        .iter()
        .find(|s| !results.iter().any(|r| r.signal == s.name))
    {
        return bad(format!(
            "no estimator could be scored on {} (see the warnings above)",
            s.name
        ));
    }
    let write = |name: &str, text: String| {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write '{}': {e}", path.display()))
    };
    let written = std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create '{}': {e}", args.out.display()))
        .and_then(|_| write("evaluate.csv", ev::table(&results)))
        .and_then(|_| write("evaluate_strata.csv", ev::strata_table(&results)));
    if let Err(e) = written {
        err!("error: {e}");
        return ExitCode::from(FAILED);
    }
    let lines: Vec<crate::render::Line> = estimators
        .iter()
        .map(|spec| crate::render::Line {
            name: spec.name.to_string(),
            points: results
                .iter()
                .filter(|r| r.estimator == spec.name && r.signal.starts_with("sl_snr"))
                .filter_map(|r| Some((r.snr_db?, r.all.sd_deg)))
                .collect(),
        })
        .collect();
    if lines.iter().any(|l| !l.points.is_empty()) {
        let svg = args.out.join("error_vs_snr.svg");
        if let Err(e) = crate::render::lines_svg(
            &svg,
            "phase error vs SNR (Stuart–Landau, 1/f background)",
            "SNR (dB)",
            "circular SD of the phase error (°)",
            &lines,
            (900, 560),
        ) {
            err!("error: {e}");
            return ExitCode::from(FAILED);
        }
    }
    out!(
        "wrote {}/evaluate.csv, evaluate_strata.csv, error_vs_snr.svg",
        args.out.display()
    );
    ExitCode::SUCCESS
}

/// `entrain heatmap`: bad input (no recording, a bad size) exits 2, a failed write 1.
fn heatmap(dir: &Path, out: Option<&Path>, snapshots: usize, width: u32, height: u32) -> ExitCode {
    use crate::render;
    // Checked before anything is written, so a bad count leaves no half-made pictures.
    if snapshots > render::MAX_SNAPSHOTS {
        err!(
            "error: --snapshots {snapshots}: at most {} grid snapshots in one picture (0 = none)",
            render::MAX_SNAPSHOTS
        );
        return ExitCode::from(BAD_INPUT);
    }
    let recording = match render::NodeRecording::read(dir) {
        Ok(r) => r,
        Err(e) => {
            err!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let out = out.unwrap_or(dir);
    if let Err(e) = std::fs::create_dir_all(out) {
        err!("error: cannot create '{}': {e}", out.display());
        return ExitCode::from(FAILED);
    }
    let heat = out.join("heatmap.svg");
    if let Err(e) = render::heatmap_svg(&recording, &heat, width, height) {
        err!("error: {e}");
        return ExitCode::from(BAD_INPUT);
    }
    out!(
        "{}: {} nodes × {} frames at {} Hz",
        heat.display(),
        recording.nodes,
        recording.frames,
        recording.rate_hz
    );
    if recording.grid && snapshots > 0 {
        let grid = out.join("snapshots.svg");
        let times = render::even_times(&recording, snapshots);
        if let Err(e) = render::snapshots_svg(&recording, &grid, &times, 24) {
            err!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
        out!(
            "{}: the {} × {} grid at {} times",
            grid.display(),
            recording.rows,
            recording.cols,
            times.len()
        );
    }
    ExitCode::SUCCESS
}

/// A flag set by Ctrl-C (SIGINT), SIGTERM (`timeout`, systemd, SLURM) and SIGHUP (a dropped
/// SSH session): all of them end the work the way Ctrl-C does, with its outputs finished.
fn interrupt_flag() -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupt);
    // Each command installs it once; were it refused, the signals would keep their default
    // action (ending the process) rather than fail the command.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    interrupt
}

const BAD_INPUT: u8 = 2;
const FAILED: u8 = 1;
const INTERRUPTED: u8 = 130;

/// Read and validate a profile; prints problems and returns the exit code on failure.
fn load(path: Option<&Path>, set: &[String]) -> Result<(Profile, String), ExitCode> {
    let (name, text) = match path {
        None => (
            "<embedded quickstart>".to_string(),
            profile::QUICKSTART.to_string(),
        ),
        Some(p) => match profile::read(p) {
            Ok(text) => (p.display().to_string(), text),
            Err(e) => {
                err!(
                    "error: {e}\n  (omit the profile to run the embedded quickstart, or see profiles/)"
                );
                return Err(ExitCode::from(BAD_INPUT));
            }
        },
    };
    match profile::load(&name, &text, set) {
        Ok((profile, warnings)) => {
            for w in warnings {
                err!("warning: {name}: {w}");
            }
            Ok((profile, name))
        }
        Err(errors) => {
            for e in &errors.0 {
                err!("error: {e}");
            }
            Err(ExitCode::from(BAD_INPUT))
        }
    }
}

fn check(path: Option<&Path>, set: &[String]) -> ExitCode {
    let (profile, name) = match load(path, set) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let built = match engine::build(&profile)
        .and_then(|b| crate::record::check_signals_size(&b.info).map(|_| b))
    {
        Ok(b) => b,
        Err(e) => {
            err!("error: {name}: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    match toml::to_string(&profile) {
        Ok(text) => out!("{text}"),
        Err(_) => out!(
            "{}",
            serde_json::to_string_pretty(&profile).unwrap_or_default()
        ),
    }
    let info = &built.info;
    let fs = info.sample_rate_hz;
    out!("# {name}: valid");
    out!(
        "# declared loop latency: {} samples = {:.3} ms at {} Hz",
        info.latency_samples,
        info.latency_samples as f64 / fs * 1e3,
        fs
    );
    out!(
        "# plant: {} × {} nodes, step {:.3} µs, {} bytes of state and delay history",
        profile.model.kind.name(),
        profile.model.nodes,
        profile.model.dt(fs) * 1e6,
        info.plant_bytes
    );
    out!(
        "# estimator settles in {:.3} s; stimulation {:.3}–{:.3} s of {:.3} s",
        info.settling_samples as f64 / fs,
        info.stim_start_sample as f64 / fs,
        info.stim_stop_sample as f64 / fs,
        info.total_samples as f64 / fs
    );
    ExitCode::SUCCESS
}

fn run(
    path: Option<&Path>,
    out: Option<PathBuf>,
    set: &[String],
    quiet: bool,
    realtime: bool,
    commands: bool,
) -> ExitCode {
    let (profile, name) = match load(path, set) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // Built before any output folder is created, so that bad coupling files etc. are reported
    // as bad input (exit 2) without leaving an empty run behind.
    let built = match engine::build(&profile)
        .and_then(|b| crate::record::check_signals_size(&b.info).map(|_| b))
    {
        Ok(b) => b,
        Err(e) => {
            err!("error: {name}: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    if realtime {
        // A host or device that does not exist is bad input (exit 2), reported before any
        // output folder is created.
        let _quiet = crate::io::audio::quiet_alsa();
        let checked = crate::io::audio::host(&profile.audio.host).and_then(|host| {
            crate::io::audio::output_device(&host, &profile.audio.output_device)?;
            if profile.audio.has_input() {
                crate::io::audio::device(
                    &host,
                    crate::io::audio::Direction::Input,
                    &profile.audio.input_device,
                )?;
            }
            Ok(())
        });
        if let Err(e) = checked {
            err!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    }
    let out_dir = out.unwrap_or_else(|| default_out_dir(path));
    let interrupt = interrupt_flag();
    let fs = profile.run.sample_rate_hz;
    let show_progress = !quiet && std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut report = |samples: u64, total: u64| {
        if show_progress {
            let done = samples as f64 / total.max(1) as f64;
            let sim = samples as f64 / fs;
            let speed = sim / started.elapsed().as_secs_f64().max(1e-9);
            let eta = total.saturating_sub(samples) as f64 / fs / speed.max(1e-9);
            err_inline!(
                "\r  {:5.1} %  {:.1} / {:.1} s  {:.1}× real time  ETA {:.0} s   ",
                100.0 * done,
                sim,
                total as f64 / fs,
                speed,
                eta
            );
        }
    };
    let result = if realtime {
        if commands {
            // Not joined: it waits on the terminal, and ends with the process.
            let (queue, policy) = (built.commands.clone(), profile.stimulation.policy.clone());
            std::thread::spawn(move || {
                run::forward_commands(std::io::stdin().lock(), &policy, &queue, |line| {
                    err!("\n{line}")
                })
            });
            if !quiet {
                err!(
                    "reading commands from standard input: {}",
                    crate::stim::COMMAND_SYNTAX
                );
            }
        }
        run::realtime(&profile, built, &out_dir, &interrupt, &mut report).map(|(summary, ending)| {
            let code = match ending {
                RealtimeEnding::Completed => ExitCode::SUCCESS,
                RealtimeEnding::Interrupted => ExitCode::from(INTERRUPTED),
                RealtimeEnding::DeviceError(e) if summary.samples == 0 => {
                    err!(
                        "error: the audio device did not start: {e}; nothing was played \
                         (summary.json records it: ending = device_error)"
                    );
                    ExitCode::from(FAILED)
                }
                RealtimeEnding::DeviceError(e) => {
                    err!("\nerror: the audio device failed: {e}; outputs are complete up to the failure");
                    ExitCode::from(FAILED)
                }
            };
            (summary, code)
        })
    } else {
        if let Some(trigger) = &profile.trigger {
            err!(
                "note: the trigger line on {} fires hardware, so this offline run keeps to real \
                 time ({} s)",
                trigger.port,
                profile.run.duration_s
            );
        }
        run::offline(&profile, built, &out_dir, &interrupt, |p| {
            report(p.samples, p.total)
        })
        .map(|(summary, ending)| {
            let code = match ending {
                run::Ending::Completed => ExitCode::SUCCESS,
                run::Ending::Interrupted => ExitCode::from(INTERRUPTED),
            };
            (summary, code)
        })
    };
    if show_progress {
        err!();
    }
    let (summary, code) = match result {
        Ok(r) => r,
        Err(e) => {
            err!("error: {e}");
            return ExitCode::from(FAILED);
        }
    };
    // A stream that never started has no figures to show.
    let started = !(realtime && summary.samples == 0);
    if !quiet && started {
        print_summary(&summary, &out_dir);
    }
    if code == ExitCode::from(INTERRUPTED) {
        err!("interrupted: output ramped to zero; outputs are complete up to the stop");
    }
    // A signal after the last sample (while the files were finished: the offline ground truth
    // of a long recording takes seconds) stopped nothing, but the caller asked to stop and a
    // script waits for 130.
    let code = if code == ExitCode::SUCCESS && interrupt.load(Ordering::Relaxed) {
        err!("interrupted after the last sample: the run was complete and its outputs are whole");
        ExitCode::from(INTERRUPTED)
    } else {
        code
    };
    if let Some(rt) = &summary.realtime {
        // A device that takes blocks faster than it could play them (ALSA's `null`, a file
        // sink) does not keep time: the run was not a real-time one.
        if let Some(median) = rt.callback_period.median_ms {
            if median < 0.5 * rt.nominal_period_ms {
                err!(
                    "warning: the device '{}' did not pace the run: its callbacks came every \
                     {median:.3} ms against the block's {:.3} ms, so nothing here ran in real \
                     time (a null or file device?); choose a sound card with --device",
                    rt.device,
                    rt.nominal_period_ms
                );
            }
        }
    }
    if let Some(t) = summary.ground_truth_until_s {
        err!(
            "warning: the ground truth (estimated offline from the signal) covers the first \
             {t:.1} s only, so pulses after it are not scored; to score them all, split the \
             run into runs of at most that length"
        );
    }
    if let Some(t) = summary.diverged_at_s {
        err!(
            "error: the observable became non-finite at t = {t:.4} s: the model diverged, and \
             the figures after it mean nothing; lower its step (model.samples_per_step, or a \
             higher run.sample_rate_hz) or check its parameters (outputs are written)"
        );
        return ExitCode::from(FAILED);
    }
    code
}

/// `runs/<profile stem>-<n>` with the first n whose folder does not exist yet.
fn default_out_dir(path: Option<&Path>) -> PathBuf {
    let stem = path
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "quickstart".into());
    (1..)
        .map(|n| PathBuf::from("runs").join(format!("{stem}-{n:03}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from("runs").join(stem))
}

fn print_summary(s: &Summary, out: &Path) {
    let simulated = s.samples as f64 / s.sample_rate;
    out!(
        "{simulated:.1} s simulated in {:.2} s ({:.0}× real time) → {}",
        s.wall_time_s,
        s.realtime_factor,
        out.display()
    );
    out!(
        "  pulses: {} delivered, {} refused by the limiter",
        s.pulses,
        s.suppressed_pulses
    );
    let e = &s.phase_error;
    match (e.mean_deg, e.sd_deg, e.r) {
        (Some(m), Some(sd), Some(r)) => out!(
            "  phase error (arrival − target): mean {m:+.1}°, circular SD {sd:.1}°, R {r:.3}, n {}",
            e.n
        ),
        _ => out!("  phase error: none (no pulses with a target reached the plant)"),
    }
    let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.2}"));
    out!(
        "  PLV stimulus↔plant: before {}, during {}, after {}",
        f(s.plv.before),
        f(s.plv.during),
        f(s.plv.after)
    );
    if s.dropped_records > 0 {
        out!("  warning: {} telemetry records dropped", s.dropped_records);
    }
    out!(
        "  outputs: summary.json, events.csv, signals.wav ({}){}",
        s.channels.join(", "),
        if s.node_frames.is_some() {
            ", nodes.f32 + nodes.json"
        } else {
            ""
        }
    );
}
