//! The shape of a deserializable type (which keys are struct fields, which are map
//! keys, where lists and optional sections are), found by probing its
//! `Deserialize` implementation with a recording deserializer, so the schema never
//! has to be written down twice.
//!
//! The probe feeds every field a neutral value (`0`, `""`, one list element, one map
//! entry). When a type rejects what it was fed, the probe records that and runs
//! again, trying a scalar instead of a map for a `deserialize_any` type (such as
//! `GoDuration`) or leaving the field out; what was learnt is kept across runs.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};
use serde::Deserialize;

/// Runs of the probe before giving up on a type that keeps rejecting values.
const MAX_RUNS: usize = 256;
/// Nesting depth at which the probe stops (recursive types).
const MAX_DEPTH: usize = 32;

/// The shape of a type, as seen through serde.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Shape {
    /// Not known (the probe could not look inside).
    #[default]
    Unknown,
    /// Takes any value, maps included (`serde_json::Value`).
    Any,
    /// A single value: string, number, boolean, or a type that only accepts those.
    Scalar,
    /// An enum with these variant names.
    Enum(Vec<&'static str>),
    /// An optional value.
    Option(Box<Shape>),
    /// A list of values of one shape.
    Seq(Box<Shape>),
    /// A map from user-chosen names to values of one shape.
    Map(Box<Shape>),
    /// A struct: every accepted field name (aliases included), and the shapes of
    /// the fields that could be probed.
    Struct {
        /// Field names as serde gives them to `deserialize_struct`.
        fields: Vec<&'static str>,
        /// Shapes by field name.
        children: Vec<(&'static str, Shape)>,
    },
}

pub(super) static UNKNOWN: Shape = Shape::Unknown;
static ANY: Shape = Shape::Any;

impl Shape {
    /// Probes `T`'s `Deserialize` implementation.
    pub fn of<'de, T: Deserialize<'de>>() -> Shape {
        let state = RefCell::new(State::default());
        for _ in 0..MAX_RUNS {
            let learnt = state.borrow().learnt();
            let _ = T::deserialize(Probe {
                state: &state,
                path: String::new(),
                depth: 0,
            });
            if state.borrow().learnt() == learnt {
                break;
            }
        }
        let state = state.into_inner();
        state.build("", 0)
    }

    /// The shape of field `name` of a struct (matched exactly, then ignoring case);
    /// [`Shape::Any`] inside `Any`; [`Shape::Unknown`] otherwise.
    pub fn field(&self, name: &str) -> &Shape {
        match self {
            Shape::Struct { children, .. } => children
                .iter()
                .find(|(n, _)| *n == name)
                .or_else(|| children.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)))
                .map_or(&UNKNOWN, |(_, s)| s),
            Shape::Option(inner) => inner.field(name),
            Shape::Any => &ANY,
            _ => &UNKNOWN,
        }
    }

    /// The value shape of a map, the element shape of a list, the inner shape of an option.
    pub fn inner(&self) -> &Shape {
        match self {
            Shape::Option(s) | Shape::Seq(s) | Shape::Map(s) => s,
            Shape::Any => &ANY,
            _ => &UNKNOWN,
        }
    }

    /// Whether this is a section: a struct, a map or an untyped value.
    pub fn is_section(&self) -> bool {
        matches!(self, Shape::Any | Shape::Map(_) | Shape::Struct { .. })
    }
}

/// What the probe recorded at one position.
#[derive(Debug, Clone)]
enum Kind {
    Any,
    Scalar,
    Enum(&'static [&'static str]),
    Option,
    Seq,
    Map,
    Struct(&'static [&'static str]),
}

#[derive(Default)]
struct State {
    kinds: HashMap<String, Kind>,
    /// `deserialize_any` positions that rejected a map.
    scalar_any: HashSet<String>,
    /// Positions the probe leaves out.
    skip: HashSet<String>,
}

impl State {
    fn learnt(&self) -> (usize, usize, usize) {
        (self.kinds.len(), self.scalar_any.len(), self.skip.len())
    }

    fn build(&self, path: &str, depth: usize) -> Shape {
        if depth > MAX_DEPTH {
            return Shape::Unknown;
        }
        match self.kinds.get(path) {
            None => Shape::Unknown,
            Some(Kind::Any) => Shape::Any,
            Some(Kind::Scalar) => Shape::Scalar,
            Some(Kind::Enum(v)) => Shape::Enum(v.to_vec()),
            Some(Kind::Option) => {
                Shape::Option(Box::new(self.build(&format!("{path}?"), depth + 1)))
            }
            Some(Kind::Seq) => Shape::Seq(Box::new(self.build(&format!("{path}[]"), depth + 1))),
            Some(Kind::Map) => Shape::Map(Box::new(self.build(&format!("{path}{{}}"), depth + 1))),
            Some(Kind::Struct(fields)) => Shape::Struct {
                fields: fields.to_vec(),
                children: fields
                    .iter()
                    .map(|f| (*f, self.build(&format!("{path}.{f}"), depth + 1)))
                    .filter(|(_, s)| *s != Shape::Unknown)
                    .collect(),
            },
        }
    }
}

/// The probe's error; `handled` once its cause has been recorded.
#[derive(Debug)]
struct ProbeError {
    message: String,
    handled: bool,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            handled: false,
        }
    }
}

struct Probe<'s> {
    state: &'s RefCell<State>,
    path: String,
    depth: usize,
}

