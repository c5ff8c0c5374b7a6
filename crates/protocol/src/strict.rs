//! Objects only. serde's derived structs also accept a JSON array, read positionally
//! (`[1,["<jwt>"]]` would be a `connect` with id 1), a form the protocol does not have and
//! Centrifugo refuses. Commands and their nested requests are read through [`ObjectsOnly`],
//! which turns a struct into a request for a JSON object: an array is then an invalid type.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, Visitor};

/// A deserializer that reads every struct as a map (a JSON object), never as a sequence.
struct ObjectsOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectsOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// `T` read from a JSON object only (its own fields decide how nested values are read).
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(ObjectsOnly(d)).map(Object)
    }
}

/// For `#[serde(deserialize_with)]` on an optional struct field.
pub(crate) fn option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|Object(t)| t))
}

/// For `#[serde(deserialize_with)]` on a map of structs.
pub(crate) fn map<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    BTreeMap::<String, Object<T>>::deserialize(d)
        .map(|m| m.into_iter().map(|(k, Object(t))| (k, t)).collect())
}

#[cfg(test)]
mod tests {
    use crate::codec::decode_commands;

    fn decodes(line: &str) -> bool {
        decode_commands(line.as_bytes(), 1 << 16).is_ok()
    }

    #[test]
    fn the_positional_array_form_is_refused_at_every_level() {
        for line in [
            r#"[1,["a-token"]]"#,
            r#"[8,null,null,null,["room:general",{"text":"x"}]]"#,
            r#"{"id":1,"connect":["a-token"]}"#,
            r#"{"id":2,"publish":["room:general",{"text":"x"}]}"#,
            r#"{"id":3,"history":{"channel":"room:a","since":[1,"epoch"]}}"#,
            r#"{"id":4,"connect":{"token":"t","subs":{"room:a":["room:a"]}}}"#,
            r#"{"id":5,"ping":[]}"#,
        ] {
            assert!(!decodes(line), "{line} is refused");
        }
    }

    #[test]
    fn the_object_form_still_decodes_and_data_may_be_any_json() {
        for line in [
            "{}",
            r#"{"id":1,"connect":{"token":"t","subs":{"room:a":{"channel":"room:a"}}}}"#,
            r#"{"id":2,"publish":{"channel":"room:a","data":[1,2,3]}}"#,
            r#"{"id":3,"history":{"channel":"room:a","since":{"offset":1,"epoch":"e"}}}"#,
            r#"{"id":4,"history":{"channel":"room:a","since":null}}"#,
            r#"{"id":5,"rpc":{"method":"rooms.list","data":["any"]}}"#,
            r#"{"id":6,"ping":{}}"#,
        ] {
            assert!(decodes(line), "{line} decodes");
        }
        let c = decode_commands(
            br#"{"id":3,"history":{"channel":"room:a","since":{"offset":7,"epoch":"e"}}}"#,
            1 << 16,
        )
        .expect("decodes");
        assert_eq!(
            c[0].history
                .as_ref()
                .and_then(|h| h.since.as_ref())
                .map(|s| s.offset),
            Some(7),
            "nested objects keep their values"
        );
    }
}
