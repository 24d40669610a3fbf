//! The estimator benchmark behind `entrain evaluate`: signal sets with a known ground-truth
//! phase, every estimator run causally over each signal, and the accuracy table.
//!
//! Owns: [`Signal`] (a record, its band and its ground truth), the synthetic set
//! ([`synthetic_set`]), recorded files ([`load_recording`], WAV or CSV), the estimator registry
//! ([`estimators`]), the metrics ([`evaluate`] → [`Evaluation`]) and the output tables.
//! May call: [`crate::analysis`], [`crate::model`], [`crate::integrate`], [`crate::estimate`].
//!
//! Ground truth (ENGINE.md): the plant's own phase where the generator defines one (`arg z` of a
//! Stuart–Landau node, the exact phase of a synthetic cosine or chirp); otherwise, and always for
//! recorded files, the offline non-causal estimate — zero-phase band-pass of the whole record
//! plus FFT Hilbert ([`crate::analysis::analytic_band`]) — of the clean component where there
//! is one (Jansen–Rit) or of the record itself.
//!
//! Scoring: with a declared latency `L` the estimator's phase predicted `L` ahead at sample `t`
//! is compared with the truth at `t + L`. Samples count once the estimator has settled and two
//! cycles of the band's low edge away from either end of the record (where the offline truth is
//! unreliable), and only where the truth's band amplitude is at least half its median — between
//! bursts a phase means nothing. The statistics are the circular mean error (bias), the
//! circular SD `sqrt(−2 ln R)`, the PLV `R`, and the accuracy index `1 − |Δφ|/180°` averaged;
//! they are also given per quartile of the truth's amplitude (over all scored samples, before
//! the half-median threshold). The cost per sample is the wall time of the causal pass.

use crate::analysis::{analytic_band, circular_stats, wrap_angle};
use crate::estimate::{
    ArBurg, ArBurgConfig, BandpassHilbert, BandpassHilbertConfig, Echt, EchtConfig, Etp, EtpConfig,
    KalmanConfig, KalmanOscillator, PhaseEstimator, Pll, PllConfig,
};
use crate::integrate::Scheme;
use crate::model::jansen_rit::{JansenRit, JansenRitParams};
use crate::model::pink::PinkNoise;
use crate::model::{Coupling, ParamSpec, Plant, PlantCommon, StuartLandau, StuartLandauParams};
use crate::wav::{read_channel, ReadError};
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// Header of `evaluate.csv` (a stable contract).
pub const EVALUATE_HEADER: &str = "signal,estimator,bias_deg,sd_deg,plv,accuracy,ns_per_sample";
/// Header of `evaluate_strata.csv`: the same figures per amplitude quartile.
pub const STRATA_HEADER: &str = "signal,estimator,snr_db,stratum,bias_deg,sd_deg,plv,accuracy,n";

/// SNRs of the synthetic Stuart–Landau set, dB.
pub const SNRS_DB: [f64; 6] = [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0];

/// A record to estimate the phase of, with its ground truth.
#[derive(Clone, Debug)]
pub struct Signal {
    /// Name in the tables (`sl_snr10db`, a file's stem, …).
    pub name: String,
    /// Hz.
    pub sample_rate_hz: f64,
    /// The record (what the estimators see).
    pub x: Vec<f64>,
    /// Ground-truth phase per sample, rad; NaN where there is none.
    pub truth: Vec<f64>,
    /// Ground-truth band amplitude per sample (input units).
    pub truth_amplitude: Vec<f64>,
    /// The rhythm's band, Hz (the estimators' band).
    pub band: (f64, f64),
    /// Signal-to-background power ratio of synthetic records, dB.
    pub snr_db: Option<f64>,
}

/// Circular error statistics of one estimator on one signal (or one stratum of it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorStats {
    /// Circular mean error, degrees.
    pub bias_deg: f64,
    /// Circular SD, degrees.
    pub sd_deg: f64,
    /// Phase-locking value of the error (mean resultant length).
    pub plv: f64,
    /// Mean of `1 − |Δφ|/180°`.
    pub accuracy: f64,
    /// Samples scored.
    pub n: usize,
}

/// The result of one estimator on one signal.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Signal name.
    pub signal: String,
    /// Estimator name.
    pub estimator: String,
    /// The signal's SNR, dB, if synthetic.
    pub snr_db: Option<f64>,
    /// Over every scored sample above the amplitude threshold.
    pub all: ErrorStats,
    /// Per quartile of the truth's amplitude (lowest first).
    pub quartiles: [ErrorStats; 4],
    /// Wall time of the causal pass per sample, ns.
    pub ns_per_sample: f64,
}

