//! Plants: networks of oscillator / neural-mass nodes integrated at a fixed step.
//!
//! Owns: the [`Plant`] trait and the model ladder of MODELS.md — [`Kuramoto`], the harmonic
//! network (Stuart–Landau without the cubic term), [`StuartLandau`], the SL field with divisive
//! normalization ([`sl_dn_field`]), the firing-rate population ([`rate`]), Wilson–Cowan
//! ([`wilson_cowan`]), Baier's E–I tanh grid ([`baier_grid`]), Jansen–Rit ([`jansen_rit`]),
//! Montbrió–Pazó–Roxin ([`mpr`]) and HORN ([`horn`]) — plus topologies ([`network`]), delay
//! histories ([`delay`]), heterogeneous parameters ([`param`]), the streaming coloured-noise
//! inputs, 1/f ([`pink`]) and Ornstein–Uhlenbeck ([`ou`]), and the vectorised sigmoid kernels,
//! logistic and tanh ([`sigmoid`]).
//! May call: [`crate::integrate`], [`crate::noise`]. Plants do no I/O (except reading a coupling CSV at build) and
//! start no threads; after `build` their `step` never allocates.
//!
//! Units: time in seconds, frequencies in Hz in profiles (rad/s inside), phase convention of
//! MODELS.md (`x ≈ A cos φ`, peak = 0).

pub mod baier_grid;
pub mod delay;
pub mod dense;
pub mod harmonic;
pub mod horn;
pub mod jansen_rit;
pub mod kuramoto;
pub mod mpr;
pub mod network;
pub mod ou;
pub mod param;
pub mod pink;
pub mod rate;
pub mod sigmoid;
pub mod sl_dn_field;
pub mod stuart_landau;
pub mod wilson_cowan;

use num_complex::Complex64;
use serde::{Deserialize, Serialize};

pub use delay::{HistoryPrecision, NodeValue};
pub use kuramoto::{Kuramoto, KuramotoParams};
pub use network::{Coupling, NetworkSpec};
pub use param::{Dist, ParamSpec, Sampling};
pub use stuart_landau::{StuartLandau, StuartLandauParams};

use crate::integrate::Scheme;

/// A network of nodes stepped at a fixed `dt`, forced per node, observed per node.
pub trait Plant: Send {
    /// Number of nodes.
    fn nodes(&self) -> usize;
    /// The model step, seconds.
    fn dt(&self) -> f64;
    /// Model time since the start, seconds.
    fn time(&self) -> f64;
    /// Advance one step with `forcing[i]` (complex, model input units) held over the step.
    /// `forcing.len() == nodes()`. Never allocates.
    fn step(&mut self, forcing: &[Complex64]);
    /// What an electrode on `node` records (e.g. `Re z`).
    fn observable(&self, node: usize) -> f64;
    /// Every node's observable at once, `out[i] = observable(i)`, for a caller that reads the
    /// whole network each step: one call instead of one per node. `out.len() == nodes()`.
    /// Never allocates.
    fn observe_all(&self, out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.observable(i);
        }
    }
    /// The model's own phase of `node`, rad in (−π, π], where the model defines one.
    fn phase(&self, node: usize) -> Option<f64>;
    /// The network's mean observable.
    fn mean_observable(&self) -> f64 {
        (0..self.nodes()).map(|i| self.observable(i)).sum::<f64>() / self.nodes() as f64
    }
    /// The phase of the network's mean field, where the model defines one.
    fn mean_phase(&self) -> Option<f64>;
    /// Return to the initial state (real-time safe; the noise generator is re-seeded).
    fn reset(&mut self);
    /// Bytes of state, delay history and coupling (for capacity reports).
    fn state_bytes(&self) -> usize;
    /// `(rows, cols)` when the nodes lie on a grid, node `r·cols + c` at row `r`, column `c`.
    fn grid(&self) -> Option<(usize, usize)> {
        None
    }
}

/// Which plant a profile asks for (`[model] kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Harmonic oscillators `dz/dt = (a + iω) z + F` (MODELS.md §2).
    Harmonic,
    /// Kuramoto phase oscillators (MODELS.md §1).
    Kuramoto,
    /// Stuart–Landau / Hopf normal form (MODELS.md §3).
    StuartLandau,
    /// Stuart–Landau field with divisive normalization on a square grid (MODELS.md §4).
    SlDnField,
    /// Firing-rate population (MODELS.md §5).
    Rate,
    /// Wilson–Cowan E–I population (MODELS.md §6).
    WilsonCowan,
    /// Baier's coupled E–I tanh oscillators on a square grid (MODELS.md §7).
    BaierGrid,
    /// Jansen–Rit cortical column (MODELS.md §8).
    JansenRit,
    /// Montbrió–Pazó–Roxin QIF mean field (MODELS.md §9).
    Mpr,
    /// Harmonic-oscillator recurrent network (MODELS.md §10).
    Horn,
}

impl ModelKind {
    /// Every kind, in declaration order (a test holds it to serde's list of the names).
    pub const ALL: [ModelKind; 10] = [
        ModelKind::Harmonic,
        ModelKind::Kuramoto,
        ModelKind::StuartLandau,
        ModelKind::SlDnField,
        ModelKind::Rate,
        ModelKind::WilsonCowan,
        ModelKind::BaierGrid,
        ModelKind::JansenRit,
        ModelKind::Mpr,
        ModelKind::Horn,
    ];

    /// The profile name of this kind.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Harmonic => "harmonic",
            ModelKind::Kuramoto => "kuramoto",
            ModelKind::StuartLandau => "stuart_landau",
            ModelKind::SlDnField => "sl_dn_field",
            ModelKind::Rate => "rate",
            ModelKind::WilsonCowan => "wilson_cowan",
            ModelKind::BaierGrid => "baier_grid",
            ModelKind::JansenRit => "jansen_rit",
            ModelKind::Mpr => "mpr",
            ModelKind::Horn => "horn",
        }
    }
}

