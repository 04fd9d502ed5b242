//! An OpenAPI 3.0 document's operations as tool descriptions: each one's input schema built from
//! its parameters and request body, and where each argument goes in the HTTP request.
//!
//! Parsed with `openapiv3`; schemas go through [`super::schemas`] to become self-contained.

use std::collections::HashSet;

use openapiv3::{
    OpenAPI, Operation as Op, Parameter, ParameterSchemaOrContent, ReferenceOr, RequestBody,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::schemas::{Components, Inliner};

/// How many `$ref` hops a parameter or request body may take to reach its definition.
const MAX_HOPS: usize = 8;

/// A spec read whole: the operations the gateway can call, and the ones it cannot with why.
#[derive(Debug, Default)]
pub struct Spec {
    pub operations: Vec<Operation>,
    /// `(id, reason)` of each operation left out.
    pub skipped: Vec<(String, String)>,
    /// The first of the spec's `servers` when it is an absolute http(s) URL.
    pub server: Option<String>,
}

/// One operation, ready to be a tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operation {
    /// `operationId`, or `{method}_{path}` made of tool-name characters when it has none.
    pub id: String,
    /// `summary`.
    pub title: Option<String>,
    pub description: Option<String>,
    /// Every parameter by name, the body as one more property; `type: object`.
    pub input_schema: Value,
    /// Upper case.
    pub method: String,
    /// The path template, `{name}` for each path parameter.
    pub path: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
}

/// Where one parameter goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    pub name: String,
    pub place: Place,
    /// An array query parameter as `a=1&a=2` (true) or `a=1,2` (false).
    pub explode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Place {
    Path,
    Query,
    Header,
    Cookie,
}

/// The request body: which argument holds it, and how it is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Body {
    pub argument: String,
    pub media_type: String,
    pub encoding: Encoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encoding {
    /// The argument as JSON.
    Json,
    /// An object's fields as `application/x-www-form-urlencoded`.
    Form,
    /// A string argument as it is (`text/*`, `application/octet-stream`).
    Raw,
}

/// Reads a spec (YAML or JSON) and describes every operation in it.
pub fn read(text: &str) -> Result<Spec, String> {
    let not_openapi = |e: serde_yaml_ng::Error| format!("is not an OpenAPI 3.0 document: {e}");
    let mut document: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(not_openapi)?;
    add_missing_responses(&mut document);
    let api: OpenAPI = serde_yaml_ng::from_value(document).map_err(not_openapi)?;
    if !api.openapi.starts_with("3.") {
        return Err(format!(
            "is OpenAPI {:?}; the gateway reads 3.0 documents",
            api.openapi
        ));
    }
    let schemas = match api
        .components
        .as_ref()
        .map(|c| serde_json::to_value(&c.schemas))
    {
        Some(Ok(Value::Object(map))) => map,
        Some(Err(e)) => return Err(format!("components.schemas: {e}")),
        _ => Map::new(),
    };
    let mut spec = Spec {
        server: api
            .servers
            .first()
            .map(|s| s.url.clone())
            .filter(|url| url.starts_with("http://") || url.starts_with("https://")),
        ..Spec::default()
    };
    let mut ids = HashSet::new();
    for (path, item) in &api.paths.paths {
        let ReferenceOr::Item(item) = item else {
            spec.skipped
                .push((path.clone(), "its path item is a $ref".to_owned()));
            continue;
        };
        for (method, op) in item.iter() {
            let id = op
                .operation_id
                .clone()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| generated_id(method, path));
            if !ids.insert(id.clone()) {
                spec.skipped
                    .push((id, "its operationId is used twice".to_owned()));
                continue;
            }
            let context = Context {
                api: &api,
                schemas: &schemas,
            };
            match context.operation(id.clone(), method, path, &item.parameters, op) {
                Ok(operation) => spec.operations.push(operation),
                Err(reason) => spec.skipped.push((id, reason)),
            }
        }
    }
    Ok(spec)
}

