//! An OpenAPI operation's arguments placed into its HTTP request: query parameters (arrays
//! exploded or joined as the spec says), headers, cookies and the body in its media type.
//!
//! Path parameters are filled by `http_tool`, as the placeholders of any tool's URL are.

use percent_encoding::utf8_percent_encode;
use rmcp::model::JsonObject;
use serde_json::Value;

use super::http_tool::{COMPONENT, scalar_text};
use crate::config::openapi::{Body, Encoding, Operation, Param, Place};

/// Where each argument of one operation goes.
pub struct Placement {
    params: Vec<Param>,
    body: Option<Body>,
}

impl Placement {
    pub fn new(operation: &Operation) -> Placement {
        Placement {
            params: operation
                .params
                .iter()
                .filter(|p| p.place != Place::Path)
                .cloned()
                .collect(),
            body: operation.body.clone(),
        }
    }

    /// The request to `url` (its path already filled) carrying `arguments`, which the input
    /// schema has checked.
    pub fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        mut url: reqwest::Url,
        mut arguments: JsonObject,
    ) -> Result<reqwest::RequestBuilder, String> {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut cookies = Vec::new();
        for param in &self.params {
            let Some(value) = arguments.remove(&param.name) else {
                continue;
            };
            match param.place {
                Place::Query => query(&mut url, param, &value),
                Place::Header => {
                    let name = reqwest::header::HeaderName::from_bytes(param.name.as_bytes())
                        .map_err(|_| {
                            format!("the header parameter {:?} has no valid name", param.name)
                        })?;
                    let text = joined(&value);
                    let value = reqwest::header::HeaderValue::from_str(&text).map_err(|_| {
                        format!("argument '{}' cannot be an HTTP header value", param.name)
                    })?;
                    headers.insert(name, value);
                }
                Place::Cookie => cookies.push(format!(
                    "{}={}",
                    param.name,
                    utf8_percent_encode(&joined(&value), COMPONENT)
                )),
                Place::Path => {}
            }
        }
        if !cookies.is_empty() {
            let cookie = reqwest::header::HeaderValue::from_str(&cookies.join("; "))
                .map_err(|_| "the cookie parameters cannot be a Cookie header".to_owned())?;
            headers.insert(reqwest::header::COOKIE, cookie);
        }
        let mut builder = client.request(method, url).headers(headers);
        if let Some(body) = &self.body
            && let Some(value) = arguments.remove(&body.argument)
        {
            let text = match body.encoding {
                Encoding::Json => value.to_string(),
                Encoding::Form => form(&value),
                Encoding::Raw => scalar_text(&value),
            };
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, body.media_type.as_str())
                .body(text);
        }
        Ok(builder)
    }
}

/// A query parameter; an array as `a=1&a=2` when exploded, else `a=1,2`.
fn query(url: &mut reqwest::Url, param: &Param, value: &Value) {
    let mut pairs = url.query_pairs_mut();
    match value {
        Value::Array(items) if param.explode => {
            for item in items {
                pairs.append_pair(&param.name, &scalar_text(item));
            }
        }
        other => {
            pairs.append_pair(&param.name, &joined(other));
        }
    }
}

/// A value as one text: an array's items joined by commas, anything else as `scalar_text`.
fn joined(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        other => scalar_text(other),
    }
}

/// An object as `application/x-www-form-urlencoded`; anything else as one `value` field.
fn form(value: &Value) -> String {
    let encode = |text: &str| utf8_percent_encode(text, COMPONENT).to_string();
    match value {
        Value::Object(fields) => fields
            .iter()
            .map(|(name, v)| format!("{}={}", encode(name), encode(&joined(v))))
            .collect::<Vec<_>>()
            .join("&"),
        other => format!("value={}", encode(&joined(other))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn placement() -> Placement {
        let spec = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /pets/{id}:
    post:
      operationId: update
      responses: {}
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
        - { name: tags, in: query, schema: { type: array, items: { type: string } } }
        - { name: fields, in: query, explode: false, schema: { type: array, items: { type: string } } }
        - { name: X-Request, in: header, schema: { type: string } }
        - { name: session, in: cookie, schema: { type: string } }
      requestBody:
        content:
          application/x-www-form-urlencoded: { schema: { type: object } }
"#;
        let spec = crate::config::openapi::read(spec).unwrap();
        Placement::new(&spec.operations[0])
    }

    #[test]
    fn each_argument_goes_where_its_parameter_says() {
        crate::tls::install_tls_provider();
        let client = reqwest::Client::new();
        let url = reqwest::Url::parse("http://127.0.0.1:1/pets/7").unwrap();
        let arguments = json!({
            "tags": ["a b", "c"], "fields": ["x", "y"], "X-Request": "r-1",
            "session": "s;1", "body": { "name": "Rex & co", "age": 3 }
        });
        let Value::Object(arguments) = arguments else {
            unreachable!()
        };
        let request = placement()
            .request(&client, reqwest::Method::POST, url, arguments)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:1/pets/7?tags=a+b&tags=c&fields=x%2Cy"
        );
        assert_eq!(request.headers()["x-request"], "r-1");
        assert_eq!(request.headers()["cookie"], "session=s%3B1");
        assert_eq!(
            request.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        let body = request.body().and_then(|b| b.as_bytes()).unwrap();
        assert_eq!(body, b"name=Rex%20%26%20co&age=3");
    }

    #[test]
    fn a_header_value_cannot_smuggle_a_line() {
        crate::tls::install_tls_provider();
        let client = reqwest::Client::new();
        let url = reqwest::Url::parse("http://127.0.0.1:1/pets/7").unwrap();
        let Value::Object(arguments) = json!({ "X-Request": "a\r\nX-Admin: 1" }) else {
            unreachable!()
        };
        let refused = placement()
            .request(&client, reqwest::Method::POST, url, arguments)
            .unwrap_err();
        assert!(refused.contains("X-Request"), "{refused}");
    }
}
