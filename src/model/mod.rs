//! Plants: networks of oscillator / neural-mass nodes integrated at a fixed step.
//!
//! Owns: the [`Plant`] trait and the model ladder of MODELS.md — [`Kuramoto`], the harmonic
//! network (Stuart–Landau without the cubic term), [`StuartLandau`], the SL field with divisive
//! normalization ([`sl_dn_field`]), the firing-rate population ([`rate`]), Wilson–Cowan
//! ([`wilson_cowan`]), Baier's E–I tanh grid ([`baier_grid`]), Jansen–Rit ([`jansen_rit`]),
//! Montbrió–Pazó–Roxin ([`mpr`]) and HORN ([`horn`]) — plus topologies ([`network`]), delay
//! histories ([`delay`]), heterogeneous parameters ([`param`]) and the streaming 1/f noise
//! source ([`pink`]).
//! May call: [`crate::integrate`]. Plants do no I/O (except reading a coupling CSV at build) and
//! start no threads; after `build` their `step` never allocates.
//!
//! Units: time in seconds, frequencies in Hz in profiles (rad/s inside), phase convention of
//! MODELS.md (`x ≈ A cos φ`, peak = 0).

pub mod baier_grid;
pub mod delay;
pub mod harmonic;
pub mod horn;
pub mod jansen_rit;
pub mod kuramoto;
pub mod mpr;
pub mod network;
pub mod param;
pub mod pink;
pub mod rate;
pub mod sl_dn_field;
pub mod stuart_landau;
pub mod wilson_cowan;

use num_complex::Complex64;
use serde::{Deserialize, Serialize};

pub use kuramoto::{Kuramoto, KuramotoParams};
pub use network::{Coupling, NetworkSpec};
pub use param::{Dist, ParamSpec, Sampling};
pub use stuart_landau::{StuartLandau, StuartLandauParams};

use crate::integrate::Scheme;

/// A network of nodes stepped at a fixed `dt`, forced per node, observed per node.
pub trait Plant: Send {
    /// Number of nodes.
    fn nodes(&self) -> usize;
    /// The model step, seconds.
    fn dt(&self) -> f64;
    /// Model time since the start, seconds.
    fn time(&self) -> f64;
    /// Advance one step with `forcing[i]` (complex, model input units) held over the step.
    /// `forcing.len() == nodes()`. Never allocates.
    fn step(&mut self, forcing: &[Complex64]);
    /// What an electrode on `node` records (e.g. `Re z`).
    fn observable(&self, node: usize) -> f64;
    /// The model's own phase of `node`, rad in (−π, π], where the model defines one.
    fn phase(&self, node: usize) -> Option<f64>;
    /// The network's mean observable.
    fn mean_observable(&self) -> f64 {
        (0..self.nodes()).map(|i| self.observable(i)).sum::<f64>() / self.nodes() as f64
    }
    /// The phase of the network's mean field, where the model defines one.
    fn mean_phase(&self) -> Option<f64>;
    /// Return to the initial state (real-time safe; the noise generator is re-seeded).
    fn reset(&mut self);
    /// Bytes of state and delay history (for capacity reports).
    fn state_bytes(&self) -> usize;
    /// `(rows, cols)` when the nodes lie on a grid, node `r·cols + c` at row `r`, column `c`.
    fn grid(&self) -> Option<(usize, usize)> {
        None
    }
}

/// Which plant a profile asks for (`[model] kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Harmonic oscillators `dz/dt = (a + iω) z + F` (MODELS.md §2).
    Harmonic,
    /// Kuramoto phase oscillators (MODELS.md §1).
    Kuramoto,
    /// Stuart–Landau / Hopf normal form (MODELS.md §3).
    StuartLandau,
    /// Stuart–Landau field with divisive normalization on a square grid (MODELS.md §4).
    SlDnField,
    /// Firing-rate population (MODELS.md §5).
    Rate,
    /// Wilson–Cowan E–I population (MODELS.md §6).
    WilsonCowan,
    /// Baier's coupled E–I tanh oscillators on a square grid (MODELS.md §7).
    BaierGrid,
    /// Jansen–Rit cortical column (MODELS.md §8).
    JansenRit,
    /// Montbrió–Pazó–Roxin QIF mean field (MODELS.md §9).
    Mpr,
    /// Harmonic-oscillator recurrent network (MODELS.md §10).
    Horn,
}

impl ModelKind {
    /// The profile name of this kind.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Harmonic => "harmonic",
            ModelKind::Kuramoto => "kuramoto",
            ModelKind::StuartLandau => "stuart_landau",
            ModelKind::SlDnField => "sl_dn_field",
            ModelKind::Rate => "rate",
            ModelKind::WilsonCowan => "wilson_cowan",
            ModelKind::BaierGrid => "baier_grid",
            ModelKind::JansenRit => "jansen_rit",
            ModelKind::Mpr => "mpr",
            ModelKind::Horn => "horn",
        }
    }
}

/// Everything a plant needs that is common to every kind.
#[derive(Clone, Debug)]
pub struct PlantCommon {
    /// Number of nodes.
    pub nodes: usize,
    /// Integration scheme.
    pub scheme: Scheme,
    /// Step, seconds.
    pub dt: f64,
    /// White-noise amplitude per node, per √s, in the units of the variable it drives (each
    /// model's doc says which: the state for SL/HO/Kuramoto/rate/WC/Baier, the input rate p for
    /// Jansen–Rit, v for MPR, y for HORN); complex noise has this SD in each of the real and
    /// imaginary parts.
    pub noise_sd: f64,
    /// The coupling, built by [`Coupling::build`].
    pub coupling: Coupling,
    /// Global coupling gain: G (1/s) for SL/HO, K (1/s) for Kuramoto; dimensionless K for the
    /// rate, Wilson–Cowan, Jansen–Rit and MPR plants; per x-unit for HORN (each model's doc).
    pub gain: f64,
    /// Seed for initial conditions, heterogeneous parameters and noise.
    pub seed: u64,
}

