//! The validated routing file: every field typed, every default applied.
//!
//! These types are what the rest of serin sees. They derive `PartialEq` so a
//! reload that changes nothing can be skipped (STYLE.md §4).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::rule::Rule;

/// The longest window a rule, a breaker or the stats API can read: serin's
/// in-process telemetry keeps 1 s slots for this long. A longer `window` in
/// the routing file is refused rather than silently read short.
pub const MAX_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A whole, valid routing file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[listen]`; `http = 127.0.0.1:8080` when the table is absent.
    pub listen: Listen,
    /// `[admin]`
    pub admin: Admin,
    /// `[state]`
    pub state: State,
    /// `[limits]`: every field has a default, so the table is optional.
    pub limits: Limits,
    /// `[engine]`: optional too.
    pub engine: Engine,
    /// `[access_log]`; `None`: no access log.
    pub access_log: Option<AccessLog>,
    /// `[tracing]`; `None`: no span is exported.
    pub tracing: Option<Tracing>,
    /// `[cluster]`; `None`: serin runs alone on its state directory.
    pub cluster: Option<Cluster>,
    /// `[[notify]]`, in file order.
    pub notify: Vec<Notify>,
    /// `[[routes]]`, in file order; names unique.
    pub routes: Vec<Route>,
}

/// `[listen]`: where the data plane accepts clients. At least one of `http`
/// and `https` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    /// HTTP/1.1 and h2c (prior knowledge).
    pub http: Option<SocketAddr>,
    /// TLS with ALPN; `tls_cert` and `tls_key` are both set when this is.
    pub https: Option<SocketAddr>,
    /// PEM certificate chain; set exactly when `https` is.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key; set exactly when `https` is.
    pub tls_key: Option<PathBuf>,
}

/// `[admin]`: the REST API, `/metrics`, `/healthz`.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Default `127.0.0.1:9901`.
    pub addr: SocketAddr,
    /// Environment variable holding the bearer token. Default `SERIN_ADMIN_TOKEN`.
    pub token_env: String,
    /// Require the token on reads too (every endpoint but `/healthz`).
    /// Default false: reads are open, mutations always need the token.
    pub protect_reads: bool,
}

/// `[state]`: persisted live state, revisions and the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Default `var/serin`, relative to the working directory.
    pub dir: PathBuf,
    /// Routing-file revisions kept in `dir/revisions/`, oldest dropped
    /// first. At least 1; default 50.
    pub keep_revisions: usize,
}

/// `[access_log]`: one line per client request, written by a thread of
/// its own (never a blocking write on the request path). Bound when serin
/// starts: a change needs a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// `None`: standard output (`path = "-"`, the default).
    pub path: Option<PathBuf>,
    pub format: AccessFormat,
}

/// `[tracing]`: a span per request, exported over OTLP/HTTP (protobuf)
/// by a thread of its own. Bound when serin starts: a change needs a
/// restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    /// The collector's traces endpoint, `http://HOST:PORT/v1/traces`.
    pub otlp: http::Uri,
    /// `service.name` of serin's spans. Default `serin`.
    pub service_name: String,
    /// Of the traces serin starts (the client sent no `traceparent`), the
    /// share recorded, 0 to 1. A client's trace is recorded when its
    /// `traceparent` says sampled. Default 1.
    pub sample: f64,
}

/// `[cluster]`: replicas of one fleet share live state through etcd v3.
/// Bound when serin starts: a change needs a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// etcd endpoints, `http://HOST:PORT`; at least one.
    pub etcd: Vec<String>,
    /// Every key of this fleet lives under it: starts with `/`, no
    /// trailing `/`. Default `/serin`.
    pub prefix: String,
    /// This replica's name in the fleet. Default: the host name.
    pub node: String,
    /// Cut off from etcd this long, a replica judges its own windows
    /// (default 10s).
    pub partition_after: Duration,
}

/// How an access-log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormat {
    /// One JSON object per line (the default).
    Json,
    /// The NCSA combined format nginx and Apache write.
    Combined,
}

/// `[engine]`: how often the rollout/rollback engine judges every route.
/// Bound when the engine starts: a change needs a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    /// Between two evaluations (default 100 ms, at least 20 ms); a breaker
    /// that opens is judged at once, and a confirm or step wait that ends
    /// between two ticks is acted on when it ends.
    pub tick: Duration,
}

