//! Dense coupling: `y = W x` for an `n × n` weight matrix, the inner loop of every densely
//! coupled network (the peers' standard problem is 100 nodes, all coupled).
//!
//! The weights are stored in panels of eight rows, column by column: for each source `j`, the
//! eight targets' weights fill one cache line. A panel's eight sums then live in one vector
//! register, grown by `weights × broadcast x_j` one column at a time, so no sum is ever reduced
//! across lanes and the matrix is read once, front to back. Several panels run side by side,
//! sharing each broadcast, so that enough independent chains cover the multiply-add latency.
//!
//! Every row's sum is one chain of fused multiply-adds in source order,
//! `y_i = fma(w_{i,n−1}, x_{n−1}, … fma(w_{i0}, x_0, 0))`. The AVX-512 and AVX2 kernels (picked
//! once, from what the CPU reports) and the portable loop all compute exactly that, so the
//! result is the same bit for bit on every machine, and equals [`DenseMatrix::apply_reference`].

/// A dense weight matrix and the kernel chosen for this CPU.
#[derive(Clone, Debug)]
pub struct DenseMatrix {
    n: usize,
    /// Panel `p` (rows `8p .. 8p + 8`) is lines `p · n .. (p + 1) · n`; line `p · n + j` holds
    /// weight `(8p + r, j)` (source `j` into target `8p + r`) in lane `r`. Rows past `n` in the
    /// last panel are zero.
    w: Vec<CacheLine>,
    kernel: Kernel,
}

/// Eight `f64`s on a 64-byte boundary: one column of one panel, so every vector load of the
/// kernels stays inside one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct CacheLine([f64; PANEL]);

/// Rows per panel (one AVX-512 register of `f64`).
const PANEL: usize = 8;

/// Which mat-vec kernel this CPU runs (chosen once, at construction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2Fma;
            }
        }
        Kernel::Portable
    }
}

impl DenseMatrix {
    /// An `n × n` matrix from row-major weights (`w.len() == n · n`).
    pub fn new(n: usize, w: Vec<f64>) -> Self {
        assert_eq!(w.len(), n * n, "a dense matrix needs n² weights");
        let mut lines = vec![CacheLine::default(); n.div_ceil(PANEL) * n];
        for (i, row) in w.chunks_exact(n.max(1)).enumerate() {
            for (j, &wij) in row.iter().enumerate() {
                lines[i / PANEL * n + j].0[i % PANEL] = wij;
            }
        }
        Self {
            n,
            w: lines,
            kernel: Kernel::detect(),
        }
    }

    /// Nodes.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes of weights (with the last panel's padding).
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&self.w[..])
    }

    /// Weight `(i, j)`: source `j` into target `i`.
    fn weight(&self, i: usize, j: usize) -> f64 {
        self.w[i / PANEL * self.n + j].0[i % PANEL]
    }

    /// `y[i] = Σ_j w[i, j] x[j]`. `x.len() == y.len() == n`. Never allocates.
    #[inline]
    pub fn apply(&self, x: &[f64], y: &mut [f64]) {
        assert!(x.len() == self.n && y.len() == self.n);
        match self.kernel {
            // SAFETY (both): the kernel was chosen from the features this CPU reported at
            // construction, and the lengths were checked above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { matvec_avx512(&self.w, x, y) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => unsafe { matvec_avx2_fma(&self.w, x, y) },
            Kernel::Portable => matvec_portable(&self.w, x, y),
        }
    }

    /// The straightforward sum `Σ_j w[i, j] x[j]`, one fused multiply-add per source in source
    /// order: the reference every kernel equals bit for bit (test).
    pub fn apply_reference(&self, x: &[f64], y: &mut [f64]) {
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = (0..self.n).fold(0.0, |s, j| self.weight(i, j).mul_add(x[j], s));
        }
    }
}

