//! The plants' Gaussian white noise: standard normal draws, one at a time or in bulk.
//!
//! Owns: [`GaussianNoise`]. Calls nothing else in the crate.
//!
//! A noisy plant at the audio rate draws a normal number per noisy state component per sample
//! (two per Stuart–Landau node): 96 million a second for 1 000 nodes at 48 kHz. Drawn one at a
//! time through `rand_distr`, each draw is an out-of-line call that reloads and stores the
//! generator's state, and one xoshiro stream is a serial chain of about five cycles per number;
//! together a quarter of a large delayed network's step. [`GaussianNoise::fill`] keeps four
//! independent streams in registers and draws from them in turn, so their chains overlap.
//! (An AVX-512 version, eight streams in one register with gathered layer widths, filled 1.4×
//! faster in isolation but gave the 1 000-node network nothing and its block times more
//! jitter, p99/median 1.4 against 1.13; not kept.)
//!
//! Each stream is exactly `rand_distr`'s `StandardNormal` (the 256-layer ziggurat, its tables
//! computed here by the same recursion, its wedge and tail tests) applied to a xoshiro256++
//! stream: the same bits give the same numbers (test).

use std::sync::LazyLock;

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::Open01;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Independent streams [`GaussianNoise::fill`] interleaves: enough chains to cover one
/// stream's latency (measured: 1 → 2.1 ns, 4 → 1.4 ns per number).
const STREAMS: usize = 4;

/// Layers of the ziggurat (the low byte of each draw picks one).
const LAYERS: usize = 256;

/// Where the base layer's tail begins, and each layer's area, for 256 layers (Marsaglia & Tsang
/// 2000; the values `rand_distr` generated its tables from).
const TAIL_START: f64 = 3.654_152_885_361_009;
const LAYER_AREA: f64 = 4.928_673_233_99e-3;

/// The unnormalised density `exp(−x²/2)`.
fn density(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

/// Layer edges `x[i]` (decreasing from the base layer's equivalent width to 0) and the density
/// there, `f[i] = exp(−x[i]²/2)`.
struct Ziggurat {
    x: [f64; LAYERS + 1],
    f: [f64; LAYERS + 1],
}

impl std::fmt::Debug for Ziggurat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ziggurat")
    }
}

/// Built on first use; [`GaussianNoise::new`] touches it, so a run builds it before real time.
static ZIGGURAT: LazyLock<Ziggurat> = LazyLock::new(|| {
    let mut x = [0.0; LAYERS + 1];
    x[0] = LAYER_AREA / density(TAIL_START);
    x[1] = TAIL_START;
    // Each layer above has the same area: x[i+1] is where the density has risen by v / x[i].
    for i in 1..LAYERS - 1 {
        x[i + 1] = (-2.0 * (LAYER_AREA / x[i] + density(x[i])).ln()).sqrt();
    }
    x[LAYERS] = 0.0;
    let f = x.map(density);
    Ziggurat { x, f }
});

/// A source of standard normal numbers: [`STREAMS`] xoshiro256++ streams, 2¹²⁸ draws apart, of
/// one seed. Deterministic: the same seed gives the same numbers in the same order.
#[derive(Clone, Debug)]
pub struct GaussianNoise {
    streams: [Xoshiro256PlusPlus; STREAMS],
    /// [`ZIGGURAT`], resolved at construction so that a draw does not check the `LazyLock`.
    table: &'static Ziggurat,
}

impl GaussianNoise {
    /// The noise of a run with `seed`: streams disjoint from `Xoshiro256PlusPlus::seed_from_u64
    /// (seed)` itself, which draws the run's parameters and initial conditions, so that a reset
    /// repeats the first run's noise exactly.
    pub fn new(seed: u64) -> Self {
        let mut base = Xoshiro256PlusPlus::seed_from_u64(seed);
        let streams = std::array::from_fn(|_| {
            base.jump();
            base.clone()
        });
        Self {
            streams,
            table: &ZIGGURAT,
        }
    }

    /// One standard normal number (from the first stream).
    pub fn normal(&mut self) -> f64 {
        let table = self.table;
        sample(&mut self.streams[0], table)
    }

