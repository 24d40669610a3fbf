//! Per-node circular history of node values, for delayed coupling.
//!
//! Memory is O(N · max_delay): each node keeps its own ring of its last values, never per-edge
//! copies. A node's values over consecutive steps are contiguous: each ring is followed by a
//! copy of its first [`MIRRORED`] slots, so that a run of up to that many steps never wraps
//! ([`HistoryReader::run`]), and the coupling reads a whole block of future steps' delayed values
//! per edge at once as one slice (see `CouplingPlan`). Values are kept exactly, or rounded to
//! `f32` where the profile trades that for half the memory traffic ([`HistoryPrecision`]).
//! Delays are whole
//! model steps (`round(τ / dt)`); at audio-rate steps (21 µs at 48 kHz) the rounding is far below
//! the delays of interest (ms).
//!
//! What a node sends is a [`NodeValue`]: complex for the oscillators that couple through `z`
//! (Stuart–Landau, Kuramoto's `e^{iθ}`), real for the neural masses that couple through a rate
//! or a voltage (Wilson–Cowan, Jansen–Rit, MPR, HORN, the rate model). A real history is half
//! the bytes of a complex one, and the delayed coupling, bound by reading it, twice as fast.

use std::fmt::Debug;
use std::iter::Sum;
use std::marker::PhantomData;
use std::ops::{Add, AddAssign, Mul};

use aligned_vec::{AVec, RuntimeAlign};
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

/// A value a node sends along its edges: `f64` or [`Complex64`], seen as 1 or 2 `f64` parts.
pub trait NodeValue:
    Copy
    + Default
    + PartialEq
    + Debug
    + Send
    + Sync
    + Add<Output = Self>
    + AddAssign
    + Mul<f64, Output = Self>
    + Sum
    + 'static
{
    /// `f64` parts per value (1 real, 2 complex).
    const PARTS: usize;
    /// The values as their consecutive parts (`[re, im, …]` for complex).
    fn flat(values: &[Self]) -> &[f64];
    /// The value of `PARTS` consecutive parts.
    fn from_flat(parts: &[f64]) -> Self;
    /// The real part.
    fn re(self) -> f64;
    /// The imaginary part (0 for a real value).
    fn im(self) -> f64;
    /// The value `re + i·im` (a real value keeps `re`; callers pass `im = 0` for it).
    fn from_re_im(re: f64, im: f64) -> Self;
}

impl NodeValue for f64 {
    const PARTS: usize = 1;
    #[inline]
    fn flat(values: &[Self]) -> &[f64] {
        values
    }
    #[inline]
    fn from_flat(parts: &[f64]) -> Self {
        parts[0]
    }
    #[inline]
    fn re(self) -> f64 {
        self
    }
    #[inline]
    fn im(self) -> f64 {
        0.0
    }
    #[inline]
    fn from_re_im(re: f64, _im: f64) -> Self {
        re
    }
}

impl NodeValue for Complex64 {
    const PARTS: usize = 2;
    #[inline]
    fn flat(values: &[Self]) -> &[f64] {
        super::as_f64(values)
    }
    #[inline]
    fn from_flat(parts: &[f64]) -> Self {
        Complex64::new(parts[0], parts[1])
    }
    #[inline]
    fn re(self) -> f64 {
        self.re
    }
    #[inline]
    fn im(self) -> f64 {
        self.im
    }
    #[inline]
    fn from_re_im(re: f64, im: f64) -> Self {
        Complex64::new(re, im)
    }
}

/// Slots at the start of each ring that are kept a second time just after its end: the longest
/// run [`HistoryReader::run`] returns as one slice (the coupling's longest block).
pub(crate) const MIRRORED: usize = 32;

/// How a history stores the values it holds: the `[network] history_precision` key.
///
/// `F64` keeps every value exactly. `F32` rounds each stored value to single precision (a
/// relative error of at most 2⁻²⁴, 6·10⁻⁸, in every delayed input) and halves the bytes a
/// delayed network streams each step: its coupling is bound by reading the history, which for
/// 1 000 nodes and 20 ms at 48 kHz is 16 MB of complex `f64`, more than a core's share of L3.
/// Sums are still formed in `f64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryPrecision {
    /// Exact: every value as the plant computed it.
    #[default]
    F64,
    /// Each value rounded to the nearest `f32`.
    F32,
}

