//! The plant with its forcing path: how a delivered stimulus becomes the plant's input.
//!
//! The stimulus arrives one sample at a time (stimulus units, after the limiter and the latency
//! line). The plant steps once every `samples_per_step` samples, forced by the mean of the
//! samples since its last step (a pulse shorter than a step keeps its charge), times each node's
//! forcing gain, plus the coloured-noise input (pink or Ornstein–Uhlenbeck) when the profile
//! asks for it. The engine's
//! [`super::Processor`] and the phase-response measurement ([`crate::prc`]) both drive plants
//! through this one type, so a pulse does the same thing to the plant in both.

use num_complex::Complex64;

use crate::model::ou::OuNoiseBank;
use crate::model::pink::PinkNoiseBank;
use crate::model::Plant;
use crate::profile::SensorNode;

/// Where a coloured-noise input comes from: one unit-variance stream per node.
pub(super) enum NoiseBank {
    /// 1/f noise (`noise_color = "pink"`).
    Pink(PinkNoiseBank),
    /// Ornstein–Uhlenbeck noise (`noise_color = "ou"`).
    Ou(OuNoiseBank),
}

impl NoiseBank {
    fn nodes(&self) -> usize {
        match self {
            NoiseBank::Pink(bank) => bank.nodes(),
            NoiseBank::Ou(bank) => bank.nodes(),
        }
    }

    /// The next value of every stream (`out.len() == nodes()`). Never allocates.
    fn fill(&mut self, out: &mut [f64]) {
        match self {
            NoiseBank::Pink(bank) => bank.fill(out),
            NoiseBank::Ou(bank) => bank.fill(out),
        }
    }
}

/// Coloured noise added to every node's forcing at each plant step.
pub(super) struct NoiseInput {
    bank: NoiseBank,
    /// SD of the added input, model input units.
    sd: f64,
    /// This step's samples, one per node.
    values: Vec<f64>,
}

impl NoiseInput {
    pub(super) fn new(bank: NoiseBank, sd: f64) -> Self {
        Self {
            values: vec![0.0; bank.nodes()],
            bank,
            sd,
        }
    }
}

/// A plant, its per-node forcing gains and its step clock.
///
/// Invariant: after construction nothing here allocates; [`ForcedPlant::push`] is real-time
/// safe.
pub struct ForcedPlant {
    plant: Box<dyn Plant>,
    /// Model input units per stimulus unit, per node (0 for nodes that are not stimulated).
    gains: Vec<f64>,
    forcing: Vec<Complex64>,
    noise: Option<NoiseInput>,
    samples_per_step: usize,
    /// Samples pushed since the last step.
    pending: usize,
    /// Sum of the stimulus over those samples, stimulus units.
    sum: f64,
}

impl ForcedPlant {
    pub(super) fn new(
        plant: Box<dyn Plant>,
        gains: Vec<f64>,
        noise: Option<NoiseInput>,
        samples_per_step: usize,
    ) -> Self {
        let nodes = plant.nodes();
        Self {
            plant,
            gains,
            forcing: vec![Complex64::default(); nodes],
            noise,
            samples_per_step: samples_per_step.max(1),
            pending: 0,
            sum: 0.0,
        }
    }

    /// The plant, to read.
    pub fn plant(&self) -> &dyn Plant {
        self.plant.as_ref()
    }

    /// Samples per plant step.
    pub fn samples_per_step(&self) -> usize {
        self.samples_per_step
    }

    /// What the sensor reads now (clean), and the ground-truth phase where the plant defines
    /// one: the node's, or the mean field's.
    pub fn sense(&self, sensor: SensorNode) -> (f64, Option<f64>) {
        match sensor {
            SensorNode::Mean(_) => (self.plant.mean_observable(), self.plant.mean_phase()),
            SensorNode::Index(i) => (self.plant.observable(i), self.plant.phase(i)),
        }
    }

    /// Deliver one sample of stimulus (stimulus units). Returns true when the plant stepped.
    #[inline]
    pub fn push(&mut self, delivered: f64) -> bool {
        self.sum += delivered;
        self.pending += 1;
        if self.pending < self.samples_per_step {
            return false;
        }
        let mean = self.sum / self.samples_per_step as f64;
        for (f, g) in self.forcing.iter_mut().zip(&self.gains) {
            *f = Complex64::new(g * mean, 0.0);
        }
        if let Some(noise) = self.noise.as_mut() {
            noise.bank.fill(&mut noise.values);
            for (f, p) in self.forcing.iter_mut().zip(&noise.values) {
                f.re += noise.sd * p;
            }
        }
        self.plant.step(&self.forcing);
        self.sum = 0.0;
        self.pending = 0;
        true
    }
}
