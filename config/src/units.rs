//! Durations (`250ms`, `1.5s`, `1m30s`), percentages (`50%`) and sizes (`64KiB`).
//!
//! Parsing is exact: numbers are read as decimal digits, not through `f64`,
//! so `100ms` is exactly 100 milliseconds.

use std::time::Duration;

const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A decimal number as read from the text, kept as digits so that scaling
/// it to a unit is exact.
#[derive(Debug, Clone, Copy)]
struct Decimal<'a> {
    int: &'a str,
    frac: &'a str,
}

/// Parses a duration: one or more `NUMBER UNIT` pairs with units `ms`, `s`,
/// `m`, `h`, e.g. `250ms`, `1.5s`, `1m30s`, `2h`.
///
/// # Errors
///
/// A bare number (the unit is missing), an unknown unit, a negative or
/// malformed number, or a duration too large to represent.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration: write e.g. 500ms, 10s, 5m or 1h".to_owned());
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (number, after) = split_number(rest).ok_or_else(|| {
            format!("`{text}` is not a duration: write e.g. 500ms, 10s, 5m or 1h")
        })?;
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let per_unit = match unit {
            "ms" => NANOS_PER_MILLI,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            "" => {
                return Err(format!(
                    "`{text}` has no unit: write e.g. {number}s or {number}ms (units: ms, s, m, h)"
                ))
            }
            other => {
                return Err(format!(
                    "`{text}`: unknown duration unit `{other}` (units: ms, s, m, h)"
                ))
            }
        };
        nanos = number
            .scaled(per_unit)
            .and_then(|n| nanos.checked_add(n))
            .ok_or_else(|| format!("`{text}` is too large a duration"))?;
        rest = after;
    }
    let secs = u64::try_from(nanos / NANOS_PER_SEC)
        .map_err(|_| format!("`{text}` is too large a duration"))?;
    // The remainder is below 1e9, so it always fits a u32.
    let subsec = (nanos % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, subsec))
}

/// Formats a duration so that [`parse_duration`] reads it back exactly:
/// `250ms`, `1.5s`, `2m0s`, `1h0m0s`, `0s`. Below one second it uses
/// (possibly fractional) milliseconds, above it `h`, `m` and fractional `s`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let nanos = d.as_nanos();
    if nanos < NANOS_PER_SEC {
        let millis = nanos / NANOS_PER_MILLI;
        let frac = fraction(nanos % NANOS_PER_MILLI, 6);
        return format!("{millis}{frac}ms");
    }
    let total_secs = d.as_secs();
    let (hours, minutes, secs) = (total_secs / 3600, total_secs / 60 % 60, total_secs % 60);
    let frac = fraction(u128::from(d.subsec_nanos()), 9);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{secs}{frac}s"));
    out
}

/// Parses a percentage into a fraction: `50%` is 0.5, `0.5%` is 0.005.
///
/// # Errors
///
/// The `%` sign is missing, or the number is malformed or negative. The
/// range (e.g. at most 100%) is for the caller to check.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let text = s.trim();
    let Some(number) = text.strip_suffix('%') else {
        return Err(format!(
            "`{text}` is not a percentage: write e.g. 5% or 0.5%"
        ));
    };
    match parse_number(number.trim_end()) {
        Some(value) => Ok(value / 100.0),
        None => Err(format!(
            "`{text}` is not a percentage: write e.g. 5% or 0.5%"
        )),
    }
}

/// Parses a size in bytes: `512`, `512B`, `10KB` (10 000), `64KiB` (65 536),
/// `1MiB`, `1.5MB`; units `B`, `KB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`
/// (case-insensitive). A fractional result is rounded down to whole bytes.
///
/// # Errors
///
/// An unknown unit, a malformed number, or a size beyond `u64`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let (number, unit) = split_number(text)
        .ok_or_else(|| format!("`{text}` is not a size: write e.g. 512B, 64KiB or 1MiB"))?;
    let per_unit: u128 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}`: unknown size unit (units: B, KB, MB, GB, KiB, MiB, GiB)"
            ))
        }
    };
    number
        .scaled(per_unit)
        .and_then(|bytes| u64::try_from(bytes).ok())
        .ok_or_else(|| format!("`{text}` is too large a size"))
}

/// Parses a plain non-negative decimal number (`5`, `0.25`), without sign,
/// exponent or unit.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    match split_number(s) {
        Some((_, "")) => s.parse().ok(),
        _ => None,
    }
}

/// Splits `DIGITS[.DIGITS]` off the front of `s`.
fn split_number(s: &str) -> Option<(Decimal<'_>, &str)> {
    let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if int_len == 0 {
        return None;
    }
    let (int, rest) = s.split_at(int_len);
    let Some(after_dot) = rest.strip_prefix('.') else {
        return Some((Decimal { int, frac: "" }, rest));
    };
    let frac_len = after_dot
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after_dot.len());
    if frac_len == 0 {
        return None;
    }
    let (frac, rest) = after_dot.split_at(frac_len);
    Some((Decimal { int, frac }, rest))
}

/// `.5` for (500, 3) etc.: `value` as `digits` decimal places, trailing zeros
/// dropped; empty when zero.
fn fraction(value: u128, digits: usize) -> String {
    if value == 0 {
        return String::new();
    }
    let padded = format!("{value:0digits$}");
    format!(".{}", padded.trim_end_matches('0'))
}

// === impl Decimal ===

impl Decimal<'_> {
    /// `self * unit`, rounded down; `None` on overflow.
    fn scaled(self, unit: u128) -> Option<u128> {
        let int: u128 = self.int.parse().ok()?;
        let mut total = int.checked_mul(unit)?;
        // Digits beyond the unit's resolution cannot change the floor, and
        // capping them keeps 10^digits within u128.
        let frac = &self.frac[..self.frac.len().min(30)];
        if !frac.is_empty() {
            let numerator: u128 = frac.parse().ok()?;
            let denominator = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
            total = total.checked_add(numerator.checked_mul(unit)? / denominator)?;
        }
        Some(total)
    }
}

impl std::fmt::Display for Decimal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.frac.is_empty() {
            f.write_str(self.int)
        } else {
            write!(f, "{}.{}", self.int, self.frac)
        }
    }
}

#[cfg(test)]
mod tests;
