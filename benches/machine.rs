//! What this machine can do at best, as floors for the plants' figures (criterion): the
//! core's f64 FMA throughput, and its read bandwidth at the sizes the plants stream — a block
//! that fits L1, the standard problem's 80 kB coupling matrix (L2 on a 32 kB-L1 core), and a
//! 1 000-node capacity run's 16 MB complex delay history (L3).
//!
//! `cargo bench --bench machine`; figures and the floors they set are in benches/README.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

/// Independent FMA chains of four lanes: enough to cover the FMA latency on both pipes
/// (4 cycles × 2 pipes = 8 vectors in flight; 12 leave margin and fit the 16 AVX2 registers).
const CHAINS: usize = 12;

/// `rounds` rounds of `CHAINS` independent four-lane fused multiply-adds (AVX2 + FMA); returns
/// their sum so that nothing is optimised away. Written with intrinsics because the point is
/// the hardware's peak, not what a compiler makes of a loop.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_rounds(rounds: u64, m: f64, c: f64) -> f64 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm256_set1_pd(m), _mm256_set1_pd(c));
    let mut acc = [_mm256_set1_pd(1.0); CHAINS];
    for _ in 0..rounds {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_pd(*a, m, c);
        }
    }
    let mut sum = [0.0; 4];
    for a in acc {
        let mut lanes = [0.0; 4];
        // SAFETY: `lanes` holds four f64, as the unaligned store writes.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), a) };
        for (s, l) in sum.iter_mut().zip(lanes) {
            *s += l;
        }
    }
    sum.iter().sum()
}

/// Read lanes summed side by side: eight chains of AVX2 adds, so the loads, not the adds' latency,
/// bound the loop.
const LANES: usize = 32;

/// The sum of `data`, lane by lane (reads every byte once).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn read_all(data: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    for chunk in data.chunks_exact(LANES) {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum()
}

fn fma_throughput(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        let rounds = 100_000u64;
        let mut group = c.benchmark_group("machine_f64_fma_avx2");
        group.throughput(Throughput::Elements(rounds * 4 * CHAINS as u64));
        group.bench_function("independent_chains", |b| {
            // SAFETY: AVX2 and FMA were detected above.
            b.iter(|| unsafe {
                fma_rounds(
                    black_box(rounds),
                    black_box(0.999_999_999),
                    black_box(1e-10),
                )
            })
        });
        group.finish();
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = c;
}

fn read_bandwidth(c: &mut Criterion) {
    for (name, bytes) in [
        ("16kB_l1", 16 << 10),
        ("80kB_standard_matrix", 80_000),
        ("16MB_capacity_history", 16 << 20),
    ] {
        let data: Vec<f64> = (0..bytes / 8).map(|i| i as f64 * 1e-9).collect();
        let mut group = c.benchmark_group(format!("machine_read_{name}"));
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function("sum", |b| b.iter(|| read_all(black_box(&data))));
        group.finish();
    }
}

criterion_group!(benches, fma_throughput, read_bandwidth);
criterion_main!(benches);
