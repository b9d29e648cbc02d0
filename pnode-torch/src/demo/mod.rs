//! Training demos shared by the examples (which add a command line, progress and plots) and
//! the tests (which run them small).

pub mod odenet;
pub mod spiral;
pub mod stiff;
