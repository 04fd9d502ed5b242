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
static DELTA: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"delta\""));
static ROLE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"role\""));

/// What a scan learned of a plain stream chunk: one `choices` array and no usage (absent or
/// `null`) or error object. `None` means the chunk needs a parse: usage, an error, or any doubt.
pub(crate) fn plain_chunk(json: &[u8]) -> Option<PlainChunk> {
    if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
        return None;
    }
    // Usage anywhere, even nested where it is not the chunk's own (Groq's `x_groq.usage`), is for
    // the parse to read.
    if values(&USAGE, json).any(|at| !json[at..].starts_with(b"null")) {
        return None;
    }
    // An error object (OpenRouter sends one beside choices mid-stream) is for the parse to see.
    if values(&ERROR, json).next().is_some() {
        return None;
    }
    let mut arrays = values(&CHOICES, json);
    let at = arrays.next()?;
    if arrays.next().is_some() {
        return None;
    }
    let array = json[at..].strip_prefix(b"[")?;
    Some(PlainChunk {
        has_choices: !skip_ws(array).starts_with(b"]"),
    })
}

/// Whether a chunk holds one `delta` object and one `role` string, inside the delta before any
/// nested object: the first chunk of one answer, as OpenAI writes it. `false` means "parse to know", not "no role".
pub(crate) fn one_delta_with_role(json: &[u8]) -> bool {
    let mut deltas = values(&DELTA, json);
    let (Some(delta), None) = (deltas.next(), deltas.next()) else {
        return false;
    };
    let mut roles = values(&ROLE, json);
    let (Some(role), None) = (roles.next(), roles.next()) else {
        return false;
    };
    // No brace between the delta's opening and the role: the role is the delta's own.
    json[delta..].starts_with(b"{")
        && role > delta
        && !json[delta + 1..role]
            .iter()
            .any(|b| matches!(b, b'{' | b'}'))
        && json[role..].starts_with(b"\"")
}

/// See [`plain_chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlainChunk {
    pub has_choices: bool,
}

/// The offset of each value that follows `"key":`. Inside a JSON string every `"` is escaped,
/// so a quoted name followed by a colon is a key, never text.
pub(crate) fn values<'a>(
    key: &'a Finder<'static>,
    json: &'a [u8],
) -> impl Iterator<Item = usize> + 'a {
    key.find_iter(json).filter_map(move |at| {
        let rest = skip_ws(&json[at + key.needle().len()..]);
        let value = skip_ws(rest.strip_prefix(b":")?);
        Some(json.len() - value.len())
    })
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
            br#"{"choices":[],"x_groq":{"usage":{"prompt_tokens":1,"total_tokens":1}}}"#,
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

    #[test]
    fn a_role_is_seen_only_in_the_one_delta() {
        assert!(one_delta_with_role(
            br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#
        ));
        for json in [
            &br#"{"choices":[{"index":0,"delta":{"content":"role"}}]}"#[..],
            br#"{"choices":[{"index":0,"delta":{"content":""}}],"x":{"role":"a"}}"#,
            br#"{"x":{"role":"a"},"choices":[{"index":0,"delta":{"content":""}}]}"#,
            br#"{"choices":[{"delta":{"role":"assistant"}},{"delta":{"content":"b"}}]}"#,
            br#"{"choices":[{"delta":{"role":null}}]}"#,
            br#"{"choices":[{"delta":null,"role":"assistant"}]}"#,
            br#"{"choices":[{"delta":{"x":{"role":"a"}}}]}"#,
        ] {
            assert!(
                !one_delta_with_role(json),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }
}
