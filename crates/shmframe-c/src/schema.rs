//! Metadata schemas as JSON, the form C and C++ programs give and receive them in.
//!
//! ```json
//! {"type_name": "MD", "size": 32, "align": 8, "fields": [
//!   {"name": "shape_0", "dtype": "int32", "count": 1, "offset": 0}]}
//! ```

use crate::{invalid, Failure};
use serde::{Deserialize, Serialize};
use sf::{DType, Field, Schema};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaJson {
    #[serde(default = "default_type_name")]
    type_name: String,
    size: u32,
    #[serde(default)]
    align: Option<u32>,
    fields: Vec<FieldJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldJson {
    name: String,
    dtype: String,
    #[serde(default = "one")]
    count: u32,
    offset: u32,
}

fn default_type_name() -> String {
    "Meta".into()
}

fn one() -> u32 {
    1
}

/// Parses and validates a schema given as JSON.
pub(crate) fn from_json(text: &str) -> Result<Schema, Failure> {
    let j: SchemaJson =
        serde_json::from_str(text).map_err(|e| invalid(format!("metadata schema JSON: {e}")))?;
    let mut fields = Vec::with_capacity(j.fields.len());
    for f in j.fields {
        let dtype = DType::parse(&f.dtype).ok_or_else(|| {
            invalid(format!(
                "metadata schema JSON: field `{}` has dtype {:?}; use uint8, int8, uint16, int16, \
                 uint32, int32, uint64, int64, float32, float64 or bool",
                f.name, f.dtype
            ))
        })?;
        fields.push(Field {
            name: f.name,
            dtype,
            count: f.count,
            offset: f.offset,
        });
    }
    let align = j.align.unwrap_or_else(|| {
        fields
            .iter()
            .map(|f| f.dtype.size() as u32)
            .max()
            .unwrap_or(1)
    });
    let s = Schema {
        type_name: j.type_name,
        size: j.size,
        align,
        fields,
    };
    s.validate()
        .map_err(|e| invalid(format!("metadata schema JSON: {e}")))?;
    Ok(s)
}

/// The JSON form of a schema, every key present.
pub(crate) fn to_json(s: &Schema) -> String {
    let j = SchemaJson {
        type_name: s.type_name.clone(),
        size: s.size,
        align: Some(s.align),
        fields: s
            .fields
            .iter()
            .map(|f| FieldJson {
                name: f.name.clone(),
                dtype: f.dtype.name().into(),
                count: f.count,
                offset: f.offset,
            })
            .collect(),
    };
    serde_json::to_string(&j).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let s = from_json(
            r#"{"size": 16, "fields": [{"name": "a", "dtype": "int32", "offset": 0},
                {"name": "b", "dtype": "<f8", "offset": 8}]}"#,
        )
        .ok()
        .unwrap();
        assert_eq!((s.type_name.as_str(), s.align), ("Meta", 8));
        assert_eq!(s.fields[1].dtype, DType::F64);
        let again = from_json(&to_json(&s)).ok().unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let msg = |t: &str| from_json(t).err().unwrap().message;
        assert!(msg("{").contains("JSON"));
        assert!(
            msg(r#"{"size": 4, "fields": [{"name": "a", "dtype": "complex", "offset": 0}]}"#)
                .contains("complex")
        );
        assert!(
            msg(r#"{"size": 4, "fields": [{"name": "a", "dtype": "int64", "offset": 0}]}"#)
                .contains("does not fit")
        );
        assert!(msg(r#"{"size": 4, "fields": [], "extra": 1}"#).contains("extra"));
    }
}
