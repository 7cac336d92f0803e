//! Key and prefix syntax shared by every backend.
//!
//! A key is a `/`-separated path of one or more segments. Each segment is 1 to
//! [`MAX_SEGMENT_LEN`] bytes of ASCII letters, digits and `-` `_` `.` `@` `+`, and
//! must not start with `.` (so `.` and `..` are impossible and backends can keep
//! their own files under dot-names). A whole key is at most [`MAX_KEY_LEN`] bytes.
//! Keys are case-sensitive.

use super::StoreError;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// The longest segment accepted, in bytes: the usual file name limit, and room for
/// any DNS name.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Whether `c` may appear in a key segment.
pub fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+')
}

/// Checks that `key` is a valid key.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let invalid = |reason: &'static str| StoreError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("empty key"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(invalid("key too long"));
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(invalid("empty segment (leading, trailing or double '/')"));
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Err(invalid("segment too long"));
        }
        if segment.starts_with('.') {
            return Err(invalid("segment starts with '.'"));
        }
        if !segment.chars().all(is_key_char) {
            return Err(invalid(
                "segment has a character other than ASCII letters, digits, '-', '_', '.', '@', '+'",
            ));
        }
    }
    Ok(())
}

/// Checks a prefix for `list` and `watch` and returns it without its trailing `/`.
///
/// A prefix is the empty string (every key) or a valid key, optionally followed by
/// one `/`. It matches itself and the keys below it: `a/b` matches `a/b` and `a/b/c`
/// but not `a/bc`.
pub fn normalize_prefix(prefix: &str) -> Result<&str, StoreError> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        if prefix.is_empty() {
            return Ok("");
        }
        return Err(StoreError::InvalidKey {
            key: prefix.to_string(),
            reason: "prefix '/' (use \"\" for every key)",
        });
    }
    validate_key(trimmed)?;
    Ok(trimmed)
}

/// Whether `key` is `prefix` or below it; `prefix` as returned by
/// [`normalize_prefix`].
pub fn key_in_prefix(key: &str, prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    match key.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_keys() {
        for k in [
            "a",
            "certificates/default/example.com-0123abcd",
            "accounts/acme-v02.api.letsencrypt.org/ops+le@example.com",
            "challenges/http-01/AbC_-09",
            "a.b/c..d/e",
        ] {
            validate_key(k).unwrap();
        }
        let longest = format!("{}a", "a/".repeat(255));
        assert_eq!(longest.len(), MAX_KEY_LEN - 1);
        validate_key(&longest).unwrap();
    }

    #[test]
    fn rejects_invalid_keys() {
        for k in [
            "", "/a", "a/", "a//b", "..", "a/../b", "a/./b", ".hidden", "a/.lock", "a b", "a\\b",
            "a:b", "a*b", "é", "a\0b",
        ] {
            let err = validate_key(k).unwrap_err();
            assert!(matches!(err, StoreError::InvalidKey { ref key, .. } if key == k));
        }
        assert!(validate_key(&"a".repeat(MAX_SEGMENT_LEN + 1)).is_err());
        assert!(validate_key(&format!("{}a", "a/".repeat(300))).is_err());
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("a/b/").unwrap(), "a/b");
        assert!(normalize_prefix("/").is_err());
        assert!(normalize_prefix("a//").is_err());
        assert!(key_in_prefix("a/b", "a/b"));
        assert!(key_in_prefix("a/b/c", "a/b"));
        assert!(!key_in_prefix("a/bc", "a/b"));
        assert!(!key_in_prefix("a", "a/b"));
        assert!(key_in_prefix("x", ""));
    }
}
