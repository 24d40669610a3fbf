//! Who is coupled to whom: topologies, weights and per-edge delays. Builds the coupling once, at
//! run build time; plants read it in their inner loops. Sparse coupling is stored sparse (CSR).
//!
//! The coupling term every plant uses is `G Σ_j C_ij (z_j(t − τ_ij) − z_i)`: `C_ij` is the weight
//! of the edge *into* node `i` *from* node `j`, and `τ_ij` its delay. In a [`Csr`], row `i` holds
//! the edges into node `i`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::param::ParamSpec;

/// Topology as written in a profile's `[network]` section, tagged by the `topology` key:
///
/// ```toml
/// [network]
/// topology = "small_world"
/// neighbours = 4
/// rewire_prob = 0.1
/// ```
///
/// Generated graphs have weight 1 on every edge (before normalisation) and number their nodes
/// `0..n`, the plant's node order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "topology", rename_all = "snake_case", deny_unknown_fields)]
pub enum Topology {
    /// Uncoupled: every node runs on its own (`normalize` and `delay_ms` have no edges to act on).
    #[default]
    None,
    /// Every node coupled to every node, itself included; evaluated as a mean field, O(N).
    AllToAll,
    /// Ring lattice: each node coupled both ways to its `neighbours / 2` nearest nodes on each side.
    Ring {
        /// Neighbours per node in total (count; even, at least 2, fewer than the nodes).
        neighbours: usize,
    },
    /// 4-neighbour 2-D lattice, node `r·cols + c` at row `r`, column `c` (row-major).
    Grid {
        /// Rows of the lattice (count); `rows · cols` must equal the node count.
        rows: usize,
        /// Columns of the lattice (count).
        cols: usize,
        /// Wrap the edges round (a torus). A side of 2 then reaches the same neighbour both ways,
        /// which counts as one edge; a side of 1 has no neighbours along it.
        #[serde(default)]
        periodic: bool,
    },
    /// Undirected Erdős–Rényi graph with edge probability `mean_degree / (n − 1)`, no self-loops.
    RandomSparse {
        /// Expected neighbours per node (count; 0 ≤ mean_degree ≤ nodes − 1).
        mean_degree: f64,
    },
    /// Watts–Strogatz: the ring lattice with each edge rewired to a random new neighbour with
    /// probability `rewire_prob`; undirected, no self-loops or duplicate edges, edge count kept.
    SmallWorld {
        /// Neighbours per node before rewiring (count; as for [`Topology::Ring`]).
        neighbours: usize,
        /// Probability that an edge is rewired (0 ≤ p ≤ 1; 0 is the ring, 1 a random graph).
        rewire_prob: f64,
    },
    /// Matrices read from comma-separated files: `n` rows of `n` numbers, row `i` = target node,
    /// column `j` = source node; blank lines and lines starting with `#` are skipped.
    Csv {
        /// Weight matrix (dimensionless); a zero entry means no edge, the diagonal may be non-zero.
        weights: PathBuf,
        /// Delay matrix in ms (finite, ≥ 0), read where the weight is non-zero; none = no delays.
        #[serde(default)]
        delays_ms: Option<PathBuf>,
    },
}

/// How edge weights are scaled after the graph is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Weights as generated (1) or as written in the weights file.
    #[default]
    None,
    /// Each node's incoming weights sum to 1 (rows with no edges stay empty); for all-to-all the
    /// weight is `1/n`, so the coupling sum is the mean-field difference (Kuramoto's `K/N`).
    Row,
}

/// A profile's `[network]` section: topology keys, `normalize` and `delay_ms` side by side.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Who is coupled to whom (the `topology` key and its parameters).
    #[serde(flatten)]
    pub topology: Topology,
    /// Weight scaling; default `"none"`.
    #[serde(default)]
    pub normalize: Normalize,
    /// Delay per edge in ms: a value or a distribution; a list must have one value per edge in
    /// [`Csr`] order (by target, then source). `None` = no delays. All-to-all takes one value
    /// only; `csv` takes its delays from its `delays_ms` file and must leave this unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<ParamSpec>,
}

/// The built coupling.
#[derive(Clone, Debug, PartialEq)]
pub enum Coupling {
    /// No edges.
    None,
    /// Every node coupled to every node (including itself) with weight `weight` — evaluated as a
    /// mean field, O(N).
    AllToAll {
        /// Node count.
        n: usize,
        /// Weight of every edge (dimensionless): `1/n` with row normalisation, else 1.
        weight: f64,
        /// Delay of every edge in seconds (≥ 0).
        delay_s: f64,
    },
    /// Explicit edges, stored by target node.
    Sparse(Csr),
}

/// Compressed sparse rows: the edges into node `i` are `row_ptr[i]..row_ptr[i + 1]`, sorted by
/// source node, with no duplicates.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    /// Node count.
    pub n: usize,
    /// Start of each node's edges in `col`, `weight` and `delay_s` (length `n + 1`).
    pub row_ptr: Vec<usize>,
    /// Source node of each edge.
    pub col: Vec<u32>,
    /// Weight of each edge (dimensionless).
    pub weight: Vec<f64>,
    /// Delay of each edge in seconds (≥ 0).
    pub delay_s: Vec<f64>,
}

/// Why a network could not be built; the message names the setting or file at fault and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkError(String);

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NetworkError {}

/// Most edges a sparse network may have (about 16 bytes each, with their delays).
const MAX_EDGES: f64 = 1e8;

fn fail<T>(message: String) -> Result<T, NetworkError> {
    Err(NetworkError(message))
}