    /// Fill `out` with standard normal numbers: element `k` from stream `k mod 4`, each stream
    /// in order. Never allocates.
    pub fn fill(&mut self, out: &mut [f64]) {
        let table = self.table;
        if out.len() <= STREAMS {
            // A small plant (one SL node draws two): copying the streams out and back would
            // cost more than the draws. Same numbers as the loop below.
            for (o, stream) in out.iter_mut().zip(self.streams.iter_mut()) {
                *o = sample(stream, table);
            }
            return;
        }
        let mut streams = self.streams.clone();
        let mut chunks = out.chunks_exact_mut(STREAMS);
        for chunk in &mut chunks {
            for (o, stream) in chunk.iter_mut().zip(streams.iter_mut()) {
                *o = sample(stream, table);
            }
        }
        for (o, stream) in chunks.into_remainder().iter_mut().zip(streams.iter_mut()) {
            *o = sample(stream, table);
        }
        self.streams = streams;
    }
}

/// One draw: the fast path (a point inside its layer's rectangle, 98.8 % of draws) inline, the
/// rest out of line.
#[inline(always)]
fn sample(stream: &mut Xoshiro256PlusPlus, table: &Ziggurat) -> f64 {
    let (x, i) = candidate(stream.next_u64(), table);
    if x.abs() < table.x[i + 1] {
        x
    } else {
        edge(stream, table, x, i)
    }
}

/// A point of layer `i` (the low byte of `bits`) at a uniform position in `[−x[i], x[i])` (the
/// other 52 bits).
#[inline(always)]
fn candidate(bits: u64, table: &Ziggurat) -> (f64, usize) {
    let i = (bits & 0xff) as usize;
    // 52 bits as the mantissa of a number in [2, 4), shifted to [−1, 1).
    let u = f64::from_bits((bits >> 12) | (1024 << 52)) - 3.0;
    (u * table.x[i], i)
}

/// A candidate outside its layer's rectangle: the base layer's tail, or a wedge accepted under
/// the density; otherwise a new candidate, until one is accepted.
#[cold]
#[inline(never)]
fn edge(stream: &mut Xoshiro256PlusPlus, table: &Ziggurat, mut x: f64, mut i: usize) -> f64 {
    loop {
        if x.abs() < table.x[i + 1] {
            return x;
        }
        if i == 0 {
            return tail(stream, x);
        }
        let f = table.f[i + 1] + (table.f[i] - table.f[i + 1]) * stream.random::<f64>();
        if f < density(x) {
            return x;
        }
        (x, i) = candidate(stream.next_u64(), table);
    }
}

