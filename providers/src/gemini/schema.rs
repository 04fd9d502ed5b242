//! JSON Schema reduced to the OpenAPI subset Gemini accepts in `parameters` and `responseSchema`:
//! `$ref`s resolved against `$defs`/`definitions`, `null` types turned into `nullable`, and
//! keywords Gemini rejects (`additionalProperties`, `$schema`, `strict`, ...) dropped.

use serde_json::{Map, Value};

use crate::error::ProviderError;

/// Keywords Gemini's `Schema` takes as they are.
const KEPT: &[&str] = &[
    "title",
    "description",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
];

/// `format` values Gemini documents; others are refused by the API.
const FORMATS: &[&str] = &["enum", "date-time", "float", "double", "int32", "int64"];

/// How deep `$ref`s may nest: a recursive schema cannot be written without references.
const MAX_DEPTH: usize = 32;

/// The schema in Gemini's subset; `param` names the field in errors.
pub fn reduce(schema: &Value, param: &str) -> Result<Value, ProviderError> {
    let defs = Defs {
        root: schema,
        param,
    };
    defs.reduce(schema, 0)
}

struct Defs<'a> {
    root: &'a Value,
    param: &'a str,
}

impl Defs<'_> {
    fn reduce(&self, schema: &Value, depth: usize) -> Result<Value, ProviderError> {
        if depth > MAX_DEPTH {
            return Err(ProviderError::invalid_request(
                "Gemini cannot express a recursive schema",
                Some(self.param),
            ));
        }
        let Some(object) = schema.as_object() else {
            // `true` (anything) and other shorthand: no constraint Gemini could check.
            return Ok(Value::Object(Map::new()));
        };
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            return self.reference(object, reference, depth);
        }
        let mut out = Map::new();
        for (key, value) in object {
            self.keyword(&mut out, key, value, depth)?;
        }
        keep_known_required(&mut out);
        settle_enum(&mut out);
        // Gemini refuses an array without `items` ("items: missing field"); JSON Schema and
        // OpenAI read a missing `items` as "any element", which `{}` says to Gemini.
        if out.get("type").and_then(Value::as_str) == Some("array") {
            out.entry("items")
                .or_insert_with(|| Value::Object(Map::new()));
        }
        // Gemini refuses an object schema whose `properties` is empty; without it, it is an
        // object of any shape, which is what an empty list of properties means.
        if out
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            out.remove("properties");
        }
        Ok(Value::Object(out))
    }

    fn reference(
        &self,
        object: &Map<String, Value>,
        reference: &str,
        depth: usize,
    ) -> Result<Value, ProviderError> {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| self.root.pointer(pointer))
            .ok_or_else(|| {
                ProviderError::invalid_request(
                    format!("schema reference {reference:?} does not resolve"),
                    Some(self.param),
                )
            })?;
        let mut resolved = self.reduce(target, depth + 1)?;
        if let (Some(out), Some(description)) =
            (resolved.as_object_mut(), object.get("description"))
        {
            out.insert("description".into(), description.clone());
        }
        Ok(resolved)
    }

    fn keyword(
        &self,
        out: &mut Map<String, Value>,
        key: &str,
        value: &Value,
        depth: usize,
    ) -> Result<(), ProviderError> {
        match key {
            "type" => set_type(out, value),
            "properties" => {
                let mut properties = Map::new();
                for (name, schema) in value.as_object().into_iter().flatten() {
                    properties.insert(name.clone(), self.reduce(schema, depth + 1)?);
                }
                out.insert(key.into(), Value::Object(properties));
            }
            "items" if value.is_object() => {
                out.insert(key.into(), self.reduce(value, depth + 1)?);
            }
            // A tuple (`items: [...]` before 2020-12, `prefixItems` since): Gemini has no
            // tuples, so each element may be any of the listed schemas.
            "items" | "prefixItems" if value.is_array() => {
                let mut variants = Vec::new();
                for schema in value.as_array().into_iter().flatten() {
                    variants.push(self.reduce(schema, depth + 1)?);
                }
                let items = match variants.len() {
                    0 => Value::Object(Map::new()),
                    1 => variants.remove(0),
                    _ => serde_json::json!({"anyOf": variants}),
                };
                out.entry("items").or_insert(items);
            }
            "anyOf" | "oneOf" => self.any_of(out, value, depth)?,
            "allOf" => {
                for schema in value.as_array().into_iter().flatten() {
                    if let Value::Object(part) = self.reduce(schema, depth + 1)? {
                        out.extend(part);
                    }
                }
            }
            "const" if value.is_string() => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
                out.entry("type").or_insert_with(|| "string".into());
            }
            "enum" if value.is_array() => {
                out.insert(key.into(), value.clone());
            }
            "format" if value.as_str().is_some_and(|f| FORMATS.contains(&f)) => {
                out.insert(key.into(), value.clone());
            }
            "required" if value.is_array() => {
                out.insert(key.into(), value.clone());
            }
            _ if KEPT.contains(&key) => {
                out.insert(key.into(), value.clone());
            }
            _ => {}
        }
        Ok(())
    }

    /// `anyOf`/`oneOf`: a `null` alternative becomes `nullable`; a single one left is inlined.
    fn any_of(
        &self,
        out: &mut Map<String, Value>,
        value: &Value,
        depth: usize,
    ) -> Result<(), ProviderError> {
        let mut variants = Vec::new();
        for schema in value.as_array().into_iter().flatten() {
            if schema.get("type").and_then(Value::as_str) == Some("null") {
                out.insert("nullable".into(), Value::Bool(true));
            } else {
                variants.push(self.reduce(schema, depth + 1)?);
            }
        }
        match variants.len() {
            0 => {}
            1 => {
                if let Some(Value::Object(only)) = variants.pop() {
                    out.extend(only);
                }
            }
            _ => {
                out.insert("anyOf".into(), Value::Array(variants));
            }
        }
        Ok(())
    }
}