/// Everything a plant needs that is common to every kind.
#[derive(Clone, Debug)]
pub struct PlantCommon {
    /// Number of nodes.
    pub nodes: usize,
    /// Integration scheme.
    pub scheme: Scheme,
    /// Step, seconds.
    pub dt: f64,
    /// White-noise amplitude per node, per √s, in the units of the variable it drives (each
    /// model's doc says which: the state for SL/HO/Kuramoto/rate/WC/Baier, the input rate p for
    /// Jansen–Rit, v for MPR, y for HORN); complex noise has this SD in each of the real and
    /// imaginary parts.
    pub noise_sd: f64,
    /// The coupling, built by [`Coupling::build`].
    pub coupling: Coupling,
    /// Global coupling gain: G (1/s) for SL/HO, K (1/s) for Kuramoto; dimensionless K for the
    /// rate, Wilson–Cowan, Jansen–Rit and MPR plants; per x-unit for HORN (each model's doc).
    pub gain: f64,
    /// Seed for initial conditions, heterogeneous parameters and noise.
    pub seed: u64,
    /// How the delayed coupling's history stores node values (`[network] history_precision`).
    pub history_precision: HistoryPrecision,
}

/// The coupling as the inner loops use it: edges split by whether they are delayed, delays in
/// whole model steps, and each node's total incoming weight (for the diffusive `−z_i` term).
#[derive(Clone, Debug)]
pub(crate) struct CouplingPlan<T: NodeValue> {
    /// Σ_j C_ij per node.
    pub row_sum: Vec<f64>,
    kind: PlanKind<T>,
    /// Longest delay, steps.
    pub max_delay_steps: usize,
    /// Whether the last delayed input was left in the block row (see
    /// [`CouplingPlan::delayed_input_unless_row`]), where [`CouplingPlan::network_input`] reads
    /// it.
    in_row: bool,
}

// Built once per plant and matched once per step: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum PlanKind<T: NodeValue> {
    None,
    MeanField {
        weight: f64,
        delay_steps: usize,
    },
    Sparse {
        instant: Edges,
        /// Delayed edges shorter than a block: read one step at a time.
        near: Edges,
        /// Delayed edges of at least `block_len − 1` steps: read a block of steps at a time.
        far: Edges,
        /// Steps per block (one of [`DELAY_BLOCKS`]).
        block_len: usize,
        /// `block[k · stride + i]`: the far edges' input to node `i` at `k` steps after
        /// `block_start` (a push count of the history).
        block: Vec<T>,
        /// Values from one row of `block` to the next ([`staggered_len`] of the nodes): each node's
        /// sums go down a column, one value per row.
        stride: usize,
        /// `(resets, pushes)` of the history when the block was computed.
        block_start: Option<(u64, u64)>,
        /// The block row of the step the last delayed input was for.
        row: usize,
    },
    /// Many instantaneous edges and no delayed ones: a blocked SIMD mat-vec over the real and
    /// (when any is non-zero) the imaginary parts, with their scratch.
    Dense {
        matrix: dense::DenseMatrix,
        re: Vec<f64>,
        im: Vec<f64>,
        out_re: Vec<f64>,
        out_im: Vec<f64>,
    },
}

/// Steps of delayed input computed at once for the edges long enough to allow it. Each such edge
/// then reads a contiguous run of its source's history per block instead of one scattered value
/// per step; the result is the same sums (exact: the values are known a block ahead because the
/// delay is at least the block).
/// Longer blocks amortise more per edge; the longest is taken that leaves at least
/// [`FAR_SHARE`] of the delayed edges long enough for it.
const DELAY_BLOCKS: [usize; 2] = [32, 16];
// A block's runs come from `HistoryReader::run`, which returns at most `MIRRORED` steps.
const _: () = assert!(DELAY_BLOCKS[0] <= delay::MIRRORED && DELAY_BLOCKS[1] <= DELAY_BLOCKS[0]);
const FAR_SHARE: f64 = 0.95;

/// How many edges ahead [`far_block`] asks for its history runs to be loaded: enough to cover
/// L3 latency with a few runs in flight. Measured best at 2–4 on a Xeon when each whole run was
/// asked for; 6 on a Zen 3 core now that only a run's first lines are (see
/// `DelayLine::prefetch_run`).
const PREFETCH_EDGES: usize = 6;
/// Histories smaller than this stay in L2 (2 MB per core on the development machine), where
/// asking for each run costs more than it saves (the standard problem with delays: 59 → 66 ns
/// per node-step with prefetch).
const PREFETCH_MIN_BYTES: usize = 1 << 20;

/// Sparse edges become a dense matrix when at least this fraction of all n² pairs is coupled
/// (and none is delayed): past it the mat-vec's contiguous loads beat the edge list's gathers.
const DENSE_FILL: f64 = 0.25;
/// Largest node count stored densely (32 MB of weights).
const DENSE_MAX_NODES: usize = 2048;

#[derive(Clone, Debug, Default)]
struct Edges {
    row_ptr: Vec<usize>,
    col: Vec<u32>,
    /// Per edge; empty once [`Edges::share_row_weights`] moved them to `row_weight`.
    weight: Vec<f64>,
    /// Per row, when every edge into a node has the same weight (the generated topologies):
    /// a sum then streams 4 bytes an edge instead of 12, with the same products. Empty when the
    /// weights are per edge.
    row_weight: Vec<f64>,
    delay_steps: Vec<u32>,
    /// The rows with at least one edge (a sparse class such as the near edges touches few).
    rows: Vec<u32>,
}

