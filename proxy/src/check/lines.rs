//! Where services and labels are written in a file, found by searching its text
//! (the YAML parser does not keep positions).

use serde_yaml_ng::Mapping;

use super::tree::key_text;

/// Each service's name, the line of its key and the line range its definition may
/// span (0-based, end excluded).
pub fn service_lines(services: &Mapping, lines: &Lines) -> Vec<(String, Span)> {
    let mut starts = Vec::new();
    let mut from = 0;
    for key in services.keys() {
        let name = key_text(key);
        let at = lines.find_key(&name, from);
        if let Some(at) = at {
            from = at + 1;
        }
        starts.push((name, at));
    }
    let ends: Vec<usize> = (0..starts.len())
        .map(|i| {
            starts[i + 1..]
                .iter()
                .find_map(|(_, at)| *at)
                .unwrap_or(lines.len())
        })
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(|((name, at), end)| {
            let span = Span {
                key: at,
                start: at.unwrap_or(0),
                end,
            };
            (name, span)
        })
        .collect()
}

/// Where a service is written.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// 0-based line of the service's key, when found.
    pub key: Option<usize>,
    /// First line to search for its labels.
    pub start: usize,
    /// Line after the last one to search.
    pub end: usize,
}

/// The file's lines, to point at services and labels.
pub struct Lines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    /// Splits `text` into lines.
    pub fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().collect(),
        }
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// The first line at or after `from` that defines the mapping key `name`.
    pub fn find_key(&self, name: &str, from: usize) -> Option<usize> {
        (from..self.lines.len()).find(|&i| {
            let t = self.lines[i].trim_start();
            let t = t.strip_prefix(['"', '\'']).unwrap_or(t);
            t.strip_prefix(name).is_some_and(|rest| {
                let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
                rest.trim_start().starts_with(':')
            })
        })
    }

    /// The 1-based lines of `keys`, searched in order within `span`.
    pub fn locate(&self, keys: &[String], span: Span) -> Vec<Option<usize>> {
        let end = span.end.min(self.lines.len());
        let mut from = span.start;
        keys.iter()
            .map(|key| {
                if key.is_empty() {
                    return None;
                }
                let found = |i: &usize| self.lines[*i].contains(key.as_str());
                let hit = (from..end)
                    .find(found)
                    .or_else(|| (span.start..from.min(end)).find(found));
                if let Some(i) = hit {
                    from = i + 1;
                }
                hit.map(|i| i + 1)
            })
            .collect()
    }
}
