//! Raw TOML → validated [`Config`]: defaults applied, every rejected value
//! reported at its own line and column, as many errors as can be found.
//!
//! Checks that fail do not stop validation: each returns a placeholder and
//! records an error, and the built `Config` is thrown away at the end if any
//! error was recorded. That keeps each check a plain function of its value.
//!
//! Layout: this file holds the context and the top-level sections;
//! `validate/route.rs` a route's matching and versions;
//! `validate/resilience.rs` fallback, breaker and health check;
//! `validate/rollback.rs` rollback, rollout and rules; `validate/limits.rs`
//! the `[limits]` table.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::error::{ConfigError, ConfigErrors, Source};
use crate::model::{
    AccessFormat, AccessLog, Admin, Cluster, Config, Engine, Listen, Notify, State, Tracing,
};
use crate::raw::{
    RawAccessLog, RawAdmin, RawCluster, RawConfig, RawEngine, RawListen, RawNotify, RawState,
    RawTracing, Str,
};
use crate::units::{parse_duration, parse_percent};

mod limits;
mod resilience;
mod rollback;
mod route;

/// Where validation is in the file, and what it found wrong so far.
pub(crate) struct Ctx<'a> {
    src: Source<'a>,
    errors: Vec<ConfigError>,
}

/// Validates a deserialized file.
pub(crate) fn validate(raw: RawConfig, src: Source<'_>) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx {
        src,
        errors: Vec::new(),
    };
    let listen = listen(&mut cx, raw.listen.as_ref());
    let admin = admin(&mut cx, raw.admin.as_ref(), &listen);
    let state = state(&mut cx, raw.state.as_ref());
    let limits = limits::limits(&mut cx, raw.limits.as_ref());
    let engine = engine(&mut cx, raw.engine.as_ref());
    let access_log = raw.access_log.as_ref().map(|a| access_log(&mut cx, a));
    let tracing = raw.tracing.as_ref().map(|t| tracing(&mut cx, t));
    let cluster = raw.cluster.as_ref().map(|c| cluster(&mut cx, c));
    let notify = raw.notify.iter().map(|n| notify(&mut cx, n)).collect();
    let routes = route::routes(&mut cx, &raw.routes);
    let config = Config {
        listen,
        admin,
        state,
        limits,
        engine,
        access_log,
        tracing,
        cluster,
        notify,
        routes,
    };
    cx.finish(config)
}

/// The shortest engine tick: each pass reads every canary's window (its
/// slots' histograms merged); faster than this costs CPU and decides
/// nothing sooner that anyone could see.
const MIN_TICK: Duration = Duration::from_millis(20);

fn engine(cx: &mut Ctx<'_>, raw: Option<&RawEngine>) -> Engine {
    let default = Duration::from_millis(100);
    let Some(value) = raw.and_then(|r| r.tick.as_ref()) else {
        return Engine { tick: default };
    };
    let tick = cx
        .check(value, |s| match parse_duration(s) {
            Ok(d) if d < MIN_TICK => Err(format!("tick must be at least 20ms, got {s}")),
            Ok(d) => Ok(d),
            Err(e) => Err(format!("tick: {e}")),
        })
        .unwrap_or(default);
    Engine { tick }
}

fn access_log(cx: &mut Ctx<'_>, raw: &RawAccessLog) -> AccessLog {
    let path = raw
        .path
        .as_ref()
        .and_then(|p| {
            cx.check(p, |s| match s.as_str() {
                "" => Err("access_log path is empty: write \"-\" for standard output".to_owned()),
                "-" => Ok(None),
                file => Ok(Some(PathBuf::from(file))),
            })
        })
        .flatten();
    let format = raw
        .format
        .as_ref()
        .and_then(|f| {
            cx.check(f, |s| match s.as_str() {
                "json" => Ok(AccessFormat::Json),
                "combined" => Ok(AccessFormat::Combined),
                other => Err(format!(
                    "unknown access_log format `{other}`; expected \"json\" or \"combined\""
                )),
            })
        })
        .unwrap_or(AccessFormat::Json);
    AccessLog { path, format }
}

