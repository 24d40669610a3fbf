//! Per-node circular history of complex node states, for delayed coupling.
//!
//! Memory is O(N · max_delay): each node keeps its own ring of its last states, never per-edge
//! copies. A node's states over consecutive steps are contiguous (at most two slices, where the
//! ring wraps: [`DelayLine::run`]), so the coupling reads a whole block of future steps' delayed
//! values per edge at once (see `CouplingPlan`). Delays are whole
//! model steps (`round(τ / dt)`); at audio-rate steps (21 µs at 48 kHz) the rounding is far below
//! the delays of interest (ms).

use num_complex::Complex64;

/// The last `max_delay_steps + 1` states of every node, node by node.
///
/// Invariant: after `push`, `get(node, 0)` is the state just pushed and `get(node, d)` is the
/// state pushed `d` pushes earlier (or the initial fill if fewer have happened). Node `n`'s ring
/// of `slots` values is `data[start + n·slots .. start + (n + 1)·slots]`.
#[derive(Clone, Debug)]
pub struct DelayLine {
    nodes: usize,
    slots: usize,
    /// Ring position of the newest state, in `0..slots`.
    head: usize,
    /// Pushes since construction or the last reset.
    pushes: u64,
    /// Resets since construction.
    resets: u64,
    /// The rings are `data[start ..]`; `data[..start]` is padding (less than one huge page) that
    /// lets a large history begin on a huge-page boundary.
    start: usize,
    data: Vec<Complex64>,
}

/// Bytes of one transparent huge page (x86-64 and aarch64 Linux).
const HUGE_PAGE: usize = 2 << 20;

impl DelayLine {
    /// History for `nodes` nodes holding delays of up to `max_delay_steps` steps, filled with
    /// `initial` (the state before the run started, held constant into the past).
    pub fn new(nodes: usize, max_delay_steps: usize, initial: &[Complex64]) -> Self {
        let slots = max_delay_steps + 1;
        let len = slots * nodes;
        let huge = len * std::mem::size_of::<Complex64>() >= HUGE_PAGE;
        let pad = if huge {
            HUGE_PAGE / std::mem::size_of::<Complex64>()
        } else {
            0
        };
        let mut data = Vec::with_capacity(len + pad);
        let start = if huge {
            advise_huge_pages(&mut data, len)
        } else {
            0
        };
        // Only the rings and the padding before them are written (and so resident).
        data.resize(start + len, Complex64::default());
        let mut line = Self {
            nodes,
            slots,
            head: 0,
            pushes: 0,
            resets: 0,
            start,
            data,
        };
        line.reset(initial);
        line
    }

    /// Node `node`'s ring.
    #[inline]
    fn ring(&self, node: usize) -> &[Complex64] {
        let at = self.start + node * self.slots;
        &self.data[at..at + self.slots]
    }

    /// Every node's ring, in node order.
    fn rings_mut(&mut self) -> std::slice::ChunksExactMut<'_, Complex64> {
        self.data[self.start..].chunks_exact_mut(self.slots)
    }

    /// Ring position of the state pushed `delay_steps` pushes ago.
    #[inline]
    fn slot(&self, delay_steps: usize) -> usize {
        if self.head >= delay_steps {
            self.head - delay_steps
        } else {
            self.head + self.slots - delay_steps
        }
    }

    /// Nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The longest delay this line holds, in steps.
    pub fn max_delay_steps(&self) -> usize {
        self.slots - 1
    }

    /// Bytes of history held (the rings and their alignment padding).
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<Complex64>()
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
    pub fn push(&mut self, states: impl Iterator<Item = Complex64>) {
        self.head = if self.head + 1 == self.slots {
            0
        } else {
            self.head + 1
        };
        self.pushes += 1;
        let head = self.head;
        for (ring, z) in self.rings_mut().zip(states) {
            ring[head] = z;
        }
    }

    /// The state of `node` `delay_steps` pushes ago (`delay_steps ≤ max_delay_steps`).
    #[inline]
    pub fn get(&self, node: usize, delay_steps: usize) -> Complex64 {
        debug_assert!(delay_steps < self.slots);
        self.ring(node)[self.slot(delay_steps)]
    }

    /// `len` consecutive states of `node`, oldest first, starting `delay_steps` pushes ago:
    /// `run[k] == get(node, delay_steps − k)`. Needs `len ≤ delay_steps + 1` (only the past is
    /// known).
    /// The run comes in two slices where the ring wraps (the second is then its continuation).
    #[inline]
    pub fn run(&self, node: usize, delay_steps: usize, len: usize) -> (&[Complex64], &[Complex64]) {
        debug_assert!(delay_steps < self.slots && len <= delay_steps + 1);
        let ring = self.ring(node);
        let start = self.slot(delay_steps);
        if start + len <= self.slots {
            (&ring[start..start + len], &[])
        } else {
            let (wrapped, first) = ring.split_at(start);
            (first, &wrapped[..len - first.len()])
        }
    }

    /// Ask the CPU to start loading `run(node, delay_steps, len)` into cache (a hint: no effect
    /// on results, nothing on targets without a prefetch instruction). The coupling issues it a
    /// few edges ahead, so the history's scattered runs stream from L3 instead of stalling.
    #[inline]
    pub fn prefetch_run(&self, node: usize, delay_steps: usize, len: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let start = self.slot(delay_steps);
            let first = len.min(self.slots - start);
            let ring = self.ring(node);
            let run = ring[start..start + first].as_ptr().cast::<i8>();
            let bytes = first * std::mem::size_of::<Complex64>();
            for offset in (0..bytes).step_by(64) {
                // SAFETY: prefetch is a hint that never faults; the address is inside `ring`.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        run.add(offset),
                    )
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (node, delay_steps, len);
    }

    /// Refill every slot with `initial` and rewind.
    pub fn reset(&mut self, initial: &[Complex64]) {
        for (ring, z) in self.rings_mut().zip(initial) {
            ring.fill(*z);
        }
        self.head = 0;
        self.pushes = 0;
        self.resets += 1;
    }
}

