//! Media types as the compress middleware compares them: type and subtype in
//! lower case, and parameters that must all be present when the configured type
//! has any (`text/html` matches `text/html; charset=utf-8`, not the reverse).

/// A parsed `Content-Type` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    essence: String,
    params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses `type/subtype; name=value; ...` (whitespace and case ignored in names).
    pub fn parse(s: &str) -> Result<MediaType, String> {
        let mut parts = s.split(';');
        let essence: String = parts
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let valid = essence
            .split_once('/')
            .is_some_and(|(t, st)| !t.is_empty() && !st.is_empty() && !st.contains('/'));
        if !valid {
            return Err(format!("invalid media type {s:?}"));
        }
        let mut params = Vec::new();
        for p in parts {
            if p.trim().is_empty() {
                continue;
            }
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("invalid media type parameter {p:?} in {s:?}"))?;
            let v = v.trim().trim_matches('"').to_string();
            params.push((k.trim().to_ascii_lowercase(), v));
        }
        params.sort();
        Ok(MediaType { essence, params })
    }

    /// `type/subtype`.
    pub fn essence(&self) -> &str {
        &self.essence
    }

    /// Whether a response of type `other` matches this configured type.
    pub fn matches(&self, other: &MediaType) -> bool {
        self.essence == other.essence && (self.params.is_empty() || self.params == other.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_matter_only_when_configured() {
        let html = MediaType::parse("text/html").unwrap();
        let utf8 = MediaType::parse("Text/HTML; Charset=\"utf-8\"").unwrap();
        assert_eq!(utf8.essence(), "text/html");
        assert!(html.matches(&utf8));
        assert!(!utf8.matches(&html));
        assert!(utf8.matches(&MediaType::parse("text/html;charset=utf-8").unwrap()));
        assert!(MediaType::parse("text").is_err());
        assert!(MediaType::parse("text/html; charset").is_err());
    }
}
