//! STUB
#![allow(missing_docs)]
use super::{Estimate, PhaseEstimator};
#[derive(Clone, Debug, PartialEq)]
pub struct BandpassHilbertConfig {
    pub low_hz: f64,
    pub high_hz: f64,
    pub sections: usize,
    pub freq_smoothing_s: f64,
}
pub struct BandpassHilbert;
impl BandpassHilbert {
    pub fn new(_c: &BandpassHilbertConfig, _fs: f64, _p: f64) -> Result<Self, String> {
        Ok(Self)
    }
}
impl PhaseEstimator for BandpassHilbert {
    fn process(&mut self, _x: f64) -> Estimate {
        Estimate::default()
    }
    fn reset(&mut self) {}
    fn settling_samples(&self) -> usize {
        0
    }
}
