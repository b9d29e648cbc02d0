//! Data files: CSV and NPY, read into a [`Table`] of `rows × cols` numbers.
//!
//! * **CSV** (any extension other than `.npy`): one row per line, fields separated by commas
//!   (when the line has one) or else by whitespace. Blank lines and lines starting with `#`
//!   are skipped. The first row is a header, and skipped, when *none* of its fields is a
//!   number; otherwise every field of every row must be a finite number and every row must
//!   have as many fields as the first. Errors name the line (1-based) and field.
//! * **NPY** (`.npy`, format versions 1–3): a little-endian `<f8` or `<f4` array in C order.
//!   The header dictionary is parsed strictly (`descr`, `fortran_order`, `shape`, nothing
//!   else) and the data must have exactly the bytes the shape needs. A 0-d array is `1 × 1`,
//!   a 1-d array of length `n` is `n × 1`, an array of shape `(r, d₁, …)` is
//!   `r × (d₁ · …)`.
//!
//! `column = k` (0-based) keeps column `k` only. Nothing here panics on a bad file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Numbers read from a file, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The file they came from.
    pub path: PathBuf,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows × cols` values, row-major.
    pub values: Vec<f64>,
}

impl Table {
    /// Read a CSV or NPY file (by extension: `.npy` is NPY, anything else CSV).
    pub fn read(path: &Path) -> Result<Table> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let is_npy = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
        if is_npy {
            parse_npy(path, &bytes)
        } else {
            parse_csv(path, &bytes)
        }
    }

    /// The table of column `k` only (`rows × 1`).
    pub fn column(&self, k: u64) -> Result<Table> {
        let k = usize::try_from(k).unwrap_or(usize::MAX);
        if k >= self.cols {
            return Err(Error::DataShape {
                path: self.path.clone(),
                what: format!("`column = {k}`"),
                expected: format!("a column index below the number of columns {}", self.cols),
                found: format!("column {k}"),
            });
        }
        Ok(Table {
            path: self.path.clone(),
            rows: self.rows,
            cols: 1,
            values: (0..self.rows)
                .map(|r| self.values[r * self.cols + k])
                .collect(),
        })
    }

    /// `rows × cols` as text.
    pub fn size(&self) -> String {
        format!("{} rows × {} columns", self.rows, self.cols)
    }
}

/// Read `path`, keeping `column` if given.
pub fn read_table(path: &Path, column: Option<u64>) -> Result<Table> {
    let t = Table::read(path)?;
    match column {
        Some(k) => t.column(k),
        None => Ok(t),
    }
}

fn csv_err(path: &Path, line: usize, reason: String) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        line,
        reason,
    }
}

fn fields(line: &str) -> Vec<&str> {
    if line.contains(',') {
        line.split(',').map(str::trim).collect()
    } else {
        line.split_whitespace().collect()
    }
}

fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Table> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        csv_err(
            path,
            line,
            "not UTF-8 text (an NPY file needs the `.npy` extension)".into(),
        )
    })?;
    let mut values = Vec::new();
    let mut cols = None;
    let mut rows = 0;
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fs = fields(line);
        if first {
            first = false;
            if fs.iter().all(|f| f.parse::<f64>().is_err()) {
                continue; // a header row
            }
        }
        let n = *cols.get_or_insert(fs.len());
        if fs.len() != n {
            return Err(csv_err(
                path,
                line_no,
                format!("{} fields, but the first row has {n}", fs.len()),
            ));
        }
        for (j, f) in fs.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| {
                csv_err(
                    path,
                    line_no,
                    format!("field {} is `{f}`, not a number", j + 1),
                )
            })?;
            if !v.is_finite() {
                return Err(csv_err(
                    path,
                    line_no,
                    format!("field {} is {v}; data must be finite", j + 1),
                ));
            }
            values.push(v);
        }
        rows += 1;
    }
    let Some(cols) = cols else {
        return Err(csv_err(
            path,
            text.lines().count().max(1),
            "no data rows".into(),
        ));
    };
    Ok(Table {
        path: path.to_path_buf(),
        rows,
        cols,
        values,
    })
}

fn npy_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A value of the NPY header dictionary.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// A strict parser of the Python literal dict of an NPY header.
struct HeaderParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl HeaderParser<'_> {
    fn skip_ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at byte {} of the header",
                c as char, self.at
            ))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let q = match self.s.get(self.at) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(format!(
                    "expected a string at byte {} of the header",
                    self.at
                ));
            }
        };
        self.at += 1;
        let start = self.at;
        while self.at < self.s.len() && self.s[self.at] != q {
            self.at += 1;
        }
        if self.at >= self.s.len() {
            return Err("unterminated string in the header".into());
        }
        let v = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        self.at += 1;
        Ok(v)
    }

    fn value(&mut self) -> Result<PyValue, String> {
        self.skip_ws();
        let rest = &self.s[self.at.min(self.s.len())..];
        if rest.starts_with(b"True") {
            self.at += 4;
            return Ok(PyValue::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.at += 5;
            return Ok(PyValue::Bool(false));
        }
        if self.eat(b'(') {
            let mut dims = Vec::new();
            loop {
                if self.eat(b')') {
                    break;
                }
                self.skip_ws();
                let start = self.at;
                while self.at < self.s.len() && self.s[self.at].is_ascii_digit() {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
                let d: u64 = digits.parse().map_err(|_| {
                    format!("expected a dimension at byte {start} of the header's shape")
                })?;
                dims.push(d);
                if !self.eat(b',') {
                    self.expect(b')')?;
                    break;
                }
            }
            return Ok(PyValue::Tuple(dims));
        }
        self.string().map(PyValue::Str)
    }

    fn dict(&mut self) -> Result<Vec<(String, PyValue)>, String> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        loop {
            if self.eat(b'}') {
                break;
            }
            let key = self.string()?;
            self.expect(b':')?;
            let v = self.value()?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(format!("key `{key}` appears twice in the header"));
            }
            entries.push((key, v));
            if !self.eat(b',') {
                self.expect(b'}')?;
                break;
            }
        }
        self.skip_ws();
        if self.at != self.s.len() {
            return Err(format!(
                "unexpected text after the header dictionary at byte {}",
                self.at
            ));
        }
        Ok(entries)
    }
}

fn parse_npy(path: &Path, bytes: &[u8]) -> Result<Table> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(npy_err(path, "not an NPY file (no `\\x93NUMPY` magic)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => {
            return Err(npy_err(
                path,
                format!("unsupported NPY format version {major}.{minor} (1.0–3.0 are read)"),
            ));
        }
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            npy_err(
                path,
                format!(
                    "the header claims {header_len} bytes but the file has {}",
                    bytes.len().saturating_sub(start)
                ),
            )
        })?;
    let header = &bytes[start..end];
    let header = header.strip_suffix(b"\n").unwrap_or(header);
    let trimmed_len = header.iter().rposition(|b| *b != b' ').map_or(0, |p| p + 1);
    let mut p = HeaderParser {
        s: &header[..trimmed_len],
        at: 0,
    };
    let entries = p.dict().map_err(|e| npy_err(path, e))?;
    let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    if let Some((k, _)) = entries
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "descr" | "fortran_order" | "shape"))
    {
        return Err(npy_err(path, format!("unknown key `{k}` in the header")));
    }
    let item = match get("descr") {
        Some(PyValue::Str(d)) if d == "<f8" => 8,
        Some(PyValue::Str(d)) if d == "<f4" => 4,
        Some(PyValue::Str(d)) => {
            return Err(npy_err(
                path,
                format!(
                    "unsupported dtype `{d}`: little-endian float64 `<f8` or float32 `<f4` is needed"
                ),
            ));
        }
        _ => return Err(npy_err(path, "the header has no string `descr`")),
    };
    match get("fortran_order") {
        Some(PyValue::Bool(false)) => {}
        Some(PyValue::Bool(true)) => {
            return Err(npy_err(
                path,
                "Fortran-order arrays are not read; save in C order",
            ));
        }
        _ => return Err(npy_err(path, "the header has no boolean `fortran_order`")),
    }
    let Some(PyValue::Tuple(shape)) = get("shape") else {
        return Err(npy_err(path, "the header has no tuple `shape`"));
    };
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
        .filter(|c| c.checked_mul(item).is_some())
        .ok_or_else(|| npy_err(path, format!("shape {shape:?} is too large")))?;
    let data = &bytes[end..];
    if data.len() != count * item {
        return Err(npy_err(
            path,
            format!(
                "shape {shape:?} of {item}-byte values needs {} bytes of data, found {}",
                count * item,
                data.len()
            ),
        ));
    }
    let values: Vec<f64> = if item == 8 {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    } else {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect()
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(npy_err(
            path,
            format!("element {i} is {}; data must be finite", values[i]),
        ));
    }
    let (rows, cols) = match shape.len() {
        0 => (1, 1),
        1 => (count, 1),
        _ => {
            let r = shape[0] as usize;
            (r, count.checked_div(r).unwrap_or(0))
        }
    };
    Ok(Table {
        path: path.to_path_buf(),
        rows,
        cols,
        values,
    })
}

/// Write `values` with `shape` as a little-endian `<f8` NPY file (version 1.0), for tests and
/// tools that synthesize data.
pub fn write_npy(path: &Path, shape: &[usize], values: &[f64]) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_txt}, }}");
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 8 * values.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out)
}

/// Write a `rows × cols` table (row-major `values`) as CSV with `{:e}`-exact numbers.
pub fn write_csv(path: &Path, cols: usize, values: &[f64]) -> std::io::Result<()> {
    let mut s = String::new();
    for row in values.chunks(cols.max(1)) {
        let fs: Vec<String> = row.iter().map(|v| format!("{v:e}")).collect();
        s.push_str(&fs.join(","));
        s.push('\n');
    }
    std::fs::write(path, s)
}