/// `responses` is required of every operation, which hand-written specs often leave out; the
/// gateway never reads it, so a missing one is not worth refusing the spec for.
fn add_missing_responses(document: &mut serde_yaml_ng::Value) {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_mapping_mut()) else {
        return;
    };
    for (_, item) in paths.iter_mut() {
        let Some(item) = item.as_mapping_mut() else {
            continue;
        };
        for method in METHODS {
            if let Some(operation) = item.get_mut(method).and_then(|o| o.as_mapping_mut())
                && !operation.contains_key("responses")
            {
                operation.insert(
                    "responses".into(),
                    serde_yaml_ng::Value::Mapping(serde_yaml_ng::Mapping::new()),
                );
            }
        }
    }
}

/// A name for an operation without `operationId`: `get_pet_petId` for `GET /pet/{petId}`.
fn generated_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(segment.trim_matches(['{', '}']).chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        }));
    }
    id
}

struct Context<'a> {
    api: &'a OpenAPI,
    schemas: &'a Map<String, Value>,
}

impl Context<'_> {
    fn operation(
        &self,
        id: String,
        method: &str,
        path: &str,
        shared: &[ReferenceOr<Parameter>],
        op: &Op,
    ) -> Result<Operation, String> {
        let mut inliner = Inliner::new(Components {
            schemas: self.schemas,
        });
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        // The operation's own parameters replace the path item's of the same name and place.
        let mut all = Vec::new();
        for parameter in shared.iter().chain(&op.parameters) {
            let parameter = self.parameter(parameter)?;
            let data = parameter.parameter_data_ref();
            let place = place_of(parameter);
            all.retain(|(p, _): &(Param, &Parameter)| !(p.name == data.name && p.place == place));
            let explode = data
                .explode
                .unwrap_or(matches!(place, Place::Query | Place::Cookie));
            let param = Param {
                name: data.name.clone(),
                place,
                explode,
            };
            all.push((param, parameter));
        }
        for (param, parameter) in all {
            let data = parameter.parameter_data_ref();
            if properties.contains_key(&data.name) {
                return Err(format!(
                    "two parameters are named {:?} (in different places)",
                    data.name
                ));
            }
            if param.place == Place::Path && !path.contains(&format!("{{{}}}", data.name)) {
                return Err(format!("path parameter {:?} is not in its path", data.name));
            }
            let schema = match &data.format {
                ParameterSchemaOrContent::Schema(schema) => to_json(schema)?,
                ParameterSchemaOrContent::Content(content) => content
                    .values()
                    .find_map(|media| media.schema.as_ref())
                    .map(to_json)
                    .transpose()?
                    .unwrap_or_else(|| json!({})),
            };
            let mut schema = inliner.inline(&schema)?;
            describe(&mut schema, data.description.as_deref());
            properties.insert(data.name.clone(), schema);
            if data.required || param.place == Place::Path {
                required.push(Value::from(data.name.clone()));
            }
            params.push(param);
        }
        let body = match &op.request_body {
            Some(body) => {
                let body = self.request_body(body)?;
                let argument = ["body", "requestBody", "request_body"]
                    .into_iter()
                    .find(|name| !properties.contains_key(*name))
                    .unwrap_or("body")
                    .to_owned();
                let (chosen, schema) = self.body_schema(body)?;
                let mut schema = inliner.inline(&schema)?;
                describe(&mut schema, body.description.as_deref());
                properties.insert(argument.clone(), schema);
                if body.required {
                    required.push(Value::from(argument.clone()));
                }
                Some(Body {
                    argument,
                    media_type: chosen.0,
                    encoding: chosen.1,
                })
            }
            None => None,
        };
        let mut input = Map::new();
        input.insert("type".to_owned(), json!("object"));
        input.insert("properties".to_owned(), Value::Object(properties));
        if !required.is_empty() {
            input.insert("required".to_owned(), Value::Array(required));
        }
        input.insert("additionalProperties".to_owned(), json!(false));
        if let Some(defs) = inliner.finish()? {
            input.insert("$defs".to_owned(), Value::Object(defs));
        }
        Ok(Operation {
            id,
            title: op.summary.clone(),
            description: op.description.clone().or_else(|| op.summary.clone()),
            input_schema: Value::Object(input),
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            params,
            body,
        })
    }

    fn parameter<'p>(&'p self, at: &'p ReferenceOr<Parameter>) -> Result<&'p Parameter, String> {
        let components = self.api.components.as_ref();
        resolve(at, ("#/components/parameters/", "parameter"), |name| {
            components?.parameters.get(name)
        })
    }

    fn request_body<'p>(
        &'p self,
        at: &'p ReferenceOr<RequestBody>,
    ) -> Result<&'p RequestBody, String> {
        let components = self.api.components.as_ref();
        resolve(
            at,
            ("#/components/requestBodies/", "request body"),
            |name| components?.request_bodies.get(name),
        )
    }

    /// The media type a call sends (JSON first, then a form, then raw text or bytes) and the
    /// schema of its argument.
    fn body_schema(&self, body: &RequestBody) -> Result<((String, Encoding), Value), String> {
        let ranked = |media: &str| {
            let media = media.to_ascii_lowercase();
            if media == "application/json" || media.ends_with("+json") {
                Some(0)
            } else if media == "application/x-www-form-urlencoded" {
                Some(1)
            } else if media.starts_with("text/") || media == "application/octet-stream" {
                Some(2)
            } else {
                None
            }
        };
        let Some((media, content)) = body
            .content
            .iter()
            .filter_map(|(media, content)| Some((ranked(media)?, media, content)))
            .min_by_key(|(rank, ..)| *rank)
            .map(|(_, media, content)| (media, content))
        else {
            let offered: Vec<&str> = body.content.keys().map(String::as_str).collect();
            return Err(format!(
                "its request body is {} only, which the gateway cannot send (JSON, a form, \
                 text or bytes it can)",
                offered.join(", ")
            ));
        };
        let encoding = match ranked(media) {
            Some(0) => Encoding::Json,
            Some(1) => Encoding::Form,
            _ => Encoding::Raw,
        };
        let schema = match (encoding, &content.schema) {
            (Encoding::Raw, _) => json!({ "type": "string" }),
            (_, Some(schema)) => to_json(schema)?,
            (_, None) => json!({}),
        };
        Ok(((media.clone(), encoding), schema))
    }
}

