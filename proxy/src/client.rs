//! `serin status|events|weights|rollback|promote|pause|resume|revisions|
//! restore|maintenance|reload|drill|incidents`: a thin REST client of the
//! admin API.
//!
//! Exit codes scripts can trust: 0 done; 1 the server refused (any 4xx or
//! 5xx; its `{"error"}` message is printed); 2 serin cannot be reached or
//! the command line is wrong. `--json` prints the server's JSON as is;
//! otherwise `client/output.rs` prints tables for people.

mod output;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// How long one call may take, connect to last byte.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The admin API's address when neither `--admin` nor `--config` says.
const DEFAULT_ADMIN: &str = "http://127.0.0.1:9901";

/// Where the admin API is and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The routing file serin runs with: its `[admin] addr` is where to
    /// call, its `[admin] token_env` names the variable holding the token.
    #[arg(long, short, env = "SERIN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The admin API's base URL [default: --config's [admin] addr, else
    /// $SERIN_ADMIN, else http://127.0.0.1:9901].
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    /// Bearer token for changes [default: the variable --config's
    /// token_env names, else $SERIN_ADMIN_TOKEN].
    #[arg(long)]
    pub token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

// === impl Remote ===

impl Remote {
    /// Fills `admin` and `token` from `--config` where the flags (and their
    /// variables) left them unset.
    ///
    /// # Errors
    /// The routing file cannot be read or is not valid.
    fn resolve(mut self) -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        // What the command line names wins; then the routing file it
        // names (an exported SERIN_ADMIN must not send a `-c staging.toml`
        // call elsewhere, nor SERIN_ADMIN_TOKEN go to the file's address);
        // then the environment.
        let Some(path) = &self.config else {
            self.admin = self.admin.or_else(|| var("SERIN_ADMIN"));
            self.token = self.token.or_else(|| var("SERIN_ADMIN_TOKEN"));
            return Ok(self);
        };
        let config = serin_config::load(path).map_err(|e| e.to_string())?;
        if self.admin.is_none() {
            let mut addr = config.admin.addr;
            // A wildcard listen address is reached on loopback.
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            self.admin = Some(format!("http://{addr}"));
        }
        if self.token.is_none() {
            self.token = var(&config.admin.token_env);
        }
        Ok(self)
    }

    /// The admin API's base URL.
    fn base(&self) -> &str {
        self.admin.as_deref().unwrap_or(DEFAULT_ADMIN)
    }
}