/// A number a history stores a value's parts as (`f64` or `f32`).
pub(crate) trait Part: Copy + Default + Debug + Send + Sync + 'static {
    /// The part stored for `value` (rounded to nearest for `f32`).
    fn narrow(value: f64) -> Self;
    /// The stored part as `f64` (exact).
    fn widen(self) -> f64;
}

impl Part for f64 {
    #[inline(always)]
    fn narrow(value: f64) -> Self {
        value
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}

impl Part for f32 {
    #[inline(always)]
    fn narrow(value: f64) -> Self {
        value as f32
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        f64::from(self)
    }
}

/// The rings' storage at the history's precision.
#[derive(Debug)]
enum Rings {
    F64(AVec<f64, RuntimeAlign>),
    F32(AVec<f32, RuntimeAlign>),
}

/// `$body` with `$parts` bound to the rings' parts, whichever their precision.
macro_rules! with_parts {
    ($rings:expr, $parts:ident => $body:expr) => {
        match $rings {
            Rings::F64($parts) => $body,
            Rings::F32($parts) => $body,
        }
    };
}

/// The last `max_delay_steps + 1` values of every node, node by node.
///
/// Invariant: after `push`, `get(node, 0)` is the state just pushed and `get(node, d)` is the
/// state pushed `d` pushes earlier (or the initial fill if fewer have happened), rounded to the
/// history's [`HistoryPrecision`]. Node `n`'s ring of `slots` values starts at value
/// `n·stride`, and is followed by `mirror` values equal to its first `mirror` slots
/// (`stride = slots + mirror`); each value is `T::PARTS` consecutive parts.
#[derive(Debug)]
pub struct DelayLine<T: NodeValue> {
    nodes: usize,
    /// Where each value sits among the parts (and which slot is the newest).
    layout: Layout,
    /// Pushes since construction or the last reset.
    pushes: u64,
    /// Resets since construction.
    resets: u64,
    /// The rings' parts; a history of a huge page or more starts on a huge-page boundary.
    data: Rings,
    value: PhantomData<T>,
}

/// Cache lines at the start of a run that [`HistoryReader::prefetch_run`] asks for. With 2
/// instead of the whole run (8 lines of a 32-step complex run), 6 edges ahead instead of 3,
/// 1 000 delayed SL nodes at 48 kHz took 3–4 % less time on a Zen 3 core, z- and x-coupled
/// alike (9 of 10 and 7 of 7 alternating pairs).
const PREFETCH_LINES: usize = 2;

/// Bytes of one transparent huge page (x86-64 and aarch64 Linux).
const HUGE_PAGE: usize = 2 << 20;

/// `len` copies of `value`, on huge pages where the history is big enough to use them. The
/// coupling reads ~10 runs per node per block from anywhere in a history of many MB; with 4 kB
/// pages nearly every run misses the TLB. The kernel picks the page size when the fill first
/// touches the pages, so the advice comes between allocating and filling; where it is not
/// available the history just stays on small pages.
fn rings<P: Part>(len: usize, value: P) -> AVec<P, RuntimeAlign> {
    let bytes = std::mem::size_of::<P>() * len;
    let huge = bytes >= HUGE_PAGE;
    let mut data = AVec::<P, RuntimeAlign>::with_capacity(if huge { HUGE_PAGE } else { 64 }, len);
    #[cfg(target_os = "linux")]
    if huge {
        // SAFETY: the range is `data`'s allocation, which starts on a page boundary;
        // MADV_HUGEPAGE only changes how the kernel backs those pages, never their contents.
        unsafe {
            libc::madvise(data.as_mut_ptr().cast(), bytes, libc::MADV_HUGEPAGE);
        }
    }
    data.resize(len, value);
    data
}

impl Clone for Rings {
    fn clone(&self) -> Self {
        fn copy<P: Part>(from: &AVec<P, RuntimeAlign>) -> AVec<P, RuntimeAlign> {
            let mut data = rings(from.len(), P::default());
            data.copy_from_slice(from);
            data
        }
        match self {
            Rings::F64(parts) => Rings::F64(copy(parts)),
            Rings::F32(parts) => Rings::F32(copy(parts)),
        }
    }
}

impl<T: NodeValue> Clone for DelayLine<T> {
    fn clone(&self) -> Self {
        Self {
            data: self.data.clone(),
            ..*self
        }
    }
}

/// Writes `z`'s parts at value `slot` of `ring`.
#[inline(always)]
fn put<T: NodeValue, P: Part>(ring: &mut [P], slot: usize, z: T) {
    let at = slot * T::PARTS;
    ring[at] = P::narrow(z.re());
    if T::PARTS == 2 {
        ring[at + 1] = P::narrow(z.im());
    }
}

/// `states`' parts at value `head` of each ring of `stride` parts (and at `copy`, the head's
/// mirrored slot, when there is one).
#[inline(always)]
fn push_parts<T: NodeValue, P: Part>(
    data: &mut [P],
    stride: usize,
    head: usize,
    copy: Option<usize>,
    states: impl Iterator<Item = T>,
) {
    let rings = data.chunks_exact_mut(stride);
    match copy {
        Some(copy) => {
            for (ring, z) in rings.zip(states) {
                put(ring, head, z);
                put(ring, copy, z);
            }
        }
        None => {
            for (ring, z) in rings.zip(states) {
                put(ring, head, z);
            }
        }
    }
}

impl<T: NodeValue> DelayLine<T> {
    /// History for `nodes` nodes holding delays of up to `max_delay_steps` steps, stored at
    /// `precision`, filled with `initial` (the state before the run started, held constant into
    /// the past).
    pub fn new(
        nodes: usize,
        max_delay_steps: usize,
        precision: HistoryPrecision,
        initial: &[T],
    ) -> Self {
        let slots = max_delay_steps + 1;
        let layout = Layout {
            slots,
            mirror: MIRRORED.min(slots),
            head: 0,
            value_parts: T::PARTS,
        };
        let parts = layout.stride() * nodes;
        let data = match precision {
            HistoryPrecision::F64 => Rings::F64(rings(parts, 0.0)),
            HistoryPrecision::F32 => Rings::F32(rings(parts, 0.0)),
        };
        let mut line = Self {
            nodes,
            layout,
            pushes: 0,
            resets: 0,
            data,
            value: PhantomData,
        };
        line.reset(initial);
        line
    }

