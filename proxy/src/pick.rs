//! The weighted pick: a point on the route's table, from the sticky key's
//! hash when the request carries one, at random otherwise.

use http::HeaderMap;
use serin_config::Sticky;
use serin_control::RouteSnap;

use crate::fallback::Count;

/// The index of the version this request goes to.
///
/// A version the health check calls unhealthy is skipped: its point is
/// mapped onto the healthy versions instead (see [`among_healthy`]). When
/// no version with weight is healthy, the normal pick stands (fail open:
/// a bad health endpoint must not blackhole the route). The healthy path
/// costs one atomic load.
#[inline]
pub(crate) fn pick(route: &RouteSnap, headers: &HeaderMap) -> usize {
    let point = route
        .sticky
        .as_ref()
        .and_then(|s| sticky_key(s, headers))
        .map_or_else(|| fastrand::u32(..), hash_point);
    let first = route.pick.pick(point);
    if !route.versions[first].health.is_unhealthy() {
        return first;
    }
    repick(route, point).unwrap_or(first)
}

#[cold]
fn repick(route: &RouteSnap, point: u32) -> Option<usize> {
    among_healthy(
        point,
        route
            .versions
            .iter()
            .map(|v| (v.weight, !v.health.is_unhealthy())),
    )
}

/// The version owning `point` when only healthy versions with weight share
/// `[0, 2^32)`, in proportion to their weights and in table order, so a
/// sticky key lands on the same healthy version every time. `versions`
/// yields (weight, healthy) and is walked twice (total, then the walk)
/// instead of collecting, so the re-pick allocates nothing. `None` when no
/// version with weight is healthy.
fn among_healthy(point: u32, versions: impl Iterator<Item = (f64, bool)> + Clone) -> Option<usize> {
    let counts = |(w, healthy): &(f64, bool)| *healthy && *w > 0.0;
    let total: f64 = versions.clone().filter(counts).map(|(w, _)| w).sum();
    if total <= 0.0 {
        return None;
    }
    let target = f64::from(point) / SCALE * total;
    let mut acc = 0.0;
    let mut last = None;
    for (i, v) in versions.enumerate().filter(|(_, v)| counts(v)) {
        acc += v.0;
        last = Some(i);
        if target < acc {
            return Some(i);
        }
    }
    // Float rounding at the top, or a version turned unhealthy between the
    // two passes: the last healthy one seen owns the rest.
    last
}

/// The pick scale, `2^32`, as a float.
const SCALE: f64 = 4_294_967_296.0;

/// The sticky key's bytes, if the request carries one.
fn sticky_key<'h>(sticky: &Sticky, headers: &'h HeaderMap) -> Option<&'h [u8]> {
    match sticky {
        Sticky::Header(name) => header_value(headers, name),
        Sticky::Cookie(name) => cookie(headers, name),
    }
}

/// A non-empty header value.
fn header_value<'h>(headers: &'h HeaderMap, name: &http::HeaderName) -> Option<&'h [u8]> {
    headers
        .get(name)
        .map(|v| v.as_bytes())
        .filter(|v| !v.is_empty())
}

/// Cookie `name`'s non-empty value, from any `Cookie` header.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .find_map(|h| cookie_value(h.as_bytes(), name.as_bytes()))
}

/// The version a request forces (`[routes.override]`) and where its
/// attempts count: the one its header (or, failing that, its cookie)
/// names, when the route allows it. A name that is not allowed, or no
/// name, is an ordinary request (`None`).
#[inline]
pub(crate) fn forced(route: &RouteSnap, headers: &HeaderMap) -> Option<(usize, Count)> {
    let f = route.force.as_ref()?;
    let named = f
        .header
        .as_ref()
        .and_then(|h| header_value(headers, h))
        .or_else(|| cookie(headers, f.cookie.as_deref()?))?;
    let i = route
        .versions
        .iter()
        .position(|v| v.name.as_bytes() == named.trim_ascii())?;
    let count = match f.rules_include_forced {
        true => Count::Both,
        false => Count::Forced,
    };
    f.allowed[i].then_some((i, count))
}

/// `name`'s value in one `Cookie` header (`a=1; b=2`).
fn cookie_value<'h>(header: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        (pair[..eq].trim_ascii() == name)
            .then(|| pair[eq + 1..].trim_ascii())
            .filter(|v| !v.is_empty())
    })
}

/// A fixed point in `[0, 2^32)` for a key: FNV-1a, then a splitmix64
/// finalizer so that similar keys (`user-1`, `user-2`) spread evenly. Fixed
/// across processes and restarts, so a key keeps its version.
pub(crate) fn hash_point(key: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_are_found() {
        assert_eq!(cookie_value(b"a=1; uid=42; b=2", b"uid"), Some(&b"42"[..]));
        assert_eq!(cookie_value(b"uidx=1", b"uid"), None);
        assert_eq!(cookie_value(b"uid=", b"uid"), None);
    }

    #[test]
    fn unhealthy_share_is_spread_by_weight() {
        // v0 (50) healthy, v1 (30) unhealthy, v2 (0) healthy, v3 (20) healthy.
        let versions = [(50.0, true), (30.0, false), (0.0, true), (20.0, true)];
        let mut hits = [0u32; 4];
        for p in (0..=u32::MAX).step_by(1 << 16) {
            hits[among_healthy(p, versions.iter().copied()).unwrap()] += 1;
        }
        let n = f64::from(hits.iter().sum::<u32>());
        assert_eq!((hits[1], hits[2]), (0, 0), "{hits:?}");
        // 50 : 20 of the healthy weight.
        assert!(
            (f64::from(hits[0]) / n - 50.0 / 70.0).abs() < 0.01,
            "{hits:?}"
        );
        assert!(
            (f64::from(hits[3]) / n - 20.0 / 70.0).abs() < 0.01,
            "{hits:?}"
        );
    }

    #[test]
    fn sticky_points_land_deterministically() {
        let versions = [(90.0, true), (10.0, false), (0.0, true)];
        for key in ["user-1", "user-2", "user-3", "user-42"] {
            let p = hash_point(key.as_bytes());
            let first = among_healthy(p, versions.iter().copied());
            assert_eq!(first, Some(0));
            assert_eq!(first, among_healthy(p, versions.iter().copied()));
        }
        // Two healthy versions: the same point always gets the same one.
        let versions = [(60.0, true), (20.0, false), (20.0, true)];
        for p in [0, 1 << 30, 3 << 30, u32::MAX] {
            let a = among_healthy(p, versions.iter().copied());
            assert_eq!(a, among_healthy(p, versions.iter().copied()));
        }
        assert_eq!(among_healthy(0, versions.iter().copied()), Some(0));
        assert_eq!(among_healthy(u32::MAX, versions.iter().copied()), Some(2));
    }

    #[test]
    fn no_healthy_weighted_version_fails_open() {
        // Only a zero-weight version is healthy: nothing to re-pick.
        let versions = [(90.0, false), (10.0, false), (0.0, true)];
        assert_eq!(among_healthy(1 << 31, versions.iter().copied()), None);
        assert_eq!(among_healthy(0, [].into_iter()), None);
    }

    #[test]
    fn hash_spreads_similar_keys() {
        let high = (0..10_000)
            .filter(|i| hash_point(format!("user-{i}").as_bytes()) >= 1 << 31)
            .count();
        assert!((4_700..5_300).contains(&high), "{high}");
    }
}
