//! `nodes.f32` and `nodes.json`: every node's observable at a decimated rate.
//!
//! Layout (a stable contract, read by `entrain heatmap`): `nodes.f32` is little-endian f32,
//! frame-major — frame `k` holds nodes `0..N` in node order, taken at sample
//! `first_sample + k · decimation_samples`; on a grid, node `r · cols + c` is row `r`, column
//! `c`. A snapshot the engine had to drop is written as a frame of NaN, so the time axis stays
//! exact. `nodes.json` gives the layout; it is written when the run starts (frames 0) and again
//! at the end, so after a crash the file size (whole frames) is the truth.

use crate::engine::{NodeSnapshots, NODE_CHUNK};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The contents of `nodes.json`.
#[derive(Clone, Debug, Serialize)]
struct Layout {
    format: &'static str,
    nodes: usize,
    rows: usize,
    cols: usize,
    grid: bool,
    /// Hz.
    sample_rate_hz: f64,
    decimation_samples: u64,
    /// Hz.
    rate_hz: f64,
    first_sample: u64,
    frames: u64,
    /// Frames written as NaN because the engine dropped the snapshot.
    gap_frames: u64,
}

/// Writes the node snapshots as they arrive (on the recorder thread).
pub(super) struct NodeWriter {
    file: BufWriter<File>,
    json: PathBuf,
    layout: Layout,
    snapshots: NodeSnapshots,
    /// The snapshot being filled: its sample and the values so far.
    current: Option<u64>,
    values: Vec<f32>,
    /// The sample of the next frame to write.
    next_sample: u64,
    bytes: Vec<u8>,
}

impl NodeWriter {
    /// Create `dir/nodes.f32` and `dir/nodes.json`.
    pub(super) fn create(
        dir: &Path,
        snapshots: NodeSnapshots,
        sample_rate_hz: f64,
    ) -> Result<Self, String> {
        let path = dir.join("nodes.f32");
        let file =
            File::create(&path).map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
        let layout = Layout {
            format: "f32le frame-major",
            nodes: snapshots.nodes,
            rows: snapshots.shape.0,
            cols: snapshots.shape.1,
            grid: snapshots.grid,
            sample_rate_hz,
            decimation_samples: snapshots.every,
            rate_hz: sample_rate_hz / snapshots.every as f64,
            first_sample: 0,
            frames: 0,
            gap_frames: 0,
        };
        let writer = Self {
            file: BufWriter::new(file),
            json: dir.join("nodes.json"),
            layout,
            snapshots,
            current: None,
            values: Vec::with_capacity(snapshots.chunks() * NODE_CHUNK),
            next_sample: 0,
            bytes: Vec::with_capacity(snapshots.nodes * 4),
        };
        writer.write_layout()?;
        Ok(writer)
    }

    /// A snapshot starts at `sample`.
    pub(super) fn snapshot(&mut self, sample: u64) -> Result<(), String> {
        while self.next_sample < sample {
            self.write_frame(None)?;
        }
        self.current = Some(sample);
        self.values.clear();
        Ok(())
    }

    /// The next values of the current snapshot.
    pub(super) fn values(&mut self, chunk: &[f32; NODE_CHUNK]) -> Result<(), String> {
        if self.current.is_none() {
            return Ok(());
        }
        self.values.extend_from_slice(chunk);
        if self.values.len() >= self.snapshots.chunks() * NODE_CHUNK {
            self.current = None;
            self.write_frame(Some(()))?;
        }
        Ok(())
    }

    /// Write one frame: the collected values, or NaN for a dropped snapshot.
    fn write_frame(&mut self, collected: Option<()>) -> Result<(), String> {
        self.bytes.clear();
        for i in 0..self.snapshots.nodes {
            let v = if collected.is_some() {
                self.values[i]
            } else {
                f32::NAN
            };
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.file
            .write_all(&self.bytes)
            .map_err(|e| format!("nodes.f32: {e}"))?;
        self.layout.frames += 1;
        self.layout.gap_frames += u64::from(collected.is_none());
        self.next_sample += self.snapshots.every;
        Ok(())
    }

    fn write_layout(&self) -> Result<(), String> {
        let text =
            serde_json::to_string_pretty(&self.layout).map_err(|e| format!("nodes.json: {e}"))?;
        std::fs::write(&self.json, text + "\n")
            .map_err(|e| format!("cannot write '{}': {e}", self.json.display()))
    }

    /// Flush what is written (about once a second, like the other files).
    pub(super) fn flush(&mut self) -> Result<(), String> {
        self.file.flush().map_err(|e| format!("nodes.f32: {e}"))
    }

    /// Flush and write the final layout; returns (frames, gap frames).
    pub(super) fn close(mut self) -> Result<(u64, u64), String> {
        self.flush()?;
        self.write_layout()?;
        Ok((self.layout.frames, self.layout.gap_frames))
    }
}
