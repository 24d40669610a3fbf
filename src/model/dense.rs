//! Dense coupling: `y = W x` for a row-major `n × n` weight matrix, the inner loop of every
//! densely coupled network (the peers' standard problem is 100 nodes, all coupled).
//!
//! On x86-64 CPUs with AVX2 and FMA (detected once, when the matrix is built) an intrinsics
//! kernel works on 4 rows at a time with 8 independent fused multiply-add chains, each loaded
//! `x` chunk shared by the 4 rows; elsewhere a portable loop keeps 8 partial sums per row, which
//! LLVM vectorises without any reassociation licence. Either way the result is the exact sum up
//! to round-off (partial sums are added in a fixed order), and one machine always takes the same
//! path, so runs stay bit-identical.

/// A dense weight matrix and the kernel chosen for this CPU.
#[derive(Clone, Debug)]
pub struct DenseMatrix {
    n: usize,
    /// `f64`s from one row's start to the next: `n` rounded up to whole cache lines.
    stride: usize,
    /// Row-major, each row starting on a cache line: weight `(i, j)` (source `j` into target
    /// `i`) is `f64` number `i · stride + j`; the padding is zero and never read.
    w: Vec<CacheLine>,
    fused: bool,
}

/// Eight `f64`s on a 64-byte boundary. Rows that start on cache lines keep every 4-lane load of
/// the kernel inside one line; with a 16-byte-aligned heap block, half the loads straddled two
/// lines and the same binary measured 10 or 12.5 ns per node-step depending on where the
/// allocator put the matrix.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct CacheLine([f64; LANES]);

/// Lanes per row (one AVX-512 or two AVX2 registers of f64).
const LANES: usize = 8;
/// Rows per block.
const ROWS: usize = 4;

impl DenseMatrix {
    /// An `n × n` matrix from row-major weights (`w.len() == n · n`).
    pub fn new(n: usize, w: Vec<f64>) -> Self {
        assert_eq!(w.len(), n * n, "a dense matrix needs n² weights");
        let stride = n.next_multiple_of(LANES);
        let mut lines = vec![CacheLine::default(); n * stride / LANES];
        let mut matrix = Self {
            n,
            stride,
            w: Vec::new(),
            fused: fma_available(),
        };
        {
            let flat = flat_mut(&mut lines);
            for (row, weights) in flat.chunks_exact_mut(stride).zip(w.chunks_exact(n)) {
                row[..n].copy_from_slice(weights);
            }
        }
        matrix.w = lines;
        matrix
    }

    /// The weights as one padded row-major `f64` slice.
    fn flat(&self) -> &[f64] {
        // SAFETY: `CacheLine` is `repr(C)` around `[f64; 8]` with size 64, so `k` lines are
        // `8k` consecutive, aligned `f64`s.
        unsafe { std::slice::from_raw_parts(self.w.as_ptr().cast::<f64>(), self.w.len() * LANES) }
    }

    /// Nodes.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes of weights (with the rows' padding).
    pub fn bytes(&self) -> usize {
        self.w.len() * std::mem::size_of::<CacheLine>()
    }

    /// `y[i] = Σ_j w[i, j] x[j]`. `x.len() == y.len() == n`. Never allocates.
    #[inline]
    pub fn apply(&self, x: &[f64], y: &mut [f64]) {
        assert!(x.len() == self.n && y.len() == self.n);
        #[cfg(target_arch = "x86_64")]
        if self.fused {
            // SAFETY: `fused` is true only if the CPU reported AVX2 and FMA at construction.
            unsafe { matvec_avx2_fma(self.flat(), self.n, self.stride, x, y) };
            return;
        }
        matvec_portable(self.flat(), self.n, self.stride, x, y);
    }

    /// The straightforward sum `Σ_j w[i, j] x[j]` in source order: the reference the kernel is
    /// tested against.
    pub fn apply_reference(&self, x: &[f64], y: &mut [f64]) {
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = self.flat()[i * self.stride..i * self.stride + self.n]
                .iter()
                .zip(x)
                .map(|(w, x)| w * x)
                .sum();
        }
    }
}

