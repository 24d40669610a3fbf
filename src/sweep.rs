//! Parameter sweeps (`entrain sweep`): the offline runs of a grid over profile keys, in
//! parallel, resumable, shardable, collected into one CSV.
//!
//! Owns: [`Axis`] (one varied key), [`Plan`] (the grid × seeds, numbered in a fixed order),
//! running a plan's runs ([`run`]) into `DIR/runs/<id>/`, and the table `DIR/sweep.csv`
//! ([`collect`]). May call: [`crate::profile`], [`crate::engine`], [`crate::run`],
//! [`crate::render`] (its grid size limit).
//!
//! A run is done when its `summary.json` says it completed; a restarted sweep skips done runs
//! and redoes the rest (a killed run leaves no summary). `--shard I/N` runs the runs whose
//! number is `I − 1` modulo N; the shards' folders merge into one ([`merge`]), and the CSV is
//! always rebuilt from the summaries in run order, so it does not depend on the number of jobs,
//! the shards or the order runs finished in. `signals.wav` is not kept (a sweep is about the
//! figures), unless asked for.

use crate::profile::{self, Profile};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// Most values of one `--vary` axis.
pub const MAX_AXIS_VALUES: usize = 100_000;
/// Most runs in one sweep (grid points × seeds). Every point's profile is validated before any
/// run starts (about 2 ms each), and each run gets a folder.
pub const MAX_RUNS: usize = 100_000;
/// The seed key: a `--vary run.seed=…` axis gives each point its first seed.
const SEED_KEY: &str = "run.seed";
/// Largest seed an axis can give exactly (axis values are f64).
const MAX_EXACT_SEED: f64 = 9_007_199_254_740_992.0;

/// `n` with spaces between thousands, as the messages write counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A count held in an f64 (possibly beyond u64), for a message.
fn big_count(n: f64) -> String {
    if n < 1e15 {
        thousands(n as u64)
    } else {
        format!("{n:.1e}")
    }
}

/// Digits after the decimal point of a number as typed, exponent included: `0.25` 2, `1.5e-3` 4,
/// `2e3` 0. Capped at 400 (17 significant digits of the smallest f64, 5e-324), so a typed
/// exponent cannot ask for a huge string.
fn decimal_places(typed: &str) -> usize {
    let (mantissa, exponent) = typed
        .split_once(['e', 'E'])
        .map_or((typed, 0), |(m, e)| (m, e.parse::<i64>().unwrap_or(0)));
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    (fraction - exponent.clamp(-400, 400)).clamp(0, 400) as usize
}

/// One varied key and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// A profile key path, e.g. `stimulation.freq_hz`.
    pub key: String,
    /// The values, in order.
    pub values: Vec<f64>,
}

