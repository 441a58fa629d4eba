//! The routing file as serde reads it: a mirror of the TOML, nothing checked.
//!
//! Every table denies unknown fields so a typo is an error, not a silently
//! ignored setting. Every value that validation can reject is `Spanned`, so
//! its error points at the value's line and column. Numbers that have a
//! valid range are read as `i64`/`f64` and range-checked in `validate`, so a
//! `-1` is one collected error rather than a serde error that stops parsing.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// Shorthand: a string value and where it sits in the file.
pub(crate) type Str = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) listen: Option<Spanned<RawListen>>,
    pub(crate) admin: Option<RawAdmin>,
    pub(crate) state: Option<RawState>,
    pub(crate) limits: Option<RawLimits>,
    pub(crate) engine: Option<RawEngine>,
    pub(crate) access_log: Option<RawAccessLog>,
    pub(crate) tracing: Option<RawTracing>,
    pub(crate) cluster: Option<Spanned<RawCluster>>,
    #[serde(default)]
    pub(crate) notify: Vec<RawNotify>,
    #[serde(default)]
    pub(crate) routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListen {
    pub(crate) http: Option<Str>,
    pub(crate) https: Option<Str>,
    pub(crate) tls_cert: Option<Str>,
    pub(crate) tls_key: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub(crate) addr: Option<Str>,
    pub(crate) token_env: Option<Str>,
    pub(crate) protect_reads: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub(crate) dir: Option<Str>,
    pub(crate) keep_revisions: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccessLog {
    pub(crate) path: Option<Str>,
    pub(crate) format: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub(crate) etcd: Vec<Str>,
    pub(crate) prefix: Option<Str>,
    pub(crate) node: Option<Str>,
    pub(crate) partition_after: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTracing {
    pub(crate) otlp: Str,
    pub(crate) service_name: Option<Str>,
    pub(crate) sample: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEngine {
    pub(crate) tick: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) header_read_timeout: Option<Str>,
    pub(crate) max_header_bytes: Option<Str>,
    pub(crate) idle_timeout: Option<Str>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_concurrent_streams: Option<Spanned<i64>>,
    pub(crate) body_read_timeout: Option<Str>,
    pub(crate) upstream_connect_timeout: Option<Str>,
    pub(crate) upstream_max_idle: Option<Spanned<i64>>,
    pub(crate) drain_timeout: Option<Str>,
    pub(crate) trusted_proxies: Option<Vec<Str>>,
    pub(crate) upgrades: Option<Vec<Str>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    pub(crate) webhook: Str,
    #[serde(default)]
    pub(crate) events: Vec<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) name: Str,
    pub(crate) hosts: Option<Spanned<Vec<Str>>>,
    pub(crate) path_prefix: Option<Str>,
    pub(crate) sticky: Option<Str>,
    #[serde(default)]
    pub(crate) versions: Vec<RawVersion>,
    pub(crate) response_headers: Option<bool>,
    pub(crate) fallback: Option<RawFallback>,
    pub(crate) breaker: Option<RawBreaker>,
    pub(crate) health_check: Option<RawHealthCheck>,
    pub(crate) rollback: Option<RawRollback>,
    pub(crate) rollout: Option<RawRollout>,
    #[serde(rename = "override")]
    pub(crate) force: Option<Spanned<RawOverride>>,
    pub(crate) mirror: Option<Spanned<RawMirror>>,
    #[serde(default)]
    pub(crate) signals: Vec<Spanned<RawSignal>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMirror {
    pub(crate) to: Str,
    pub(crate) percent: Spanned<Number>,
    pub(crate) compare: Option<Spanned<Vec<Str>>>,
    pub(crate) max_body: Option<Str>,
    pub(crate) queue: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSignal {
    pub(crate) name: Str,
    pub(crate) header: Str,
    pub(crate) keep: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverride {
    pub(crate) header: Option<Str>,
    pub(crate) cookie: Option<Str>,
    #[serde(default)]
    pub(crate) allow: Vec<Str>,
    pub(crate) rules_include_forced: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVersion {
    pub(crate) name: Str,
    pub(crate) url: Str,
    pub(crate) weight: Spanned<Number>,
    pub(crate) timeout: Option<Str>,
    pub(crate) tls_ca: Option<Str>,
    pub(crate) tls_server_name: Option<Str>,
    pub(crate) tls_client_cert: Option<Str>,
    pub(crate) tls_client_key: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFallback {
    pub(crate) chain: Spanned<Vec<Str>>,
    pub(crate) on: Option<Spanned<Vec<Str>>>,
    pub(crate) final_status: Option<Spanned<i64>>,
    pub(crate) final_body: Option<String>,
    pub(crate) max_replay_body: Option<Str>,
    pub(crate) retry_non_idempotent: Option<bool>,
    pub(crate) deadline: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreaker {
    pub(crate) error_rate: Option<Str>,
    pub(crate) min_requests: Option<Spanned<i64>>,
    pub(crate) window: Option<Str>,
    pub(crate) open_for: Option<Str>,
    pub(crate) half_open_probes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealthCheck {
    pub(crate) path: Option<Str>,
    pub(crate) interval: Option<Str>,
    pub(crate) timeout: Option<Str>,
    pub(crate) unhealthy_after: Option<Spanned<i64>>,
    pub(crate) healthy_after: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollback {
    pub(crate) stable: Str,
    pub(crate) window: Option<Str>,
    pub(crate) confirm: Option<Str>,
    pub(crate) min_requests: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) critical: Vec<Str>,
    #[serde(default)]
    pub(crate) warning: Vec<Str>,
    #[serde(default)]
    pub(crate) watch: Vec<Str>,
    pub(crate) on_critical: Option<Str>,
    pub(crate) on_warning: Option<Str>,
    pub(crate) gradual: Option<RawGradual>,
    pub(crate) dry_run: Option<bool>,
    #[serde(default)]
    pub(crate) shadow: Vec<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGradual {
    pub(crate) steps: Spanned<Vec<Str>>,
    pub(crate) every: Str,
    pub(crate) abort_if: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollout {
    pub(crate) steps: Spanned<Vec<Str>>,
    pub(crate) every: Str,
}

/// A TOML integer or float, read as `f64`. Plain `f64` would accept both
/// too, but its type error says "expected f64"; this one says "a number".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Number(pub(crate) f64);

// === impl Number ===

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;

        impl Visitor<'_> for NumberVisitor {
            type Value = Number;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number (integer or float)")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
        }

        deserializer.deserialize_any(NumberVisitor)
    }
}
