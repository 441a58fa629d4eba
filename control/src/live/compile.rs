//! Config + live weights → `Snapshot`. Everything a request reads is
//! resolved here, once per change, never per request.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::uri::Scheme;
use http::HeaderValue;
use serin_config::{Config, Route, Version};

use super::{PickTable, RouteIndex, RouteSnap, Snapshot, VersionSnap};

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

/// Compiles the whole table. `weights` overrides file weights per route.
pub(super) fn compile(
    config: &Config,
    weights: &BTreeMap<String, BTreeMap<String, f64>>,
    revision: Arc<str>,
) -> Result<Snapshot, CompileError> {
    let routes = config
        .routes
        .iter()
        .map(|r| compile_route(r, weights.get(&r.name)))
        .collect::<Result<Box<[_]>, _>>()?;
    let index = RouteIndex::new(&config.routes);
    Ok(Snapshot {
        revision,
        routes,
        index,
    })
}

fn compile_route(
    route: &Route,
    overrides: Option<&BTreeMap<String, f64>>,
) -> Result<RouteSnap, CompileError> {
    let versions = route
        .versions
        .iter()
        .map(|v| {
            let weight = overrides
                .and_then(|o| o.get(&v.name).copied())
                .unwrap_or(v.weight);
            compile_version(route, v, weight)
        })
        .collect::<Result<Box<[_]>, _>>()?;
    let weights: Vec<f64> = versions.iter().map(|v| v.weight).collect();
    let pick = PickTable::new(&weights).ok_or_else(|| CompileError::AllZero {
        route: route.name.clone(),
    })?;
    Ok(RouteSnap {
        name: route.name.as_str().into(),
        sticky: route.sticky.clone(),
        versions,
        pick,
        response_headers: route.response_headers,
    })
}

fn compile_version(route: &Route, v: &Version, weight: f64) -> Result<VersionSnap, CompileError> {
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
    // Version names are validated as printable; a name that still is not a
    // header value gets no header rather than failing the table.
    let header = HeaderValue::from_str(&v.name).unwrap_or_else(|_| HeaderValue::from_static("?"));
    Ok(VersionSnap {
        name: v.name.as_str().into(),
        url: v.url.clone(),
        scheme,
        authority,
        weight,
        timeout: v.timeout,
        header,
    })
}