impl Coupling {
    /// Build the coupling of `n` nodes. Draws from `rng` first for the graph (random_sparse,
    /// small_world) and then for the delays, so a seed reproduces the same coupling.
    pub fn build(
        spec: &NetworkSpec,
        n: usize,
        rng: &mut impl rand::Rng,
    ) -> Result<Coupling, NetworkError> {
        if n == 0 {
            return fail("the model has 0 nodes; a network needs at least one".into());
        }
        // Source indices are stored as u32 to halve the memory traffic of the inner loops.
        if u32::try_from(n).is_err() {
            return fail(format!(
                "the model has {n} nodes; networks support at most {}",
                u32::MAX
            ));
        }
        // Refuse a graph too large to hold before drawing it (drawing it would run out of
        // memory first, or take hours).
        let edges = match &spec.topology {
            &Topology::RandomSparse { mean_degree } => Some(n as f64 * mean_degree),
            &Topology::Ring { neighbours } | &Topology::SmallWorld { neighbours, .. } => {
                Some(n as f64 * neighbours as f64)
            }
            _ => None,
        };
        if let Some(edges) = edges.filter(|&e| e > MAX_EDGES) {
            return fail(format!(
                "{n} nodes with this topology make about {edges:.3e} edges; at most {MAX_EDGES:.0e} \
                 fit in memory: lower the degree (mean_degree / neighbours) or the node count"
            ));
        }
        let mut csr = match &spec.topology {
            Topology::None => return Ok(Coupling::None),
            Topology::AllToAll => return all_to_all(spec, n),
            &Topology::Ring { neighbours } => {
                check_lattice("ring", neighbours, n)?;
                Csr::from_neighbours(ring(n, neighbours))
            }
            &Topology::Grid {
                rows,
                cols,
                periodic,
            } => Csr::from_neighbours(grid(n, rows, cols, periodic)?),
            &Topology::RandomSparse { mean_degree } => {
                Csr::from_neighbours(random_sparse(n, mean_degree, rng)?)
            }
            &Topology::SmallWorld {
                neighbours,
                rewire_prob,
            } => {
                check_lattice("small_world", neighbours, n)?;
                Csr::from_neighbours(small_world(n, neighbours, rewire_prob, rng)?)
            }
            Topology::Csv { weights, delays_ms } => {
                if spec.delay_ms.is_some() {
                    return fail(
                        "topology = \"csv\" takes its delays from a delays_ms matrix file; \
                         remove delay_ms (or give delays_ms = \"delays.csv\")"
                            .into(),
                    );
                }
                read_csv(weights, delays_ms.as_deref(), n)?
            }
        };
        if spec.normalize == Normalize::Row {
            csr.normalize_rows()?;
        }
        // A csv network already has its delays, from its own delays file.
        if !matches!(spec.topology, Topology::Csv { .. }) {
            csr.delay_s = edge_delays_s(spec.delay_ms.as_ref(), &csr, rng)?;
        }
        Ok(Coupling::Sparse(csr))
    }

    /// The longest edge delay in seconds (0 without delays): the depth the delay lines need.
    pub fn max_delay_s(&self) -> f64 {
        match self {
            Coupling::None => 0.0,
            Coupling::AllToAll { delay_s, .. } => *delay_s,
            Coupling::Sparse(csr) => csr.delay_s.iter().copied().fold(0.0, f64::max),
        }
    }

    /// Number of directed edges (count; an undirected link counts twice, all-to-all `n²`).
    pub fn edge_count(&self) -> usize {
        match self {
            Coupling::None => 0,
            Coupling::AllToAll { n, .. } => n.saturating_mul(*n),
            Coupling::Sparse(csr) => csr.col.len(),
        }
    }

    /// In-degree statistics over the nodes: (mean, min, max), in edges per node.
    pub fn degree_stats(&self) -> (f64, usize, usize) {
        match self {
            Coupling::None => (0.0, 0, 0),
            Coupling::AllToAll { n, .. } => (*n as f64, *n, *n),
            Coupling::Sparse(csr) if csr.n == 0 => (0.0, 0, 0),
            Coupling::Sparse(csr) => {
                let degrees = csr.row_ptr.windows(2).map(|w| w[1] - w[0]);
                let min = degrees.clone().min().unwrap_or(0);
                let max = degrees.max().unwrap_or(0);
                (csr.col.len() as f64 / csr.n as f64, min, max)
            }
        }
    }
}

fn all_to_all(spec: &NetworkSpec, n: usize) -> Result<Coupling, NetworkError> {
    let uniform_ms = match &spec.delay_ms {
        None => Some(0.0),
        Some(ParamSpec::Value(v)) => Some(*v),
        Some(ParamSpec::List(list)) if list.len() == n.saturating_mul(n) => {
            Some(list[0]).filter(|&d| list.iter().all(|&x| x == d))
        }
        Some(_) => None,
    };
    let Some(delay_ms) = uniform_ms else {
        return fail(
            "all_to_all coupling is a mean field with one delay for every edge; give delay_ms a \
             single value, or use topology = \"csv\" with a delays_ms matrix for per-edge delays"
                .into(),
        );
    };
    if !(delay_ms >= 0.0 && delay_ms.is_finite()) {
        return fail(format!(
            "delay_ms must be a finite number ≥ 0 ms (got {delay_ms})"
        ));
    }
    let weight = match spec.normalize {
        Normalize::None => 1.0,
        Normalize::Row => 1.0 / n as f64,
    };
    Ok(Coupling::AllToAll {
        n,
        weight,
        delay_s: delay_ms * 1e-3,
    })
}