/// Writes a panel's eight sums to the rows of `y` that exist (the last panel may be partial).
#[inline(always)]
fn store_panel(sums: &[f64; PANEL], y: &mut [f64], panel: usize) {
    let rows = &mut y[panel * PANEL..];
    let k = rows.len().min(PANEL);
    rows[..k].copy_from_slice(&sums[..k]);
}

/// Portable: each panel's eight chains side by side (LLVM keeps them in vector registers).
fn matvec_portable(w: &[CacheLine], x: &[f64], y: &mut [f64]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    for (p, panel) in w.chunks_exact(n).enumerate() {
        let mut acc = [0.0; PANEL];
        for (line, &xj) in panel.iter().zip(x) {
            for (a, w) in acc.iter_mut().zip(&line.0) {
                *a = w.mul_add(xj, *a);
            }
        }
        store_panel(&acc, y, p);
    }
}

/// Panels per group when `panels` are split into the fewest groups of at most `most`, of
/// near-equal size (13 panels in groups of at most 8: 7 + 6).
#[cfg(target_arch = "x86_64")]
fn group_size(panels: usize, most: usize) -> usize {
    panels.div_ceil(panels.div_ceil(most).max(1))
}

/// Panels the AVX-512 kernel runs side by side: eight chains cover the FMA latency (4 cycles,
/// two per cycle).
#[cfg(target_arch = "x86_64")]
const GROUP_512: usize = 8;

/// AVX-512: up to eight panels at a time, one 8-lane accumulator each, every broadcast `x_j`
/// shared by the group. The panels are split into groups of near-equal size (13 as 7 + 6, not
/// 8 + 5: 8 % faster on the standard problem); a smaller group aliases its missing panels to its
/// last one (their sums are dropped; the repeated loads hit L1). Same arithmetic as
/// [`matvec_portable`].
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() == ⌈n / 8⌉ · n` for `n = x.len() == y.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn matvec_avx512(w: &[CacheLine], x: &[f64], y: &mut [f64]) {
    use std::arch::x86_64::*;
    let n = x.len();
    debug_assert!(w.len() == n.div_ceil(PANEL) * n && y.len() == n);
    let panels = n.div_ceil(PANEL);
    let wp = w.as_ptr().cast::<f64>();
    let per = group_size(panels, GROUP_512);
    let mut first = 0;
    while first < panels {
        let count = (panels - first).min(per);
        let base: [*const f64; GROUP_512] =
            std::array::from_fn(|g| wp.add((first + g.min(count - 1)) * n * PANEL));
        let mut acc = [_mm512_setzero_pd(); GROUP_512];
        for j in 0..n {
            // Each group streams its panels from L2 (the standard problem's 100 × 100 matrix
            // is 83 kB): prefetching 16 columns ahead brings them ~6 % sooner than the
            // hardware alone. One prefetch per 128-byte pair of lines, which L2 fetches
            // together.
            let xj = _mm512_set1_pd(*x.get_unchecked(j));
            for (a, b) in acc.iter_mut().zip(base) {
                *a = _mm512_fmadd_pd(_mm512_load_pd(b.add(j * PANEL)), xj, *a);
            }
        }
        for (g, a) in acc.iter().take(count).enumerate() {
            let mut sums = [0.0; PANEL];
            _mm512_storeu_pd(sums.as_mut_ptr(), *a);
            store_panel(&sums, y, first + g);
        }
        first += count;
    }
}

/// Panels the AVX2 kernel runs side by side (two 4-lane halves each: eight chains).
#[cfg(target_arch = "x86_64")]
const GROUP_256: usize = 4;

