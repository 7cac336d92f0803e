//! A generic configuration tree that every configuration source is turned into
//! before it is deserialized into wharf's structs: files (TOML/YAML parse into a
//! [`serde_json::Value`]), flat dotted keys (command-line flags, environment
//! variables, Docker labels), merged so that a later source wins per leaf.
//!
//! [`Tree`] implements [`serde::Deserializer`] (through `&Tree`, and schema-aware
//! through [`Tree::deserialize_into`]) with the leniency Traefik users expect:
//!
//! * struct field names match case-insensitively (`entrypoints`, `ENTRYPOINTS` and
//!   `entryPoints` are the same key) against the names serde gives, aliases and
//!   renames included, while map keys (entrypoint or resolver names) stay as written;
//! * strings coerce to the requested type: booleans, numbers, and lists (split on
//!   commas);
//! * the scalar `true` (a bare `--api` flag) or an empty value (`api:` in YAML)
//!   deserializes a struct, a map or an optional section as an empty map, so the
//!   section is enabled with its defaults; `false` for an optional section is `None`;
//! * errors carry the dotted path of the offending key and, for an unknown field,
//!   the nearest known name.

mod de;
mod shape;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeOwned, Visitor};

pub use shape::Shape;

/// How alike (0 to 1, normalized Damerau-Levenshtein) a name must be to a known
/// one for it to be suggested: `adress` → `address` (0.86), but not `port` → `core` (0.5).
const MIN_SIMILARITY: f64 = 0.67;

/// Largest list index accepted in a flat key (`domains[10000]` is refused).
const MAX_INDEX: usize = 10_000;

/// One node of a configuration tree.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Tree {
    /// No value: YAML `~` or an empty key, or a hole in a list built from flat keys.
    #[default]
    Null,
    /// A boolean from a file.
    Bool(bool),
    /// A number from a file.
    Number(serde_json::Number),
    /// A string; every value from a flag, an environment variable or a label is one.
    String(String),
    /// A list.
    List(Vec<Tree>),
    /// A map from keys to nodes.
    Map(BTreeMap<String, Tree>),
}

/// One step of a path into a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    /// A map key or struct field.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Why a tree could not be built or deserialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}", at(.path), .message, hint(.suggestion))]
pub struct TreeError {
    /// Dotted path of the offending key (`entryPoints.web.address`), empty at the root.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// The nearest known key name, for an unknown key.
    pub suggestion: Option<String>,
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("`{path}`: ")
    }
}

fn hint(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

impl TreeError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            suggestion: None,
        }
    }

    /// Sets the path unless a deeper one is already set.
    pub(crate) fn within(mut self, path: &str) -> Self {
        if self.path.is_empty() {
            self.path = path.to_string();
        }
        self
    }
}

impl serde::de::Error for TreeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new("", msg.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self {
            path: String::new(),
            message: format!("unknown key `{field}`"),
            suggestion: nearest(field, expected.iter().copied()).map(str::to_string),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self {
            path: String::new(),
            message: format!(
                "unknown value `{variant}`, expected one of: {}",
                expected.join(", ")
            ),
            suggestion: nearest(variant, expected.iter().copied()).map(str::to_string),
        }
    }
}

/// The candidate closest to `name` (case-insensitively), if any is reasonably close.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let score = strsim::normalized_damerau_levenshtein(&name, &c.to_ascii_lowercase());
            (c, score)
        })
        .filter(|(_, score)| *score >= MIN_SIMILARITY)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// The first of `fields` equal to `key` ignoring ASCII case.
pub(crate) fn canonical_field<'f>(key: &str, fields: &[&'f str]) -> Option<&'f str> {
    fields.iter().copied().find(|f| f.eq_ignore_ascii_case(key))
}

/// Renders a path as `a.b[0].c`.
pub fn render_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Splits a flat key such as `tls.domains[0].main` into path segments.
pub fn parse_flat_key(key: &str) -> Result<Vec<PathSeg>, TreeError> {
    let bad = |why: &str| TreeError::new(key, format!("malformed key: {why}"));
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(bad("empty segment"));
        }
        out.push(PathSeg::Key(name.to_string()));
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| bad("missing `]`"))?;
            if !rest.starts_with('[') {
                return Err(bad("unexpected text after `]`"));
            }
            let index: usize = rest[1..close]
                .trim()
                .parse()
                .map_err(|_| bad("list index is not a number"))?;
            if index > MAX_INDEX {
                return Err(bad("list index too large"));
            }
            out.push(PathSeg::Index(index));
            rest = &rest[close + 1..];
        }
    }
    Ok(out)
}

