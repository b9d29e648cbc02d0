//! Writing output files without ever overwriting one silently.
//!
//! An existing file is replaced only with `--force`; otherwise the command stops with exit 2
//! naming the file ([`Error::Exists`]). A new file is created with `create_new`, so a file
//! that appears between the check and the write is not clobbered either. Where a command picks
//! the path itself ([`free_path`]), a taken name gets a numeric suffix.

use crate::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path`: a new file, or (with `force`) a replaced one.
pub fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<(), Error> {
    let write_err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = if force {
        std::fs::File::create(path).map_err(write_err)?
    } else {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(write_err(e)),
        }
    };
    file.write_all(bytes).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// Fails with [`Error::Exists`] if `path` exists and `force` is not set: checked before a long
/// computation, so that it does not run only to be refused at the end.
pub fn check_free(path: &Path, force: bool) -> Result<(), Error> {
    if !force && path.symlink_metadata().is_ok() {
        return Err(Error::Exists {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// `dir/STEM.EXT`, or the first free `dir/STEM-1.EXT`, `dir/STEM-2.EXT`, ….
pub fn free_path(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    let first = dir.join(format!("{stem}.{ext}"));
    if first.symlink_metadata().is_err() {
        return first;
    }
    (1u64..)
        .map(|i| dir.join(format!("{stem}-{i}.{ext}")))
        .find(|p| p.symlink_metadata().is_err())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_overwrites_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_new(&p, b"one", false).unwrap();
        let e = write_new(&p, b"two", false).unwrap_err();
        assert!(matches!(e, Error::Exists { .. }), "{e}");
        assert!(e.to_string().contains("a.json"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert!(check_free(&p, false).is_err());
        check_free(&p, true).unwrap();
        write_new(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }

    #[test]
    fn free_paths_get_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let p = free_path(dir.path(), "m.params", "json");
        assert_eq!(p, dir.path().join("m.params.json"));
        std::fs::write(&p, "").unwrap();
        let q = free_path(dir.path(), "m.params", "json");
        assert_eq!(q, dir.path().join("m.params-1.json"));
        std::fs::write(&q, "").unwrap();
        assert_eq!(
            free_path(dir.path(), "m.params", "json"),
            dir.path().join("m.params-2.json")
        );
    }
}
