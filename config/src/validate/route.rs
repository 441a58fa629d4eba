//! `[[routes]]`: its name, how it matches requests, and its versions. The
//! failure-handling sections are checked in `resilience.rs`, rollback and
//! rollout in `rollback.rs`.

use std::time::Duration;

use super::{resilience, rollback, Ctx};
use crate::model::{Compare, Force, HostMatch, Mirror, Route, Signal, Sticky, Version};
use crate::raw::{Number, RawMirror, RawOverride, RawRoute, RawSignal, RawVersion, Str};
use crate::tls::{Field, Settings};
use crate::UpstreamTls;
use toml::Spanned;

/// Validates every route; route names are unique across the file.
pub(super) fn routes(cx: &mut Ctx<'_>, raw: &[RawRoute]) -> Vec<Route> {
    cx.unique(raw.iter().map(|r| &r.name), "route name");
    raw.iter().map(|r| route(cx, r)).collect()
}

fn route(cx: &mut Ctx<'_>, raw: &RawRoute) -> Route {
    let name = name(cx, &raw.name, "route");
    let hosts = match &raw.hosts {
        None => vec![HostMatch::Any],
        Some(list) if list.get_ref().is_empty() => {
            cx.error(
                list.span(),
                "hosts must not be empty; use [\"*\"] to match any host",
            );
            Vec::new()
        }
        Some(list) => list
            .get_ref()
            .iter()
            .filter_map(|h| cx.check(h, |s| host(s)))
            .collect(),
    };
    let path_prefix = match &raw.path_prefix {
        None => "/".to_owned(),
        Some(v) => {
            if !v.get_ref().starts_with('/') {
                cx.error(
                    v.span(),
                    format!("path_prefix must start with '/', got `{}`", v.get_ref()),
                );
            }
            v.get_ref().clone()
        }
    };
    let sticky = raw.sticky.as_ref().and_then(|v| cx.check(v, |s| sticky(s)));
    let versions = versions(cx, raw);
    let fallback = raw
        .fallback
        .as_ref()
        .map(|f| resilience::fallback(cx, f, &raw.versions));
    let breaker = raw.breaker.as_ref().map(|b| resilience::breaker(cx, b));
    let health_check = raw
        .health_check
        .as_ref()
        .map(|h| resilience::health_check(cx, h));
    let mirror = raw.mirror.as_ref().map(|m| mirror(cx, m.get_ref(), raw));
    let signals = signals(cx, &raw.signals);
    let names: Vec<&str> = signals.iter().map(|s| s.name.as_str()).collect();
    let rollback = raw
        .rollback
        .as_ref()
        .map(|r| rollback::rollback(cx, r, &raw.versions, &names));
    let rollout = raw.rollout.as_ref().map(|r| rollback::rollout(cx, r));
    let force = raw.force.as_ref().map(|f| force(cx, f, raw));
    Route {
        name,
        hosts,
        path_prefix,
        sticky,
        versions,
        response_headers: raw.response_headers.unwrap_or(true),
        fallback,
        breaker,
        health_check,
        rollback,
        rollout,
        force,
        mirror,
        signals,
    }
}

/// `[routes.mirror]`: a version of this route, a percentage, what to compare.
fn mirror(cx: &mut Ctx<'_>, m: &RawMirror, route: &RawRoute) -> Mirror {
    let to = cx
        .check(&m.to, |s| {
            if route.versions.iter().any(|v| v.name.get_ref() == s) {
                Ok(s.clone())
            } else {
                Err(format!(
                    "mirror to `{s}`, which is not a version of this route"
                ))
            }
        })
        .unwrap_or_default();
    let share = cx
        .check(&m.percent, |&Number(p)| {
            if p > 0.0 && p <= 100.0 {
                Ok(p / 100.0)
            } else {
                Err(format!(
                    "mirror percent must be above 0 and at most 100, got {p}"
                ))
            }
        })
        .unwrap_or(0.0);
    let mut compare = Compare::default();
    match &m.compare {
        None => compare.status = true,
        Some(list) if list.get_ref().is_empty() => cx.error(
            list.span(),
            "compare must name at least one of \"status\", \"body\", \"header:NAME\"",
        ),
        Some(list) => {
            for item in list.get_ref() {
                cx.check(item, |s| {
                    match (s.as_str(), s.strip_prefix("header:")) {
                        ("status", _) => compare.status = true,
                        ("body", _) => compare.body = true,
                        (_, Some(h)) => compare.headers.push(
                            http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                                format!("compare `{s}`: `{h}` is not a valid header name")
                            })?,
                        ),
                        _ => {
                            return Err(format!(
                                "compare `{s}`: expected \"status\", \"body\" or \"header:NAME\""
                            ))
                        }
                    }
                    Ok(())
                });
            }
        }
    }
    Mirror {
        to,
        share,
        compare,
        max_body: m
            .max_body
            .as_ref()
            .and_then(|v| cx.check(v, |s| crate::parse_size(s)))
            .unwrap_or(64 * 1024),
        queue: cx.int(m.queue.as_ref(), "queue", 1, 64),
    }
}

