//! Timestamps as instants. A row holds a timestamp as the text PostgREST sent
//! (`2026-12-03T10:00:00+00:00`), a query's filter as the text the app wrote
//! (`2026-12-03 11:00+01`), and an index orders by it: all three must agree on which
//! moment a text names, so the one parser lives here, below both the store's indexes
//! and the query layer.

/// A timestamp or date as microseconds since 1970 in UTC: `YYYY-MM-DD`, then optionally
/// `T` or a space, `HH:MM[:SS[.frac]]`, then `Z` or `±HH[:MM]` (no zone is UTC, as the
/// servers this SDK talks to run in UTC).
pub fn instant(s: &str) -> Option<i128> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut micros: i128 = 0;
    let mut rest = &s[10..];
    if let Some(r) = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' ')) {
        let r = r.trim_start();
        let hb = r.as_bytes();
        if hb.len() < 5 || hb[2] != b':' {
            return None;
        }
        let h: i64 = r.get(0..2)?.parse().ok()?;
        let mi: i64 = r.get(3..5)?.parse().ok()?;
        let mut i = 5;
        let mut sec = 0i64;
        let mut frac = 0i128;
        if hb.get(5) == Some(&b':') {
            sec = r.get(6..8)?.parse().ok()?;
            i = 8;
            if hb.get(8) == Some(&b'.') {
                let digits: String = r[9..].chars().take_while(|c| c.is_ascii_digit()).collect();
                let mut padded = digits.clone();
                padded.truncate(6);
                while padded.len() < 6 {
                    padded.push('0');
                }
                frac = padded.parse().ok()?;
                i = 9 + digits.len();
            }
        }
        if h > 24 || mi > 59 || sec > 60 {
            return None;
        }
        micros = ((h * 3600 + mi * 60 + sec) as i128) * 1_000_000 + frac;
        rest = &r[i..];
    }
    let rest = rest.trim();
    let offset_s: i64 = match rest {
        "" | "Z" | "z" | "+00" | "+00:00" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = rest[1..].replace(':', "");
            let (hh, mm) = match z.len() {
                2 => (z.parse::<i64>().ok()?, 0),
                4 => (z[..2].parse::<i64>().ok()?, z[2..].parse::<i64>().ok()?),
                _ => return None,
            };
            sign * (hh * 3600 + mm * 60)
        }
    };
    Some((days_from_civil(y, mo, d) as i128) * 86_400_000_000 + micros - (offset_s as i128) * 1_000_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether values of the PostgreSQL type `ty` are instants (compared and indexed as
/// moments, not as text).
pub fn is_time_type(ty: &str) -> bool {
    matches!(
        ty.trim().to_ascii_lowercase().as_str(),
        "timestamptz" | "timestamp" | "timestamp with time zone" | "timestamp without time zone" | "date"
    )
}