/// Builds an estimator for a signal: sample rate (Hz), band (Hz), prediction (samples), and a
/// training stretch (the record's first seconds) for estimators that fit parameters.
pub type BuildEstimator =
    fn(f64, (f64, f64), f64, &[f64]) -> Result<Box<dyn PhaseEstimator>, String>;

/// A named estimator constructor.
#[derive(Clone, Copy)]
pub struct EstimatorSpec {
    /// Name in the tables (the profile's `[estimator] kind`).
    pub name: &'static str,
    /// Its constructor.
    pub build: BuildEstimator,
}

/// Every estimator entrain has, with the settings `evaluate` uses for all signals.
pub fn estimators() -> Vec<EstimatorSpec> {
    vec![
        EstimatorSpec {
            name: "bandpass_hilbert",
            build: |fs, (low_hz, high_hz), predict, _| {
                let config = BandpassHilbertConfig {
                    low_hz,
                    high_hz,
                    sections: 2,
                    freq_smoothing_s: 0.2,
                };
                Ok(Box::new(BandpassHilbert::new(&config, fs, predict)?))
            },
        },
        EstimatorSpec {
            name: "echt",
            build: |fs, (low_hz, high_hz), predict, _| {
                let config = EchtConfig::with_band(low_hz, high_hz, fs);
                Ok(Box::new(Echt::new(&config, fs, predict)?))
            },
        },
        EstimatorSpec {
            name: "ar_burg",
            build: |fs, (low_hz, high_hz), predict, _| {
                let config = ArBurgConfig::with_band(low_hz, high_hz, fs);
                Ok(Box::new(ArBurg::new(&config, fs, predict)?))
            },
        },
        EstimatorSpec {
            name: "pll",
            build: |fs, (low_hz, high_hz), predict, _| {
                let config = PllConfig {
                    low_hz,
                    high_hz,
                    loop_bandwidth_hz: (low_hz / 5.0).min(1.0),
                    ..PllConfig::default()
                };
                Ok(Box::new(Pll::new(&config, fs, predict)?))
            },
        },
        EstimatorSpec {
            name: "etp",
            build: |fs, (low_hz, high_hz), predict, _| {
                let config = EtpConfig {
                    low_hz,
                    high_hz,
                    ..EtpConfig::default()
                };
                Ok(Box::new(Etp::new(&config, fs, predict)?))
            },
        },
        EstimatorSpec {
            name: "kalman",
            build: |fs, band, predict, training| kalman(fs, band, predict, training, 1),
        },
        EstimatorSpec {
            name: "kalman_3osc",
            build: |fs, band, predict, training| kalman(fs, band, predict, training, 3),
        },
    ]
}

/// A Kalman oscillator model with `oscillators` oscillators fitted on `training`, reporting the
/// one nearest the band's centre.
fn kalman(
    fs: f64,
    (low_hz, high_hz): (f64, f64),
    predict: f64,
    training: &[f64],
    oscillators: usize,
) -> Result<Box<dyn PhaseEstimator>, String> {
    let config = KalmanConfig {
        freq_hz: (low_hz * high_hz).sqrt(),
        oscillators,
        train_s: TRAINING_S,
    };
    Ok(Box::new(KalmanOscillator::fit(
        training, fs, &config, predict,
    )?))
}

/// The loop's delay in whole samples: `latency_s` at `fs` Hz, rounded.
pub fn latency_samples(latency_s: f64, fs: f64) -> usize {
    (latency_s * fs).round().max(0.0) as usize
}