/// Where in `data` a history of `len` values should start so that it lies on huge pages, after
/// asking Linux to back that range with them. The coupling reads ~10 runs per node per block
/// from anywhere in a history of many MB; with 4 kB pages nearly every run misses the TLB.
/// `data` is an empty vector with room for `len` values plus a huge page of padding, not yet
/// written: the kernel picks the page size when the first fill faults the pages in. Where the
/// advice is not available the history just stays on small pages.
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn advise_huge_pages(data: &mut Vec<Complex64>, len: usize) -> usize {
    let size = std::mem::size_of::<Complex64>();
    let address = data.as_ptr() as usize;
    let start = (address.next_multiple_of(HUGE_PAGE) - address) / size;
    #[cfg(target_os = "linux")]
    {
        let bytes = (len * size).next_multiple_of(HUGE_PAGE);
        let end = (start * size + bytes).min(data.capacity() * size);
        // SAFETY: the range lies inside `data`'s allocation; MADV_HUGEPAGE only changes how
        // the kernel backs those pages, never their contents or validity.
        unsafe {
            libc::madvise(
                data.as_ptr().add(start).cast_mut().cast(),
                end - start * size,
                libc::MADV_HUGEPAGE,
            );
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_pushed_exactly_d_steps_ago() {
        let initial = [Complex64::new(-1.0, 0.0), Complex64::new(-2.0, 0.0)];
        let mut line = DelayLine::new(2, 5, &initial);
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
    fn runs_are_the_states_in_order_without_wrapping() {
        let mut line = DelayLine::new(3, 7, &[Complex64::default(); 3]);
        for step in 0..50 {
            line.push((0..3).map(|n| Complex64::new(step as f64, n as f64)));
            for d in 0..=7 {
                for len in 1..=d + 1 {
                    let (a, b) = line.run(2, d, len);
                    assert_eq!(a.len() + b.len(), len);
                    for (k, z) in a.iter().chain(b).enumerate() {
                        assert_eq!(*z, line.get(2, d - k), "step {step} d {d} k {k}");
                    }
                }
            }
        }
        assert_eq!(line.pushes(), 50);
    }

    #[test]
    fn memory_is_per_node_not_per_edge() {
        let small = DelayLine::new(100, 959, &vec![Complex64::default(); 100]);
        assert_eq!(small.bytes(), 100 * 960 * 16);
        // A history of many MB starts on a huge-page boundary: at most one page of padding.
        let line = DelayLine::new(1000, 959, &vec![Complex64::default(); 1000]);
        let rings = 1000 * 960 * 16;
        assert!(line.bytes() >= rings && line.bytes() < rings + HUGE_PAGE);
    }

    #[test]
    fn a_history_on_huge_pages_reads_back_like_a_small_one() {
        let nodes = 700;
        let initial: Vec<Complex64> = (0..nodes).map(|n| Complex64::new(n as f64, 0.0)).collect();
        let mut line = DelayLine::new(nodes, 199, &initial);
        assert!(line.bytes() >= HUGE_PAGE);
        for step in 0..450 {
            line.push((0..nodes).map(|n| Complex64::new(n as f64, step as f64)));
        }
        for n in [0, 1, 350, nodes - 1] {
            assert_eq!(line.get(n, 0), Complex64::new(n as f64, 449.0));
            assert_eq!(line.get(n, 199), Complex64::new(n as f64, 250.0));
            let (a, b) = line.run(n, 120, 64);
            let got: Vec<f64> = a.iter().chain(b).map(|z| z.im).collect();
            let expected: Vec<f64> = (329..393).map(|s| s as f64).collect();
            assert_eq!(got, expected);
        }
        line.reset(&initial);
        assert_eq!(line.get(nodes - 1, 150), initial[nodes - 1]);
    }
}
