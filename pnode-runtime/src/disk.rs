//! The disk tier of checkpointing: slots kept as files in a temporary directory.
//!
//! Each forward sweep that has disk slots gets a fresh directory, `pnode-checkpoints-XXXXXX`,
//! under the user's checkpoint directory or [`std::env::temp_dir`]; disk slot `k` is the file
//! `slot-k.f64` in it, raw little-endian `f64`, rewritten in place from offset 0 (a slot's file
//! is opened for each transfer and closed after it, so a deleted directory is noticed and
//! thousands of slots need no open file handles). The directory and everything in it is
//! removed when the reverse sweep ends, when it fails, when the next sweep starts and when the
//! solver is dropped ([`tempfile::TempDir`]).
//!
//! Nothing read back is trusted blindly: a read must return every byte written (a shorter file
//! is an error), and each slot's contents carry a 64-bit checksum kept in memory and compared
//! on every read, so a file truncated, altered or lost by a failed write-back gives
//! [`Error::CheckpointIo`], never a wrong gradient. Writes are not `fsync`ed: the files are
//! scratch data, and the page cache may keep them in memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::error::{Error, Result};

/// What was last written to a slot: its length in values and the checksum of its first
/// `state_len` values (a solution restored from a stage slot) and of all of them.
#[derive(Debug, Clone, Copy)]
struct Written {
    len: usize,
    head: u64,
    all: u64,
}

/// The disk slots of a schedule and the directory that holds them while a sweep needs them.
#[derive(Debug)]
pub(crate) struct DiskSlots {
    /// Per schedule slot: whether it lives on disk.
    on_disk: Vec<bool>,
    state_len: usize,
    /// Where the temporary directories go (`None`: the system's temporary directory).
    parent: Option<PathBuf>,
    dir: Option<TempDir>,
    /// Per schedule slot: its file (empty for RAM slots and while no directory is open).
    paths: Vec<PathBuf>,
    written: Vec<Option<Written>>,
    /// Conversion buffer, as long as the largest disk slot.
    bytes: Vec<u8>,
}

impl Clone for DiskSlots {
    /// The same configuration with no directory: checkpoint files belong to one solver.
    fn clone(&self) -> Self {
        Self {
            on_disk: self.on_disk.clone(),
            state_len: self.state_len,
            parent: self.parent.clone(),
            dir: None,
            paths: Vec::new(),
            written: vec![None; self.written.len()],
            bytes: self.bytes.clone(),
        }
    }
}

