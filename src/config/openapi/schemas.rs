//! OpenAPI 3.0 schemas as the JSON Schema a tool's `inputSchema` is: `$ref`s to components
//! inlined (a cycle goes through `$defs`), `nullable` as a `"null"` type, `x-` extensions dropped.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The prefix of the only `$ref`s a schema may hold.
const COMPONENT: &str = "#/components/schemas/";

/// Deepest nesting followed; a spec deeper than this is not one a model could fill anyway.
const MAX_DEPTH: usize = 64;

/// The spec's `components.schemas`, by name, as JSON.
pub struct Components<'a> {
    pub schemas: &'a Map<String, Value>,
}

/// One schema made self-contained.
pub struct Inliner<'a> {
    components: Components<'a>,
    /// The components being inlined, outermost first: a `$ref` to one of them is a cycle.
    stack: Vec<String>,
    /// Components a cycle made into `$defs`; each converted once.
    defs: BTreeMap<String, Option<Value>>,
}

impl<'a> Inliner<'a> {
    pub fn new(components: Components<'a>) -> Inliner<'a> {
        Inliner {
            components,
            stack: Vec::new(),
            defs: BTreeMap::new(),
        }
    }

    /// `schema` with every `$ref` resolved; an unknown or foreign `$ref` is an error naming it.
    pub fn inline(&mut self, schema: &Value) -> Result<Value, String> {
        self.walk(schema, 0)
    }

    /// The `$defs` cycles needed, to put at the root of the schema that uses them.
    pub fn finish(mut self) -> Result<Option<Map<String, Value>>, String> {
        // A def's own conversion may name further defs; convert until none is left.
        while let Some(name) = self
            .defs
            .iter()
            .find(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
        {
            let component = self.component(&name)?.clone();
            self.stack.push(name.clone());
            let converted = self.walk(&component, 0);
            self.stack.pop();
            self.defs.insert(name, Some(converted?));
        }
        if self.defs.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            self.defs
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect(),
        ))
    }

    fn component(&self, name: &str) -> Result<&'a Value, String> {
        self.components
            .schemas
            .get(name)
            .ok_or_else(|| format!("$ref {COMPONENT}{name} names no schema of components.schemas"))
    }

    fn walk(&mut self, value: &Value, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("a schema nests deeper than {MAX_DEPTH} levels"));
        }
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref") {
                    return self.reference(reference, depth);
                }
                let mut out = Map::new();
                for (key, item) in map {
                    if key.starts_with("x-") || key == "xml" || key == "nullable" {
                        continue;
                    }
                    out.insert(key.clone(), self.walk(item, depth + 1)?);
                }
                if map.get("nullable") == Some(&Value::Bool(true)) {
                    nullable(&mut out);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => items
                .iter()
                .map(|item| self.walk(item, depth + 1))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    fn reference(&mut self, reference: &Value, depth: usize) -> Result<Value, String> {
        let text = reference.as_str().unwrap_or_default();
        let Some(name) = text.strip_prefix(COMPONENT) else {
            return Err(format!(
                "$ref {text:?} is not a schema of this document's components.schemas"
            ));
        };
        let component = self.component(name)?;
        if self.stack.iter().any(|n| n == name) {
            self.defs.entry(name.to_owned()).or_insert(None);
            return Ok(serde_json::json!({ "$ref": format!("#/$defs/{name}") }));
        }
        self.stack.push(name.to_owned());
        let inlined = self.walk(component, depth + 1);
        self.stack.pop();
        inlined
    }
}

/// OpenAPI 3.0's `nullable: true` in JSON Schema's words: `null` joins the type.
fn nullable(schema: &mut Map<String, Value>) {
    match schema.get_mut("type") {
        Some(Value::String(kind)) => {
            let kind = std::mem::take(kind);
            schema.insert("type".to_owned(), serde_json::json!([kind, "null"]));
        }
        Some(Value::Array(kinds)) if !kinds.iter().any(|k| k == "null") => {
            kinds.push(Value::from("null"));
        }
        _ => {}
    }
    if let Some(Value::Array(options)) = schema.get_mut("enum")
        && !options.contains(&Value::Null)
    {
        options.push(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn components(value: &Value) -> Components<'_> {
        Components {
            schemas: value.as_object().unwrap(),
        }
    }

    #[test]
    fn refs_are_inlined_and_openapi_words_become_json_schema() {
        let schemas = json!({
            "Tag": { "type": "object", "properties": { "name": { "type": "string" } },
                     "xml": { "name": "tag" }, "x-swagger-router-model": "Tag" },
            "Pet": { "type": "object", "required": ["name"], "properties": {
                "name": { "type": "string", "nullable": true },
                "tags": { "type": "array", "items": { "$ref": "#/components/schemas/Tag" } } } }
        });
        let mut inliner = Inliner::new(components(&schemas));
        let pet = inliner
            .inline(&json!({ "$ref": "#/components/schemas/Pet" }))
            .unwrap();
        assert_eq!(
            pet,
            json!({ "type": "object", "required": ["name"], "properties": {
                "name": { "type": ["string", "null"] },
                "tags": { "type": "array", "items": { "type": "object",
                          "properties": { "name": { "type": "string" } } } } } })
        );
        assert_eq!(inliner.finish().unwrap(), None);
    }

    #[test]
    fn a_cycle_goes_through_defs() {
        let schemas = json!({
            "Node": { "type": "object", "properties": {
                "children": { "type": "array", "items": { "$ref": "#/components/schemas/Node" } } } }
        });
        let mut inliner = Inliner::new(components(&schemas));
        let node = inliner
            .inline(&json!({ "$ref": "#/components/schemas/Node" }))
            .unwrap();
        assert_eq!(
            node["properties"]["children"]["items"],
            json!({ "$ref": "#/$defs/Node" })
        );
        let defs = inliner.finish().unwrap().unwrap();
        assert_eq!(
            defs["Node"]["properties"]["children"]["items"],
            json!({ "$ref": "#/$defs/Node" })
        );
    }

    #[test]
    fn unknown_and_foreign_refs_are_named() {
        let schemas = json!({});
        let mut inliner = Inliner::new(components(&schemas));
        let missing = inliner
            .inline(&json!({ "$ref": "#/components/schemas/Gone" }))
            .unwrap_err();
        assert!(missing.contains("Gone"), "{missing}");
        let foreign = inliner
            .inline(&json!({ "$ref": "https://example.com/s.json" }))
            .unwrap_err();
        assert!(foreign.contains("example.com"), "{foreign}");
    }
}