impl Axis {
    /// Parse `KEY=START:STOP:STEP` (STOP included when the steps land on it, to 1e-9 of a
    /// step): at most [`MAX_AXIS_VALUES`] distinct values, each `START + i·STEP` rounded to
    /// the decimal places typed in START and STEP (`0.1:0.3:0.1` is 0.1, 0.2, 0.3); for
    /// `run.seed`, whole numbers from 0 to 2^53.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "--vary {text}: expected KEY=START:STOP:STEP, e.g. stimulation.freq_hz=8:12:0.5"
            )
        };
        let (key, range) = text.split_once('=').ok_or_else(bad)?;
        let typed: Vec<&str> = range.split(':').map(str::trim).collect();
        let parts: Vec<f64> = typed
            .iter()
            .map(|p| p.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let [start, stop, step] = parts[..] else {
            return Err(bad());
        };
        let places = decimal_places(typed[0]).max(decimal_places(typed[2]));
        let key = key.trim();
        if key.split('.').count() < 2 || key.split('.').any(str::is_empty) {
            return Err(bad());
        }
        if !(start.is_finite()
            && stop.is_finite()
            && step.is_finite()
            && step > 0.0
            && stop >= start)
        {
            return Err(format!(
                "--vary {text}: START ≤ STOP and STEP > 0 must be finite numbers"
            ));
        }
        // Counted in f64 and checked before any conversion: a STEP far below the range (or a
        // range that overflows) must hit the cap, not wrap to a small count.
        let span = (stop - start) / step;
        if !span.is_finite() {
            return Err(format!(
                "--vary {text}: STOP − START is too large to count in steps of {step} (it \
                 overflows); narrow the range or raise STEP"
            ));
        }
        let count = (span + 1e-9).floor() + 1.0;
        if count > MAX_AXIS_VALUES as f64 {
            return Err(format!(
                "--vary {text}: {} values; at most {} per axis: raise STEP or narrow the range",
                big_count(count),
                thousands(MAX_AXIS_VALUES as u64)
            ));
        }
        let count = count as usize;
        // Computed from the index, not accumulated, then rounded to the typed decimals: the
        // binary sum of 0.1 and 2 × 0.1 is 0.30000000000000004, which would be run and written
        // as such. Formatting rounds the exact binary value and parsing gives the f64 nearest
        // the decimal, as if typed (`+ 0.0` turns a rounded −0 into 0).
        let values: Vec<f64> = (0..count)
            .map(|i| {
                let v = start + i as f64 * step;
                format!("{v:.places$}").parse::<f64>().unwrap_or(v) + 0.0
            })
            .collect();
        if values.windows(2).any(|w| w[1] <= w[0]) {
            return Err(format!(
                "--vary {text}: STEP {step} is below the precision of the values near {start} \
                 (two steps give the same number); raise STEP"
            ));
        }
        if key == SEED_KEY
            && !values
                .iter()
                .all(|v| *v >= 0.0 && v.fract() == 0.0 && *v <= MAX_EXACT_SEED)
        {
            return Err(format!(
                "--vary {text}: seeds are whole numbers from 0 to {MAX_EXACT_SEED}; give a \
                 whole START ≥ 0 and STEP, e.g. run.seed=1:20:1 (or use --seeds N for N \
                 consecutive seeds per point)"
            ));
        }
        Ok(Self {
            key: key.to_string(),
            values,
        })
    }
}

/// The runs of a sweep: every combination of the axes' values (the first axis varies slowest),
/// each with `seeds` seeds (the profile's seed, or the value of a `run.seed` axis, +1, …),
/// numbered in that order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The profile's path as given, and its text (the sweep is pinned to it).
    pub profile_path: String,
    /// The profile's text when the sweep started.
    pub profile_text: String,
    /// `--set` overrides common to every run.
    pub sets: Vec<String>,
    /// The varied keys.
    pub axes: Vec<Axis>,
    /// Seeds per grid point.
    pub seeds: u64,
    /// Keep each run's `signals.wav`.
    pub keep_signals: bool,
}

/// One run of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its number in the plan.
    pub id: usize,
    /// The value of each axis.
    pub values: Vec<f64>,
    /// Its seed.
    pub seed: u64,
}

impl Plan {
    /// Number of runs (`usize::MAX` when the product overflows; [`Plan::check`] refuses both
    /// that and anything over [`MAX_RUNS`]).
    pub fn len(&self) -> usize {
        let seeds = usize::try_from(self.seeds).unwrap_or(usize::MAX);
        self.axes
            .iter()
            .try_fold(seeds, |n, a| n.checked_mul(a.values.len()))
            .unwrap_or(usize::MAX)
    }

    /// Whether the plan has no runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check the plan's shape, and return its number of runs: at least one seed, no key
    /// varied twice, and at most [`MAX_RUNS`] runs (counted without overflow).
    pub fn check(&self) -> Result<usize, String> {
        if self.seeds == 0 {
            return Err("--seeds must be at least 1".into());
        }
        for (k, axis) in self.axes.iter().enumerate() {
            if axis.values.is_empty() {
                return Err(format!("--vary {}: the axis has no values", axis.key));
            }
            if self.axes[..k].iter().any(|a| a.key == axis.key) {
                return Err(format!(
                    "--vary {}: the key is varied twice; give each key one --vary (its \
                     START:STOP:STEP covers all its values)",
                    axis.key
                ));
            }
        }
        let runs = self.len();
        if runs > MAX_RUNS {
            let factors: Vec<String> = self
                .axes
                .iter()
                .map(|a| format!("{} values of {}", thousands(a.values.len() as u64), a.key))
                .chain([format!("--seeds {}", thousands(self.seeds))])
                .collect();
            let total = if runs == usize::MAX {
                "more runs than can be counted".to_string()
            } else {
                format!("{} runs", thousands(runs as u64))
            };
            return Err(format!(
                "the sweep has {total} ({}); at most {} per sweep: use fewer values (a larger \
                 STEP) or fewer --seeds, or split the grid into several sweeps",
                factors.join(" × "),
                thousands(MAX_RUNS as u64)
            ));
        }
        Ok(runs)
    }