/// `[limits]`: what one client may cost serin, and how long serin waits.
/// Bound when the listeners start: a change needs a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// A request head (HTTP/1.1) must arrive whole within this, counted from
    /// the connection's start or, on a kept-alive connection, from the first
    /// byte of the next request (slowloris). Default 10s.
    pub header_read_timeout: Duration,
    /// Largest request head (HTTP/1.1) or header list (HTTP/2) accepted;
    /// larger gets 431. Default 64 KiB; 8 KiB ..= 1 MiB.
    pub max_header_bytes: u64,
    /// A connection with no request in flight and no bytes moving is closed
    /// after this (HTTP/2: GOAWAY). Default 60s.
    pub idle_timeout: Duration,
    /// Client connections open at once; at the limit, accepting pauses.
    /// Default 10000.
    pub max_connections: usize,
    /// Streams one HTTP/2 connection may have open at once. Default 100.
    pub max_concurrent_streams: u32,
    /// A request body that makes no progress for this long is cut.
    /// Default 60s.
    pub body_read_timeout: Duration,
    /// Connecting to a version gives up after this (a version's `timeout`
    /// bounds the wait for response headers). Default 2s.
    pub upstream_connect_timeout: Duration,
    /// Idle keep-alive connections kept per version and data-plane worker
    /// (nginx's `keepalive`); more are closed as they come back. 0 keeps
    /// none. Default 1024.
    pub upstream_max_idle: usize,
    /// After SIGTERM/SIGINT, in-flight requests may finish for this long.
    /// Default 30s.
    pub drain_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is kept (the peer is appended); any
    /// other peer's is replaced by its address. Default empty.
    pub trusted_proxies: Vec<Cidr>,
    /// Protocols a client may switch to through serin (`Upgrade`), lower
    /// case; a request asking for any other is forwarded as a plain
    /// request without its upgrade. `h2c` is never allowed: it would open
    /// an HTTP/2 connection to a version past serin. Default `["websocket"]`.
    pub upgrades: Vec<String>,
}

/// An IP network, `10.0.0.0/8` or `::1/128`; a bare address is one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address, with the bits past `prefix` cleared.
    pub addr: IpAddr,
    /// Leading bits that must match: at most 32 (IPv4) or 128 (IPv6).
    pub prefix: u8,
}

/// `[[notify]]`: a webhook that receives events as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    /// An `http://` or `https://` URL with a host.
    pub webhook: http::Uri,
    /// Event kinds to send; empty means every kind.
    pub events: Vec<String>,
}

/// `[[routes]]`: one service and its versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Unique in the file; letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Default `["*"]`.
    pub hosts: Vec<HostMatch>,
    /// Default `/`. Always starts with `/`.
    pub path_prefix: String,
    /// Where a sticky key comes from; `None`: every request is picked independently.
    pub sticky: Option<Sticky>,
    /// At least one; names unique; at least one weight above zero.
    pub versions: Vec<Version>,
    /// `x-serin-version` / `x-serin-fallback` response headers. Default true.
    pub response_headers: bool,
    /// `[routes.fallback]`; `None`: a failed attempt is the answer.
    pub fallback: Option<Fallback>,
    /// `[routes.breaker]`; `None`: no circuit breaker.
    pub breaker: Option<Breaker>,
    /// `[routes.health_check]`; `None`: no active probes.
    pub health_check: Option<HealthCheck>,
    /// `[routes.rollback]`; `None`: no automatic rollback.
    pub rollback: Option<Rollback>,
    /// `[routes.rollout]`; `None`: no progressive promotion.
    pub rollout: Option<Rollout>,
    /// `[routes.override]`; `None`: no request chooses its version.
    pub force: Option<Force>,
    /// `[routes.mirror]`; `None`: nothing is mirrored.
    pub mirror: Option<Mirror>,
    /// `[[routes.signals]]`: quality signals the versions report per
    /// response, at most [`MAX_SIGNALS`](crate::MAX_SIGNALS), names unique.
    pub signals: Vec<Signal>,
}

/// `[routes.mirror]`: a share of live requests copied to a version in the
/// background, its answers compared with the live ones. A copy never
/// delays nor fails the live answer: copies beyond `queue` in flight are
/// shed, and only requests whose body is at most `max_body` are copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    /// The version copies go to; a version of the route.
    pub to: String,
    /// Share of the route's requests copied, in (0, 1] (`percent` / 100).
    pub share: f64,
    /// What must match the live answer. Default: the status only.
    pub compare: Compare,
    /// Larger request bodies are not copied. Default 64 KiB.
    pub max_body: u64,
    /// Copies in flight at most; more are shed (counted). Default 64.
    pub queue: usize,
}

/// What of a mirrored answer is compared with the live one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compare {
    /// `"status"`.
    pub status: bool,
    /// `"body"`: the bytes, compared by a hash of each side.
    pub body: bool,
    /// `"header:NAME"`: these headers' values.
    pub headers: Vec<http::HeaderName>,
}

/// `[[routes.signals]]`: a quality signal an upstream reports in a response
/// header (`1`/`true`/`yes`, `0`/`false`/`no`, or a number). Rules read it
/// as `NAME_rate` (share of answers with it true or above 0) and
/// `NAME_mean` (mean of the values reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Lower-case letters, digits and `_`; `NAME_rate` and `NAME_mean`
    /// must not be a built-in metric's name.
    pub name: String,
    /// The response header that carries it.
    pub header: http::HeaderName,
    /// Pass the header on to the client (default: removed).
    pub keep: bool,
}