impl Edges {
    fn bytes(&self) -> usize {
        std::mem::size_of_val(&self.row_ptr[..])
            + std::mem::size_of_val(&self.col[..])
            + std::mem::size_of_val(&self.weight[..])
            + std::mem::size_of_val(&self.row_weight[..])
            + std::mem::size_of_val(&self.delay_steps[..])
            + std::mem::size_of_val(&self.rows[..])
    }

    fn is_empty(&self) -> bool {
        self.col.is_empty()
    }

    /// Keep one weight per row instead of one per edge when, in every row, all edges carry the
    /// same weight (bit for bit, so the sums do not change).
    fn share_row_weights(&mut self) {
        let rows = self.row_ptr.len().saturating_sub(1);
        let row = |i: usize| &self.weight[self.row_ptr[i]..self.row_ptr[i + 1]];
        let shared = (0..rows).all(|i| {
            let w = row(i);
            w.iter().all(|x| x.to_bits() == w[0].to_bits())
        });
        if shared && !self.col.is_empty() {
            self.row_weight = (0..rows)
                .map(|i| row(i).first().copied().unwrap_or(0.0))
                .collect();
            self.weight = Vec::new();
        }
    }

    /// Record which rows have edges, once all rows are in.
    fn index_rows(&mut self) {
        self.rows = (0..self.row_ptr.len().saturating_sub(1))
            .filter(|&i| self.row_ptr[i] < self.row_ptr[i + 1])
            .map(|i| i as u32)
            .collect();
    }
}

/// Every natural frequency (Hz) below the plant's Nyquist frequency, `1 / (2 dt)`: a rotation of
/// half a turn or more per step is no longer the oscillator it names (and the explicit schemes
/// blow up long before).
pub(crate) fn check_below_nyquist(freq_hz: &[f64], dt: f64) -> Result<(), String> {
    let nyquist_hz = 0.5 / dt;
    match freq_hz.iter().find(|f| f.is_nan() || f.abs() >= nyquist_hz) {
        Some(f) => Err(format!(
            "model.params.freq_hz: {f} Hz is not below the plant's Nyquist frequency \
             ({nyquist_hz} Hz at a {:.1} µs step); lower it, or lower model.samples_per_step / \
             raise run.sample_rate_hz",
            dt * 1e6
        )),
        None => Ok(()),
    }
}

/// `values` values of `bytes` each rounded up to whole cache lines, plus one line when that
/// makes an even number: the distance to keep between blocks of per-node values that a loop
/// walks side by side. Blocks a multiple of 4 kB apart (512 real or 256 complex nodes) put the
/// same node of every block into one 8-way L1 set, and a loop with more streams than ways
/// evicts its own lines: an MPR network of 512 nodes took 23–25 ns per node-step where 480
/// and 544 took 15. An odd number of lines spreads the blocks over all the sets.
pub(crate) fn staggered_len(values: usize, bytes: usize) -> usize {
    let per_line = (64 / bytes).max(1);
    let lines = values.div_ceil(per_line);
    (lines | 1) * per_line
}

/// `block[k · stride + i] = Σ_{far edges j → i} C_ij u_j(now + k − τ_ij)` for the next `len`
/// steps: per edge one contiguous run of the source's history, accumulated for one node at a
/// time as flat `f64` parts so the loop vectorises (AVX2 where the CPU has it; the same bits
/// either way), then stored time-major so that each step's input is one contiguous row.
fn far_block<T: NodeValue>(
    far: &Edges,
    history: &delay::DelayLine<T>,
    len: usize,
    (block, stride): (&mut [T], usize),
) {
    match history.reader() {
        delay::Reader::F64(reader) => far_block_at(far, reader, len, (block, stride)),
        delay::Reader::F32(reader) => far_block_at(far, reader, len, (block, stride)),
    }
}

/// [`far_block`] on a history stored as `P`.
fn far_block_at<T: NodeValue, P: delay::Part>(
    far: &Edges,
    history: delay::HistoryReader<'_, P>,
    len: usize,
    (block, stride): (&mut [T], usize),
) {
    const LONG: usize = DELAY_BLOCKS[0];
    const SHORT: usize = DELAY_BLOCKS[1];
    debug_assert!(
        len == LONG || len == SHORT,
        "block lengths are DELAY_BLOCKS"
    );
    match (T::PARTS, len == LONG) {
        (1, true) => far_block_of::<T, P, LONG, LONG>(far, history, block, stride),
        (1, false) => far_block_of::<T, P, SHORT, SHORT>(far, history, block, stride),
        (_, true) => far_block_of::<T, P, LONG, { 2 * LONG }>(far, history, block, stride),
        (_, false) => far_block_of::<T, P, SHORT, { 2 * SHORT }>(far, history, block, stride),
    }
}

/// [`far_block`] for blocks of `LEN` steps, `PARTS = T::PARTS · LEN` sums. The sums are a
/// fixed-length array indexed only by constants, so they stay in registers: indexed by a run's
/// length they lived on the stack, and each edge's adds waited on the previous edge's stores
/// (the 48 kHz problem: 14.3 → 12.3 ns per node-step). Parts stored as `f32` are widened
/// (exactly) before they are multiplied, so the sums are `f64` either way.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn far_block_of<T: NodeValue, P: delay::Part, const LEN: usize, const PARTS: usize>(
    far: &Edges,
    history: delay::HistoryReader<'_, P>,
    block: &mut [T],
    stride: usize,
) {
    assert_eq!(PARTS, T::PARTS * LEN, "PARTS is the parts of a run");
    let nodes = far.row_ptr.len() - 1;
    let prefetch = history.bytes() >= PREFETCH_MIN_BYTES;
    for i in 0..nodes {
        let mut acc = [0.0f64; PARTS];
        for e in far.row_ptr[i]..far.row_ptr[i + 1] {
            if prefetch {
                if let (Some(&node), Some(&delay)) = (
                    far.col.get(e + PREFETCH_EDGES),
                    far.delay_steps.get(e + PREFETCH_EDGES),
                ) {
                    history.prefetch_run(node as usize, delay as usize, LEN);
                }
            }
            let run = history.run(far.col[e] as usize, far.delay_steps[e] as usize, LEN);
            let run: &[P; PARTS] = run.try_into().expect("a run of LEN values");
            let w = far.weight[e];
            for (a, r) in acc.iter_mut().zip(run) {
                *a += r.widen() * w;
            }
        }
        for (k, z) in acc.chunks_exact(T::PARTS).enumerate() {
            block[k * stride + i] = T::from_flat(z);
        }
    }
}

