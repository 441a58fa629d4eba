use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("250ms"), Ok(ms(250)));
    assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
    assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
    assert_eq!(parse_duration("5m"), Ok(ms(300_000)));
    assert_eq!(parse_duration("2h"), Ok(ms(7_200_000)));
    assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
    assert_eq!(parse_duration("1h2m3s4ms"), Ok(ms(3_723_004)));
    assert_eq!(parse_duration("0.1s"), Ok(ms(100)));
    assert_eq!(parse_duration("0.0015ms"), Ok(Duration::from_nanos(1_500)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_duration(" 3s "), Ok(ms(3_000)));
}

#[test]
fn duration_errors_say_why() {
    let bare = parse_duration("10").unwrap_err();
    assert!(bare.contains("no unit"), "{bare}");
    let unit = parse_duration("10x").unwrap_err();
    assert!(unit.contains("unknown duration unit `x`"), "{unit}");
    for bad in ["", "-1s", "s", "1.s", ".5s", "1m 30s", "10%", "1e3s"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
    }
    let huge = parse_duration("99999999999999999999h").unwrap_err();
    assert!(huge.contains("too large"), "{huge}");
}

#[test]
fn durations_format() {
    assert_eq!(format_duration(ms(120_000)), "2m0s");
    assert_eq!(format_duration(ms(1_500)), "1.5s");
    assert_eq!(format_duration(ms(250)), "250ms");
    assert_eq!(format_duration(ms(3_600_000)), "1h0m0s");
    assert_eq!(format_duration(ms(3_723_004)), "1h2m3.004s");
    assert_eq!(format_duration(Duration::ZERO), "0s");
    assert_eq!(format_duration(Duration::from_nanos(1_500)), "0.0015ms");
}

#[test]
fn durations_round_trip() {
    let samples = [
        Duration::from_nanos(1),
        Duration::from_nanos(999_999_999),
        ms(1),
        ms(999),
        ms(1_000),
        ms(61_001),
        Duration::new(86_400 * 3 + 7, 123_456_789),
        Duration::new(u64::MAX / 4, 5),
    ];
    for d in samples {
        let text = format_duration(d);
        assert_eq!(parse_duration(&text), Ok(d), "{text}");
    }
}

#[test]
fn percents() {
    assert_eq!(parse_percent("50%"), Ok(0.5));
    assert_eq!(parse_percent("0.5%"), Ok(0.005));
    assert_eq!(parse_percent("100%"), Ok(1.0));
    assert_eq!(parse_percent("0%"), Ok(0.0));
    for bad in ["50", "%", "-5%", "five%", "5s"] {
        assert!(parse_percent(bad).is_err(), "{bad:?} should be rejected");
    }
    assert!(parse_percent("50")
        .unwrap_err()
        .contains("not a percentage"));
}

#[test]
fn sizes() {
    assert_eq!(parse_size("64KiB"), Ok(65_536));
    assert_eq!(parse_size("1MiB"), Ok(1_048_576));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("512B"), Ok(512));
    assert_eq!(parse_size("1000"), Ok(1_000));
    assert_eq!(parse_size("10KB"), Ok(10_000));
    assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
    assert_eq!(parse_size("64 kib"), Ok(65_536));
    for bad in ["", "KiB", "-1", "10XB", "1.KB"] {
        assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
    }
    assert!(parse_size("99999999999GiB")
        .unwrap_err()
        .contains("too large"));
}

#[test]
fn plain_numbers() {
    assert_eq!(parse_number("5"), Some(5.0));
    assert_eq!(parse_number("0.25"), Some(0.25));
    for bad in ["", "-1", "1e3", "1.", "5%", "inf", "NaN"] {
        assert_eq!(parse_number(bad), None, "{bad:?}");
    }
}