/// What `at` stands for, following `$ref`s to the components under `prefix` (of kind `what`).
fn resolve<'p, T>(
    mut at: &'p ReferenceOr<T>,
    (prefix, what): (&str, &str),
    component: impl Fn(&str) -> Option<&'p ReferenceOr<T>>,
) -> Result<&'p T, String> {
    for _ in 0..MAX_HOPS {
        match at {
            ReferenceOr::Item(item) => return Ok(item),
            ReferenceOr::Reference { reference } => {
                let name = reference
                    .strip_prefix(prefix)
                    .ok_or_else(|| format!("$ref {reference:?} is not a {what}"))?;
                at =
                    component(name).ok_or_else(|| format!("$ref {reference:?} names no {what}"))?;
            }
        }
    }
    Err(format!("a {what}'s $ref takes more than {MAX_HOPS} hops"))
}

fn place_of(parameter: &Parameter) -> Place {
    match parameter {
        Parameter::Path { .. } => Place::Path,
        Parameter::Query { .. } => Place::Query,
        Parameter::Header { .. } => Place::Header,
        Parameter::Cookie { .. } => Place::Cookie,
    }
}

fn to_json<T: Serialize>(schema: &T) -> Result<Value, String> {
    serde_json::to_value(schema).map_err(|e| format!("a schema cannot be read: {e}"))
}