/// Rows summed side by side in [`row_sums`].
const SUM_ROWS: usize = 4;

/// `out[i] = init[i] + Σ_e u[col_e] · w_e` over the edges into each node (`w_e` the row's
/// shared weight when `SHARED`, else the edge's own), every row in its own edge order: the same
/// bits as the plain row loop. Each row's sum is a serial chain of adds, and the plain loop waited
/// on it; here [`SUM_ROWS`] rows go side by side, in step up to the shortest one's length, so
/// their chains overlap.
fn row_sums<T: NodeValue, const SHARED: bool>(edges: &Edges, u: &[T], init: &[T], out: &mut [T]) {
    // A row's sources and weights (no weights when they are shared), and its shared weight.
    let row = |i: usize| {
        let edges_of = edges.row_ptr[i]..edges.row_ptr[i + 1];
        if SHARED {
            (&edges.col[edges_of], &[][..], edges.row_weight[i])
        } else {
            (&edges.col[edges_of.clone()], &edges.weight[edges_of], 0.0)
        }
    };
    let term = |sources: &[u32], weights: &[f64], shared: f64, t: usize| {
        u[sources[t] as usize] * if SHARED { shared } else { weights[t] }
    };
    let n = out.len();
    let whole = n - n % SUM_ROWS;
    for i in (0..whole).step_by(SUM_ROWS) {
        let rows: [_; SUM_ROWS] = std::array::from_fn(|k| row(i + k));
        let common = rows.iter().map(|r| r.0.len()).min().unwrap_or(0);
        let mut acc: [T; SUM_ROWS] = std::array::from_fn(|k| init[i + k]);
        for t in 0..common {
            for (a, &(sources, weights, shared)) in acc.iter_mut().zip(&rows) {
                *a += term(sources, weights, shared, t);
            }
        }
        for (k, (mut a, (sources, weights, shared))) in acc.into_iter().zip(rows).enumerate() {
            for t in common..sources.len() {
                a += term(sources, weights, shared, t);
            }
            out[i + k] = a;
        }
    }
    for (i, o) in out.iter_mut().enumerate().skip(whole) {
        let (sources, weights, shared) = row(i);
        let mut acc = init[i];
        for t in 0..sources.len() {
            acc += term(sources, weights, shared, t);
        }
        *o = acc;
    }
}

/// `dst[i] = src[i].re` for every node (the plants with a real input take the forcing's real
/// part); returns whether `dst` held those values already, bit for bit. Compiled for AVX2 as
/// well, where the 64-bit patterns compare in one instruction (three in the SSE2 baseline).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
pub(crate) fn copy_real_parts(dst: &mut [f64], src: &[Complex64]) -> bool {
    let mut same = true;
    for (d, s) in dst.iter_mut().zip(src) {
        same &= d.to_bits() == s.re.to_bits();
        *d = s.re;
    }
    same
}

/// A slice of complex numbers as its interleaved `[re, im, …]` parts.
pub(crate) fn as_f64(z: &[Complex64]) -> &[f64] {
    // SAFETY: `Complex<f64>` is `#[repr(C)]` with exactly the fields `re`, `im` (num-complex
    // documents this layout), so `n` complex values are `2n` consecutive, aligned `f64`.
    unsafe { std::slice::from_raw_parts(z.as_ptr().cast::<f64>(), 2 * z.len()) }
}

