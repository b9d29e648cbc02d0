//! The data of the ODE-Net demo: MNIST's IDX files (reader and writer, with errors naming the
//! file and the problem) and a deterministic generated set of digit-like images.

use std::io::Read;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use super::{CLASSES, PIXEL_MEAN, PIXEL_STD};
use crate::error::{Error, Result};

/// Labelled images.
#[derive(Debug)]
pub struct Dataset {
    /// `[N, 1, H, W]` f32, normalised with MNIST's pixel mean and standard deviation.
    pub images: Tensor,
    /// `[N]` i64 class labels in `0..10`.
    pub labels: Tensor,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(height, width)` of the images.
    pub fn image_size(&self) -> (i64, i64) {
        let s = self.images.size();
        (s[2], s[3])
    }

    /// Builds a dataset from raw `[0, 255]` pixels (`n × rows × cols`, row-major) and labels.
    fn from_u8(pixels: &[u8], labels: &[u8], rows: i64, cols: i64) -> Self {
        let n = labels.len() as i64;
        let images = Tensor::from_slice(pixels)
            .view([n, 1, rows, cols])
            .to_kind(Kind::Float)
            / 255.0;
        let labels = Tensor::from_slice(labels).to_kind(Kind::Int64);
        Self {
            images: (images - PIXEL_MEAN) / PIXEL_STD,
            labels,
        }
    }
}

/// A training and a test set.
#[derive(Debug)]
pub struct Data {
    /// Where the data came from, for reports.
    pub source: String,
    /// Training images.
    pub train: Dataset,
    /// Held-out images.
    pub test: Dataset,
}

/// A data file that could not be read or is not what it should be. The message names the
/// file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// The file is not a valid IDX file of the expected kind, or disagrees with its partner.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

fn format_error(path: &Path, problem: impl Into<String>) -> DataError {
    DataError::Format {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// IDX magic numbers: two zero bytes, the type code (0x08 = unsigned byte), the dimension count.
const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads a whole IDX file of unsigned bytes with `dims` dimensions; returns the sizes and the
/// data. Errors name the file: unreadable, gzip-compressed, too short for its header, a
/// magic number other than `magic`, or a data size that does not match the header.
fn read_idx(path: &Path, magic: u32, what: &str) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let io = |cause| DataError::Io {
        path: path.to_owned(),
        cause,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(format_error(
            path,
            "is gzip-compressed; plain IDX files are required (decompress it first, e.g. \
             `gunzip -k FILE.gz`)",
        ));
    }
    if bytes.len() < 4 {
        return Err(format_error(
            path,
            format!(
                "truncated: {} bytes, too short for the 4-byte IDX magic number",
                bytes.len()
            ),
        ));
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(format_error(
            path,
            format!(
                "bad magic number 0x{found:08x}, expected 0x{magic:08x} (IDX {what}: unsigned \
                 bytes, {} dimensions)",
                magic & 0xff
            ),
        ));
    }
    let n_dims = (magic & 0xff) as usize;
    let header = 4 + 4 * n_dims;
    if bytes.len() < header {
        return Err(format_error(
            path,
            format!(
                "truncated: {} bytes, too short for the {header}-byte header",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format_error(path, format!("dimensions {dims:?} overflow")))?;
    let found = bytes.len() - header;
    if found < expected {
        return Err(format_error(
            path,
            format!(
                "truncated: the header promises {expected} data bytes ({}) but the file has \
                 {found}",
                dims.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" × ")
            ),
        ));
    }
    if found > expected {
        return Err(format_error(
            path,
            format!(
                "{} trailing bytes after the {expected} data bytes the header promises",
                found - expected
            ),
        ));
    }
    bytes.drain(..header);
    Ok((dims, bytes))
}

/// Reads an IDX image file (`*-images-idx3-ubyte`): `(count, rows, cols, pixels)`.
pub fn read_idx_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let (dims, data) = read_idx(path, IDX_IMAGES_MAGIC, "images")?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(format_error(
            path,
            format!("images of {} × {} pixels", dims[1], dims[2]),
        ));
    }
    Ok((dims[0], dims[1], dims[2], data))
}

/// Reads an IDX label file (`*-labels-idx1-ubyte`); every label must be a digit `0..=9`.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let (_, data) = read_idx(path, IDX_LABELS_MAGIC, "labels")?;
    if let Some((i, &l)) = data.iter().enumerate().find(|&(_, &l)| l as i64 >= CLASSES) {
        return Err(format_error(
            path,
            format!("label {l} at index {i} is not a digit 0–9"),
        ));
    }
    Ok(data)
}

/// Reads one split (`train` or `t10k`) of MNIST from `dir`.
fn read_split(dir: &Path, split: &str) -> Result<Dataset, DataError> {
    let images_path = find_idx(dir, &format!("{split}-images"), "idx3-ubyte")?;
    let labels_path = find_idx(dir, &format!("{split}-labels"), "idx1-ubyte")?;
    let (n, rows, cols, pixels) = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;
    if labels.len() != n {
        return Err(format_error(
            &labels_path,
            format!(
                "count mismatch: {} labels but {} holds {n} images",
                labels.len(),
                images_path.display()
            ),
        ));
    }
    if n == 0 {
        return Err(format_error(&images_path, "holds no images"));
    }
    Ok(Dataset::from_u8(&pixels, &labels, rows as i64, cols as i64))
}

/// The path of `{stem}-{suffix}` in `dir`, or `{stem}.{suffix}` (the spelling of some
/// mirrors); an error naming the expected file when neither exists (pointing out a `.gz`
/// next to it).
fn find_idx(dir: &Path, stem: &str, suffix: &str) -> Result<PathBuf, DataError> {
    let dash = dir.join(format!("{stem}-{suffix}"));
    let dot = dir.join(format!("{stem}.{suffix}"));
    for path in [&dash, &dot] {
        if path.is_file() {
            return Ok(path.clone());
        }
    }
    let gz = dir.join(format!("{stem}-{suffix}.gz"));
    let hint = if gz.is_file() {
        format!(
            "; found {}, but plain IDX files are required (decompress it, e.g. `gunzip -k {}`)",
            gz.display(),
            gz.display()
        )
    } else {
        String::new()
    };
    Err(DataError::Io {
        path: dash,
        cause: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("MNIST file not found{hint}"),
        ),
    })
}

/// MNIST from the four plain IDX files in `dir`: `train-images-idx3-ubyte`,
/// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (as
/// distributed, after `gunzip`; the `train-images.idx3-ubyte` spelling is accepted too).
pub fn load_mnist(dir: &Path) -> Result<Data, DataError> {
    let train = read_split(dir, "train")?;
    let test = read_split(dir, "t10k")?;
    if train.image_size() != test.image_size() {
        return Err(format_error(
            dir,
            format!(
                "training images are {:?} but test images are {:?}",
                train.image_size(),
                test.image_size()
            ),
        ));
    }
    Ok(Data {
        source: format!("MNIST from {}", dir.display()),
        train,
        test,
    })
}

/// Writes an IDX image file (unsigned bytes, `n × rows × cols`); for tests and for saving
/// the generated set. `pixels.len()` must be `n · rows · cols`.
pub fn write_idx_images(
    path: &Path,
    rows: usize,
    cols: usize,
    pixels: &[u8],
) -> std::io::Result<()> {
    let n = pixels.len() / (rows * cols).max(1);
    let mut out = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend_from_slice(pixels);
    std::fs::write(path, out)
}

/// Writes an IDX label file (unsigned bytes).
pub fn write_idx_labels(path: &Path, labels: &[u8]) -> std::io::Result<()> {
    let mut out = IDX_LABELS_MAGIC.to_be_bytes().to_vec();
    out.extend((labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    std::fs::write(path, out)
}

/// The generated stand-in for MNIST: ten classes of digit-like stroke drawings, each image
/// drawn with its own random scale, aspect, rotation, shear, shift, stroke width and control
/// point jitter, plus pixel noise. Deterministic from the seed (its own generator, not
/// libtorch's).
#[derive(Debug, Clone)]
pub struct SyntheticConfig {
    /// Training images.
    pub train: usize,
    /// Test images.
    pub test: usize,
    /// Side of the square images in pixels.
    pub image_size: usize,
    /// Standard deviation of the Gaussian pixel noise (pixels in `[0, 1]`).
    pub noise: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            train: 2000,
            test: 500,
            image_size: 28,
            noise: 0.2,
            seed: 0,
        }
    }
}

/// SplitMix64: a small, fast, seedable generator (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// A random permutation of `0..n` (Fisher–Yates).
    pub(super) fn permutation(&mut self, n: usize) -> Vec<i64> {
        let mut p: Vec<i64> = (0..n as i64).collect();
        for i in (1..n).rev() {
            p.swap(i, self.below(i + 1));
        }
        p
    }
}

type Stroke = Vec<(f64, f64)>;

/// Points of the elliptic arc centred at `(cx, cy)` with radii `(rx, ry)` from `a0` to `a1`
/// degrees (y points down, so 270° is the top).
fn arc(cx: f64, cy: f64, rx: f64, ry: f64, a0: f64, a1: f64) -> Stroke {
    let n = (((a1 - a0).abs() / 15.0).ceil() as usize).max(2);
    (0..=n)
        .map(|i| {
            let a = (a0 + (a1 - a0) * i as f64 / n as f64).to_radians();
            (cx + rx * a.cos(), cy + ry * a.sin())
        })
        .collect()
}

/// The strokes of digit `class` in a box of about `[-0.5, 0.5] × [-0.8, 0.8]` (y down).
fn glyph(class: usize) -> Vec<Stroke> {
    match class {
        0 => vec![arc(0.0, 0.0, 0.42, 0.75, 0.0, 360.0)],
        1 => vec![
            vec![(0.05, -0.75), (0.05, 0.75)],
            vec![(-0.22, -0.45), (0.05, -0.75)],
        ],
        2 => {
            let mut top = arc(0.0, -0.35, 0.4, 0.4, 180.0, 385.0);
            top.extend([(-0.45, 0.75), (0.45, 0.75)]);
            vec![top]
        }
        3 => {
            let mut s = arc(0.0, -0.38, 0.36, 0.36, 200.0, 450.0);
            s.extend(arc(0.0, 0.36, 0.42, 0.4, 270.0, 520.0));
            vec![s]
        }
        4 => vec![
            vec![(0.22, -0.75), (0.22, 0.75)],
            vec![(0.22, -0.75), (-0.45, 0.25), (0.5, 0.25)],
        ],
        5 => {
            let mut s = vec![(0.42, -0.75), (-0.32, -0.75), (-0.36, -0.08)];
            s.extend(arc(0.0, 0.3, 0.42, 0.43, 215.0, 510.0));
            vec![s]
        }
        6 => vec![
            vec![(0.3, -0.75), (-0.12, -0.5), (-0.36, -0.1), (-0.4, 0.35)],
            arc(0.0, 0.35, 0.4, 0.4, 0.0, 360.0),
        ],
        7 => vec![vec![(-0.45, -0.75), (0.45, -0.75), (-0.08, 0.75)]],
        8 => vec![
            arc(0.0, -0.42, 0.32, 0.33, 0.0, 360.0),
            arc(0.0, 0.37, 0.4, 0.38, 0.0, 360.0),
        ],
        _ => vec![
            arc(0.0, -0.35, 0.4, 0.4, 0.0, 360.0),
            vec![(0.4, -0.35), (0.28, 0.75)],
        ],
    }
}

/// Distance from `p` to the segment `a b`.
fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let s = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (p.0 - a.0 - s * dx, p.1 - a.1 - s * dy);
    (ex * ex + ey * ey).sqrt()
}

/// Draws one randomly deformed, noisy image of `class` into `out` (`size²` pixels, row-major,
/// `[0, 255]`).
fn draw(class: usize, size: usize, noise: f64, rng: &mut SplitMix64, out: &mut [u8]) {
    let s = size as f64;
    let scale = rng.range(0.8, 1.1) * 0.4 * s;
    let aspect = rng.range(0.85, 1.15);
    let angle = rng.range(-12.0f64, 12.0).to_radians();
    let shear = rng.range(-0.2, 0.2);
    let (tx, ty) = (
        (s - 1.0) / 2.0 + rng.range(-0.1, 0.1) * s,
        (s - 1.0) / 2.0 + rng.range(-0.08, 0.08) * s,
    );
    let half_width = rng.range(0.035, 0.06) * s;
    let (sin, cos) = angle.sin_cos();
    let segments: Vec<((f64, f64), (f64, f64))> = glyph(class)
        .into_iter()
        .flat_map(|stroke| {
            let points: Vec<(f64, f64)> = stroke
                .into_iter()
                .map(|(x, y)| {
                    let (x, y) = (x + rng.range(-0.05, 0.05), y + rng.range(-0.05, 0.05));
                    let (x, y) = (aspect * (x + shear * y), y);
                    (
                        tx + scale * (cos * x - sin * y),
                        ty + scale * (sin * x + cos * y),
                    )
                })
                .collect();
            points.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>()
        })
        .collect();
    for (i, px) in out.iter_mut().enumerate() {
        let p = ((i % size) as f64, (i / size) as f64);
        let d = segments
            .iter()
            .map(|&(a, b)| segment_distance(p, a, b))
            .fold(f64::INFINITY, f64::min);
        // A stroke of half-width `half_width` with a one-pixel anti-aliased edge.
        let ink = (half_width + 0.5 - d).clamp(0.0, 1.0);
        let v = (ink + noise * rng.normal()).clamp(0.0, 1.0);
        *px = (255.0 * v).round() as u8;
    }
}

/// Raw generated images: `(pixels, labels)`, classes cycling `0, 1, …, 9` in a shuffled
/// order, pixels in `[0, 255]`.
pub fn generate_raw(n: usize, size: usize, noise: f64, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = SplitMix64(seed ^ 0x6f64_656e_6574); // "odenet"
    let mut labels: Vec<u8> = (0..n).map(|i| (i % CLASSES as usize) as u8).collect();
    for i in (1..n).rev() {
        labels.swap(i, rng.below(i + 1));
    }
    let mut pixels = vec![0u8; n * size * size];
    for (label, image) in labels.iter().zip(pixels.chunks_exact_mut(size * size)) {
        draw(*label as usize, size, noise, &mut rng, image);
    }
    (pixels, labels)
}

/// The generated data set (training and test images drawn independently).
pub fn generate(config: &SyntheticConfig) -> Result<Data> {
    if config.train == 0 || config.test == 0 || config.image_size < 4 {
        return Err(Error::Usage(format!(
            "the generated set needs training and test images of at least 4×4 pixels (got \
             {} training and {} test images of {size}×{size})",
            config.train,
            config.test,
            size = config.image_size
        )));
    }
    let size = config.image_size;
    let split = |n, seed| {
        let (pixels, labels) = generate_raw(n, size, config.noise, seed);
        Dataset::from_u8(&pixels, &labels, size as i64, size as i64)
    };
    Ok(Data {
        source: format!(
            "generated digit-like strokes (seed {}, noise {})",
            config.seed, config.noise
        ),
        train: split(config.train, config.seed.wrapping_mul(2)),
        test: split(config.test, config.seed.wrapping_mul(2) + 1),
    })
}
