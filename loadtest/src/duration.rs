//! Durations as people write them: `500ms`, `30s`, `2m`, `1h`, `1.5s`.
//!
//! A copy of the grammar in serin-config, kept here because this crate
//! depends on no serin crate.

use std::time::Duration;

/// A duration string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?} (want a number and ms, s, m or h, e.g. 500ms, 30s, 2m)")]
pub struct ParseDurationError(String);

/// Parses a non-negative number followed by `ms`, `s`, `m` or `h`.
///
/// # Errors
///
/// [`ParseDurationError`] for a missing or unknown unit, a bad number, or a
/// value too large for a [`Duration`].
pub fn parse_duration(text: &str) -> Result<Duration, ParseDurationError> {
    let err = || ParseDurationError(text.to_owned());
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(err)?;
    let (number, unit) = s.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(err()),
    };
    let value: f64 = number.parse().map_err(|_| err())?;
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects() {
        for bad in ["", "30", "s", "-1s", "1x", "1.2.3s", "1e999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
