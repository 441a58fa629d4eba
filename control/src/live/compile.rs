//! Config + live weights → `Snapshot`. Everything a request reads is
//! resolved here, once per change, never per request.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::uri::Scheme;
use http::HeaderValue;
use serin_config::{Config, Fallback, Route, Version};

use super::{
    FallbackSnap, ForceSnap, Maintenance, MirrorSnap, PickTable, RouteIndex, RouteSnap, Shared,
    SignalSnap, Snapshot, VersionSnap,
};
use crate::persist::{LiveState, Phase};

/// A table that cannot be compiled. Validation catches these first; the
/// checks here keep the data plane from ever seeing a half-usable table.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("route {route}: version {version}: url {url} has no scheme or authority")]
    BadUrl {
        route: String,
        version: String,
        url: String,
    },
    #[error("route {route}: every weight is zero")]
    AllZero { route: String },
    #[error("route {route}: weight of {version} must be finite and >= 0, got {weight}")]
    BadWeight {
        route: String,
        version: String,
        weight: f64,
    },
}

/// Compiles the whole table: the file under the live state.
pub(super) fn compile(
    config: &Config,
    state: &LiveState,
    shared: &Shared,
) -> Result<Snapshot, CompileError> {
    let routes = config
        .routes
        .iter()
        .map(|r| {
            let phase = state
                .routes
                .get(&r.name)
                .map(|s| s.phase)
                .unwrap_or_default();
            compile_route(r, state.weights.get(&r.name), phase, shared)
        })
        .collect::<Result<Box<[_]>, _>>()?;
    let index = RouteIndex::new(&config.routes);
    Ok(Snapshot {
        revision: state.revision.as_str().into(),
        routes,
        index,
        maintenance: state.maintenance.as_deref().map(maintenance),
    })
}

fn maintenance(message: &str) -> Maintenance {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Maintenance</title></head>\
         <body><h1>Maintenance</h1><p>{escaped}</p></body></html>\n"
    );
    Maintenance {
        message: message.to_owned(),
        html: Bytes::from(html),
        json: Bytes::from(serde_json::json!({ "error": message }).to_string()),
    }
}

fn compile_route(
    route: &Route,
    overrides: Option<&BTreeMap<String, f64>>,
    phase: Phase,
    shared: &Shared,
) -> Result<RouteSnap, CompileError> {
    let next = chain_next(route);
    let versions = route
        .versions
        .iter()
        .zip(next.iter())
        .map(|(v, next)| {
            let weight = overrides
                .and_then(|o| o.get(&v.name).copied())
                .unwrap_or(v.weight);
            let counter = next.map(|n| {
                shared
                    .telemetry
                    .fallback_counter(&route.name, &v.name, &route.versions[n].name)
            });
            compile_version(route, v, weight, shared, counter)
        })
        .collect::<Result<Box<[_]>, _>>()?;
    let weights: Vec<f64> = versions.iter().map(|v| v.weight).collect();
    let pick = PickTable::new(&weights).ok_or_else(|| CompileError::AllZero {
        route: route.name.clone(),
    })?;
    Ok(RouteSnap {
        name: route.name.as_str().into(),
        sticky: route.sticky.clone(),
        pick,
        response_headers: route.response_headers,
        in_chain: route
            .versions
            .iter()
            .map(|v| {
                route
                    .fallback
                    .as_ref()
                    .is_some_and(|f| f.chain.contains(&v.name))
            })
            .collect(),
        next,
        fallback: route.fallback.as_ref().map(compile_fallback),
        breaker: route.breaker.clone(),
        stats: shared.telemetry.route(&route.name),
        phase,
        force: route.force.as_ref().map(|f| ForceSnap {
            header: f.header.clone(),
            cookie: f.cookie.as_deref().map(Into::into),
            allowed: route
                .versions
                .iter()
                .map(|v| f.allow.contains(&v.name))
                .collect(),
            rules_include_forced: f.rules_include_forced,
        }),
        mirror: route.mirror.as_ref().and_then(|m| {
            Some(MirrorSnap {
                to: route.versions.iter().position(|v| v.name == m.to)?,
                // Saturates at 100%: a copy of every request.
                below: (m.share * f64::from(u32::MAX)).round() as u32,
                compare: m.compare.clone(),
                max_body: m.max_body,
                queue: m.queue,
                log: shared.mirrors.get(&route.name, &m.to),
            })
        }),
        signals: route
            .signals
            .iter()
            .map(|s| SignalSnap {
                name: s.name.as_str().into(),
                header: s.header.clone(),
                keep: s.keep,
            })
            .collect(),
        versions,
    })
}

/// For each version, the index of the one after it in the chain.
fn chain_next(route: &Route) -> Box<[Option<usize>]> {
    let index_of = |name: &str| route.versions.iter().position(|v| v.name == name);
    let chain: Vec<usize> = route
        .fallback
        .iter()
        .flat_map(|f| f.chain.iter().filter_map(|n| index_of(n)))
        .collect();
    route
        .versions
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let at = chain.iter().position(|&c| c == i)?;
            chain.get(at + 1).copied()
        })
        .collect()
}

fn compile_fallback(f: &Fallback) -> FallbackSnap {
    let json = serde_json::json!({ "error": f.final_body }).to_string();
    FallbackSnap {
        on: f.on,
        final_status: f.final_status,
        final_text: Bytes::from(f.final_body.clone()),
        final_json: Bytes::from(json),
        max_replay_body: f.max_replay_body,
        retry_non_idempotent: f.retry_non_idempotent,
        deadline: f.deadline,
    }
}

fn compile_version(
    route: &Route,
    v: &Version,
    weight: f64,
    shared: &Shared,
    fallback_counter: Option<metrics::Counter>,
) -> Result<VersionSnap, CompileError> {
    if !weight.is_finite() || weight < 0.0 {
        return Err(CompileError::BadWeight {
            route: route.name.clone(),
            version: v.name.clone(),
            weight,
        });
    }
    let bad_url = || CompileError::BadUrl {
        route: route.name.clone(),
        version: v.name.clone(),
        url: v.url.to_string(),
    };
    let scheme = v.url.scheme().cloned().unwrap_or(Scheme::HTTP);
    let authority = v.url.authority().cloned().ok_or_else(bad_url)?;
    // Version names are validated as [A-Za-z0-9._-]; a name that still is
    // not a header value gets a placeholder rather than failing the table.
    let header = HeaderValue::from_str(&v.name).unwrap_or_else(|_| HeaderValue::from_static("?"));
    let stats = shared.telemetry.version(&route.name, &v.name);
    if !route.signals.is_empty() {
        let names: Vec<&str> = route.signals.iter().map(|s| s.name.as_str()).collect();
        stats.name_signals(&names);
    }
    Ok(VersionSnap {
        name: v.name.as_str().into(),
        url: v.url.clone(),
        scheme,
        authority,
        weight,
        timeout: v.timeout,
        header,
        stats,
        mirrored: route
            .mirror
            .as_ref()
            .filter(|m| m.to == v.name)
            .map(|_| shared.telemetry.mirrored(&route.name, &v.name)),
        forced: route
            .force
            .as_ref()
            .map(|_| shared.telemetry.forced(&route.name, &v.name)),
        breaker: shared.breakers.get(&route.name, &v.name),
        health: shared.health.get(&route.name, &v.name),
        fallback_counter,
        drill: shared.faults.get(&route.name, &v.name),
        tls: v.tls.as_ref().map(|t| shared.upstream_tls.canonical(t)),
    })
}
