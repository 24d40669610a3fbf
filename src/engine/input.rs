//! External sources for the sensor: the input link (captured samples crossing from an input
//! callback to the engine's clock) and recordings played from memory.

use crate::wav::Wav;
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::path::Path;

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
/// started filling the ring, so the offset does not depend on which stream started first (the
/// drivers hand the capture side its end of the link only once both streams run, so no
/// backlog builds up before the first read).
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

/// A recording played as the sensor's source, one sample per engine sample, from its start.
///
/// Loaded whole at build time (the control half reads the file); reading a sample is an index
/// into memory, so it is real-time safe.
pub struct Recording {
    /// The chosen channel, full scale ±1 for integer files.
    samples: Vec<f32>,
    position: usize,
    looping: bool,
}

impl Recording {
    /// Load `channel` of the WAV file at `path`, which must be at `sample_rate_hz`.
    /// Errors name the file and say what to change.
    pub fn load(
        path: &Path,
        channel: usize,
        sample_rate_hz: f64,
        looping: bool,
    ) -> Result<Self, String> {
        let shown = path.display();
        let wav = Wav::read(path).map_err(|e| format!("sensor.file: {e}"))?;
        let channels = wav.channels;
        if channel >= channels {
            return Err(format!(
                "sensor.channel: {shown} has {channels} channel(s) (0..{}), so channel {channel} \
                 does not exist",
                channels - 1
            ));
        }
        if f64::from(wav.sample_rate) != sample_rate_hz {
            return Err(format!(
                "sensor.file: {shown} is sampled at {} Hz but the run at {sample_rate_hz} Hz; set \
                 run.sample_rate_hz = {} (entrain does not resample)",
                wav.sample_rate, wav.sample_rate
            ));
        }
        let samples: Vec<f32> = wav.channel(channel).iter().map(|&x| x as f32).collect();
        if samples.is_empty() {
            return Err(format!("sensor.file: {shown} holds no samples"));
        }
        if let Some(at) = samples.iter().position(|s| !s.is_finite()) {
            return Err(format!(
                "sensor.file: {shown} has a non-finite sample (NaN or infinity) at frame {at} of \
                 channel {channel}; clean the recording first"
            ));
        }
        Ok(Self {
            samples,
            position: 0,
            looping,
        })
    }

    /// Samples in the recording.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the recording is empty (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The next sample; past the end, the start again (looping) or silence. Real-time safe.
    #[inline]
    pub fn read(&mut self) -> f32 {
        if self.position == self.samples.len() {
            if !self.looping {
                return 0.0;
            }
            self.position = 0;
        }
        let x = self.samples[self.position];
        self.position += 1;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Push `n` samples numbered from `first` (1-based, so 0 is the link's own fill).
    fn capture(link: &mut HeapProd<f32>, first: usize, n: usize) {
        for k in first..first + n {
            link.try_push(k as f32).unwrap();
        }
    }

    #[test]
    fn before_the_capture_side_starts_the_reader_gets_silence_not_underruns() {
        let InputLink {
            mut producer,
            mut reader,
        } = InputLink::new(128, 4096);
        for _ in 0..1000 {
            assert_eq!(reader.read(), Some(0.0));
        }
        assert!(!reader.primed());
        // One block captured: the reader reads the 128 samples of fill, then the block.
        capture(&mut producer, 1, 64);
        let read: Vec<f32> = (0..192).map(|_| reader.read().unwrap()).collect();
        assert!(reader.primed());
        assert!(read[..128].iter().all(|&x| x == 0.0));
        assert_eq!(read[128], 1.0);
        assert_eq!(read[191], 64.0);
        // Nothing more captured: an underrun.
        assert_eq!(reader.read(), None);
    }
}
