//! `${VAR}` and `${VAR:-default}` in any string of config.yaml, resolved after YAML parsing so a
//! value with YAML syntax in it can never change the document's structure.
//!
//! `${VAR:-default}` takes the default when VAR is unset or empty, as a shell does. `$$` writes a
//! literal `$`. Every unset variable is reported with the YAML path that uses it.

use serde_yaml_ng::Value;

use super::ConfigError;

/// Replaces variables in every string of `value`, collecting an error for each unset one.
pub fn interpolate(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        Value::String(text) if text.contains('$') => match expand(text, lookup) {
            Ok(expanded) => *text = expanded,
            Err(message) => errors.push(ConfigError::new(path, message)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), lookup, errors);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let name = key
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{key:?}"));
                let child = if path.is_empty() {
                    name
                } else {
                    format!("{path}.{name}")
                };
                interpolate(item, &child, lookup, errors);
            }
        }
        Value::Tagged(tagged) => interpolate(&mut tagged.value, path, lookup, errors),
        _ => {}
    }
}

/// Expands one string.
fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let end = after
                .find('}')
                // The text may be a secret: name the problem, not the value.
                .ok_or_else(|| "unterminated ${ (write $$ for a literal $)".to_owned())?;
            let expr = &after[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name {name:?} in ${{{expr}}}"));
            }
            match (lookup(name), default) {
                // As in a shell, `:-` stands in for an empty variable too: `.env` files and
                // compose files often set a variable to nothing to mean "not given".
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (write ${{{name}:-default}} to make it optional)"
                    ));
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn an_empty_variable_takes_its_default_and_is_empty_without_one() {
        assert_eq!(expand("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("a${EMPTY}b", &env).unwrap(), "ab");
        assert_eq!(expand("${SET:-fallback}", &env).unwrap(), "value");
    }

    #[test]
    fn expands_set_default_and_escapes() {
        assert_eq!(expand("a ${SET} b", &env).unwrap(), "a value b");
        assert_eq!(expand("${UNSET:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${UNSET:-}", &env).unwrap(), "");
        assert_eq!(expand("cost $$5 $x", &env).unwrap(), "cost $5 $x");
    }

    #[test]
    fn unset_variable_is_reported_at_its_path() {
        let mut doc: Value =
            serde_yaml_ng::from_str("providers:\n  openai:\n    api_key: ${MISSING_KEY}\n")
                .unwrap();
        let mut errors = Vec::new();
        interpolate(&mut doc, "", &env, &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "providers.openai.api_key");
        assert!(errors[0].message.contains("MISSING_KEY"));
    }
}
