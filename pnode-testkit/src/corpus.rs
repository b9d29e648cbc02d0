//! The shared `.pode` corpus at the workspace root: `tests/corpus/ok` (valid models),
//! `tests/corpus/err` (syntax errors) and `tests/corpus/err-semantic` (files that parse but do
//! not lower). Every error file starts with `# error-at: LINE:COL[, LINE:COL…]`: the 1-based
//! line and column (in characters) of each of its error diagnostics' primary labels, in order.
//!
//! ```no_run
//! use pnode_testkit::corpus::{self, Kind};
//! for file in corpus::files(Kind::Err) {
//!     let expected = file.error_at(); // Vec<Pos>, panics naming the file if the header is bad
//!     println!("{}: {expected:?}", file.path.display());
//! }
//! ```

use pnode_grammar::{Diagnostic, line_col};
use std::fmt;
use std::path::{Path, PathBuf};

/// One folder of the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `tests/corpus/ok`: models that parse and lower without any diagnostic.
    Ok,
    /// `tests/corpus/err`: files with syntax errors, each with an `# error-at:` header.
    Err,
    /// `tests/corpus/err-semantic`: files that parse but do not lower, each with an
    /// `# error-at:` header.
    ErrSemantic,
}

impl Kind {
    /// Every folder, in the order `ok`, `err`, `err-semantic`.
    pub const ALL: [Kind; 3] = [Kind::Ok, Kind::Err, Kind::ErrSemantic];

    /// The folder's name under `tests/corpus`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Err => "err",
            Kind::ErrSemantic => "err-semantic",
        }
    }
}

/// A 1-based line and column (in characters), as `pnode_grammar::line_col` counts them and as
/// `pnodec` prints them after the file name; `Display` and `Debug` write `LINE:COL`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

impl From<(usize, usize)> for Pos {
    /// `(line, col)` as `pnode_grammar::line_col` returns it.
    fn from((line, col): (usize, usize)) -> Self {
        Pos { line, col }
    }
}

impl fmt::Display for Pos {
    /// `LINE:COL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

impl fmt::Debug for Pos {
    /// `LINE:COL`, as in the `# error-at:` headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The `# error-at: LINE:COL[, LINE:COL…]` header of `source` (its first line), or a message
/// saying what is wrong with it.
pub fn parse_error_at(source: &str) -> Result<Vec<Pos>, String> {
    let header = source
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# error-at:"))
        .ok_or("first line must be `# error-at: LINE:COL`")?;
    header
        .split(',')
        .map(|p| {
            let p = p.trim();
            let (l, c) = p
                .split_once(':')
                .ok_or_else(|| format!("`{p}` is not LINE:COL"))?;
            let line = l.parse().map_err(|_| format!("`{p}`: bad line"))?;
            let col = c.parse().map_err(|_| format!("`{p}`: bad column"))?;
            Ok(Pos { line, col })
        })
        .collect()
}

/// The positions of the primary labels of the *error* diagnostics among `diagnostics` (warnings
/// skipped), in order: what an `# error-at:` header is compared with. Panics on an error
/// without a primary label.
pub fn error_positions(source: &str, diagnostics: &[Diagnostic]) -> Vec<Pos> {
    diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| line_col(source, d.primary_span().expect("a primary label").start).into())
        .collect()
}

/// The workspace root (the folder above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit lies in the workspace")
        .to_path_buf()
}

/// The folder of one kind: `<workspace>/tests/corpus/<kind>`.
pub fn dir(kind: Kind) -> PathBuf {
    workspace_root().join("tests/corpus").join(kind.dir_name())
}

/// The paths of the `.pode` files of one kind, sorted. Panics if the folder cannot be read.
pub fn paths(kind: Kind) -> Vec<PathBuf> {
    let dir = dir(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pode"))
        .collect();
    files.sort();
    files
}

/// The path of the corpus file `name` (`lotka_volterra.pode` or `lotka_volterra`) of one kind;
/// panics if there is none.
pub fn path(kind: Kind, name: &str) -> PathBuf {
    let file = if name.ends_with(".pode") {
        name.to_string()
    } else {
        format!("{name}.pode")
    };
    let p = dir(kind).join(file);
    assert!(p.is_file(), "no corpus file {}", p.display());
    p
}

/// One corpus file, read.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    /// Its folder.
    pub kind: Kind,
    /// Its path (absolute, under [`workspace_root`]).
    pub path: PathBuf,
    /// Its name without `.pode` (`lotka_volterra`).
    pub name: String,
    /// Its text.
    pub source: String,
}

impl CorpusFile {
    /// Reads the file at `path` as a corpus file of `kind`; panics if it cannot be read.
    pub fn read(kind: Kind, path: &Path) -> Self {
        let name = path
            .file_stem()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let source =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        CorpusFile {
            kind,
            path: path.to_path_buf(),
            name,
            source,
        }
    }

    /// Its file name (`lotka_volterra.pode`).
    pub fn file_name(&self) -> String {
        format!("{}.pode", self.name)
    }

    /// The positions of its `# error-at:` header; panics naming the file if the header is
    /// missing or malformed (every `err` and `err-semantic` file has one).
    pub fn error_at(&self) -> Vec<Pos> {
        parse_error_at(&self.source).unwrap_or_else(|e| panic!("{}: {e}", self.file_name()))
    }
}

/// Every `.pode` file of one kind, read, sorted by name.
pub fn files(kind: Kind) -> Vec<CorpusFile> {
    paths(kind)
        .iter()
        .map(|p| CorpusFile::read(kind, p))
        .collect()
}

/// The corpus file `name` (`lotka_volterra.pode` or `lotka_volterra`) of one kind, read.
pub fn file(kind: Kind, name: &str) -> CorpusFile {
    CorpusFile::read(kind, &path(kind, name))
}
