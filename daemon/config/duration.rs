//! Durations as a technician writes them in the config: `"15s"`, `"500ms"`, `"1m30s"`, `"2h"`.

use std::time::Duration;

/// Parses `"15s"`, `"500ms"`, `"1m30s"`, `"1.5s"`. A bare number is refused: `15` could mean
/// seconds or milliseconds, and guessing wrong moves the close of a bet window.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("the duration is empty".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("`{text}` does not start with a number"));
        }
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{number}` in `{text}` is not a number"))?;
        let seconds_per_unit = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("`{text}` has no unit")),
            other => {
                return Err(format!(
                    "`{other}` in `{text}` is not a unit (use ms, s, m or h)"
                ))
            }
        };
        let part = Duration::try_from_secs_f64(value * seconds_per_unit)
            .map_err(|_| format!("`{text}` is out of range"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("`{text}` is out of range"))?;
        rest = tail;
    }
    Ok(total)
}

/// Formats a duration the way the config writes it, for messages and `validate --print`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms % 60_000 != 0 || ms == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}m", ms / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_technicians_write() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn refuses_what_it_cannot_read_unambiguously() {
        for bad in ["", "15", "s", "15 seconds", "1..5s", "-3s", "15sec"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn formats_back() {
        assert_eq!(format_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}
