//! Pure signal maths used by estimators, the recorder and tests: circular statistics, PLV and the
//! offline (non-causal) ground-truth phase. Calls nothing else in the crate.

mod circular;
mod ground_truth;

pub use circular::{circular_stats, plv, wrap_angle, CircularStats};
pub use ground_truth::analytic_band;
