//! Writing output files atomically, and never overwriting one silently.
//!
//! * Every output goes to a temporary file in the target's folder (`.NAME.XXXXXX.tmp`), is
//!   synced, and is then renamed onto the target: without `--force` with no clobbering (an
//!   [`Error::Exists`] if the target appeared meanwhile), with `--force` replacing it. A
//!   failure at any point (a full disk, a file-size limit) removes the temporary file, so no
//!   truncated output is ever left behind, and two writers to one path leave one whole file.
//! * With `--force` an existing symlink is followed (the file it points to is replaced and
//!   the link stays a link), and a replaced file keeps its permissions.
//! * An existing target that is not a regular file (`/dev/null`, a FIFO, a terminal) cannot
//!   be renamed onto: with `--force` it is written directly, without it refused as any
//!   existing file is.
//! * Commands [`probe`] their outputs before any work: each folder must exist and take a new
//!   file, an existing target needs `--force`, and two outputs may not name the same file.
//! * Where a command picks the path itself ([`write_default`]), a taken name gets a numeric
//!   suffix — also a name another process takes between the check and the write.

use crate::Error;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The folder a file `path` goes in (`.` for a bare name).
fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An existing target that is not a regular file or a folder (a device, a FIFO): written
/// directly with `--force`.
fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// A new temporary file in `dir` for the output `path`, readable as a file created with
/// `File::create` would be (`0666` less the umask; tempfile's default is `0600`).
fn temp_in(dir: &Path, path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{name}.");
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir).map_err(without_temp_path)
}

/// tempfile appends ` at path "DIR/.NAME.XXXXXX.tmp"` to its errors; the user named the
/// output, not the temporary file, so messages keep only the system's reason.
fn without_temp_path(e: io::Error) -> io::Error {
    let text = e.to_string();
    match text.rfind(" at path ") {
        Some(i) => io::Error::new(e.kind(), text[..i].to_string()),
        None => e,
    }
}

/// The folder `dir` of the output `path` exists and is a folder.
fn check_folder(path: &Path, dir: &Path) -> Result<(), Error> {
    let folder_err = |source| Error::OutputFolder {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        source,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(folder_err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "it is not a folder",
        ))),
        Err(e) => Err(folder_err(e)),
    }
}