fn check_lattice(name: &str, neighbours: usize, n: usize) -> Result<(), NetworkError> {
    if neighbours < 2 || neighbours % 2 == 1 || neighbours >= n {
        return fail(format!(
            "{name} topology needs an even number of neighbours, at least 2 and fewer than the \
             {n} nodes (got {neighbours})"
        ));
    }
    Ok(())
}

/// Neighbour sets of the ring lattice; `k` even and `k < n`, so the two sides never meet.
fn ring(n: usize, k: usize) -> Vec<BTreeSet<u32>> {
    (0..n)
        .map(|i| {
            (1..=k / 2)
                .flat_map(|d| [(i + d) % n, (i + n - d) % n])
                .map(|j| j as u32)
                .collect()
        })
        .collect()
}

fn grid(
    n: usize,
    rows: usize,
    cols: usize,
    periodic: bool,
) -> Result<Vec<BTreeSet<u32>>, NetworkError> {
    if rows.checked_mul(cols) != Some(n) {
        return fail(format!(
            "grid {rows}×{cols} = {} cells but the model has {n} nodes; choose rows × cols = {n}",
            rows as u128 * cols as u128
        ));
    }
    // Steps that leave the lattice are dropped, or wrapped round when periodic.
    let step = |x: usize, delta: isize, len: usize| -> Option<usize> {
        let y = x as isize + delta;
        if (0..len as isize).contains(&y) {
            Some(y as usize)
        } else if periodic {
            Some(y.rem_euclid(len as isize) as usize)
        } else {
            None
        }
    };
    let mut adjacency = Vec::with_capacity(n);
    for r in 0..rows {
        for c in 0..cols {
            let vertical = [-1, 1].map(|d| step(r, d, rows).map(|rr| rr * cols + c));
            let horizontal = [-1, 1].map(|d| step(c, d, cols).map(|cc| r * cols + cc));
            let me = r * cols + c;
            adjacency.push(
                vertical
                    .into_iter()
                    .chain(horizontal)
                    .flatten()
                    .filter(|&j| j != me)
                    .map(|j| j as u32)
                    .collect(),
            );
        }
    }
    Ok(adjacency)
}

/// G(n, p) by geometric skipping over the pairs (Batagelj & Brandes 2005): O(n + edges) draws
/// instead of one per pair, so large sparse networks build quickly.
fn random_sparse(
    n: usize,
    mean_degree: f64,
    rng: &mut impl rand::Rng,
) -> Result<Vec<BTreeSet<u32>>, NetworkError> {
    let max_degree = (n - 1) as f64;
    if !(0.0..=max_degree).contains(&mean_degree) {
        return fail(format!(
            "random_sparse topology needs 0 ≤ mean_degree ≤ nodes − 1 = {max_degree} \
             (got {mean_degree})"
        ));
    }
    let mut adjacency = vec![BTreeSet::new(); n];
    // ln_1p keeps a tiny p from rounding to ln(1) = 0; a p that is still 0 has no edges at all.
    let log_q = (-mean_degree / max_degree).ln_1p();
    if log_q.is_nan() || log_q >= 0.0 {
        return Ok(adjacency);
    }
    let n_i = n as i64;
    let (mut v, mut w) = (1_i64, -1_i64);
    while v < n_i {
        let r: f64 = rng.random();
        // Pairs to skip before the next edge; saturates for huge skips, which just end the walk.
        let skip = ((-r).ln_1p() / log_q).floor() as i64;
        w = w.saturating_add(1).saturating_add(skip);
        while w >= v && v < n_i {
            w -= v;
            v += 1;
        }
        if v < n_i {
            adjacency[v as usize].insert(w as u32);
            adjacency[w as usize].insert(v as u32);
        }
    }
    Ok(adjacency)
}

/// Watts–Strogatz rewiring of the ring, edge by edge as in networkx: the edge `(u, u + d)` moves
/// to `(u, w)` with `w` drawn uniformly from the nodes not yet linked to `u`.
fn small_world(
    n: usize,
    k: usize,
    rewire_prob: f64,
    rng: &mut impl rand::Rng,
) -> Result<Vec<BTreeSet<u32>>, NetworkError> {
    if !(0.0..=1.0).contains(&rewire_prob) {
        return fail(format!(
            "small_world topology needs 0 ≤ rewire_prob ≤ 1 (got {rewire_prob})"
        ));
    }
    let mut adjacency = ring(n, k);
    for d in 1..=k / 2 {
        for u in 0..n {
            if rng.random::<f64>() >= rewire_prob || adjacency[u].len() >= n - 1 {
                continue;
            }
            let w = loop {
                let w = rng.random_range(0..n as u32);
                if w as usize != u && !adjacency[u].contains(&w) {
                    break w;
                }
            };
            let v = (u + d) % n;
            adjacency[u].remove(&(v as u32));
            adjacency[v].remove(&(u as u32));
            adjacency[u].insert(w);
            adjacency[w as usize].insert(u as u32);
        }
    }
    Ok(adjacency)
}

impl Csr {
    /// `n` nodes and no edges yet: add each row's edges with [`Csr::push_edge`] (sorted by
    /// source) and close the row with [`Csr::end_row`], rows in node order.
    pub fn empty(n: usize) -> Csr {
        Csr {
            n,
            row_ptr: vec![0],
            col: Vec::new(),
            weight: Vec::new(),
            delay_s: Vec::new(),
        }
    }

    /// An edge from `source` into the row being built, `delay_s` seconds long.
    pub fn push_edge(&mut self, source: u32, weight: f64, delay_s: f64) {
        self.col.push(source);
        self.weight.push(weight);
        self.delay_s.push(delay_s);
    }

