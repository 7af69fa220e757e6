//! Strict JSON for request bodies: one parse that builds the document and refuses, on the
//! way, nesting deeper than a maximum and an object with the same key twice (which parsers
//! disagree on: the first wins in some, the last in others).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};

/// Request extension: the deepest JSON nesting accepted in a body.
#[derive(Debug, Clone, Copy)]
pub struct MaxJsonDepth(pub usize);

/// The nesting accepted when no [`MaxJsonDepth`] is set.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Why a body is not acceptable JSON.
#[derive(Debug)]
pub enum JsonRefusal {
    /// Not JSON at all (syntax, encoding, trailing characters).
    Syntax(serde_json::Error),
    /// Arrays and objects nested deeper than `max`.
    TooDeep { max: usize },
    /// An object names `key` twice (after unescaping: `"a"` and `"\u0061"` are one key).
    DuplicateKey(String),
}

/// Parses `bytes` as one JSON document. Nesting is refused as soon as it goes past
/// `max_depth`, before the parser goes any deeper.
pub fn parse_strict(bytes: &[u8], max_depth: usize) -> Result<Value, JsonRefusal> {
    let refusal = Cell::new(None);
    let node = Node {
        depth: 0,
        max_depth,
        refusal: &refusal,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = node.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| match refusal.take() {
        Some(r) => r,
        // serde_json's own recursion limit (128) sits below a larger maximum.
        None if e.to_string().starts_with("recursion limit exceeded") => {
            JsonRefusal::TooDeep { max: max_depth }
        }
        None => JsonRefusal::Syntax(e),
    })
}

/// One value of the document, `depth` arrays and objects down.
#[derive(Clone, Copy)]
struct Node<'a> {
    depth: usize,
    max_depth: usize,
    refusal: &'a Cell<Option<JsonRefusal>>,
}

impl<'a> Node<'a> {
    /// The node of a container's members, or the refusal when the container is too deep.
    fn enter<E: de::Error>(self) -> Result<Node<'a>, E> {
        let depth = self.depth + 1;
        if depth > self.max_depth {
            return Err(self.refuse(JsonRefusal::TooDeep {
                max: self.max_depth,
            }));
        }
        Ok(Node { depth, ..self })
    }

    fn refuse<E: de::Error>(self, why: JsonRefusal) -> E {
        let message = match &why {
            JsonRefusal::TooDeep { max } => format!("nested deeper than {max} levels"),
            JsonRefusal::DuplicateKey(_) => "duplicate key".to_owned(),
            JsonRefusal::Syntax(_) => "syntax".to_owned(),
        };
        self.refusal.set(Some(why));
        E::custom(message)
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        // JSON text has no NaN or infinity: the parser only hands over finite numbers.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
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
        let member = self.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(member)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let member = self.enter()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Occupied(taken) => {
                    return Err(self.refuse(JsonRefusal::DuplicateKey(taken.key().clone())));
                }
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(member)?);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(input: &str, max: usize) -> String {
        match parse_strict(input.as_bytes(), max) {
            Ok(v) => format!("ok {v}"),
            Err(JsonRefusal::Syntax(_)) => "syntax".into(),
            Err(JsonRefusal::TooDeep { max }) => format!("deep {max}"),
            Err(JsonRefusal::DuplicateKey(k)) => format!("dup {k}"),
        }
    }

    #[test]
    fn builds_the_same_document_as_serde_json() {
        for input in [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e\u00e9\n"},"f":-2,"g":1.5,"h":18446744073709551615}"#,
            "[]",
            "{}",
            "\"x\"",
            "0",
            "null",
            r#"{"a":{"a":{"a":1}},"b":{"a":2}}"#,
            r#"[{"k":1},{"k":2}]"#,
        ] {
            let expected: Value = serde_json::from_str(input).unwrap();
            assert_eq!(
                parse_strict(input.as_bytes(), 32).unwrap(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn duplicate_keys_at_any_depth_are_refused() {
        let table = [
            (r#"{"a":1,"a":2}"#, "dup a"),
            (r#"{"a":1,"b":2,"a":1}"#, "dup a"),
            (
                r#"{"x":{"to":"+34600000001","to":"+34600000002"}}"#,
                "dup to",
            ),
            (r#"[1,{"k":[{"z":1,"z":1}]}]"#, "dup z"),
            // The same key after unescaping.
            (r#"{"a":1,"\u0061":2}"#, "dup a"),
            (r#"{"":1,"":2}"#, "dup "),
            // Same name in different objects is fine.
            (
                r#"{"a":{"a":1},"b":{"a":1}}"#,
                r#"ok {"a":{"a":1},"b":{"a":1}}"#,
            ),
        ];
        for (input, expected) in table {
            assert_eq!(refusal(input, 32), expected, "{input}");
        }
    }

    #[test]
    fn nesting_is_capped() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(refusal(&nested(32), 32).starts_with("ok"));
        assert_eq!(refusal(&nested(33), 32), "deep 32");
        assert_eq!(refusal(&nested(100_000), 32), "deep 32");
        let objects = format!("{}1{}", r#"{"a":"#.repeat(3), "}".repeat(3));
        assert!(refusal(&objects, 3).starts_with("ok"));
        assert_eq!(refusal(&objects, 2), "deep 2");
        // Brackets inside strings do not count.
        assert!(refusal(&format!(r#"{{"a":"\"{}"}}"#, "[".repeat(100)), 1).starts_with("ok"));
        // Past serde_json's own limit, still a depth refusal.
        assert_eq!(refusal(&nested(200), 128), "deep 128");
        // A truncated deep document is refused for its depth before its end is reached.
        assert_eq!(refusal(&"[".repeat(50), 32), "deep 32");
    }

    #[test]
    fn syntax_errors_stay_syntax_errors() {
        for input in ["{", "[1,2", "nul", "{\"a\":1}x", "", "{\"a\" 1}", "{'a':1}"] {
            assert_eq!(refusal(input, 32), "syntax", "{input}");
        }
        assert!(matches!(
            parse_strict(b"{\"a\": \"\xff\"}", 32),
            Err(JsonRefusal::Syntax(_))
        ));
        assert_eq!(
            parse_strict(br#" {"a" : [ 1 ] } "#, 32).unwrap(),
            json!({"a": [1]})
        );
    }
}
