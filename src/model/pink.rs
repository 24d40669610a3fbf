//! Streaming pink (1/f) noise, one independent stream per node, for use as additive input noise
//! by any plant (the engine adds `noise_sd × sample` to each node's forcing).
//!
//! Design: a sum of `K` independent first-order autoregressive sections,
//! `x_k[n] = a_k x_k[n−1] + g_k w_k[n]`, `w_k ~ N(0, 1)` white, output `y[n] = Σ_k x_k[n]`.
//! Section `k` has the corner frequency `f_k = f_lo · 2^{k/2}` (two sections per octave, from the
//! lowest corner `f_lo` up to the last corner at or below Nyquist) and the pole
//! `a_k = e^{−2π f_k/f_s}`.
//! Each section is a (discrete) Lorentzian with the same variance `1/K`, which is what makes the
//! sum 1/f: a Lorentzian of variance `v` and corner `f_c` contributes `≈ v/f_c` below `f_c` and
//! `v f_c/f²` above it, and with equal variances and log-spaced corners the contributions add up
//! to `∝ 1/f` between the lowest and the highest corners. (Evaluating the exact sum of the
//! sections' spectra at 1 kHz and `f_lo` = 0.1 Hz: `f·S(f)` stays within 0.2 dB over 1–100 Hz and
//! within 0.8 dB over 0.5–400 Hz.)
//! The gains `g_k = √((1 − a_k²)/K)` make each section's stationary variance exactly `1/K`, so the
//! output has zero mean and unit variance analytically, not by an empirical rescaling; the
//! sections start in their stationary distribution, so there is no start-up transient.
//!
//! Band (measured in `tests/pink.rs` at `f_s` = 1 kHz, `f_lo` = 0.1 Hz, Welch PSD): log–log slope
//! −0.99 over 1–100 Hz and 0.5–400 Hz, each decade within −1 ± 0.05, so the 1/f band is about
//! `5 f_lo` to `0.4 f_s`. Below `f_lo` the spectrum flattens (the process has finite variance);
//! between `0.4 f_s` and Nyquist it bends to a slope of about −0.7, because the top sections are
//! nearly white.
//!
//! Cost per sample: `K` Gaussian draws and multiply–adds, `K = ⌊2 log₂(f_s / (2 f_lo))⌋ + 1`
//! (25 at 1 kHz and 0.1 Hz). Nothing is allocated after construction.
//!
//! Seeding: node `i` of a bank draws from `Xoshiro256PlusPlus::seed_from_u64(seed)` advanced by
//! `i + 1` long jumps (2^192 steps each). A plant's own generators sit at offsets 0 (parameters)
//! and one jump, 2^128 (white noise), so pink streams never overlap them even with the same seed.

use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Sections per octave of corner frequency: two keep the 1/f ripple small at modest cost.
const SECTIONS_PER_OCTAVE: f64 = 2.0;

/// The filter shared by all streams of a bank: section poles and gains.
#[derive(Clone, Debug)]
struct Sections {
    /// Pole `a_k = e^{−2π f_k / f_s}` of each section (dimensionless).
    pole: Vec<f64>,
    /// Input gain `g_k = √((1 − a_k²)/K)` of each section (dimensionless).
    gain: Vec<f64>,
    /// Stationary SD of each section, `√(1/K)`.
    section_sd: f64,
}

impl Sections {
    fn new(sample_rate_hz: f64, lowest_hz: f64) -> Result<Self, String> {
        if !(sample_rate_hz.is_finite() && sample_rate_hz > 0.0) {
            return Err(format!(
                "pink noise: sample_rate_hz must be a finite number > 0, got {sample_rate_hz}"
            ));
        }
        let nyquist = 0.5 * sample_rate_hz;
        if !(lowest_hz.is_finite() && lowest_hz > 0.0 && lowest_hz < nyquist) {
            return Err(format!(
                "pink noise: lowest_hz must be > 0 and below Nyquist ({nyquist} Hz), \
                 got {lowest_hz}"
            ));
        }
        let octaves = (nyquist / lowest_hz).log2();
        // The last corner is the highest one at or below Nyquist.
        let k = (SECTIONS_PER_OCTAVE * octaves).floor() as usize + 1;
        let variance = 1.0 / k as f64;
        let pole: Vec<f64> = (0..k)
            .map(|i| {
                let corner = lowest_hz * (i as f64 / SECTIONS_PER_OCTAVE).exp2();
                (-std::f64::consts::TAU * corner / sample_rate_hz).exp()
            })
            .collect();
        let gain = pole
            .iter()
            .map(|a| ((1.0 - a * a) * variance).sqrt())
            .collect();
        Ok(Self {
            pole,
            gain,
            section_sd: variance.sqrt(),
        })
    }

