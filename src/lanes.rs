//! The vector width the plants' per-node loops run at on this CPU, chosen once when a run is
//! built, and [`vector_loop!`], which compiles one loop body at every width and runs the one
//! chosen.
//!
//! Owns: [`Lanes`] and the macro. Calls nothing else in the crate.
//!
//! AVX-512 is chosen only on AMD. A Zen 4 core runs a 512-bit operation as two 256-bit halves,
//! so it does no more arithmetic per cycle, but it issues half the instructions and
//! de-interleaves `(x, y)` pairs with fewer shuffles: on the 1 000-node real-time load (x-coupled
//! Stuart–Landau) the fused step at 512 bits took the block median from 48 % of the period to
//! 42 %. On an Intel Xeon the same change lowered the median but raised the 99th percentile
//! (capacity 440 → 350 SL nodes, and 312 → 250 Wilson–Cowan nodes with the sigmoid at 512 bits
//! too; 2026-11-23), most likely through its frequency licences: the audio thread idles between
//! blocks, and each block's first wide instructions then run while the core changes frequency.
//! The dense mat-vec ([`crate::model::dense`]) picks its own kernel, and asks `amd` how to
//! group its panels. The normal draws ([`crate::noise`]) keep their 256-bit lanes at every
//! width; where AVX-512 is chosen they rotate them with AVX-512VL.

use std::sync::OnceLock;

/// A vector width this CPU can run. Holding one is the proof that the CPU has its features:
/// the only constructors are [`Lanes::chosen`] and [`Lanes::available`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes(Width);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    /// What the build targets (SSE2 on x86-64): always available.
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F and VL, besides AVX2 and FMA.
    Avx512,
}

impl Lanes {
    /// The width the per-node loops run at on this CPU: AVX-512 on an AMD CPU that has it,
    /// else AVX2 with FMA where present, else the baseline. Detected once per process.
    pub fn chosen() -> Self {
        static CHOSEN: OnceLock<Lanes> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let width = if amd() && has(Width::Avx512) {
                Width::Avx512
            } else if has(Width::Avx2) {
                Width::Avx2
            } else {
                Width::Baseline
            };
            Lanes(width)
        })
    }

    /// Every width this CPU can run, the baseline first (tests run a loop at each).
    pub fn available() -> Vec<Self> {
        [Width::Baseline, Width::Avx2, Width::Avx512]
            .into_iter()
            .filter(|&w| has(w))
            .map(Lanes)
            .collect()
    }

    /// The name of the width, as `entrain bench` prints it.
    pub fn name(self) -> &'static str {
        match self.0 {
            Width::Baseline => "baseline",
            Width::Avx2 => "avx2",
            Width::Avx512 => "avx512",
        }
    }

    /// Whether this is AVX-512 ([`vector_loop!`] only).
    pub(crate) fn is_avx512(self) -> bool {
        self.0 == Width::Avx512
    }

    /// Whether this is AVX2 with FMA ([`vector_loop!`] only).
    pub(crate) fn is_avx2(self) -> bool {
        self.0 == Width::Avx2
    }
}

/// Whether this CPU has the features of `width`.
fn has(width: Width) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma");
        match width {
            Width::Baseline => true,
            Width::Avx2 => avx2,
            Width::Avx512 => avx2 && has!("avx512f") && has!("avx512vl"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        width == Width::Baseline
    }
}

/// Whether the CPU's vendor string says AMD (false off x86-64).
pub(crate) fn amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // Safe in recent Rust (1.95 here), unsafe in 1.89, the oldest the crate supports.
        #[allow(unused_unsafe)]
        // SAFETY: every x86-64 CPU has CPUID, and leaf 0 exists on all of them.
        let id = unsafe { std::arch::x86_64::__cpuid(0) };
        // The vendor string is EBX, EDX, ECX: "Auth" "enti" "cAMD".
        (id.ebx, id.edx, id.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163)
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `fn name<const …>(lanes: Lanes, args…) { body }` (const generics optional): the body
/// compiled three times, for AVX-512, for AVX2 with FMA and for the baseline, and run at the
/// width `lanes` names. Every width performs the same IEEE operations in the same order (Rust
/// does not contract `a * b + c` into a fused multiply-add), so all three give the same bits;
/// only their speed differs. The body's `#[inline(always)]` helpers are compiled into each
/// width; other calls are not.
macro_rules! vector_loop {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident<$(const $c:ident: $ct:ty),* $(,)?>(
            $lanes:ident: Lanes, $($arg:ident: $at:ty),* $(,)?
        ) $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name<$(const $c: $ct),*>($lanes: $crate::lanes::Lanes, $($arg: $at),*) {
            #[inline(always)]
            fn body<$(const $c: $ct),*>($($arg: $at),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512<$(const $c: $ct),*>($($arg: $at),*) {
                    body::<$($c),*>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<$(const $c: $ct),*>($($arg: $at),*) {
                    body::<$($c),*>($($arg),*)
                }
                if $lanes.is_avx512() {
                    // SAFETY: a `Lanes` names AVX-512 only where the CPU reported it.
                    return unsafe { avx512::<$($c),*>($($arg),*) };
                }
                if $lanes.is_avx2() {
                    // SAFETY: a `Lanes` names AVX2 only where the CPU reported AVX2 and FMA.
                    return unsafe { avx2::<$($c),*>($($arg),*) };
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = $lanes;
            body::<$($c),*>($($arg),*)
        }
    };
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($lanes:ident: Lanes, $($arg:ident: $at:ty),* $(,)?) $body:block
    ) => {
        vector_loop! {
            $(#[$attr])*
            $vis fn $name<>($lanes: Lanes, $($arg: $at),*) $body
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_width_is_one_this_cpu_has_and_the_baseline_is_always_there() {
        let all = Lanes::available();
        assert_eq!(all[0].name(), "baseline");
        // The widest this CPU has, except AVX-512 where the CPU is not an AMD one.
        let widest = all.iter().rev().find(|l| amd() || !l.is_avx512());
        assert_eq!(Some(&Lanes::chosen()), widest);
        assert_eq!(Lanes::chosen(), Lanes::chosen(), "detected once");
    }

    vector_loop! {
        /// `out = a · x + y`, element by element, at any width.
        fn axpy<const NEGATE: bool>(lanes: Lanes, a: f64, x: &[f64], y: &[f64], out: &mut [f64]) {
            for ((o, &xi), &yi) in out.iter_mut().zip(x).zip(y) {
                let v = a * xi + yi;
                *o = if NEGATE { -v } else { v };
            }
        }
    }

    #[test]
    fn every_width_gives_the_same_bits() {
        let x: Vec<f64> = (0..1001).map(|k| (k as f64 * 0.37).sin() * 1e3).collect();
        let y: Vec<f64> = (0..1001).map(|k| (k as f64 * 0.11).cos() / 7.0).collect();
        let mut reference = vec![0.0; x.len()];
        axpy::<true>(Lanes(Width::Baseline), 1.0 / 3.0, &x, &y, &mut reference);
        for lanes in Lanes::available() {
            let mut out = vec![0.0; x.len()];
            axpy::<true>(lanes, 1.0 / 3.0, &x, &y, &mut out);
            for (k, (a, b)) in out.iter().zip(&reference).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{}: element {k}", lanes.name());
            }
            assert_eq!(out[3], -((1.0 / 3.0) * x[3] + y[3]), "{}", lanes.name());
        }
    }
}
