//! A small reader for the header values cellgate renders, written independently of the
//! renderer: Structured Field lists of strings with integer parameters (RFC 9651, the subset
//! the IETF rate-limit headers use), and plain decimal integers.

/// One list member: the unescaped string and its `key=integer` parameters, in order.
pub type Item = (String, Vec<(String, u64)>);

/// Reads a list such as `"a";q=10;w=1,"b\"c";q=5;w=60`. `None` if the text is not such a list
/// (unterminated string, bad escape, parameter without an integer, stray byte, …).
pub fn parse_sf_list(value: &str) -> Option<Vec<Item>> {
    let bytes = value.as_bytes();
    let mut items = Vec::new();
    let mut pos = 0;
    loop {
        // A string.
        if bytes.get(pos) != Some(&b'"') {
            return None;
        }
        pos += 1;
        let mut name = String::new();
        loop {
            match *bytes.get(pos)? {
                b'"' => {
                    pos += 1;
                    break;
                }
                b'\\' => {
                    let escaped = *bytes.get(pos + 1)?;
                    if escaped != b'"' && escaped != b'\\' {
                        return None;
                    }
                    name.push(char::from(escaped));
                    pos += 2;
                }
                byte @ 0x20..=0x7E => {
                    name.push(char::from(byte));
                    pos += 1;
                }
                _ => return None,
            }
        }
        // Parameters.
        let mut params = Vec::new();
        while bytes.get(pos) == Some(&b';') {
            pos += 1;
            let key_start = pos;
            while bytes.get(pos).is_some_and(u8::is_ascii_lowercase) {
                pos += 1;
            }
            let key = value.get(key_start..pos)?.to_owned();
            if key.is_empty() || bytes.get(pos) != Some(&b'=') {
                return None;
            }
            pos += 1;
            let number_start = pos;
            while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            params.push((key, parse_integer(value.get(number_start..pos)?)?));
        }
        items.push((name, params));
        match bytes.get(pos) {
            None => return Some(items),
            Some(b',') => pos += 1,
            Some(_) => return None,
        }
    }
}

/// A decimal `u64` without sign, leading zeros (except `0` itself) or other bytes.
pub fn parse_integer(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|byte| byte.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_with_escapes() {
        let items = parse_sf_list(r#""a";q=10;w=1,"b\"c\\";r=0"#).unwrap();
        assert_eq!(items[0].0, "a");
        assert_eq!(items[0].1, [("q".to_owned(), 10), ("w".to_owned(), 1)]);
        assert_eq!(items[1].0, "b\"c\\");
        assert_eq!(items[1].1, [("r".to_owned(), 0)]);
    }

    #[test]
    fn refuses_what_is_not_a_list() {
        for bad in [
            "",
            "a",
            r#""a"#,
            r#""a";q="#,
            r#""a";q=01"#,
            r#""a","#,
            r#""\x""#,
        ] {
            assert_eq!(parse_sf_list(bad), None, "{bad}");
        }
        assert_eq!(parse_integer("18446744073709551616"), None);
        assert_eq!(parse_integer("18446744073709551615"), Some(u64::MAX));
    }
}