/// `[routes.override]`: testers and smoke tests reach a version on purpose
/// by a header or a cookie naming it, for the versions in `allow` only.
#[derive(Debug, Clone, PartialEq)]
pub struct Force {
    /// The request header that names the version.
    pub header: Option<http::HeaderName>,
    /// The cookie that names the version.
    pub cookie: Option<String>,
    /// Versions that may be forced (indices into the route's versions are
    /// resolved by the table; names here).
    pub allow: Vec<String>,
    /// Forced requests also count in the windows rules judge (default:
    /// they count apart, under `forced`).
    pub rules_include_forced: bool,
}

/// How a route matches the `Host` header (port ignored, case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// `"*"`
    Any,
    /// `"api.example.com"`, stored lower-case.
    Exact(String),
    /// `"*.example.com"`, stored lower-case as `".example.com"`.
    Suffix(String),
}

/// Where a sticky key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// `"header:x-user-id"`
    Header(http::HeaderName),
    /// `"cookie:session"`
    Cookie(String),
}

/// `[[routes.versions]]`: one deployed version of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// Unique in the route; letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// `http://`, `https://` (TLS; ALPN picks HTTP/2 or HTTP/1.1) or
    /// `h2c://` (HTTP/2 with prior knowledge), with a host; no path beyond `/`.
    pub url: http::Uri,
    /// Share = weight / sum of the route's weights. Finite, >= 0; fractions allowed.
    pub weight: f64,
    /// Response-headers timeout of one attempt. Default 30s.
    pub timeout: Duration,
    /// How an `https://` version is reached; `None` for the other schemes.
    pub tls: Option<crate::UpstreamTls>,
}

/// `[routes.fallback]`
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    /// Version names, each a version of the route, no repeats.
    pub chain: Vec<String>,
    /// Which failures of an attempt move on to the next version.
    pub on: FallbackOn,
    /// Default 503.
    pub final_status: http::StatusCode,
    /// Default "Service temporarily unavailable".
    pub final_body: String,
    /// Bytes; default 64 KiB.
    pub max_replay_body: u64,
    /// Whether non-idempotent methods (POST, PATCH) fall back too. Default true
    /// (the seed use case replays POSTed prompts).
    pub retry_non_idempotent: bool,
    /// Optional bound on the whole chain.
    pub deadline: Option<Duration>,
}

/// `on = ["connect", "timeout", "5xx"]`. Default: all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackOn {
    /// The connection to the version failed.
    pub connect: bool,
    /// The version did not answer within its `timeout`.
    pub timeout: bool,
    /// The version answered 5xx.
    pub status_5xx: bool,
}

/// `[routes.breaker]`, per version.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    /// Fraction in (0, 1]; default 0.5.
    pub error_rate: f64,
    /// Default 20.
    pub min_requests: u64,
    /// Default 10s.
    pub window: Duration,
    /// Default 30s.
    pub open_for: Duration,
    /// Probe requests let through while half-open. Default 3.
    pub half_open_probes: u32,
}

/// `[routes.health_check]`
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Default `/health`.
    pub path: String,
    /// Default 5s.
    pub interval: Duration,
    /// Default 1s.
    pub timeout: Duration,
    /// Default 3.
    pub unhealthy_after: u32,
    /// Default 2.
    pub healthy_after: u32,
}

/// `[routes.rollback]`
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    /// A version of the route.
    pub stable: String,
    /// Default 5m.
    pub window: Duration,
    /// Default 2m.
    pub confirm: Duration,
    /// Default 50.
    pub min_requests: u64,
    /// Any rule true (and held for `confirm`) triggers `on_critical`.
    pub critical: Vec<Rule>,
    /// Any rule true (and held for `confirm`) triggers `on_warning`.
    pub warning: Vec<Rule>,
    /// Recorded as events only.
    pub watch: Vec<Rule>,
    /// Default `Immediate`.
    pub on_critical: Action,
    /// Default `Gradual` when `gradual` is set, else `Alert`.
    pub on_warning: Action,
    /// The schedule of a `Gradual` action; set whenever an action is `Gradual`.
    pub gradual: Option<Gradual>,
    /// Evaluate and record, never act.
    pub dry_run: bool,
    /// Rules evaluated and recorded only.
    pub shadow: Vec<Rule>,
}

/// What a breached level does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Canary weight to 0 at once, stable gets the traffic.
    Immediate,
    /// Step the canary down along the route's `gradual` schedule.
    Gradual,
    /// Freeze weights and any rollout in progress.
    Pause,
    /// Record and notify only.
    Alert,
}

/// `gradual = { steps = [...], every = "...", abort_if = "..." }`
#[derive(Debug, Clone, PartialEq)]
pub struct Gradual {
    /// Canary shares as fractions in [0, 1], decreasing.
    pub steps: Vec<f64>,
    /// Time between steps; above zero.
    pub every: Duration,
    /// When this holds during the schedule, the gradual rollback is
    /// abandoned for an immediate one.
    pub abort_if: Option<Rule>,
}

/// `[routes.rollout]`
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Canary shares as fractions in (0, 1], increasing.
    pub steps: Vec<f64>,
    /// Time between steps; above zero.
    pub every: Duration,
}
