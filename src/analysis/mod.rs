//! STUB
#![allow(missing_docs)]
pub fn wrap_angle(rad: f64) -> f64 {
    let w = (rad + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
    if w <= -std::f64::consts::PI {
        std::f64::consts::PI
    } else {
        w
    }
}
#[derive(Clone, Copy, Debug)]
pub struct CircularStats {
    pub mean_rad: f64,
    pub r: f64,
    pub sd_rad: f64,
    pub n: usize,
}
pub fn circular_stats(angles: impl IntoIterator<Item = f64>) -> Option<CircularStats> {
    let mut s = num_complex::Complex64::default();
    let mut n = 0;
    for a in angles {
        if a.is_finite() {
            s += num_complex::Complex64::from_polar(1.0, a);
            n += 1;
        }
    }
    if n == 0 {
        return None;
    }
    let m = s / n as f64;
    let r = m.norm();
    Some(CircularStats {
        mean_rad: m.arg(),
        r,
        sd_rad: (-2.0 * r.max(1e-300).ln()).sqrt(),
        n,
    })
}
pub fn plv(a: &[f64], b: &[f64]) -> Option<f64> {
    circular_stats(a.iter().zip(b).map(|(x, y)| x - y)).map(|s| s.r)
}
