//! Dense coupling: `y = W x` for an `n × n` weight matrix, the inner loop of every densely
//! coupled network (the peers' standard problem is 100 nodes, all coupled).
//!
//! The weights are stored in panels of eight rows, column by column: for each source `j`, the
//! eight targets' weights fill one cache line. A panel's eight sums then live in one vector
//! register, grown by `weights × broadcast x_j` one column at a time, so no sum is ever reduced
//! across lanes and the matrix is read once per product. Several panels run side by side,
//! sharing each broadcast, so that enough independent chains cover the multiply-add latency;
//! successive products visit the groups of panels in alternate directions, so each starts on
//! weights the previous one left in L1.
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
    /// `(first panel, panels)` of each group the kernel runs side by side, first to last (see
    /// [`groups`]).
    groups: Vec<(usize, usize)>,
    /// Run the panel groups last to first on the next product (flips every call).
    backward: bool,
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

    /// How the kernel groups the panels on this CPU.
    fn grouping(self) -> Grouping {
        match self {
            // One panel at a time; the groups only set the order.
            Kernel::Portable => Grouping {
                most: 1,
                l1_reuse_bytes: L1_REUSE_BYTES,
            },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => Grouping {
                most: GROUP_256,
                l1_reuse_bytes: L1_REUSE_BYTES,
            },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if crate::lanes::amd() => GROUPING_512_AMD,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => Grouping {
                most: GROUP_512,
                l1_reuse_bytes: L1_REUSE_BYTES,
            },
        }
    }
}

/// How many panels a kernel runs side by side, and how many bytes of weights the end groups may
/// hold (see [`groups`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grouping {
    /// Most panels in a group.
    most: usize,
    /// Most bytes in each end group.
    l1_reuse_bytes: usize,
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
        let kernel = Kernel::detect();
        Self {
            n,
            w: lines,
            kernel,
            groups: groups(n.div_ceil(PANEL), n, kernel.grouping()).collect(),
            backward: false,
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
    pub fn apply(&mut self, x: &[f64], y: &mut [f64]) {
        assert_eq!(x.len(), self.n);
        self.apply_strided::<1>(x, y);
    }

    /// `y[i] = Σ_j w[i, j] x[S·j]`: the product with every `S`-th value of `x`, e.g. the `x`
    /// parts of interleaved `(x, y)` pairs with `S = 2`, read in place instead of gathered
    /// into a vector first (the kernels broadcast one source at a time, so the stride costs
    /// nothing). `y.len() == n`, `x.len() > S·(n − 1)`. Same bits as [`DenseMatrix::apply`] on
    /// the gathered values. Never allocates.
    ///
    /// Successive products run the panel groups in alternate directions: a matrix larger than
    /// L1 (the standard problem's is 83 kB) then starts each product on the group the previous
    /// one ended with, still in L1, instead of on the one LRU evicted first. Rows are
    /// independent, so the result does not depend on the direction.
    #[inline]
    pub fn apply_strided<const S: usize>(&mut self, x: &[f64], y: &mut [f64]) {
        assert!(y.len() == self.n && (self.n == 0 || x.len() > S * (self.n - 1)));
        let groups = Groups {
            all: &self.groups,
            backward: self.backward,
        };
        self.backward = !self.backward;
        match self.kernel {
            // SAFETY (both): the kernel was chosen from the features this CPU reported at
            // construction, its groups were made for it, and the lengths were checked above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { matvec_avx512::<S>(&self.w, groups, x, y) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => unsafe { matvec_avx2_fma::<S>(&self.w, groups, x, y) },
            Kernel::Portable => matvec_portable::<S>(&self.w, x, y),
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
    // A whole panel as one fixed-size copy (vector stores): copying a length known only at run
    // time went through a `memmove` call per panel, 3 % of the standard problem's step.
    match rows.first_chunk_mut::<PANEL>() {
        Some(whole) => *whole = *sums,
        None => {
            let k = rows.len();
            rows.copy_from_slice(&sums[..k]);
        }
    }
}

/// A matrix's groups in the order one product runs them.
#[derive(Clone, Copy)]
struct Groups<'a> {
    /// First to last.
    all: &'a [(usize, usize)],
    /// Run them last to first.
    backward: bool,
}

impl<'a> Groups<'a> {
    /// `(first panel, panels)` of each group, in running order.
    fn iter(self) -> impl Iterator<Item = (usize, usize)> + 'a {
        let len = self.all.len();
        (0..len).map(move |k| self.all[if self.backward { len - 1 - k } else { k }])
    }
}

