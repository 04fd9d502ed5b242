//! Which namespaces and keys a document may have: names safe as they are in a URL path, a
//! `context://` URI, a file name and a Redis key.

use super::ContextError;

pub const NAME_RULE: &str = "names are 1-200 characters of letters, digits, '-', '_', '.', '~', ':' and '@', and not '.' or '..'";

/// Whether `name` may be a namespace or key: safe in a URL path and a `context://` URI as it is.
pub fn valid_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'@')
        })
}

pub fn check_names(namespace: &str, key: &str) -> Result<(), ContextError> {
    for (field, name) in [("namespace", namespace), ("key", key)] {
        if !valid_name(name) {
            return Err(ContextError::InvalidName {
                field,
                name: name.to_owned(),
            });
        }
    }
    Ok(())
}