impl Tree {
    /// Builds a tree from a parsed TOML, YAML or JSON document.
    pub fn from_json(value: &serde_json::Value) -> Tree {
        match value {
            serde_json::Value::Null => Tree::Null,
            serde_json::Value::Bool(b) => Tree::Bool(*b),
            serde_json::Value::Number(n) => Tree::Number(n.clone()),
            serde_json::Value::String(s) => Tree::String(s.clone()),
            serde_json::Value::Array(items) => {
                Tree::List(items.iter().map(Tree::from_json).collect())
            }
            serde_json::Value::Object(map) => Tree::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Tree::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Builds a tree from flat dotted keys and string values, such as
    /// (`entrypoints.web.address`, `:80`) or (`tls.domains[0].main`, `example.com`).
    /// A later pair wins over an earlier one for the same leaf.
    pub fn from_flat<I: IntoIterator<Item = (String, String)>>(
        pairs: I,
    ) -> Result<Tree, TreeError> {
        let mut tree = Tree::Map(BTreeMap::new());
        for (key, value) in pairs {
            let path = parse_flat_key(key.trim())?;
            tree.insert(&path, Tree::String(value));
        }
        Ok(tree)
    }

    /// Sets the node at `path` (creating maps and lists on the way), merging
    /// `value` into what is already there as [`Tree::merge`] does.
    pub fn insert(&mut self, path: &[PathSeg], value: Tree) {
        let Some((first, rest)) = path.split_first() else {
            self.merge(value);
            return;
        };
        match first {
            PathSeg::Key(key) => {
                if !matches!(self, Tree::Map(_)) {
                    *self = Tree::Map(BTreeMap::new());
                }
                if let Tree::Map(map) = self {
                    map.entry(key.clone()).or_default().insert(rest, value);
                }
            }
            PathSeg::Index(index) => {
                if !matches!(self, Tree::List(_)) {
                    *self = Tree::List(Vec::new());
                }
                if let Tree::List(items) = self {
                    if items.len() <= *index {
                        items.resize(index + 1, Tree::Null);
                    }
                    items[*index].insert(rest, value);
                }
            }
        }
    }

    /// Merges `other` over `self`, so `other` wins per leaf: maps merge key by key,
    /// lists element by element (holes in `other`'s list keep `self`'s element), and
    /// any other node of `other` replaces the one in `self` (so `a,b,c` written as one
    /// string replaces a whole list), except that `true` or an empty value does not
    /// replace a map: it only says the section is on.
    pub fn merge(&mut self, other: Tree) {
        match (self, other) {
            (Tree::List(base), Tree::List(over)) => {
                for (i, value) in over.into_iter().enumerate() {
                    match base.get_mut(i) {
                        Some(existing) => existing.merge(value),
                        None => base.push(value),
                    }
                }
            }
            (Tree::Map(base), Tree::Map(over)) => {
                for (key, value) in over {
                    match base.get_mut(&key) {
                        Some(existing) => existing.merge(value),
                        None => {
                            base.insert(key, value);
                        }
                    }
                }
            }
            (Tree::Map(_), over) if over.is_enable() => {}
            (_, Tree::Null) => {}
            (base, over) => *base = over,
        }
    }

    /// Whether this node is a bare "on" switch: `true` (bool or string), or empty
    /// (`api:` in YAML, `--api=` or `WHARF_API=`).
    pub fn is_enable(&self) -> bool {
        match self {
            Tree::Null => true,
            Tree::Bool(b) => *b,
            Tree::String(s) => {
                let s = s.trim();
                s.is_empty() || s.eq_ignore_ascii_case("true")
            }
            _ => false,
        }
    }

    /// Whether this node is the scalar `false` (bool or string).
    pub fn is_disable(&self) -> bool {
        match self {
            Tree::Bool(b) => !*b,
            Tree::String(s) => s.trim().eq_ignore_ascii_case("false"),
            _ => false,
        }
    }

    /// The node at a path of map keys, if present (keys compared exactly).
    pub fn get(&self, path: &[&str]) -> Option<&Tree> {
        path.iter().try_fold(self, |node, key| match node {
            Tree::Map(map) => map.get(*key),
            _ => None,
        })
    }

    /// Rewrites struct field names to the spelling `shape` gives them (matching
    /// case-insensitively), so trees from sources with different spellings merge
    /// key by key. Map keys and unknown names are left as they are; two spellings
    /// of one field are merged in key order.
    pub fn normalize_keys(&mut self, shape: &Shape) {
        match (self, shape) {
            (node, Shape::Option(inner)) => node.normalize_keys(inner),
            (Tree::Map(map), Shape::Struct { fields, .. }) => {
                let old = std::mem::take(map);
                for (key, mut value) in old {
                    let name = canonical_field(&key, fields).map_or(key, str::to_string);
                    value.normalize_keys(shape.field(&name));
                    match map.get_mut(&name) {
                        Some(existing) => existing.merge(value),
                        None => {
                            map.insert(name, value);
                        }
                    }
                }
            }
            (Tree::Map(map), Shape::Map(inner)) => {
                map.values_mut().for_each(|v| v.normalize_keys(inner));
            }
            (Tree::List(items), Shape::Seq(inner)) => {
                items.iter_mut().for_each(|v| v.normalize_keys(inner));
            }
            _ => {}
        }
    }

    /// Deserializes the tree into `T`, guided by `T`'s shape (see [`Shape::of`]).
    pub fn deserialize_into<T: DeserializeOwned>(&self) -> Result<T, TreeError> {
        self.deserialize_with(&Shape::of::<T>())
    }

    /// Deserializes the tree into `T` with a shape computed beforehand by [`Shape::of`].
    pub fn deserialize_with<T: DeserializeOwned>(&self, shape: &Shape) -> Result<T, TreeError> {
        T::deserialize(de::TreeDeserializer::new(self, shape, String::new()))
    }
}

impl From<&serde_json::Value> for Tree {
    fn from(value: &serde_json::Value) -> Self {
        Tree::from_json(value)
    }
}

/// Forwards to the shape-less deserializer of the root node.
macro_rules! delegate {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
            self.top().$method(visitor)
        }
    )*};
}

/// `&Tree` is a deserializer too, without shape guidance: an optional section
/// written as `false` is then an error rather than `None`.
impl<'de> serde::Deserializer<'de> for &Tree {
    type Error = TreeError;

    delegate! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_option deserialize_unit
        deserialize_seq deserialize_map deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.top().deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.top().deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.top().deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.top().deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.top().deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.top().deserialize_enum(name, variants, visitor)
    }
}

impl Tree {
    fn top(&self) -> de::TreeDeserializer<'_> {
        de::TreeDeserializer::new(self, &shape::UNKNOWN, String::new())
    }
}

#[cfg(test)]
mod tests;