fn cluster(cx: &mut Ctx<'_>, raw: &Spanned<RawCluster>) -> Cluster {
    let c = raw.get_ref();
    if c.etcd.is_empty() {
        cx.error(
            raw.span(),
            "[cluster] etcd lists no endpoint: write e.g. etcd = [\"http://127.0.0.1:2379\"]",
        );
    }
    let etcd = c
        .etcd
        .iter()
        .filter_map(|e| {
            cx.check(e, |s| {
                let uri: http::Uri = s
                    .parse()
                    .map_err(|e| format!("etcd endpoint `{s}` is not a URL: {e}"))?;
                if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                    return Err(format!(
                        "etcd endpoint `{s}` must be http://HOST:PORT (etcd's client URL)"
                    ));
                }
                Ok(s.trim_end_matches('/').to_owned())
            })
        })
        .collect();
    let prefix = c
        .prefix
        .as_ref()
        .and_then(|p| {
            cx.check(p, |s| {
                let ok = s.starts_with('/')
                    && s.len() > 1
                    && !s.ends_with('/')
                    && s.chars().all(|c| c.is_ascii_graphic());
                if ok {
                    Ok(s.clone())
                } else {
                    Err(format!(
                        "prefix `{s}` must start with /, not end with /, and hold no space (e.g. /serin/prod)"
                    ))
                }
            })
        })
        .unwrap_or_else(|| "/serin".to_owned());
    let node = c
        .node
        .as_ref()
        .and_then(|n| cx.check(n, |s| node_name(s).map(str::to_owned)))
        .unwrap_or_else(host_name);
    let partition_after = cx.duration(
        c.partition_after.as_ref(),
        "partition_after",
        Duration::from_secs(10),
    );
    Cluster {
        etcd,
        prefix,
        node,
        partition_after,
    }
}

/// A replica's name: letters, digits, `.`, `-`, `_`, at most 64.
fn node_name(s: &str) -> Result<&str, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then_some(s)
        .ok_or_else(|| format!("node `{s}` must be 1 to 64 letters, digits, `.`, `-` or `_`"))
}

/// The host name, as `node`'s default.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| node_name(h).is_ok())
        .unwrap_or_else(|| "serin".to_owned())
}

fn tracing(cx: &mut Ctx<'_>, raw: &RawTracing) -> Tracing {
    let otlp = cx
        .check(&raw.otlp, |s| {
            let uri: http::Uri = s
                .parse()
                .map_err(|e| format!("otlp `{s}` is not a URL: {e}"))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return Err(format!(
                    "otlp `{s}` must be an http:// URL with a host, e.g. \
                     http://127.0.0.1:4318/v1/traces (a local collector)"
                ));
            }
            Ok(uri)
        })
        .unwrap_or_default();
    let service_name = raw
        .service_name
        .as_ref()
        .and_then(|n| {
            cx.check(n, |s| {
                if s.trim().is_empty() {
                    Err("service_name is empty".to_owned())
                } else {
                    Ok(s.clone())
                }
            })
        })
        .unwrap_or_else(|| "serin".to_owned());
    let sample = raw
        .sample
        .as_ref()
        .and_then(|v| {
            cx.check(v, |s| match parse_percent(s)? {
                share if (0.0..=1.0).contains(&share) => Ok(share),
                _ => Err(format!("sample must be between 0% and 100%, got {s}")),
            })
        })
        .unwrap_or(1.0);
    Tracing {
        otlp,
        service_name,
        sample,
    }
}

