//! Typed deserializers, and the Java class names Spark users put in kafkaParams.
//!
//! ```
//! use ferrokafka_client::serde::{deserializer_for_class, Deserialized, Deserializer, StringDeserializer};
//!
//! let d = deserializer_for_class("org.apache.kafka.common.serialization.LongDeserializer").unwrap();
//! assert_eq!(d.deserialize(Some(&42i64.to_be_bytes())).unwrap(), Deserialized::Long(42));
//! assert_eq!(StringDeserializer.deserialize(Some(b"hi")).unwrap(), Some("hi".to_owned()));
//! ```

use bytes::Bytes;

use crate::config::ConfigError;

/// Why bytes could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{deserializer}: {reason}")]
pub struct DeserializeError {
    /// Which deserializer failed.
    pub deserializer: &'static str,
    /// What was wrong with the bytes.
    pub reason: String,
}

/// Turns a key or value (`None` = null) into a typed value.
pub trait Deserializer {
    /// The produced type.
    type Value;
    /// Deserializes one key or value.
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Self::Value, DeserializeError>;
}

/// UTF-8 text (`StringDeserializer`); null stays `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringDeserializer;

impl Deserializer for StringDeserializer {
    type Value = Option<String>;
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Self::Value, DeserializeError> {
        data.map(|d| {
            String::from_utf8(d.to_vec())
                .map_err(|e| DeserializeError { deserializer: "StringDeserializer", reason: e.to_string() })
        })
        .transpose()
    }
}

/// The bytes as they are (`ByteArrayDeserializer`, `BytesDeserializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesDeserializer;

impl Deserializer for BytesDeserializer {
    type Value = Option<Bytes>;
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Self::Value, DeserializeError> {
        Ok(data.map(Bytes::copy_from_slice))
    }
}

fn fixed<const N: usize>(name: &'static str, data: &[u8]) -> Result<[u8; N], DeserializeError> {
    data.try_into()
        .map_err(|_| DeserializeError { deserializer: name, reason: format!("expected {N} bytes, got {}", data.len()) })
}

/// Big-endian integers and floats, as the Java serializers write them.
macro_rules! numeric {
    ($name:ident, $java:literal, $t:ty, $n:literal) => {
        #[doc = concat!("`", $java, "`: a big-endian `", stringify!($t), "`; null stays `None`.")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Deserializer for $name {
            type Value = Option<$t>;
            fn deserialize(&self, data: Option<&[u8]>) -> Result<Self::Value, DeserializeError> {
                data.map(|d| fixed::<$n>($java, d).map(<$t>::from_be_bytes)).transpose()
            }
        }
    };
}

numeric!(LongDeserializer, "LongDeserializer", i64, 8);
numeric!(IntegerDeserializer, "IntegerDeserializer", i32, 4);
numeric!(ShortDeserializer, "ShortDeserializer", i16, 2);
numeric!(DoubleDeserializer, "DoubleDeserializer", f64, 8);
numeric!(FloatDeserializer, "FloatDeserializer", f32, 4);

/// A value produced by a deserializer chosen by class name at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Deserialized {
    /// Null.
    Null,
    /// From `StringDeserializer`.
    String(String),
    /// From `ByteArrayDeserializer` / `BytesDeserializer` / `ByteBufferDeserializer`.
    Bytes(Bytes),
    /// From `LongDeserializer`.
    Long(i64),
    /// From `IntegerDeserializer`.
    Integer(i32),
    /// From `ShortDeserializer`.
    Short(i16),
    /// From `DoubleDeserializer`.
    Double(f64),
    /// From `FloatDeserializer`.
    Float(f32),
}

/// A deserializer picked from a Java class name (`key.deserializer`, `value.deserializer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassDeserializer {
    /// `StringDeserializer`
    String,
    /// `ByteArrayDeserializer`, `BytesDeserializer`, `ByteBufferDeserializer`
    Bytes,
    /// `LongDeserializer`
    Long,
    /// `IntegerDeserializer`
    Integer,
    /// `ShortDeserializer`
    Short,
    /// `DoubleDeserializer`
    Double,
    /// `FloatDeserializer`
    Float,
}

