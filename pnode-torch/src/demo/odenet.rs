//! ODE-Net image classification (Chen et al. 2018, §7.1): a convolutional stem, one ODE block
//! in place of a stack of residual blocks, and a pooled linear head, trained on MNIST (IDX
//! files) or on a generated set of digit-like images, once per checkpoint mode so their
//! accuracy, time and memory can be compared.
//!
//! ```text
//! x [B, 1, H, W]
//!  │ stem    conv 3×3, 1→C, stride 2 (28×28 → 14×14) → GroupNorm → ReLU
//!  │         [downsample = 2: conv 4×4, C→C, stride 2 (14×14 → 7×7) → GroupNorm → ReLU]
//!  │ block   du/dt = f(u), t ∈ [0, 1], RK4 with `steps` steps, discrete adjoint
//!  │         f = GN → ReLU → conv 3×3 (C→C) → GN → ReLU → conv 3×3 (C→C) → GN
//!  │ head    GroupNorm → ReLU → adaptive average pool → flatten → linear C→10
//!  ▼
//! logits [B, 10]
//! ```
//!
//! The right-hand side is ODE-Net's `ODEfunc` (`odenet_mnist.py`) without the time channel
//! its `ConcatConv2d` appends (the block here is autonomous), with GroupNorm of
//! `min(32, C/2)` groups (ODE-Net's `min(32, C)` at `C = 64`); the head is ODE-Net's. The
//! stem's second, 4×4 stride-2 convolution is one of ODE-Net's downsampling layers (which
//! end at 6×6): it makes the block four times cheaper than at 14×14, which lets a CPU train
//! it in minutes (`downsample = 1` drops it). The block is an [`OdeBlock`] over a
//! [`ModuleRhs`] whose closure holds shallow clones of the weights of a `VarStore` of its
//! own; the stem and the head live in a second `VarStore`, and Adam trains both on the
//! cross-entropy.
//!
//! Memory is reported two ways: the tensor bytes the block's checkpoints held at their peak
//! ([`Stats::peak_stored_bytes`], exact, and the schedule's prediction), and the increase of
//! the process's peak resident set during training ([`RssProbe`], Linux only). The first
//! gradient of each run is kept, so runs that differ only in the checkpoint mode can be
//! checked for bitwise-identical gradients.
//!
//! The weights come from libtorch's global generator seeded with `tch::manual_seed`, so
//! networks built concurrently in one process (tests on several threads) must take turns.
//!
//! # References
//! * R. T. Q. Chen, Y. Rubanova, J. Bettencourt, D. Duvenaud, "Neural ordinary differential
//!   equations", NeurIPS 2018 (ODE-Net, §7.1).
//! * Y. Wu, K. He, "Group normalization", ECCV 2018.
//! * Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
//!   recognition", Proc. IEEE 86(11), 1998 (MNIST and its IDX file format).
//! * A. Griewank, A. Walther, "Algorithm 799: revolve", ACM TOMS 26(1), 2000.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pnode_runtime::checkpoint::{Checkpointing, Stats};
use pnode_runtime::{Tableau, TimeGrid};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::{ModuleRhs, OdeBlock, TensorSolver};

/// Number of classes (digits 0–9).
pub const CLASSES: i64 = 10;

/// Revolve slots of the `revolve` mode when none are given (`revolve:K` gives `K`).
pub const DEFAULT_REVOLVE_SLOTS: usize = 2;