fn listen(cx: &mut Ctx<'_>, raw: Option<&Spanned<RawListen>>) -> Listen {
    let Some(raw) = raw else {
        return Listen {
            http: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))),
            https: None,
            tls_cert: None,
            tls_key: None,
        };
    };
    let table = raw.get_ref();
    let http = table.http.as_ref().and_then(|v| cx.socket_addr(v));
    let https = table.https.as_ref().and_then(|v| cx.socket_addr(v));
    let tls_cert = table.tls_cert.as_ref().map(|v| cx.path(v, "tls_cert"));
    let tls_key = table.tls_key.as_ref().map(|v| cx.path(v, "tls_key"));
    match (&table.https, &table.tls_cert, &table.tls_key) {
        (Some(https), cert, key) if cert.is_none() || key.is_none() => {
            let missing = match (cert, key) {
                (None, None) => "tls_cert and tls_key",
                (None, _) => "tls_cert",
                _ => "tls_key",
            };
            cx.error(https.span(), format!("https needs {missing} in [listen]"));
        }
        (None, Some(file), _) | (None, None, Some(file)) => {
            cx.error(
                file.span(),
                "tls_cert/tls_key are set but [listen] has no https address",
            );
        }
        _ => {}
    }
    if table.http.is_none() && table.https.is_none() {
        cx.error(
            raw.span(),
            "[listen] needs an http or https address, e.g. http = \"127.0.0.1:8080\"",
        );
    }
    if let (Some(a), Some(b), Some(value)) = (http, https, &table.https) {
        if a == b {
            cx.error(value.span(), format!("http and https both listen on {a}"));
        }
    }
    Listen {
        http,
        https,
        tls_cert,
        tls_key,
    }
}

fn admin(cx: &mut Ctx<'_>, raw: Option<&RawAdmin>, listen: &Listen) -> Admin {
    let default = SocketAddr::from((Ipv4Addr::LOCALHOST, 9901));
    let addr = match raw.and_then(|a| a.addr.as_ref()) {
        None => default,
        Some(value) => {
            let addr = cx.socket_addr(value);
            if let Some(addr) = addr.filter(|a| [listen.http, listen.https].contains(&Some(*a))) {
                cx.error(
                    value.span(),
                    format!("admin address {addr} is also a [listen] address"),
                );
            }
            addr.unwrap_or(default)
        }
    };
    let token_env = match raw.and_then(|a| a.token_env.as_ref()) {
        None => "SERIN_ADMIN_TOKEN".to_owned(),
        Some(v) => {
            let valid = !v.get_ref().is_empty()
                && !v
                    .get_ref()
                    .contains(|c: char| c == '=' || c == '\0' || c.is_whitespace());
            if !valid {
                cx.error(
                    v.span(),
                    format!(
                        "token_env `{}` is not an environment variable name",
                        v.get_ref()
                    ),
                );
            }
            v.get_ref().clone()
        }
    };
    let protect_reads = raw.and_then(|a| a.protect_reads).unwrap_or(false);
    Admin {
        addr,
        token_env,
        protect_reads,
    }
}

fn state(cx: &mut Ctx<'_>, raw: Option<&RawState>) -> State {
    let dir = raw
        .and_then(|s| s.dir.as_ref())
        .map_or_else(|| PathBuf::from("var/serin"), |v| cx.path(v, "dir"));
    let keep = raw.and_then(|s| s.keep_revisions.as_ref());
    let keep_revisions = cx.int(keep, "keep_revisions", 1, 50);
    State {
        dir,
        keep_revisions,
    }
}

fn notify(cx: &mut Ctx<'_>, raw: &RawNotify) -> Notify {
    let webhook = cx
        .check(&raw.webhook, |s| {
            let uri: http::Uri = s
                .parse()
                .map_err(|e| format!("webhook `{s}` is not a URL: {e}"))?;
            let http_scheme = matches!(uri.scheme_str(), Some("http" | "https"));
            if !http_scheme || uri.authority().is_none() {
                return Err(format!(
                    "webhook `{s}` must be an http:// or https:// URL with a host"
                ));
            }
            Ok(uri)
        })
        .unwrap_or_default();
    let mut events = Vec::new();
    for event in &raw.events {
        let name = event.get_ref();
        // Kinds are not checked against a fixed list: control adds kinds
        // over time, and an old list here would reject valid files.
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if !valid {
            cx.error(
                event.span(),
                format!("`{name}` is not an event kind (snake_case, e.g. rollback_started)"),
            );
        }
        events.push(name.clone());
    }
    Notify { webhook, events }
}

// === impl Ctx ===