/// The parameter's description on its schema, where models read it.
fn describe(schema: &mut Value, description: Option<&str>) {
    if let (Value::Object(map), Some(text)) = (schema, description)
        && !map.contains_key("description")
    {
        map.insert("description".to_owned(), Value::from(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r##"
openapi: 3.0.3
info: { title: t, version: "1" }
servers: [{ url: "https://api.example.com/v1" }]
paths:
  /items/{id}:
    parameters:
      - { name: id, in: path, required: true, schema: { type: integer } }
    get:
      operationId: getItem
      summary: One item
      responses: {}
      parameters:
        - { name: fields, in: query, schema: { type: array, items: { type: string } }, explode: false }
        - { name: X-Trace, in: header, description: trace id, schema: { type: string } }
    put:
      responses: {}
      requestBody:
        required: true
        content:
          application/xml: { schema: { $ref: "#/components/schemas/Item" } }
          application/json: { schema: { $ref: "#/components/schemas/Item" } }
  /upload:
    post:
      operationId: upload
      responses: {}
      requestBody: { content: { multipart/form-data: { schema: { type: object } } } }
components:
  schemas:
    Item: { type: object, properties: { name: { type: string } } }
"##;

    #[test]
    fn operations_take_parameters_and_bodies_in_their_places() {
        let spec = read(SPEC).unwrap();
        assert_eq!(spec.server.as_deref(), Some("https://api.example.com/v1"));
        let get = &spec.operations[0];
        assert_eq!((get.id.as_str(), get.method.as_str()), ("getItem", "GET"));
        assert_eq!(
            get.input_schema,
            json!({
                "type": "object",
                "properties": {
                    "id": { "type": "integer" },
                    "fields": { "type": "array", "items": { "type": "string" } },
                    "X-Trace": { "type": "string", "description": "trace id" }
                },
                "required": ["id"],
                "additionalProperties": false
            })
        );
        let places: Vec<_> = get.params.iter().map(|p| (p.place, p.explode)).collect();
        assert_eq!(
            places,
            [
                (Place::Path, false),
                (Place::Query, false),
                (Place::Header, false)
            ]
        );
        let put = &spec.operations[1];
        assert_eq!(put.id, "put_items_id");
        let body = put.body.as_ref().unwrap();
        assert_eq!(
            (
                body.argument.as_str(),
                body.media_type.as_str(),
                body.encoding
            ),
            ("body", "application/json", Encoding::Json)
        );
        assert_eq!(
            put.input_schema["properties"]["body"],
            json!({ "type": "object", "properties": { "name": { "type": "string" } } })
        );
        assert_eq!(put.input_schema["required"], json!(["id", "body"]));
        assert_eq!(spec.skipped.len(), 1);
        assert!(
            spec.skipped[0].1.contains("multipart/form-data"),
            "{:?}",
            spec.skipped
        );
    }

    #[test]
    fn parameters_and_bodies_by_ref_are_followed() {
        let spec = r##"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /x:
    post:
      operationId: make
      parameters: [{ $ref: "#/components/parameters/Limit" }]
      requestBody: { $ref: "#/components/requestBodies/Thing" }
  /y:
    get:
      operationId: broken
      parameters: [{ $ref: "#/components/parameters/Nope" }]
components:
  parameters:
    Limit: { name: limit, in: query, schema: { type: integer } }
  requestBodies:
    Thing: { required: true, content: { application/json: { schema: { type: object } } } }
"##;
        let spec = read(spec).unwrap();
        let make = &spec.operations[0];
        assert_eq!(
            make.input_schema["properties"]["limit"],
            json!({ "type": "integer" })
        );
        assert_eq!(make.input_schema["required"], json!(["body"]));
        let broken = (
            "broken".to_owned(),
            r##"$ref "#/components/parameters/Nope" names no parameter"##.to_owned(),
        );
        assert_eq!(spec.skipped, [broken]);
    }

    #[test]
    fn what_is_not_a_3_0_document_is_refused() {
        assert!(read("openapi: 2.0\ninfo: {title: t, version: '1'}\npaths: {}").is_err());
        assert!(read("swagger: '2.0'").is_err());
        assert!(read("[1, 2").is_err());
    }
}
