use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn networks_contain_their_hosts_only() {
    let ten = Cidr::parse("10.0.0.0/8").unwrap();
    assert!(ten.contains(ip("10.255.1.2")));
    assert!(!ten.contains(ip("11.0.0.1")));
    assert!(
        ten.contains(ip("::ffff:10.1.2.3")),
        "IPv4-mapped counts as IPv4"
    );
    assert!(!ten.contains(ip("::1")));
    let host = Cidr::parse("127.0.0.1").unwrap();
    assert_eq!(host.to_string(), "127.0.0.1/32");
    assert!(host.contains(ip("127.0.0.1")));
    assert!(!host.contains(ip("127.0.0.2")));
    let all = Cidr::parse("0.0.0.0/0").unwrap();
    assert!(all.contains(ip("203.0.113.9")));
    let v6 = Cidr::parse("fd00::/8").unwrap();
    assert!(v6.contains(ip("fd12::1")));
    assert!(!v6.contains(ip("fe80::1")));
    assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
}

#[test]
fn bad_networks_say_why() {
    for (text, needle) in [
        ("10.0.0/8", "is not a network"),
        ("10.0.0.0/33", "0..=32"),
        ("::1/129", "0..=128"),
        ("10.0.0.0/x", "prefix length"),
        ("10.0.0.1/8", "write 10.0.0.0/8"),
        ("", "is not a network"),
    ] {
        let e = Cidr::parse(text).unwrap_err();
        assert!(e.contains(needle), "{text}: {e}");
    }
}