/// FNV-style mixing of one 64-bit word: a bijection in `word` for every `hash`, so any single
/// changed value changes the checksum.
fn mix(hash: u64, word: u64) -> u64 {
    (hash ^ word).wrapping_mul(0x0000_0100_0000_01b3)
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

fn io_error(path: &Path, op: &'static str, e: &io::Error) -> Error {
    Error::CheckpointIo {
        path: path.to_path_buf(),
        op,
        kind: e.kind(),
        reason: e.to_string(),
    }
}

impl DiskSlots {
    /// Disk slots `on_disk[k]` of a schedule with states of `state_len` values, the largest
    /// holding `max_values` values.
    pub(crate) fn new(on_disk: Vec<bool>, state_len: usize, max_values: usize) -> Self {
        let n_slots = on_disk.len();
        Self {
            on_disk,
            state_len,
            parent: None,
            dir: None,
            paths: Vec::new(),
            written: vec![None; n_slots],
            bytes: vec![0; max_values * 8],
        }
    }

    /// Whether any slot lives on disk.
    pub(crate) fn any(&self) -> bool {
        self.on_disk.iter().any(|&d| d)
    }

    /// Whether `slot` lives on disk.
    pub(crate) fn on_disk(&self, slot: usize) -> bool {
        self.on_disk.get(slot).copied().unwrap_or(false)
    }

    /// The directory of the current sweep's files, if one is open.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    /// Put later sweeps' directories under `parent`, checking now that a directory can be
    /// created there (the probe is removed at once).
    pub(crate) fn set_parent(&mut self, parent: PathBuf) -> Result<()> {
        let probe = Self::create_dir(&parent)?;
        probe
            .close()
            .map_err(|e| io_error(&parent, "remove the probe directory in", &e))?;
        self.parent = Some(parent);
        Ok(())
    }

    fn create_dir(parent: &Path) -> Result<TempDir> {
        tempfile::Builder::new()
            .prefix("pnode-checkpoints-")
            .tempdir_in(parent)
            .map_err(|e| io_error(parent, "create a directory in", &e))
    }

    /// A fresh, empty directory for a new sweep (the previous one is removed first).
    pub(crate) fn open(&mut self) -> Result<()> {
        self.discard();
        let parent = self.parent.clone().unwrap_or_else(std::env::temp_dir);
        let dir = Self::create_dir(&parent)?;
        self.paths = (0..self.on_disk.len())
            .map(|slot| {
                if self.on_disk[slot] {
                    dir.path().join(format!("slot-{slot}.f64"))
                } else {
                    PathBuf::new()
                }
            })
            .collect();
        self.dir = Some(dir);
        Ok(())
    }

    /// Remove the directory and its files, ignoring errors (after a failed sweep, and when the
    /// checkpoints are no longer needed).
    pub(crate) fn discard(&mut self) {
        self.dir = None;
        self.paths.clear();
        self.written.fill(None);
    }

    /// Remove the directory and its files, reporting a failure (a directory that is already
    /// gone is fine).
    pub(crate) fn close(&mut self) -> Result<()> {
        self.paths.clear();
        self.written.fill(None);
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        let path = dir.path().to_path_buf();
        match dir.close() {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&path, "remove", &e)),
            _ => Ok(()),
        }
    }

    fn path(paths: &[PathBuf], slot: usize) -> Result<&Path> {
        match paths.get(slot) {
            Some(p) if !p.as_os_str().is_empty() => Ok(p),
            _ => Err(Error::Usage(format!(
                "disk slot {slot} has no checkpoint file: the checkpoints of a forward sweep \
                 live in the solver that ran it (a clone does not share them) and last until \
                 its reverse sweep; run forward again"
            ))),
        }
    }

    /// Write `values` to `slot`'s file, replacing what it held.
    pub(crate) fn write(&mut self, slot: usize, values: &[f64]) -> Result<()> {
        let len = values.len();
        let path = Self::path(&self.paths, slot)?;
        let bytes = &mut self.bytes[..len * 8];
        let (mut hash, mut head) = (SEED, SEED);
        for (i, (chunk, v)) in bytes.chunks_exact_mut(8).zip(values).enumerate() {
            chunk.copy_from_slice(&v.to_le_bytes());
            hash = mix(hash, v.to_bits());
            if i + 1 == self.state_len {
                head = hash;
            }
        }
        // Invalidate first: a failed write leaves the slot unreadable, not stale.
        self.written[slot] = None;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_error(path, "open for writing", &e))?;
        file.write_all(bytes)
            .map_err(|e| io_error(path, "write", &e))?;
        self.written[slot] = Some(Written {
            len,
            head,
            all: hash,
        });
        Ok(())
    }

    /// Read the first `out.len()` values of `slot`'s file into `out` — all of them, or the
    /// first `state_len` (a solution from a stage slot) — checking length and checksum.
    pub(crate) fn read(&mut self, slot: usize, out: &mut [f64]) -> Result<()> {
        let len = out.len();
        let path = Self::path(&self.paths, slot)?;
        let expected = match self.written[slot] {
            Some(w) if w.len == len => w.all,
            Some(w) if len == self.state_len && w.len > len => w.head,
            _ => {
                return Err(Error::CheckpointIo {
                    path: path.to_path_buf(),
                    op: "read",
                    kind: io::ErrorKind::InvalidInput,
                    reason: format!("nothing of {len} values was written to this slot"),
                });
            }
        };
        let bytes = &mut self.bytes[..len * 8];
        let mut file = File::open(path).map_err(|e| io_error(path, "open for reading", &e))?;
        file.read_exact(bytes).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Error::CheckpointIo {
                    path: path.to_path_buf(),
                    op: "read",
                    kind: e.kind(),
                    reason: format!(
                        "the file is shorter than the {} bytes written to it",
                        len * 8
                    ),
                }
            } else {
                io_error(path, "read", &e)
            }
        })?;
        let mut hash = SEED;
        for (chunk, v) in bytes.chunks_exact(8).zip(out.iter_mut()) {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            *v = f64::from_le_bytes(word);
            hash = mix(hash, v.to_bits());
        }
        if hash != expected {
            return Err(Error::CheckpointIo {
                path: path.to_path_buf(),
                op: "read",
                kind: io::ErrorKind::InvalidData,
                reason: "the file no longer holds what was written to it (checksum mismatch)"
                    .into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(dir: &Path) -> DiskSlots {
        let mut disk = DiskSlots::new(vec![false, true, true], 2, 6);
        disk.set_parent(dir.to_path_buf()).unwrap();
        disk.open().unwrap();
        disk
    }

    #[test]
    fn values_round_trip_bitwise_and_files_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        let mut disk = slots(parent.path());
        let stages = [1.0, -0.0, f64::MIN_POSITIVE, 1e300, -3.5, 1.0 / 3.0];
        disk.write(2, &stages).unwrap();
        disk.write(1, &[7.0, 8.0]).unwrap();
        let mut out = [0.0; 6];
        disk.read(2, &mut out).unwrap();
        assert_eq!(out.map(f64::to_bits), stages.map(f64::to_bits));
        let mut head = [0.0; 2];
        disk.read(2, &mut head).unwrap();
        assert_eq!(head, [1.0, -0.0]);
        // A solution written over a stage slot: its head reads back, the stale tail does not.
        disk.write(2, &[5.0, 6.0]).unwrap();
        disk.read(2, &mut head).unwrap();
        assert_eq!(head, [5.0, 6.0]);
        assert!(disk.read(2, &mut out).is_err());
        let dir = disk.dir().unwrap().to_path_buf();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        assert_eq!(std::fs::metadata(dir.join("slot-1.f64")).unwrap().len(), 16);
        disk.close().unwrap();
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn altered_and_truncated_files_are_errors() {
        let parent = tempfile::tempdir().unwrap();
        let mut disk = slots(parent.path());
        disk.write(1, &[1.0, 2.0]).unwrap();
        let path = disk.dir().unwrap().join("slot-1.f64");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let mut out = [0.0; 2];
        let err = disk.read(1, &mut out).unwrap_err();
        assert!(
            matches!(&err, Error::CheckpointIo { kind: io::ErrorKind::InvalidData, path: p, .. } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        std::fs::write(&path, &bytes[..12]).unwrap();
        let err = disk.read(1, &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "checkpoint read failed for `{}`: the file is shorter than the 16 bytes written \
                 to it",
                path.display()
            )
        );
    }

    /// A full disk, simulated by the slot's file being `/dev/full` (every write: ENOSPC).
    #[cfg(target_os = "linux")]
    #[test]
    fn full_disk_is_an_error_naming_the_file() {
        let parent = tempfile::tempdir().unwrap();
        let mut disk = slots(parent.path());
        let path = disk.dir().unwrap().join("slot-2.f64");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let err = disk.write(2, &[1.0; 6]).unwrap_err();
        match &err {
            Error::CheckpointIo {
                path: p, op, kind, ..
            } => {
                assert_eq!(
                    (p, *op, *kind),
                    (&path, "write", io::ErrorKind::StorageFull)
                );
            }
            other => panic!("unexpected error {other}"),
        }
        // The slot is unreadable afterwards, not stale.
        assert!(disk.read(2, &mut [0.0; 6]).is_err());
        disk.close().unwrap();
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_clone_has_no_files_and_says_so() {
        let parent = tempfile::tempdir().unwrap();
        let mut disk = slots(parent.path());
        disk.write(1, &[1.0, 2.0]).unwrap();
        let mut copy = disk.clone();
        assert!(copy.dir().is_none());
        assert!(matches!(copy.read(1, &mut [0.0; 2]), Err(Error::Usage(_))));
        disk.read(1, &mut [0.0; 2]).unwrap();
    }
}