/// Portable: each panel's eight chains side by side (LLVM keeps them in vector registers).
fn matvec_portable<const S: usize>(w: &[CacheLine], x: &[f64], y: &mut [f64]) {
    let n = y.len();
    if n == 0 {
        return;
    }
    for (p, panel) in w.chunks_exact(n).enumerate() {
        let mut acc = [0.0; PANEL];
        for (line, &xj) in panel.iter().zip(x.iter().step_by(S)) {
            for (a, w) in acc.iter_mut().zip(&line.0) {
                *a = w.mul_add(xj, *a);
            }
        }
        store_panel(&acc, y, p);
    }
}

/// Bytes of weights a product leaves in L1 for the next one to start on: the two end groups
/// are at most this big. About two thirds of a 48 kB L1, leaving room for the state the
/// dynamics touch between products. On the standard problem (n = 100, 13 panels of 6.4 kB) the
/// resulting 5 + 3 + 5 panels in alternate directions made Euler, Heun and RK4 11 % faster than
/// 7 + 6 always forward on an Intel Xeon; 6 + 1 + 6 (40 kB ends) and 3 + 7 + 3 (24 kB) gained
/// 6 %.
const L1_REUSE_BYTES: usize = 32 << 10;

/// The AVX-512 kernel on AMD (Zen 4, 32 kB L1). Each 512-bit multiply-add runs as two halves,
/// one per cycle, so four chains cover its 4-cycle latency; and an end group of five panels
/// (32 kB on the standard problem) is the whole L1. Four panels at most, ends of at most 26 kB
/// (4 + 3 + 2 + 4 on the standard problem) took Euler from 8.4–8.7 to 7.8–7.9 ns per
/// node-step and Heun from 17.7–18.1 to 16.5–16.7 (2026-11-25, alternating runs). With eight
/// panels at most, ends of 16 or 24 kB (2 + 5 + 4 + 2, 3 + 7 + 3) gained nothing and ends of
/// 26 kB (4 + 5 + 4) about half as much.
#[cfg(target_arch = "x86_64")]
const GROUPING_512_AMD: Grouping = Grouping {
    most: 4,
    l1_reuse_bytes: 26 << 10,
};

/// `(first panel, panels)` of each group of at most `grouping.most` panels of `n` columns,
/// first to last. The first and last groups hold at most `grouping.l1_reuse_bytes` each, so
/// that products run in alternate directions start on a group still in L1; the panels between
/// them are split into the fewest groups of at most `most`, of near-equal size.
fn groups(panels: usize, n: usize, grouping: Grouping) -> impl Iterator<Item = (usize, usize)> {
    let most = grouping.most;
    let end = (grouping.l1_reuse_bytes / (n * PANEL * 8).max(1)).clamp(1, most);
    // Group sizes, front to back: `end`, the middle ones (`per` each, the last `rest`), `end`;
    // or, when that leaves no middle, the fewest near-equal groups of at most `most`.
    let (end, middle, per) = if panels <= 2 * end {
        let per = panels.div_ceil(panels.div_ceil(most).max(1)).max(1);
        (0, panels, per)
    } else {
        let middle = panels - 2 * end;
        (end, middle, middle.div_ceil(middle.div_ceil(most)))
    };
    let inner = middle.div_ceil(per);
    let count = inner + if end > 0 { 2 } else { 0 };
    (0..count).map(move |k| {
        if end > 0 && k == 0 {
            (0, end)
        } else if end > 0 && k == count - 1 {
            (panels - end, end)
        } else {
            let i = k - usize::from(end > 0);
            let first = end + i * per;
            (first, (end + middle - first).min(per))
        }
    })
}