/// Run `spec` causally over `signal` with a declared latency of `latency_s` and score it.
pub fn evaluate(
    signal: &Signal,
    spec: &EstimatorSpec,
    latency_s: f64,
) -> Result<Evaluation, String> {
    let fs = signal.sample_rate_hz;
    let lag = latency_samples(latency_s, fs);
    let training = &signal.x[..signal.x.len().min((fs * TRAINING_S) as usize)];
    let mut estimator = (spec.build)(fs, signal.band, lag as f64, training)
        .map_err(|e| format!("{} on {}: {e}", spec.name, signal.name))?;
    let mut predicted = vec![0.0; signal.x.len()];
    let started = Instant::now();
    for (p, &x) in predicted.iter_mut().zip(&signal.x) {
        *p = estimator.process(x).predicted_phase_rad;
    }
    let ns_per_sample = started.elapsed().as_nanos() as f64 / signal.x.len().max(1) as f64;

    let margin = ((2.0 / signal.band.0) * fs).ceil() as usize;
    let first = estimator.settling_samples().max(margin);
    let end = signal.x.len().saturating_sub(margin);
    // (error, truth amplitude) of every scored sample.
    let scored: Vec<(f64, f64)> = (first..end.saturating_sub(lag))
        .filter(|&t| signal.truth[t + lag].is_finite())
        .map(|t| {
            (
                wrap_angle(predicted[t] - signal.truth[t + lag]),
                signal.truth_amplitude[t + lag],
            )
        })
        .collect();
    if scored.is_empty() {
        return Err(format!(
            "{} on {}: no sample to score: the record ({:.2} s) is not longer than the \
             estimator's settling time ({:.2} s), the margins at both ends ({:.2} s each) and \
             the latency ({:.2} s) together; give a longer record",
            spec.name,
            signal.name,
            signal.x.len() as f64 / fs,
            first as f64 / fs,
            margin as f64 / fs,
            lag as f64 / fs
        ));
    }
    let mut amplitudes: Vec<f64> = scored.iter().map(|s| s.1).collect();
    amplitudes.sort_by(f64::total_cmp);
    let quantile = |q: f64| amplitudes[((amplitudes.len() - 1) as f64 * q).round() as usize];
    let threshold = 0.5 * quantile(0.5);
    let bounds = [quantile(0.25), quantile(0.5), quantile(0.75)];
    let all = stats(scored.iter().filter(|s| s.1 >= threshold).map(|s| s.0));
    let quartiles = std::array::from_fn(|q| {
        stats(
            scored
                .iter()
                .filter(|s| {
                    let above = q == 0 || s.1 >= bounds[q - 1];
                    let below = q == 3 || s.1 < bounds[q];
                    above && below
                })
                .map(|s| s.0),
        )
    });
    Ok(Evaluation {
        signal: signal.name.clone(),
        estimator: spec.name.to_string(),
        snr_db: signal.snr_db,
        all,
        quartiles,
        ns_per_sample,
    })
}

/// Seconds at the start of each record that estimators which fit parameters may train on.
pub const TRAINING_S: f64 = 5.0;

/// Least RMS of a record's band, relative to the whole record's, for a rhythm to be scored
/// (−60 dB: far below any recording worth scoring, far above a filter's leak of DC).
const MIN_BAND_SHARE: f64 = 1e-3;

fn stats(errors: impl Iterator<Item = f64>) -> ErrorStats {
    let errors: Vec<f64> = errors.collect();
    let Some(c) = circular_stats(errors.iter().copied()) else {
        return ErrorStats::default();
    };
    let accuracy = errors
        .iter()
        .map(|e| 1.0 - e.abs() / std::f64::consts::PI)
        .sum::<f64>()
        / errors.len() as f64;
    ErrorStats {
        bias_deg: c.mean_rad.to_degrees(),
        sd_deg: c.sd_rad.to_degrees(),
        plv: c.r,
        accuracy,
        n: errors.len(),
    }
}

/// The rows of `evaluate.csv`.
pub fn table(evaluations: &[Evaluation]) -> String {
    let mut out = String::from(EVALUATE_HEADER);
    out.push('\n');
    for e in evaluations {
        let _ = writeln!(
            out,
            "{},{},{:.3},{:.3},{:.5},{:.5},{:.1}",
            e.signal,
            e.estimator,
            e.all.bias_deg,
            e.all.sd_deg,
            e.all.plv,
            e.all.accuracy,
            e.ns_per_sample
        );
    }
    out
}

/// The rows of `evaluate_strata.csv`: `all` and the four amplitude quartiles.
pub fn strata_table(evaluations: &[Evaluation]) -> String {
    let mut out = String::from(STRATA_HEADER);
    out.push('\n');
    for e in evaluations {
        let snr = e.snr_db.map(|s| format!("{s}")).unwrap_or_default();
        let rows = std::iter::once(("all".to_string(), e.all)).chain(
            e.quartiles
                .iter()
                .enumerate()
                .map(|(q, s)| (format!("q{}", q + 1), *s)),
        );
        for (stratum, s) in rows {
            let _ = writeln!(
                out,
                "{},{},{snr},{stratum},{:.3},{:.3},{:.5},{:.5},{}",
                e.signal, e.estimator, s.bias_deg, s.sd_deg, s.plv, s.accuracy, s.n
            );
        }
    }
    out
}