/// `type` as one name; `["string", "null"]` becomes `string` plus `nullable`.
fn set_type(out: &mut Map<String, Value>, value: &Value) {
    match value {
        Value::Array(types) => {
            let named: Vec<&Value> = types
                .iter()
                .filter(|t| t.as_str() != Some("null"))
                .collect();
            if named.len() < types.len() {
                out.insert("nullable".into(), Value::Bool(true));
            }
            match named.as_slice() {
                [one] => {
                    out.insert("type".into(), (*one).clone());
                }
                [] => {}
                many => {
                    let variants = many
                        .iter()
                        .map(|t| serde_json::json!({"type": t}))
                        .collect();
                    out.insert("anyOf".into(), Value::Array(variants));
                }
            }
        }
        Value::String(name) if name == "null" => {
            out.insert("nullable".into(), Value::Bool(true));
        }
        other => {
            out.insert("type".into(), other.clone());
        }
    }
}

/// Gemini takes `enum` on strings only ("only allowed for STRING type"). A string enum keeps
/// it and gets its type; any other keeps its type, so the client still gets the numbers or
/// booleans it declared, and lists its values in the description, where the model reads them.
fn settle_enum(out: &mut Map<String, Value>) {
    let Some(Value::Array(mut values)) = out.remove("enum") else {
        return;
    };
    // A null choice is what `nullable` says.
    if values.iter().any(Value::is_null) {
        values.retain(|v| !v.is_null());
        out.insert("nullable".into(), Value::Bool(true));
    }
    let strings = values.iter().all(Value::is_string);
    match out.get("type").and_then(Value::as_str) {
        None | Some("string") if strings && !values.is_empty() => {
            out.insert("type".into(), Value::from("string"));
            out.insert("enum".into(), Value::Array(values));
        }
        _ if values.is_empty() => {}
        _ => {
            let listed: Vec<String> = values.iter().map(Value::to_string).collect();
            let note = format!("One of: {}.", listed.join(", "));
            let description = match out.get("description").and_then(Value::as_str) {
                Some(text) if !text.is_empty() => format!("{text} {note}"),
                _ => note,
            };
            out.insert("description".into(), Value::String(description));
        }
    }
}

