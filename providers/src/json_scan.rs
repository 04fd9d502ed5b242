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

/// What a scan learned of a plain stream chunk: one with a `choices` array and no usage (absent
/// or `null`). `None` means the chunk needs a parse: usage, an error object, or any doubt.
pub(crate) fn plain_chunk(json: &[u8]) -> Option<PlainChunk> {
    if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
        return None;
    }
    // Inside a JSON string every `"` is escaped, so `"usage"` followed by `:` is a key.
    for at in USAGE.find_iter(json) {
        let rest = skip_ws(&json[at + 7..]);
        if let Some(value) = rest.strip_prefix(b":")
            && !skip_ws(value).starts_with(b"null")
        {
            return None;
        }
    }
    // An error object (OpenRouter sends one beside choices mid-stream) is for the parse to see.
    if ERROR
        .find_iter(json)
        .any(|at| skip_ws(&json[at + 7..]).starts_with(b":"))
    {
        return None;
    }
    let mut keys = CHOICES.find_iter(json);
    let at = keys.next()?;
    if keys.next().is_some() {
        return None;
    }
    let array = skip_ws(skip_ws(&json[at + 9..]).strip_prefix(b":")?).strip_prefix(b"[")?;
    Some(PlainChunk {
        has_choices: !skip_ws(array).starts_with(b"]"),
    })
}

/// See [`plain_chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlainChunk {
    pub has_choices: bool,
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

    #[test]
    fn plain_chunks_are_recognised() {
        let chunk = br#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi \"usage\": 5"}}],"usage":null}"#;
        assert_eq!(plain_chunk(chunk), Some(PlainChunk { has_choices: true }));
        assert_eq!(
            plain_chunk(br#"{"choices" : [ ], "prompt_filter_results": []}"#),
            Some(PlainChunk { has_choices: false })
        );
        assert_eq!(
            plain_chunk(br#"{"choices":[{"delta":{"type":"usage"}}]}"#),
            Some(PlainChunk { has_choices: true }),
            "a string value named usage is not a key"
        );
    }

    #[test]
    fn anything_needing_a_look_is_refused() {
        for json in [
            &br#"{"choices":[],"usage":{"prompt_tokens":1}}"#[..],
            br#"{"choices":[{"delta":{}}],"usage" : {"total_tokens":2}}"#,
            br#"{"choices":[{"usage":{"x":1}}],"usage":null}"#,
            br#"{"error":{"message":"overloaded"}}"#,
            br#"{"choices":[{"delta":{}}],"error" :{"message":"provider died"}}"#,
            br#"{"choices":{}}"#,
            br#"{"choices":[],"x":{"choices":[]}}"#,
            b"{not json",
            b"",
        ] {
            assert_eq!(plain_chunk(json), None, "{}", String::from_utf8_lossy(json));
        }
    }
}
