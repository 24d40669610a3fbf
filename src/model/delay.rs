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
/// of `slots` values is `data[n·slots .. (n + 1)·slots]`.
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
    data: Vec<Complex64>,
}

impl DelayLine {
    /// History for `nodes` nodes holding delays of up to `max_delay_steps` steps, filled with
    /// `initial` (the state before the run started, held constant into the past).
    pub fn new(nodes: usize, max_delay_steps: usize, initial: &[Complex64]) -> Self {
        let slots = max_delay_steps + 1;
        let mut line = Self {
            nodes,
            slots,
            head: 0,
            pushes: 0,
            resets: 0,
            data: vec![Complex64::default(); slots * nodes],
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
        self.slots - 1
    }

    /// Bytes of history held.
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
        for (ring, z) in self.data.chunks_exact_mut(self.slots).zip(states) {
            ring[head] = z;
        }
    }

    /// The state of `node` `delay_steps` pushes ago (`delay_steps ≤ max_delay_steps`).
    #[inline]
    pub fn get(&self, node: usize, delay_steps: usize) -> Complex64 {
        debug_assert!(delay_steps < self.slots);
        let at = if self.head >= delay_steps {
            self.head - delay_steps
        } else {
            self.head + self.slots - delay_steps
        };
        self.data[node * self.slots + at]
    }

    /// `len` consecutive states of `node`, oldest first, starting `delay_steps` pushes ago:
    /// `run[k] == get(node, delay_steps − k)`. Needs `len ≤ delay_steps + 1` (only the past is
    /// known).
    /// The run comes in two slices where the ring wraps (the second is then its continuation).
    #[inline]
    pub fn run(&self, node: usize, delay_steps: usize, len: usize) -> (&[Complex64], &[Complex64]) {
        debug_assert!(delay_steps < self.slots && len <= delay_steps + 1);
        let ring = &self.data[node * self.slots..(node + 1) * self.slots];
        let start = if self.head >= delay_steps {
            self.head - delay_steps
        } else {
            self.head + self.slots - delay_steps
        };
        if start + len <= self.slots {
            (&ring[start..start + len], &[])
        } else {
            let (wrapped, first) = ring.split_at(start);
            (first, &wrapped[..len - first.len()])
        }
    }

    /// Refill every slot with `initial` and rewind.
    pub fn reset(&mut self, initial: &[Complex64]) {
        for (ring, z) in self.data.chunks_exact_mut(self.slots).zip(initial) {
            ring.fill(*z);
        }
        self.head = 0;
        self.pushes = 0;
        self.resets += 1;
    }
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
        let line = DelayLine::new(1000, 959, &vec![Complex64::default(); 1000]);
        assert_eq!(line.bytes(), 1000 * 960 * 16);
    }
}
