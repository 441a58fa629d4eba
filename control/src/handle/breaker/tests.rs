use std::time::Duration;

use super::*;

#[tokio::test(start_paused = true)]
async fn open_half_open_closed() {
    let b = Breaker::new();
    assert_eq!(b.admit(), Admit::Yes);
    assert!(b.trip(Duration::from_secs(30), 2));
    assert!(!b.trip(Duration::from_secs(30), 2), "already open");
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.admit(), Admit::No);
    tokio::time::advance(Duration::from_secs(31)).await;
    // Two probe permits, then skip.
    assert_eq!(b.admit(), Admit::Probe);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.admit(), Admit::Probe);
    assert_eq!(b.admit(), Admit::No);
    b.probe_result(true);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    b.probe_result(true);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.admit(), Admit::Yes);
    assert!(b.closed_for() < Duration::from_millis(1));
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens() {
    let b = Breaker::new();
    b.trip(Duration::from_secs(5), 1);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(b.admit(), Admit::Probe);
    b.probe_result(false);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.admit(), Admit::No);
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(b.admit(), Admit::No, "open_for restarts on a failed probe");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(b.admit(), Admit::Probe);
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_probe_hands_its_permit_to_the_next_request() {
    let b = Breaker::new();
    b.trip(Duration::from_secs(5), 1);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(b.admit(), Admit::Probe);
    let period = b.half_open_period();
    assert_eq!(b.admit(), Admit::No, "one permit");
    b.probe_abandoned(period);
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "neither reopened nor closed"
    );
    assert_eq!(b.admit(), Admit::Probe, "the permit came back");
    b.probe_result(true);
    assert_eq!(b.state(), BreakerState::Closed);
    // Closed: an abandoned probe reported late changes nothing.
    b.probe_abandoned(period);
    assert_eq!(b.admit(), Admit::Yes);
    // Nor does one from an earlier half-open period.
    b.trip(Duration::from_secs(5), 1);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(b.admit(), Admit::Probe);
    b.probe_abandoned(period);
    assert_eq!(
        b.admit(),
        Admit::No,
        "a stale permit was handed to a new period"
    );
}