/// Checks, before any work, that the outputs `(flag, path)` can be written: an existing path
/// is refused without `force` ([`Error::Exists`]) and must not be a folder
/// ([`Error::IsFolder`]), each folder must exist and take a new file
/// ([`Error::OutputFolder`]: probed by creating and removing a temporary file), and no two
/// outputs may name the same file ([`Error::SameOutput`]).
pub fn probe(outputs: &[(&'static str, &Path)], force: bool) -> Result<(), Error> {
    let mut seen: Vec<(&'static str, PathBuf)> = Vec::new();
    for &(flag, path) in outputs {
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(Error::IsFolder {
                path: path.to_path_buf(),
            });
        }
        check_free(path, force)?;
        if !is_special(path) {
            probe_folder(path)?;
        }
        let dir = folder(path);
        // The same file: the same name in the same (canonical) folder, or the same target.
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| {
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            path.file_name().map_or(dir.clone(), |n| dir.join(n))
        });
        if let Some((first, _)) = seen.iter().find(|(_, k)| *k == key) {
            return Err(Error::SameOutput {
                first,
                second: flag,
                path: path.to_path_buf(),
            });
        }
        seen.push((flag, key));
    }
    Ok(())
}

/// Checks that the folder of `path` exists and takes a new file (by creating and removing a
/// temporary file there): [`Error::OutputFolder`] if not. Whether `path` itself exists is not
/// looked at (a default name moves on to a free one).
pub fn probe_folder(path: &Path) -> Result<(), Error> {
    let dir = folder(path);
    check_folder(path, &dir)?;
    temp_in(&dir, path).map_err(|source| Error::OutputFolder {
        path: path.to_path_buf(),
        dir,
        source,
    })?;
    Ok(())
}

/// Fails with [`Error::Exists`] if `path` exists and `force` is not set.
pub fn check_free(path: &Path, force: bool) -> Result<(), Error> {
    if !force && path.symlink_metadata().is_ok() {
        return Err(Error::Exists {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a new file, or (with `force`) a replaced one.
pub fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<(), Error> {
    write_with(path, force, |file, _| file.write_all(bytes))
}

/// Writes `path` atomically with `fill`, which gets the open file and its path (the
/// temporary file's, or the target's for a device written directly): a new file, or (with
/// `force`) a replaced one. On any error the temporary file is removed.
pub fn write_with(
    path: &Path,
    force: bool,
    fill: impl FnOnce(&mut File, &Path) -> io::Result<()>,
) -> Result<(), Error> {
    let write_err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if force && is_special(path) {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(write_err)?;
        fill(&mut file, path).map_err(write_err)?;
        return file.flush().map_err(write_err);
    }
    check_free(path, force)?;
    // With --force a symlink is followed, so the link stays a link (as `fmt` does).
    let resolved = match path.symlink_metadata() {
        Ok(m) if force && m.file_type().is_symlink() => std::fs::canonicalize(path).ok(),
        _ => None,
    };
    let path = resolved.as_deref().unwrap_or(path);
    let mut tmp = temp_in(&folder(path), path).map_err(write_err)?;
    if force && let Ok(m) = std::fs::metadata(path) {
        // A replaced file keeps its permissions.
        tmp.as_file()
            .set_permissions(m.permissions())
            .map_err(write_err)?;
    }
    let tmp_path = tmp.path().to_path_buf();
    fill(tmp.as_file_mut(), &tmp_path).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    let persisted = if force {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    persisted.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            Error::Exists {
                path: path.to_path_buf(),
            }
        } else {
            write_err(e.error)
        }
    })
}

/// The `i`-th candidate name: `dir/STEM.EXT`, then `dir/STEM-1.EXT`, `dir/STEM-2.EXT`, ….
fn candidate(dir: &Path, stem: &str, ext: &str, i: u64) -> PathBuf {
    if i == 0 {
        dir.join(format!("{stem}.{ext}"))
    } else {
        dir.join(format!("{stem}-{i}.{ext}"))
    }
}

/// `dir/STEM.EXT`, or the first free `dir/STEM-1.EXT`, `dir/STEM-2.EXT`, ….
pub fn free_path(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    (0u64..)
        .map(|i| candidate(dir, stem, ext, i))
        .find(|p| p.symlink_metadata().is_err())
        .unwrap_or_else(|| candidate(dir, stem, ext, 0))
}

/// Writes `bytes` atomically under the first free name of [`free_path`]; a name taken
/// between the check and the rename (another run picking the same default) moves on to the
/// next suffix. Returns the path written.
pub fn write_default(dir: &Path, stem: &str, ext: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
    write_default_from(free_path(dir, stem, ext), dir, stem, ext, bytes)
}

/// [`write_default`] trying `first` first (a name that may have been taken meanwhile).
fn write_default_from(
    first: PathBuf,
    dir: &Path,
    stem: &str,
    ext: &str,
    bytes: &[u8],
) -> Result<PathBuf, Error> {
    let write_err = |path: &Path, source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = temp_in(dir, &first).map_err(|e| write_err(&first, e))?;
    tmp.write_all(bytes).map_err(|e| write_err(&first, e))?;
    tmp.as_file().sync_all().map_err(|e| write_err(&first, e))?;
    let mut path = first;
    loop {
        match tmp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                tmp = e.file;
                path = free_path(dir, stem, ext);
            }
            Err(e) => return Err(write_err(&path, e.error)),
        }
    }
}

/// An output that may be written several times (`train --save-every`): the first write
/// follows the no-overwrite rule (or picks a default name), later ones replace the file this
/// run wrote.
#[derive(Clone, Debug)]
pub struct OutputFile {
    target: Target,
    replace: bool,
}

#[derive(Clone, Debug)]
enum Target {
    /// A path given, or the default name once picked.
    Path(PathBuf),
    /// `DIR/STEM.EXT` or the next free suffix, not yet written.
    Default {
        dir: PathBuf,
        stem: String,
        ext: String,
    },
}

impl OutputFile {
    /// The output `path`, replaced if it exists only with `force`.
    pub fn at(path: &Path, force: bool) -> Self {
        OutputFile {
            target: Target::Path(path.to_path_buf()),
            replace: force,
        }
    }

    /// An output named `dir/STEM.EXT` or the next free suffix ([`write_default`]).
    pub fn default_name(dir: &Path, stem: &str, ext: &str) -> Self {
        OutputFile {
            target: Target::Default {
                dir: dir.to_path_buf(),
                stem: stem.to_string(),
                ext: ext.to_string(),
            },
            replace: false,
        }
    }

    /// The path given, or the default name once written.
    pub fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::Path(p) => Some(p),
            Target::Default { .. } => None,
        }
    }

    /// Writes `bytes` atomically; returns the path written.
    pub fn save(&mut self, bytes: &[u8]) -> Result<PathBuf, Error> {
        let path = match &self.target {
            Target::Path(p) => {
                write_new(p, bytes, self.replace)?;
                p.clone()
            }
            Target::Default { dir, stem, ext } => write_default(dir, stem, ext, bytes)?,
        };
        self.target = Target::Path(path.clone());
        self.replace = true;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

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
        // No temporary file is left behind.
        assert_eq!(names(dir.path()), ["a.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_forced_write_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.json");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            write_new(&link, b"new", false),
            Err(Error::Exists { .. })
        ));
        write_new(&link, b"new", true).unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["link.json", "real.json"]);
    }

    #[test]
    fn a_failed_fill_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let e = write_with(&p, false, |f, _| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(matches!(e, Error::Write { .. }), "{e}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[cfg(unix)]
    #[test]
    fn outputs_get_the_usual_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_new(&p, b"{}", false).unwrap();
        let q = dir.path().join("b.json");
        std::fs::write(&q, "{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), mode(&q));
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
        let r = write_default(dir.path(), "m.params", "json", b"x").unwrap();
        assert_eq!(r, dir.path().join("m.params-2.json"));
    }

    #[test]
    fn a_default_name_taken_meanwhile_moves_to_the_next_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let first = free_path(dir.path(), "m", "json");
        // Another run takes the name between the check and the rename.
        std::fs::write(&first, "theirs").unwrap();
        let p = write_default_from(first.clone(), dir.path(), "m", "json", b"ours").unwrap();
        assert_eq!(p, dir.path().join("m-1.json"));
        assert_eq!(std::fs::read(&first).unwrap(), b"theirs");
        assert_eq!(std::fs::read(&p).unwrap(), b"ours");
        assert_eq!(names(dir.path()), ["m-1.json", "m.json"]);
    }

    #[test]
    fn forced_writers_to_one_path_leave_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.json");
        let texts: Vec<Vec<u8>> = (0..6u8).map(|i| vec![b'a' + i; 1 << 20]).collect();
        std::thread::scope(|s| {
            for t in &texts {
                let p = &p;
                s.spawn(move || write_new(p, t, true).unwrap());
            }
        });
        let got = std::fs::read(&p).unwrap();
        assert!(texts.contains(&got), "a mixed or truncated file");
        assert_eq!(names(dir.path()), ["g.json"]);
    }

    #[test]
    fn concurrent_default_names_take_the_next_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let dir = dir.path();
                    s.spawn(move || write_default(dir, "m", "json", format!("{i}").as_bytes()))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        let mut sorted = paths.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 8, "{paths:?}");
        assert_eq!(names(dir.path()).len(), 8, "{:?}", names(dir.path()));
    }

    #[test]
    fn probe_checks_folders_and_duplicates_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        let e = probe(&[("--out", &p), ("--plot", &p)], false).unwrap_err();
        assert!(matches!(e, Error::SameOutput { .. }), "{e}");
        assert!(e.to_string().contains("`--out` and `--plot`"), "{e}");
        let missing = dir.path().join("no/such/x.json");
        let e = probe(&[("--out", &missing)], false).unwrap_err();
        assert!(matches!(e, Error::OutputFolder { .. }), "{e}");
        assert!(!e.to_string().contains("at path"), "{e}");
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = probe(&[("--out", &file.join("x.json"))], false).unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
        std::fs::remove_file(&file).unwrap();
        let e = probe(&[("--out", dir.path())], true).unwrap_err();
        assert!(matches!(e, Error::IsFolder { .. }), "{e}");
        probe(&[("--out", &p)], false).unwrap();
        assert!(names(dir.path()).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn devices_are_written_directly_with_force() {
        let null = Path::new("/dev/null");
        assert!(null.exists(), "Linux has /dev/null");
        probe(&[("--out", null)], true).unwrap();
        write_new(null, b"ignored", true).unwrap();
        let e = write_new(null, b"ignored", false).unwrap_err();
        assert!(matches!(e, Error::Exists { .. }), "{e}");
        let full = Path::new("/dev/full");
        assert!(full.exists(), "Linux has /dev/full");
        let e = write_new(full, b"no room", true).unwrap_err();
        assert!(matches!(e, Error::Write { .. }), "{e}");
    }
}