/// Most panels the AVX-512 kernel runs side by side, but on AMD ([`GROUPING_512_AMD`]): eight
/// chains cover the FMA latency (4 cycles, two per cycle).
#[cfg(target_arch = "x86_64")]
const GROUP_512: usize = 8;

/// AVX-512: the panels in `groups`, each group's panels side by side, one 8-lane accumulator
/// each, every broadcast `x_j` shared by the group. Same arithmetic as [`matvec_portable`].
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() == ⌈n / 8⌉ · n` and `x.len() > S · (n − 1)` for
/// `n = y.len()`; the groups cover the panels, each of at most 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn matvec_avx512<const S: usize>(w: &[CacheLine], groups: Groups, x: &[f64], y: &mut [f64]) {
    let n = y.len();
    debug_assert!(w.len() == n.div_ceil(PANEL) * n && y.len() == n);
    for (first, count) in groups.iter() {
        let group = &w[first * n..(first + count) * n];
        match count {
            1 => panel_group_avx512::<1, S>(group, x, y, first),
            2 => panel_group_avx512::<2, S>(group, x, y, first),
            3 => panel_group_avx512::<3, S>(group, x, y, first),
            4 => panel_group_avx512::<4, S>(group, x, y, first),
            5 => panel_group_avx512::<5, S>(group, x, y, first),
            6 => panel_group_avx512::<6, S>(group, x, y, first),
            7 => panel_group_avx512::<7, S>(group, x, y, first),
            _ => panel_group_avx512::<8, S>(group, x, y, first),
        }
    }
}

/// `G` consecutive panels starting at panel `first` (`w` holds exactly their `G · n` lines).
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() == G · n` and `x.len() > S · (n − 1)` for
/// `n = y.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn panel_group_avx512<const G: usize, const S: usize>(
    w: &[CacheLine],
    x: &[f64],
    y: &mut [f64],
    first: usize,
) {
    use std::arch::x86_64::*;
    let n = y.len();
    debug_assert_eq!(w.len(), G * n);
    let wp = w.as_ptr().cast::<f64>();
    let base: [*const f64; G] = std::array::from_fn(|g| wp.add(g * n * PANEL));
    let mut acc = [_mm512_setzero_pd(); G];
    for j in 0..n {
        let xj = _mm512_set1_pd(*x.get_unchecked(j * S));
        for (a, b) in acc.iter_mut().zip(base) {
            *a = _mm512_fmadd_pd(_mm512_load_pd(b.add(j * PANEL)), xj, *a);
        }
    }
    for (g, a) in acc.iter().enumerate() {
        let mut sums = [0.0; PANEL];
        _mm512_storeu_pd(sums.as_mut_ptr(), *a);
        store_panel(&sums, y, first + g);
    }
}

/// Most panels the AVX2 kernel runs side by side (two 4-lane halves each: eight chains).
#[cfg(target_arch = "x86_64")]
const GROUP_256: usize = 4;

/// AVX2: groups as in [`matvec_avx512`], each panel as two 4-lane halves. Same arithmetic as
/// [`matvec_portable`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; `w.len() == ⌈n / 8⌉ · n` and `x.len() > S · (n − 1)`
/// for `n = y.len()`; the groups cover the panels, each of at most 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matvec_avx2_fma<const S: usize>(
    w: &[CacheLine],
    groups: Groups,
    x: &[f64],
    y: &mut [f64],
) {
    let n = y.len();
    debug_assert!(w.len() == n.div_ceil(PANEL) * n && y.len() == n);
    for (first, count) in groups.iter() {
        let group = &w[first * n..(first + count) * n];
        match count {
            1 => panel_group_avx2::<1, S>(group, x, y, first),
            2 => panel_group_avx2::<2, S>(group, x, y, first),
            3 => panel_group_avx2::<3, S>(group, x, y, first),
            _ => panel_group_avx2::<4, S>(group, x, y, first),
        }
    }
}

