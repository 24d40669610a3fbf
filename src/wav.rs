//! Reading a WAV recording (control half only: sensor files, training baselines, evaluation
//! records, run reports). Integer files are scaled to ±1 full scale, float files read as they
//! are. [`read_channel`] loads one channel of a file; [`WavFrames`] reads a file frame by frame.
//! Both stream the file, so memory holds at most the one channel asked for. Also
//! [`overwrite_channel`]: the recorder's in-place fill of a channel known only at the end of a
//! run. Calls nothing else in the crate.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// What entrain reads, for the errors that refuse anything else.
const SUPPORTED: &str = "entrain reads PCM WAV files of 8-, 16-, 24- or 32-bit integers or \
                         32-bit floats; convert it, e.g. `sox IN.wav -b 32 -e float OUT.wav`";

/// The fix for a file cut short.
const RESAVE: &str = "the file was cut short (an interrupted copy or recording): re-save what it \
                      holds, e.g. `sox IN.wav OUT.wav`, and use that";

/// One channel of a WAV file.
pub struct WavChannel {
    /// Channels per frame in the file.
    pub channels: usize,
    /// Hz.
    pub sample_rate: u32,
    /// The channel's samples, full scale ±1.
    pub samples: Vec<f64>,
}

/// Why [`read_channel`] failed: the file (unreadable, unsupported, damaged), or the channel
/// asked for (the file has fewer). Both messages name the file.
#[derive(Debug)]
pub enum ReadError {
    /// The file cannot be read, is not a supported WAV, or is damaged.
    File(String),
    /// The file has no such channel.
    Channel(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::File(e) | ReadError::Channel(e) => f.write_str(e),
        }
    }
}

