use std::sync::Arc;
use std::time::Duration;

use super::{Outcome, Telemetry};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// Within hdrhistogram's 3 significant digits (bucket width ≤ 0.1 %).
fn assert_close(got: Option<Duration>, want: Duration) {
    let got = got.expect("a value").as_secs_f64();
    let want = want.as_secs_f64();
    assert!((got - want).abs() <= want * 1e-3, "got {got}, want {want}");
}

/// Advances the paused clock one slot at a time, folding after each.
async fn run_slots(t: &Telemetry, n: u32) {
    for _ in 0..n {
        tokio::time::advance(SEC).await;
        t.tick();
    }
}

#[test]
fn outcome_labels() {
    let labels: Vec<_> = Outcome::ALL.iter().map(|o| o.label()).collect();
    assert_eq!(
        labels,
        [
            "success",
            "5xx",
            "connect",
            "timeout",
            "client_timeout",
            "client_abort"
        ]
    );
    assert!(!Outcome::Success.is_error());
    assert!(Outcome::UPSTREAM[1..].iter().all(|o| o.is_error()));
    assert!(Outcome::ALL[4..]
        .iter()
        .all(|o| o.is_client() && !o.is_error()));
}

#[tokio::test(start_paused = true)]
async fn client_outcomes_are_requests_but_never_errors_nor_latency() {
    let t = Telemetry::new().with_retention(Duration::from_secs(60));
    let r = t.route("client-outcomes");
    r.record(Outcome::Success, Duration::from_millis(5));
    r.record(Outcome::Status5xx, Duration::from_millis(5));
    r.record(Outcome::ClientTimeout, Duration::from_secs(60));
    r.record(Outcome::ClientAbort, Duration::from_secs(30));
    for folded in [false, true] {
        let w = r.window(Duration::from_secs(10));
        assert_eq!(w.requests, 4, "folded: {folded}");
        assert_eq!(w.errors, 1);
        assert_eq!(w.error_rate(), Some(0.25));
        assert_eq!((w.client_timeouts, w.client_aborts), (1, 1));
        assert_eq!(w.samples(), 2, "a client's give-up time is not a latency");
        assert!(w.percentile(100.0).unwrap() < Duration::from_millis(10));
        run_slots(&t, 1).await;
    }
}

#[test]
fn same_arc_for_the_same_pair() {
    let t = Telemetry::new();
    let a = t.version("r", "v1");
    assert!(Arc::ptr_eq(&a, &t.version("r", "v1")));
    assert!(!Arc::ptr_eq(&a, &t.version("r", "v2")));
    assert!(!Arc::ptr_eq(&a, &t.version("other", "v1")));
    assert!(Arc::ptr_eq(&t.route("r"), &t.route("r")));
    assert_eq!((a.route(), a.version()), ("r", Some("v1")));
    assert_eq!(t.route("r").version(), None);
    let names: Vec<_> = t
        .versions("r")
        .iter()
        .map(|s| s.version().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["v1", "v2"]);
}

#[tokio::test(start_paused = true)]
async fn counts_and_error_kinds_add_up() {
    let t = Telemetry::new();
    let s = t.version("counts", "v2");
    for (outcome, n) in [
        (Outcome::Success, 70),
        (Outcome::Status5xx, 15),
        (Outcome::Connect, 10),
        (Outcome::Timeout, 5),
    ] {
        for _ in 0..n {
            s.record(outcome, 3 * MS);
        }
    }
    for _ in 0..12 {
        s.record_fallback();
    }
    // Unfolded (current slot) and folded read the same.
    for fold in [false, true] {
        if fold {
            tokio::time::advance(SEC).await;
            t.tick();
            assert_eq!(s.slots(), 1);
        }
        let w = s.window(10 * SEC);
        assert_eq!(w.requests, 100);
        assert_eq!(w.errors, 30);
        assert_eq!((w.status_5xx, w.connect_errors, w.timeouts), (15, 10, 5));
        assert_eq!(w.fallbacks, 12);
        assert_eq!(w.samples(), 100);
        assert_eq!(w.error_rate(), Some(0.3));
        assert!((w.availability().unwrap() - 0.7).abs() < 1e-12);
        assert!((w.rps() - 10.0).abs() < 1e-12);
    }
}

#[tokio::test(start_paused = true)]
async fn percentiles_of_known_samples() {
    let t = Telemetry::new();
    let s = t.version("pct", "v1");
    for i in 0..2000 {
        s.record(
            Outcome::Success,
            if i % 2 == 0 { 20 * MS } else { 150 * MS },
        );
        if i == 999 {
            run_slots(&t, 1).await; // half folded, half current
        }
    }
    let w = s.window(60 * SEC);
    assert_close(w.percentile(50.0), 20 * MS);
    assert_close(w.percentile(90.0), 150 * MS);
    assert_close(w.percentile(99.9), 150 * MS);
    assert_close(w.mean(), 85 * MS);
    assert_eq!(w.count_above(100 * MS), 1000);
    assert_eq!(w.count_above(150 * MS), 0);
}

