//! `[limits]`: timeouts, sizes and counts that bound one client, and the
//! trusted proxies.

use crate::model::{Cidr, Limits};
use crate::raw::RawLimits;
use crate::units::parse_size;

use super::Ctx;

/// Smallest and largest `max_header_bytes`: hyper's HTTP/1.1 read buffer,
/// which this limit sizes, cannot be below 8 KiB (and browsers' cookies
/// need that much); above 1 MiB the limit no longer protects memory.
const HEADER_BYTES: (u64, u64) = (8 * 1024, 1024 * 1024);

pub(super) fn limits(cx: &mut Ctx<'_>, raw: Option<&RawLimits>) -> Limits {
    let d = Limits::default();
    let Some(raw) = raw else { return d };
    let max_header_bytes = raw
        .max_header_bytes
        .as_ref()
        .and_then(|v| {
            cx.check(v, |s| {
                let n = parse_size(s).map_err(|e| format!("max_header_bytes: {e}"))?;
                let (lo, hi) = HEADER_BYTES;
                if (lo..=hi).contains(&n) {
                    Ok(n)
                } else {
                    Err(format!(
                        "max_header_bytes must be between 8KiB and 1MiB, got {n} bytes"
                    ))
                }
            })
        })
        .unwrap_or(d.max_header_bytes);
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .flatten()
        .filter_map(|v| {
            cx.check(v, |s| {
                Cidr::parse(s).map_err(|e| format!("trusted_proxies: {e}"))
            })
        })
        .collect();
    let upgrades = match &raw.upgrades {
        None => d.upgrades,
        Some(list) => list
            .iter()
            .filter_map(|v| cx.check(v, |s| upgrade(s)))
            .collect(),
    };
    Limits {
        header_read_timeout: cx.duration(
            raw.header_read_timeout.as_ref(),
            "header_read_timeout",
            d.header_read_timeout,
        ),
        max_header_bytes,
        idle_timeout: cx.duration(raw.idle_timeout.as_ref(), "idle_timeout", d.idle_timeout),
        max_connections: cx.int(
            raw.max_connections.as_ref(),
            "max_connections",
            1,
            d.max_connections,
        ),
        max_concurrent_streams: cx.int(
            raw.max_concurrent_streams.as_ref(),
            "max_concurrent_streams",
            1,
            d.max_concurrent_streams,
        ),
        body_read_timeout: cx.duration(
            raw.body_read_timeout.as_ref(),
            "body_read_timeout",
            d.body_read_timeout,
        ),
        upstream_connect_timeout: cx.duration(
            raw.upstream_connect_timeout.as_ref(),
            "upstream_connect_timeout",
            d.upstream_connect_timeout,
        ),
        upstream_max_idle: cx.int(
            raw.upstream_max_idle.as_ref(),
            "upstream_max_idle",
            0,
            d.upstream_max_idle,
        ),
        drain_timeout: cx.duration(raw.drain_timeout.as_ref(), "drain_timeout", d.drain_timeout),
        trusted_proxies,
        upgrades,
    }
}

/// One `upgrades` entry: a protocol name as `Upgrade` carries it.
fn upgrade(s: &str) -> Result<String, String> {
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    if s.is_empty() || !s.bytes().all(token) {
        return Err(format!(
            "upgrades: `{s}` is not a protocol name like \"websocket\""
        ));
    }
    if s.eq_ignore_ascii_case("h2c") {
        return Err(
            "upgrades: `h2c` cannot be allowed: an h2c upgrade would open an HTTP/2 \
             connection to the version past serin's routing and telemetry"
                .to_owned(),
        );
    }
    Ok(s.to_ascii_lowercase())
}
