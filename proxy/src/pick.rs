//! The weighted pick: a point on the route's table, from the sticky key's
//! hash when the request carries one, at random otherwise.

use http::HeaderMap;
use serin_config::Sticky;
use serin_control::RouteSnap;

/// The index of the version this request goes to.
#[inline]
pub(crate) fn pick(route: &RouteSnap, headers: &HeaderMap) -> usize {
    let point = route
        .sticky
        .as_ref()
        .and_then(|s| sticky_key(s, headers))
        .map_or_else(|| fastrand::u32(..), hash_point);
    route.pick.pick(point)
}

/// The sticky key's bytes, if the request carries one.
fn sticky_key<'h>(sticky: &Sticky, headers: &'h HeaderMap) -> Option<&'h [u8]> {
    match sticky {
        Sticky::Header(name) => headers
            .get(name)
            .map(|v| v.as_bytes())
            .filter(|v| !v.is_empty()),
        Sticky::Cookie(name) => headers
            .get_all(http::header::COOKIE)
            .iter()
            .find_map(|h| cookie_value(h.as_bytes(), name.as_bytes())),
    }
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
    fn hash_spreads_similar_keys() {
        let high = (0..10_000)
            .filter(|i| hash_point(format!("user-{i}").as_bytes()) >= 1 << 31)
            .count();
        assert!((4_700..5_300).contains(&high), "{high}");
    }
}