#[tokio::test(start_paused = true)]
async fn empty_window_has_no_rates() {
    let t = Telemetry::new();
    let w = t.version("empty", "v1").window(5 * SEC);
    assert_eq!(w.requests, 0);
    assert_eq!((w.error_rate(), w.availability()), (None, None));
    assert_eq!((w.percentile(99.0), w.mean()), (None, None));
    assert_eq!((w.rps(), w.count_above(MS)), (0.0, 0));
}

#[tokio::test(start_paused = true)]
async fn windows_age_out() {
    let t = Telemetry::new();
    let s = t.version("age", "v1");
    for _ in 0..100 {
        s.record(Outcome::Status5xx, 10 * MS);
    }
    run_slots(&t, 10).await;
    assert_eq!(s.window(5 * SEC).requests, 0);
    assert_eq!(s.window(15 * SEC).requests, 100);
    s.record(Outcome::Success, MS);
    assert_eq!(s.window(5 * SEC).requests, 1);
}

#[tokio::test(start_paused = true)]
async fn a_window_holds_its_length_in_slots() {
    let t = Telemetry::new();
    let s = t.version("slots", "v1");
    for _ in 0..20 {
        s.record(Outcome::Success, MS);
        run_slots(&t, 1).await;
    }
    assert_eq!(s.window(5 * SEC).requests, 5);
    assert_eq!(s.window(SEC).requests, 1);
    // Mid-slot, the half slot still unfolded stands in for the oldest one.
    tokio::time::advance(SEC * 6 / 10).await;
    assert_eq!(s.window(5 * SEC).requests, 4);
}

#[tokio::test(start_paused = true)]
async fn retention_drops_old_slots() {
    let t = Telemetry::new().with_retention(10 * SEC);
    let s = t.version("retention", "v1");
    for _ in 0..30 {
        s.record(Outcome::Success, MS);
        run_slots(&t, 1).await;
    }
    assert_eq!(s.slots(), 10);
    assert_eq!(s.window(60 * SEC).requests, 10);
    run_slots(&t, 11).await;
    assert_eq!(s.slots(), 0);
}

#[test]
fn concurrent_threads_lose_no_count() {
    let t = Telemetry::new();
    let s = t.version("threads", "v1");
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..100_000u64 {
                    s.record(
                        Outcome::Success,
                        Duration::from_micros(thread * 1000 + i % 1000),
                    );
                }
                s.record_fallback();
            });
        }
    });
    let w = s.window(60 * SEC);
    assert_eq!(
        (w.requests, w.samples(), w.fallbacks),
        (400_000, 400_000, 4)
    );
    t.tick();
    let w = s.window(60 * SEC);
    assert_eq!(
        (w.requests, w.samples(), w.fallbacks),
        (400_000, 400_000, 4)
    );
}

#[tokio::test(start_paused = true)]
async fn disabled_records_nothing() {
    let t = Telemetry::new();
    let s = t.version("off", "v1");
    t.set_enabled(false);
    s.record(Outcome::Success, MS);
    s.record_fallback();
    assert_eq!(s.window(SEC).requests, 0);
    t.set_enabled(true);
    s.record(Outcome::Success, MS);
    assert_eq!(s.window(SEC).requests, 1);
}

