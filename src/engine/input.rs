//! The input link: captured samples crossing from an input callback to the engine's clock.

use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Captured samples crossing from the input callback to the output callback, with a fixed,
/// declared offset: the ring starts holding `offset` zeros, so the reader gets the input of
/// `offset` samples earlier (plus the rig's own latency). Neither side ever waits: a full ring
/// drops the capture, an empty one reads as an underrun.
pub struct InputLink {
    /// Capture side, for the input callback (`try_push` each sample of the chosen channel).
    pub producer: HeapProd<f32>,
    /// Engine side, for the output callback.
    pub reader: InputReader,
}

impl InputLink {
    /// A link holding `offset` samples of delay, with room for `capacity` samples in flight.
    pub fn new(offset: usize, capacity: usize) -> Self {
        let (mut producer, consumer) = HeapRb::<f32>::new(capacity.max(offset + 1)).split();
        for _ in 0..offset {
            let _ = producer.try_push(0.0);
        }
        Self {
            producer,
            reader: InputReader {
                consumer,
                offset,
                primed: false,
            },
        }
    }
}

/// The reading side of an [`InputLink`]. It starts reading only once the capture side has
/// started filling the ring, so the offset does not depend on which stream started first.
pub struct InputReader {
    consumer: HeapCons<f32>,
    offset: usize,
    primed: bool,
}

impl InputReader {
    /// The next captured sample: `Some(0.0)` until the capture side has started, `None` on an
    /// underrun (the caller counts it and reads 0). Real-time safe.
    #[inline]
    pub fn read(&mut self) -> Option<f32> {
        if !self.primed {
            if self.consumer.occupied_len() <= self.offset {
                return Some(0.0);
            }
            self.primed = true;
        }
        self.consumer.try_pop()
    }

    /// Whether the capture side has started.
    pub fn primed(&self) -> bool {
        self.primed
    }
}