    /// The base seed: the profile's own.
    fn base_seed(&self) -> Result<u64, String> {
        Ok(self.profile(&[]).map_err(|e| e.to_string())?.run.seed)
    }

    fn profile(&self, extra: &[String]) -> Result<Profile, profile::ProfileErrors> {
        let mut sets = self.sets.clone();
        sets.extend_from_slice(extra);
        profile::load(&self.profile_path, &self.profile_text, &sets).map(|(p, _)| p)
    }

    /// Run `id` of the plan. Its seed is `base_seed` (or the value of a `run.seed` axis) plus
    /// its seed number, `0..seeds`.
    pub fn point(&self, id: usize, base_seed: u64) -> Point {
        let seeds = usize::try_from(self.seeds).unwrap_or(usize::MAX).max(1);
        let mut rest = id / seeds;
        let mut values = vec![0.0; self.axes.len()];
        for (k, axis) in self.axes.iter().enumerate().rev() {
            values[k] = axis.values[rest % axis.values.len()];
            rest /= axis.values.len();
        }
        let first = self
            .axes
            .iter()
            .position(|a| a.key == SEED_KEY)
            // Whole and within 2^53 (checked by `Axis::parse`), so the cast is exact.
            .map_or(base_seed, |k| values[k] as u64);
        let seed = first.wrapping_add((id % seeds) as u64);
        Point { id, values, seed }
    }

    /// The profile of `point`, validated (every point is checked before any run starts).
    pub fn point_profile(&self, point: &Point) -> Result<Profile, String> {
        let mut extra: Vec<String> = self
            .axes
            .iter()
            .zip(&point.values)
            // A `run.seed` axis is applied through the point's seed, below.
            .filter(|(a, _)| a.key != SEED_KEY)
            .map(|(a, v)| format!("{}={v}", a.key))
            .collect();
        extra.push(format!("{SEED_KEY}={}", point.seed));
        self.profile(&extra).map_err(|mut errors| {
            // The profile names these values as `--set`s; they came from --vary.
            for e in &mut errors.0 {
                let given = e
                    .from_override
                    .as_deref()
                    .and_then(|g| g.strip_prefix("--set "));
                if let Some(set) = given.filter(|set| extra.iter().any(|x| x == set)) {
                    e.from_override = Some(format!("--vary, as {set}"));
                }
            }
            errors.to_string()
        })
    }
}

/// Which slice of the runs this process does: `index` of `count` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1..=count.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Parse `I/N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("--shard {text}: expected I/N with 1 ≤ I ≤ N, e.g. 3/10");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if !(1..=count).contains(&index) {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    fn owns(&self, id: usize) -> bool {
        id % self.count == self.index - 1
    }
}

/// How a sweep went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Runs done by this invocation.
    pub ran: usize,
    /// Runs found done already and skipped.
    pub skipped: usize,
    /// Runs that failed, with the error.
    pub failed: Vec<(usize, String)>,
    /// Whether the sweep was interrupted before every run was done.
    pub interrupted: bool,
}

const PLAN_FILE: &str = "sweep.json";