impl<T: NodeValue> CouplingPlan<T> {
    pub fn new(coupling: &Coupling, nodes: usize, dt: f64) -> Self {
        let steps = |delay_s: f64| (delay_s / dt).round().max(0.0) as usize;
        match coupling {
            Coupling::None => Self {
                row_sum: vec![0.0; nodes],
                kind: PlanKind::None,
                max_delay_steps: 0,
                in_row: false,
            },
            Coupling::AllToAll {
                weight, delay_s, ..
            } => Self {
                row_sum: vec![weight * nodes as f64; nodes],
                kind: PlanKind::MeanField {
                    weight: *weight,
                    delay_steps: steps(*delay_s),
                },
                max_delay_steps: steps(*delay_s),
                in_row: false,
            },
            Coupling::Sparse(csr) => {
                let mut instant = Edges::default();
                let mut near = Edges::default();
                let mut far = Edges::default();
                instant.row_ptr.push(0);
                near.row_ptr.push(0);
                far.row_ptr.push(0);
                let delays: Vec<usize> = csr.delay_s.iter().map(|&d| steps(d)).collect();
                let delayed = delays.iter().filter(|&&d| d > 0).count();
                let block_len = DELAY_BLOCKS
                    .into_iter()
                    .find(|&len| {
                        let far = delays.iter().filter(|&&d| d > 0 && d + 1 >= len).count();
                        far as f64 >= FAR_SHARE * delayed as f64
                    })
                    .unwrap_or(DELAY_BLOCKS[DELAY_BLOCKS.len() - 1]);
                let mut row_sum = vec![0.0; nodes];
                let mut max_delay_steps = 0;
                for (i, sum) in row_sum.iter_mut().enumerate() {
                    let edges = csr.row_ptr[i]..csr.row_ptr[i + 1];
                    for (e, &d) in delays.iter().enumerate().take(edges.end).skip(edges.start) {
                        max_delay_steps = max_delay_steps.max(d);
                        *sum += csr.weight[e];
                        let target = if d == 0 {
                            &mut instant
                        } else if d + 1 < block_len {
                            &mut near
                        } else {
                            &mut far
                        };
                        target.col.push(csr.col[e]);
                        target.weight.push(csr.weight[e]);
                        target.delay_steps.push(d as u32);
                    }
                    instant.row_ptr.push(instant.col.len());
                    near.row_ptr.push(near.col.len());
                    far.row_ptr.push(far.col.len());
                }
                near.index_rows();
                let dense = near.is_empty()
                    && far.is_empty()
                    && nodes <= DENSE_MAX_NODES
                    && instant.col.len() as f64 >= DENSE_FILL * (nodes * nodes) as f64;
                let kind = if dense {
                    let mut w = vec![0.0; nodes * nodes];
                    for i in 0..nodes {
                        for e in instant.row_ptr[i]..instant.row_ptr[i + 1] {
                            w[i * nodes + instant.col[e] as usize] += instant.weight[e];
                        }
                    }
                    PlanKind::Dense {
                        matrix: dense::DenseMatrix::new(nodes, w),
                        re: vec![0.0; nodes],
                        im: vec![0.0; nodes],
                        out_re: vec![0.0; nodes],
                        out_im: vec![0.0; nodes],
                    }
                } else {
                    let stride = staggered_len(nodes, std::mem::size_of::<T>());
                    let block = if far.is_empty() {
                        Vec::new()
                    } else {
                        vec![T::default(); stride * block_len]
                    };
                    instant.share_row_weights();
                    PlanKind::Sparse {
                        instant,
                        near,
                        far,
                        block_len,
                        block,
                        stride,
                        block_start: None,
                        row: 0,
                    }
                };
                Self {
                    row_sum,
                    kind,
                    max_delay_steps,
                    in_row: false,
                }
            }
        }
    }

    /// Bytes of edges, weights and scratch the plan holds (for capacity reports: a dense plan
    /// is `8 n²`, a sparse one grows with the edge count).
    pub fn bytes(&self) -> usize {
        fn len<T>(v: &[T]) -> usize {
            std::mem::size_of_val(v)
        }
        let kind = match &self.kind {
            PlanKind::None | PlanKind::MeanField { .. } => 0,
            PlanKind::Sparse {
                instant,
                near,
                far,
                block,
                ..
            } => {
                [instant, near, far]
                    .iter()
                    .map(|e| e.bytes())
                    .sum::<usize>()
                    + len(block)
            }
            PlanKind::Dense {
                matrix,
                re,
                im,
                out_re,
                out_im,
            } => matrix.bytes() + len(re) + len(im) + len(out_re) + len(out_im),
        };
        kind + len(&self.row_sum)
    }

    /// Whether any input depends on the current (stage) state rather than on history.
    pub fn has_instant(&self) -> bool {
        match &self.kind {
            PlanKind::None => false,
            PlanKind::MeanField { delay_steps, .. } => *delay_steps == 0,
            PlanKind::Sparse { instant, .. } => !instant.is_empty(),
            PlanKind::Dense { .. } => true,
        }
    }

    /// `out[i] = Σ_{delayed j} C_ij u_j(t − τ_ij)`, read from `history` (constant over a step).
    /// Call it once per step, before pushing the step's new state: long edges' inputs are
    /// computed a block of steps ahead, keyed to the history's push count (so a reset of the
    /// history, or a skipped call, just starts a new block).
    pub fn delayed_input(&mut self, history: &delay::DelayLine<T>, out: &mut [T]) {
        self.in_row = self.delayed_input_into::<false>(history, out);
    }

    /// [`CouplingPlan::delayed_input`], except when the input is exactly the far edges' block
    /// row for this step (every coupled edge delayed by at least a block): then `out` is left
    /// as it is and the input is read at [`CouplingPlan::delayed_row`], which saves copying
    /// the row each step (16 kB for 1 000 z-coupled nodes). Returns whether it did so;
    /// [`CouplingPlan::network_input`] remembers it.
    pub fn delayed_input_unless_row(
        &mut self,
        history: &delay::DelayLine<T>,
        out: &mut [T],
    ) -> bool {
        self.in_row = self.delayed_input_into::<true>(history, out);
        self.in_row
    }

    /// The block row [`CouplingPlan::delayed_input_unless_row`] left the step's input in (empty
    /// for a plan without blocks).
    pub fn delayed_row(&self) -> &[T] {
        match &self.kind {
            PlanKind::Sparse {
                block, row, stride, ..
            } if !block.is_empty() => {
                let nodes = self.row_sum.len();
                &block[row * stride..row * stride + nodes]
            }
            _ => &[],
        }
    }

    fn delayed_input_into<const ROW: bool>(
        &mut self,
        history: &delay::DelayLine<T>,
        out: &mut [T],
    ) -> bool {
        match &mut self.kind {
            PlanKind::None | PlanKind::Dense { .. } => out.fill(T::default()),
            PlanKind::MeanField {
                weight,
                delay_steps,
            } => {
                let value = if *delay_steps == 0 {
                    T::default()
                } else {
                    (0..history.nodes())
                        .map(|j| history.get(j, *delay_steps))
                        .sum::<T>()
                        * *weight
                };
                out.fill(value);
            }
            PlanKind::Sparse {
                instant,
                near,
                far,
                block_len,
                block,
                stride,
                block_start,
                row,
            } => {
                let len = *block_len;
                let (resets, pushes) = (history.resets(), history.pushes());
                let k = match *block_start {
                    Some((r, start))
                        if r == resets && pushes >= start && pushes - start < len as u64 =>
                    {
                        (pushes - start) as usize
                    }
                    _ if far.is_empty() => 0,
                    _ => {
                        far_block(far, history, len, (block, *stride));
                        *block_start = Some((resets, pushes));
                        0
                    }
                };
                *row = k;
                let nodes = out.len();
                if far.is_empty() {
                    out.fill(T::default());
                } else if ROW && near.is_empty() && instant.is_empty() {
                    return true;
                } else {
                    out.copy_from_slice(&block[k * *stride..k * *stride + nodes]);
                }
                if near.is_empty() {
                    return false;
                }
                for &i in &near.rows {
                    let i = i as usize;
                    let mut acc = out[i];
                    for e in near.row_ptr[i]..near.row_ptr[i + 1] {
                        let z = history.get(near.col[e] as usize, near.delay_steps[e] as usize);
                        acc += z * near.weight[e];
                    }
                    out[i] = acc;
                }
            }
        }
        false
    }

