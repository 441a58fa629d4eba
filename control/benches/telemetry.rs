//! Telemetry micro-benchmarks, each beside the naive baseline (STYLE.md
//! §13): one `Mutex<Histogram>` shared by every thread.
//!
//! - `record`: the request-path call on one thread, telemetry on and off.
//! - `record_per_thread/{sharded,naive_mutex}/{1,2}`: time per record *per
//!   thread* with 1 and 2 OS threads recording at once into one version.
//!   Equal figures at 1 and 2 threads mean no throughput lost to contention.
//! - `window_5min`: a 5-minute read over 300 folded slots of 1k samples each
//!   (1k rps, latencies 1–200 ms).
//! - `tick`: the once-a-second fold of one version that took 1k samples.
//!
//! `cargo bench -p serin-control --bench telemetry` (under two minutes).

use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use hdrhistogram::Histogram;
use serin_control::{Outcome, Telemetry, VersionStats};

/// A spread of latencies so the histogram writes different counters.
const LATENCIES: [Duration; 8] = [
    Duration::from_micros(850),
    Duration::from_micros(1_900),
    Duration::from_micros(4_300),
    Duration::from_micros(12_000),
    Duration::from_micros(27_500),
    Duration::from_micros(61_000),
    Duration::from_micros(140_000),
    Duration::from_micros(3_100_000),
];

/// The obvious version: one lock for every thread.
#[derive(Default)]
struct Naive {
    inner: Mutex<Option<(Histogram<u64>, [u64; 4])>>,
}

impl Naive {
    fn record(&self, outcome: Outcome, latency: Duration) {
        let mut g = self.inner.lock().unwrap();
        let (hist, counts) = g.get_or_insert_with(|| {
            (
                Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
                [0; 4],
            )
        });
        hist.saturating_record(latency.as_micros() as u64);
        counts[outcome as usize] += 1;
    }
}

fn latency(i: u64) -> Duration {
    LATENCIES[(i & 7) as usize]
}

/// Runs `f` `iters` times on each of `threads` threads started together;
/// returns the slowest thread's own loop time (spawning not included).
fn per_thread(threads: usize, iters: u64, f: &(impl Fn(u64) + Sync)) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let t = Instant::now();
                    for i in 0..iters {
                        f(black_box(i));
                    }
                    t.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap_or_default()
    })
}

fn record(c: &mut Criterion) {
    let t = Telemetry::new();
    let s = t.version("bench", "record");
    let naive = Naive::default();
    let mut g = c.benchmark_group("record");
    let mut i = 0u64;
    g.bench_function("on", |b| {
        b.iter(|| {
            i += 1;
            s.record(Outcome::Success, latency(black_box(i)));
        })
    });
    t.set_enabled(false);
    g.bench_function("off", |b| {
        b.iter(|| {
            i += 1;
            s.record(Outcome::Success, latency(black_box(i)));
        })
    });
    t.set_enabled(true);
    g.bench_function("naive_mutex", |b| {
        b.iter(|| {
            i += 1;
            naive.record(Outcome::Success, latency(black_box(i)));
        })
    });
    g.finish();
}

fn record_per_thread(c: &mut Criterion) {
    let t = Telemetry::new();
    let s = t.version("bench", "threads");
    let naive = Naive::default();
    let mut g = c.benchmark_group("record_per_thread");
    for threads in [1, 2] {
        g.bench_with_input(BenchmarkId::new("sharded", threads), &threads, |b, &n| {
            b.iter_custom(|iters| per_thread(n, iters, &|i| s.record(Outcome::Success, latency(i))))
        });
        g.bench_with_input(
            BenchmarkId::new("naive_mutex", threads),
            &threads,
            |b, &n| {
                b.iter_custom(|iters| {
                    per_thread(n, iters, &|i| naive.record(Outcome::Success, latency(i)))
                })
            },
        );
    }
    g.finish();
}

/// 300 slots of 1k samples, latencies uniform in 1–200 ms.
fn filled(t: &Telemetry) -> std::sync::Arc<VersionStats> {
    let s = t.version("bench", "window");
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..300 {
        for _ in 0..1000 {
            s.record(
                Outcome::Success,
                Duration::from_micros(rng.u64(1_000..=200_000)),
            );
        }
        // Real time: all 300 slots end within the last second, so a
        // 5-minute window reads every one of them.
        t.tick();
    }
    assert_eq!(s.slots(), 300);
    s
}

fn window(c: &mut Criterion) {
    let t = Telemetry::new();
    let s = filled(&t);
    c.bench_function("window_5min/300_slots_x_1k", |b| {
        b.iter(|| {
            let w = s.window(Duration::from_secs(300));
            assert_eq!(w.requests, 300_000);
            black_box(w.percentile(99.0))
        })
    });
}

fn tick(c: &mut Criterion) {
    // Short retention keeps the ring small however many times this folds.
    let t = Telemetry::new().with_retention(Duration::from_secs(1));
    let s = t.version("bench", "tick");
    let mut rng = fastrand::Rng::with_seed(2);
    c.bench_function("tick/1_version_1k_samples", |b| {
        b.iter_batched(
            || {
                for _ in 0..1000 {
                    s.record(
                        Outcome::Success,
                        Duration::from_micros(rng.u64(1_000..=200_000)),
                    );
                }
            },
            |()| t.tick(),
            BatchSize::PerIteration,
        )
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = record, record_per_thread, window, tick
}
criterion_main!(benches);
