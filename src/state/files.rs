//! Crash-safe files: a write goes to a temporary file, is synced and renamed into place, and the
//! directory is synced, so a crash leaves the old content or the new one, never a torn one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::{StateError, io};

/// Replaces `path` with `bytes`, durably.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let mut file = File::create(temporary).map_err(io(temporary))?;
    file.write_all(bytes).map_err(io(temporary))?;
    file.sync_all().map_err(io(temporary))?;
    std::fs::rename(temporary, path).map_err(io(path))?;
    sync_parent(path)
}

/// Removes `path`, durably; a file already gone is no error.
pub fn remove_durably(path: &Path) -> Result<(), StateError> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// A rename or removal is durable only once the directory is.
fn sync_parent(path: &Path) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("switchboard-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("doc.json");
        write_durably(&path, b"one").unwrap();
        write_durably(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!dir.join("doc.json.tmp").exists());
        remove_durably(&path).unwrap();
        remove_durably(&path).unwrap();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