/// A cosine's exact phase and amplitude as ground truth.
fn exact(
    name: &str,
    fs: f64,
    band: (f64, f64),
    x: Vec<f64>,
    phase: Vec<f64>,
    amp: Vec<f64>,
    snr: Option<f64>,
) -> Signal {
    Signal {
        name: name.to_string(),
        sample_rate_hz: fs,
        x,
        truth: phase,
        truth_amplitude: amp,
        band,
        snr_db: snr,
    }
}

/// Add 1/f background to `clean` at `snr_db` (total power of the clean signal over total power
/// of the background), from the seeded pink source (lowest corner 0.5 Hz).
fn with_pink(clean: &[f64], fs: f64, snr_db: f64, seed: u64) -> Result<Vec<f64>, String> {
    let power = clean.iter().map(|x| x * x).sum::<f64>() / clean.len().max(1) as f64;
    let scale = (power / 10f64.powf(snr_db / 10.0)).sqrt();
    let mut pink = PinkNoise::new(fs, 0.5, seed)?;
    Ok(clean.iter().map(|x| x + scale * pink.sample()).collect())
}

/// The synthetic set at `fs` Hz, each record `seconds` long (the ecHT protocol is always at
/// 256 Hz): a noisy 10 Hz Stuart–Landau rhythm and a Jansen–Rit alpha rhythm, each at every SNR
/// of [`SNRS_DB`] in 1/f background, bursts and a frequency drift (at 10 dB), and the ecHT
/// paper's clean 2.5 Hz cosine.
pub fn synthetic_set(fs: f64, seconds: f64, seed: u64) -> Result<Vec<Signal>, String> {
    let n = (fs * seconds).round() as usize;
    let mut set = Vec::new();

    // Stuart–Landau: a limit cycle with phase diffusion; truth = arg z.
    let common = PlantCommon {
        nodes: 1,
        scheme: Scheme::EulerMaruyama,
        dt: 1.0 / fs,
        noise_sd: 0.3,
        coupling: Coupling::None,
        gain: 0.0,
        seed,
        history_precision: crate::model::HistoryPrecision::F64,
    };
    let params = StuartLandauParams {
        lambda: ParamSpec::Value(2.0),
        freq_hz: ParamSpec::Value(10.0),
        mu: ParamSpec::Value(2.0),
        beta: ParamSpec::Value(0.0),
        initial_amplitude: None,
        coupled_variable: Default::default(),
    };
    let mut sl = StuartLandau::new(&common, &params)?;
    let none = [Complex64::default()];
    let (mut clean, mut phase, mut amp) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for _ in 0..n {
        let z = sl.z(0);
        clean.push(z.re);
        phase.push(z.arg());
        amp.push(z.norm());
        sl.step(&none);
    }
    for (k, snr) in SNRS_DB.iter().enumerate() {
        let x = with_pink(&clean, fs, *snr, seed + 10 + k as u64)?;
        set.push(exact(
            &format!("sl_snr{snr}db"),
            fs,
            (8.0, 12.0),
            x,
            phase.clone(),
            amp.clone(),
            Some(*snr),
        ));
    }

    // Jansen–Rit: alpha from the 1995 column; truth from the clean output's offline estimate.
    let jr_common = PlantCommon {
        scheme: Scheme::StochasticHeun,
        noise_sd: 5.0,
        ..common.clone()
    };
    let mut jr = JansenRit::new(&jr_common, &JansenRitParams::default())?;
    let warm = (2.0 * fs) as usize;
    let mut y = Vec::with_capacity(n);
    for k in 0..n + warm {
        if k >= warm {
            y.push(jr.observable(0));
        }
        jr.step(&none);
    }
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    y.iter_mut().for_each(|v| *v -= mean);
    let band = (8.0, 13.0);
    let truth = analytic_band(&y, fs, band.0, band.1)?;
    for (k, snr) in SNRS_DB.iter().enumerate() {
        set.push(Signal {
            name: format!("jansen_rit_snr{snr}db"),
            sample_rate_hz: fs,
            x: with_pink(&y, fs, *snr, seed + 20 + k as u64)?,
            truth: truth.iter().map(|z| z.arg()).collect(),
            truth_amplitude: truth.iter().map(|z| z.norm()).collect(),
            band,
            snr_db: Some(*snr),
        });
    }

    // Bursts: 10 Hz cosine under Gaussian envelopes of 0.2–0.6 s SD every 1–3 s.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed + 30);
    let mut centres = Vec::new();
    let mut t = 1.0;
    while t < seconds {
        centres.push((t, 0.2 + 0.4 * rng.random::<f64>()));
        t += 1.0 + 2.0 * rng.random::<f64>();
    }
    let (mut clean, mut phase, mut amp) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for k in 0..n {
        let t = k as f64 / fs;
        let a: f64 = centres
            .iter()
            .map(|(c, w)| (-0.5 * ((t - c) / w).powi(2)).exp())
            .sum();
        let ph = wrap_angle(TAU * 10.0 * t + 0.4);
        clean.push(a * ph.cos());
        phase.push(ph);
        amp.push(a);
    }
    let x = with_pink(&clean, fs, 10.0, seed + 31)?;
    set.push(exact(
        "bursts_snr10db",
        fs,
        (8.0, 12.0),
        x,
        phase,
        amp,
        Some(10.0),
    ));

    // Drift: a chirp from 8.5 to 11.5 Hz over the record.
    let rate = 3.0 / seconds;
    let (mut clean, mut phase) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for k in 0..n {
        let t = k as f64 / fs;
        let ph = wrap_angle(TAU * (8.5 * t + 0.5 * rate * t * t));
        clean.push(ph.cos());
        phase.push(ph);
    }
    let x = with_pink(&clean, fs, 10.0, seed + 40)?;
    set.push(exact(
        "drift_snr10db",
        fs,
        (7.5, 12.5),
        x,
        phase,
        vec![1.0; n],
        Some(10.0),
    ));

    // The ecHT paper's protocol: a clean 2.5 Hz cosine at 256 Hz.
    let fs_echt = 256.0;
    let m = (fs_echt * seconds).round() as usize;
    let phase: Vec<f64> = (0..m)
        .map(|k| wrap_angle(TAU * 2.5 * k as f64 / fs_echt + 1.0))
        .collect();
    let x = phase.iter().map(|p| p.cos()).collect();
    set.push(exact(
        "cosine_2.5hz_256hz",
        fs_echt,
        (2.0, 3.0),
        x,
        phase,
        vec![1.0; m],
        None,
    ));
    Ok(set)
}

