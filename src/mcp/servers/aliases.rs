//! A URI two servers both list: the first configured keeps it, and each other server's copy is
//! offered as `switchboard://{server}/{the URI, percent-encoded}`, which leads back to it.
//!
//! The rewrite is reversible without any table, so any replica reads or subscribes by it.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rmcp::model::ResourceContents;

/// What an alias starts with.
const SCHEME: &str = "switchboard://";

/// Everything but RFC 3986's unreserved characters: the whole URI is one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The alias of `server`'s copy of `uri`.
pub fn alias(server: &str, uri: &str) -> String {
    format!("{SCHEME}{server}/{}", utf8_percent_encode(uri, SEGMENT))
}

/// The server and its own URI an alias names; `None` for any other URI.
pub fn unalias(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix(SCHEME)?;
    let (server, encoded) = rest.split_once('/')?;
    let original = percent_decode_str(encoded).decode_utf8().ok()?;
    (!server.is_empty() && !original.is_empty()).then(|| (server.to_owned(), original.into_owned()))
}

/// The URI a key's `resources:` globs are checked against: a server's own, alias or not.
pub fn original(uri: &str) -> Cow<'_, str> {
    match unalias(uri) {
        Some((_, original)) => Cow::Owned(original),
        None => Cow::Borrowed(uri),
    }
}

/// `contents` read at the server for `original`, named by the alias the client asked for.
pub fn rename(contents: &mut [ResourceContents], original: &str, alias: &str) {
    for content in contents {
        let uri = match content {
            ResourceContents::TextResourceContents { uri, .. }
            | ResourceContents::BlobResourceContents { uri, .. } => uri,
            _ => continue,
        };
        if uri == original {
            *uri = alias.to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_leads_back_to_its_server_and_uri() {
        let uri = "fake://notes/read me?x=1#top";
        let alias = alias("local", uri);
        assert_eq!(
            alias,
            "switchboard://local/fake%3A%2F%2Fnotes%2Fread%20me%3Fx%3D1%23top"
        );
        assert_eq!(unalias(&alias), Some(("local".to_owned(), uri.to_owned())));
        assert_eq!(original(&alias), uri);
        assert_eq!(original("fake://notes/readme"), "fake://notes/readme");
        for other in [
            "fake://x",
            "switchboard://",
            "switchboard://local",
            "switchboard:///x",
        ] {
            assert_eq!(unalias(other), None, "{other}");
        }
    }
}
