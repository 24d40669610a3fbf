//! Per-sample cost of every phase estimator (criterion), on a noisy 10 Hz rhythm at 1 kHz
//! (EEG rates) and 48 kHz (audio rate), predicting 2 ms ahead.
//!
//! `cargo bench --bench estimators`; figures are recorded in benches/README.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use entrain::evaluate;
use std::hint::black_box;

fn estimators(c: &mut Criterion) {
    for fs in [1000.0, 48_000.0] {
        let seconds = 10.0;
        let signal = evaluate::synthetic_set(fs, seconds, 1)
            .unwrap()
            .into_iter()
            .find(|s| s.name == "sl_snr10db")
            .unwrap();
        for spec in evaluate::estimators() {
            let training = &signal.x[..(fs * evaluate::TRAINING_S) as usize];
            let mut estimator =
                (spec.build)(fs, signal.band, 0.002 * fs, training).expect("builds");
            let mut group = c.benchmark_group(format!("estimator_{}_{}hz", spec.name, fs as u64));
            group.throughput(Throughput::Elements(signal.x.len() as u64));
            group.sample_size(10);
            group.bench_function("process_10s", |b| {
                b.iter(|| {
                    for &x in &signal.x {
                        black_box(estimator.process(black_box(x)));
                    }
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, estimators);
criterion_main!(benches);