/// AVX2: up to four panels at a time as two 4-lane halves each, every broadcast `x_j` shared by
/// the group; groups as in [`matvec_avx512`]. Same arithmetic as
/// [`matvec_portable`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; `w.len() == ⌈n / 8⌉ · n` for `n = x.len() == y.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matvec_avx2_fma(w: &[CacheLine], x: &[f64], y: &mut [f64]) {
    use std::arch::x86_64::*;
    let n = x.len();
    debug_assert!(w.len() == n.div_ceil(PANEL) * n && y.len() == n);
    let panels = n.div_ceil(PANEL);
    let wp = w.as_ptr().cast::<f64>();
    let per = group_size(panels, GROUP_256);
    let mut first = 0;
    while first < panels {
        let count = (panels - first).min(per);
        let base: [*const f64; GROUP_256] =
            std::array::from_fn(|g| wp.add((first + g.min(count - 1)) * n * PANEL));
        let mut lo = [_mm256_setzero_pd(); GROUP_256];
        let mut hi = [_mm256_setzero_pd(); GROUP_256];
        for j in 0..n {
            let xj = _mm256_set1_pd(*x.get_unchecked(j));
            for g in 0..GROUP_256 {
                let line = base[g].add(j * PANEL);
                lo[g] = _mm256_fmadd_pd(_mm256_load_pd(line), xj, lo[g]);
                hi[g] = _mm256_fmadd_pd(_mm256_load_pd(line.add(4)), xj, hi[g]);
            }
        }
        for g in 0..count {
            let mut sums = [0.0; PANEL];
            _mm256_storeu_pd(sums.as_mut_ptr(), lo[g]);
            _mm256_storeu_pd(sums.as_mut_ptr().add(4), hi[g]);
            store_panel(&sums, y, first + g);
        }
        first += count;
    }
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

    const SHAPES: [usize; 12] = [1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 100, 129];

    fn random(n: usize, seed: &mut u64) -> (DenseMatrix, Vec<f64>) {
        let w: Vec<f64> = (0..n * n).map(|_| lcg(seed)).collect();
        let x: Vec<f64> = (0..n).map(|_| lcg(seed)).collect();
        (DenseMatrix::new(n, w), x)
    }

    #[test]
    fn kernel_equals_the_sequential_fused_sum_bit_for_bit_and_the_plain_sum_to_round_off() {
        let mut seed = 7;
        for n in SHAPES {
            let (m, x) = random(n, &mut seed);
            let (mut fast, mut reference) = (vec![0.0; n], vec![0.0; n]);
            m.apply(&x, &mut fast);
            m.apply_reference(&x, &mut reference);
            // Each sum of n products of magnitude ≤ ¼ is exact to ≈ n · 2⁻⁵³ · ¼.
            let bound = (n as f64) * 2f64.powi(-52);
            for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "n = {n}, row {i}: {a} vs {b}");
                let plain: f64 = (0..n).map(|j| m.weight(i, j) * x[j]).sum();
                assert!(
                    (a - plain).abs() <= bound,
                    "n = {n}, row {i}: {a} vs {plain}"
                );
            }
        }
    }

    #[test]
    fn every_kernel_this_cpu_has_gives_the_portable_bits() {
        let mut seed = 11;
        for n in SHAPES {
            let (m, x) = random(n, &mut seed);
            let mut portable = vec![0.0; n];
            matvec_portable(&m.w, &x, &mut portable);
            let mut kernels: Vec<(&str, Vec<f64>)> = Vec::new();
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    let mut y = vec![0.0; n];
                    // SAFETY: the CPU reported AVX-512F; the shapes come from `new`.
                    unsafe { matvec_avx512(&m.w, &x, &mut y) };
                    kernels.push(("avx512", y));
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    let mut y = vec![0.0; n];
                    // SAFETY: the CPU reported AVX2 and FMA; the shapes come from `new`.
                    unsafe { matvec_avx2_fma(&m.w, &x, &mut y) };
                    kernels.push(("avx2", y));
                }
            }
            for (name, y) in kernels {
                for (i, (a, b)) in y.iter().zip(&portable).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{name}, n = {n}, row {i}");
                }
            }
        }
    }

    #[test]
    fn zero_nodes_is_an_empty_product() {
        let m = DenseMatrix::new(0, Vec::new());
        m.apply(&[], &mut []);
    }
}