    /// Nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The longest delay this line holds, in steps.
    pub fn max_delay_steps(&self) -> usize {
        self.layout.slots - 1
    }

    /// How the values are stored.
    pub fn precision(&self) -> HistoryPrecision {
        match self.data {
            Rings::F64(_) => HistoryPrecision::F64,
            Rings::F32(_) => HistoryPrecision::F32,
        }
    }

    /// Bytes of history held, the mirrored slots included.
    pub fn bytes(&self) -> usize {
        with_parts!(&self.data, parts => std::mem::size_of_val(&parts[..]))
    }

    /// Pushes since construction or the last reset.
    pub fn pushes(&self) -> u64 {
        self.pushes
    }

    /// Resets since construction: with [`DelayLine::pushes`], identifies the history's state.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Append the current state of every node (`states.len() == nodes`).
    #[inline]
    pub fn push(&mut self, states: impl Iterator<Item = T>) {
        let l = &mut self.layout;
        l.head = if l.head + 1 == l.slots { 0 } else { l.head + 1 };
        self.pushes += 1;
        let l = self.layout;
        let copy = (l.head < l.mirror).then_some(l.slots + l.head);
        with_parts!(&mut self.data, parts => push_parts(parts, l.stride(), l.head, copy, states));
    }

    /// The state of `node` `delay_steps` pushes ago (`delay_steps ≤ max_delay_steps`).
    #[inline]
    pub fn get(&self, node: usize, delay_steps: usize) -> T {
        debug_assert!(delay_steps < self.layout.slots);
        let at = self.layout.at(node, delay_steps, T::PARTS);
        fn value<T: NodeValue, P: Part>(parts: &[P]) -> T {
            let im = if T::PARTS == 2 { parts[1].widen() } else { 0.0 };
            T::from_re_im(parts[0].widen(), im)
        }
        with_parts!(&self.data, parts => value(&parts[at..at + T::PARTS]))
    }

    /// The rings as runs of parts at the history's precision, for the coupling's block sums.
    #[inline]
    pub(crate) fn reader(&self) -> Reader<'_> {
        let layout = self.layout;
        match &self.data {
            Rings::F64(parts) => Reader::F64(HistoryReader { parts, layout }),
            Rings::F32(parts) => Reader::F32(HistoryReader { parts, layout }),
        }
    }