const PREFIX: &str = "org.apache.kafka.common.serialization.";

/// Maps a Java deserializer class name (full or simple) to a built-in deserializer.
pub fn deserializer_for_class(class: &str) -> Result<ClassDeserializer, ConfigError> {
    let simple = class.trim().strip_prefix(PREFIX).unwrap_or(class.trim());
    Ok(match simple {
        "StringDeserializer" => ClassDeserializer::String,
        "ByteArrayDeserializer" | "BytesDeserializer" | "ByteBufferDeserializer" => ClassDeserializer::Bytes,
        "LongDeserializer" => ClassDeserializer::Long,
        "IntegerDeserializer" => ClassDeserializer::Integer,
        "ShortDeserializer" => ClassDeserializer::Short,
        "DoubleDeserializer" => ClassDeserializer::Double,
        "FloatDeserializer" => ClassDeserializer::Float,
        _ => {
            return Err(ConfigError::invalid_value(
                "value.deserializer",
                class,
                format!(
                    "one of {PREFIX}{{String,ByteArray,Bytes,ByteBuffer,Long,Integer,Short,Double,Float}}Deserializer"
                ),
            ))
        }
    })
}

impl Deserializer for ClassDeserializer {
    type Value = Deserialized;
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Deserialized, DeserializeError> {
        let Some(d) = data else { return Ok(Deserialized::Null) };
        let some = Some(d);
        Ok(match self {
            ClassDeserializer::String => {
                StringDeserializer.deserialize(some)?.map_or(Deserialized::Null, Deserialized::String)
            }
            ClassDeserializer::Bytes => Deserialized::Bytes(Bytes::copy_from_slice(d)),
            ClassDeserializer::Long => {
                LongDeserializer.deserialize(some)?.map_or(Deserialized::Null, Deserialized::Long)
            }
            ClassDeserializer::Integer => {
                IntegerDeserializer.deserialize(some)?.map_or(Deserialized::Null, Deserialized::Integer)
            }
            ClassDeserializer::Short => {
                ShortDeserializer.deserialize(some)?.map_or(Deserialized::Null, Deserialized::Short)
            }
            ClassDeserializer::Double => {
                DoubleDeserializer.deserialize(some)?.map_or(Deserialized::Null, Deserialized::Double)
            }
            ClassDeserializer::Float => {
                FloatDeserializer.deserialize(some)?.map_or(Deserialized::Null, Deserialized::Float)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_class_names_map_to_deserializers() {
        for (class, data, want) in [
            (
                "org.apache.kafka.common.serialization.StringDeserializer",
                &b"abc"[..],
                Deserialized::String("abc".into()),
            ),
            ("ByteArrayDeserializer", b"\x00\x01", Deserialized::Bytes(Bytes::from_static(b"\x00\x01"))),
            (
                "org.apache.kafka.common.serialization.IntegerDeserializer",
                &(-7i32).to_be_bytes()[..],
                Deserialized::Integer(-7),
            ),
            ("ShortDeserializer", &3i16.to_be_bytes()[..], Deserialized::Short(3)),
            ("DoubleDeserializer", &1.5f64.to_be_bytes()[..], Deserialized::Double(1.5)),
            ("FloatDeserializer", &2.5f32.to_be_bytes()[..], Deserialized::Float(2.5)),
        ] {
            let d = deserializer_for_class(class).unwrap();
            assert_eq!(d.deserialize(Some(data)).unwrap(), want, "{class}");
            assert_eq!(d.deserialize(None).unwrap(), Deserialized::Null, "{class}");
        }
    }

    #[test]
    fn bad_bytes_and_unknown_classes_are_errors() {
        let e = LongDeserializer.deserialize(Some(b"1234")).unwrap_err();
        assert_eq!(e.to_string(), "LongDeserializer: expected 8 bytes, got 4");
        assert!(StringDeserializer.deserialize(Some(b"\xff")).is_err());
        let e = deserializer_for_class("com.example.AvroDeserializer").unwrap_err();
        assert!(e.to_string().contains("com.example.AvroDeserializer"), "{e}");
    }
}