    fn len(&self) -> usize {
        self.pole.len()
    }

    /// Draw each section's state from its stationary distribution `N(0, 1/K)`.
    fn init(&self, state: &mut [f64], rng: &mut Xoshiro256PlusPlus) {
        for x in state {
            *x = self.section_sd * rng.sample::<f64, _>(StandardNormal);
        }
    }

    /// Advance the sections in `state` by one sample and return their sum.
    fn advance(&self, state: &mut [f64], rng: &mut Xoshiro256PlusPlus) -> f64 {
        let mut sum = 0.0;
        for ((x, a), g) in state.iter_mut().zip(&self.pole).zip(&self.gain) {
            let w: f64 = rng.sample(StandardNormal);
            *x = a * *x + g * w;
            sum += *x;
        }
        sum
    }
}

/// The generator of stream `index` (0-based) of `seed`: see the module docs.
fn stream_rng(seed: u64, index: usize) -> Xoshiro256PlusPlus {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..=index {
        rng.long_jump();
    }
    rng
}

/// One stream of pink noise: zero mean, unit variance, 1/f power between `lowest_hz` and a
/// fraction of Nyquist (module docs). Samples are dimensionless.
#[derive(Clone, Debug)]
pub struct PinkNoise {
    sections: Sections,
    /// Section states (dimensionless).
    state: Vec<f64>,
    rng: Xoshiro256PlusPlus,
    seed: u64,
    index: usize,
}

impl PinkNoise {
    /// A stream sampled at `sample_rate_hz` (Hz) whose 1/f band starts at `lowest_hz` (Hz, the
    /// lowest section corner, `0 < lowest_hz < sample_rate_hz / 2`), seeded with `seed`. It is the
    /// same stream as node 0 of a [`PinkNoiseBank`] with the same arguments.
    pub fn new(sample_rate_hz: f64, lowest_hz: f64, seed: u64) -> Result<Self, String> {
        Ok(Self::stream(
            Sections::new(sample_rate_hz, lowest_hz)?,
            seed,
            0,
        ))
    }

    fn stream(sections: Sections, seed: u64, index: usize) -> Self {
        let mut rng = stream_rng(seed, index);
        let mut state = vec![0.0; sections.len()];
        sections.init(&mut state, &mut rng);
        Self {
            sections,
            state,
            rng,
            seed,
            index,
        }
    }

    /// The next sample (dimensionless, zero mean, unit variance). Never allocates.
    pub fn sample(&mut self) -> f64 {
        self.sections.advance(&mut self.state, &mut self.rng)
    }

    /// Restart the stream: re-seed and redraw the initial section states, so the samples that
    /// follow repeat those after construction exactly. Never allocates.
    pub fn reset(&mut self) {
        self.rng = stream_rng(self.seed, self.index);
        self.sections.init(&mut self.state, &mut self.rng);
    }

    /// Number of AR(1) sections `K` (count).
    pub fn sections(&self) -> usize {
        self.sections.len()
    }
}

/// Independent pink-noise streams, one per node, filled a step at a time.
#[derive(Clone, Debug)]
pub struct PinkNoiseBank {
    streams: Vec<PinkNoise>,
}

impl PinkNoiseBank {
    /// `nodes` independent streams (see [`PinkNoise::new`] for the other arguments); stream `i`
    /// feeds node `i`.
    pub fn new(
        nodes: usize,
        sample_rate_hz: f64,
        lowest_hz: f64,
        seed: u64,
    ) -> Result<Self, String> {
        let sections = Sections::new(sample_rate_hz, lowest_hz)?;
        let streams = (0..nodes)
            .map(|i| PinkNoise::stream(sections.clone(), seed, i))
            .collect();
        Ok(Self { streams })
    }

    /// Number of streams (count).
    pub fn nodes(&self) -> usize {
        self.streams.len()
    }

    /// Write the next sample of stream `i` into `out[i]` (dimensionless; `out.len()` must equal
    /// [`Self::nodes`]). Never allocates.
    pub fn fill(&mut self, out: &mut [f64]) {
        debug_assert_eq!(out.len(), self.streams.len());
        for (o, s) in out.iter_mut().zip(&mut self.streams) {
            *o = s.sample();
        }
    }

    /// Restart every stream (see [`PinkNoise::reset`]). Never allocates.
    pub fn reset(&mut self) {
        for s in &mut self.streams {
            s.reset();
        }
    }

    /// Bytes of generator state (for capacity reports).
    pub fn state_bytes(&self) -> usize {
        self.streams
            .iter()
            .map(|s| s.state.len() * 8 + std::mem::size_of::<Xoshiro256PlusPlus>())
            .sum()
    }
}