    /// Refill every slot with `initial` and rewind.
    pub fn reset(&mut self, initial: &[T]) {
        fn fill<T: NodeValue, P: Part>(data: &mut [P], stride: usize, initial: &[T]) {
            for (ring, &z) in data.chunks_exact_mut(stride).zip(initial) {
                for slot in 0..stride / T::PARTS {
                    put(ring, slot, z);
                }
            }
        }
        let stride = self.layout.stride();
        with_parts!(&mut self.data, parts => fill(parts, stride, initial));
        self.layout.head = 0;
        self.pushes = 0;
        self.resets += 1;
    }
}

/// Where a history's values sit among its parts: node `n`'s ring of `slots` values, then its
/// `mirror` copied slots, from part `n · stride()`, each value `value_parts` parts.
#[derive(Clone, Copy, Debug)]
struct Layout {
    slots: usize,
    /// `min(MIRRORED, slots)`.
    mirror: usize,
    /// Ring position of the newest state, in `0..slots`.
    head: usize,
    /// Parts per value (`NodeValue::PARTS`).
    value_parts: usize,
}

impl Layout {
    /// Parts from one node's ring to the next: its slots and their mirror.
    #[inline(always)]
    fn stride(&self) -> usize {
        (self.slots + self.mirror) * self.value_parts
    }

    /// The first part of node `node`'s state pushed `delay_steps` pushes ago, for values of
    /// `value_parts` parts (the caller's constant where it has one, so the per-step reads
    /// multiply by a known 1 or 2).
    #[inline(always)]
    fn at(&self, node: usize, delay_steps: usize, value_parts: usize) -> usize {
        debug_assert_eq!(value_parts, self.value_parts);
        let slot = if self.head >= delay_steps {
            self.head - delay_steps
        } else {
            self.head + self.slots - delay_steps
        };
        (node * (self.slots + self.mirror) + slot) * value_parts
    }
}

/// A history's rings as parts of one precision, read a run at a time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HistoryReader<'a, P: Part> {
    parts: &'a [P],
    layout: Layout,
}