/// The REST client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Every route: revision, state, live weights, breaker and health.
    Status {
        #[command(flatten)]
        remote: Remote,
    },
    /// Audit-log events, oldest first.
    Events {
        #[command(flatten)]
        remote: Remote,
        /// Only this route's events.
        #[arg(long)]
        route: Option<String>,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Keep printing new events (polls every second) until interrupted.
        #[arg(long, short)]
        follow: bool,
    },
    /// Set live weights: `serin weights ROUTE v1=90 v2=10`.
    Weights {
        #[command(flatten)]
        remote: Remote,
        /// The route, by name (as in the routing file).
        route: String,
        /// VERSION=WEIGHT pairs; versions not named keep their weight.
        #[arg(required = true, value_parser = parse_weight)]
        weights: Vec<(String, f64)>,
        /// Why, for the audit log and the event.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Roll the route's canary back (immediately unless --gradual).
    Rollback {
        #[command(flatten)]
        remote: Remote,
        /// The route, by name (as in the routing file).
        route: String,
        /// Step the canary down over the route's gradual steps instead of
        /// at once.
        #[arg(long, conflicts_with = "to")]
        gradual: bool,
        /// Send all of the route's traffic to this version (e.g. the
        /// previous release) instead of to the stable one.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Why, for the audit log and the event.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Move the route's rollout to its next step.
    Promote {
        #[command(flatten)]
        remote: Remote,
        /// The route, by name (as in the routing file).
        route: String,
        /// Why, for the audit log and the event.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Freeze the route's rollout.
    Pause {
        #[command(flatten)]
        remote: Remote,
        /// The route, by name (as in the routing file).
        route: String,
        /// Why, for the audit log and the event.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Unfreeze the route's rollout (also brings a rolled-back canary back).
    Resume {
        #[command(flatten)]
        remote: Remote,
        /// The route, by name (as in the routing file).
        route: String,
        /// Why, for the audit log and the event.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The kept routing-file revisions (`*` marks the one in force).
    Revisions {
        #[command(flatten)]
        remote: Remote,
    },
    /// Write revision ID back to the routing file and apply it.
    Restore {
        /// The revision, e.g. r3 (`serin revisions` lists them).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Maintenance mode: every route answers 503 with the message.
    Maintenance {
        #[command(flatten)]
        remote: Remote,
        /// `on` answers every route with 503 and the message; `off` serves again.
        state: OnOff,
        /// What clients read while it is on.
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Re-read the routing file now.
    Reload {
        #[command(flatten)]
        remote: Remote,
    },
    /// Rollback incidents: a table of all, or one incident's report
    /// (Markdown: summary, impact, times, evidence, the audit timeline).
    Incidents {
        #[command(flatten)]
        remote: Remote,
        /// The incident to report on (e.g. i42); without it, every one.
        id: Option<String>,
        /// Only this route's incidents.
        #[arg(long)]
        route: Option<String>,
    },
    /// Rehearse a rollback: inject a fault into one version inside serin,
    /// wait until the engine pulls it (or the drill ends) and print the
    /// timings. `--id` prints the report of a drill already started.
    Drill {
        #[command(flatten)]
        remote: Remote,
        /// The route to drill (not with --id).
        #[arg(required_unless_present = "id")]
        route: Option<String>,
        /// The version that gets the fault: the canary.
        #[arg(required_unless_present = "id")]
        version: Option<String>,
        #[arg(long, value_enum, default_value = "inject-errors")]
        scenario: Scenario,
        /// Share of attempts that fail (inject-errors, partial-outage), 0..1.
        #[arg(long, default_value_t = 0.5)]
        rate: f64,
        /// Added latency (inject-latency), e.g. 2s.
        #[arg(long, default_value = "2s")]
        latency: String,
        /// How long the fault lasts, 1s..1h.
        #[arg(long, default_value = "60s")]
        duration: String,
        /// Print the report at once instead of waiting for the outcome.
        #[arg(long)]
        no_wait: bool,
        /// The report of drill ID (e.g. d1).
        #[arg(long, conflicts_with_all = ["route", "version"])]
        id: Option<String>,
    },
}

/// A drill's fault.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scenario {
    /// Attempts answered 500 at `rate`.
    InjectErrors,
    /// `latency` added to every attempt.
    InjectLatency,
    /// Attempts fail to connect at `rate`.
    PartialOutage,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Why a call failed; each maps to one exit code.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// Exit 2: nothing answered (or the admin URL is wrong).
    #[error("{0}")]
    Unreachable(String),
    /// Exit 1: the server answered with a failure.
    #[error("{status}: {message}")]
    Refused { status: StatusCode, message: String },
}

// === impl ClientCommand ===

impl ClientCommand {
    /// Where this call goes and how.
    fn remote(&self) -> &Remote {
        match self {
            Self::Status { remote }
            | Self::Events { remote, .. }
            | Self::Weights { remote, .. }
            | Self::Rollback { remote, .. }
            | Self::Promote { remote, .. }
            | Self::Pause { remote, .. }
            | Self::Resume { remote, .. }
            | Self::Revisions { remote }
            | Self::Restore { remote, .. }
            | Self::Maintenance { remote, .. }
            | Self::Reload { remote }
            | Self::Drill { remote, .. }
            | Self::Incidents { remote, .. } => remote,
        }
    }

    /// Runs the command against the admin API its flags name.
    pub async fn exec(self) -> ExitCode {
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let remote = match self.remote().clone().resolve() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("serin: --config: {e}");
                return ExitCode::from(2);
            }
        };
        let call = Call {
            client,
            remote: &remote,
        };
        match self.run(&call).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(CallError::Refused { status, message }) => {
                eprintln!("serin: {} refused: {message}", status.as_u16());
                ExitCode::from(1)
            }
            Err(e @ CallError::Unreachable(_)) => {
                eprintln!("serin: {e}");
                ExitCode::from(2)
            }
        }
    }

    async fn run(self, call: &Call<'_>) -> Result<(), CallError> {
        let json = call.remote.json;
        let route_path = |r: &str, what: &str| format!("/api/v1/routes/{}/{what}", encode(r));
        let reason = |r: Option<String>| json!({ "reason": r });
        let (method, path, body) = match self {
            Self::Status { .. } => {
                let v = call.send(Method::GET, "/api/v1/status", None).await?;
                output::print(json, &v, output::status);
                return Ok(());
            }
            Self::Events {
                route,
                since,
                follow,
                ..
            } => return events(call, route, since, follow).await,
            Self::Drill {
                route,
                version,
                scenario,
                rate,
                latency,
                duration,
                no_wait,
                id,
                ..
            } => {
                let v = match (id, route, version) {
                    (Some(id), _, _) => {
                        let path = format!("/api/v1/drills/{}", encode(&id));
                        call.send(Method::GET, &path, None).await?
                    }
                    (None, Some(route), Some(version)) => {
                        let scenario = match scenario {
                            Scenario::InjectErrors => "inject_errors",
                            Scenario::InjectLatency => "inject_latency",
                            Scenario::PartialOutage => "partial_outage",
                        };
                        let body = json!({
                            "route": route, "version": version, "scenario": scenario,
                            "rate": rate, "latency": latency, "duration": duration,
                        });
                        let v = call
                            .send(Method::POST, "/api/v1/drills", Some(body))
                            .await?;
                        if no_wait {
                            v
                        } else {
                            wait_drill(call, v).await?
                        }
                    }
                    _ => unreachable!("clap requires ROUTE and VERSION without --id"),
                };
                output::print(json, &v, output::drill);
                return Ok(());
            }
            Self::Incidents { id, route, .. } => {
                match (id, json) {
                    (Some(id), false) => {
                        let path = format!("/api/v1/incidents/{}?format=markdown", encode(&id));
                        let text = call.text(&path).await?;
                        print!("{text}");
                    }
                    (Some(id), true) => {
                        let path = format!("/api/v1/incidents/{}", encode(&id));
                        let v = call.send(Method::GET, &path, None).await?;
                        output::print(true, &v, output::incidents);
                    }
                    (None, _) => {
                        let mut path = "/api/v1/incidents".to_owned();
                        if let Some(r) = route {
                            path.push_str(&format!("?route={}", encode(&r)));
                        }
                        let v = call.send(Method::GET, &path, None).await?;
                        output::print(json, &v, output::incidents);
                    }
                }
                return Ok(());
            }
            Self::Revisions { .. } => {
                let v = call.send(Method::GET, "/api/v1/revisions", None).await?;
                output::print(json, &v, output::revisions);
                return Ok(());
            }
            Self::Weights {
                route,
                weights,
                reason,
                ..
            } => {
                let weights: BTreeMap<String, f64> = weights.into_iter().collect();
                let body = json!({ "weights": weights, "reason": reason });
                (Method::PUT, route_path(&route, "weights"), Some(body))
            }
            Self::Rollback {
                route,
                gradual,
                to,
                reason,
                ..
            } => {
                let mode = if gradual { "gradual" } else { "immediate" };
                let body = json!({ "mode": mode, "to": to, "reason": reason });
                (Method::POST, route_path(&route, "rollback"), Some(body))
            }
            Self::Promote {
                route, reason: r, ..
            } => (Method::POST, route_path(&route, "promote"), Some(reason(r))),
            Self::Pause {
                route, reason: r, ..
            } => (Method::POST, route_path(&route, "pause"), Some(reason(r))),
            Self::Resume {
                route, reason: r, ..
            } => (Method::POST, route_path(&route, "resume"), Some(reason(r))),
            Self::Restore { id, .. } => (
                Method::POST,
                format!("/api/v1/revisions/{}/restore", encode(&id)),
                None,
            ),
            Self::Reload { .. } => (Method::POST, "/api/v1/reload".to_owned(), None),
            Self::Maintenance { state, message, .. } => {
                let body = json!({ "enabled": matches!(state, OnOff::On), "message": message });
                (Method::PUT, "/api/v1/maintenance".to_owned(), Some(body))
            }
        };
        let v = call.send(method, &path, body).await?;
        output::print(json, &v, output::change);
        Ok(())
    }
}

/// Polls drill `started` until the canary is at 0 or the drill is over.
async fn wait_drill(call: &Call<'_>, started: Value) -> Result<Value, CallError> {
    let path = format!(
        "/api/v1/drills/{}",
        encode(started["id"].as_str().unwrap_or(""))
    );
    let mut v = started;
    while v["state"] == "running" && v["total_s"].is_null() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        v = call.send(Method::GET, &path, None).await?;
    }
    Ok(v)
}

/// `serin events`, once or following.
async fn events(
    call: &Call<'_>,
    route: Option<String>,
    mut since: u64,
    follow: bool,
) -> Result<(), CallError> {
    loop {
        let mut path = format!("/api/v1/events?since={since}");
        if let Some(r) = &route {
            path.push_str(&format!("&route={}", encode(r)));
        }
        let v = call.send(Method::GET, &path, None).await?;
        let events = v["events"].as_array().cloned().unwrap_or_default();
        if let Some(last) = events.last().and_then(|e| e["seq"].as_u64()) {
            since = last;
        }
        match (call.remote.json, follow) {
            // One JSON object per line while following, so a pipe can read it.
            (true, true) => events.iter().for_each(|e| println!("{e}")),
            (true, false) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            (false, _) => events.iter().for_each(output::event),
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

struct Call<'a> {
    client: Client<HttpConnector, Full<Bytes>>,
    remote: &'a Remote,
}

impl Call<'_> {
    /// GET `path` as text (a Markdown report).
    async fn text(&self, path: &str) -> Result<String, CallError> {
        let (status, body) = self.raw(Method::GET, path, None).await?;
        if !status.is_success() {
            return Err(refused(status, &body));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let (status, body) = self.raw(method, path, body).await?;
        if !status.is_success() {
            return Err(refused(status, &body));
        }
        serde_json::from_slice(&body).map_err(|_| CallError::Refused {
            status,
            message: "the answer is not JSON: is --admin serin's admin address?".into(),
        })
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let url = format!("{}{path}", self.remote.base().trim_end_matches('/'));
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(t) = &self.remote.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let bytes = match body {
            Some(b) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(bytes))
            .map_err(|e| CallError::Unreachable(format!("bad --admin URL {url:?}: {e}")))?;
        let unreachable = |e: String| {
            CallError::Unreachable(format!("cannot reach serin at {}: {e}", self.remote.base()))
        };
        let answer = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| unreachable(error_chain(&e)))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            Ok::<_, CallError>((status, body.to_bytes()))
        };
        tokio::time::timeout(CALL_TIMEOUT, answer)
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", CALL_TIMEOUT.as_secs())))?
    }
}

/// A failure answer: its `{"error"}` message, or its text.
fn refused(status: StatusCode, body: &[u8]) -> CallError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    CallError::Refused { status, message }
}

/// The innermost cause is the useful one ("Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// Percent-encodes a path segment or query value (names are usually plain).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse_weight(s: &str) -> Result<(String, f64), String> {
    let (name, w) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not VERSION=WEIGHT, e.g. v2=10"))?;
    let w: f64 = w
        .parse()
        .map_err(|_| format!("`{w}` in `{s}` is not a number"))?;
    if name.is_empty() {
        return Err(format!("`{s}` has no version name"));
    }
    Ok((name.to_owned(), w))
}
