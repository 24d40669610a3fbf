//! The plants' Gaussian white noise: standard normal draws, one at a time or in bulk.
//!
//! Owns: [`GaussianNoise`]. Calls [`crate::lanes`] (which vector width to draw at) and nothing
//! else in the crate.
//!
//! A noisy plant at the audio rate draws a normal number per noisy state component per sample
//! (two per Stuart–Landau node): 96 million a second for 1 000 nodes at 48 kHz. Drawn one at a
//! time through `rand_distr`, each draw is an out-of-line call that reloads and stores the
//! generator's state, and one xoshiro stream is a serial chain of about five cycles per number;
//! together a quarter of a large delayed network's step. [`GaussianNoise::fill`] keeps four
//! independent streams and draws from them in turn, so their chains overlap; where the CPU
//! has AVX2 the four streams step side by side in one register, four draws at a time (an
//! AVX-512 version with eight streams, on another machine, gave the network nothing; this one
//! keeps the four streams and so the same numbers).
//!
//! Each stream is exactly `rand_distr`'s `StandardNormal` (the 256-layer ziggurat, its tables
//! computed here by the same recursion, its wedge and tail tests) applied to a xoshiro256++
//! stream: the same bits give the same numbers (test).

use std::convert::Infallible;
use std::sync::LazyLock;

use rand::{Rng, RngExt, SeedableRng, TryRng};
use rand_distr::Open01;
use rand_xoshiro::SplitMix64;

use crate::lanes::Lanes;

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

/// One xoshiro256++ stream: `rand_xoshiro::Xoshiro256PlusPlus`, seeded and jumped as it is and
/// giving the same numbers (test), held as its four state words so that [`GaussianNoise::fill`]
/// can step four streams in one AVX2 register and hand a stream back to the scalar draws
/// (`rand_xoshiro` keeps its state private, so the crate serves as this type's test oracle).
#[derive(Clone, Debug)]
struct Stream {
    s: [u64; 4],
}

impl Stream {
    /// `Xoshiro256PlusPlus::seed_from_u64(seed)`: the state is four words of SplitMix64.
    fn seed_from_u64(seed: u64) -> Self {
        let mut words = SplitMix64::seed_from_u64(seed);
        let mut bytes = [0u8; 32];
        words.fill_bytes(&mut bytes);
        let s = std::array::from_fn(|k| {
            u64::from_le_bytes(bytes[8 * k..8 * k + 8].try_into().expect("eight bytes"))
        });
        Self { s }
    }

    #[inline(always)]
    fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Advance by 2¹²⁸ draws (`Xoshiro256PlusPlus::jump`, its polynomial).
    fn jump(&mut self) {
        const JUMP: [u64; 4] = [
            0x180e_c6d3_3cfd_0aba,
            0xd5a6_1266_f0c9_392c,
            0xa958_2618_e03f_c9aa,
            0x39ab_dc45_29b1_661c,
        ];
        let mut acc = [0u64; 4];
        for word in JUMP {
            for bit in 0..64 {
                if word & (1 << bit) != 0 {
                    for (a, s) in acc.iter_mut().zip(self.s) {
                        *a ^= s;
                    }
                }
                self.next();
            }
        }
        self.s = acc;
    }
}

