//! Webhook notifications (`[[notify]]`): events POSTed as JSON, retried
//! with exponential backoff, off the request path and never blocking the
//! engine — each webhook has its own bounded queue; a full queue drops the
//! event and says so in the log.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serin_config::Notify;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::event::Event;

/// Events waiting per webhook before new ones are dropped.
const QUEUE: usize = 256;
/// Tries per event (the first and the retries).
const TRIES: u32 = 5;
/// First backoff; doubles each retry (0.5 s, 1 s, 2 s, 4 s).
const BACKOFF: Duration = Duration::from_millis(500);
/// One POST may take this long.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The kinds sent when a webhook lists none: the ones someone on call acts on.
pub(crate) const DEFAULT_KINDS: &[&str] = &[
    "level_breached",
    "rollback_started",
    "rollback_completed",
    "promoted",
    "paused",
    "breaker_opened",
    "health_changed",
    "config_rejected",
    "alert",
];

/// Starts one sender per webhook, fed from the event journal. The tasks
/// end when the journal's sender is dropped or they are aborted.
pub fn spawn(hooks: &[Notify], events: broadcast::Receiver<Event>) -> Vec<JoinHandle<()>> {
    if hooks.is_empty() {
        return Vec::new();
    }
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for hook in hooks {
        let (tx, rx) = mpsc::channel(QUEUE);
        senders.push((hook.clone(), tx));
        tasks.push(tokio::spawn(deliver(
            client.clone(),
            hook.webhook.clone(),
            rx,
        )));
    }
    tasks.push(tokio::spawn(fan_out(events, senders)));
    tasks
}

async fn fan_out(
    mut events: broadcast::Receiver<Event>,
    senders: Vec<(Notify, mpsc::Sender<Event>)>,
) {
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "notifications fell behind the journal");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for (hook, tx) in &senders {
            if !wants(hook, &event.kind) {
                continue;
            }
            if tx.try_send(event.clone()).is_err() {
                tracing::warn!(webhook = %hook.webhook, kind = %event.kind, "webhook queue full: event dropped");
            }
        }
    }
}

fn wants(hook: &Notify, kind: &str) -> bool {
    if hook.events.is_empty() {
        DEFAULT_KINDS.contains(&kind)
    } else {
        hook.events.iter().any(|k| k == kind)
    }
}

async fn deliver(
    client: Client<HttpConnector, Full<Bytes>>,
    url: http::Uri,
    mut rx: mpsc::Receiver<Event>,
) {
    while let Some(event) = rx.recv().await {
        let body = match serde_json::to_vec(&event) {
            Ok(b) => Bytes::from(b),
            Err(_) => continue,
        };
        let mut wait = BACKOFF;
        for attempt in 1..=TRIES {
            let req = http::Request::post(url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header("user-agent", "serin")
                .body(Full::new(body.clone()));
            let Ok(req) = req else { break };
            match tokio::time::timeout(TIMEOUT, client.request(req)).await {
                Ok(Ok(resp)) if resp.status().is_success() => break,
                outcome => {
                    let why = match outcome {
                        Ok(Ok(resp)) => format!("HTTP {}", resp.status()),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "timed out".to_owned(),
                    };
                    if attempt == TRIES {
                        tracing::error!(webhook = %url, seq = event.seq, %why, "webhook gave up");
                    } else {
                        tracing::warn!(webhook = %url, seq = event.seq, %why, attempt, "webhook failed, retrying");
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                }
            }
        }
    }
}
