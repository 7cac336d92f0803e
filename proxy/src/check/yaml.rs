//! YAML parsing as `docker stack deploy` does it (Go's yaml.v2, non-strict): a key
//! written twice in one mapping is not an error, the last value wins. Such keys are
//! returned so they can be reported, since `docker compose` (yaml.v3) rejects them.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Value};

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The parser's message.
    pub message: String,
}

/// A parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The first document, `Null` when the file is empty.
    pub value: Value,
    /// Paths (`services.web.networks`) of keys given more than once in one mapping.
    pub duplicates: Vec<String>,
    /// Whether the file holds more than one document.
    pub several: bool,
}

/// Parses the first document of `text`.
pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let mut docs = serde_yaml_ng::Deserializer::from_str(text);
    let Some(first) = docs.next() else {
        return Ok(Document {
            value: Value::Null,
            duplicates: Vec::new(),
            several: false,
        });
    };
    let duplicates = RefCell::new(Vec::new());
    let seed = Seed {
        path: String::new(),
        duplicates: &duplicates,
    };
    let value = seed.deserialize(first).map_err(|e| SyntaxError {
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })?;
    Ok(Document {
        value,
        duplicates: duplicates.into_inner(),
        several: docs.next().is_some(),
    })
}

struct Seed<'a> {
    path: String,
    duplicates: &'a RefCell<Vec<String>>,
}

impl Seed<'_> {
    fn child(&self, segment: &str) -> Self {
        let path = if self.path.is_empty() {
            segment.to_string()
        } else if segment.starts_with('[') {
            format!("{}{segment}", self.path)
        } else {
            format!("{}.{segment}", self.path)
        };
        Seed {
            path,
            duplicates: self.duplicates,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(&format!("[{}]", items.len())))? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        while let Some(key) = map.next_key_seed(self.child("?"))? {
            let name = match &key {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => "?".into(),
            };
            let seed = self.child(&name);
            let path = seed.path.clone();
            let value = map.next_value_seed(seed)?;
            if out.contains_key(&key) {
                self.duplicates.borrow_mut().push(path);
            }
            out.insert(key, value);
        }
        Ok(Value::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant): (String, _) = data.variant()?;
        let value = variant.newtype_variant_seed(self)?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let doc = parse("a: 1\nb:\n  c: x\n  c: y\na: 2\nl: [1, {d: 1, d: 2}]\n").unwrap();
        assert_eq!(doc.value["a"], Value::from(2));
        assert_eq!(doc.value["b"]["c"], Value::from("y"));
        assert_eq!(doc.duplicates, vec!["b.c", "a", "l[1].d"]);
        assert!(!doc.several);
    }

    #[test]
    fn scalars_anchors_and_tags() {
        let doc = parse("x: &a {k: v}\ny: *a\nn: ~\nf: 1.5\nb: true\nt: !reset []\n").unwrap();
        assert_eq!(doc.value["y"]["k"], Value::from("v"));
        assert_eq!(doc.value["n"], Value::Null);
        assert_eq!(doc.value["f"], Value::from(1.5));
        assert_eq!(doc.value["b"], Value::from(true));
        assert!(matches!(doc.value["t"], Value::Tagged(_)));
        assert!(doc.duplicates.is_empty());
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(!e.message.is_empty());
    }

    #[test]
    fn empty_and_several_documents() {
        assert_eq!(parse("").unwrap().value, Value::Null);
        assert_eq!(parse("# nothing\n").unwrap().value, Value::Null);
        let doc = parse("a: 1\n---\nb: 2\n").unwrap();
        assert!(doc.several);
        assert_eq!(doc.value["a"], Value::from(1));
    }
}
