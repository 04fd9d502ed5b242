//! What must hold of a document for a write to go ahead: `If-Match` and `If-None-Match` as
//! RFC 9110 compares them, strongly, against the document's version.

use super::Document;

/// What must hold of the current document for a write to go ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Precondition {
    #[default]
    None,
    /// `If-Match: *`: the document exists.
    Exists,
    /// `If-Match` with versions: the document has one of them.
    Version(Vec<u64>),
    /// `If-None-Match: *`: the document does not exist.
    Absent,
}

impl Precondition {
    /// From `If-Match` and `If-None-Match` header values. Weak tags never match, as RFC 9110's
    /// strong comparison requires; a tag that is not one of ours matches nothing.
    pub fn from_headers(if_match: Option<&str>, if_none_match: Option<&str>) -> Precondition {
        if let Some(tags) = if_match {
            if tags.trim() == "*" {
                return Precondition::Exists;
            }
            let versions = tags
                .split(',')
                .filter_map(|tag| {
                    tag.trim()
                        .strip_prefix('"')?
                        .strip_suffix('"')?
                        .parse()
                        .ok()
                })
                .collect();
            return Precondition::Version(versions);
        }
        match if_none_match {
            Some(tags) if tags.trim() == "*" => Precondition::Absent,
            _ => Precondition::None,
        }
    }

    pub(super) fn holds(&self, current: Option<&Document>) -> bool {
        match (self, current) {
            (Precondition::None, _) => true,
            (Precondition::Exists, current) => current.is_some(),
            (Precondition::Version(versions), Some(doc)) => versions.contains(&doc.version),
            (Precondition::Version(_), None) => false,
            (Precondition::Absent, current) => current.is_none(),
        }
    }
}