    /// Close the row being built.
    pub fn end_row(&mut self) {
        self.row_ptr.push(self.col.len());
    }

    /// Unit-weight, undelayed edges from each node's set of sources (sets keep them sorted).
    fn from_neighbours(adjacency: Vec<BTreeSet<u32>>) -> Csr {
        let mut row_ptr = Vec::with_capacity(adjacency.len() + 1);
        row_ptr.push(0);
        let mut col = Vec::new();
        for sources in &adjacency {
            col.extend(sources);
            row_ptr.push(col.len());
        }
        let edges = col.len();
        Csr {
            n: adjacency.len(),
            row_ptr,
            col,
            weight: vec![1.0; edges],
            delay_s: vec![0.0; edges],
        }
    }

    fn normalize_rows(&mut self) -> Result<(), NetworkError> {
        for i in 0..self.n {
            let row = &mut self.weight[self.row_ptr[i]..self.row_ptr[i + 1]];
            if row.is_empty() {
                continue;
            }
            let sum: f64 = row.iter().sum();
            if !(sum > 0.0 && sum.is_finite()) {
                return fail(format!(
                    "normalize = \"row\" needs each node's incoming weights to sum to a positive \
                     number, but node {i}'s sum to {sum}; use normalize = \"none\" for signed \
                     weights"
                ));
            }
            row.iter_mut().for_each(|w| *w /= sum);
        }
        Ok(())
    }

    /// The target node of edge `e` (the row holding it).
    fn target(&self, e: usize) -> usize {
        self.row_ptr.partition_point(|&start| start <= e) - 1
    }
}

fn edge_delays_s(
    spec: Option<&ParamSpec>,
    csr: &Csr,
    rng: &mut impl rand::Rng,
) -> Result<Vec<f64>, NetworkError> {
    let edges = csr.col.len();
    let Some(spec) = spec else {
        return Ok(vec![0.0; edges]);
    };
    let delays_ms = spec.realize(edges, rng).map_err(|e| {
        NetworkError(format!(
            "delay_ms: {e}; this network has {edges} edges (a list runs by target node, \
             then source node)"
        ))
    })?;
    if let Some(e) = delays_ms.iter().position(|&d| d < 0.0) {
        return fail(format!(
            "delay_ms: the edge into node {} from node {} got a negative delay ({} ms); delays \
             must be ≥ 0 — use a distribution that stays ≥ 0, e.g. uniform",
            csr.target(e),
            csr.col[e],
            delays_ms[e]
        ));
    }
    Ok(delays_ms.into_iter().map(|d| d * 1e-3).collect())
}

/// Weights and delays (zero without a delays file) as a CSR; a zero weight is no edge.
fn read_csv(weights: &Path, delays_ms: Option<&Path>, n: usize) -> Result<Csr, NetworkError> {
    let w = read_matrix(weights, "weights", n, |x| {
        if x.is_finite() {
            Ok(())
        } else {
            Err(format!("weights must be finite, found {x}"))
        }
    })?;
    let d = match delays_ms {
        Some(path) => read_matrix(path, "delays", n, |x| {
            if x >= 0.0 && x.is_finite() {
                Ok(())
            } else {
                Err(format!("delays must be finite and ≥ 0 ms, found {x}"))
            }
        })?,
        None => vec![0.0; w.len()],
    };
    let mut csr = Csr::empty(n);
    for i in 0..n {
        for j in (0..n).filter(|&j| w[i * n + j] != 0.0) {
            csr.push_edge(j as u32, w[i * n + j], d[i * n + j] * 1e-3);
        }
        csr.end_row();
    }
    Ok(csr)
}

