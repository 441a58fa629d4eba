//! `serin-load drill`: runs one of the seed runbooks' rollback drills
//! against a running serin through its drills API — optionally with load
//! of its own so the engine has traffic to judge — and reports detection,
//! decision and rollback times and the client-visible errors.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use crate::{LoadConfig, Report};

/// What to rehearse, and where.
#[derive(Debug, Clone)]
pub struct DrillConfig {
    /// The admin API, e.g. `http://127.0.0.1:9901`.
    pub admin: String,
    pub token: Option<String>,
    pub route: String,
    pub version: String,
    /// `inject_errors`, `inject_latency` or `partial_outage`.
    pub scenario: String,
    pub rate: f64,
    pub latency: String,
    pub duration: Duration,
    /// Load to send through serin while the drill runs.
    pub traffic: Option<(Uri, f64)>,
}

/// A drill that could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("admin API: {0}")]
    Http(String),
    #[error("admin API answered {status}: {body}")]
    Refused { status: StatusCode, body: String },
}

type AdminClient = Client<HttpConnector, Full<Bytes>>;

/// Starts the drill, waits until the version is rolled back or the drill
/// ends, and returns the server's report (plus the load report, if any).
///
/// # Errors
/// When the admin API cannot be reached or refuses the drill.
pub async fn run(cfg: DrillConfig) -> Result<(Value, Option<Report>), DrillError> {
    let client: AdminClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let body = json!({
        "route": cfg.route, "version": cfg.version, "scenario": cfg.scenario,
        "rate": cfg.rate, "latency": cfg.latency,
        "duration": format!("{}ms", cfg.duration.as_millis()),
    });
    let load = cfg.traffic.clone().map(|(url, rate)| {
        tokio::spawn(crate::run(LoadConfig {
            rate,
            duration: cfg.duration + Duration::from_secs(2),
            connections: 16,
            ..LoadConfig::new(url)
        }))
    });
    let started = call(&client, &cfg, Method::POST, "/api/v1/drills", Some(body)).await?;
    let id = started["id"].as_str().unwrap_or_default().to_owned();
    let deadline = tokio::time::Instant::now() + cfg.duration + Duration::from_secs(5);
    let mut report = started;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        report = call(
            &client,
            &cfg,
            Method::GET,
            &format!("/api/v1/drills/{id}"),
            None,
        )
        .await?;
        if report["state"] == "done" {
            break;
        }
    }
    let load = match load {
        Some(task) => task.await.ok().and_then(Result::ok),
        None => None,
    };
    Ok((report, load))
}

async fn call(
    client: &AdminClient,
    cfg: &DrillConfig,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, DrillError> {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", cfg.admin.trim_end_matches('/')))
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = &cfg.token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let req = req
        .body(Full::new(body))
        .map_err(|e| DrillError::Http(e.to_string()))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| DrillError::Http(e.to_string()))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| DrillError::Http(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(DrillError::Refused {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| DrillError::Http(e.to_string()))
}

/// The report as a table a person reads.
pub fn table(report: &Value, load: Option<&Report>) -> String {
    let s = |k: &str| {
        report[k]
            .as_f64()
            .map_or("-".to_owned(), |v| format!("{v:.2}s"))
    };
    let expected = report["expected_under_s"].as_f64().unwrap_or(0.0);
    let total = report["total_s"].as_f64();
    let verdict = match total {
        Some(t) if t < expected => format!(
            "PASS ({t:.1}s < {:.0} min expected by the runbook)",
            expected / 60.0
        ),
        Some(t) => format!(
            "SLOW ({t:.1}s, runbook expects < {:.0} min)",
            expected / 60.0
        ),
        None => "NOT ROLLED BACK during the drill".to_owned(),
    };
    let mut out = format!(
        "drill {} {} on {}/{}\n  detection (fault → breach)      {}\n  decision  (breach → action)     {}\n  rollback  (action → weight 0)   {}\n  total                           {}\n  client errors                   {} of {}\n  verdict                         {verdict}\n",
        report["id"].as_str().unwrap_or("?"),
        report["spec"]["scenario"].as_str().unwrap_or("?"),
        report["spec"]["route"].as_str().unwrap_or("?"),
        report["spec"]["version"].as_str().unwrap_or("?"),
        s("detection_s"),
        s("decision_s"),
        s("rollback_s"),
        s("total_s"),
        report["client_errors"],
        report["client_requests"],
    );
    if let Some(l) = load {
        out.push_str(&format!(
            "  load: {} requests, {} errors seen by serin-load\n",
            l.requests, l.errors
        ));
    }
    out
}
