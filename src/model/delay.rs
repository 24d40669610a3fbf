//! Per-node circular history of complex node states, for delayed coupling.
//!
//! Memory is O(N · max_delay): one slot of N values per model step, never per-edge copies.
//! Delays are whole model steps (`round(τ / dt)`); at audio-rate steps (21 µs at 48 kHz) the
//! rounding is far below the delays of interest (ms).

use num_complex::Complex64;

/// A ring of the last `max_delay_steps + 1` states of every node.
///
/// Invariant: after `push`, `get(node, 0)` is the state just pushed and `get(node, d)` is the
/// state pushed `d` pushes earlier (or the initial fill if fewer have happened).
#[derive(Clone, Debug)]
pub struct DelayLine {
    nodes: usize,
    slots: usize,
    head: usize,
    data: Vec<Complex64>,
}

impl DelayLine {
    /// History for `nodes` nodes holding delays of up to `max_delay_steps` steps, filled with
    /// `initial` (the state before the run started, held constant into the past).
    pub fn new(nodes: usize, max_delay_steps: usize, initial: &[Complex64]) -> Self {
        let slots = max_delay_steps + 1;
        let mut data = Vec::with_capacity(slots * nodes);
        for _ in 0..slots {
            data.extend_from_slice(initial);
        }
        Self {
            nodes,
            slots,
            head: 0,
            data,
        }
    }

    /// The longest delay this line holds, in steps.
    pub fn max_delay_steps(&self) -> usize {
        self.slots - 1
    }

    /// Bytes of history held.
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<Complex64>()
    }

    /// Append the current state of every node (`states.len() == nodes`).
    #[inline]
    pub fn push(&mut self, states: impl Iterator<Item = Complex64>) {
        self.head = if self.head + 1 == self.slots {
            0
        } else {
            self.head + 1
        };
        let row = &mut self.data[self.head * self.nodes..(self.head + 1) * self.nodes];
        for (slot, z) in row.iter_mut().zip(states) {
            *slot = z;
        }
    }

    /// The whole history slot `delay_steps` pushes ago (all nodes).
    #[inline]
    pub fn slot(&self, delay_steps: usize) -> &[Complex64] {
        debug_assert!(delay_steps < self.slots);
        let idx = (self.head + self.slots - delay_steps) % self.slots;
        &self.data[idx * self.nodes..(idx + 1) * self.nodes]
    }

    /// The state of `node` `delay_steps` pushes ago.
    #[inline]
    pub fn get(&self, node: usize, delay_steps: usize) -> Complex64 {
        self.slot(delay_steps)[node]
    }

    /// Refill every slot with `initial` and rewind.
    pub fn reset(&mut self, initial: &[Complex64]) {
        for row in self.data.chunks_exact_mut(self.nodes) {
            row.copy_from_slice(initial);
        }
        self.head = 0;
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
    fn memory_is_per_node_not_per_edge() {
        let line = DelayLine::new(1000, 959, &vec![Complex64::default(); 1000]);
        assert_eq!(line.bytes(), 1000 * 960 * 16);
    }
}