/// Whether `dir/runs/<id>` holds a completed run.
fn done(dir: &Path, id: usize) -> bool {
    let path = run_dir(dir, id).join("summary.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["ending"] == "completed")
}

fn run_dir(dir: &Path, id: usize) -> PathBuf {
    dir.join("runs").join(format!("{id:06}"))
}

/// Write the plan into `dir` (or check it equals the plan already there: a folder holds one
/// sweep).
fn pin_plan(dir: &Path, plan: &Plan) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("runs"))
        .map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    let path = dir.join(PLAN_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let existing: Plan = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a sweep plan ({e})", path.display()))?;
        if &existing != plan {
            return Err(format!(
                "{} holds a different sweep (profile, --set, --vary, --seeds or the profile's \
                 text changed); use another --out folder",
                dir.display()
            ));
        }
        return Ok(());
    }
    let text = serde_json::to_string_pretty(plan).map_err(|e| e.to_string())?;
    crate::record::write_whole(&path, text.as_bytes())
}

/// Run the plan's runs (those of `shard`) that are not done yet, `jobs` at a time, into
/// `dir/runs/`, then rebuild `dir/sweep.csv`. `progress(done, total, eta_s)` is called after
/// each run; `interrupt` stops starting new runs (the running ones end cleanly).
pub fn run(
    plan: &Plan,
    dir: &Path,
    jobs: usize,
    shard: Option<Shard>,
    interrupt: &AtomicBool,
    progress: impl Fn(usize, usize, f64) + Sync,
) -> Result<Outcome, String> {
    let runs = plan.check()?;
    if runs == 0 {
        return Err("the sweep has no runs".into());
    }
    let base = plan.base_seed()?;
    let ids: Vec<usize> = (0..runs)
        .filter(|&id| shard.is_none_or(|s| s.owns(id)))
        .collect();
    // Every point's profile must load before anything runs: a bad value fails fast.
    for &id in &ids {
        plan.point_profile(&plan.point(id, base))
            .map_err(|e| format!("run {id}: {e}"))?;
    }
    pin_plan(dir, plan)?;
    let todo: Vec<usize> = ids.iter().copied().filter(|&id| !done(dir, id)).collect();
    let mut outcome = Outcome {
        skipped: ids.len() - todo.len(),
        ..Outcome::default()
    };
    // More workers than runs would only idle (and each costs a thread).
    let jobs = jobs.clamp(1, todo.len().max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| format!("cannot start {jobs} worker threads: {e}"))?;
    let finished = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<(usize, Result<bool, String>)> = pool.install(|| {
        todo.par_iter()
            .map(|&id| {
                if interrupt.load(Ordering::Relaxed) {
                    return (id, Ok(false));
                }
                let result = one_run(plan, dir, id, base, interrupt);
                let n = finished.fetch_add(1, Ordering::Relaxed) + 1;
                let rate = started.elapsed().as_secs_f64() / n as f64;
                progress(n, todo.len(), rate * (todo.len() - n) as f64);
                (id, result)
            })
            .collect()
    });
    for (id, result) in results {
        match result {
            Ok(true) => outcome.ran += 1,
            Ok(false) => outcome.interrupted = true,
            Err(e) => outcome.failed.push((id, e)),
        }
    }
    collect(dir)?;
    Ok(outcome)
}

/// One run into its folder; `Ok(false)` when interrupted (its summary then says so and it is
/// redone next time).
fn one_run(
    plan: &Plan,
    dir: &Path,
    id: usize,
    base: u64,
    interrupt: &AtomicBool,
) -> Result<bool, String> {
    let point = plan.point(id, base);
    let profile = plan.point_profile(&point)?;
    let built = crate::engine::build(&profile)?;
    let out = run_dir(dir, id);
    let (_, ending) = crate::run::offline(&profile, built, &out, interrupt, |_| {})?;
    if !plan.keep_signals {
        let _ = std::fs::remove_file(out.join("signals.wav"));
    }
    Ok(ending == crate::run::Ending::Completed)
}

/// The columns of `sweep.csv` after the varied keys.
pub const FIGURES: [&str; 12] = [
    "seed",
    "pulses",
    "phase_error_mean_deg",
    "phase_error_sd_deg",
    "phase_error_r",
    "phase_error_n",
    "plv_before",
    "plv_during",
    "plv_after",
    "amplitude_before",
    "amplitude_during",
    "amplitude_after",
];