/// Mean and standard deviation of the MNIST training pixels (in `[0, 1]`), the usual input
/// normalisation; applied to both MNIST and the generated set.
const PIXEL_MEAN: f64 = 0.1307;
const PIXEL_STD: f64 = 0.3081;

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

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
struct SplitMix64(u64);

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
    fn permutation(&mut self, n: usize) -> Vec<i64> {
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

// ---------------------------------------------------------------------------------------------
// Peak memory
// ---------------------------------------------------------------------------------------------

/// Measures how far the process's peak resident set grows over a span of work (Linux):
/// [`RssProbe::start`] hands freed heap memory back to the kernel (glibc's `malloc_trim`),
/// resets the high-water mark (`echo 5 > /proc/self/clear_refs`) and reads `VmRSS`;
/// [`RssProbe::increase`] reads `VmHWM` from `/proc/self/status`.
///
/// It measures the whole process (libtorch's working memory included, other threads' work
/// too); [`Stats::peak_stored_bytes`] is the exact checkpoint share.
#[derive(Debug, Clone, Copy)]
pub struct RssProbe {
    before: u64,
}

/// A field of `/proc/self/status` in bytes.
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Returns the allocator's free memory to the kernel, so that a peak measured next is what
/// the work needs rather than less (freed memory kept resident from earlier work would be
/// reused unseen).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    unsafe extern "C" {
        // glibc: `int malloc_trim(size_t pad)`; no preconditions.
        safe fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    malloc_trim(0);
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

impl RssProbe {
    /// Resets the peak and records the current resident set; `None` where the kernel does
    /// not offer this (not Linux, or a kernel before 4.0).
    pub fn start() -> Option<Self> {
        release_free_memory();
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        Some(Self {
            before: proc_status_bytes("VmRSS")?,
        })
    }

    /// Peak resident set since [`RssProbe::start`] minus the resident set then, in bytes.
    pub fn increase(&self) -> Option<u64> {
        Some(proc_status_bytes("VmHWM")?.saturating_sub(self.before))
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// Network and training set-up.
#[derive(Debug, Clone)]
pub struct OdeNetConfig {
    /// Channels of the stem, the ODE block and the head (ODE-Net: 64).
    pub channels: i64,
    /// Stride-2 convolutions in the stem, 1 or 2: the 3×3 one from the image, then a 4×4
    /// one (28×28 images give the block 14×14 or 7×7 feature maps).
    pub downsample: u32,
    /// RK4 steps of the ODE block on `[0, 1]`.
    pub steps: usize,
    /// Training iterations (minibatches).
    pub iterations: usize,
    /// Images per minibatch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed of the initialisation and of the minibatch order.
    pub seed: u64,
    /// Accuracy is measured on at most this many images of each set (the first ones); `None`
    /// for all.
    pub eval_limit: Option<usize>,
}

impl Default for OdeNetConfig {
    fn default() -> Self {
        Self {
            channels: 64,
            downsample: 2,
            steps: 6,
            iterations: 150,
            batch_size: 32,
            learning_rate: 3e-3,
            seed: 0,
            eval_limit: Some(1000),
        }
    }
}

impl OdeNetConfig {
    /// Height and width of the ODE block's feature maps for `h × w` images.
    pub fn feature_size(&self, h: i64, w: i64) -> (i64, i64) {
        // 3×3, stride 2, padding 1; then 4×4, stride 2, padding 1.
        let down = |x: i64, k: i64| (x + 2 - k).div_euclid(2) + 1;
        let (mut h, mut w) = (down(h, 3), down(w, 3));
        for _ in 1..self.downsample {
            (h, w) = (down(h, 4), down(w, 4));
        }
        (h, w)
    }

    /// GroupNorm groups: `min(32, channels / 2)`, so at least two channels per group (at 64
    /// channels ODE-Net's `min(32, channels)`; one channel per group would leave the pooled
    /// head little to read).
    pub fn groups(&self) -> i64 {
        (self.channels / 2).clamp(1, 32)
    }

    /// Checks the set-up (channels that split into the GroupNorm groups, one or two
    /// downsamplings, positive counts and learning rate); [`train`] does too.
    pub fn validate(&self) -> Result<()> {
        if self.channels < 1 || self.channels % self.groups() != 0 {
            return Err(Error::Usage(format!(
                "{} channels do not split into {} GroupNorm groups (use an even number up to \
                 64, a multiple of 32 above)",
                self.channels,
                self.groups()
            )));
        }
        if !(1..=2).contains(&self.downsample) {
            return Err(Error::Usage(format!(
                "the stem downsamples once or twice (got {})",
                self.downsample
            )));
        }
        if self.steps == 0 || self.iterations == 0 || self.batch_size == 0 {
            return Err(Error::Usage(
                "steps, iterations and batch size must be positive".into(),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::Usage(format!(
                "the learning rate must be positive (got {})",
                self.learning_rate
            )));
        }
        Ok(())
    }
}

/// A convolution over shared weight tensors.
struct Conv {
    w: Tensor,
    b: Tensor,
    stride: i64,
    padding: i64,
}

impl Conv {
    /// A `k×k` convolution `cin → cout` with padding 1, created in `path` with PyTorch's
    /// default initialisation.
    fn new(path: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> Self {
        let padding = 1;
        let c = nn::conv2d(
            path,
            cin,
            cout,
            k,
            nn::ConvConfig {
                stride,
                padding,
                ..Default::default()
            },
        );
        Self {
            w: c.ws,
            b: c.bs.expect("convolution with bias"),
            stride,
            padding,
        }
    }

    fn share(&self) -> Self {
        Self {
            w: self.w.shallow_clone(),
            b: self.b.shallow_clone(),
            stride: self.stride,
            padding: self.padding,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (s, p) = (self.stride, self.padding);
        x.conv2d(&self.w, Some(&self.b), [s, s], [p, p], [1, 1], 1)
    }
}

/// GroupNorm over shared weight tensors.
struct Norm {
    w: Tensor,
    b: Tensor,
    groups: i64,
}

impl Norm {
    fn new(path: nn::Path, groups: i64, channels: i64) -> Self {
        let n = nn::group_norm(path, groups, channels, Default::default());
        Self {
            w: n.ws.expect("affine group norm"),
            b: n.bs.expect("affine group norm"),
            groups,
        }
    }

    fn share(&self) -> Self {
        Self {
            w: self.w.shallow_clone(),
            b: self.b.shallow_clone(),
            groups: self.groups,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.group_norm(self.groups, Some(&self.w), Some(&self.b), 1e-5, true)
    }
}

/// ODE-Net's `ODEfunc`: GN → ReLU → conv → GN → ReLU → conv → GN.
struct OdeFunc {
    norm1: Norm,
    conv1: Conv,
    norm2: Norm,
    conv2: Conv,
    norm3: Norm,
}

impl OdeFunc {
    fn new(vs: &nn::VarStore, channels: i64, groups: i64) -> Self {
        let root = vs.root();
        Self {
            norm1: Norm::new(&root / "norm1", groups, channels),
            conv1: Conv::new(&root / "conv1", channels, channels, 3, 1),
            norm2: Norm::new(&root / "norm2", groups, channels),
            conv2: Conv::new(&root / "conv2", channels, channels, 3, 1),
            norm3: Norm::new(&root / "norm3", groups, channels),
        }
    }

    /// `f(t, u)` over shallow clones of the weights, as an owned closure.
    fn closure(&self) -> impl FnMut(f64, &Tensor) -> Tensor + Send + 'static + use<> {
        let f = Self {
            norm1: self.norm1.share(),
            conv1: self.conv1.share(),
            norm2: self.norm2.share(),
            conv2: self.conv2.share(),
            norm3: self.norm3.share(),
        };
        move |_t: f64, u: &Tensor| {
            let h = f.conv1.forward(&f.norm1.forward(u).relu());
            let h = f.conv2.forward(&f.norm2.forward(&h).relu());
            f.norm3.forward(&h)
        }
    }
}

/// The classifier: stem, ODE block, head.
struct OdeNet {
    /// Stem and head parameters.
    vs: nn::VarStore,
    /// ODE block parameters.
    ode_vs: nn::VarStore,
    /// Convolution, GroupNorm (then ReLU), once per downsampling.
    stem: Vec<(Conv, Norm)>,
    func: OdeFunc,
    block: OdeBlock,
    head_norm: Norm,
    fc: nn::Linear,
    grid: TimeGrid,
}

impl OdeNet {
    /// The network with libtorch seeded by `config.seed` (the same seed gives the same
    /// weights).
    fn new(config: &OdeNetConfig, checkpointing: Checkpointing) -> Result<Self> {
        tch::manual_seed(config.seed as i64);
        let (c, g) = (config.channels, config.groups());
        let vs = nn::VarStore::new(Device::Cpu);
        let ode_vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let stem = (1..=config.downsample)
            .map(|k| {
                let (cin, kernel) = if k == 1 { (1, 3) } else { (c, 4) };
                (
                    Conv::new(&root / "stem" / format!("conv{k}"), cin, c, kernel, 2),
                    Norm::new(&root / "stem" / format!("norm{k}"), g, c),
                )
            })
            .collect();
        let func = OdeFunc::new(&ode_vs, c, g);
        let head_norm = Norm::new(&root / "head" / "norm", g, c);
        let fc = nn::linear(&root / "head" / "fc", c, CLASSES, Default::default());
        let grid = TimeGrid::uniform(0.0, 1.0, config.steps)?;
        let block = OdeBlock::final_state(
            ModuleRhs::new(&ode_vs, func.closure()),
            Tableau::rk4(),
            grid.clone(),
            checkpointing,
        )?;
        Ok(Self {
            vs,
            ode_vs,
            stem,
            func,
            block,
            head_norm,
            fc,
            grid,
        })
    }

    fn stem(&self, x: &Tensor) -> Tensor {
        self.stem.iter().fold(x.shallow_clone(), |h, (conv, norm)| {
            norm.forward(&conv.forward(&h)).relu()
        })
    }

    fn head(&self, u: &Tensor) -> Tensor {
        let h = self.head_norm.forward(u).relu();
        self.fc
            .forward(&h.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }

    /// The mean cross-entropy of `x` against `y` through the block (differentiable by its
    /// discrete adjoint).
    fn loss(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let u = self.block.forward(&self.stem(x))?;
        Ok(self.head(&u).cross_entropy_for_logits(y))
    }

    /// Fraction of `data` classified correctly (at most `limit` images), by forward solves
    /// that keep no checkpoints.
    fn accuracy(&self, data: &Dataset, limit: Option<usize>) -> Result<f64> {
        let n = limit.map_or(data.len(), |l| l.min(data.len()));
        if n == 0 {
            return Ok(f64::NAN);
        }
        let mut solver = TensorSolver::new(
            Tableau::rk4(),
            self.grid.clone(),
            &[1.0],
            Checkpointing::SolutionOnly,
        )?;
        let mut model = ModuleRhs::new(&self.ode_vs, self.func.closure());
        let mut correct = 0i64;
        tch::no_grad(|| -> Result<()> {
            for start in (0..n).step_by(256) {
                let len = 256.min(n - start) as i64;
                let x = data.images.narrow(0, start as i64, len);
                let y = data.labels.narrow(0, start as i64, len);
                let u = solver.solve(&mut model, &self.stem(&x))?[0].shallow_clone();
                let hits = self.head(&u).argmax(-1, false).eq_tensor(&y);
                correct += hits.sum(Kind::Int64).int64_value(&[]);
            }
            Ok(())
        })?;
        Ok(correct as f64 / n as f64)
    }

    /// `(name, gradient copy)` of every parameter, sorted by name (`ode.` prefixes the
    /// block's).
    fn gradients(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .chain(
                self.ode_vs
                    .variables()
                    .into_iter()
                    .map(|(n, t)| (format!("ode.{n}"), t)),
            )
            .map(|(name, t)| {
                let g = t.grad();
                let g = if g.defined() {
                    g.copy()
                } else {
                    t.zeros_like()
                };
                (name, g)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------

/// Short name of a checkpoint mode: `store-all`, `solution-only`, `revolve:K`, ….
pub fn mode_name(mode: &Checkpointing) -> String {
    match mode {
        Checkpointing::StoreAll => "store-all".into(),
        Checkpointing::SolutionOnly => "solution-only".into(),
        Checkpointing::Revolve { slots } => format!("revolve:{slots}"),
        Checkpointing::Online { slots } => format!("online:{slots}"),
        other => format!("{other:?}"),
    }
}

/// Parses `store-all`, `solution-only`, `revolve` ([`DEFAULT_REVOLVE_SLOTS`] slots),
/// `revolve:K` or `online:K`.
pub fn parse_mode(text: &str) -> std::result::Result<Checkpointing, String> {
    let slots = |k: &str| -> std::result::Result<usize, String> {
        match k.parse::<usize>() {
            Ok(k) if k >= 1 => Ok(k),
            _ => Err(format!("`{text}`: slots must be a positive integer")),
        }
    };
    match text.trim().split_once(':') {
        None => match text.trim() {
            "store-all" => Ok(Checkpointing::StoreAll),
            "solution-only" => Ok(Checkpointing::SolutionOnly),
            "revolve" => Ok(Checkpointing::Revolve {
                slots: DEFAULT_REVOLVE_SLOTS,
            }),
            other => Err(format!(
                "unknown checkpoint mode `{other}` (store-all, solution-only, revolve, \
                 revolve:K, online:K)"
            )),
        },
        Some(("revolve", k)) => Ok(Checkpointing::Revolve { slots: slots(k)? }),
        Some(("online", k)) => Ok(Checkpointing::Online { slots: slots(k)? }),
        Some(_) => Err(format!(
            "unknown checkpoint mode `{text}` (store-all, solution-only, revolve, revolve:K, \
             online:K)"
        )),
    }
}

/// What one training run produced.
#[derive(Debug)]
pub struct TrainResult {
    /// The checkpoint mode of the ODE block.
    pub mode: Checkpointing,
    /// Cross-entropy of each iteration's minibatch.
    pub losses: Vec<f64>,
    /// Wall time of each iteration (minibatch, forward, backward, Adam step) in seconds.
    pub iteration_seconds: Vec<f64>,
    /// Accuracy on the training set (at most `eval_limit` images) after training.
    pub train_accuracy: f64,
    /// Accuracy on the test set (at most `eval_limit` images) after training.
    pub test_accuracy: f64,
    /// Increase of the peak resident set during the training iterations, in bytes; `None`
    /// where it cannot be measured (not Linux).
    pub peak_rss_increase: Option<u64>,
    /// The block's statistics of the last training iteration (forward and backward);
    /// `peak_stored_bytes` is the tensor bytes its checkpoints held.
    pub stats: Stats,
    /// The statistics the block's schedule predicts for one training iteration.
    pub predicted: Stats,
    /// The gradient of the first iteration, `(parameter name, tensor)` sorted by name.
    pub first_gradients: Vec<(String, Tensor)>,
}

impl TrainResult {
    /// Mean wall time per iteration in milliseconds, the first (warm-up) iteration excluded
    /// when there are others.
    pub fn ms_per_iteration(&self) -> f64 {
        let t = if self.iteration_seconds.len() > 1 {
            &self.iteration_seconds[1..]
        } else {
            &self.iteration_seconds[..]
        };
        1e3 * t.iter().sum::<f64>() / t.len().max(1) as f64
    }

    /// Mean loss of the first `k` iterations.
    pub fn first_losses_mean(&self, k: usize) -> f64 {
        let k = k.clamp(1, self.losses.len().max(1));
        self.losses.iter().take(k).sum::<f64>() / k as f64
    }

    /// Mean loss of the last `k` iterations.
    pub fn last_losses_mean(&self, k: usize) -> f64 {
        let k = k.clamp(1, self.losses.len().max(1));
        self.losses.iter().rev().take(k).sum::<f64>() / k as f64
    }
}

/// Trains the classifier once with the ODE block checkpointing as `mode`;
/// `on_iteration(iteration, loss)` is called after each iteration (from 1).
///
/// Time and memory are measured after one untimed warm-up pass of a throw-away network. The
/// weights and the minibatch order depend only on `config.seed`, so runs in different
/// modes compute the same gradients (to the bit, as the discrete adjoint is exact for each
/// schedule and recomputation repeats the same operations).
pub fn train(
    config: &OdeNetConfig,
    data: &Data,
    mode: &Checkpointing,
    mut on_iteration: impl FnMut(usize, f64),
) -> Result<TrainResult> {
    config.validate()?;
    let n_train = data.train.len();
    if n_train == 0 {
        return Err(Error::Usage("the training set is empty".into()));
    }
    let batch = config.batch_size.min(n_train);
    let (h, w) = data.train.image_size();
    let (fh, fw) = config.feature_size(h, w);
    if fh < 2 || fw < 2 || data.test.image_size() != (h, w) {
        return Err(Error::Usage(format!(
            "{h}×{w} training and {:?} test images are too small for the stem or differ \
             (the block would see {fh}×{fw} feature maps)",
            data.test.image_size()
        )));
    }
    warm_up(config, data, mode, batch)?;
    let net = OdeNet::new(config, mode.clone())?;
    let mut opt = nn::Adam::default().build(&net.vs, config.learning_rate)?;
    let mut ode_opt = nn::Adam::default().build(&net.ode_vs, config.learning_rate)?;

    let probe = RssProbe::start();
    let mut rng = SplitMix64(config.seed ^ 0x6d69_6e69_6261_7463); // "minibatc"
    let mut order = rng.permutation(n_train);
    let mut cursor = 0;
    let mut losses = Vec::with_capacity(config.iterations);
    let mut iteration_seconds = Vec::with_capacity(config.iterations);
    let mut first_gradients = Vec::new();
    let mut predicted = Stats::default();
    for it in 1..=config.iterations {
        let start = Instant::now();
        if cursor + batch > n_train {
            order = rng.permutation(n_train);
            cursor = 0;
        }
        let idx = Tensor::from_slice(&order[cursor..cursor + batch]);
        cursor += batch;
        let x = data.train.images.index_select(0, &idx);
        let y = data.train.labels.index_select(0, &idx);
        if it == 1 {
            predicted = net.block.predicted_stats(&tch::no_grad(|| net.stem(&x)))?;
        }
        opt.zero_grad();
        ode_opt.zero_grad();
        let loss = net.loss(&x, &y)?;
        loss.f_backward()?;
        if it == 1 {
            first_gradients = net.gradients();
        }
        opt.step();
        ode_opt.step();
        let value = loss.double_value(&[]);
        iteration_seconds.push(start.elapsed().as_secs_f64());
        if !value.is_finite() {
            return Err(Error::Usage(format!(
                "the loss became {value} at iteration {it}; lower the learning rate"
            )));
        }
        losses.push(value);
        on_iteration(it, value);
    }
    let peak_rss_increase = probe.and_then(|p| p.increase());
    let stats = net.block.stats()?;
    let train_accuracy = net.accuracy(&data.train, config.eval_limit)?;
    let test_accuracy = net.accuracy(&data.test, config.eval_limit)?;
    Ok(TrainResult {
        mode: mode.clone(),
        losses,
        iteration_seconds,
        train_accuracy,
        test_accuracy,
        peak_rss_increase,
        stats,
        predicted,
        first_gradients,
    })
}

/// One untimed forward and backward pass of a throw-away network, so that the one-time set-up
/// of libtorch (thread pool, oneDNN kernels for these shapes) is charged to neither the time
/// nor the memory of the run.
fn warm_up(config: &OdeNetConfig, data: &Data, mode: &Checkpointing, batch: usize) -> Result<()> {
    let net = OdeNet::new(config, mode.clone())?;
    let x = data.train.images.narrow(0, 0, batch as i64);
    let y = data.train.labels.narrow(0, 0, batch as i64);
    net.loss(&x, &y)?.f_backward()?;
    Ok(())
}

/// Progress of [`compare`].
#[derive(Debug)]
pub enum Event<'a> {
    /// Training in `mode` starts (run `index` of `of`).
    Started {
        /// The mode.
        mode: &'a Checkpointing,
        /// Its position in the list, from 0.
        index: usize,
        /// Number of modes.
        of: usize,
    },
    /// An iteration finished.
    Iteration {
        /// The mode.
        mode: &'a Checkpointing,
        /// Iteration, from 1.
        iteration: usize,
        /// Its minibatch loss.
        loss: f64,
    },
    /// Training and evaluation in a mode finished.
    Finished {
        /// Its result.
        result: &'a TrainResult,
    },
}

/// Training runs of the same network, data and seed in several checkpoint modes.
#[derive(Debug)]
pub struct Comparison {
    /// One result per mode, in the order asked for.
    pub results: Vec<TrainResult>,
}

impl Comparison {
    /// Largest `|g − g₀|` over all parameters between each run's first gradient and the first
    /// run's (0 when they agree to the bit); `None` if the parameters differ.
    pub fn max_first_gradient_difference(&self) -> Option<f64> {
        let first = &self.results.first()?.first_gradients;
        let mut worst = 0.0f64;
        for r in &self.results[1..] {
            if r.first_gradients.len() != first.len() {
                return None;
            }
            for ((na, a), (nb, b)) in first.iter().zip(&r.first_gradients) {
                if na != nb || a.size() != b.size() {
                    return None;
                }
                worst = worst.max((a - b).abs().max().double_value(&[]));
            }
        }
        Some(worst)
    }

    /// Whether every run's first gradient equals the first run's bit for bit.
    pub fn first_gradients_identical(&self) -> bool {
        let Some(first) = self.results.first().map(|r| &r.first_gradients) else {
            return true;
        };
        self.results[1..].iter().all(|r| {
            r.first_gradients.len() == first.len()
                && first
                    .iter()
                    .zip(&r.first_gradients)
                    .all(|((na, a), (nb, b))| na == nb && a.equal(b))
        })
    }
}

/// Trains once per mode in `modes` (same seed, so the same weights and minibatches),
/// reporting progress through `on_event`.
pub fn compare(
    config: &OdeNetConfig,
    data: &Data,
    modes: &[Checkpointing],
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Comparison> {
    let mut results = Vec::with_capacity(modes.len());
    for (index, mode) in modes.iter().enumerate() {
        on_event(Event::Started {
            mode,
            index,
            of: modes.len(),
        });
        let result = train(config, data, mode, |iteration, loss| {
            on_event(Event::Iteration {
                mode,
                iteration,
                loss,
            })
        })?;
        on_event(Event::Finished { result: &result });
        results.push(result);
    }
    Ok(Comparison { results })
}