impl TryRng for Stream {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        // The upper bits, as `Xoshiro256PlusPlus` does: the lowest have linear dependencies.
        Ok((self.next() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dest.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// A source of standard normal numbers: [`STREAMS`] xoshiro256++ streams, 2¹²⁸ draws apart, of
/// one seed. Deterministic: the same seed gives the same numbers in the same order.
#[derive(Clone, Debug)]
pub struct GaussianNoise {
    streams: [Stream; STREAMS],
    /// [`ZIGGURAT`], resolved at construction so that a draw does not check the `LazyLock`.
    table: &'static Ziggurat,
    /// Whether bulk fills run `fill_avx512`: where [`Lanes::chosen`] picks AVX-512 (AMD).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    avx512: bool,
}

impl GaussianNoise {
    /// The noise of a run with `seed`: streams disjoint from `Xoshiro256PlusPlus::seed_from_u64
    /// (seed)` itself, which draws the run's parameters and initial conditions, so that a reset
    /// repeats the first run's noise exactly.
    pub fn new(seed: u64) -> Self {
        let mut base = Stream::seed_from_u64(seed);
        let streams = std::array::from_fn(|_| {
            base.jump();
            base.clone()
        });
        Self {
            streams,
            table: &ZIGGURAT,
            avx512: Lanes::chosen().is_avx512(),
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
            // cost more than the draws. Same numbers as the bulk fills.
            for (o, stream) in out.iter_mut().zip(self.streams.iter_mut()) {
                *o = sample(stream, table);
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if self.avx512 {
                // SAFETY: `Lanes` chose AVX-512 only where the CPU reported AVX2, AVX-512F and
                // AVX-512VL.
                unsafe { fill_avx512(&mut self.streams, table, out) };
                return;
            }
            // The feature check is a cached load, not a CPUID per fill.
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU reported AVX2.
                unsafe { fill_avx2(&mut self.streams, table, out) };
                return;
            }
        }
        fill_scalar(&mut self.streams, table, out);
    }
}

/// [`GaussianNoise::fill`] without AVX2: the streams copied into locals (registers) and drawn
/// from in turn, so that their chains overlap.
fn fill_scalar(streams: &mut [Stream; STREAMS], table: &Ziggurat, out: &mut [f64]) {
    let mut local = streams.clone();
    let mut chunks = out.chunks_exact_mut(STREAMS);
    for chunk in &mut chunks {
        for (o, stream) in chunk.iter_mut().zip(local.iter_mut()) {
            *o = sample(stream, table);
        }
    }
    for (o, stream) in chunks.into_remainder().iter_mut().zip(local.iter_mut()) {
        *o = sample(stream, table);
    }
    *streams = local;
}

/// One draw: the fast path (a point inside its layer's rectangle, 98.5 % of draws, counted over
/// 10⁷) inline, the rest out of line.
#[inline(always)]
fn sample(stream: &mut Stream, table: &Ziggurat) -> f64 {
    let (x, i) = candidate(stream.next(), table);
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
fn edge(stream: &mut Stream, table: &Ziggurat, mut x: f64, mut i: usize) -> f64 {
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
        (x, i) = candidate(stream.next(), table);
    }
}

/// A draw beyond [`TAIL_START`] on the side of `x` (Marsaglia's exponential method).
fn tail(stream: &mut Stream, x: f64) -> f64 {
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

/// Defines `$name`, [`GaussianNoise::fill`] for `out.len() > STREAMS` compiled with `$features`.
macro_rules! four_stream_fill {
    ($(#[$doc:meta])* $name:ident, $features:literal) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(streams: &mut [Stream; STREAMS], table: &Ziggurat, out: &mut [f64]) {
            use std::arch::x86_64::*;
            /// `v` rotated left by `K` bits in each lane (`R = 64 − K`).
            #[inline]
            #[target_feature(enable = "avx2")]
            fn rotl<const K: i32, const R: i32>(v: __m256i) -> __m256i {
                _mm256_or_si256(_mm256_slli_epi64::<K>(v), _mm256_srli_epi64::<R>(v))
            }
            // The state words as the registers hold them, `words[w][k]` word `w` of stream `k`:
            // four stores out and four loads back.
            let spill = |v: [__m256i; 4]| {
                let mut words = [[0u64; STREAMS]; 4];
                for (row, v) in words.iter_mut().zip(v) {
                    // SAFETY: `row` is 32 bytes, as the unaligned store writes.
                    unsafe { _mm256_storeu_si256(row.as_mut_ptr().cast(), v) };
                }
                words
            };
            let reload = |words: [[u64; STREAMS]; 4]| {
                // SAFETY: each row is 32 bytes, as the unaligned load reads.
                words.map(|row| unsafe { _mm256_loadu_si256(row.as_ptr().cast()) })
            };
            let words = std::array::from_fn(|w| streams.each_ref().map(|stream| stream.s[w]));
            let [mut s0, mut s1, mut s2, mut s3] = reload(words);
            let low_byte = _mm256_set1_epi64x(0xff);
            let exponent = _mm256_set1_epi64x(1024 << 52);
            let three = _mm256_set1_pd(3.0);
            let sign = _mm256_set1_pd(-0.0);
            let widths = table.x.as_ptr();
            let mut chunks = out.chunks_exact_mut(STREAMS);
            for chunk in &mut chunks {
                let bits = _mm256_add_epi64(rotl::<23, 41>(_mm256_add_epi64(s0, s3)), s0);
                let t = _mm256_slli_epi64::<17>(s1);
                s2 = _mm256_xor_si256(s2, s0);
                s3 = _mm256_xor_si256(s3, s1);
                s1 = _mm256_xor_si256(s1, s2);
                s0 = _mm256_xor_si256(s0, s3);
                s2 = _mm256_xor_si256(s2, t);
                s3 = rotl::<45, 19>(s3);
                let layer = _mm256_and_si256(bits, low_byte);
                let u = _mm256_sub_pd(
                    _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64::<12>(bits), exponent)),
                    three,
                );
                // Each lane's width and inner width are adjacent: one 16-byte load per lane,
                // then two shuffles. The branch below waits on them; with two gathers a draw
                // took 2.00 ns instead of 1.65.
                let low = _mm256_castsi256_si128(layer);
                let high = _mm256_extracti128_si256::<1>(layer);
                // SAFETY: each layer index is at most 255 and the table holds 257 widths, so each
                // pair `x[i], x[i + 1]` is in it.
                let pair = |i: i64| unsafe { _mm_loadu_pd(widths.add(i as usize)) };
                let (p0, p1) = (
                    pair(_mm_cvtsi128_si64(low)),
                    pair(_mm_extract_epi64::<1>(low)),
                );
                let (p2, p3) = (
                    pair(_mm_cvtsi128_si64(high)),
                    pair(_mm_extract_epi64::<1>(high)),
                );
                // [x0, in0, x2, in2] and [x1, in1, x3, in3], then their even and odd parts.
                let even = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(p0), p2);
                let odd = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(p1), p3);
                let (width, inner) = (_mm256_unpacklo_pd(even, odd), _mm256_unpackhi_pd(even, odd));
                let x = _mm256_mul_pd(u, width);
                let inside = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, x), inner);
                // SAFETY: `chunk` holds four f64, as the unaligned store writes.
                unsafe { _mm256_storeu_pd(chunk.as_mut_ptr(), x) };
                let accepted = _mm256_movemask_pd(inside);
                if accepted != 0b1111 {
                    let mut words = spill([s0, s1, s2, s3]);
                    let mut layers = [0u64; 4];
                    // SAFETY: `layers` is 32 bytes, as the unaligned store writes.
                    unsafe { _mm256_storeu_si256(layers.as_mut_ptr().cast(), layer) };
                    for (k, o) in chunk.iter_mut().enumerate() {
                        if accepted & (1 << k) == 0 {
                            let mut stream = Stream {
                                s: words.map(|row| row[k]),
                            };
                            *o = edge(&mut stream, table, *o, layers[k] as usize);
                            for (row, word) in words.iter_mut().zip(stream.s) {
                                row[k] = word;
                            }
                        }
                    }
                    [s0, s1, s2, s3] = reload(words);
                }
            }
            let words = spill([s0, s1, s2, s3]);
            for (k, stream) in streams.iter_mut().enumerate() {
                stream.s = words.map(|row| row[k]);
            }
            for (o, stream) in chunks.into_remainder().iter_mut().zip(streams.iter_mut()) {
                *o = sample(stream, table);
            }
        }
    };
}

