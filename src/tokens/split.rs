//! The pre-tokenizer of `o200k_base`: a text cut into the pieces BPE merges within, exactly as
//! tiktoken's pattern cuts it, in linear time.
//!
//! tiktoken's pattern has one look-ahead, `\s+(?!\S)`, which needs a backtracking engine; on a
//! long run of spaces that engine overflows the stack. Here the pattern runs on the `regex`
//! crate without it, and the look-ahead is applied to each match afterwards (see [`Pieces`]).

use std::sync::LazyLock;

use regex::Regex;

/// tiktoken's `O200K_BASE_PAT_STR` with `\s+(?!\S)|\s+` folded into `\s+`.
const PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+",
);

static REGEX: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern, covered by the tests below: it compiles or nothing works.
    #[allow(clippy::expect_used)]
    Regex::new(PATTERN).expect("the o200k pattern compiles")
});

/// Compiles the pattern ahead of the first request.
pub fn warm_up() {
    LazyLock::force(&REGEX);
}

/// The pieces of `text`, in order; together they are the whole text.
pub fn pieces(text: &str) -> Pieces<'_> {
    Pieces { text, at: 0 }
}

/// An iterator over the pieces of a text.
pub struct Pieces<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        // Every character is matched by some branch, so matches follow each other without gaps.
        let found = REGEX.find_at(self.text, self.at)?;
        let mut end = found.end();
        // Only the `\s+` branch ends on whitespace other than a line break. tiktoken's
        // `\s+(?!\S)` comes first there: before a non-space it leaves the run's last character
        // to start the next piece (" word"), unless the run is that one character.
        if let Some((last, c)) = found.as_str().char_indices().next_back()
            && c.is_whitespace()
            && c != '\r'
            && c != '\n'
            && last > 0
            && self.text[end..]
                .chars()
                .next()
                .is_some_and(|n| !n.is_whitespace())
        {
            end = found.start() + last;
        }
        self.at = end;
        Some(&self.text[found.start()..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        pieces(text).collect()
    }

    #[test]
    fn cuts_like_tiktoken() {
        assert_eq!(split("hello world"), ["hello", " world"]);
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("a \tb"), ["a", " ", "\tb"]);
        assert_eq!(split("x   "), ["x", "   "]);
        assert_eq!(split("1234567"), ["123", "456", "7"]);
        assert_eq!(split("it's"), ["it's"]);
        assert_eq!(split("a\n\n  b"), ["a", "\n\n", " ", " b"]);
        assert_eq!(split("a !? b"), ["a", " !?", " b"]);
    }

    #[test]
    fn a_long_run_of_spaces_is_one_piece_and_no_recursion() {
        let text = " ".repeat(1_000_000);
        assert_eq!(split(&text), [text.as_str()]);
        let text = format!("{}x", " ".repeat(1_000_000));
        assert_eq!(split(&text).len(), 2);
    }
}
