//! A strict JSON reader for untrusted request bodies.
//!
//! `serde_json` happily accepts duplicate object keys (last one wins) and nests up to 128 levels. A request whose
//! meaning depends on which of two `"path"` keys a parser keeps is an attack on the gate, so requests are first
//! read into a [`serde_json::Value`] by this module, which refuses duplicate keys, deep nesting, oversized bodies
//! and non-UTF-8 bytes. Only then are they decoded into typed requests.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The largest request body the gate will read, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The most arrays and objects nested in each other that a request may have. Real requests need 3.
pub const MAX_DEPTH: usize = 16;

/// Why a body could not be read as strict JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    /// Nothing at all was sent.
    #[error("the request body is empty")]
    Empty,
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("the request body is {0} bytes; the limit is {MAX_BODY_BYTES}")]
    TooLarge(usize),
    /// The body is not valid UTF-8.
    #[error("the request body is not valid UTF-8 (at byte {0})")]
    NotUtf8(usize),
    /// The body is not JSON, has a duplicate key, or nests too deeply.
    #[error("the request body is not valid JSON: {0}")]
    Syntax(String),
}

/// Parses `body` as a single JSON document under the strict rules described in the module docs.
pub fn parse_strict(body: &[u8]) -> Result<Value, StrictJsonError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(StrictJsonError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|e| StrictJsonError::NotUtf8(e.valid_up_to()))?;
    if text.trim().is_empty() {
        return Err(StrictJsonError::Empty);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value =
        StrictSeed { depth: 0 }.deserialize(&mut deserializer).map_err(|e| StrictJsonError::Syntax(e.to_string()))?;
    deserializer.end().map_err(|e| StrictJsonError::Syntax(e.to_string()))?;
    Ok(value)
}

/// Deserializes one value at a known nesting depth.
#[derive(Clone, Copy)]
struct StrictSeed {
    depth: usize,
}

impl StrictSeed {
    /// The seed for the children of a container that is itself at `self.depth`; refuses one level too many.
    fn children<E: de::Error>(&self) -> Result<StrictSeed, E> {
        let level = self.depth + 1;
        if level > MAX_DEPTH {
            return Err(E::custom(format_args!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(StrictSeed { depth: level })
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let children = self.children()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(children)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let children = self.children()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(children)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_object() {
        let v = parse_strict(br#"{"a": [1, {"b": null}], "c": "d"}"#).expect("valid");
        assert_eq!(v["c"], "d");
    }

    #[test]
    fn rejects_each_kind_of_bad_body() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"   \n", "empty"),
            (b"\xff{}", "UTF-8"),
            (b"{\"a\": \"\xc3\x28\"}", "UTF-8"),
            (b"{\"a\":1,\"a\":1}", "duplicate key"),
            (b"{\"o\":{\"a\":1,\"a\":2}}", "duplicate key"),
            (b"{} {}", "trailing"),
            (b"{", "EOF"),
            (deep.as_bytes(), "nesting deeper"),
        ];
        for (body, needle) in cases {
            let err = parse_strict(body).expect_err("must be rejected").to_string();
            assert!(err.contains(needle), "{body:?}: {err:?} should mention {needle:?}");
        }
    }

    #[test]
    fn rejects_oversized_body_before_parsing() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_strict(&body), Err(StrictJsonError::TooLarge(MAX_BODY_BYTES + 1)));
    }

    #[test]
    fn depth_limit_is_exact() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_strict(ok.as_bytes()).is_ok());
        let bad = format!("{}{}", "{\"a\":".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert!(parse_strict(bad.as_bytes()).is_err());
    }
}
