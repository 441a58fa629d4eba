//! `[limits]` defaults and [`Cidr`], the network type of `trusted_proxies`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::model::{Cidr, Limits};

// === impl Limits ===

impl Default for Limits {
    /// The defaults README's "Operations" section lists.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_concurrent_streams: 100,
            body_read_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(2),
            upstream_max_idle: 1024,
            drain_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            upgrades: vec!["websocket".to_owned()],
        }
    }
}

impl Limits {
    /// Whether `ip` is in one of `trusted_proxies`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }

    /// Whether a client may switch to `protocol` (an `Upgrade` token such
    /// as `websocket` or `websocket/13`: the name before `/` is compared,
    /// case-insensitively).
    pub fn allows_upgrade(&self, protocol: &str) -> bool {
        let name = protocol.split('/').next().unwrap_or("").trim();
        !name.eq_ignore_ascii_case("h2c")
            && self.upgrades.iter().any(|u| u.eq_ignore_ascii_case(name))
    }
}

// === impl Cidr ===

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128`, or a bare address (one host).
    ///
    /// # Errors
    /// A message naming what is wrong: the address, the prefix, or host
    /// bits set past the prefix (`10.0.0.1/8` is refused as ambiguous).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!("`{s}` is not a network like 10.0.0.0/8, 127.0.0.1/32 or ::1/128")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0..={max}"))?,
        };
        let cidr = Self {
            addr: mask(addr, prefix),
            prefix,
        };
        if cidr.addr != addr {
            return Err(format!(
                "`{s}` has host bits set past /{prefix}: write {cidr}"
            ));
        }
        Ok(cidr)
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.1.2.3`, what a dual-stack socket reports) counts as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `ip` with every bit past the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & keep))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & keep))
        }
    }
}

#[cfg(test)]
mod tests;