impl Ctx<'_> {
    /// Records an error at the start of `span`.
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push(self.src.error(span, message));
    }

    /// Records an error at byte `offset`.
    pub(crate) fn error_at(&mut self, offset: usize, message: impl Into<String>) {
        self.errors.push(self.src.error_at(offset, message));
    }

    /// Runs `check` on the value; on `Err`, records it at the value.
    pub(crate) fn check<T, U>(
        &mut self,
        value: &Spanned<T>,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        match check(value.get_ref()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(value.span(), message);
                None
            }
        }
    }

    /// A duration above zero, or `default` when absent.
    pub(crate) fn duration(
        &mut self,
        value: Option<&Str>,
        field: &str,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else { return default };
        self.check(value, |s| match parse_duration(s) {
            Ok(d) if d.is_zero() => Err(format!("{field} must be above zero")),
            Ok(d) => Ok(d),
            Err(e) => Err(format!("{field}: {e}")),
        })
        .unwrap_or(default)
    }

    /// A telemetry window: a duration above zero and at most
    /// [`MAX_WINDOW`](crate::MAX_WINDOW), or `default` when absent.
    pub(crate) fn window(&mut self, value: Option<&Str>, default: Duration) -> Duration {
        let window = self.duration(value, "window", default);
        match value {
            Some(v) if window > crate::MAX_WINDOW => {
                self.error(
                    v.span(),
                    format!(
                        "window {} is longer than the {} minutes of telemetry serin keeps",
                        v.get_ref(),
                        crate::MAX_WINDOW.as_secs() / 60
                    ),
                );
                default
            }
            _ => window,
        }
    }

    /// An integer at least `min` that fits `T`, or `default` when absent.
    pub(crate) fn int<T: TryFrom<i64>>(
        &mut self,
        value: Option<&Spanned<i64>>,
        field: &str,
        min: i64,
        default: T,
    ) -> T {
        let Some(value) = value else { return default };
        self.check(value, |&n| {
            if n < min {
                return Err(format!("{field} must be at least {min}, got {n}"));
            }
            T::try_from(n).map_err(|_| format!("{field} is too large: {n}"))
        })
        .unwrap_or(default)
    }

    /// Names must be unique within their scope; records an error at each repeat.
    pub(crate) fn unique<'v>(&mut self, names: impl IntoIterator<Item = &'v Str>, what: &str) {
        let mut seen = HashSet::new();
        for name in names {
            if !seen.insert(name.get_ref().as_str()) {
                self.error(
                    name.span(),
                    format!("duplicate {what} `{}`", name.get_ref()),
                );
            }
        }
    }

    fn socket_addr(&mut self, value: &Str) -> Option<SocketAddr> {
        self.check(value, |s| {
            s.parse::<SocketAddr>()
                .map_err(|_| format!("`{s}` is not an address like 127.0.0.1:8080 or [::1]:8080"))
        })
    }

    fn path(&mut self, value: &Str, field: &str) -> PathBuf {
        if value.get_ref().is_empty() {
            self.error(value.span(), format!("{field} must not be empty"));
        }
        PathBuf::from(value.get_ref())
    }

    /// The byte offset in the file of byte `offset` inside the string value
    /// `value`, so a rule error can point at its token. Falls back to the
    /// string's opening quote when the literal is not a plain one-line string
    /// whose source text equals its value (escapes, multi-line strings).
    pub(crate) fn offset_in_string(&self, value: &Str, offset: usize) -> usize {
        let span = value.span();
        let literal = self.src.text.get(span.clone()).unwrap_or("");
        let quoted = ['"', '\''].iter().any(|&q| {
            literal.len() >= 2
                && literal.starts_with(q)
                && literal.ends_with(q)
                && !literal.starts_with(&format!("{q}{q}{q}"))
        });
        if quoted && &literal[1..literal.len() - 1] == value.get_ref().as_str() {
            span.start + 1 + offset
        } else {
            span.start
        }
    }

    fn finish(self, config: Config) -> Result<Config, ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(config);
        }
        let mut errors = self.errors;
        // Checks run section by section; report in file order.
        errors.sort_by_key(|e| (e.line, e.col));
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests;
