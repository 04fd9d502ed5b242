//! A JSON value that validates against a JSON Schema, for the mock's structured answers
//! (`response_format: json_schema`): the first of every choice, the least of every bound.
//!
//! It covers what structured-output schemas use (OpenAI's strict subset, pydantic's output):
//! types and type lists, `properties`, `items`, `enum`, `const`, `anyOf`/`oneOf`/`allOf`, local
//! `$ref`s into `$defs`/`definitions`, lengths, counts, numeric bounds and common string formats.

use serde_json::{Map, Value, json};

/// How deep `$ref`s and nesting are followed: a recursive schema (a tree of nodes) ends in its
/// smallest valid form instead of running forever.
const MAX_DEPTH: usize = 16;

/// The most values one sample builds. The schema is the client's: nested arrays with large
/// `minItems` would otherwise multiply into an answer of any size. Past it, values are `null`.
const MAX_VALUES: usize = 4096;

/// The longest string `minLength` may ask for.
const MAX_MIN_LENGTH: u64 = 1024;

/// A value valid against `schema` (resolving `$ref`s against `root`), with `text` for strings.
pub fn sample(schema: &Value, text: &str) -> Value {
    let sampler = Sampler {
        root: schema,
        text,
        left: std::cell::Cell::new(MAX_VALUES),
    };
    sampler.value(schema, 0)
}

struct Sampler<'a> {
    root: &'a Value,
    text: &'a str,
    /// Values still allowed (see [`MAX_VALUES`]).
    left: std::cell::Cell<usize>,
}

impl Sampler<'_> {
    fn value(&self, schema: &Value, depth: usize) -> Value {
        match self.left.get().checked_sub(1) {
            Some(left) => self.left.set(left),
            None => return Value::Null,
        }
        let Some(schema) = schema.as_object() else {
            // `true` (or a missing schema) allows anything.
            return json!(self.text);
        };
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            return match self.resolve(target) {
                Some(resolved) => self.value(resolved, depth + 1),
                None => json!(self.text),
            };
        }
        if let Some(value) = schema.get("const") {
            return value.clone();
        }
        if let Some(first) = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return first.clone();
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                // A non-null branch first: an optional field still shows what it holds.
                let branch = branches
                    .iter()
                    .find(|b| b.get("type") != Some(&json!("null")))
                    .or_else(|| branches.first());
                if let Some(branch) = branch {
                    return self.value(branch, depth + 1);
                }
            }
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            return self.all_of(parts, depth);
        }
        match type_of(schema) {
            "object" => self.object(schema, depth),
            "array" => self.array(schema, depth),
            "integer" => json!(integer(schema)),
            "number" => number(schema),
            "boolean" => json!(false),
            "null" => Value::Null,
            _ => json!(self.string(schema)),
        }
    }

    /// A `#/...` pointer into the root schema.
    fn resolve(&self, target: &str) -> Option<&Value> {
        let pointer = target.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    fn object(&self, schema: &Map<String, Value>, depth: usize) -> Value {
        let mut object = Map::new();
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            // Every property, required or not: strict schemas require them all, and the others
            // are valid present.
            for (name, property) in properties {
                object.insert(name.clone(), self.value(property, depth + 1));
            }
        }
        Value::Object(object)
    }

    fn array(&self, schema: &Map<String, Value>, depth: usize) -> Value {
        // One item shows the shape; deep inside a recursive schema, none ends it.
        let count = schema
            .get("minItems")
            .and_then(Value::as_u64)
            .unwrap_or(u64::from(depth < 4))
            .min(
                schema
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::MAX),
            )
            .min(64);
        let items = schema.get("items").unwrap_or(&Value::Bool(true));
        let prefix = schema.get("prefixItems").and_then(Value::as_array);
        let values = (0..count as usize).map(|i| match prefix.and_then(|p| p.get(i)) {
            Some(item) => self.value(item, depth + 1),
            None => self.value(items, depth + 1),
        });
        Value::Array(values.collect())
    }

    fn all_of(&self, parts: &[Value], depth: usize) -> Value {
        // Merged as objects (the way allOf is used: a base and its extension).
        let mut merged = Map::new();
        for part in parts {
            match self.value(part, depth + 1) {
                Value::Object(fields) => merged.extend(fields),
                other => return other,
            }
        }
        Value::Object(merged)
    }

    fn string(&self, schema: &Map<String, Value>) -> String {
        let format = schema.get("format").and_then(Value::as_str);
        let mut text = match format {
            Some("date-time") => "2026-01-01T00:00:00Z".to_owned(),
            Some("date") => "2026-01-01".to_owned(),
            Some("time") => "00:00:00Z".to_owned(),
            Some("email") => "mock@example.com".to_owned(),
            Some("uri" | "url") => "https://example.com/".to_owned(),
            Some("uuid") => "00000000-0000-4000-8000-000000000000".to_owned(),
            _ => self.text.to_owned(),
        };
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            text = text.chars().take(max as usize).collect();
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            while (text.chars().count() as u64) < min.min(MAX_MIN_LENGTH) {
                text.push('x');
            }
        }
        text
    }
}