/// A recorded file as a signal: WAV (its channel `channel`) or CSV (one value per line, or
/// `time,value` rows from which the rate is taken; a header line is skipped), with its band;
/// the ground truth is the offline estimate of the whole record.
pub fn load_recording(
    path: &Path,
    band: (f64, f64),
    channel: usize,
    csv_rate_hz: Option<f64>,
) -> Result<Signal, String> {
    let shown = path.display();
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let (x, fs) = if is_csv {
        if channel != 0 {
            return Err(format!(
                "--channel {channel}: {shown} is a CSV file, which has one channel"
            ));
        }
        read_csv(path, csv_rate_hz)?
    } else {
        let wav = read_channel(path, channel).map_err(|e| match e {
            ReadError::Channel(e) => format!("--channel {channel}: {e}"),
            ReadError::File(e) => e,
        })?;
        (wav.samples, f64::from(wav.sample_rate))
    };
    let max = crate::estimate::MAX_INPUT;
    if let Some(i) = x.iter().position(|&v| !crate::estimate::usable_input(v)) {
        return Err(format!(
            "{shown}: sample {i} is {} (entrain takes finite samples within ±{max:e}); clean \
             the record first",
            x[i]
        ));
    }
    if !(band.0 > 0.0 && band.0 < band.1 && band.1 < fs / 2.0) {
        return Err(format!(
            "--band {:?}:{:?} for {shown}: expected 0 < LO < HI < {} Hz (half its sample rate)",
            band.0,
            band.1,
            fs / 2.0
        ));
    }
    crate::profile::check_band(band.0, band.1)
        .map_err(|e| format!("--band {:?}:{:?} for {shown}: {e}", band.0, band.1))?;
    let truth = analytic_band(&x, fs, band.0, band.1).map_err(|e| format!("{shown}: {e}"))?;
    // Without a rhythm in the band the truth's phase is arbitrary (arg 0 = 0 for silence), and
    // any estimator would score on noise, or perfectly on nothing.
    let rms = |v: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = v.fold((0.0, 0usize), |(s, n), a| (s + a * a, n + 1));
        (sum / n.max(1) as f64).sqrt()
    };
    let band_rms = rms(&mut truth.iter().map(|z| z.norm()));
    let total_rms = rms(&mut x.iter().copied());
    if band_rms <= MIN_BAND_SHARE * total_rms {
        return Err(format!(
            "{shown}: no rhythm in {}–{} Hz (the band's RMS is {band_rms:.3e}, the record's \
             {total_rms:.3e}); check --band{}",
            band.0,
            band.1,
            if is_csv { "" } else { " and --channel" }
        ));
    }
    Ok(Signal {
        name: path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("recording")
            .to_string(),
        sample_rate_hz: fs,
        x,
        truth: truth.iter().map(|z| z.arg()).collect(),
        truth_amplitude: truth.iter().map(|z| z.norm()).collect(),
        band,
        snr_db: None,
    })
}

