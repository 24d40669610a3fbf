//! Reading a WAV recording (control half only: sensor files, training baselines, evaluation
//! records). Integer files are scaled to ±1 full scale, float files read as they are.
//! Calls nothing else in the crate.

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