four_stream_fill! {
    /// [`GaussianNoise::fill`] for `out.len() > STREAMS` with the four streams in the four lanes of
    /// AVX2 registers: element `k` from stream `k mod 4`, as the scalar loop. Each group of four
    /// candidates loads its layer widths lane by lane; a lane outside its rectangle (1.5 % of
    /// draws) goes to the scalar [`edge`] with its stream's state as it stands, which is then put
    /// back in the register.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    fill_avx2, "avx2"
}

four_stream_fill! {
    /// [`fill_avx2`] where AVX-512VL rotates each 64-bit lane in one instruction (`vprolq`)
    /// instead of two shifts and an or: the same numbers. On the 1 000-node x-coupled load
    /// (Zen 4) the block median fell from 42.4–43.1 % to 41.3–42.1 % (four alternating rounds).
    ///
    /// # Safety
    /// The CPU must have AVX2, AVX-512F and AVX-512VL.
    fill_avx512, "avx2,avx512f,avx512vl"
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::StandardNormal;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn a_stream_is_rand_xoshiros_generator_seeded_and_jumped_alike() {
        for seed in [0, 1, 42, u64::MAX] {
            let mut ours = Stream::seed_from_u64(seed);
            let mut theirs = Xoshiro256PlusPlus::seed_from_u64(seed);
            for round in 0..3 {
                for _ in 0..50 {
                    assert_eq!(
                        ours.next_u64(),
                        theirs.next_u64(),
                        "seed {seed}, round {round}"
                    );
                }
                assert_eq!(ours.next_u32(), theirs.next_u32());
                ours.jump();
                theirs.jump();
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_vector_fill_draws_the_scalar_fills_numbers() {
        use std::arch::is_x86_feature_detected as has;
        type Fill = unsafe fn(&mut [Stream; STREAMS], &Ziggurat, &mut [f64]);
        let mut fills: Vec<(&str, Fill)> = Vec::new();
        if has!("avx2") {
            fills.push(("avx2", fill_avx2));
            if has!("avx512f") && has!("avx512vl") {
                fills.push(("avx512", fill_avx512));
            }
        }
        for (name, fill) in fills {
            let mut vector = GaussianNoise::new(21);
            let mut scalar = GaussianNoise::new(21);
            // Lengths with and without a remainder, long enough for wedge and tail draws.
            for len in [5, 8, 4_099, 100_000] {
                let (mut a, mut b) = (vec![0.0; len], vec![0.0; len]);
                // SAFETY: the CPU reported the fill's features.
                unsafe { fill(&mut vector.streams, vector.table, &mut a) };
                fill_scalar(&mut scalar.streams, scalar.table, &mut b);
                assert!(
                    a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{name}, length {len}"
                );
            }
            assert_eq!(vector.normal().to_bits(), scalar.normal().to_bits());
        }
    }

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
