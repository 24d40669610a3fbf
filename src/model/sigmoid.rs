//! The sigmoids over a whole slice, in loops the compiler vectorises: the logistic
//! `1 / (1 + e^z)` and `tanh`.
//!
//! Owns: [`logistic_in_place`], the shared kernel of the sigmoid models (Wilson–Cowan,
//! Jansen–Rit), and [`tanh_in_place`] (HORN). Calls nothing else in the crate.
//!
//! Why not `f64::exp` or `f64::tanh`: libm's are a call per element, which no loop around them
//! can vectorise; `exp` was a third of Wilson–Cowan's step and `tanh` a quarter of HORN's. SIMD
//! crates with an `exp` (e.g. `wide`) pick their instruction set when they are compiled, so in a
//! portable build they run on 128-bit SSE2 and measured slower than libm. Here the exponential
//! is written in plain branch-free arithmetic (Cody–Waite reduction, a degree-13 Taylor
//! polynomial by Estrin's scheme, the power of two built in the exponent bits), and the loops
//! are compiled once more for AVX2 + FMA and chosen at run time. The polynomial is evaluated
//! with `mul_add`, whose single rounding gives the same bits everywhere (without FMA hardware,
//! libm's exact `fma` is slower).

/// `z[k] ← 1 / (1 + e^{z[k]})` for every `k`.
///
/// Accuracy: within 4 ulp of `1.0 / (1.0 + z.exp())` wherever that is at least 1e-300; for
/// `z > 708` (where the logistic is below 3.4e-308) it returns `1/(1 + e^708)` instead of the
/// exact tiny value. `−∞ → 1`, `+∞ → 0`, NaN stays NaN.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
pub fn logistic_in_place(z: &mut [f64]) {
    for v in z.iter_mut() {
        *v = 1.0 / (1.0 + exp_bounded(*v));
    }
}

/// `z[k] ← tanh z[k]` for every `k`, as `e / (e + 2)` with `e = e^{2z} − 1`.
///
/// Accuracy: within 4 ulp of `f64::tanh` everywhere (the `e^{2z} − 1` keeps its relative
/// accuracy near 0, where `1 − 2/(e^{2z} + 1)` would cancel). `±∞ → ±1`, NaN stays NaN.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
pub fn tanh_in_place(z: &mut [f64]) {
    for v in z.iter_mut() {
        // Past |z| = 354 the clamp inside holds e^{2z} at e^{±708}, where tanh is ±1 already.
        let e = expm1_bounded(2.0 * *v);
        *v = e / (e + 2.0);
    }
}

/// `e^x` for `x` clamped to ±708 (so that the power of two stays a normal number). NaN passes
/// through the clamp and the arithmetic.
#[inline(always)]
fn exp_bounded(x: f64) -> f64 {
    let (t, r) = reduce(x);
    taylor_tail(r).mul_add(r, 1.0) * two_to_k(t)
}

/// `e^x − 1` for `x` clamped to ±708, accurate relative to the result near 0:
/// `2^k (e^r − 1) + (2^k − 1)`, where `2^k − 1` is exact for the `k` that matter (|k| ≤ 53).
#[inline(always)]
fn expm1_bounded(x: f64) -> f64 {
    let (t, r) = reduce(x);
    let two_k = two_to_k(t);
    two_k.mul_add(taylor_tail(r) * r, two_k - 1.0)
}

/// `x = k ln 2 + r` with `|r| ≤ ln2/2`, for `x` clamped to ±708: returns `t` (holding `k` in its
/// low mantissa bits, for [`two_to_k`]) and `r`.
#[inline(always)]
fn reduce(x: f64) -> (f64, f64) {
    const LOG2_E: f64 = std::f64::consts::LOG2_E;
    // ln 2 split so that k · LN2_HI is exact for |k| < 2^11.
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.clamp(-708.0, 708.0);
    let t = x * LOG2_E + SHIFTER;
    let k = t - SHIFTER;
    (t, (x - k * LN2_HI) - k * LN2_LO)
}

/// Adding 1.5 · 2^52 rounds to an integer and leaves it in the low mantissa bits.
const SHIFTER: f64 = 6_755_399_441_055_744.0;

