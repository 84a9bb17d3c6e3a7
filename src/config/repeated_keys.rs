//! JSON as serde_json reads it, and the keys an object repeats: serde_json keeps the last of
//! them without a word, other readers the first, so a repeated key is a setting whose value
//! depends on who reads the file. A visitor that builds the same [`Value`] and notes each repeat
//! by its path (`labels.team`) costs no new crate.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The value of `text`, and the path of every key an object in it repeats, in order.
pub(crate) fn parse(text: &str) -> Result<(Value, Vec<String>), serde_json::Error> {
    let repeated = RefCell::new(Vec::new());
    let mut reader = serde_json::Deserializer::from_str(text);
    let value = Noting {
        path: String::new(),
        repeated: &repeated,
    }
    .deserialize(&mut reader)?;
    reader.end()?;
    Ok((value, repeated.into_inner()))
}

/// Builds a [`Value`] at `path`, noting repeated keys in `repeated`.
struct Noting<'a> {
    path: String,
    repeated: &'a RefCell<Vec<String>>,
}

impl<'a> Noting<'a> {
    fn child(&self, name: &str) -> Noting<'a> {
        let path = match self.path.is_empty() {
            true => name.to_string(),
            false => format!("{}.{name}", self.path),
        };
        Noting {
            path,
            repeated: self.repeated,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Noting<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<Value, D::Error> {
        reader.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Noting<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(v) = items.next_element_seed(self.child(&values.len().to_string()))? {
            values.push(v);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = members.next_key::<String>()? {
            let value = members.next_value_seed(self.child(&key))?;
            if object.insert(key.clone(), value).is_some() {
                self.repeated.borrow_mut().push(self.child(&key).path);
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_reads_and_names_each_repeat() {
        let text = r#"{"a": [1, -2, 2.5, null, true, "s"], "b": {"c": 1, "c": 2}, "a": 0}"#;
        let (value, repeated) = parse(text).unwrap();
        assert_eq!(value, serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(repeated, ["b.c", "a"]);
        assert_eq!(parse(r#"{"a": 1}"#).unwrap().1, Vec::<String>::new());
        assert!(parse(r#"{"a": 1} x"#).is_err());
        assert!(parse(r#"{"a": "#).is_err());
    }
}