/// `[[routes.signals]]`: at most `MAX_SIGNALS`, names unique and clear of
/// the built-in metrics', valid header names.
fn signals(cx: &mut Ctx<'_>, raw: &[Spanned<RawSignal>]) -> Vec<Signal> {
    if let Some(extra) = raw.get(crate::MAX_SIGNALS) {
        cx.error(
            extra.span(),
            format!("a route declares at most {} signals", crate::MAX_SIGNALS),
        );
    }
    cx.unique(raw.iter().map(|s| &s.get_ref().name), "signal name");
    raw.iter()
        .take(crate::MAX_SIGNALS)
        .filter_map(|s| {
            let s = s.get_ref();
            let name = cx.check(&s.name, |n| {
                let valid = !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid {
                    return Err(format!(
                        "signal name `{n}`: use lower-case letters, digits and `_`"
                    ));
                }
                for metric in [format!("{n}_rate"), format!("{n}_mean")] {
                    if crate::Metric::from_name(&metric).is_some() {
                        return Err(format!(
                            "signal name `{n}`: `{metric}` is already a built-in metric"
                        ));
                    }
                }
                Ok(n.clone())
            });
            let header = cx.check(&s.header, |h| {
                http::HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| format!("signal header: `{h}` is not a valid header name"))
            });
            Some(Signal {
                name: name?,
                header: header?,
                keep: s.keep.unwrap_or(false),
            })
        })
        .collect()
}

/// `[routes.override]`: a header or a cookie (or both), and versions of
/// this route to allow.
fn force(cx: &mut Ctx<'_>, raw: &Spanned<RawOverride>, route: &RawRoute) -> Force {
    let f = raw.get_ref();
    let header = f.header.as_ref().and_then(|h| {
        cx.check(h, |s| {
            http::HeaderName::from_bytes(s.as_bytes())
                .map_err(|_| format!("override header: `{s}` is not a valid header name"))
        })
    });
    let cookie = f.cookie.as_ref().and_then(|c| {
        cx.check(c, |s| {
            cookie_name(s)
                .then(|| s.clone())
                .ok_or_else(|| format!("override cookie: `{s}` is not a valid cookie name"))
        })
    });
    if f.header.is_none() && f.cookie.is_none() {
        cx.error(
            raw.span(),
            "[routes.override] needs `header` or `cookie`: where a request names its version"
                .to_owned(),
        );
    }
    if f.allow.is_empty() {
        cx.error(
            raw.span(),
            "[routes.override] allows no version: list the versions testers may reach in `allow`"
                .to_owned(),
        );
    }
    let allow = f
        .allow
        .iter()
        .filter_map(|v| {
            cx.check(v, |s| {
                if route.versions.iter().any(|rv| rv.name.get_ref() == s) {
                    Ok(s.clone())
                } else {
                    Err(format!(
                        "override allows `{s}`, which is not a version of this route"
                    ))
                }
            })
        })
        .collect();
    Force {
        header,
        cookie,
        allow,
        rules_include_forced: f.rules_include_forced.unwrap_or(false),
    }
}

/// RFC 6265: a cookie name is an HTTP token.
fn cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// Route and version names appear in URLs of the admin API, JSON keys and
/// Prometheus labels, so they stay within a conservative alphabet.
fn name(cx: &mut Ctx<'_>, value: &Str, what: &str) -> String {
    let name = value.get_ref();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        cx.error(
            value.span(),
            format!("{what} name `{name}` must be non-empty and use only letters, digits, '.', '_' and '-'"),
        );
    }
    name.clone()
}

fn host(s: &str) -> Result<HostMatch, String> {
    if s == "*" {
        return Ok(HostMatch::Any);
    }
    let lower = s.to_ascii_lowercase();
    if let Some(suffix) = lower.strip_prefix("*.") {
        return if is_hostname(suffix) {
            Ok(HostMatch::Suffix(format!(".{suffix}")))
        } else {
            Err(format!(
                "`{s}` is not a host pattern: use \"*\", \"api.example.com\" or \"*.example.com\""
            ))
        };
    }
    if is_hostname(&lower) {
        Ok(HostMatch::Exact(lower))
    } else if lower
        .rsplit_once(':')
        .is_some_and(|(h, port)| is_hostname(h) && port.parse::<u16>().is_ok())
    {
        Err(format!(
            "`{s}`: hosts match without the port; write just the host name"
        ))
    } else {
        Err(format!(
            "`{s}` is not a host pattern: use \"*\", \"api.example.com\" or \"*.example.com\""
        ))
    }
}

