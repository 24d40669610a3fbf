//! Circular statistics on angles in radians: wrapping, mean direction, resultant length, circular
//! SD and the phase-locking value.

use std::f64::consts::{PI, TAU};

/// Wraps an angle (rad) into (−π, π] (rad); both π and −π map to π.
///
/// Non-finite input gives NaN.
pub fn wrap_angle(rad: f64) -> f64 {
    let w = rad.rem_euclid(TAU);
    // `rem_euclid` yields [0, 2π] (2π only through rounding); folding the upper half down keeps
    // π itself, so the interval is closed at +π as the phase convention requires.
    if w > PI {
        w - TAU
    } else {
        w
    }
}

/// Summary of a set of angles: mean direction, resultant length and circular SD.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CircularStats {
    /// Circular mean direction, rad, in (−π, π]; 0 when the resultant vanishes exactly.
    pub mean_rad: f64,
    /// Mean resultant length R = |mean e^{iθ}|, in [0, 1] (1 = all angles equal).
    pub r: f64,
    /// Circular standard deviation `sqrt(−2 ln R)`, rad; finite even when R = 0.
    pub sd_rad: f64,
    /// Number of finite angles that went into the statistics.
    pub n: usize,
}

/// Circular mean, resultant length and circular SD of `angles` (rad).
///
/// Non-finite angles are skipped (and not counted in `n`); returns `None` when no finite angle
/// remains. R is clamped to `[f64::MIN_POSITIVE, 1]` before the logarithm, so `sd_rad` is at most
/// ≈ 37.6 rad instead of infinite for perfectly uniform angles.
pub fn circular_stats(angles: impl IntoIterator<Item = f64>) -> Option<CircularStats> {
    let (mut sum_cos, mut sum_sin, mut n) = (0.0_f64, 0.0_f64, 0_usize);
    for a in angles.into_iter().filter(|a| a.is_finite()) {
        sum_cos += a.cos();
        sum_sin += a.sin();
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let r = sum_cos.hypot(sum_sin) / n as f64;
    let r_clamped = r.clamp(f64::MIN_POSITIVE, 1.0);
    Some(CircularStats {
        mean_rad: wrap_angle(sum_sin.atan2(sum_cos)),
        r: r.min(1.0),
        // `abs`: at R = 1 the root is of −0.0, which printed as "SD -0.0°".
        sd_rad: (-2.0 * r_clamped.ln()).sqrt().abs(),
        n,
    })
}

/// Phase-locking value `|mean e^{i(a−b)}|` between two phase series (rad), in [0, 1].
///
/// Returns `None` when the slices differ in length (a silent truncation would hide a bug
/// upstream) or when no pair has both phases finite; pairs with a non-finite phase are skipped.
pub fn plv(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() {
        return None;
    }
    circular_stats(a.iter().zip(b).map(|(x, y)| x - y)).map(|s| s.r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEG: f64 = PI / 180.0;

    #[test]
    fn wrap_angle_maps_into_half_open_interval() {
        assert_eq!(wrap_angle(PI), PI);
        assert_eq!(wrap_angle(-PI), PI);
        assert_eq!(wrap_angle(3.0 * PI), PI);
        assert_eq!(wrap_angle(0.0), 0.0);
        assert!((wrap_angle(TAU + 0.25) - 0.25).abs() < 1e-12);
        assert!((wrap_angle(-TAU - 0.25) + 0.25).abs() < 1e-12);
        assert!((wrap_angle(1.5 * PI) + 0.5 * PI).abs() < 1e-12);
        assert!((wrap_angle(-1.5 * PI) - 0.5 * PI).abs() < 1e-12);
        assert!((wrap_angle(1000.0 * TAU + 1.0) - 1.0).abs() < 1e-9);
        assert!(wrap_angle(f64::NAN).is_nan());
        for k in -2000..2000 {
            let w = wrap_angle(k as f64 * 0.01);
            assert!(w > -PI && w <= PI, "{k}: {w}");
        }
    }

    #[test]
    fn mean_across_the_pi_cut_is_pi() {
        // ±10° around 170° and −170°: the naive arithmetic mean would be 0°; the circular mean is
        // 180°, and the spread is that of {±10°, ±20°}-ish offsets around 180°.
        let deg = [160.0, 180.0, -180.0, -160.0, 170.0, -170.0];
        let s = circular_stats(deg.iter().map(|d| d * DEG)).unwrap();
        assert_eq!(s.n, 6);
        assert!(
            (wrap_angle(s.mean_rad - PI)).abs() < 1e-12,
            "{}",
            s.mean_rad
        );
        let expected_r = (2.0 * (20.0 * DEG).cos() + 2.0 + 2.0 * (10.0 * DEG).cos()) / 6.0;
        assert!((s.r - expected_r).abs() < 1e-12);
        assert!((s.sd_rad - (-2.0 * expected_r.ln()).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn two_angles_have_known_resultant() {
        // R of {θ−δ, θ+δ} is cos δ and the mean is θ.
        let s = circular_stats([100.0 * DEG, 140.0 * DEG]).unwrap();
        assert!((s.mean_rad - 120.0 * DEG).abs() < 1e-12);
        assert!((s.r - (20.0 * DEG).cos()).abs() < 1e-12);
    }

    #[test]
    fn uniform_angles_have_zero_resultant_and_finite_sd() {
        let n = 360;
        let s = circular_stats((0..n).map(|k| k as f64 * TAU / n as f64)).unwrap();
        assert!(s.r < 1e-12, "{}", s.r);
        assert!(s.sd_rad.is_finite() && s.sd_rad > 5.0, "{}", s.sd_rad);
        let exact = circular_stats([0.0, PI]).unwrap();
        assert!(exact.sd_rad.is_finite());
    }

    #[test]
    fn identical_angles_have_unit_resultant_and_zero_sd() {
        let s = circular_stats(std::iter::repeat_n(-2.0, 1000)).unwrap();
        assert!((s.r - 1.0).abs() < 1e-12 && s.r <= 1.0);
        assert!(s.sd_rad < 1e-6);
        assert!((s.mean_rad + 2.0).abs() < 1e-12);
        // One angle: R is exactly 1 and the SD exactly +0 (it printed as "-0.0°").
        let one = circular_stats([0.3]).unwrap();
        assert_eq!(one.sd_rad.to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn small_spread_sd_matches_linear_sd() {
        // For small spreads the circular SD approaches the ordinary SD: ±5° → 5°.
        let s = circular_stats([0.3 + 5.0 * DEG, 0.3 - 5.0 * DEG]).unwrap();
        assert!((s.sd_rad / DEG - 5.0).abs() < 0.01, "{}", s.sd_rad / DEG);
    }

    #[test]
    fn non_finite_angles_are_ignored() {
        assert!(circular_stats(std::iter::empty()).is_none());
        assert!(circular_stats([f64::NAN, f64::INFINITY]).is_none());
        let s = circular_stats([1.0, f64::NAN, 1.0, f64::NEG_INFINITY]).unwrap();
        assert_eq!(s.n, 2);
        assert!((s.mean_rad - 1.0).abs() < 1e-12);
    }

    #[test]
    fn plv_known_answers() {
        let t: Vec<f64> = (0..1000).map(|k| k as f64 * 0.37).collect();
        // A constant lag is perfectly locked …
        let lagged: Vec<f64> = t.iter().map(|p| p - 1.2).collect();
        assert!((plv(&t, &lagged).unwrap() - 1.0).abs() < 1e-12);
        // … and a lag alternating by ±δ gives cos δ.
        let jittered: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(k, p)| p + if k % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        assert!((plv(&t, &jittered).unwrap() - 0.5_f64.cos()).abs() < 1e-12);
        // Drifting at a rate incommensurate with 2π over many cycles: unlocked.
        let zeros = vec![0.0; t.len()];
        assert!(plv(&t, &zeros).unwrap() < 0.01);
        assert!(plv(&t, &zeros[1..]).is_none());
        assert!(plv(&[], &[]).is_none());
    }
}
