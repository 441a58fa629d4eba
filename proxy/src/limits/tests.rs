use std::time::Duration;

use serin_config::Limits;
use tokio::time::{advance, Instant};

use super::*;

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_new_http1_connection_times_out_as_a_head() {
    let a = Activity::new(false);
    let l = limits();
    assert_eq!(
        a.verdict(&l),
        Verdict::Wait(Instant::now() + Duration::from_secs(10))
    );
    advance(Duration::from_secs(10)).await;
    assert_eq!(a.verdict(&l), Verdict::HeadTimeout);
}

#[tokio::test(start_paused = true)]
async fn idle_keep_alive_is_timed_by_idle_timeout_not_the_head_clock() {
    let a = Activity::new(false);
    let l = limits();
    a.on_read();
    drop(a.begin());
    // Idle after a response: 60 s, not 10.
    advance(Duration::from_secs(30)).await;
    assert!(matches!(a.verdict(&l), Verdict::Wait(_)));
    advance(Duration::from_secs(30)).await;
    assert_eq!(a.verdict(&l), Verdict::Idle);
}

#[tokio::test(start_paused = true)]
async fn a_head_started_on_a_kept_alive_connection_has_ten_seconds() {
    let a = Activity::new(false);
    let l = limits();
    drop(a.begin());
    advance(Duration::from_secs(5)).await;
    a.on_read(); // first byte of the next head
    advance(Duration::from_secs(9)).await;
    a.on_read(); // more bytes do not restart the clock
    assert!(matches!(a.verdict(&l), Verdict::Wait(_)));
    advance(Duration::from_secs(1)).await;
    assert_eq!(a.verdict(&l), Verdict::HeadTimeout);
}

#[tokio::test(start_paused = true)]
async fn nothing_is_timed_while_a_request_is_in_flight() {
    let a = Activity::new(false);
    let l = limits();
    let guard = a.begin();
    advance(Duration::from_secs(600)).await;
    a.on_read(); // body bytes
    assert!(matches!(a.verdict(&l), Verdict::Wait(_)));
    drop(guard);
    advance(Duration::from_secs(59)).await;
    assert!(matches!(a.verdict(&l), Verdict::Wait(_)));
    advance(Duration::from_secs(1)).await;
    assert_eq!(a.verdict(&l), Verdict::Idle);
}

#[tokio::test(start_paused = true)]
async fn http2_has_no_head_clock_only_idleness() {
    let a = Activity::new(true);
    let l = limits();
    a.on_read();
    advance(Duration::from_secs(30)).await;
    assert!(matches!(a.verdict(&l), Verdict::Wait(_)));
    advance(Duration::from_secs(30)).await;
    assert_eq!(a.verdict(&l), Verdict::Idle);
}
