//! The pre-tokenizer of `o200k_base`: a text cut into the pieces BPE merges within, exactly as
//! tiktoken's pattern cuts it, in linear time and with no automaton to build.
//!
//! tiktoken's pattern, whose branches are tried in order at each position (leftmost-first):
//!
//! ```text
//! 1  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//! 2  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//! 3  \p{N}{1,3}
//! 4   ?[^\s\p{L}\p{N}]+[\r\n/]*
//! 5  \s*[\r\n]+
//! 6  \s+(?!\S)|\s+
//! ```
//!
//! Its look-ahead needs a backtracking engine, which overflowed the stack on a long run of
//! spaces; the `regex` crate, without it, took 13 MiB to compile the Unicode classes. Each branch
//! is simple enough to match by hand over the characters' general categories, backtracking only
//! where the pattern would (see each function); tests check the cuts against tiktoken's.

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

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
        let rest = self.text.get(self.at..).filter(|r| !r.is_empty())?;
        let length = letters_then_lower(rest)
            .or_else(|| upper_then_letters(rest))
            .or_else(|| digits(rest))
            .or_else(|| punctuation(rest))
            .or_else(|| line_breaks(rest))
            .unwrap_or_else(|| spaces(rest));
        // Every branch matches at least one character; `spaces` takes whatever is left.
        let length = length.max(rest.chars().next().map_or(1, char::len_utf8));
        let piece = &rest[..length];
        self.at += length;
        Some(piece)
    }
}

/// `\p{L}`.
fn letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    c.general_category_group() == GeneralCategoryGroup::Letter
}

/// `\p{N}`.
fn number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    c.general_category_group() == GeneralCategoryGroup::Number
}

/// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`: letters that may start a word, and marks.
fn upper(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    use GeneralCategory::*;
    matches!(
        c.general_category(),
        UppercaseLetter | TitlecaseLetter | ModifierLetter | OtherLetter
    ) || c.general_category_group() == GeneralCategoryGroup::Mark
}

/// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`: letters that may continue a word, and marks.
fn lower(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_lowercase();
    }
    use GeneralCategory::*;
    matches!(
        c.general_category(),
        LowercaseLetter | ModifierLetter | OtherLetter
    ) || c.general_category_group() == GeneralCategoryGroup::Mark
}

/// `[^\r\n\p{L}\p{N}]`: the one character that may lead a word (a space, a quote, a mark...).
fn leader(c: char) -> bool {
    c != '\r' && c != '\n' && !letter(c) && !number(c)
}

fn line_break(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Bytes of the longest prefix of `text` whose characters all satisfy `class`.
fn run(text: &str, class: impl Fn(char) -> bool) -> usize {
    text.char_indices()
        .find(|&(_, c)| !class(c))
        .map_or(text.len(), |(i, _)| i)
}

/// Bytes the optional leading character takes: the pattern tries with it first, then without.
fn leads(text: &str) -> [Option<usize>; 2] {
    let first = text.chars().next().filter(|&c| leader(c));
    [first.map(char::len_utf8), Some(0)]
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)?`: bytes of the contraction at the start of `text`, if any.
/// Case-insensitive as Unicode folds case: `ſ` (long s) is an `s`.
fn contraction(text: &str) -> usize {
    let mut chars = text.chars();
    if chars.next() != Some('\'') {
        return 0;
    }
    let folded = |c: Option<char>| {
        c.map(|c| {
            if c == 'ſ' {
                's'
            } else {
                c.to_ascii_lowercase()
            }
        })
    };
    let (first, second) = (chars.next(), chars.next());
    match (folded(first), folded(second)) {
        (Some('r' | 'v'), Some('e')) | (Some('l'), Some('l')) => 3,
        (Some('s' | 't' | 'm' | 'd'), _) => 1 + first.map_or(0, char::len_utf8),
        _ => 0,
    }
}

/// Branch 1: `lead? upper* lower+ contraction?`. `upper*` is greedy and gives characters back
/// one at a time until `lower+` can start (a character may be in both classes); `lower+` then
/// takes its whole run, as nothing after it can fail.
fn letters_then_lower(text: &str) -> Option<usize> {
    for lead in leads(text).into_iter().flatten() {
        let start = &text[lead..];
        let uppers = run(start, upper);
        // Where `lower+` may begin: the end of the upper run, then each character before it.
        let ends =
            std::iter::once(uppers).chain(start[..uppers].char_indices().rev().map(|(i, _)| i));
        for at in ends {
            let lowers = run(&start[at..], lower);
            if lowers > 0 {
                let end = lead + at + lowers;
                return Some(end + contraction(&text[end..]));
            }
        }
    }
    None
}

/// Branch 2: `lead? upper+ lower* contraction?`: both runs greedy, nothing to give back.
fn upper_then_letters(text: &str) -> Option<usize> {
    for lead in leads(text).into_iter().flatten() {
        let start = &text[lead..];
        let uppers = run(start, upper);
        if uppers > 0 {
            let end = lead + uppers + run(&start[uppers..], lower);
            return Some(end + contraction(&text[end..]));
        }
    }
    None
}

/// Branch 3: `\p{N}{1,3}`.
fn digits(text: &str) -> Option<usize> {
    let end = text
        .char_indices()
        .take_while(|&(_, c)| number(c))
        .take(3)
        .last()
        .map(|(i, c)| i + c.len_utf8())?;
    Some(end)
}

/// Branch 4: ` ?[^\s\p{L}\p{N}]+[\r\n/]*`: both runs greedy; the trailing class only adds.
fn punctuation(text: &str) -> Option<usize> {
    let symbol = |c: char| !c.is_whitespace() && !letter(c) && !number(c);
    let space = usize::from(text.starts_with(' '));
    for lead in [space, 0] {
        let symbols = run(&text[lead..], symbol);
        if symbols > 0 {
            let end = lead + symbols;
            return Some(end + run(&text[end..], |c| line_break(c) || c == '/'));
        }
        if space == 0 {
            break;
        }
    }
    None
}

/// Branch 5: `\s*[\r\n]+`: the whitespace run up to and including its last line break (the
/// `\s*` gives back until a line break follows, and the break is the run's last).
fn line_breaks(text: &str) -> Option<usize> {
    let spaces = run(text, char::is_whitespace);
    text[..spaces]
        .char_indices()
        .rev()
        .find(|&(_, c)| line_break(c))
        .map(|(i, c)| i + c.len_utf8())
}

/// Branch 6: `\s+(?!\S)|\s+`: the whitespace run, less its last character when a non-space
/// follows and the run is longer than that character (" word" keeps its space).
fn spaces(text: &str) -> usize {
    let spaces = run(text, char::is_whitespace);
    let Some((last, _)) = text[..spaces].char_indices().next_back() else {
        return 0;
    };
    if spaces < text.len() && last > 0 {
        last
    } else {
        spaces
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
        assert_eq!(split("HTTPServer"), ["HTTPServer"]);
        assert_eq!(split("x//\n/y"), ["x", "//\n/", "y"]);
    }

    #[test]
    fn a_long_run_of_spaces_is_one_piece() {
        let text = " ".repeat(1_000_000);
        assert_eq!(split(&text), [text.as_str()]);
        let text = format!("{}x", " ".repeat(1_000_000));
        assert_eq!(split(&text).len(), 2);
    }
}
