//! Flat recipe files with nested Rust structs.
//!
//! A recipe file keeps the official flat key names (`learning_rate = 5e-5`, not an
//! `[optimizer]` table), while the Rust config nests the settings that both recipes share
//! (`#[serde(flatten)] optimizer: OptimizerConfig`). serde cannot combine `flatten` with
//! `deny_unknown_fields`, and a flattened struct would take *its own* defaults instead of the
//! recipe's (warmup 0 for pretraining, 100 for finetuning). So each recipe derives its serde
//! code as an inherent function (`#[serde(remote = "Self")]`) and [`flat_serde!`] wraps it:
//! the file's keys are checked against the recipe's own keys (an unknown key is an error that
//! names it), laid over the recipe's `Default`, and deserialized; an error names the field.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A recipe config whose serde representation is one flat map (see the module docs).
pub(crate) trait FlatConfig: Serialize + Default {
    /// The derived (remote = "Self") deserializer of every field; all keys are present.
    fn deserialize_fields<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Deserializes a flat map: unknown keys fail, missing keys take `T::default()`'s values.
pub(crate) fn deserialize<'de, T: FlatConfig, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    let given = Map::<String, Value>::deserialize(d)?;
    let Value::Object(defaults) = serde_json::to_value(T::default()).map_err(D::Error::custom)?
    else {
        return Err(D::Error::custom("a recipe config serializes to a map"));
    };
    if let Some(key) = given.keys().find(|k| !defaults.contains_key(*k)) {
        let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
        return Err(D::Error::custom(format_args!(
            "unknown field `{key}`, expected one of {}",
            known.join(", ")
        )));
    }
    let with = |keys: &mut dyn Iterator<Item = (&String, &Value)>| {
        let mut merged = defaults.clone();
        merged.extend(keys.map(|(k, v)| (k.clone(), v.clone())));
        T::deserialize_fields(Value::Object(merged))
    };
    with(&mut given.iter()).map_err(|e| {
        // A flattened field's errors carry no field name: find the key that fails on its own.
        match given
            .iter()
            .find(|kv| with(&mut std::iter::once(*kv)).is_err())
        {
            Some((key, _)) => D::Error::custom(format_args!("field `{key}`: {e}")),
            None => D::Error::custom(e),
        }
    })
}

/// Implements `Serialize` and `Deserialize` for a recipe config derived with
/// `#[serde(remote = "Self")]`, through [`deserialize`].
macro_rules! flat_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }

        impl crate::config::flat::FlatConfig for $t {
            fn deserialize_fields<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                <$t>::deserialize(d)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                crate::config::flat::deserialize(d)
            }
        }
    };
}
pub(crate) use flat_serde;