fn fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// AVX2 + FMA: four rows at a time, two 4-lane accumulators per row (8 independent chains cover
/// the FMA latency), each loaded `x` chunk shared by the four rows.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `w.len() == n · stride`, `stride ≥ n`,
/// `x.len() == y.len() == n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matvec_avx2_fma(w: &[f64], n: usize, stride: usize, x: &[f64], y: &mut [f64]) {
    use std::arch::x86_64::*;
    debug_assert!(w.len() == n * stride && stride >= n && x.len() == n && y.len() == n);
    let body = n / 8 * 8;
    let wp = w.as_ptr();
    let xp = x.as_ptr();
    // Sum of the four lanes of `v`, in a fixed order.
    let hsum = |v: __m256d| -> f64 {
        let lo = _mm256_castpd256_pd128(v);
        let hi = _mm256_extractf128_pd::<1>(v);
        let s = _mm_add_pd(lo, hi);
        _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
    };
    let mut i = 0;
    while i + ROWS <= n {
        let r0 = wp.add(i * stride);
        let (r1, r2, r3) = (r0.add(stride), r0.add(2 * stride), r0.add(3 * stride));
        let mut a = [_mm256_setzero_pd(); 8];
        let mut j = 0;
        while j < body {
            let x0 = _mm256_loadu_pd(xp.add(j));
            let x1 = _mm256_loadu_pd(xp.add(j + 4));
            a[0] = _mm256_fmadd_pd(_mm256_loadu_pd(r0.add(j)), x0, a[0]);
            a[1] = _mm256_fmadd_pd(_mm256_loadu_pd(r0.add(j + 4)), x1, a[1]);
            a[2] = _mm256_fmadd_pd(_mm256_loadu_pd(r1.add(j)), x0, a[2]);
            a[3] = _mm256_fmadd_pd(_mm256_loadu_pd(r1.add(j + 4)), x1, a[3]);
            a[4] = _mm256_fmadd_pd(_mm256_loadu_pd(r2.add(j)), x0, a[4]);
            a[5] = _mm256_fmadd_pd(_mm256_loadu_pd(r2.add(j + 4)), x1, a[5]);
            a[6] = _mm256_fmadd_pd(_mm256_loadu_pd(r3.add(j)), x0, a[6]);
            a[7] = _mm256_fmadd_pd(_mm256_loadu_pd(r3.add(j + 4)), x1, a[7]);
            j += 8;
        }
        for (r, row) in [r0, r1, r2, r3].into_iter().enumerate() {
            let mut s = hsum(_mm256_add_pd(a[2 * r], a[2 * r + 1]));
            for k in body..n {
                s = (*row.add(k)).mul_add(*xp.add(k), s);
            }
            *y.get_unchecked_mut(i + r) = s;
        }
        i += ROWS;
    }
    while i < n {
        let row = wp.add(i * stride);
        let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut j = 0;
        while j < body {
            a0 = _mm256_fmadd_pd(_mm256_loadu_pd(row.add(j)), _mm256_loadu_pd(xp.add(j)), a0);
            a1 = _mm256_fmadd_pd(
                _mm256_loadu_pd(row.add(j + 4)),
                _mm256_loadu_pd(xp.add(j + 4)),
                a1,
            );
            j += 8;
        }
        let mut s = hsum(_mm256_add_pd(a0, a1));
        for k in body..n {
            s = (*row.add(k)).mul_add(*xp.add(k), s);
        }
        *y.get_unchecked_mut(i) = s;
        i += 1;
    }
}

/// Portable: eight partial sums per row, added in a fixed order.
fn matvec_portable(w: &[f64], n: usize, stride: usize, x: &[f64], y: &mut [f64]) {
    let body = n / LANES * LANES;
    for (i, yi) in y.iter_mut().enumerate() {
        let row = &w[i * stride..i * stride + n];
        let mut acc = [0.0; LANES];
        for (ws, xs) in row[..body]
            .chunks_exact(LANES)
            .zip(x[..body].chunks_exact(LANES))
        {
            for k in 0..LANES {
                acc[k] += ws[k] * xs[k];
            }
        }
        let mut s =
            ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (wv, xv) in row[body..].iter().zip(&x[body..]) {
            s += wv * xv;
        }
        *yi = s;
    }
}

/// [`DenseMatrix::flat`], mutable (for filling at construction).
fn flat_mut(lines: &mut [CacheLine]) -> &mut [f64] {
    // SAFETY: as for `DenseMatrix::flat`; the borrow is exclusive and covers the same memory.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<f64>(), lines.len() * LANES) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

    #[test]
    fn kernel_equals_the_straightforward_sum_to_round_off_for_every_shape() {
        let mut seed = 7;
        for n in [1, 3, 4, 7, 8, 9, 15, 16, 33, 100, 129] {
            let w: Vec<f64> = (0..n * n).map(|_| lcg(&mut seed)).collect();
            let x: Vec<f64> = (0..n).map(|_| lcg(&mut seed)).collect();
            let m = DenseMatrix::new(n, w);
            let (mut fast, mut slow) = (vec![0.0; n], vec![0.0; n]);
            m.apply(&x, &mut fast);
            m.apply_reference(&x, &mut slow);
            // Each sum of n products of magnitude ≤ ¼ is exact to ≈ n · 2⁻⁵³ · ¼.
            let bound = (n as f64) * 2f64.powi(-52);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() <= bound, "n = {n}: {a} vs {b}");
            }
            let mut portable = vec![0.0; n];
            matvec_portable(m.flat(), n, m.stride, &x, &mut portable);
            for (a, b) in portable.iter().zip(&slow) {
                assert!((a - b).abs() <= bound, "n = {n} portable: {a} vs {b}");
            }
        }
    }
}