    /// The fast path of real-valued coupling on a dense plan: `Σ_j C_ij x_j` with `x_j =
    /// xy[2j]`, the first parts of interleaved pairs such as a state `[x₀, y₀, x₁, y₁, …]`
    /// (one mat-vec reading them in place, no imaginary parts), left in
    /// [`CouplingPlan::dense_real_output`]. Returns false, computing nothing, for every other
    /// plan (use [`CouplingPlan::total_input`]).
    pub fn dense_real_input(&mut self, xy: &[f64]) -> bool {
        match &mut self.kind {
            PlanKind::Dense { matrix, out_re, .. } => {
                matrix.apply_strided::<2>(xy, out_re);
                true
            }
            _ => false,
        }
    }

    /// The last [`CouplingPlan::dense_real_input`], one real value per node (empty for a plan
    /// that is not dense).
    pub fn dense_real_output(&self) -> &[f64] {
        match &self.kind {
            PlanKind::Dense { out_re, .. } => out_re,
            _ => &[],
        }
    }

    /// [`CouplingPlan::total_input`] when any edge is instantaneous; otherwise nothing, since
    /// the total is then the delayed input as it stands, which [`CouplingPlan::network_input`]
    /// returns without copying it.
    pub fn instant_input(&mut self, delayed: &[T], u: &[T], out: &mut [T]) {
        if self.has_instant() {
            self.total_input(delayed, u, out);
        }
    }