#[tokio::test(start_paused = true)]
async fn latency_is_clamped_to_60s() {
    let t = Telemetry::new();
    let s = t.version("clamp", "v1");
    s.record(Outcome::Timeout, Duration::from_secs(3600));
    assert_close(s.window(SEC).percentile(100.0), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn spawned_task_folds_and_ends_with_its_owner() {
    let t = Arc::new(Telemetry::new());
    let s = t.version("task", "v1");
    let task = t.spawn();
    s.record(Outcome::Success, MS);
    tokio::time::sleep(SEC * 3 / 2).await;
    assert_eq!(s.slots(), 1);
    assert_eq!(s.window(5 * SEC).requests, 1);
    drop(t);
    tokio::time::sleep(2 * SEC).await;
    assert!(task.is_finished());
}

#[tokio::test(start_paused = true)]
async fn retain_forgets_removed_versions() {
    let t = Telemetry::new();
    let kept = t.version("keep", "v1");
    t.version("keep", "v2");
    t.route("keep");
    t.version("gone", "v1");
    t.retain(|route, version| route == "keep" && version != Some("v2"));
    assert_eq!(t.versions("keep").len(), 1);
    assert!(t.versions("gone").is_empty());
    assert!(Arc::ptr_eq(&kept, &t.version("keep", "v1")));
}

#[tokio::test(start_paused = true)]
async fn fold_publishes_to_prometheus() {
    let handle = crate::metrics::install();
    let t = Telemetry::new();
    let s = t.version("prom-route", "v9");
    for _ in 0..3 {
        s.record(Outcome::Status5xx, 2 * MS);
    }
    s.record(Outcome::Success, 2 * MS);
    t.tick();
    let body = handle.render();
    let has = |line: &str| body.lines().any(|l| l == line);
    assert!(
        has(r#"serin_requests_total{route="prom-route",version="v9",outcome="5xx"} 3"#),
        "{body}"
    );
    assert!(has(
        r#"serin_requests_total{route="prom-route",version="v9",outcome="success"} 1"#
    ));
    assert!(has(
        r#"serin_request_duration_seconds_count{route="prom-route",version="v9"} 4"#
    ));
    assert!(has(
        r#"serin_request_duration_seconds_bucket{route="prom-route",version="v9",le="0.0025"} 4"#
    ));
}

/// The figure in `VersionStats`' doc: 15 minutes at 1k rps, latencies
/// spread 1–200 ms, one recording thread.
#[tokio::test(start_paused = true)]
async fn memory_of_a_busy_version() {
    let t = Telemetry::new();
    let s = t.version("memory", "v1");
    let idle = s.heap_bytes();
    println!("one version, idle: {idle} bytes");
    assert!(idle <= 64 * 256, "{idle} bytes");
    let mut rng = fastrand::Rng::with_seed(42);
    for _ in 0..900 {
        for _ in 0..1000 {
            s.record(
                Outcome::Success,
                Duration::from_micros(rng.u64(1_000..=200_000)),
            );
        }
        run_slots(&t, 1).await;
    }
    let bytes = s.heap_bytes();
    println!(
        "one version, 15 min at 1k rps: {} KB in {} slots",
        bytes / 1024,
        s.slots()
    );
    assert_eq!(s.slots(), 900);
    assert!(bytes < 2_500_000, "{bytes} bytes");
}

#[tokio::test(start_paused = true)]
async fn a_series_cuts_the_slots_into_steps_oldest_first() {
    let t = Telemetry::new().with_retention(Duration::from_secs(60));
    let v = t.version("series", "v1");
    // Slot i (1..=10) holds i requests of i ms; slot 3 also an error.
    for i in 1..=10u32 {
        for _ in 0..i {
            v.record(Outcome::Success, MS * i);
        }
        if i == 3 {
            v.record(Outcome::Status5xx, MS * 3);
        }
        run_slots(&t, 1).await;
    }
    // 12 s in 2 s steps: one empty step before the traffic, then pairs.
    let series = v.series(Duration::from_secs(12), 2 * SEC);
    let requests: Vec<u64> = series.iter().map(|w| w.requests).collect();
    assert_eq!(requests, [0, 1 + 2, 3 + 1 + 4, 5 + 6, 7 + 8, 9 + 10]);
    assert_eq!(series[0].error_rate(), None);
    assert_eq!(series[2].errors, 1);
    assert_eq!(series[5].window, 2 * SEC);
    assert_close(series[5].percentile(100.0), MS * 10);
    assert_close(series[5].percentile(1.0), MS * 9);
    // Every slot counted once: the steps add up to the window.
    let total: u64 = requests.iter().sum();
    assert_eq!(total, v.window(Duration::from_secs(12)).requests);
    // A step shorter than a slot is read as one slot.
    assert_eq!(v.series(2 * SEC, MS).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_fleet_window_merges_the_slots_other_replicas_send_exactly() {
    // Two replicas' stats of the same version.
    let (ta, tb) = (
        Telemetry::new().with_retention(Duration::from_secs(60)),
        Telemetry::new().with_retention(Duration::from_secs(60)),
    );
    let (a, b) = (ta.version("svc", "v2"), tb.version("svc", "v2"));
    for i in 0..100u32 {
        a.record(Outcome::Success, MS * (1 + i % 10));
        b.record(
            if i % 4 == 0 {
                Outcome::Status5xx
            } else {
                Outcome::Success
            },
            MS * (50 + i),
        );
    }
    tokio::time::advance(SEC).await;
    ta.tick();
    tb.tick();
    // b sends its slots; a adds them to its fleet view only.
    let sent = b.slots_after(None);
    assert_eq!(sent.len(), 1);
    for (_, slot) in &sent {
        a.inject(slot);
    }
    assert!(
        b.slots_after(Some(sent[0].0)).is_empty(),
        "nothing new after the last sent"
    );
    let own = a.window(Duration::from_secs(5));
    let fleet = a.fleet_window(Duration::from_secs(5));
    assert_eq!((own.requests, own.errors), (100, 0));
    assert_eq!((fleet.requests, fleet.errors), (200, 25));
    // Histograms merge exactly: the fleet's p99 is b's slow tail.
    assert_close(fleet.percentile(100.0), MS * 149);
    assert_close(fleet.percentile(50.0), MS * 10);
    // Injected slots age out like local ones.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(a.fleet_window(Duration::from_secs(5)).requests, 0);
}