/// Rebuild `dir/sweep.csv` from the plan and the done runs' summaries, in run order; runs not
/// done yet are left out.
pub fn collect(dir: &Path) -> Result<usize, String> {
    let plan_path = dir.join(PLAN_FILE);
    let plan: Plan = serde_json::from_str(
        &std::fs::read_to_string(&plan_path)
            .map_err(|e| format!("cannot read '{}': {e}", plan_path.display()))?,
    )
    .map_err(|e| format!("{}: not a sweep plan ({e})", plan_path.display()))?;
    let runs = plan
        .check()
        .map_err(|e| format!("{}: {e}", plan_path.display()))?;
    let base = plan.base_seed()?;
    let mut csv = String::new();
    let header: Vec<&str> = plan
        .axes
        .iter()
        .map(|a| a.key.as_str())
        .chain(FIGURES)
        .collect();
    csv.push_str(&header.join(","));
    csv.push('\n');
    let mut rows = 0;
    for id in 0..runs {
        if !done(dir, id) {
            continue;
        }
        let path = run_dir(dir, id).join("summary.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
        let s: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let point = plan.point(id, base);
        let cell = |v: &serde_json::Value| match v {
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let mut row: Vec<String> = point.values.iter().map(|v| format!("{v}")).collect();
        row.push(point.seed.to_string());
        row.push(cell(&s["pulses"]));
        for k in ["mean_deg", "sd_deg", "r", "n"] {
            row.push(cell(&s["phase_error"][k]));
        }
        for k in ["before", "during", "after"] {
            row.push(cell(&s["plv"][k]));
        }
        for k in ["before", "during", "after"] {
            row.push(cell(&s["amplitude"][k]));
        }
        let _ = writeln!(csv, "{}", row.join(","));
        rows += 1;
    }
    let out = dir.join("sweep.csv");
    std::fs::write(&out, csv).map_err(|e| format!("cannot write '{}': {e}", out.display()))?;
    Ok(rows)
}

/// Merge the shard folders `from` into `into` (same plan), then rebuild its `sweep.csv`;
/// returns its number of runs. A folder given twice is merged once, with a note. Runs of the
/// plan done in none of the folders (another shard's, or unfinished) get a warning that counts
/// them, not an error: merging the shards finished so far is a fair progress check.
pub fn merge(from: &[PathBuf], into: &Path) -> Result<usize, String> {
    // Compared as canonical paths, so `A` and `./A/` are one folder.
    let mut seen = Vec::new();
    let mut from = from.to_vec();
    from.retain(|dir| {
        let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if seen.contains(&canonical) {
            err!("note: {} is given twice; merged once", dir.display());
            return false;
        }
        seen.push(canonical);
        true
    });
    let mut plan: Option<Plan> = None;
    for dir in &from {
        let path = dir.join(PLAN_FILE);
        let p: Plan = serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read '{}': {e}; is it a sweep folder?",
                path.display()
            )
        })?)
        .map_err(|e| format!("{}: not a sweep plan ({e})", path.display()))?;
        match &plan {
            None => plan = Some(p),
            Some(first) if first != &p => {
                return Err(format!(
                    "{} holds a different sweep from {}",
                    dir.display(),
                    from[0].display()
                ))
            }
            Some(_) => {}
        }
    }
    let plan = plan.ok_or("nothing to merge: give the shard folders")?;
    let runs = plan
        .check()
        .map_err(|e| format!("{}: {e}", from[0].display()))?;
    pin_plan(into, &plan)?;
    for dir in &from {
        if dir == into {
            continue;
        }
        for id in 0..runs {
            if done(dir, id) && !done(into, id) {
                copy_dir(&run_dir(dir, id), &run_dir(into, id))?;
            }
        }
    }
    let rows = collect(into)?;
    if rows < runs {
        err!(
            "warning: {}: {rows} of {runs} runs; {} missing (done in none of the folders \
             given) — merge the other shards' folders into it too (entrain sweep merge \
             OTHER_SHARD... --out {0}), or finish their sweeps first",
            into.display(),
            runs - rows
        );
    }
    Ok(rows)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("cannot create '{}': {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot read '{}': {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target)
            .map_err(|e| format!("cannot copy to '{}': {e}", target.display()))?;
    }
    Ok(())
}