    /// The stage's network input after [`CouplingPlan::instant_input`] into `computed`:
    /// `computed` with instantaneous edges; without, the delayed input where the step's
    /// delayed input call left it, the plan's block row or `delayed`.
    pub fn network_input<'a>(&'a self, delayed: &'a [T], computed: &'a [T]) -> &'a [T] {
        if self.in_row {
            self.delayed_row()
        } else if self.has_instant() {
            computed
        } else {
            delayed
        }
    }

    /// `out[i] = delayed[i] + Σ_{instant j} C_ij u_j` with `u` the current stage's node values.
    pub fn total_input(&mut self, delayed: &[T], u: &[T], out: &mut [T]) {
        match &mut self.kind {
            PlanKind::None => out.fill(T::default()),
            PlanKind::MeanField {
                weight,
                delay_steps,
            } => {
                if *delay_steps == 0 {
                    let mean = u.iter().copied().sum::<T>() * *weight;
                    out.fill(mean);
                } else {
                    out.copy_from_slice(delayed);
                }
            }
            PlanKind::Sparse { instant, .. } => {
                if instant.col.is_empty() {
                    // Every edge delayed (the usual graph with conduction delays): the input is
                    // the delayed sum as it stands.
                    out.copy_from_slice(delayed);
                } else if instant.row_weight.is_empty() {
                    row_sums::<T, false>(instant, u, delayed, out);
                } else {
                    row_sums::<T, true>(instant, u, delayed, out);
                }
            }
            PlanKind::Dense {
                matrix,
                re,
                im,
                out_re,
                out_im,
            } => {
                let mut complex = false;
                for ((r, m), z) in re.iter_mut().zip(im.iter_mut()).zip(u) {
                    *r = z.re();
                    *m = z.im();
                    complex |= z.im() != 0.0;
                }
                matrix.apply(re, out_re);
                if complex {
                    matrix.apply(im, out_im);
                } else {
                    out_im.fill(0.0);
                }
                for (((o, d), r), m) in out.iter_mut().zip(delayed).zip(&*out_re).zip(&*out_im) {
                    *o = *d + T::from_re_im(*r, *m);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::network::Csr;
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn every_model_kind_is_listed_with_its_profile_name() {
        // serde's message for an unknown name lists every variant's name, in order.
        let e = serde_json::from_str::<ModelKind>("\"nope\"").unwrap_err();
        let names = ModelKind::ALL.map(|k| format!("`{}`", k.name())).join(", ");
        assert!(
            e.to_string().contains(&format!("expected one of {names}")),
            "{e}"
        );
        for kind in ModelKind::ALL {
            let parsed: ModelKind = serde_json::from_str(&format!("\"{}\"", kind.name())).unwrap();
            assert_eq!(parsed, kind);
        }
    }

    /// Random edges into every node with delays of 0 to `max_delay` steps (instant, near and
    /// far edges all present).
    fn random_coupling(
        n: usize,
        per_node: usize,
        delays: std::ops::RangeInclusive<usize>,
        dt: f64,
    ) -> Coupling {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut csr = Csr::empty(n);
        for _ in 0..n {
            let mut sources: Vec<u32> = (0..per_node)
                .map(|_| rng.random_range(0..n as u32))
                .collect();
            sources.sort_unstable();
            sources.dedup();
            for j in sources {
                let weight = rng.random::<f64>() - 0.3;
                csr.push_edge(j, weight, rng.random_range(delays.clone()) as f64 * dt);
            }
            csr.end_row();
        }
        Coupling::Sparse(csr)
    }

    /// `init + Σ_j C_ij u_j` over the CSR's instantaneous edges, one row at a time in edge
    /// order: the plain loop the plan's interleaved sums must equal bit for bit.
    fn plain_row_sums<T: NodeValue>(csr: &Csr, u: &[T], init: &[T]) -> Vec<T> {
        (0..init.len())
            .map(|i| {
                let mut acc = init[i];
                for e in csr.row_ptr[i]..csr.row_ptr[i + 1] {
                    acc += u[csr.col[e] as usize] * csr.weight[e];
                }
                acc
            })
            .collect()
    }

    fn check_instant_sums<T: NodeValue>(csr: &Csr, value: impl Fn(f64, f64) -> T, shared: bool) {
        let n = csr.row_ptr.len() - 1;
        let coupling = Coupling::Sparse(csr.clone());
        let mut plan = CouplingPlan::<T>::new(&coupling, n, 1e-3);
        let PlanKind::Sparse { instant, .. } = &plan.kind else {
            panic!("a sparse plan for {n} nodes, {} edges", csr.col.len());
        };
        assert_eq!(
            !instant.row_weight.is_empty(),
            shared,
            "weights shared per row"
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut draw = || value(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5);
        let u: Vec<T> = (0..n).map(|_| draw()).collect();
        let init: Vec<T> = (0..n).map(|_| draw()).collect();
        let mut out = vec![T::default(); n];
        plan.total_input(&init, &u, &mut out);
        let expected = plain_row_sums(csr, &u, &init);
        for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
            assert_eq!(
                (got.re().to_bits(), got.im().to_bits()),
                (want.re().to_bits(), want.im().to_bits()),
                "node {i} of {n}"
            );
        }
    }

    #[test]
    fn interleaved_row_sums_equal_the_plain_row_loop_bit_for_bit() {
        // Node counts that do and do not fill the last group of rows, and edges to under a
        // quarter of all pairs (more would make a dense plan).
        for n in [13, 14, 41, 400, 403] {
            let per_node = (n / 5).clamp(2, 9);
            let Coupling::Sparse(weighted) = random_coupling(n, per_node, 0..=0, 1e-3) else {
                unreachable!()
            };
            check_instant_sums(&weighted, Complex64::new, false);
            check_instant_sums(&weighted, |re, _| re, false);
            let spec = NetworkSpec {
                topology: network::Topology::RandomSparse {
                    mean_degree: per_node as f64,
                },
                normalize: network::Normalize::Row,
                delay_ms: None,
            };
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(n as u64);
            let Ok(Coupling::Sparse(unweighted)) = Coupling::build(&spec, n, &mut rng) else {
                panic!("a random sparse graph of {n} nodes");
            };
            check_instant_sums(&unweighted, Complex64::new, true);
            check_instant_sums(&unweighted, |re, _| re, true);
        }
    }

    #[test]
    fn with_every_edge_delayed_the_total_input_is_the_delayed_sum() {
        for n in [13, 400] {
            let coupling = random_coupling(n, 6, 1..=40, 1e-3);
            let mut plan = CouplingPlan::<f64>::new(&coupling, n, 1e-3);
            let delayed: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let u: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
            let mut out = vec![f64::NAN; n];
            plan.total_input(&delayed, &u, &mut out);
            assert_eq!(
                out, delayed,
                "{n} nodes: no instantaneous edge adds anything"
            );
        }
    }

    #[test]
    fn plan_bytes_count_the_dense_weights_and_grow_with_the_edges() {
        let dt = 1e-3;
        // Instantaneous edges to over a quarter of all pairs: stored as a dense matrix.
        let dense = CouplingPlan::<Complex64>::new(&random_coupling(100, 100, 0..=0, dt), 100, dt);
        assert!(matches!(dense.kind, PlanKind::Dense { .. }));
        assert!(dense.bytes() >= 100 * 100 * 8, "{}", dense.bytes());
        let few = CouplingPlan::<Complex64>::new(&random_coupling(1000, 5, 0..=40, dt), 1000, dt);
        let many = CouplingPlan::<Complex64>::new(&random_coupling(1000, 20, 0..=40, dt), 1000, dt);
        // Each edge holds at least a source, a weight and a delay (16 bytes).
        assert!(few.bytes() >= 1000 * 4 * 16, "{}", few.bytes());
        // 15 more edges per node (a few lost to duplicate draws), 16 bytes or more each.
        let more = many.bytes() - few.bytes();
        assert!(more >= 1000 * 14 * 16, "{more}");
        assert_eq!(
            CouplingPlan::<f64>::new(&Coupling::None, 10, dt).bytes(),
            10 * 8
        );
    }

    /// Staggered blocks (the far block's rows, MPR's state blocks) hold every node and start an
    /// odd number of cache lines apart, so one node's values in successive blocks never share
    /// an L1 set (4 kB apart put them all in one).
    #[test]
    fn staggered_blocks_start_an_odd_number_of_lines_apart() {
        for bytes in [8, 16] {
            for nodes in 1..2_100 {
                let stride = staggered_len(nodes, bytes);
                let lines = stride * bytes / 64;
                assert!(
                    stride >= nodes && (stride * bytes).is_multiple_of(64),
                    "{nodes} × {bytes} B"
                );
                assert!(
                    lines % 2 == 1 && stride - nodes < 2 * 64 / bytes,
                    "{nodes} × {bytes} B"
                );
            }
        }
    }

    /// Whatever the plan (all edges delayed by a block or more, some instantaneous, a delayed
    /// or an instantaneous mean field), the input `network_input` points at after
    /// `instant_input` is the total input, bit for bit.
    #[test]
    fn the_network_input_is_the_total_input_wherever_it_is_read() {
        let (n, dt) = (30, 1e-3);
        let plans = [
            random_coupling(n, 5, 40..=90, dt),
            random_coupling(n, 5, 0..=90, dt),
            Coupling::AllToAll {
                n,
                weight: 1.0 / n as f64,
                delay_s: 7.0 * dt,
            },
            Coupling::AllToAll {
                n,
                weight: 1.0 / n as f64,
                delay_s: 0.0,
            },
        ];
        for (k, coupling) in plans.iter().enumerate() {
            let mut plan = CouplingPlan::<f64>::new(coupling, n, dt);
            let initial: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let mut history =
                delay::DelayLine::new(n, plan.max_delay_steps, HistoryPrecision::F64, &initial);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(k as u64);
            let (mut delayed, mut computed, mut total) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            let mut rows = 0;
            for step in 0..200 {
                let u: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
                rows += usize::from(plan.delayed_input_unless_row(&history, &mut delayed));
                let reference = {
                    let mut copy = plan.clone();
                    let mut d = vec![0.0; n];
                    copy.delayed_input(&history, &mut d);
                    copy.total_input(&d, &u, &mut total);
                    total.clone()
                };
                plan.instant_input(&delayed, &u, &mut computed);
                let got = plan.network_input(&delayed, &computed);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(got), bits(&reference), "plan {k}, step {step}");
                history.push(u.iter().copied());
            }
            // Only the graph whose every edge is a block or more long reads the block row.
            assert_eq!(rows > 0, k == 0, "plan {k}");
        }
    }

    /// The plan's delayed input against the plain per-step sum over the edge list, for node
    /// values made by `value(re, im)` and edge delays in `delays` (steps), through resets of
    /// the history and skipped calls. The plan must read blocks of `block_len` steps. Every
    /// other step asks for the input in the block row where the plan can leave it there; it
    /// must do so exactly when `in_row`. The history is kept at `precision`: the sums are of
    /// the values it holds, so they match to round-off either way.
    fn check_blocked_delayed_input<T: NodeValue>(
        value: impl Fn(f64, f64) -> T,
        norm: fn(T) -> f64,
        delays: std::ops::RangeInclusive<usize>,
        block_len: usize,
        in_row: bool,
        precision: HistoryPrecision,
    ) {
        let (n, dt) = (40, 1e-3);
        let coupling = random_coupling(n, 6, delays, dt);
        let Coupling::Sparse(csr) = &coupling else {
            unreachable!()
        };
        let mut plan = CouplingPlan::<T>::new(&coupling, n, dt);
        assert!(
            matches!(plan.kind, PlanKind::Sparse { block_len: b, .. } if b == block_len),
            "blocks of {block_len} steps"
        );
        let initial: Vec<T> = (0..n).map(|i| value(i as f64, -1.0)).collect();
        let mut history = delay::DelayLine::new(n, plan.max_delay_steps, precision, &initial);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut out = vec![T::default(); n];
        for step in 0..400 {
            // A reset just after a block starts: the same push count comes back with other
            // history.
            if step == 250 {
                history.reset(&initial);
            }
            if step == 253 {
                let other: Vec<T> = initial.iter().map(|z| *z * 2.0).collect();
                history.reset(&other);
            }
            // Now and then a step without a call (a plant may skip the coupling): the block
            // must follow the history, not count calls.
            if step % 37 != 5 {
                out.fill(T::default());
                let got: &[T] = if step % 2 == 0 {
                    plan.delayed_input(&history, &mut out);
                    &out
                } else {
                    let left = plan.delayed_input_unless_row(&history, &mut out);
                    assert_eq!(left, in_row, "step {step}: left in the row");
                    if left {
                        plan.delayed_row()
                    } else {
                        &out
                    }
                };
                assert_eq!(got.len(), n);
                for (i, got) in got.iter().enumerate() {
                    let mut expected = T::default();
                    for e in csr.row_ptr[i]..csr.row_ptr[i + 1] {
                        let d = (csr.delay_s[e] / dt).round() as usize;
                        if d > 0 {
                            expected += history.get(csr.col[e] as usize, d) * csr.weight[e];
                        }
                    }
                    let scale = 1.0 + norm(expected);
                    assert!(
                        norm(*got + expected * -1.0) <= 1e-12 * scale,
                        "step {step}, node {i}: {got:?} vs {expected:?}"
                    );
                }
            }
            history.push((0..n).map(|_| value(rng.random(), rng.random())));
        }
    }

    #[test]
    fn blocked_delayed_input_equals_the_per_step_sum_through_resets_and_skipped_steps() {
        // Instantaneous, near and far edges, 16-step blocks; then only far ones, 32-step blocks.
        for precision in [HistoryPrecision::F64, HistoryPrecision::F32] {
            let (short, long) = (0..=3 * DELAY_BLOCKS[0] + 5, DELAY_BLOCKS[0] - 1..=140);
            let norm = |z: Complex64| z.norm();
            check_blocked_delayed_input(
                Complex64::new,
                norm,
                short,
                DELAY_BLOCKS[1],
                false,
                precision,
            );
            check_blocked_delayed_input(
                Complex64::new,
                norm,
                long,
                DELAY_BLOCKS[0],
                true,
                precision,
            );
        }
    }

    #[test]
    fn blocked_delayed_input_of_real_node_values_equals_the_per_step_sum() {
        for precision in [HistoryPrecision::F64, HistoryPrecision::F32] {
            let (short, long) = (0..=3 * DELAY_BLOCKS[0] + 5, DELAY_BLOCKS[0] - 1..=140);
            check_blocked_delayed_input(
                |re, _| re,
                f64::abs,
                short,
                DELAY_BLOCKS[1],
                false,
                precision,
            );
            check_blocked_delayed_input(
                |re, _| re,
                f64::abs,
                long,
                DELAY_BLOCKS[0],
                true,
                precision,
            );
        }
    }
}
