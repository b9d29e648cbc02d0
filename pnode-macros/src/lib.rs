//! `#[neural_ode]` and `model!`: a neural ODE written in Rust syntax, or a `.pode` file,
//! compiled during macro expansion by the same lowering (`pnode-ir`) and code generator
//! (`pnode-codegen`) as `pnodec emit --rust`, with its checkpoint schedule planned at compile
//! time. Use them through the `pnode` facade crate, whose paths the generated code names
//! (`::pnode::runtime`, `::pnode::special`). The work is done by `pnode-macros-impl`; this
//! crate converts tokens and turns a panic, should one ever happen, into a compile error.

use proc_macro::TokenStream;

/// Compiles the model in the module it is put on; see the `pnode` crate for the syntax.
#[proc_macro_attribute]
pub fn neural_ode(attr: TokenStream, item: TokenStream) -> TokenStream {
    let (attr, item) = (
        proc_macro2::TokenStream::from(attr),
        proc_macro2::TokenStream::from(item),
    );
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| std::path::PathBuf::from("."), std::path::PathBuf::from);
    pnode_macros_impl::catch(proc_macro2::Span::call_site(), || {
        pnode_macros_impl::neural_ode_in(attr, item, &dir, &pnode_macros_impl::Paths::default())
    })
    .into()
}

/// `model!("path.pode")`: compiles a `.pode` file (relative to the crate's `Cargo.toml`) into
/// `pub mod NAME`; the crate is rebuilt when the file changes.
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| std::path::PathBuf::from("."), std::path::PathBuf::from);
    pnode_macros_impl::catch(proc_macro2::Span::call_site(), || {
        pnode_macros_impl::model_file(input, &dir, &pnode_macros_impl::Paths::default())
    })
    .into()
}