/// The coupling as the inner loops use it: edges split by whether they are delayed, delays in
/// whole model steps, and each node's total incoming weight (for the diffusive `−z_i` term).
#[derive(Clone, Debug)]
pub(crate) struct CouplingPlan {
    /// Σ_j C_ij per node.
    pub row_sum: Vec<f64>,
    kind: PlanKind,
    /// Longest delay, steps.
    pub max_delay_steps: usize,
}

#[derive(Clone, Debug)]
enum PlanKind {
    None,
    MeanField { weight: f64, delay_steps: usize },
    Sparse { instant: Edges, delayed: Edges },
}

#[derive(Clone, Debug, Default)]
struct Edges {
    row_ptr: Vec<usize>,
    col: Vec<u32>,
    weight: Vec<f64>,
    delay_steps: Vec<u32>,
}

impl Edges {
    fn is_empty(&self) -> bool {
        self.col.is_empty()
    }
}

impl CouplingPlan {
    pub fn new(coupling: &Coupling, nodes: usize, dt: f64) -> Self {
        let steps = |delay_s: f64| (delay_s / dt).round().max(0.0) as usize;
        match coupling {
            Coupling::None => Self {
                row_sum: vec![0.0; nodes],
                kind: PlanKind::None,
                max_delay_steps: 0,
            },
            Coupling::AllToAll {
                weight, delay_s, ..
            } => Self {
                row_sum: vec![weight * nodes as f64; nodes],
                kind: PlanKind::MeanField {
                    weight: *weight,
                    delay_steps: steps(*delay_s),
                },
                max_delay_steps: steps(*delay_s),
            },
            Coupling::Sparse(csr) => {
                let mut instant = Edges::default();
                let mut delayed = Edges::default();
                instant.row_ptr.push(0);
                delayed.row_ptr.push(0);
                let mut row_sum = vec![0.0; nodes];
                let mut max_delay_steps = 0;
                for (i, sum) in row_sum.iter_mut().enumerate() {
                    for e in csr.row_ptr[i]..csr.row_ptr[i + 1] {
                        let d = steps(csr.delay_s[e]);
                        max_delay_steps = max_delay_steps.max(d);
                        *sum += csr.weight[e];
                        let target = if d == 0 { &mut instant } else { &mut delayed };
                        target.col.push(csr.col[e]);
                        target.weight.push(csr.weight[e]);
                        target.delay_steps.push(d as u32);
                    }
                    instant.row_ptr.push(instant.col.len());
                    delayed.row_ptr.push(delayed.col.len());
                }
                Self {
                    row_sum,
                    kind: PlanKind::Sparse { instant, delayed },
                    max_delay_steps,
                }
            }
        }
    }

    /// Whether any input depends on the current (stage) state rather than on history.
    pub fn has_instant(&self) -> bool {
        match &self.kind {
            PlanKind::None => false,
            PlanKind::MeanField { delay_steps, .. } => *delay_steps == 0,
            PlanKind::Sparse { instant, .. } => !instant.is_empty(),
        }
    }

    /// `out[i] = Σ_{delayed j} C_ij u_j(t − τ_ij)`, read from `history` (constant over a step).
    pub fn delayed_input(&self, history: &delay::DelayLine, out: &mut [Complex64]) {
        match &self.kind {
            PlanKind::None => out.fill(Complex64::default()),
            PlanKind::MeanField {
                weight,
                delay_steps,
            } => {
                let value = if *delay_steps == 0 {
                    Complex64::default()
                } else {
                    history.slot(*delay_steps).iter().sum::<Complex64>() * *weight
                };
                out.fill(value);
            }
            PlanKind::Sparse { delayed, .. } => {
                for (i, o) in out.iter_mut().enumerate() {
                    let mut acc = Complex64::default();
                    for e in delayed.row_ptr[i]..delayed.row_ptr[i + 1] {
                        let z =
                            history.get(delayed.col[e] as usize, delayed.delay_steps[e] as usize);
                        acc += z * delayed.weight[e];
                    }
                    *o = acc;
                }
            }
        }
    }

    /// `out[i] = delayed[i] + Σ_{instant j} C_ij u_j` with `u` the current stage's node values.
    pub fn total_input(&self, delayed: &[Complex64], u: &[Complex64], out: &mut [Complex64]) {
        match &self.kind {
            PlanKind::None => out.fill(Complex64::default()),
            PlanKind::MeanField {
                weight,
                delay_steps,
            } => {
                if *delay_steps == 0 {
                    let mean = u.iter().sum::<Complex64>() * *weight;
                    out.fill(mean);
                } else {
                    out.copy_from_slice(delayed);
                }
            }
            PlanKind::Sparse { instant, .. } => {
                for (i, o) in out.iter_mut().enumerate() {
                    let mut acc = delayed[i];
                    for e in instant.row_ptr[i]..instant.row_ptr[i + 1] {
                        acc += u[instant.col[e] as usize] * instant.weight[e];
                    }
                    *o = acc;
                }
            }
        }
    }
}