/// [`HistoryReader`] at the history's precision.
pub(crate) enum Reader<'a> {
    F64(HistoryReader<'a, f64>),
    F32(HistoryReader<'a, f32>),
}

impl<'a, P: Part> HistoryReader<'a, P> {
    /// Bytes of history held.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(self.parts)
    }

    /// The parts of `len` consecutive states of `node`, oldest first, starting `delay_steps`
    /// pushes ago: state `k` of the run is `DelayLine::get(node, delay_steps − k)`. Needs
    /// `len ≤ delay_steps + 1` (only the past is known) and `len ≤ MIRRORED`: the mirrored
    /// slots continue the ring, so the run is one slice wherever it starts.
    #[inline]
    pub fn run(&self, node: usize, delay_steps: usize, len: usize) -> &'a [P] {
        let l = self.layout;
        debug_assert!(delay_steps < l.slots && len <= delay_steps + 1);
        assert!(len <= MIRRORED, "runs are at most MIRRORED steps");
        // `len ≤ min(MIRRORED, slots) = mirror`, and the slot is below `slots`.
        let at = l.at(node, delay_steps, l.value_parts);
        &self.parts[at..at + len * l.value_parts]
    }

    /// Ask the CPU to begin loading `run(node, delay_steps, len)` into cache: its first
    /// [`PREFETCH_LINES`] lines (a hint: no effect on results, nothing on targets without a
    /// prefetch instruction). The coupling issues it a few edges ahead, so the history's
    /// scattered runs stream from L3 instead of stalling. The hardware prefetcher follows a
    /// run once it has begun, and asking for every line of it held the miss buffers the other
    /// runs were waiting for (a third of the far-edge sums' time stalled on the prefetch).
    #[inline]
    pub fn prefetch_run(&self, node: usize, delay_steps: usize, len: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let l = self.layout;
            let len = len.min(l.mirror);
            let run = self.run(node, delay_steps, len).as_ptr().cast::<i8>();
            let bytes = len * l.value_parts * std::mem::size_of::<P>();
            // Every cache line the run touches, from the one holding its first byte: a run
            // that does not start on a line boundary spans one line more than its length.
            let lead = run as usize % 64;
            let line = run.wrapping_sub(lead);
            for offset in (0..(lead + bytes).min(64 * PREFETCH_LINES)).step_by(64) {
                // SAFETY: prefetch is a hint that never faults, whatever the address.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        line.wrapping_add(offset),
                    )
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (node, delay_steps, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<T: NodeValue> DelayLine<T> {
        /// Where the rings begin.
        fn first_part(&self) -> *const u8 {
            with_parts!(&self.data, parts => parts.as_ptr().cast())
        }
    }

    /// `len` states of `node` from `delay_steps` pushes ago, as the coupling reads them.
    fn run<T: NodeValue>(
        line: &DelayLine<T>,
        node: usize,
        delay_steps: usize,
        len: usize,
    ) -> Vec<T> {
        fn values<T: NodeValue, P: Part>(parts: &[P]) -> Vec<T> {
            let wide: Vec<f64> = parts.iter().map(|p| p.widen()).collect();
            wide.chunks_exact(T::PARTS).map(T::from_flat).collect()
        }
        match line.reader() {
            Reader::F64(reader) => values(reader.run(node, delay_steps, len)),
            Reader::F32(reader) => values(reader.run(node, delay_steps, len)),
        }
    }

    #[test]
    fn reads_back_what_was_pushed_exactly_d_steps_ago() {
        let initial = [Complex64::new(-1.0, 0.0), Complex64::new(-2.0, 0.0)];
        let mut line = DelayLine::new(2, 5, HistoryPrecision::F64, &initial);
        for step in 0..40 {
            let s = step as f64;
            line.push([Complex64::new(s, 0.0), Complex64::new(0.0, s)].into_iter());
            for d in 0..=5 {
                let expected = if step >= d {
                    (step - d) as f64
                } else {
                    f64::NAN
                };
                let got = line.get(0, d).re;
                if expected.is_nan() {
                    assert_eq!(
                        got, -1.0,
                        "before the run the history holds the initial state"
                    );
                } else {
                    assert_eq!(got, expected, "node 0, step {step}, delay {d}");
                    assert_eq!(line.get(1, d).im, expected);
                }
            }
        }
    }

    #[test]
    fn a_real_history_reads_back_like_a_complex_one() {
        let mut real = DelayLine::new(4, 9, HistoryPrecision::F64, &[0.5f64; 4]);
        let mut complex =
            DelayLine::new(4, 9, HistoryPrecision::F64, &[Complex64::new(0.5, 0.0); 4]);
        for step in 0..30 {
            let values = (0..4).map(|n| (step * 4 + n) as f64);
            real.push(values.clone());
            complex.push(values.map(|v| Complex64::new(v, 0.0)));
            for n in 0..4 {
                for d in 0..=9 {
                    assert_eq!(real.get(n, d), complex.get(n, d).re, "step {step}");
                }
                let got = run(&real, n, 9, 10);
                let expected: Vec<f64> = run(&complex, n, 9, 10).iter().map(|z| z.re).collect();
                assert_eq!(got, expected);
            }
        }
    }

    #[test]
    fn an_f32_history_holds_each_value_rounded_to_f32_in_half_the_bytes() {
        let rounded = |v: f64| f64::from(v as f32);
        let initial = [Complex64::new(1.0 / 3.0, -0.1); 3];
        let mut single = DelayLine::new(3, 40, HistoryPrecision::F32, &initial);
        let exact = DelayLine::new(3, 40, HistoryPrecision::F64, &initial);
        assert_eq!(single.precision(), HistoryPrecision::F32);
        assert_eq!(2 * single.bytes(), exact.bytes());
        assert_eq!(
            single.get(2, 40),
            Complex64::new(rounded(1.0 / 3.0), rounded(-0.1))
        );
        for step in 0..100 {
            let value = |n: usize| {
                Complex64::new(std::f64::consts::PI * step as f64, 1e-3 / (n + 1) as f64)
            };
            single.push((0..3).map(value));
            let z = value(1);
            assert_eq!(
                single.get(1, 0),
                Complex64::new(rounded(z.re), rounded(z.im))
            );
            if step >= 31 {
                let got = run(&single, 1, 31, 32);
                let expected: Vec<Complex64> = (0..32).map(|k| single.get(1, 31 - k)).collect();
                assert_eq!(got, expected, "step {step}");
            }
        }
        let copy = single.clone();
        assert_eq!(
            (copy.precision(), copy.get(0, 7)),
            (HistoryPrecision::F32, single.get(0, 7))
        );
        let mut real = DelayLine::new(2, 5, HistoryPrecision::F32, &[0.1f64; 2]);
        real.push([0.7f64, 2.0].into_iter());
        assert_eq!(
            (real.get(0, 0), real.get(1, 0), real.get(0, 1)),
            (rounded(0.7), 2.0, rounded(0.1))
        );
    }

    #[test]
    fn runs_are_the_states_in_order_wherever_the_ring_wraps() {
        // Rings shorter and longer than the mirrored slots, every start and length.
        for max_delay in [7, MIRRORED + 9] {
            let mut line = DelayLine::new(
                3,
                max_delay,
                HistoryPrecision::F64,
                &[Complex64::default(); 3],
            );
            for step in 0..3 * max_delay + 5 {
                line.push((0..3).map(|n| Complex64::new(step as f64, n as f64)));
                for d in 0..=max_delay {
                    for len in 1..=(d + 1).min(MIRRORED) {
                        let run = run(&line, 2, d, len);
                        assert_eq!(run.len(), len);
                        for (k, z) in run.iter().enumerate() {
                            assert_eq!(*z, line.get(2, d - k), "step {step} d {d} k {k}");
                        }
                    }
                }
            }
            assert_eq!(line.pushes(), 3 * max_delay as u64 + 5);
            // A reset refills the mirrored slots too.
            line.reset(&[Complex64::new(-1.0, 0.0); 3]);
            let run = run(&line, 1, max_delay, (max_delay + 1).min(MIRRORED));
            assert!(run.iter().all(|z| z.re == -1.0));
        }
    }

    #[test]
    fn memory_is_per_node_not_per_edge() {
        // 960 slots a node, and the first MIRRORED of them once more.
        let slots = 960 + MIRRORED;
        let small = DelayLine::new(
            100,
            959,
            HistoryPrecision::F64,
            &vec![Complex64::default(); 100],
        );
        assert_eq!(small.bytes(), 100 * slots * 16);
        let real = DelayLine::new(100, 959, HistoryPrecision::F64, &[0.0f64; 100]);
        assert_eq!(
            real.bytes(),
            100 * slots * 8,
            "a real history is half a complex one"
        );
        let short = DelayLine::new(100, 4, HistoryPrecision::F64, &[0.0f64; 100]);
        assert_eq!(
            short.bytes(),
            100 * 2 * 5 * 8,
            "a short ring is mirrored whole"
        );
        // A history of many MB starts on a huge-page boundary, without padding.
        let line = DelayLine::new(
            1000,
            959,
            HistoryPrecision::F64,
            &vec![Complex64::default(); 1000],
        );
        assert_eq!(line.bytes(), 1000 * slots * 16);
        assert_eq!(line.first_part() as usize % HUGE_PAGE, 0);
        let copy = line.clone();
        assert_eq!(copy.first_part() as usize % HUGE_PAGE, 0);
        assert_eq!((copy.get(999, 959), copy.pushes()), (line.get(999, 959), 0));
    }

    #[test]
    fn a_history_on_huge_pages_reads_back_like_a_small_one() {
        let nodes = 700;
        let initial: Vec<Complex64> = (0..nodes).map(|n| Complex64::new(n as f64, 0.0)).collect();
        let mut line = DelayLine::new(nodes, 199, HistoryPrecision::F64, &initial);
        assert!(line.bytes() >= HUGE_PAGE);
        for step in 0..450 {
            line.push((0..nodes).map(|n| Complex64::new(n as f64, step as f64)));
        }
        for n in [0, 1, 350, nodes - 1] {
            assert_eq!(line.get(n, 0), Complex64::new(n as f64, 449.0));
            assert_eq!(line.get(n, 199), Complex64::new(n as f64, 250.0));
            // 450 pushes into 200 slots leave the newest in slot 50: a run from 60 pushes ago
            // starts in slot 190 and crosses the ring's end.
            let got: Vec<f64> = run(&line, n, 60, 32).iter().map(|z| z.im).collect();
            let expected: Vec<f64> = (389..421).map(|s| s as f64).collect();
            assert_eq!(got, expected);
        }
        line.reset(&initial);
        assert_eq!(line.get(nodes - 1, 150), initial[nodes - 1]);
    }
}
