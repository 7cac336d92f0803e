//! The `serde::Deserializer` over a [`Tree`], with the coercions described in the
//! parent module. Each deserializer knows the dotted path of its node (for error
//! messages) and, when available, the [`Shape`] expected there (to tell an optional
//! section from an optional scalar).

use std::collections::BTreeMap;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::shape::UNKNOWN;
use super::{canonical_field, Shape, Tree, TreeError};

static EMPTY_MAP: Tree = Tree::Map(BTreeMap::new());

/// Deserializes one node of a tree.
pub(crate) struct TreeDeserializer<'a> {
    node: &'a Tree,
    shape: &'a Shape,
    path: String,
}

impl<'a> TreeDeserializer<'a> {
    pub(crate) fn new(node: &'a Tree, shape: &'a Shape, path: String) -> Self {
        Self { node, shape, path }
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, TreeError> {
        Err(TreeError::new(self.path.clone(), message))
    }

    /// Gives an error that has no path yet the path `path`.
    fn wrap<T>(path: &str, result: Result<T, TreeError>) -> Result<T, TreeError> {
        result.map_err(|e| e.within(path))
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Go's `strconv.ParseBool` spellings.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn describe(node: &Tree) -> String {
    match node {
        Tree::Null => "an empty value".into(),
        Tree::Bool(b) => format!("boolean `{b}`"),
        Tree::Number(n) => format!("number `{n}`"),
        Tree::String(s) => format!("string {s:?}"),
        Tree::List(_) => "a list".into(),
        Tree::Map(_) => "a map".into(),
    }
}

/// Integers: strings are parsed; other nodes go through `deserialize_any`.
macro_rules! integer {
    ($($method:ident => $parse:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
            match self.node {
                Tree::String(s) => match s.trim().parse::<$parse>() {
                    Ok(n) => Self::wrap(&self.path, visitor.$visit(n)),
                    Err(_) => self.fail(format!("expected a whole number, found {s:?}")),
                },
                _ => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for TreeDeserializer<'_> {
    type Error = TreeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        let result = match self.node {
            Tree::Null => visitor.visit_unit(),
            Tree::Bool(b) => visitor.visit_bool(*b),
            Tree::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Tree::String(s) => visitor.visit_str(s),
            Tree::List(items) => {
                visitor.visit_seq(Items::new(items, self.shape.inner(), &self.path))
            }
            Tree::Map(map) => {
                visitor.visit_map(Entries::new(map, self.shape.inner(), None, &self.path))
            }
        };
        Self::wrap(&self.path, result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        match self.node {
            Tree::String(s) => match parse_bool(s) {
                Some(b) => Self::wrap(&self.path, visitor.visit_bool(b)),
                None => self.fail(format!("expected true or false, found {s:?}")),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    integer! {
        deserialize_i8 => i64, visit_i64;
        deserialize_i16 => i64, visit_i64;
        deserialize_i32 => i64, visit_i64;
        deserialize_i64 => i64, visit_i64;
        deserialize_u8 => u64, visit_u64;
        deserialize_u16 => u64, visit_u64;
        deserialize_u32 => u64, visit_u64;
        deserialize_u64 => u64, visit_u64;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        match self.node {
            Tree::String(s) => match s.trim().parse::<f64>() {
                Ok(n) => Self::wrap(&self.path, visitor.visit_f64(n)),
                Err(_) => self.fail(format!("expected a number, found {s:?}")),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        let result = match self.node {
            Tree::Bool(b) => visitor.visit_str(&b.to_string()),
            Tree::Number(n) => visitor.visit_str(&n.to_string()),
            _ => return self.deserialize_any(visitor),
        };
        Self::wrap(&self.path, result)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        let inner = match self.shape {
            Shape::Option(inner) => inner.as_ref(),
            _ => &UNKNOWN,
        };
        let section = inner.is_section();
        let result = match self.node {
            // An empty or `true` section is on, with its defaults.
            node if section && node.is_enable() => {
                visitor.visit_some(TreeDeserializer::new(&EMPTY_MAP, inner, self.path.clone()))
            }
            node if section && node.is_disable() => visitor.visit_none(),
            Tree::Null => visitor.visit_none(),
            node => visitor.visit_some(TreeDeserializer::new(node, inner, self.path.clone())),
        };
        Self::wrap(&self.path, result)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        let path = self.path.clone();
        Self::wrap(&path, visitor.visit_newtype_struct(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        let element = self.shape.inner();
        let result = match self.node {
            Tree::List(items) => visitor.visit_seq(Items::new(items, element, &self.path)),
            Tree::Null => visitor.visit_seq(Items::new(&[], element, &self.path)),
            // `a,b,c` from a flag or an environment variable.
            Tree::String(s) => {
                let items: Vec<Tree> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Tree::String(p.to_string()))
                    .collect();
                visitor.visit_seq(Items::new(&items, element, &self.path))
            }
            node @ (Tree::Bool(_) | Tree::Number(_)) => {
                visitor.visit_seq(Items::new(std::slice::from_ref(node), element, &self.path))
            }
            Tree::Map(_) => return self.deserialize_any(visitor),
        };
        Self::wrap(&self.path, result)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        let result = match self.node {
            Tree::Map(map) => {
                visitor.visit_map(Entries::new(map, self.shape.inner(), None, &self.path))
            }
            node if node.is_enable() => {
                visitor.visit_map(Entries::new(&BTreeMap::new(), &UNKNOWN, None, &self.path))
            }
            _ => return self.deserialize_any(visitor),
        };
        Self::wrap(&self.path, result)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        let map = match self.node {
            Tree::Map(map) => map,
            node if node.is_enable() => match &EMPTY_MAP {
                Tree::Map(empty) => empty,
                _ => return self.fail("internal: empty map"),
            },
            node => return self.fail(format!("expected a section, found {}", describe(node))),
        };
        let result = visitor.visit_map(Entries::new(map, self.shape, Some(fields), &self.path));
        Self::wrap(&self.path, result)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        let result = match self.node {
            Tree::String(s) => {
                let name = canonical_field(s.trim(), variants).unwrap_or(s.as_str());
                visitor.visit_enum(name.into_deserializer())
            }
            Tree::Map(map) if map.len() == 1 => {
                let Some((key, value)) = map.iter().next() else {
                    return self.fail("expected one variant");
                };
                let name = canonical_field(key, variants).unwrap_or(key.as_str());
                visitor.visit_enum(Variant {
                    name,
                    value: TreeDeserializer::new(value, &UNKNOWN, child_path(&self.path, key)),
                })
            }
            node => {
                return self.fail(format!(
                    "expected one of {}, found {}",
                    variants.join(", "),
                    describe(node)
                ))
            }
        };
        Self::wrap(&self.path, result)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        visitor.visit_unit()
    }
}

/// List elements.
struct Items<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Tree>>,
    shape: &'a Shape,
    path: &'a str,
}

impl<'a> Items<'a> {
    fn new(items: &'a [Tree], shape: &'a Shape, path: &'a str) -> Self {
        Self {
            items: items.iter().enumerate(),
            shape,
            path,
        }
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = TreeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TreeError> {
        let Some((i, item)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.path);
        seed.deserialize(TreeDeserializer::new(item, self.shape, path))
            .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// Map entries, or struct fields when `fields` is given: then keys are matched
/// case-insensitively against the field names and handed over in their spelling.
struct Entries<'a> {
    entries: std::collections::btree_map::Iter<'a, String, Tree>,
    /// The struct's shape, or the map's value shape.
    shape: &'a Shape,
    fields: Option<&'static [&'static str]>,
    path: &'a str,
    value: Option<(&'a Tree, String, String)>,
}

impl<'a> Entries<'a> {
    fn new(
        map: &'a BTreeMap<String, Tree>,
        shape: &'a Shape,
        fields: Option<&'static [&'static str]>,
        path: &'a str,
    ) -> Self {
        Self {
            entries: map.iter(),
            shape,
            fields,
            path,
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = TreeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TreeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let name = match self.fields {
            Some(fields) => canonical_field(key, fields).unwrap_or(key.as_str()),
            None => key.as_str(),
        };
        let path = child_path(self.path, name);
        let key_node = Tree::String(name.to_string());
        let result = seed.deserialize(TreeDeserializer::new(&key_node, &UNKNOWN, path.clone()));
        self.value = Some((value, name.to_string(), path.clone()));
        TreeDeserializer::wrap(&path, result).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TreeError> {
        let Some((value, name, path)) = self.value.take() else {
            return Err(TreeError::new(self.path, "value requested before its key"));
        };
        let shape = match self.fields {
            Some(_) => self.shape.field(&name),
            None => self.shape,
        };
        seed.deserialize(TreeDeserializer::new(value, shape, path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An externally tagged enum variant written as a one-entry map.
struct Variant<'a> {
    name: &'a str,
    value: TreeDeserializer<'a>,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = TreeError;
    type Variant = TreeDeserializer<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), TreeError> {
        let name = seed.deserialize(self.name.into_deserializer())?;
        Ok((name, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for TreeDeserializer<'_> {
    type Error = TreeError;

    fn unit_variant(self) -> Result<(), TreeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, TreeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}