/// Gemini refuses a `required` entry with no matching property.
fn keep_known_required(out: &mut Map<String, Value>) {
    let known: Vec<String> = match out.get("properties").and_then(Value::as_object) {
        Some(properties) => properties.keys().cloned().collect(),
        None => Vec::new(),
    };
    if let Some(Value::Array(required)) = out.get_mut("required") {
        required.retain(|name| name.as_str().is_some_and(|n| known.iter().any(|k| k == n)));
        if required.is_empty() {
            out.remove("required");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejected_keywords_are_dropped_and_refs_resolved() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "strict": true,
            "properties": {
                "city": {"type": "string", "format": "uri", "description": "City"},
                "unit": {"$ref": "#/$defs/Unit"},
                "when": {"type": ["string", "null"], "format": "date-time"},
                "tags": {"type": "array", "items": {"$ref": "#/definitions/Tag"}},
                "mode": {"const": "fast"},
                "limit": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}
            },
            "required": ["city", "ghost"],
            "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "additionalProperties": false}},
            "definitions": {"Tag": {"type": "object", "properties": {"n": {"type": "number"}}}}
        });
        assert_eq!(
            reduce(&schema, "p").unwrap(),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                    "when": {"type": "string", "nullable": true, "format": "date-time"},
                    "tags": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "number"}}}},
                    "mode": {"type": "string", "enum": ["fast"]},
                    "limit": {"type": "integer", "minimum": 1, "nullable": true}
                },
                "required": ["city"]
            })
        );
    }

    /// Gemini answers 400 "items: missing field" to an array without `items`, which JSON Schema
    /// (and OpenAI, and many MCP tool sets) allow; tuples it cannot express at all.
    #[test]
    fn every_array_gets_items() {
        let schema = json!({
            "type": "object",
            "properties": {
                "any": {"type": "array"},
                "nested": {"type": "array", "items": {"type": "array"}},
                "tuple": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                "prefixed": {"type": "array", "prefixItems": [{"type": "string"}]},
                "nullable": {"type": ["array", "null"]}
            }
        });
        assert_eq!(
            reduce(&schema, "p").unwrap()["properties"],
            json!({
                "any": {"type": "array", "items": {}},
                "nested": {"type": "array", "items": {"type": "array", "items": {}}},
                "tuple": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                "prefixed": {"type": "array", "items": {"type": "string"}},
                "nullable": {"type": "array", "nullable": true, "items": {}}
            })
        );
    }

    /// Gemini answers 400 to an enum on anything but a string, and to an empty `properties`.
    #[test]
    fn enums_and_empty_objects_are_made_acceptable() {
        let schema = json!({
            "type": "object",
            "properties": {
                "level": {"type": "integer", "enum": [1, 2, 3], "description": "Depth."},
                "flag": {"type": "boolean", "enum": [true]},
                "mode": {"enum": ["a", "b", null]},
                "mixed": {"enum": ["a", 1]},
                "opts": {"type": "object", "properties": {}}
            },
            "required": ["level"]
        });
        assert_eq!(
            reduce(&schema, "p").unwrap(),
            json!({
                "type": "object",
                "properties": {
                    "level": {"type": "integer", "description": "Depth. One of: 1, 2, 3."},
                    "flag": {"type": "boolean", "description": "One of: true."},
                    "mode": {"type": "string", "enum": ["a", "b"], "nullable": true},
                    "mixed": {"description": "One of: \"a\", 1."},
                    "opts": {"type": "object"}
                },
                "required": ["level"]
            })
        );
    }

    #[test]
    fn recursive_and_dangling_refs_are_errors_with_the_param() {
        let recursive = json!({"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            "$ref": "#/$defs/Node"});
        let err = reduce(&recursive, "tools[0].function.parameters").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tools[0].function.parameters"));
        assert!(reduce(&json!({"$ref": "#/$defs/Missing"}), "p").is_err());
    }
}