/// Read channel `channel` (0-based) of `path`.
pub fn read_channel(path: &Path, channel: usize) -> Result<WavChannel, ReadError> {
    let mut frames = WavFrames::open(path).map_err(ReadError::File)?;
    if channel >= frames.channels {
        return Err(ReadError::Channel(format!(
            "{} has {} channel(s) (0..{}), so channel {channel} does not exist",
            frames.shown,
            frames.channels,
            frames.channels - 1
        )));
    }
    // The header's length is only a hint for the allocation: a lying header must not reserve
    // more than the file could hold.
    let mut samples = Vec::with_capacity(frames.frames.min(1 << 24) as usize);
    let mut frame = vec![0.0; channel + 1];
    while frames.next_frame(&mut frame).map_err(ReadError::File)? {
        samples.push(frame[channel]);
    }
    Ok(WavChannel {
        channels: frames.channels,
        sample_rate: frames.sample_rate,
        samples,
    })
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

/// What hound reads: the file as it is (after an empty header), or the header of
/// [`without_other_chunks`] followed by the file's samples.
type Bytes = std::io::Chain<Cursor<Vec<u8>>, BufReader<File>>;

enum Samples {
    Float(hound::WavIntoSamples<Bytes, f32>),
    Int(hound::WavIntoSamples<Bytes, i32>, f64),
}

impl WavFrames {
    /// Open `path`. Errors name the file and say what it should be.
    pub fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display().to_string();
        if !path.exists() {
            let relative = match std::env::current_dir() {
                Ok(dir) if path.is_relative() => {
                    format!(
                        " (a relative path is taken from the working directory, {})",
                        dir.display()
                    )
                }
                _ => String::new(),
            };
            return Err(format!("{shown} does not exist{relative}; check the path"));
        }
        let open = |path: &Path| -> Result<_, hound::Error> {
            let file = BufReader::new(File::open(path)?);
            hound::WavReader::new(Cursor::new(Vec::new()).chain(file))
        };
        let reader = open(path)
            .or_else(|e| without_other_chunks(path).ok_or(e))
            .map_err(|e| {
                let e = e.to_string();
                // A header written before the length was known (to a pipe, or by a recorder that
                // was stopped) holds a placeholder length.
                let unfinished = if e.contains("length") {
                    " (a file written to a pipe or by an unfinished recording has no valid length: \
                 rewrite it the same way)"
                } else {
                    ""
                };
                format!("cannot read {shown} as a WAV file ({e}); {SUPPORTED}{unfinished}")
            })?;
        let spec = reader.spec();
        if spec.sample_rate == 0 {
            return Err(format!(
                "{shown} declares a sample rate of 0 Hz: its header is damaged"
            ));
        }
        if spec.sample_format == hound::SampleFormat::Int {
            // hound reads e.g. 24 valid bits in a 32-bit container from the container's low
            // bytes, where the format puts them high: refuse what would be read as noise.
            let stored = container_bits(path).unwrap_or(spec.bits_per_sample);
            if stored != spec.bits_per_sample || !matches!(stored, 8 | 16 | 24 | 32) {
                return Err(format!(
                    "{shown} holds {}-bit samples in {stored}-bit slots; {SUPPORTED}",
                    spec.bits_per_sample
                ));
            }
        }
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
                        "{} is damaged at frame {} (channel {c}) of the {} its header announces \
                         ({e}); {RESAVE}",
                        self.shown, self.read, self.frames
                    ))
                }
                None => {
                    return Err(format!(
                        "{} ends at frame {} of the {} its header announces; {RESAVE}",
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

/// Bits each sample occupies in the file (its `fmt ` chunk's block alignment per channel), or
/// `None` where the header cannot be walked to it.
fn container_bits(path: &Path) -> Option<u16> {
    let mut file = BufReader::new(File::open(path).ok()?);
    find_chunk(&mut file, b"fmt ")?;
    let mut fmt = [0u8; 16];
    file.read_exact(&mut fmt).ok()?;
    let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
    let block_align = u16::from_le_bytes([fmt[12], fmt[13]]);
    (channels > 0).then(|| block_align / channels * 8)
}

/// Walk a RIFF/WAVE file's chunks from its start to the chunk `id`, leaving `file` at its
/// content; returns the content's offset in the file and its declared length in bytes, or
/// `None` if there is no such chunk.
fn find_chunk(file: &mut (impl Read + Seek), id: &[u8; 4]) -> Option<(u64, u32)> {
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff).ok()?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return None;
    }
    loop {
        let mut head = [0u8; 8];
        file.read_exact(&mut head).ok()?;
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if &head[0..4] == id {
            return Some((file.stream_position().ok()?, len));
        }
        // Chunks are padded to an even length.
        file.seek(SeekFrom::Current(i64::from(len) + i64::from(len % 2)))
            .ok()?;
    }
}

/// Longest `fmt ` chunk copied by [`without_other_chunks`] (the extensible format's is 40
/// bytes): a longer one is a damaged header.
const FMT_MOST: u32 = 1024;

/// `path` read as only its `fmt ` and `data` chunks, for the valid files hound refuses: hound
/// reads the chunks in order and skips neither the pad byte after a chunk of odd length (RIFF
/// pads every chunk to an even length, so e.g. an odd-length `LIST` chunk before the samples
/// throws it off by one) nor the rest of a `fact` chunk longer than its one field. `None` where
/// the file has no such chunks.
fn without_other_chunks(path: &Path) -> Option<hound::WavReader<Bytes>> {
    let mut file = BufReader::new(File::open(path).ok()?);
    let (fmt_at, fmt_len) = find_chunk(&mut file, b"fmt ").filter(|c| c.1 <= FMT_MOST)?;
    let mut fmt = vec![0u8; fmt_len as usize];
    file.seek(SeekFrom::Start(fmt_at)).ok()?;
    file.read_exact(&mut fmt).ok()?;
    if fmt_len % 2 == 1 {
        fmt.push(0);
    }
    let (data_at, data_len) = find_chunk(&mut file, b"data")?;
    file.seek(SeekFrom::Start(data_at)).ok()?;
    let mut head = b"RIFF".to_vec();
    let riff_len = (4 + 8 + fmt.len() as u32 + 8).saturating_add(data_len);
    head.extend(riff_len.to_le_bytes());
    head.extend(b"WAVEfmt ");
    head.extend(fmt_len.to_le_bytes());
    head.extend(fmt);
    head.extend(b"data");
    head.extend(data_len.to_le_bytes());
    hound::WavReader::new(Cursor::new(head).chain(file)).ok()
}

/// Bytes [`overwrite_channel`] reads and writes at a time (whole frames, at least one).
const OVERWRITE_BYTES: usize = 1 << 20;

/// Replace `channel` of frames `first_frame ..` of the 32-bit float WAV file at `path`
/// (`channels` per frame) with `values`, in place: for a channel known only once the run has
/// ended. The other channels keep their bits.
pub fn overwrite_channel(
    path: &Path,
    channels: usize,
    channel: usize,
    first_frame: u64,
    values: &[f32],
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    if channel >= channels {
        return Err(fail(&format!("no channel {channel} in {channels}")));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| fail(&e))?;
    let (data, _) = find_chunk(&mut file, b"data").ok_or_else(|| fail(&"no data chunk"))?;
    let frame_bytes = 4 * channels;
    let frames = (OVERWRITE_BYTES / frame_bytes).clamp(1, values.len().max(1));
    let mut buffer = vec![0u8; frames * frame_bytes];
    for (k, part) in values.chunks(frames).enumerate() {
        let frame = first_frame + (k * frames) as u64;
        let at = data + frame * frame_bytes as u64;
        let bytes = &mut buffer[..part.len() * frame_bytes];
        file.seek(SeekFrom::Start(at)).map_err(|e| fail(&e))?;
        file.read_exact(bytes).map_err(|e| fail(&e))?;
        for (frame, v) in bytes.chunks_exact_mut(frame_bytes).zip(part) {
            frame[4 * channel..4 * channel + 4].copy_from_slice(&v.to_le_bytes());
        }
        file.seek(SeekFrom::Start(at)).map_err(|e| fail(&e))?;
        file.write_all(bytes).map_err(|e| fail(&e))?;
    }
    file.flush().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCM WAV file's bytes: `channels` × `frames` samples of `container` bytes each, with
    /// `valid` bits declared (WAVE_FORMAT_EXTENSIBLE when they differ), the samples given as
    /// container-sized little-endian integers.
    fn pcm(channels: u16, container: u16, valid: u16, samples: &[i64]) -> Vec<u8> {
        let extensible = container * 8 != valid;
        let block = channels * container;
        let mut fmt: Vec<u8> = Vec::new();
        fmt.extend((if extensible { 0xFFFEu16 } else { 1 }).to_le_bytes());
        fmt.extend(channels.to_le_bytes());
        fmt.extend(1000u32.to_le_bytes());
        fmt.extend((1000 * u32::from(block)).to_le_bytes());
        fmt.extend(block.to_le_bytes());
        fmt.extend((container * 8).to_le_bytes());
        if extensible {
            fmt.extend(22u16.to_le_bytes());
            fmt.extend(valid.to_le_bytes());
            fmt.extend(0u32.to_le_bytes());
            // KSDATAFORMAT_SUBTYPE_PCM
            fmt.extend([
                1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
            ]);
        }
        let mut data: Vec<u8> = Vec::new();
        for &s in samples {
            data.extend(&s.to_le_bytes()[..usize::from(container)]);
        }
        let mut file = b"RIFF".to_vec();
        file.extend((4 + 8 + fmt.len() as u32 + 8 + data.len() as u32).to_le_bytes());
        file.extend(b"WAVEfmt ");
        file.extend((fmt.len() as u32).to_le_bytes());
        file.extend(fmt);
        file.extend(b"data");
        file.extend((data.len() as u32).to_le_bytes());
        file.extend(data);
        file
    }

    #[test]
    fn overwriting_a_channel_changes_only_that_channel_of_those_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        let spec = hound::WavSpec {
            channels: 3,
            sample_rate: 1000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        // More frames than one rewrite takes, so that its chunks meet.
        let per_rewrite = OVERWRITE_BYTES / 12;
        let frames = per_rewrite + 100;
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..frames * 3 {
            w.write_sample(i as f32).unwrap();
        }
        w.finalize().unwrap();
        // Across the rewrite's chunk boundary, from frame 7 on.
        let values: Vec<f32> = (0..per_rewrite + 50).map(|i| -(i as f32)).collect();
        overwrite_channel(&path, 3, 2, 7, &values).unwrap();
        let got: Vec<f32> = hound::WavReader::open(&path)
            .unwrap()
            .samples::<f32>()
            .map(Result::unwrap)
            .collect();
        for (i, g) in got.iter().enumerate() {
            let (frame, channel) = (i / 3, i % 3);
            let expected = if channel == 2 && (7..7 + values.len()).contains(&frame) {
                values[frame - 7]
            } else {
                i as f32
            };
            assert_eq!(
                g.to_bits(),
                expected.to_bits(),
                "frame {frame} channel {channel}"
            );
        }
        assert!(overwrite_channel(&path, 3, 3, 0, &values).is_err());
    }

    #[test]
    fn one_channel_is_read_at_full_scale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stereo.wav");
        // Two channels of 16-bit samples: channel 1 is channel 0 negated.
        let samples: Vec<i64> = (0..100).flat_map(|k| [k * 300, -k * 300]).collect();
        std::fs::write(&path, pcm(2, 2, 16, &samples)).unwrap();
        let wav = read_channel(&path, 1).unwrap();
        assert_eq!((wav.channels, wav.sample_rate), (2, 1000));
        assert_eq!(wav.samples.len(), 100);
        assert_eq!(wav.samples[10], -3000.0 / 32768.0);
        let Err(ReadError::Channel(e)) = read_channel(&path, 2) else {
            panic!("channel 2 of a stereo file was read");
        };
        assert!(e.contains("2 channel(s)") && e.contains("channel 2"), "{e}");
    }

    #[test]
    fn samples_narrower_than_their_slots_are_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("24in32.wav");
        // 24 valid bits, left-aligned in 32-bit slots as the format specifies.
        let samples: Vec<i64> = (0..100).map(|k| (k * 1000) << 8).collect();
        std::fs::write(&path, pcm(1, 4, 24, &samples)).unwrap();
        let e = WavFrames::open(&path).err().expect("refused");
        assert!(
            e.contains("24-bit samples in 32-bit slots") && e.contains("sox"),
            "{e}"
        );
        // The same samples at their own width are read.
        let plain = dir.path().join("24.wav");
        let samples: Vec<i64> = (0..100).map(|k| k * 1000).collect();
        std::fs::write(&plain, pcm(1, 3, 24, &samples)).unwrap();
        assert_eq!(read_channel(&plain, 0).unwrap().samples.len(), 100);
    }

    #[test]
    fn a_file_cut_short_says_where_and_how_to_recover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.wav");
        let samples: Vec<i64> = (0..100).collect();
        let mut bytes = pcm(1, 2, 16, &samples);
        bytes.truncate(bytes.len() - 81); // 40.5 samples short
        std::fs::write(&path, bytes).unwrap();
        let Err(ReadError::File(e)) = read_channel(&path, 0) else {
            panic!("a cut file was read");
        };
        assert!(
            e.contains("cut.wav") && e.contains("frame 59") && e.contains("of the 100"),
            "{e}"
        );
        assert!(e.contains("re-save"), "{e}");
    }

    /// `file` (from [`pcm`]) with a chunk `id` of `content` inserted before its `data` chunk,
    /// padded to an even length as RIFF requires.
    fn with_chunk_before_data(file: &[u8], id: &[u8; 4], content: &[u8]) -> Vec<u8> {
        let data = file
            .windows(4)
            .position(|w| w == b"data")
            .expect("a data chunk");
        let mut chunk = id.to_vec();
        chunk.extend((content.len() as u32).to_le_bytes());
        chunk.extend(content);
        if content.len() % 2 == 1 {
            chunk.push(0);
        }
        let mut out = file[..data].to_vec();
        out.extend(&chunk);
        out.extend(&file[data..]);
        let riff_len = out.len() as u32 - 8;
        out[4..8].copy_from_slice(&riff_len.to_le_bytes());
        out
    }

    #[test]
    fn chunks_of_odd_length_before_the_samples_are_skipped_with_their_pad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<i64> = (0..100).map(|k| k * 300 - 15_000).collect();
        let plain = pcm(1, 2, 16, &samples);
        // A recorder's odd-length `LIST` (an INFO string of 5 bytes), and a `fact` chunk longer
        // than its one field: both valid, both refused by hound on its own.
        let list = [b"INFOISFT".as_slice(), &5u32.to_le_bytes(), b"rec 1"].concat();
        let fact = [100u32.to_le_bytes(), 0u32.to_le_bytes()].concat();
        for (name, bytes) in [
            ("list.wav", with_chunk_before_data(&plain, b"LIST", &list)),
            ("fact.wav", with_chunk_before_data(&plain, b"fact", &fact)),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let wav = read_channel(&path, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(wav.sample_rate, 1000, "{name}");
            let expected: Vec<f64> = samples.iter().map(|&s| s as f64 / 32768.0).collect();
            assert_eq!(wav.samples, expected, "{name}");
        }
    }

    #[test]
    fn a_missing_relative_path_names_the_working_directory() {
        let e = WavFrames::open(Path::new("no/such/recording.wav"))
            .err()
            .expect("refused");
        let cwd = std::env::current_dir().unwrap();
        assert!(
            e.contains("does not exist") && e.contains(&cwd.display().to_string()),
            "{e}"
        );
    }
}