/// `(e^r − 1) / r = Σ_{i=0}^{12} r^i / (i + 1)!`: with one more step, `· r + 1`, the Taylor
/// polynomial of `e^r` to r^13 (truncation < 2e-17 relative on |r| ≤ ln2/2). By Estrin's
/// scheme: pairs of terms, then pairs of pairs by r², r⁴, r⁸, a dependency chain of five
/// multiply-adds instead of Horner's twelve, which the core overlaps across values.
#[inline(always)]
fn taylor_tail(r: f64) -> f64 {
    const A: [f64; 13] = [
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let pair = |k: usize| A[k + 1].mul_add(r, A[k]);
    let s0 = pair(2).mul_add(r2, pair(0));
    let s1 = pair(6).mul_add(r2, pair(4));
    let s2 = pair(10).mul_add(r2, pair(8));
    let u0 = s1.mul_add(r4, s0);
    let u1 = A[12].mul_add(r4, s2);
    u1.mul_add(r8, u0)
}

/// `2^k` from `k`'s integer bits in `t` (see [`reduce`]): `(k + 1023) << 52`.
#[inline(always)]
fn two_to_k(t: f64) -> f64 {
    f64::from_bits(
        t.to_bits()
            .wrapping_sub(SHIFTER.to_bits())
            .wrapping_add(1023)
            << 52,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(z: f64) -> f64 {
        1.0 / (1.0 + z.exp())
    }

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn matches_libm_to_a_few_ulp_over_the_whole_range() {
        let mut z: Vec<f64> = (0..400_001).map(|k| -800.0 + 0.004 * k as f64).collect();
        // Around zero and the reduction's half-way points, where rounding is most delicate.
        z.extend((0..20_001).map(|k| -1e-3 + 1e-7 * k as f64));
        z.extend((-40..=40).map(|k| (k as f64 + 0.5) * std::f64::consts::LN_2));
        let mut got = z.clone();
        logistic_in_place(&mut got);
        let mut worst = 0;
        for (&z, &g) in z.iter().zip(&got) {
            let want = reference(z);
            if want >= 1e-300 {
                worst = worst.max(ulps(g, want));
            } else {
                assert!((g - want).abs() < 3.4e-308, "z = {z}: {g}");
            }
        }
        assert!(worst <= 4, "worst error {worst} ulp");
    }

    #[test]
    fn tanh_matches_libm_to_a_few_ulp_from_tiny_to_saturated() {
        let mut z: Vec<f64> = (0..400_001).map(|k| -40.0 + 2e-4 * k as f64).collect();
        // Tiny and small arguments (tanh z ≈ z), and the reduction's half-way points.
        z.extend((-300..=0).map(|e| 10f64.powi(e / 3)));
        z.extend((0..20_001).map(|k| -1e-3 + 1e-7 * k as f64));
        z.extend((-40..=40).map(|k| (k as f64 + 0.5) * std::f64::consts::LN_2 / 2.0));
        z.extend([-400.0, -354.5, 354.5, 400.0, 1e300]);
        let mut got = z.clone();
        tanh_in_place(&mut got);
        let worst = z
            .iter()
            .zip(&got)
            .map(|(&z, &g)| ulps(g, z.tanh()))
            .max()
            .unwrap();
        assert!(worst <= 4, "worst error {worst} ulp");
    }

    #[test]
    fn tanh_is_odd_saturates_and_propagates_nan() {
        let mut z = [f64::NEG_INFINITY, f64::INFINITY, f64::NAN, 0.0, -0.0];
        tanh_in_place(&mut z);
        assert_eq!(z[..2], [-1.0, 1.0]);
        assert!(z[2].is_nan());
        assert_eq!(z[3], 0.0);
        let mut pos: Vec<f64> = (1..1000).map(|k| 0.013 * k as f64).collect();
        let mut neg: Vec<f64> = pos.iter().map(|v| -v).collect();
        tanh_in_place(&mut pos);
        tanh_in_place(&mut neg);
        for (p, n) in pos.iter().zip(&neg) {
            assert!(p.abs() < 1.0 + f64::EPSILON && (p + n).abs() <= 4.0 * f64::EPSILON * p);
        }
    }

    #[test]
    fn saturates_and_propagates_nan() {
        let mut z = [f64::NEG_INFINITY, f64::INFINITY, f64::NAN, -1e6, 1e6, 0.0];
        logistic_in_place(&mut z);
        assert_eq!(z[0], 1.0);
        assert!(z[1] < 3.4e-308 && z[1] >= 0.0);
        assert!(z[2].is_nan());
        assert_eq!(z[3], 1.0);
        assert!(z[4] < 3.4e-308 && z[4] >= 0.0);
        assert_eq!(z[5], 0.5);
    }
}
