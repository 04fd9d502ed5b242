//! Tool arguments checked against a tool's JSON Schema, with errors that name the argument, so a
//! model or a person can fix the call from the message alone.

use serde_json::{Map, Value};

/// A compiled input (or output) schema.
pub struct Schema {
    validator: jsonschema::Validator,
    /// The `default` of each top-level property that declares one.
    defaults: Map<String, Value>,
}

impl Schema {
    /// Compiles `schema`; config validation already refused the ones that do not compile.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
        let properties = schema.get("properties").and_then(Value::as_object);
        let defaults = properties
            .into_iter()
            .flatten()
            .filter_map(|(name, property)| Some((name.clone(), property.get("default")?.clone())))
            .collect();
        Ok(Schema {
            validator,
            defaults,
        })
    }

    /// Gives each absent argument the `default` its property declares, as a client that reads
    /// the schema would have sent it.
    pub fn fill_defaults(&self, arguments: &mut Map<String, Value>) {
        for (name, value) in &self.defaults {
            if !arguments.contains_key(name) {
                arguments.insert(name.clone(), value.clone());
            }
        }
    }

    /// `Err` with one line per problem, each naming the argument it is about.
    pub fn check(&self, arguments: &Map<String, Value>) -> Result<(), String> {
        let instance = Value::Object(arguments.clone());
        self.check_value(&instance, "argument")
    }

    /// As [`Schema::check`], for any value; `what` names its parts in messages.
    pub fn check_value(&self, instance: &Value, what: &str) -> Result<(), String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(instance)
            .map(|error| describe(&error, what))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

fn describe(error: &jsonschema::ValidationError<'_>, what: &str) -> String {
    let pointer = error.instance_path().as_str().to_owned();
    if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
        let name = property
            .as_str()
            .map_or_else(|| property.to_string(), str::to_owned);
        let name = join(&pointer, &name);
        return format!("{what} '{name}' is required");
    }
    if pointer.is_empty() {
        format!("{what}s: {}", error.masked())
    } else {
        format!("{what} '{}': {error}", dotted(&pointer))
    }
}

/// `/a/0/b` as `a[0].b`, the way the arguments are written.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

fn join(pointer: &str, name: &str) -> String {
    let parent = dotted(pointer);
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(arguments: Value) -> Result<(), String> {
        let schema = Schema::compile(&json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1},
                "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]}
            },
            "required": ["city"],
            "additionalProperties": false
        }))
        .unwrap();
        let Value::Object(map) = arguments else {
            panic!()
        };
        schema.check(&map)
    }

    #[test]
    fn errors_name_the_argument() {
        assert!(check(json!({"city": "Paris", "days": 2})).is_ok());
        assert_eq!(check(json!({})).unwrap_err(), "argument 'city' is required");
        let wrong = check(json!({"city": 5})).unwrap_err();
        assert!(
            wrong.starts_with("argument 'city': 5 is not of type"),
            "{wrong}"
        );
        let nested = check(json!({"city": "x", "where": {}})).unwrap_err();
        assert_eq!(nested, "argument 'where.lat' is required");
        let extra = check(json!({"city": "x", "extra": 1})).unwrap_err();
        assert!(
            extra.starts_with("arguments: ") && extra.contains("extra"),
            "{extra}"
        );
    }

    #[test]
    fn absent_arguments_take_their_declared_default_and_given_ones_are_kept() {
        let schema = Schema::compile(&json!({
            "type": "object",
            "properties": {
                "units": {"type": "string", "default": "metric"},
                "days": {"type": "integer", "default": 3},
                "city": {"type": "string"}
            }
        }))
        .unwrap();
        let mut arguments = Map::new();
        arguments.insert("days".into(), json!(7));
        schema.fill_defaults(&mut arguments);
        assert_eq!(
            Value::Object(arguments),
            json!({"units": "metric", "days": 7})
        );
    }
}