/// An `n × n` matrix, row-major, from a comma-separated file; `check` vets each number.
fn read_matrix(
    path: &Path,
    what: &str,
    n: usize,
    check: impl Fn(f64) -> Result<(), String>,
) -> Result<Vec<f64>, NetworkError> {
    let name = path.display();
    let text = std::fs::read_to_string(path).or_else(|e| {
        // Relative paths follow the working directory, not the profile's folder: say which.
        let relative = match std::env::current_dir() {
            Ok(dir) if path.is_relative() && e.kind() == std::io::ErrorKind::NotFound => format!(
                " (a relative path is taken from the working directory, {})",
                dir.display()
            ),
            _ => String::new(),
        };
        fail(format!("cannot read {what} file '{name}': {e}{relative}"))
    })?;
    // Spreadsheets often save a byte-order mark, which would spoil the first number.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut values = Vec::new();
    let mut rows = 0;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        rows += 1;
        let mut columns = 0;
        for (c, field) in line.split(',').enumerate() {
            let field = field.trim();
            let at = || format!("{what} file '{name}' line {line_no}, column {}", c + 1);
            let x: f64 = field
                .parse()
                .or_else(|_| fail(format!("{}: expected a number, found '{field}'", at())))?;
            check(x).or_else(|e| fail(format!("{}: {e}", at())))?;
            values.push(x);
            columns += 1;
        }
        if columns != n {
            return fail(format!(
                "{what} file '{name}' line {line_no} has {columns} values but the model has {n} \
                 nodes; the matrix must be {n}×{n} (one column per source node)"
            ));
        }
    }
    if rows != n {
        return fail(format!(
            "{what} file '{name}' has {rows} rows but the model has {n} nodes; the matrix must \
             be {n}×{n} (one row per target node)"
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::param::{Dist, Sampling};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn rng(seed: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(seed)
    }

    fn spec(topology: Topology) -> NetworkSpec {
        NetworkSpec {
            topology,
            ..NetworkSpec::default()
        }
    }

    fn sparse(spec: &NetworkSpec, n: usize, seed: u64) -> Csr {
        match Coupling::build(spec, n, &mut rng(seed)).unwrap() {
            Coupling::Sparse(csr) => csr,
            other => panic!("expected sparse coupling, got {other:?}"),
        }
    }

    fn error(spec: &NetworkSpec, n: usize) -> String {
        Coupling::build(spec, n, &mut rng(1))
            .unwrap_err()
            .to_string()
    }

    fn sources(csr: &Csr, i: usize) -> &[u32] {
        &csr.col[csr.row_ptr[i]..csr.row_ptr[i + 1]]
    }

    fn degrees(csr: &Csr) -> Vec<usize> {
        csr.row_ptr.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Every row strictly increasing (sorted, no duplicates), no self-loops, every edge mirrored.
    fn assert_simple_undirected(csr: &Csr) {
        assert_eq!(csr.row_ptr.len(), csr.n + 1);
        for i in 0..csr.n {
            let row = sources(csr, i);
            assert!(row.windows(2).all(|p| p[0] < p[1]), "row {i}: {row:?}");
            for &j in row {
                assert_ne!(j as usize, i, "self-loop at {i}");
                assert!(
                    sources(csr, j as usize).binary_search(&(i as u32)).is_ok(),
                    "edge {i} ← {j} has no mirror"
                );
            }
        }
    }

    fn uniform_ms(low: f64, high: f64) -> ParamSpec {
        ParamSpec::Dist(Dist::Uniform {
            low,
            high,
            sampling: Sampling::Random,
        })
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn csv(weights: PathBuf, delays_ms: Option<PathBuf>) -> NetworkSpec {
        spec(Topology::Csv { weights, delays_ms })
    }

    #[test]
    fn ring_gives_every_node_k_nearest_neighbours() {
        let csr = sparse(&spec(Topology::Ring { neighbours: 4 }), 10, 1);
        assert!(degrees(&csr).iter().all(|&d| d == 4));
        assert_eq!(sources(&csr, 0), &[1, 2, 8, 9]);
        assert_eq!(sources(&csr, 5), &[3, 4, 6, 7]);
        assert_simple_undirected(&csr);
        assert!(csr.weight.iter().all(|&w| w == 1.0));
    }

    #[test]
    fn ring_rejects_odd_zero_or_too_many_neighbours() {
        for k in [3, 0, 10, 12] {
            let message = error(&spec(Topology::Ring { neighbours: k }), 10);
            assert!(
                message.contains("ring topology needs an even number of neighbours")
                    && message.contains(&format!("(got {k})"))
                    && message.contains("10 nodes"),
                "{message}"
            );
        }
    }

    #[test]
    fn open_grid_has_corner_edge_and_interior_degrees_2_3_4() {
        let (rows, cols) = (4, 5);
        let grid = Topology::Grid {
            rows,
            cols,
            periodic: false,
        };
        let csr = sparse(&spec(grid), rows * cols, 1);
        for r in 0..rows {
            for c in 0..cols {
                let on_edge = [r == 0 || r == rows - 1, c == 0 || c == cols - 1];
                let expected = 4 - on_edge.iter().filter(|&&b| b).count();
                assert_eq!(degrees(&csr)[r * cols + c], expected, "node ({r}, {c})");
            }
        }
        assert_eq!(sources(&csr, cols + 1), &[1, 5, 7, 11]);
        assert_simple_undirected(&csr);
    }

    #[test]
    fn periodic_grid_gives_every_node_four_neighbours() {
        let grid = Topology::Grid {
            rows: 4,
            cols: 5,
            periodic: true,
        };
        let csr = sparse(&spec(grid), 20, 1);
        assert!(degrees(&csr).iter().all(|&d| d == 4));
        assert_eq!(sources(&csr, 0), &[1, 4, 5, 15]);
        assert_simple_undirected(&csr);
    }

    #[test]
    fn periodic_grid_with_a_side_of_two_counts_the_wrapped_neighbour_once() {
        let grid = Topology::Grid {
            rows: 2,
            cols: 5,
            periodic: true,
        };
        let csr = sparse(&spec(grid), 10, 1);
        assert!(degrees(&csr).iter().all(|&d| d == 3));
        assert_simple_undirected(&csr);
    }

    #[test]
    fn grid_size_must_match_the_node_count() {
        let grid = Topology::Grid {
            rows: 4,
            cols: 5,
            periodic: false,
        };
        let message = error(&spec(grid), 21);
        assert!(
            message.contains("grid 4×5 = 20 cells but the model has 21 nodes"),
            "{message}"
        );
    }

    #[test]
    fn random_sparse_hits_the_requested_mean_degree() {
        let n = 2000;
        let csr = sparse(&spec(Topology::RandomSparse { mean_degree: 10.0 }), n, 42);
        let coupling = Coupling::Sparse(csr.clone());
        let (mean, min, max) = coupling.degree_stats();
        assert!((mean - 10.0).abs() < 0.5, "mean degree {mean}");
        assert!(min < 10 && max > 10, "degrees {min}..{max} show no spread");
        assert_simple_undirected(&csr);
    }

    #[test]
    fn random_sparse_extremes_are_empty_and_complete() {
        let empty = sparse(&spec(Topology::RandomSparse { mean_degree: 0.0 }), 50, 1);
        assert!(empty.col.is_empty());
        let full = sparse(&spec(Topology::RandomSparse { mean_degree: 49.0 }), 50, 1);
        assert!(degrees(&full).iter().all(|&d| d == 49));
        assert_simple_undirected(&full);
    }

    #[test]
    fn random_sparse_rejects_impossible_mean_degrees() {
        for mean_degree in [-1.0, 10.0, f64::NAN] {
            let message = error(&spec(Topology::RandomSparse { mean_degree }), 10);
            assert!(
                message.contains("mean_degree ≤ nodes − 1 = 9")
                    && message.contains(&format!("(got {mean_degree})")),
                "{message}"
            );
        }
    }

    #[test]
    fn small_world_without_rewiring_is_the_ring() {
        let ring = sparse(&spec(Topology::Ring { neighbours: 6 }), 30, 1);
        let sw = Topology::SmallWorld {
            neighbours: 6,
            rewire_prob: 0.0,
        };
        assert_eq!(sparse(&spec(sw), 30, 1), ring);
    }

    #[test]
    fn fully_rewired_small_world_keeps_edge_count_and_symmetry() {
        let ring = sparse(&spec(Topology::Ring { neighbours: 6 }), 30, 1);
        let sw = Topology::SmallWorld {
            neighbours: 6,
            rewire_prob: 1.0,
        };
        let rewired = sparse(&spec(sw), 30, 1);
        assert_eq!(rewired.col.len(), ring.col.len());
        assert_ne!(rewired.col, ring.col);
        assert_simple_undirected(&rewired);
    }

    #[test]
    fn small_world_rejects_bad_probabilities_and_neighbour_counts() {
        let message = error(
            &spec(Topology::SmallWorld {
                neighbours: 4,
                rewire_prob: 1.5,
            }),
            10,
        );
        assert!(message.contains("rewire_prob ≤ 1 (got 1.5)"), "{message}");
        let message = error(
            &spec(Topology::SmallWorld {
                neighbours: 5,
                rewire_prob: 0.5,
            }),
            10,
        );
        assert!(
            message.contains("small_world topology needs an even number of neighbours"),
            "{message}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn generated_graphs_are_simple_and_undirected(
            n in 3usize..80,
            half_k in 1usize..40,
            p in 0.0f64..=1.0,
            seed in any::<u64>(),
        ) {
            let k = 2 * half_k.min((n - 1) / 2);
            let sw = Topology::SmallWorld { neighbours: k, rewire_prob: p };
            let csr = sparse(&spec(sw), n, seed);
            prop_assert_eq!(csr.col.len(), n * k);
            assert_simple_undirected(&csr);
            let rs = Topology::RandomSparse { mean_degree: p * (n - 1) as f64 };
            assert_simple_undirected(&sparse(&spec(rs), n, seed));
        }

        #[test]
        fn no_topology_parameters_panic(
            n in 0usize..40,
            k in prop_oneof![0usize..50, Just(usize::MAX)],
            rows in prop_oneof![0usize..10, Just(usize::MAX)],
            cols in 0usize..10,
            x in prop_oneof![any::<f64>(), -2.0f64..50.0, Just(f64::from_bits(1))],
            periodic in any::<bool>(),
        ) {
            for topology in [
                Topology::AllToAll,
                Topology::Ring { neighbours: k },
                Topology::Grid { rows, cols, periodic },
                Topology::RandomSparse { mean_degree: x },
                Topology::SmallWorld { neighbours: k, rewire_prob: x },
            ] {
                let spec = NetworkSpec {
                    topology,
                    normalize: Normalize::Row,
                    delay_ms: Some(ParamSpec::Value(x)),
                };
                let _ = Coupling::build(&spec, n, &mut rng(1));
            }
        }

        #[test]
        fn no_weights_file_content_panics(text in "[0-9eE.,#x \n+-]{0,80}") {
            let dir = tempfile::tempdir().unwrap();
            let path = write(&dir, "w.csv", &text);
            let _ = Coupling::build(&csv(path, None), 3, &mut rng(1));
        }
    }

    #[test]
    fn row_normalisation_makes_incoming_weights_sum_to_one() {
        let spec = NetworkSpec {
            normalize: Normalize::Row,
            ..spec(Topology::RandomSparse { mean_degree: 1.0 })
        };
        let csr = sparse(&spec, 200, 3);
        let mut empty_rows = 0;
        for i in 0..csr.n {
            let row = &csr.weight[csr.row_ptr[i]..csr.row_ptr[i + 1]];
            if row.is_empty() {
                empty_rows += 1;
            } else {
                let sum: f64 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-12, "row {i} sums to {sum}");
            }
        }
        assert!(
            empty_rows > 0,
            "the seed should leave isolated nodes to cover that case"
        );
    }

    #[test]
    fn row_normalisation_refuses_rows_that_do_not_sum_positive() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "signed.csv", "0,1\n1,-1\n");
        let spec = NetworkSpec {
            normalize: Normalize::Row,
            ..csv(path, None)
        };
        let message = error(&spec, 2);
        assert!(
            message.contains("node 1's sum to 0") && message.contains("normalize = \"none\""),
            "{message}"
        );
    }

    #[test]
    fn same_seed_gives_the_same_coupling() {
        let spec = NetworkSpec {
            topology: Topology::SmallWorld {
                neighbours: 4,
                rewire_prob: 0.3,
            },
            normalize: Normalize::Row,
            delay_ms: Some(uniform_ms(1.0, 20.0)),
        };
        assert_eq!(sparse(&spec, 100, 9), sparse(&spec, 100, 9));
        assert_ne!(sparse(&spec, 100, 9), sparse(&spec, 100, 10));
    }

    #[test]
    fn uniform_delays_land_in_range_per_edge() {
        let spec = NetworkSpec {
            delay_ms: Some(uniform_ms(2.0, 5.0)),
            ..spec(Topology::Ring { neighbours: 4 })
        };
        let coupling = Coupling::build(&spec, 100, &mut rng(5)).unwrap();
        let Coupling::Sparse(csr) = &coupling else {
            panic!("expected sparse coupling");
        };
        assert_eq!(csr.delay_s.len(), 400);
        assert!(csr.delay_s.iter().all(|&d| (0.002..=0.005).contains(&d)));
        let max = csr.delay_s.iter().copied().fold(0.0, f64::max);
        assert_eq!(coupling.max_delay_s(), max);
        assert!(
            max > 0.0049,
            "400 uniform draws should come near 5 ms, max {max}"
        );
        assert_ne!(
            csr.delay_s[0], csr.delay_s[1],
            "delays must differ per edge"
        );
    }

    #[test]
    fn delay_list_follows_csr_order_and_must_match_the_edge_count() {
        let list: Vec<f64> = (0..8).map(f64::from).collect();
        let spec = NetworkSpec {
            delay_ms: Some(ParamSpec::List(list)),
            ..spec(Topology::Ring { neighbours: 2 })
        };
        let csr = sparse(&spec, 4, 1);
        assert_eq!(csr.delay_s[2], 0.002);
        assert_eq!(Coupling::Sparse(csr).max_delay_s(), 0.007);
        let message = error(&spec, 5);
        assert!(
            message.contains("8 values") && message.contains("10 edges"),
            "{message}"
        );
    }

    #[test]
    fn negative_delays_are_refused_with_the_edge_named() {
        let spec = NetworkSpec {
            delay_ms: Some(ParamSpec::Value(-1.0)),
            ..spec(Topology::Ring { neighbours: 2 })
        };
        let message = error(&spec, 4);
        assert!(
            message.contains("into node 0 from node 1") && message.contains("≥ 0"),
            "{message}"
        );
    }

    #[test]
    fn all_to_all_is_a_mean_field_with_one_weight_and_delay() {
        let mut spec = NetworkSpec {
            normalize: Normalize::Row,
            delay_ms: Some(ParamSpec::Value(4.0)),
            ..spec(Topology::AllToAll)
        };
        let coupling = Coupling::build(&spec, 8, &mut rng(1)).unwrap();
        assert_eq!(
            coupling,
            Coupling::AllToAll {
                n: 8,
                weight: 0.125,
                delay_s: 0.004
            }
        );
        assert_eq!(coupling.edge_count(), 64);
        assert_eq!(coupling.degree_stats(), (8.0, 8, 8));
        assert_eq!(coupling.max_delay_s(), 0.004);
        spec.normalize = Normalize::None;
        let coupling = Coupling::build(&spec, 8, &mut rng(1)).unwrap();
        assert!(matches!(coupling, Coupling::AllToAll { weight: 1.0, .. }));
    }

    #[test]
    fn all_to_all_refuses_non_uniform_or_negative_delays() {
        let mut spec = NetworkSpec {
            delay_ms: Some(uniform_ms(1.0, 2.0)),
            ..spec(Topology::AllToAll)
        };
        let message = error(&spec, 8);
        assert!(
            message.contains("topology = \"csv\"") && message.contains("delays_ms"),
            "{message}"
        );
        spec.delay_ms = Some(ParamSpec::Value(-2.0));
        assert!(error(&spec, 8).contains("≥ 0 ms (got -2)"));
        let mut list = vec![3.0; 64];
        spec.delay_ms = Some(ParamSpec::List(list.clone()));
        let coupling = Coupling::build(&spec, 8, &mut rng(1)).unwrap();
        assert_eq!(coupling.max_delay_s(), 0.003);
        list[5] = 4.0;
        spec.delay_ms = Some(ParamSpec::List(list));
        assert!(error(&spec, 8).contains("one delay for every edge"));
    }

    #[test]
    fn no_topology_builds_no_edges() {
        let coupling = Coupling::build(&NetworkSpec::default(), 5, &mut rng(1)).unwrap();
        assert_eq!(coupling, Coupling::None);
        assert_eq!(coupling.edge_count(), 0);
        assert_eq!(coupling.max_delay_s(), 0.0);
    }

    #[test]
    fn zero_or_too_many_nodes_are_refused() {
        let ring = spec(Topology::Ring { neighbours: 2 });
        assert!(error(&ring, 0).contains("0 nodes"));
        assert!(error(&ring, u32::MAX as usize + 1).contains("at most 4294967295"));
    }

    #[test]
    fn csv_round_trip_with_delays() {
        let dir = tempfile::tempdir().unwrap();
        let weights = write(
            &dir,
            "conn.csv",
            "\u{feff}# row = target, column = source\n0, 0.5, 0\r\n\n1e-1,0,2\n0,0,3\n",
        );
        let delays = write(&dir, "delays.csv", "0,4,0\n1.5,0,2.5\n# note\n0,0,10\n");
        let csr = sparse(&csv(weights, Some(delays)), 3, 1);
        let expected = Csr {
            n: 3,
            row_ptr: vec![0, 1, 3, 4],
            col: vec![1, 0, 2, 2],
            weight: vec![0.5, 0.1, 2.0, 3.0],
            delay_s: vec![0.004, 0.0015, 0.0025, 0.010],
        };
        assert_eq!(csr, expected);
        assert_eq!(Coupling::Sparse(csr).max_delay_s(), 0.010);
    }

    #[test]
    fn csv_without_delays_file_has_zero_delays() {
        let dir = tempfile::tempdir().unwrap();
        let weights = write(&dir, "conn.csv", "1,1\n0,1\n");
        let csr = sparse(&csv(weights, None), 2, 1);
        assert_eq!(csr.delay_s, vec![0.0; 3]);
    }

    fn csv_error(weights: &str, delays: Option<&str>, n: usize) -> String {
        let dir = tempfile::tempdir().unwrap();
        let w = write(&dir, "conn.csv", weights);
        let d = delays.map(|text| write(&dir, "delays.csv", text));
        error(&csv(w, d), n)
    }

    #[test]
    fn csv_names_file_line_and_column_of_a_bad_number() {
        let text = "1,0,0,0,0\n# comment\n0,1,0,0,x\n0,0,1,0,0\n0,0,0,1,0\n0,0,0,0,1\n";
        let message = csv_error(text, None, 5);
        assert!(
            message.contains("weights file '")
                && message.contains("conn.csv' line 3, column 5: expected a number, found 'x'"),
            "{message}"
        );
    }

    #[test]
    fn csv_refuses_non_finite_weights() {
        let message = csv_error("1,0\n0,inf\n", None, 2);
        assert!(
            message.contains("line 2, column 2: weights must be finite, found inf"),
            "{message}"
        );
    }

    #[test]
    fn csv_row_count_must_match_the_nodes() {
        let message = csv_error("1,0,0,0,0\n0,1,0,0,0\n0,0,1,0,0\n0,0,0,1,0\n", None, 5);
        assert!(
            message.contains("conn.csv' has 4 rows but the model has 5 nodes"),
            "{message}"
        );
    }

    #[test]
    fn csv_refuses_non_square_and_ragged_matrices() {
        let message = csv_error("1,0,0\n0,1,0\n", None, 2);
        assert!(
            message.contains("line 1 has 3 values but the model has 2 nodes")
                && message.contains("2×2"),
            "{message}"
        );
        let message = csv_error("1,0\n0\n", None, 2);
        assert!(message.contains("line 2 has 1 values"), "{message}");
    }

    #[test]
    fn csv_reports_a_missing_file() {
        let spec = csv(PathBuf::from("missing.csv"), None);
        let message = error(&spec, 2);
        assert!(
            message.starts_with("cannot read weights file 'missing.csv': ")
                && message.contains("No such file or directory")
                && message.contains("taken from the working directory"),
            "{message}"
        );
    }

    #[test]
    fn csv_delays_file_must_be_the_same_shape_and_non_negative() {
        let message = csv_error("0,1\n1,0\n", Some("0,-3\n1,0\n"), 2);
        assert!(
            message.contains("delays file '")
                && message.contains("line 1, column 2: delays must be finite and ≥ 0 ms, found -3"),
            "{message}"
        );
        let message = csv_error("0,1\n1,0\n", Some("0,1\n"), 2);
        assert!(
            message.contains("delays.csv' has 1 rows but the model has 2 nodes"),
            "{message}"
        );
    }

    #[test]
    fn csv_refuses_a_delay_ms_setting() {
        let dir = tempfile::tempdir().unwrap();
        let spec = NetworkSpec {
            delay_ms: Some(ParamSpec::Value(1.0)),
            ..csv(write(&dir, "conn.csv", "0,1\n1,0\n"), None)
        };
        let message = error(&spec, 2);
        assert!(
            message.contains("remove delay_ms") && message.contains("delays_ms"),
            "{message}"
        );
    }

    #[test]
    fn profile_sections_parse_for_every_topology() {
        let cases = [
            ("topology = \"none\"", Topology::None),
            ("topology = \"all_to_all\"", Topology::AllToAll),
            (
                "topology = \"ring\"\nneighbours = 4",
                Topology::Ring { neighbours: 4 },
            ),
            (
                "topology = \"grid\"\nrows = 4\ncols = 5",
                Topology::Grid {
                    rows: 4,
                    cols: 5,
                    periodic: false,
                },
            ),
            (
                "topology = \"random_sparse\"\nmean_degree = 8.0",
                Topology::RandomSparse { mean_degree: 8.0 },
            ),
            (
                "topology = \"small_world\"\nneighbours = 4\nrewire_prob = 0.1",
                Topology::SmallWorld {
                    neighbours: 4,
                    rewire_prob: 0.1,
                },
            ),
            (
                "topology = \"csv\"\nweights = \"conn.csv\"\ndelays_ms = \"d.csv\"",
                Topology::Csv {
                    weights: "conn.csv".into(),
                    delays_ms: Some("d.csv".into()),
                },
            ),
        ];
        for (text, topology) in cases {
            let parsed: NetworkSpec = toml::from_str(text).unwrap();
            assert_eq!(parsed, spec(topology), "{text}");
        }
        let full: NetworkSpec = toml::from_str(
            "topology = \"ring\"\nneighbours = 2\nnormalize = \"row\"\n\
             delay_ms = { dist = \"uniform\", low = 1.0, high = 3.0 }",
        )
        .unwrap();
        assert_eq!(full.normalize, Normalize::Row);
        assert_eq!(full.delay_ms, Some(uniform_ms(1.0, 3.0)));
        let round_trip: NetworkSpec = toml::from_str(&toml::to_string(&full).unwrap()).unwrap();
        assert_eq!(round_trip, full);
    }

    #[test]
    fn misspelt_keys_are_refused() {
        let err = toml::from_str::<NetworkSpec>("topology = \"ring\"\nneighbors = 4").unwrap_err();
        assert!(err.to_string().contains("neighbors"), "{err}");
    }
}