fn read_csv(path: &Path, rate_hz: Option<f64>) -> Result<(Vec<f64>, f64), String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut times = Vec::new();
    let mut values = Vec::new();
    // Columns per row, fixed by the first row of numbers.
    let mut columns = None;
    let mut header_seen = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
        let Ok(p) = parsed else {
            if columns.is_none() && !header_seen {
                header_seen = true; // a header line
                continue;
            }
            return Err(format!("{shown}:{}: `{line}` is not a number", i + 1));
        };
        if !matches!(p.len(), 1 | 2) {
            return Err(format!(
                "{shown}:{}: {} columns; expected `value` or `time_s,value`",
                i + 1,
                p.len()
            ));
        }
        match columns {
            None => columns = Some(p.len()),
            Some(c) if c != p.len() => {
                return Err(format!(
                    "{shown}:{}: {} column(s) where the rows before have {c}; give every row \
                     `value` or every row `time_s,value`",
                    i + 1,
                    p.len()
                ))
            }
            Some(_) => {}
        }
        if p.len() == 2 {
            if !p[0].is_finite() {
                return Err(format!(
                    "{shown}:{}: the time {} is not finite",
                    i + 1,
                    p[0]
                ));
            }
            times.push((i + 1, p[0]));
        }
        values.push(p[p.len() - 1]);
    }
    if values.len() < 2 {
        return Err(format!("{shown}: fewer than two samples"));
    }
    let fs = match (rate_hz, times.is_empty()) {
        (Some(_), false) => {
            return Err(format!(
                "--csv-rate with {shown}, whose rows carry their times: drop --csv-rate (the \
                 rate comes from the time column)"
            ))
        }
        (Some(r), true) => r,
        (None, false) => uniform_rate(&times).map_err(|e| format!("{shown}:{e}"))?,
        (None, true) => {
            return Err(format!(
                "{shown}: one column and no rate; give --csv-rate HZ or `time_s,value` rows"
            ))
        }
    };
    if !(fs.is_finite() && fs > 0.0) {
        return Err(format!("{shown}: the sample rate {fs} Hz is not usable"));
    }
    Ok((values, fs))
}

/// The sample rate of `(line, time_s)` rows, which must be evenly spaced: each step within 1 %
/// of the median step (the estimators assume a uniform clock; a gap or a jittery clock would be
/// scored as phase error).
fn uniform_rate(times: &[(usize, f64)]) -> Result<f64, String> {
    let mut steps: Vec<f64> = times.windows(2).map(|p| p[1].1 - p[0].1).collect();
    steps.sort_by(f64::total_cmp);
    let median = steps[steps.len() / 2];
    if !(median.is_finite() && median > 0.0) {
        return Err(format!(
            "{}: the times do not increase; expected `time_s,value` rows in time order",
            times[0].0
        ));
    }
    for pair in times.windows(2) {
        let dt = pair[1].1 - pair[0].1;
        if (dt - median).abs() > 0.01 * median {
            return Err(format!(
                "{}: a step of {dt} s where the others are {median} s; the samples must be \
                 evenly spaced (fill or cut the gap first)",
                pair[1].0
            ));
        }
    }
    let (first, last) = (times[0].1, times[times.len() - 1].1);
    Ok((times.len() - 1) as f64 / (last - first))
}