impl<'s> Probe<'s> {
    fn child(&self, suffix: &str) -> Probe<'s> {
        Probe {
            state: self.state,
            path: format!("{}{suffix}", self.path),
            depth: self.depth + 1,
        }
    }

    fn record(&self, kind: Kind) -> Result<(), ProbeError> {
        if self.depth > MAX_DEPTH {
            self.state.borrow_mut().skip.insert(self.path.clone());
            return Err(ProbeError {
                message: "too deep".into(),
                handled: true,
            });
        }
        self.state
            .borrow_mut()
            .kinds
            .insert(self.path.clone(), kind);
        Ok(())
    }

    fn skipped(&self, suffix: &str) -> bool {
        self.state
            .borrow()
            .skip
            .contains(&format!("{}{suffix}", self.path))
    }

    /// Marks an unhandled error as caused here: the position is left out next run.
    fn blame<T>(&self, result: Result<T, ProbeError>) -> Result<T, ProbeError> {
        result.map_err(|mut e| {
            if !e.handled {
                self.state.borrow_mut().skip.insert(self.path.clone());
                e.handled = true;
            }
            e
        })
    }
}

macro_rules! scalar {
    ($($method:ident => $visit:ident($($value:expr)?);)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
            self.record(Kind::Scalar)?;
            self.blame(visitor.$visit($($value)?))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        if self.state.borrow().scalar_any.contains(&self.path) {
            self.record(Kind::Scalar)?;
            return self.blame(visitor.visit_u64(0));
        }
        self.record(Kind::Any)?;
        visitor.visit_map(EmptyMap).map_err(|mut e| {
            if !e.handled {
                let mut state = self.state.borrow_mut();
                state.scalar_any.insert(self.path.clone());
                state.kinds.insert(self.path.clone(), Kind::Scalar);
                e.handled = true;
            }
            e
        })
    }

    scalar! {
        deserialize_bool => visit_bool(false);
        deserialize_i8 => visit_i64(0);
        deserialize_i16 => visit_i64(0);
        deserialize_i32 => visit_i64(0);
        deserialize_i64 => visit_i64(0);
        deserialize_u8 => visit_u64(0);
        deserialize_u16 => visit_u64(0);
        deserialize_u32 => visit_u64(0);
        deserialize_u64 => visit_u64(0);
        deserialize_f32 => visit_f64(0.0);
        deserialize_f64 => visit_f64(0.0);
        deserialize_char => visit_char('a');
        deserialize_str => visit_str("");
        deserialize_string => visit_str("");
        deserialize_bytes => visit_bytes(b"");
        deserialize_byte_buf => visit_bytes(b"");
        deserialize_unit => visit_unit();
        deserialize_identifier => visit_str("");
        deserialize_ignored_any => visit_unit();
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(Kind::Option)?;
        if self.skipped("?") {
            return self.blame(visitor.visit_none());
        }
        let inner = self.child("?");
        self.blame(visitor.visit_some(inner))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(Kind::Seq)?;
        let element = (!self.skipped("[]")).then(|| self.child("[]"));
        self.blame(visitor.visit_seq(OneElement(element)))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(Kind::Map)?;
        let value = (!self.skipped("{}")).then(|| self.child("{}"));
        let key = self.child("{key}");
        self.blame(visitor.visit_map(OneEntry {
            key: Some(key),
            value,
        }))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.record(Kind::Struct(fields))?;
        let mut seen: Vec<&str> = Vec::new();
        let mut todo = Vec::new();
        for field in fields {
            // Aliases that differ only in case are the same key to the tree.
            if seen.iter().any(|s| s.eq_ignore_ascii_case(field))
                || self.skipped(&format!(".{field}"))
            {
                continue;
            }
            seen.push(field);
            todo.push(*field);
        }
        let pending = RefCell::new(None);
        let access = Fields {
            parent: &self,
            todo: todo.into_iter(),
            pending: &pending,
        };
        let result = visitor.visit_map(access);
        match (result, pending.into_inner()) {
            (Err(mut e), Some(field)) if !e.handled => {
                // The struct refused a key (a duplicate through an alias, say).
                self.state
                    .borrow_mut()
                    .skip
                    .insert(format!("{}.{field}", self.path));
                e.handled = true;
                Err(e)
            }
            (result, _) => self.blame(result),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.record(Kind::Enum(variants))?;
        let first = variants.first().copied().unwrap_or_default();
        self.blame(visitor.visit_enum(de::value::StrDeserializer::<ProbeError>::new(first)))
    }
}

struct EmptyMap;

impl<'de> de::MapAccess<'de> for EmptyMap {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        _seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        _seed: V,
    ) -> Result<V::Value, ProbeError> {
        Err(de::Error::custom("no value"))
    }
}

struct OneElement<'s>(Option<Probe<'s>>);

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        self.0.take().map(|p| seed.deserialize(p)).transpose()
    }
}

struct OneEntry<'s> {
    key: Option<Probe<'s>>,
    value: Option<Probe<'s>>,
}

impl<'de> de::MapAccess<'de> for OneEntry<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        if self.value.is_none() {
            return Ok(None);
        }
        self.key.take().map(|p| seed.deserialize(p)).transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        match self.value.take() {
            Some(p) => seed.deserialize(p),
            None => Err(de::Error::custom("no value")),
        }
    }
}

struct Fields<'p, 's> {
    parent: &'p Probe<'s>,
    todo: std::vec::IntoIter<&'static str>,
    /// The field whose key was handed out and whose value was not asked for yet.
    pending: &'p RefCell<Option<&'static str>>,
}

impl<'de> de::MapAccess<'de> for Fields<'_, '_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        let Some(field) = self.todo.next() else {
            return Ok(None);
        };
        *self.pending.borrow_mut() = Some(field);
        seed.deserialize(de::value::StrDeserializer::<ProbeError>::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let field = self.pending.borrow_mut().take().unwrap_or_default();
        seed.deserialize(self.parent.child(&format!(".{field}")))
    }
}