/// The schema's type, the first non-null one of a list; untyped schemas with properties are
/// objects, with items arrays.
fn type_of(schema: &Map<String, Value>) -> &str {
    match schema.get("type") {
        Some(Value::String(kind)) => kind,
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if schema.contains_key("properties") => "object",
        _ if schema.contains_key("items") => "array",
        _ => "string",
    }
}

fn integer(schema: &Map<String, Value>) -> i64 {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let mut value = 0f64;
    if let Some(min) = bound("minimum") {
        value = value.max(min.ceil());
    }
    if let Some(min) = bound("exclusiveMinimum") {
        value = value.max(min.floor() + 1.0);
    }
    if let Some(max) = bound("maximum").or(bound("exclusiveMaximum").map(|m| m.ceil() - 1.0)) {
        value = value.min(max.floor());
    }
    if let Some(step) = bound("multipleOf").filter(|s| *s >= 1.0) {
        value = (value / step).ceil() * step;
    }
    value as i64
}

fn number(schema: &Map<String, Value>) -> Value {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let mut value = 0f64;
    if let Some(min) = bound("minimum") {
        value = value.max(min);
    }
    if let Some(min) = bound("exclusiveMinimum") {
        value = value.max(min + 1.0);
    }
    if let Some(max) = bound("maximum").or(bound("exclusiveMaximum").map(|m| m - 1.0)) {
        value = value.min(max);
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pydantic writes for a model with a nested model, a list, an enum and an optional.
    #[test]
    fn samples_validate_against_pydantic_style_schemas() {
        let schema = json!({
            "$defs": {
                "Color": {"enum": ["red", "green"], "type": "string"},
                "Step": {"properties": {"explanation": {"type": "string"}, "output": {"type": "string"}},
                         "required": ["explanation", "output"], "type": "object", "additionalProperties": false}
            },
            "properties": {
                "steps": {"items": {"$ref": "#/$defs/Step"}, "type": "array"},
                "final_answer": {"type": "string", "minLength": 3},
                "color": {"$ref": "#/$defs/Color"},
                "score": {"type": "integer", "minimum": 1, "maximum": 10},
                "ratio": {"type": "number", "exclusiveMinimum": 0.5},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "when": {"type": "string", "format": "date-time"},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2}
            },
            "required": ["steps", "final_answer", "color", "score", "ratio", "note", "when", "tags"],
            "type": "object",
            "additionalProperties": false
        });
        let value = sample(&schema, "hi");
        assert_eq!(value["color"], "red");
        assert_eq!(value["score"], 1);
        assert_eq!(value["final_answer"], "hix");
        assert_eq!(value["steps"][0]["output"], "hi");
        assert_eq!(value["tags"].as_array().map(Vec::len), Some(2));
        assert_eq!(value["note"], "hi");
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{value}: {errors:?}");
    }

    /// A hostile schema asks for 64^16 values; the answer stays small.
    #[test]
    fn a_schema_asking_for_everything_gets_a_bounded_answer() {
        let mut schema = json!({"type": "string", "minLength": 1_000_000});
        for _ in 0..16 {
            schema = json!({"type": "array", "minItems": 64, "items": schema});
        }
        let text = sample(&schema, "x").to_string();
        assert!(text.len() < 5_000_000, "{} bytes", text.len());
    }

    #[test]
    fn recursive_schemas_end() {
        let schema = json!({"$defs": {"Node": {"type": "object", "properties": {
            "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
            "$ref": "#/$defs/Node"});
        let value = sample(&schema, "n");
        assert_eq!(value["name"], "n");
        assert_eq!(value["children"][0]["name"], "n");
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        assert!(validator.is_valid(&value), "{value}");
    }
}
