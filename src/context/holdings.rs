//! What each key holds in the context store, documents and bytes, against the key's
//! `limits.context_documents` and `limits.context_bytes`.
//!
//! The key that last wrote a document holds it: overwriting another key's document moves it
//! to the writer. Counts live beside the writer lock, so a check and its write are one step.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ContextError, Document};

/// A writer's name and bounds; `name` is `None` on a gateway without keys, which bounds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Author<'a> {
    pub name: Option<&'a str>,
    pub max_documents: Option<u64>,
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Held {
    documents: u64,
    bytes: u64,
}

/// Documents and bytes held, per key name.
#[derive(Debug, Default)]
pub struct Holdings {
    by_key: HashMap<Arc<str>, Held>,
}

impl Holdings {
    /// Refuses a write of `size` bytes by `author` over `current` that would take the author
    /// past a bound.
    pub fn check(
        &self,
        author: &Author<'_>,
        current: Option<&Document>,
        size: usize,
    ) -> Result<(), ContextError> {
        let Some(name) = author.name else {
            return Ok(());
        };
        let held = self.by_key.get(name).copied().unwrap_or_default();
        let replaced = current.filter(|d| d.owner.as_deref() == Some(name));
        let documents = held.documents + u64::from(replaced.is_none());
        let bytes = held
            .bytes
            .saturating_sub(replaced.map_or(0, |d| d.json.len() as u64))
            + size as u64;
        if let Some(limit) = author.max_documents.filter(|&l| documents > l) {
            return Err(ContextError::TooManyDocuments { limit });
        }
        if let Some(limit) = author.max_bytes.filter(|&l| bytes > l) {
            return Err(ContextError::OverBytes { limit });
        }
        Ok(())
    }

    /// Counts a document for its owner.
    pub fn add(&mut self, document: &Document) {
        if let Some(owner) = &document.owner {
            let held = self.by_key.entry(owner.clone()).or_default();
            held.documents += 1;
            held.bytes += document.json.len() as u64;
        }
    }

    /// Stops counting a document replaced or removed.
    pub fn remove(&mut self, document: &Document) {
        if let Some(owner) = &document.owner
            && let Some(held) = self.by_key.get_mut(owner)
        {
            held.documents = held.documents.saturating_sub(1);
            held.bytes = held.bytes.saturating_sub(document.json.len() as u64);
            if held.documents == 0 {
                self.by_key.remove(owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(owner: &str, json: &str) -> Document {
        Document {
            json: Arc::from(json),
            version: 1,
            expires_ms: None,
            owner: Some(Arc::from(owner)),
        }
    }

    #[test]
    fn a_key_is_bounded_by_what_it_holds_and_replacing_its_own_adds_no_document() {
        let author = Author {
            name: Some("a"),
            max_documents: Some(2),
            max_bytes: Some(10),
        };
        let mut holdings = Holdings::default();
        let first = document("a", "12345");
        holdings.add(&first);
        holdings.add(&document("a", "1"));
        assert!(matches!(
            holdings.check(&author, None, 1),
            Err(ContextError::TooManyDocuments { limit: 2 })
        ));
        // Replacing its own document: 6 - 5 + 9 = 10 bytes, at the bound.
        assert!(holdings.check(&author, Some(&first), 9).is_ok());
        assert!(matches!(
            holdings.check(&author, Some(&first), 10),
            Err(ContextError::OverBytes { limit: 10 })
        ));
        // Taking over another key's document counts as a new one.
        assert!(
            holdings
                .check(&author, Some(&document("b", "1")), 1)
                .is_err()
        );
        holdings.remove(&first);
        assert!(holdings.check(&author, None, 9).is_ok());
        // No key, no bound.
        assert!(holdings.check(&Author::default(), None, 1 << 30).is_ok());
    }
}