/// A draw beyond [`TAIL_START`] on the side of `x` (Marsaglia's exponential method).
fn tail(stream: &mut Xoshiro256PlusPlus, x: f64) -> f64 {
    let (mut beyond, mut y) = (1.0f64, 0.0f64);
    while -2.0 * y < beyond * beyond {
        let a: f64 = stream.sample(Open01);
        let b: f64 = stream.sample(Open01);
        beyond = a.ln() / TAIL_START;
        y = b.ln();
    }
    if x < 0.0 {
        beyond - TAIL_START
    } else {
        TAIL_START - beyond
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::StandardNormal;

    /// The streams `new(seed)` draws from, as plain generators.
    fn plain_streams(seed: u64) -> Vec<Xoshiro256PlusPlus> {
        let mut base = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..STREAMS)
            .map(|_| {
                base.jump();
                base.clone()
            })
            .collect()
    }

    #[test]
    fn every_stream_draws_exactly_rand_distrs_standard_normal() {
        // 400 000 numbers: about 4 800 wedge or tail draws, ~10 from the tail.
        let mut noise = GaussianNoise::new(11);
        let mut out = vec![0.0; 100_003];
        let mut plain = plain_streams(11);
        for _ in 0..4 {
            noise.fill(&mut out);
            let mut used = [0usize; STREAMS];
            for (k, &got) in out.iter().enumerate() {
                let s = k % STREAMS;
                used[s] += 1;
                let want: f64 = plain[s].sample(StandardNormal);
                assert_eq!(got.to_bits(), want.to_bits(), "element {k}");
            }
            assert_eq!(used, [25_001, 25_001, 25_001, 25_000]);
        }
        let want: f64 = plain[0].sample(StandardNormal);
        assert_eq!(noise.normal().to_bits(), want.to_bits());
        // Short fills (one SL node draws two) take their own path: the same streams in order.
        for len in [1, 2, 4, 5] {
            let mut short = vec![0.0; len];
            noise.fill(&mut short);
            for (k, got) in short.iter().enumerate() {
                let want: f64 = plain[k % STREAMS].sample(StandardNormal);
                assert_eq!(got.to_bits(), want.to_bits(), "length {len}, element {k}");
            }
        }
    }

    #[test]
    fn the_layers_have_equal_areas_and_close_at_zero() {
        let z = &*ZIGGURAT;
        assert_eq!(z.x[1], TAIL_START);
        assert_eq!(z.x[LAYERS], 0.0);
        assert!(z.x.windows(2).all(|w| w[0] > w[1]));
        // The top layer, computed last, still has the common area: the recursion closed.
        let top = z.x[LAYERS - 1] * (1.0 - z.f[LAYERS - 1]);
        assert!((top / LAYER_AREA - 1.0).abs() < 1e-8, "{top}");
        for i in 1..LAYERS - 1 {
            let area = z.x[i] * (z.f[i + 1] - z.f[i]);
            assert!((area / LAYER_AREA - 1.0).abs() < 1e-9, "layer {i}: {area}");
        }
    }

    #[test]
    fn draws_have_the_normal_moments_and_tail_masses() {
        let mut noise = GaussianNoise::new(3);
        let mut out = vec![0.0; 2_000_000];
        noise.fill(&mut out);
        let n = out.len() as f64;
        let mean = out.iter().sum::<f64>() / n;
        let var = out.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let kurt = out.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(mean.abs() < 4.0 / n.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 4.0 * (2.0 / n).sqrt(), "variance {var}");
        assert!(
            (kurt - 3.0).abs() < 4.0 * (24.0 / n).sqrt(),
            "kurtosis {kurt}"
        );
        // P(|x| > 2) = 0.0455, P(|x| > TAIL_START) = 2.58e-4: the tail sampler is reached.
        let beyond = |t: f64| out.iter().filter(|x| x.abs() > t).count() as f64 / n;
        let (p2, pr) = (beyond(2.0), beyond(TAIL_START));
        assert!((p2 - 0.045_500).abs() < 4.0 * (0.0455 / n).sqrt(), "{p2}");
        assert!((pr - 2.58e-4).abs() < 4.0 * (2.58e-4 / n).sqrt(), "{pr}");
    }

    /// Chi-square of a histogram in bins of 0.1 over ±4 (the wedges are 0.01–0.3 wide: a wrong
    /// wedge or tail shows as a few bins off; finishing a miss with a fresh normal gave 1 105) against the density's integral.
    #[test]
    fn the_histogram_follows_the_normal_density() {
        let mut noise = GaussianNoise::new(8);
        let mut out = vec![0.0; 4_000_000];
        noise.fill(&mut out);
        let (lo, width, bins) = (-4.0, 0.1, 80);
        let mut counts = vec![0.0; bins];
        for &x in &out {
            let b = ((x - lo) / width).floor();
            if (0.0..bins as f64).contains(&b) {
                counts[b as usize] += 1.0;
            }
        }
        let pdf = |x: f64| density(x) / std::f64::consts::TAU.sqrt();
        let chi2: f64 = counts
            .iter()
            .enumerate()
            .map(|(b, &c)| {
                // Simpson's rule over the bin (error ~1e-9 of its mass).
                let a = lo + b as f64 * width;
                let mass = width / 6.0 * (pdf(a) + 4.0 * pdf(a + width / 2.0) + pdf(a + width));
                let expected = mass * out.len() as f64;
                (c - expected).powi(2) / expected
            })
            .sum();
        // 80 bins: mean 80, SD 12.6; 140 is beyond p = 1e-4.
        assert!(chi2 < 140.0, "chi² {chi2}");
    }

    #[test]
    fn a_reset_repeats_the_noise_and_seeds_differ() {
        let draw = |seed| {
            let mut out = [0.0; 13];
            GaussianNoise::new(seed).fill(&mut out);
            out
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
        // Disjoint from the parameter stream of the same seed.
        let mut params = Xoshiro256PlusPlus::seed_from_u64(5);
        let first: f64 = params.sample(StandardNormal);
        assert_ne!(first, draw(5)[0]);
    }
}