/// `G` consecutive panels starting at panel `first`, as in [`panel_group_avx512`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; `w.len() == G · n` and `x.len() > S · (n − 1)` for
/// `n = y.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn panel_group_avx2<const G: usize, const S: usize>(
    w: &[CacheLine],
    x: &[f64],
    y: &mut [f64],
    first: usize,
) {
    use std::arch::x86_64::*;
    let n = y.len();
    debug_assert_eq!(w.len(), G * n);
    let wp = w.as_ptr().cast::<f64>();
    let mut lo = [_mm256_setzero_pd(); G];
    let mut hi = [_mm256_setzero_pd(); G];
    for j in 0..n {
        let xj = _mm256_set1_pd(*x.get_unchecked(j * S));
        for g in 0..G {
            let line = wp.add((g * n + j) * PANEL);
            lo[g] = _mm256_fmadd_pd(_mm256_load_pd(line), xj, lo[g]);
            hi[g] = _mm256_fmadd_pd(_mm256_load_pd(line.add(4)), xj, hi[g]);
        }
    }
    for g in 0..G {
        let mut sums = [0.0; PANEL];
        _mm256_storeu_pd(sums.as_mut_ptr(), lo[g]);
        _mm256_storeu_pd(sums.as_mut_ptr().add(4), hi[g]);
        store_panel(&sums, y, first + g);
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
            let (mut m, x) = random(n, &mut seed);
            let (mut forward, mut backward, mut reference) =
                (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            m.apply(&x, &mut forward);
            m.apply(&x, &mut backward);
            m.apply_reference(&x, &mut reference);
            // Each sum of n products of magnitude ≤ ¼ is exact to ≈ n · 2⁻⁵³ · ¼.
            let bound = (n as f64) * 2f64.powi(-52);
            let both = forward.iter().zip(&backward);
            for (i, ((a, a_back), b)) in both.zip(&reference).enumerate() {
                assert_eq!(a.to_bits(), a_back.to_bits(), "n = {n}, row {i}: direction");
                assert_eq!(a.to_bits(), b.to_bits(), "n = {n}, row {i}: {a} vs {b}");
                let plain: f64 = (0..n).map(|j| m.weight(i, j) * x[j]).sum();
                assert!(
                    (a - plain).abs() <= bound,
                    "n = {n}, row {i}: {a} vs {plain}"
                );
            }
        }
    }

    /// `x` as the first parts of interleaved pairs, the second parts NaN (a kernel that read
    /// one would turn its row NaN), without the last pair's second part.
    fn interleaved(x: &[f64]) -> Vec<f64> {
        let mut xy: Vec<f64> = x.iter().flat_map(|&v| [v, f64::NAN]).collect();
        xy.pop();
        xy
    }

    #[test]
    fn every_kernel_this_cpu_has_gives_the_portable_bits() {
        let mut seed = 11;
        for n in SHAPES {
            let (m, x) = random(n, &mut seed);
            let xy = interleaved(&x);
            let mut portable = vec![0.0; n];
            matvec_portable::<1>(&m.w, &x, &mut portable);
            let mut kernels: Vec<(&str, Vec<f64>)> = Vec::new();
            let mut y = vec![0.0; n];
            matvec_portable::<2>(&m.w, &xy, &mut y);
            kernels.push(("portable, stride 2", y));
            #[cfg(target_arch = "x86_64")]
            {
                let panels = n.div_ceil(PANEL);
                // Each kernel on its own groups and on the other's: the groups only set the order.
                let groupings = [
                    GROUPING_512_AMD,
                    Kernel::Avx512.grouping(),
                    Kernel::Avx2Fma.grouping(),
                ];
                for grouping in groupings {
                    let all: Vec<_> = groups(panels, n, grouping).collect();
                    for backward in [false, true] {
                        let groups = Groups {
                            all: &all,
                            backward,
                        };
                        if std::arch::is_x86_feature_detected!("avx512f") {
                            let (mut y, mut y2) = (vec![0.0; n], vec![0.0; n]);
                            // SAFETY: the CPU reported AVX-512F; the shapes come from `new`,
                            // the groups from `groups` (at most 8 panels).
                            unsafe { matvec_avx512::<1>(&m.w, groups, &x, &mut y) };
                            // SAFETY: as above; `xy.len() == 2n − 1`.
                            unsafe { matvec_avx512::<2>(&m.w, groups, &xy, &mut y2) };
                            kernels.push(("avx512", y));
                            kernels.push(("avx512, stride 2", y2));
                        }
                        let avx2 = std::arch::is_x86_feature_detected!("avx2")
                            && std::arch::is_x86_feature_detected!("fma");
                        if avx2 && grouping.most <= GROUP_256 {
                            let (mut y, mut y2) = (vec![0.0; n], vec![0.0; n]);
                            // SAFETY: the CPU reported AVX2 and FMA; the shapes come from
                            // `new`, the groups from `groups` (at most 4 panels).
                            unsafe { matvec_avx2_fma::<1>(&m.w, groups, &x, &mut y) };
                            // SAFETY: as above; `xy.len() == 2n − 1`.
                            unsafe { matvec_avx2_fma::<2>(&m.w, groups, &xy, &mut y2) };
                            kernels.push(("avx2", y));
                            kernels.push(("avx2, stride 2", y2));
                        }
                    }
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
    fn a_strided_product_reads_every_other_value_in_place() {
        let mut seed = 5;
        let (mut m, x) = random(100, &mut seed);
        let (mut gathered, mut strided) = (vec![0.0; 100], vec![0.0; 100]);
        m.apply(&x, &mut gathered);
        m.apply_strided::<2>(&interleaved(&x), &mut strided);
        let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
        // The second product also ran the other direction.
        assert_eq!(bits(&gathered), bits(&strided));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn groups_cover_every_panel_once_in_order_and_the_ends_fit_the_l1_share() {
        let groupings = [
            Kernel::Portable.grouping(),
            Kernel::Avx2Fma.grouping(),
            Kernel::Avx512.grouping(),
            GROUPING_512_AMD,
        ];
        for n in [1usize, 8, 9, 40, 64, 100, 129, 257, 1000, 4100] {
            let panels = n.div_ceil(PANEL);
            for grouping in groupings {
                let all: Vec<_> = groups(panels, n, grouping).collect();
                let backward: Vec<_> = Groups {
                    all: &all,
                    backward: true,
                }
                .iter()
                .collect();
                assert!(
                    backward.iter().rev().eq(&all),
                    "n = {n}: backward is reversed"
                );
                let mut next = 0;
                for &(first, count) in &all {
                    assert_eq!(first, next, "n = {n}: groups are contiguous");
                    assert!(
                        (1..=grouping.most).contains(&count),
                        "n = {n}: {count} panels"
                    );
                    next += count;
                }
                assert_eq!(next, panels, "n = {n}: every panel once");
                if all.len() > 2 {
                    for (_, count) in [all[0], all[all.len() - 1]] {
                        let bytes = count * n * PANEL * 8;
                        let fits = bytes <= grouping.l1_reuse_bytes;
                        assert!(count == 1 || fits, "n = {n}: {bytes} B");
                    }
                }
            }
        }
        // The standard problem: 13 panels as 5 + 3 + 5 at eight panels at most, as 4 + 3 + 2 + 4
        // at four at most with 26 kB ends.
        let sizes = |grouping| groups(13, 100, grouping).map(|g| g.1).collect::<Vec<_>>();
        let eight = Grouping {
            most: GROUP_512,
            l1_reuse_bytes: L1_REUSE_BYTES,
        };
        assert_eq!(sizes(eight), [5, 3, 5]);
        assert_eq!(sizes(GROUPING_512_AMD), [4, 3, 2, 4]);
    }

    #[test]
    fn zero_nodes_is_an_empty_product() {
        let mut m = DenseMatrix::new(0, Vec::new());
        m.apply(&[], &mut []);
    }
}
