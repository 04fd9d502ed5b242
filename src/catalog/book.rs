//! What the catalog keeps beside the config: subscriptions keys asked for with their
//! decisions, and lifecycle changes an admin made, each recording who and when.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::config::Status;

/// A key's request for access to one catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: u64,
    /// The name of the key asking.
    pub key: String,
    /// `model:NAME` or `tool:NAME`.
    pub entry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub status: Decision,
    /// Unix seconds.
    pub requested_at: u64,
    /// The key name of whoever decided (`admin` for the admin key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<u64>,
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Pending,
    Approved,
    Rejected,
}

impl Decision {
    pub fn name(self) -> &'static str {
        match self {
            Decision::Pending => "pending",
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }
}

/// An entry's lifecycle as an admin set it at run time, over what the config says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<String>,
    pub by: String,
    /// Unix seconds.
    pub at: u64,
}

/// Every subscription and change, with the approved pairs indexed for the request path.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Book {
    #[serde(default)]
    pub subscriptions: BTreeMap<u64, Subscription>,
    #[serde(default)]
    pub changes: BTreeMap<String, Change>,
    /// `(key, entry)` of every approved subscription.
    #[serde(skip)]
    approved: HashSet<(String, String)>,
    /// The shared book's version when it was read (Redis only).
    #[serde(skip)]
    pub version: u64,
}

impl Book {
    /// A book of these records, indexed.
    pub fn of(
        subscriptions: impl IntoIterator<Item = Subscription>,
        changes: impl IntoIterator<Item = (String, Change)>,
    ) -> Book {
        let mut book = Book {
            subscriptions: subscriptions.into_iter().map(|s| (s.id, s)).collect(),
            changes: changes.into_iter().collect(),
            approved: HashSet::new(),
            version: 0,
        };
        book.index();
        book
    }

    /// Rebuilds the index after the records changed or were read.
    pub fn index(&mut self) {
        self.approved = self
            .subscriptions
            .values()
            .filter(|s| s.status == Decision::Approved)
            .map(|s| (s.key.clone(), s.entry.clone()))
            .collect();
    }

    pub fn approved(&self, key: &str, entry: &str) -> bool {
        // Built only for a key that has any; the common case is an empty set.
        !self.approved.is_empty() && self.approved.contains(&(key.to_owned(), entry.to_owned()))
    }

    /// The open (pending) request of `key` for `entry`, if any.
    pub fn open_request(&self, key: &str, entry: &str) -> Option<&Subscription> {
        self.subscriptions
            .values()
            .find(|s| s.key == key && s.entry == entry && s.status == Decision::Pending)
    }

    pub fn pending_of(&self, key: &str) -> usize {
        self.subscriptions
            .values()
            .filter(|s| s.key == key && s.status == Decision::Pending)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(id: u64, key: &str, entry: &str, status: Decision) -> Subscription {
        Subscription {
            id,
            key: key.into(),
            entry: entry.into(),
            note: None,
            status,
            requested_at: 1,
            decided_by: None,
            decided_at: None,
        }
    }

    #[test]
    fn only_approved_subscriptions_grant_access_and_survive_a_round_trip() {
        let book = Book::of(
            [
                subscription(1, "dev", "model:premium", Decision::Approved),
                subscription(2, "dev", "tool:deploy", Decision::Pending),
                subscription(3, "ops", "model:premium", Decision::Rejected),
            ],
            [],
        );
        assert!(book.approved("dev", "model:premium"));
        assert!(!book.approved("dev", "tool:deploy"));
        assert!(!book.approved("ops", "model:premium"));
        assert_eq!(
            book.open_request("dev", "tool:deploy").map(|s| s.id),
            Some(2)
        );
        let mut read: Book = serde_json::from_str(&serde_json::to_string(&book).unwrap()).unwrap();
        read.index();
        assert!(read.approved("dev", "model:premium"));
        assert_eq!(read.pending_of("dev"), 1);
    }
}