/// The plan stored in a sweep folder.
pub fn read_plan(dir: &Path) -> Result<Plan, String> {
    let path = dir.join(PLAN_FILE);
    serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read '{}': {e}; is it a sweep folder?",
            path.display()
        )
    })?)
    .map_err(|e| format!("{}: not a sweep plan ({e})", path.display()))
}

/// A 2-D view of a sweep's table.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Distinct x values, ascending.
    pub xs: Vec<f64>,
    /// Distinct y values, ascending.
    pub ys: Vec<f64>,
    /// Row-major `values[iy · xs.len() + ix]`, averaged over seeds; NaN where no run is done.
    pub values: Vec<f64>,
}

/// `value` of `DIR/sweep.csv` over the grid of the keys `x` × `y` (two different keys).
pub fn grid(dir: &Path, x: &str, y: &str, value: &str) -> Result<Grid, String> {
    let path = dir.join("sweep.csv");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            format!(
                "{}: no column `{name}`; it has {}",
                path.display(),
                header.join(", ")
            )
        })
    };
    if x == y {
        let varied: Vec<&str> = header
            .iter()
            .take_while(|h| **h != FIGURES[0])
            .copied()
            .collect();
        let fix = if varied.len() >= 2 {
            format!("give --x and --y two of {}", varied.join(", "))
        } else {
            format!(
                "this sweep varied only {}; sweep over two keys (two --vary)",
                varied.join(", ")
            )
        };
        return Err(format!(
            "{}: --x and --y are both `{x}`; a heat map needs two different keys: {fix}",
            path.display()
        ));
    }
    let (cx, cy, cv) = (col(x)?, col(y)?, col(value)?);
    let mut points = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| {
            f.get(i)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        points.push((num(cx), num(cy), num(cv)));
    }
    let distinct = |sel: fn(&(f64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = points.iter().map(sel).filter(|v| v.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    if points.is_empty() {
        return Err(format!(
            "{}: no finished runs yet (the table has only its header); run the sweep, or wait \
             for its first run to finish",
            path.display()
        ));
    }
    let (xs, ys) = (distinct(|p| p.0), distinct(|p| p.1));
    for (key, axis) in [(x, &xs), (y, &ys)] {
        if axis.is_empty() {
            return Err(format!(
                "{}: column `{key}` has no numbers; give --x and --y varied keys",
                path.display()
            ));
        }
    }
    let cells = xs.len().saturating_mul(ys.len());
    if cells > crate::render::MAX_GRID_CELLS {
        return Err(format!(
            "{}: {} × {} distinct values of {x} × {y} make {} cells; at most {} can be drawn: \
             pick --x and --y keys that were varied on a grid",
            path.display(),
            thousands(xs.len() as u64),
            thousands(ys.len() as u64),
            thousands(cells as u64),
            thousands(crate::render::MAX_GRID_CELLS as u64)
        ));
    }
    let mut sum = vec![0.0; cells];
    let mut count = vec![0u32; cells];
    for (px, py, v) in points {
        // `partial_cmp` (not `total_cmp`), so −0 finds 0 as `==` does; NaN finds nothing.
        let find = |axis: &[f64], v: f64| {
            axis.binary_search_by(|a| a.partial_cmp(&v).unwrap_or(std::cmp::Ordering::Less))
        };
        let (Ok(ix), Ok(iy)) = (find(&xs, px), find(&ys, py)) else {
            continue;
        };
        if v.is_finite() {
            sum[iy * xs.len() + ix] += v;
            count[iy * xs.len() + ix] += 1;
        }
    }
    let values = sum
        .iter()
        .zip(&count)
        .map(|(s, &n)| if n > 0 { s / f64::from(n) } else { f64::NAN })
        .collect();
    Ok(Grid { xs, ys, values })
}

/// The first-order locking edge of a single Stuart–Landau or Kuramoto oscillator under tACS, as
/// (natural frequency Hz, Hz of detuning per stimulus amplitude unit): `|Ω − ω| = F/r` with
/// `F = forcing_gain · A / 2` (the co-rotating half of a real sine) and `r = √(λ/μ)` (1 for
/// Kuramoto). `None` for other models or heterogeneous parameters.
pub fn analytic_edge(profile: &Profile) -> Option<(f64, f64)> {
    use crate::model::ParamSpec;
    use crate::profile::ModelParams;
    let value = |p: &ParamSpec| match p {
        ParamSpec::Value(v) => Some(*v),
        _ => None,
    };
    let gain = profile.model.forcing_gain / 2.0 / std::f64::consts::TAU;
    if profile.model.nodes != 1 {
        return None;
    }
    match &profile.model.params {
        ModelParams::StuartLandau(p) => {
            let r = (value(&p.lambda)? / value(&p.mu)?).sqrt();
            (r > 0.0).then(|| (value(&p.freq_hz).unwrap_or(f64::NAN), gain / r))
        }
        ModelParams::Kuramoto(p) => Some((value(&p.freq_hz)?, gain)),
        _ => None,
    }
    .filter(|(f, k)| f.is_finite() && k.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan of `axes` × `seeds` on an empty profile (for the plan's own arithmetic).
    fn plan_of(axes: Vec<Axis>, seeds: u64) -> Plan {
        Plan {
            profile_path: "p".into(),
            profile_text: String::new(),
            sets: Vec::new(),
            axes,
            seeds,
            keep_signals: false,
        }
    }

    #[test]
    fn a_bad_axis_value_is_blamed_on_vary_not_set() {
        let plan = Plan {
            profile_path: "q.toml".into(),
            profile_text: crate::profile::QUICKSTART.into(),
            ..plan_of(vec![Axis::parse("stimulation.freqhz=8:9:1").unwrap()], 1)
        };
        let e = plan.point_profile(&plan.point(0, 1)).unwrap_err();
        assert!(e.contains("stimulation.freqhz"), "{e}");
        assert!(e.contains("--vary, as stimulation.freqhz=8"), "{e}");
        assert!(!e.contains("--set"), "{e}");
    }

    #[test]
    fn an_axis_includes_its_stop_and_takes_the_typed_decimals() {
        let a = Axis::parse("stimulation.freq_hz=8:12:0.1").unwrap();
        assert_eq!(a.values.len(), 41);
        // Each value is the f64 of its decimal, as if typed: k / 10 rounds correctly.
        for (k, v) in a.values.iter().enumerate() {
            assert_eq!(*v, (80 + k) as f64 / 10.0, "value {k}");
        }
        for (text, expected) in [
            // 0.1 + 2 × 0.1 is 0.30000000000000004 in binary.
            ("a.b=0.1:0.3:0.1", &[0.1, 0.2, 0.3][..]),
            ("a.b=1:2:0.3", &[1.0, 1.3, 1.6, 1.9]),
            ("a.b=0.05:0.25:0.1", &[0.05, 0.15, 0.25]),
            ("a.b=0:3e-3:1e-3", &[0.0, 0.001, 0.002, 0.003]),
            ("a.b=-0.3:0.3:0.1", &[-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]),
            ("run.seed=3:5:1", &[3.0, 4.0, 5.0]),
        ] {
            let values = Axis::parse(text).unwrap().values;
            assert_eq!(values, expected, "{text}");
            // 0, not −0 (which the table would print as "-0").
            assert!(values.iter().all(|v| *v != 0.0 || v.is_sign_positive()));
        }
        for (typed, places) in [
            ("0.25", 2),
            ("1.5e-3", 4),
            ("2e3", 0),
            ("1.2345E2", 2),
            ("7", 0),
            (".5", 1),
            ("1e-99999999", 400),
        ] {
            assert_eq!(decimal_places(typed), places, "{typed}");
        }
        for bad in [
            "a=1:2:1",
            "a.b=1:2",
            "a.b=2:1:1",
            "a.b=1:2:0",
            "a.b=x:2:1",
            "a.b",
        ] {
            assert!(Axis::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_split_the_runs_disjointly_and_completely() {
        let shards: Vec<Shard> = (1..=3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        for id in 0..30 {
            assert_eq!(shards.iter().filter(|s| s.owns(id)).count(), 1, "{id}");
        }
        assert!(Shard::parse("0/3").is_err() && Shard::parse("4/3").is_err());
    }

    #[test]
    fn points_enumerate_the_grid_with_the_first_axis_slowest_and_seeds_fastest() {
        let plan = plan_of(
            vec![
                Axis::parse("a.x=0:1:1").unwrap(),
                Axis::parse("a.y=0:2:1").unwrap(),
            ],
            2,
        );
        assert_eq!(plan.len(), 12);
        let p = plan.point(7, 10);
        assert_eq!((p.values.clone(), p.seed), (vec![1.0, 0.0], 11));
        let p = plan.point(5, 10);
        assert_eq!((p.values, p.seed), (vec![0.0, 2.0], 11));
    }

    #[test]
    fn axis_counts_are_capped_before_any_conversion() {
        for (bad, expected) in [
            ("a.b=0:1:1e-300", "1.0e300 values; at most 100 000 per axis"),
            ("a.b=0:100000:1", "100 001 values; at most 100 000 per axis"),
            ("a.b=-1e308:1e308:1", "overflows"),
            ("a.b=1e16:10000000000000004:1", "below the precision"),
            ("run.seed=0:2:0.5", "seeds are whole numbers"),
            ("run.seed=1e300:1e300:1", "seeds are whole numbers"),
        ] {
            let e = Axis::parse(bad).unwrap_err();
            assert!(e.contains(expected), "{bad}: {e}");
        }
        assert_eq!(Axis::parse("a.b=0:99999:1").unwrap().values.len(), 100_000);
        assert_eq!(
            Axis::parse("run.seed=3:5:1").unwrap().values,
            [3.0, 4.0, 5.0]
        );
    }

    #[test]
    fn plan_sizes_are_counted_without_overflow_and_capped() {
        let axis = |key: &str, n: usize| Axis {
            key: key.into(),
            values: (0..n).map(|i| i as f64).collect(),
        };
        let mut plan = plan_of(vec![axis("a.x", 4)], (1 << 62) + 1);
        // 4 × (2^62 + 1) used to wrap to 4.
        assert_eq!(plan.len(), usize::MAX);
        let e = plan.check().unwrap_err();
        assert!(e.contains("more runs than can be counted"), "{e}");
        plan.seeds = 25_000;
        assert_eq!(plan.check(), Ok(100_000));
        plan.seeds = 25_001;
        let e = plan.check().unwrap_err();
        assert!(
            e.contains("100 004 runs (4 values of a.x × --seeds 25 001); at most 100 000"),
            "{e}"
        );
        plan.seeds = 1;
        plan.axes.push(axis("a.x", 2));
        let e = plan.check().unwrap_err();
        assert!(e.contains("--vary a.x: the key is varied twice"), "{e}");
        plan.seeds = 0;
        plan.axes.pop();
        assert!(plan.check().unwrap_err().contains("--seeds"));
    }

    #[test]
    fn a_seed_axis_gives_the_first_seed_of_each_point() {
        let plan = plan_of(
            vec![
                Axis::parse("a.x=0:1:1").unwrap(),
                Axis::parse("run.seed=10:30:10").unwrap(),
            ],
            2,
        );
        let seeds: Vec<u64> = (0..plan.len()).map(|id| plan.point(id, 1).seed).collect();
        assert_eq!(seeds, [10, 11, 20, 21, 30, 31, 10, 11, 20, 21, 30, 31]);
        // Without one, the base seed (wrapping rather than overflowing at u64::MAX).
        let plain = Plan {
            axes: vec![Axis::parse("a.x=0:1:1").unwrap()],
            ..plan
        };
        assert_eq!(plain.point(1, u64::MAX).seed, 0);
        assert_eq!(plain.point(2, 7).seed, 7);
    }
}
