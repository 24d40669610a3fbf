//! The sigmoids over a whole slice, in loops the compiler vectorises: the logistic
//! `1 / (1 + e^z)` and `tanh`.
//!
//! Owns: [`logistic_in_place`], the shared kernel of the sigmoid models (Wilson–Cowan,
//! Jansen–Rit, the rate model), and [`tanh_in_place`] (HORN, Baier's grid). Calls nothing else
//! in the crate.
//!
//! Why not `f64::exp` or `f64::tanh`: libm's are a call per element, which no loop around them
//! can vectorise; `exp` was a third of Wilson–Cowan's step and `tanh` a quarter of HORN's. SIMD
//! crates with an `exp` (e.g. `wide`) pick their instruction set when they are compiled, so in a
//! portable build they run on 128-bit SSE2 and measured slower than libm. Here both sigmoids are
//! written in plain branch-free arithmetic, and the loops are compiled for each vector width
//! ([`crate::lanes`]: AVX-512 on AMD, where it took 5–7 % off the Wilson–Cowan and Jansen–Rit
//! real-time loads, else AVX2 + FMA) and chosen at run time:
//! - Cody–Waite reduction `x = k ln 2 + r`, `|r| ≤ ln2/2`, the power `2^k` built in the exponent
//!   bits;
//! - `e^r ≈ P(r)/P(−r)`, the [6/6] Padé approximant (truncation < 2e-19 relative on the reduced
//!   range), with `P(r) = E(r²) + r·O(r²)`, so that `P(−r) = E − r·O` costs one subtraction;
//! - each sigmoid as one quotient of the two: `1/(1 + 2^k P/Q) = Q/(Q + 2^k P)` and
//!   `tanh = (2^k P − Q)/(2^k P + Q)`, expanded in `E` and `r·O` so that nothing cancels near 0.
//!
//! Against a Taylor polynomial of degree 13 for `e^r` (twelve multiply-adds, then the same one
//! division) this is eight multiply-adds: on a Zen 3 core the logistic takes 0.86 ns per value
//! instead of 1.54 and tanh 1.09 instead of 1.81, and both are closer to libm (worst 3 ulp
//! instead of 4). Multiply-adds are `mul_add`, whose single rounding
//! gives the same bits everywhere (without FMA hardware, libm's exact `fma` is slower).

use crate::lanes::Lanes;

/// `z[k] ← 1 / (1 + e^{z[k]})` for every `k`.
///
/// Accuracy: within 3 ulp of `1.0 / (1.0 + z.exp())` wherever that is at least 1e-300; for
/// `z > 708` (where the logistic is below 3.4e-308) it returns `1/(1 + e^708)` instead of the
/// exact tiny value. `−∞ → 1`, `+∞ → 0`, NaN stays NaN.
pub fn logistic_in_place(z: &mut [f64]) {
    logistic_at(Lanes::chosen(), z);
}

vector_loop! {
    /// [`logistic_in_place`] at the width `lanes`.
    fn logistic_at(lanes: Lanes, z: &mut [f64]) {
        for v in z.iter_mut() {
            let (t, r) = reduce(*v);
            let (even, odd) = pade_parts(r);
            let (p, q) = (even + odd, even - odd);
            *v = q / two_to_k(t).mul_add(p, q);
        }
    }
}

/// `z[k] ← tanh z[k]` for every `k`, from `e^{2z} = 2^k P/Q`: `(2^k P − Q)/(2^k P + Q)`,
/// computed as `((2^k − 1)E + (2^k + 1)rO) / ((2^k + 1)E + (2^k − 1)rO)`, which near 0 (`k = 0`)
/// is `rO/E` with no cancellation.
///
/// Accuracy: within 3 ulp of `f64::tanh` everywhere. `±∞ → ±1`, NaN stays NaN.
pub fn tanh_in_place(z: &mut [f64]) {
    tanh_at(Lanes::chosen(), z);
}

vector_loop! {
    /// [`tanh_in_place`] at the width `lanes`.
    fn tanh_at(lanes: Lanes, z: &mut [f64]) {
        for v in z.iter_mut() {
            // Past |z| = 354 the clamp inside holds e^{2z} at e^{±708}, where tanh is ±1 already.
            let (t, r) = reduce(2.0 * *v);
            let (even, odd) = pade_parts(r);
            let two_k = two_to_k(t);
            let (minus, plus) = (two_k - 1.0, two_k + 1.0);
            *v = minus.mul_add(even, plus * odd) / plus.mul_add(even, minus * odd);
        }
    }
}

/// `x = k ln 2 + r` with `|r| ≤ ln2/2` (to rounding), for `x` clamped to ±708 (so that `2^k`
/// stays a normal number; NaN passes through the clamp): returns `t` (holding `k` in its low
/// mantissa bits, for [`two_to_k`]) and `r`.
#[inline(always)]
fn reduce(x: f64) -> (f64, f64) {
    const LOG2_E: f64 = std::f64::consts::LOG2_E;
    // ln 2 split so that k · LN2_HI is exact for |k| < 2^11.
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.clamp(-708.0, 708.0);
    let t = x.mul_add(LOG2_E, SHIFTER);
    let k = t - SHIFTER;
    (t, (-k).mul_add(LN2_LO, (-k).mul_add(LN2_HI, x)))
}

/// Adding 1.5 · 2^52 rounds to an integer and leaves it in the low mantissa bits.
const SHIFTER: f64 = 6_755_399_441_055_744.0;

/// `(E(r²), r·O(r²))`: the even and odd parts of the [6/6] Padé numerator of `e^r`,
/// `P(r) = Σ_{i=0}^{6} (12 − i)! 6! / (12! i! (6 − i)!) rⁱ = E + rO`, and `e^r ≈ P(r)/P(−r)`.
#[inline(always)]
fn pade_parts(r: f64) -> (f64, f64) {
    let s = r * r;
    let even = (1.0 / 665_280.0f64)
        .mul_add(s, 1.0 / 792.0)
        .mul_add(s, 5.0 / 44.0)
        .mul_add(s, 1.0);
    let odd = (1.0 / 15_840.0f64).mul_add(s, 1.0 / 66.0).mul_add(s, 0.5);
    (even, r * odd)
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
        assert!(worst <= 3, "worst error {worst} ulp");
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
        assert!(worst <= 3, "worst error {worst} ulp");
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
    fn every_vector_width_gives_the_same_bits() {
        let z: Vec<f64> = (0..100_001).map(|k| -50.0 + 1e-3 * k as f64).collect();
        let run = |f: fn(Lanes, &mut [f64]), lanes| {
            let mut v = z.clone();
            f(lanes, &mut v);
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        for (name, f) in [
            ("logistic", logistic_at as fn(_, &mut _)),
            ("tanh", tanh_at),
        ] {
            let baseline = run(f, Lanes::available()[0]);
            for lanes in Lanes::available() {
                assert!(run(f, lanes) == baseline, "{name} at {}", lanes.name());
            }
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