/// DNS-style names (`_` tolerated, as real Host headers carry it), IPv4
/// literals, and bracketed IPv6 literals as they appear in a Host header.
fn is_hostname(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn sticky(s: &str) -> Result<Sticky, String> {
    let usage = "sticky must be \"header:NAME\" or \"cookie:NAME\"";
    let Some((source, name)) = s.split_once(':') else {
        return Err(format!("{usage}, got `{s}`"));
    };
    match source {
        "header" => http::HeaderName::from_bytes(name.as_bytes())
            .map(Sticky::Header)
            .map_err(|_| format!("`{name}` is not a valid header name")),
        "cookie" => {
            if cookie_name(name) {
                Ok(Sticky::Cookie(name.to_owned()))
            } else {
                Err(format!("`{name}` is not a valid cookie name"))
            }
        }
        _ => Err(format!("{usage}, got `{s}`")),
    }
}

fn versions(cx: &mut Ctx<'_>, raw: &RawRoute) -> Vec<Version> {
    if raw.versions.is_empty() {
        cx.error(
            raw.name.span(),
            format!(
                "route `{}` has no versions; add a [[routes.versions]] table",
                raw.name.get_ref()
            ),
        );
        return Vec::new();
    }
    cx.unique(raw.versions.iter().map(|v| &v.name), "version name");
    let mut weights_ok = true;
    let versions: Vec<Version> = raw
        .versions
        .iter()
        .map(|v| {
            let weight = cx.check(&v.weight, |&Number(w)| {
                if w.is_finite() && w >= 0.0 {
                    Ok(w)
                } else {
                    Err(format!("weight must be a finite number >= 0, got {w}"))
                }
            });
            weights_ok &= weight.is_some();
            let url = cx.check(&v.url, |s| version_url(s));
            let tls = url.as_ref().and_then(|url| version_tls(cx, v, url));
            Version {
                name: name(cx, &v.name, "version"),
                url: url.unwrap_or_default(),
                weight: weight.unwrap_or(0.0),
                timeout: cx.duration(v.timeout.as_ref(), "timeout", Duration::from_secs(30)),
                tls,
            }
        })
        .collect();
    // Only meaningful once every weight is itself valid.
    if weights_ok && versions.iter().all(|v| v.weight == 0.0) {
        cx.error(
            raw.versions[0].weight.span(),
            format!(
                "every weight of route `{}` is 0; at least one must be above 0",
                raw.name.get_ref()
            ),
        );
    }
    versions
}

fn version_url(s: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = s
        .parse()
        .map_err(|e| format!("url `{s}` is not a URL: {e}"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https" | "h2c"));
    let Some(authority) = uri.authority().filter(|_| scheme_ok) else {
        return Err(format!(
            "url `{s}` must look like http://host:port (or https://, or h2c:// for HTTP/2 \
             with prior knowledge)"
        ));
    };
    if authority.as_str().contains('@') {
        return Err(format!("url `{s}` must not carry credentials"));
    }
    if uri.query().is_some() || !matches!(uri.path(), "" | "/") {
        return Err(format!(
            "url `{s}` must have no path or query: requests keep their own path"
        ));
    }
    Ok(uri)
}

/// The TLS settings of an `https://` version; `tls_*` keys on any other
/// scheme are refused where they stand.
fn version_tls(cx: &mut Ctx<'_>, v: &RawVersion, url: &http::Uri) -> Option<UpstreamTls> {
    let keys = [
        ("tls_ca", &v.tls_ca),
        ("tls_server_name", &v.tls_server_name),
        ("tls_client_cert", &v.tls_client_cert),
        ("tls_client_key", &v.tls_client_key),
    ];
    if url.scheme_str() != Some("https") {
        for (key, value) in keys {
            if let Some(value) = value {
                cx.error(
                    value.span(),
                    format!("{key} applies only to an https:// url, not `{url}`"),
                );
            }
        }
        return None;
    }
    let path = |cx: &mut Ctx<'_>, v: &Option<Str>, key| v.as_ref().map(|v| cx.path(v, key));
    let ca = path(cx, &v.tls_ca, "tls_ca");
    let client_cert = path(cx, &v.tls_client_cert, "tls_client_cert");
    let client_key = path(cx, &v.tls_client_key, "tls_client_key");
    let settings = Settings {
        host: url.host().unwrap_or_default(),
        server_name: v.tls_server_name.as_ref().map(|s| s.get_ref().as_str()),
        ca: ca.as_deref(),
        client_cert: client_cert.as_deref(),
        client_key: client_key.as_deref(),
    };
    match UpstreamTls::build(&settings) {
        Ok(tls) => Some(tls),
        Err((field, message)) => {
            let at = match field {
                Field::Ca => v.tls_ca.as_ref(),
                Field::ServerName => v.tls_server_name.as_ref(),
                Field::ClientCert => v.tls_client_cert.as_ref(),
                Field::ClientKey => v.tls_client_key.as_ref(),
            };
            // Errors about the defaults (platform roots, the URL's host)
            // point at the url.
            cx.error(at.unwrap_or(&v.url).span(), message);
            None
        }
    }
}
