//! Reading a WAV recording (control half only: sensor files, training baselines, evaluation
//! records, run reports). Integer files are scaled to ±1 full scale, float files read as they
//! are. [`Wav`] loads a whole file; [`WavFrames`] reads it frame by frame, for recordings too
//! long to hold. Calls nothing else in the crate.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// A whole WAV file in memory.
pub struct Wav {
    /// Channels per frame.
    pub channels: usize,
    /// Hz.
    pub sample_rate: u32,
    /// Interleaved samples, full scale ±1.
    interleaved: Vec<f64>,
}

impl Wav {
    /// Read `path`. Errors name the file and say what it should be.
    pub fn read(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let mut reader = hound::WavReader::open(path).map_err(|e| {
            format!("cannot read {shown} as a WAV file ({e}); give a WAV recording")
        })?;
        let spec = reader.spec();
        let bad = |e: hound::Error| format!("{shown} is damaged: {e}");
        let interleaved: Vec<f64> = match spec.sample_format {
            hound::SampleFormat::Float => reader
                .samples::<f32>()
                .map(|s| s.map(f64::from))
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            hound::SampleFormat::Int => {
                let full_scale = 2f64.powi(i32::from(spec.bits_per_sample) - 1);
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| f64::from(v) / full_scale))
                    .collect::<Result<_, _>>()
                    .map_err(bad)?
            }
        };
        Ok(Self {
            channels: usize::from(spec.channels).max(1),
            sample_rate: spec.sample_rate,
            interleaved,
        })
    }

    /// The samples of `channel` (which must be < `channels`).
    pub fn channel(&self, channel: usize) -> Vec<f64> {
        self.interleaved
            .iter()
            .skip(channel)
            .step_by(self.channels)
            .copied()
            .collect()
    }
}

/// A WAV file read one frame at a time (memory does not grow with its length).
pub struct WavFrames {
    /// Channels per frame.
    pub channels: usize,
    /// Hz.
    pub sample_rate: u32,
    /// Frames the header announces (a file cut short has fewer; [`WavFrames::next_frame`]
    /// then fails naming the file).
    pub frames: u64,
    samples: Samples,
    shown: String,
    read: u64,
}

enum Samples {
    Float(hound::WavIntoSamples<BufReader<File>, f32>),
    Int(hound::WavIntoSamples<BufReader<File>, i32>, f64),
}

impl WavFrames {
    /// Open `path`. Errors name the file and say what it should be.
    pub fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display().to_string();
        let reader = hound::WavReader::open(path).map_err(|e| {
            format!("cannot read {shown} as a WAV file ({e}); give a WAV recording")
        })?;
        let spec = reader.spec();
        let frames = u64::from(reader.duration());
        let samples = match spec.sample_format {
            hound::SampleFormat::Float => Samples::Float(reader.into_samples()),
            hound::SampleFormat::Int => Samples::Int(
                reader.into_samples(),
                2f64.powi(i32::from(spec.bits_per_sample) - 1),
            ),
        };
        Ok(Self {
            channels: usize::from(spec.channels).max(1),
            sample_rate: spec.sample_rate,
            frames,
            samples,
            shown,
            read: 0,
        })
    }

    /// Read the next frame into `frame` (its first `channels` values; channels beyond
    /// `frame.len()` are read and dropped); `Ok(false)` at the end.
    pub fn next_frame(&mut self, frame: &mut [f64]) -> Result<bool, String> {
        if self.read >= self.frames {
            return Ok(false);
        }
        for c in 0..self.channels {
            let value = match &mut self.samples {
                Samples::Float(s) => s.next().map(|v| v.map(f64::from)),
                Samples::Int(s, full_scale) => {
                    s.next().map(|v| v.map(|v| f64::from(v) / *full_scale))
                }
            };
            let value = match value {
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    return Err(format!(
                        "{} is damaged at frame {}, channel {c}: {e}",
                        self.shown, self.read
                    ))
                }
                None => {
                    return Err(format!(
                        "{} ends at frame {} of the {} its header announces",
                        self.shown, self.read, self.frames
                    ))
                }
            };
            if let Some(slot) = frame.get_mut(c) {
                *slot = value;
            }
        }
        self.read += 1;
        Ok(true)
    }
}
