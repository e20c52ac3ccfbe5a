//! Opaque pagination cursors. Lists are ordered by id, newest first; a cursor names the last id a
//! page returned. It is encoded so clients treat it as opaque and we can change its content later.

/// Encodes the id after which the next page starts.
pub fn encode(last_id: i64) -> String {
    format!("c{last_id:x}")
}

/// Decodes a cursor made by [`encode`]; `None` when it is malformed.
pub fn decode(cursor: &str) -> Option<i64> {
    i64::try_from(strict_hex(cursor.strip_prefix('c')?)?)
        .ok()
        .filter(|id| *id > 0)
}

/// A number written as `{:x}` writes it: lower-case hex digits, no sign, no leading zero, at most
/// 16 digits. Anything else is refused, so one number has one spelling (and the OpenAPI document
/// can state the format exactly).
pub fn strict_hex(hex: &str) -> Option<u64> {
    let well_formed = !hex.is_empty()
        && hex.len() <= 16
        && (hex == "0" || !hex.starts_with('0'))
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then(|| u64::from_str_radix(hex, 16).ok())?
}

/// Builds `next_cursor` for a page fetched with `limit + 1` rows: when the extra row is there, it is
/// dropped and the cursor points after the last kept row.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: usize,
    id_of: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| encode(id_of(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for id in [1, 42, i64::MAX] {
            assert_eq!(decode(&encode(id)), Some(id));
        }
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        for bad in [
            "",
            "c",
            "42",
            "cxyz",
            "c-1",
            "c+1",
            "c0",
            "c01",
            "cA",
            "c11111111111111111",
            "c8000000000000000",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_page_gets_a_cursor_after_its_last_row() {
        let (rows, next) = page(vec![9, 8, 7], 2, |r| *r);
        assert_eq!(rows, vec![9, 8]);
        assert_eq!(next.as_deref().and_then(decode), Some(8));
        let (rows, next) = page(vec![9, 8], 2, |r| *r);
        assert_eq!(rows, vec![9, 8]);
        assert_eq!(next, None);
    }
}
