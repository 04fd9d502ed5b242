//! The context store's files: `state.data_dir/context/<sha256 of namespace and key>.json`, one
//! document per file, each written durably through `state` (temporary file, sync, rename).
//!
//! A rename is atomic, so a crash mid-write leaves the old document or the new one, never a torn
//! one. A file per document keeps each write as small as its document and needs no compaction.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::state::{self, StateError, io};

/// What one file holds.
#[derive(Serialize, Deserialize)]
pub struct Stored {
    pub namespace: String,
    pub key: String,
    pub version: u64,
    /// Unix milliseconds after which the document is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    /// The key that wrote it, held against its bounds; absent in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub value: Box<RawValue>,
}

/// The directory's lock: two gateways writing one store would each overwrite the other's view.
pub fn claim(dir: &Path) -> Result<File, StateError> {
    state::claim(dir, "context.lock")
}

/// Every document in `dir`; leftover temporary files of an interrupted write are removed.
pub fn load(dir: &Path) -> Result<Vec<Stored>, StateError> {
    let mut documents = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                let stored =
                    serde_json::from_slice(&bytes).map_err(|cause| StateError::Corrupt {
                        path,
                        what: "a context document",
                        cause,
                    })?;
                documents.push(stored);
            }
            Some("tmp") => std::fs::remove_file(&path).map_err(io(&path))?,
            _ => {}
        }
    }
    Ok(documents)
}

/// The file of a document. Hashing the names keeps every name a safe, short file name.
pub fn file_of(dir: &Path, namespace: &str, key: &str) -> PathBuf {
    let mut id = Vec::with_capacity(namespace.len() + key.len() + 1);
    id.extend_from_slice(namespace.as_bytes());
    id.push(0);
    id.extend_from_slice(key.as_bytes());
    let name = crate::digest::sha256_hex(&id);
    dir.join(format!("{name}.json"))
}

/// Replaces a document's file with `stored`, durably.
pub fn write(dir: &Path, stored: &Stored) -> Result<(), StateError> {
    let path = file_of(dir, &stored.namespace, &stored.key);
    let bytes = serde_json::to_vec(stored).map_err(|cause| StateError::Corrupt {
        path: path.clone(),
        what: "a context document",
        cause,
    })?;
    state::write_durably(&path, &bytes)
}

/// Removes a document's file, durably; a file already gone is no error.
pub fn remove(dir: &Path, namespace: &str, key: &str) -> Result<(), StateError> {
    state::remove_durably(&file_of(dir, namespace, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchboard-context-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn stored(key: &str, value: &str) -> Stored {
        Stored {
            namespace: "ns".into(),
            key: key.into(),
            version: 7,
            expires_ms: None,
            owner: None,
            value: RawValue::from_string(value.into()).unwrap(),
        }
    }

    #[test]
    fn documents_round_trip_and_interrupted_writes_leave_the_old_one() {
        let dir = temp_dir("roundtrip");
        let _lock = claim(&dir).unwrap();
        write(&dir, &stored("a", r#"{"n":1}"#)).unwrap();
        // A crash after writing the temporary file but before the rename.
        let path = file_of(&dir, "ns", "a");
        std::fs::write(
            path.with_extension("tmp"),
            br#"{"namespace":"ns","key":"a","ver"#,
        )
        .unwrap();
        let loaded = load(&dir).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].value.get(), r#"{"n":1}"#);
        assert!(!path.with_extension("tmp").exists(), "leftover removed");
        remove(&dir, "ns", "a").unwrap();
        remove(&dir, "ns", "a").unwrap();
        assert!(load(&dir).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_directory_serves_one_gateway_and_names_never_escape_it() {
        let dir = temp_dir("lock");
        let first = claim(&dir).unwrap();
        assert!(matches!(claim(&dir), Err(StateError::Locked { .. })));
        drop(first);
        assert!(claim(&dir).is_ok());
        let file = file_of(&dir, "../..", "../../etc/passwd");
        assert_eq!(file.parent(), Some(dir.as_path()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
