//! # entrain — a real-time closed-loop phase-locked stimulation engine
//!
//! Data flows one way, once per sample of a single sample clock:
//!
//! ```text
//! plant ─► sensor ─► estimator ─► stimulator ─► limiter ─► outputs
//!   ▲                                                        │
//!   └──── forcing, exactly `latency_samples` after emission ◄┘
//! every stage ─► telemetry (lock-free SPSC) ─► recorder thread ─► files
//! ```
//!
//! Every component has the same lifecycle: it is *built* by the control half (allocation allowed,
//! from a validated [`profile::Profile`]), may be `reset()` (real-time safe), and *runs* inside
//! [`engine::Processor::process_block`], which never allocates, locks, blocks, prints or touches
//! files. The offline driver ([`engine::offline`]) and the real-time audio driver call the same
//! `process_block`; nothing below the engine knows which one runs it.
//!
//! Module map (each module may call only the ones listed before it):
//! - [`wav`] — reading WAV recordings (control half only).
//! - [`analysis`] — circular statistics, PLV, the offline (non-causal) ground-truth phase.
//! - [`noise`] — the plants' Gaussian white noise: standard normal draws, one at a time or in bulk.
//! - [`lanes`] — the vector width the plants' per-node loops run at on this CPU.
//! - [`model`] — plants: the model ladder (Kuramoto, harmonic, Stuart–Landau, SL-DN field, rate,
//!   Wilson–Cowan, Baier's grid, Jansen–Rit, MPR, HORN), topologies, delay lines, pink noise.
//! - [`integrate`] — fixed-step integrators (Euler, Heun, RK4, stochastic variants).
//! - [`estimate`] — causal phase/amplitude/frequency estimators that predict ahead.
//! - [`stim`] — stimulation policies and the safety limiter.
//! - [`profile`] — the TOML experiment description, validation and `--set` overrides.
//! - [`engine`] — the control half that builds a run and the real-time half that runs it.
//! - [`io`] — the real-time audio driver (cpal) and the serial trigger line.
//! - [`record`] — the recorder thread and the run outputs (`summary.json`, `events.csv`,
//!   `signals.wav`, `nodes.f32`).
//! - [`render`] — pictures: a run's node recording (heat map, grid snapshots), line charts,
//!   histograms, rose plots.
//! - [`report`] — `entrain report`: one self-contained HTML page of a run's figures.
//! - [`evaluate`] — the estimator benchmark: signal sets with ground truth, accuracy tables.
//! - [`run`] — a whole offline run into an output folder.
//! - [`sweep`] — grids of offline runs over profile keys: parallel, resumable, shardable.
//! - [`prc`] — phase-response curves: single pulses at controlled phases, paired trials.
//! - [`bench`] — entrain's own benchmarks: the peers' standard problem and its variants.
//! - [`cli`] — the `entrain` command line.
#![deny(missing_docs)]

// The crate's printing, defined before the modules so that all of them see it.

/// `println!`, except that a closed stdout (`entrain … | head`) is not an error: the rest of
/// the printing is dropped and the command carries on, so that a run still completes its
/// outputs and its exit code still says how it went (a panic would lose both).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` in the manner of `out!`: errors, warnings and progress go to a stderr that
/// may be a closed pipe too (`entrain run … 2>&1 | head`).
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` in the manner of `err!` (progress lines).
macro_rules! err_inline {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub mod analysis;
pub mod bench;
pub mod cli;
pub mod engine;
pub mod estimate;
pub mod evaluate;
pub mod integrate;
pub mod io;
#[macro_use]
pub mod lanes;
pub mod model;
pub mod noise;
pub mod prc;
pub mod profile;
pub mod record;
pub mod render;
pub mod report;
pub mod run;
pub mod stim;
pub mod sweep;
pub mod wav;
