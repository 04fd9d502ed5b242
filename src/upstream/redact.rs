//! Credentials taken out of error text: a provider may echo a key back, whole or masked, and
//! nothing the gateway answers or logs may carry it.

use crate::error::ApiError;

/// Replaces every secret in every text field of an error.
pub fn redact(mut error: ApiError, secrets: &[String]) -> ApiError {
    for secret in secrets {
        for text in [
            Some(&mut error.message),
            Some(&mut error.kind),
            error.param.as_mut(),
            error.code.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            redact_text(text, secret);
        }
    }
    error
}

/// How much of a long secret identifies it when a provider echoes it masked, as OpenAI does
/// (`Incorrect API key provided: sk-proj-********abcd`).
const ECHOED_PREFIX: usize = 8;

const REDACTED: &str = "<redacted>";

/// Takes `secret` out of `text`, whole or masked: a word that hides part of it behind `*`, `...`
/// or `…` but shows only its beginning and end (`sk-****1Vwx`, `sk-tes...3456`, `****1Vwx`), and,
/// for a secret shaped like an API key, any word that starts with its first characters
/// (`sk-proj-…`). Other secrets (URLs, `Bearer …` header values) are not matched by prefix, as
/// their first characters would match ordinary words.
fn redact_text(text: &mut String, secret: &str) {
    if secret.is_empty() {
        return;
    }
    if text.contains(secret) {
        *text = text.replace(secret, REDACTED);
    }
    let key_like = secret.len() >= 2 * ECHOED_PREFIX
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let prefix = secret.get(..ECHOED_PREFIX).filter(|_| key_like);
    // Forward only: what was put in is never searched again.
    let mut from = 0;
    while let Some((start, end)) = next_word(text, from) {
        let word = &text[start..end];
        let put_in = text[..start].ends_with('<') && text[end..].starts_with('>');
        let hit = prefix.is_some_and(|p| word.starts_with(p)) || masks(word, secret);
        if hit && !put_in {
            text.replace_range(start..end, REDACTED);
            from = start + REDACTED.len();
        } else {
            from = end;
        }
    }
}

/// The next run of characters a key or its mask is written with, from `from`; a `.` ending it
/// ends the sentence, unless it is part of an ellipsis.
fn next_word(text: &str, from: usize) -> Option<(usize, usize)> {
    let in_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '…');
    let start = from + text[from..].find(in_word)?;
    let end = text[start..]
        .find(|c: char| !in_word(c))
        .map_or(text.len(), |n| start + n);
    let word = &text[start..end];
    let end = if word.ends_with('.') && !word.ends_with("...") {
        end - 1
    } else {
        end
    };
    Some((start, end.max(start + 1)))
}

/// Whether `word` is `secret` with its middle masked: what shows before the mask begins it, what
/// shows after ends it, and at least four of its characters show.
fn masks(word: &str, secret: &str) -> bool {
    let is_mask = |c: char| matches!(c, '*' | '…');
    let word = word.replace("...", "…");
    let (Some(first), Some(last)) = (word.find(is_mask), word.rfind(is_mask)) else {
        return false;
    };
    let head = &word[..first];
    let tail = &word[last + word[last..].chars().next().map_or(1, char::len_utf8)..];
    tail.len() >= 2
        && head.len() + tail.len() >= 4
        && head.len() + tail.len() < secret.len()
        && secret.starts_with(head)
        && secret.ends_with(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_echo_of_a_long_secret_is_taken_out_too() {
        let secret = "sk-upstream-0123456789abcdef7d6c".to_owned();
        let error = ApiError::bad_gateway(
            "Incorrect API key provided: sk-upstr***************7d6c. You can find your API key \
             at https://platform.openai.com; or 'sk-upstream-01...', or sk-upstream-0123456789abcdef7d6c",
        );
        let message = redact(error, std::slice::from_ref(&secret)).message;
        assert_eq!(
            message,
            "Incorrect API key provided: <redacted>. You can find your API key at \
             https://platform.openai.com; or '<redacted>', or <redacted>",
            "the sentence keeps its full stop"
        );
        // Masks that show less of the beginning, or only the end.
        let secret = "sk-proj-Abc123def456ghi789jkl1Vwx".to_owned();
        let message = redact(
            ApiError::bad_gateway(
                "a sk-****1Vwx b sk-pro****1Vwx c sk-*****…1Vwx d ****1Vwx e [sk-proj-…901****] \
                 f sk-tes...3456 g ****9999 h sk-other-key",
            ),
            std::slice::from_ref(&secret),
        )
        .message;
        assert_eq!(
            message,
            "a <redacted> b <redacted> c <redacted> d <redacted> e [<redacted>] \
             f sk-tes...3456 g ****9999 h sk-other-key"
        );
        // A short secret is caught masked too.
        let message = redact(
            ApiError::bad_gateway("key sk-****etC or sk-secretC."),
            &["sk-secretC".to_owned()],
        )
        .message;
        assert_eq!(message, "key <redacted> or <redacted>.");
        let short = redact(
            ApiError::bad_gateway("the key abc123 and abc1234"),
            &["abc123".to_owned()],
        )
        .message;
        assert_eq!(
            short, "the key <redacted> and <redacted>4",
            "short keys: whole matches only"
        );
        // What is put in is never searched again, even when the key begins like it.
        let odd = "redacted-0123456789abcdef".to_owned();
        let message = redact(
            ApiError::bad_gateway("bad key redacted-01**** and redacted-0123456789abcdef"),
            std::slice::from_ref(&odd),
        )
        .message;
        assert_eq!(message, "bad key <redacted> and <redacted>");
        // A secret that is not key-shaped (a URL header) is matched whole only.
        let url = "https://myapp.example/path".to_owned();
        let message = redact(
            ApiError::bad_gateway("see https://docs.example and https://myapp.example/path"),
            std::slice::from_ref(&url),
        )
        .message;
        assert_eq!(message, "see https://docs.example and <redacted>");
    }
}
