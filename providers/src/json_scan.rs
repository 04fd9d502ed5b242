//! Byte scans over a JSON chunk that tell, without parsing it, whether the relay must look
//! inside: most chunks of a stream carry neither usage nor anything else the gateway edits.
//!
//! A scan answers only when it is sure; anything unusual sends the chunk to a real parse.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// Built once: a searcher's set-up cost more than the search over a chunk.
static USAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
static ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));
static CHOICES: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"choices\""));

/// What a scan learned of a stream chunk with one `choices` array and no error object. `None`
/// means the chunk needs a parse: an error, several usages, or any doubt.
pub(crate) fn chunk_shape(json: &[u8]) -> Option<ChunkShape> {
    if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
        return None;
    }
    // An error object (OpenRouter sends one beside choices mid-stream) is for the parse to see.
    if values(&ERROR, json).next().is_some() {
        return None;
    }
    // At most one usage key, whose value is null or an object. A second one, or one nested
    // inside something (Groq's `x_groq.usage`, a usage inside a choice), is for the parse, which
    // reads only the chunk's own.
    let mut usages = values(&USAGE, json);
    let usage = match usages.next() {
        None => None,
        Some(_) if usages.next().is_some() => return None,
        Some(at) if json[at..].starts_with(b"null") => None,
        Some(at) if json[at] == b'{' && depth_at(json, at) == 1 => Some(at),
        Some(_) => return None,
    };
    let mut arrays = values(&CHOICES, json);
    let at = arrays.next()?;
    if arrays.next().is_some() {
        return None;
    }
    let array = json[at..].strip_prefix(b"[")?;
    Some(ChunkShape {
        has_choices: !skip_ws(array).starts_with(b"]"),
        usage,
    })
}

/// See [`chunk_shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkShape {
    pub has_choices: bool,
    /// Where the `usage` object starts, when the chunk has one (not absent, not `null`).
    pub usage: Option<usize>,
}

/// The offset of each value that follows `"key":`. Inside a JSON string every `"` is escaped,
/// so a quoted name followed by a colon is a key, never text.
fn values<'a>(key: &'a Finder<'static>, json: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    key.find_iter(json).filter_map(move |at| {
        let rest = skip_ws(&json[at + key.needle().len()..]);
        let value = skip_ws(rest.strip_prefix(b":")?);
        Some(json.len() - value.len())
    })
}

/// How many objects and arrays are open at `pos`, strings skipped: 1 inside the chunk itself.
fn depth_at(json: &[u8], pos: usize) -> usize {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in &json[..pos] {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depth
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(json: &[u8]) -> Option<ChunkShape> {
        chunk_shape(json)
    }

    #[test]
    fn plain_chunks_are_recognised() {
        let chunk = br#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi \"usage\": 5"}}],"usage":null}"#;
        assert_eq!(
            shape(chunk),
            Some(ChunkShape {
                has_choices: true,
                usage: None
            })
        );
        assert_eq!(
            shape(br#"{"choices" : [ ], "prompt_filter_results": []}"#),
            Some(ChunkShape {
                has_choices: false,
                usage: None
            })
        );
        assert_eq!(
            shape(br#"{"choices":[{"delta":{"type":"usage"}}]}"#),
            Some(ChunkShape {
                has_choices: true,
                usage: None
            }),
            "a string value named usage is not a key"
        );
    }

    #[test]
    fn a_single_usage_object_is_located() {
        let json = br#"{"choices":[],"usage" : {"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        let found = shape(json).unwrap();
        assert!(!found.has_choices);
        let at = found.usage.unwrap();
        assert!(json[at..].starts_with(b"{\"prompt_tokens\":1"));
        let with_choices = br#"{"choices":[{"delta":{}}],"usage":{"total_tokens":2}}"#;
        assert!(shape(with_choices).unwrap().has_choices);
        // Braces and quotes inside strings do not count as nesting.
        let tricky =
            br#"{"id":"}}\"{[","choices":[{"delta":{"content":"]}"}}],"usage":{"total_tokens":2}}"#;
        assert!(shape(tricky).unwrap().usage.is_some());
    }

    #[test]
    fn anything_needing_a_look_is_refused() {
        for json in [
            &br#"{"choices":[{"usage":{"x":1}}],"usage":{"y":2}}"#[..],
            br#"{"choices":[{"usage":{"prompt_tokens":1}}],"usage":null}"#,
            br#"{"choices":[{"delta":{},"usage":{"prompt_tokens":1,"total_tokens":1}}]}"#,
            br#"{"choices":[],"x_groq":{"usage":{"prompt_tokens":1,"total_tokens":1}}}"#,
            br#"{"id":"a\"{","choices":[],"x":[{"usage":{"total_tokens":1}}]}"#,
            br#"{"choices":[],"usage":5}"#,
            br#"{"error":{"message":"overloaded"}}"#,
            br#"{"choices":[{"delta":{}}],"error" :{"message":"provider died"}}"#,
            br#"{"choices":{}}"#,
            br#"{"choices":[],"x":{"choices":[]}}"#,
            b"{not json",
            b"",
        ] {
            assert_eq!(shape(json), None, "{}", String::from_utf8_lossy(json));
        }
    }
}
