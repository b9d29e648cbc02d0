//! Training demos shared by the examples (which add a command line, progress and plots) and
//! the tests (which run them small).

pub mod odenet;
pub mod spiral;
pub mod stiff;

/// A device by name, as the examples' `--device` takes it: `cpu`, `cuda` (GPU 0; an error when
/// libtorch sees no CUDA device) or `auto` (CUDA when available, else the CPU).
pub fn parse_device(name: &str) -> Result<tch::Device, String> {
    match name {
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
        "cuda" => Err("--device cuda: libtorch sees no CUDA device".into()),
        "auto" => Ok(tch::Device::cuda_if_available()),
        other => Err(format!("--device must be cpu, cuda or auto, got '{other}'")),
    }
}
