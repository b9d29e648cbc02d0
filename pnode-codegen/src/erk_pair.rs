//! The embedded error estimate of a generated explicit Runge–Kutta pair: what
//! [`crate::generate_erk_pair_stepper`] adds to a fused stepper.
//!
//! For weights `b` and embedded weights `b̂` over all `S` stages (Hairer–Nørsett–Wanner I,
//! §II.4), a trial step from `(t_n, u_n)` with size `h` is the fixed step
//! `u_{n+1} = u_n + h Σ_i b_i K_i` (the generated `forward_step`, so the stage values and
//! `u_{n+1}` are those the reverse sweep recomputes), then the stages that do not influence
//! `u_{n+1}` but are weighed by the estimate (the FSAL stage of dopri5, tsit5 and bosh3,
//! evaluated at `Y_S = u_{n+1}`; the sixth stage of fehlberg45)
//!
//! ```text
//! Y_i = u_n + h Σ_{j<i} a_ij K_j,   K_i = f(t_n + c_i h, Y_i),
//! ```
//!
//! and the estimate `err = h Σ_i (b_i − b̂_i) K_i`, the arithmetic of the runtime's
//! `EmbeddedErk` (`(d_1 K_1 + d_2 K_2 + …)·h` over the nonzero `d_i = b_i − b̂_i`, in stage
//! order), so the two agree bitwise up to the sign of zeros.
//!
//! `K_1 = f(t_n, u_n)` is evaluated once per point, as `EmbeddedErk` does: cached with its
//! `(t, u)` after each attempt (a retry after a rejection starts there), the FSAL stage cached
//! as `f(t_n + h, u_{n+1})`, and the first stage the adaptive driver offers
//! (`seed_first_stage`) taken; a cached `K_1` is used only when its time and state are bitwise
//! the step's.
//!
//! Constants and buffers of the stages only the estimate needs continue the live stages'
//! 1-based numbering (`K7`, `A71`, `C7` for dopri5's seventh stage); `E{i}` is `b_i − b̂_i` of
//! stage `i` in that numbering.
//!
//! # References
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 1993,
//!   §II.4.

use crate::erk::{ErkCoefficients, Live, combination};
use crate::index::float;
use crate::{Error, Options};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// The embedded weights of an explicit pair, for [`crate::generate_erk_pair_stepper`]
/// (convert a `pnode_runtime::Tableau` with `b_hat = t.b_embedded()`,
/// `error_order = t.order().min(t.embedded_order())`, `fsal = t.is_fsal()`).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedWeights {
    /// `b̂`, over all stages like `ErkCoefficients::b`.
    pub b_hat: Vec<f64>,
    /// The order `q` of the estimate (it behaves like `C h^{q+1}`): `min(p, p̂)`.
    pub error_order: u32,
    /// First-same-as-last: the last row of `A` equals `b` bit for bit and `c_S = 1`, so the
    /// last stage is `f(t_n + h, u_{n+1})`, the next step's first stage.
    pub fsal: bool,
}

/// What a pair adds to the generated stepper (all empty without one).
#[derive(Default)]
pub(crate) struct PairCode {
    /// Associated constants.
    pub(crate) consts: TokenStream,
    /// Struct fields (`name: type,`).
    pub(crate) fields: Vec<TokenStream>,
    /// Their initializers in `new` (`name: value,`).
    pub(crate) init: Vec<TokenStream>,
    /// Inherent methods.
    pub(crate) methods: TokenStream,
    /// Trait implementations.
    pub(crate) impls: TokenStream,
}

impl PairCode {
    /// The code of the pair `w` of `t` (whose live stages are `lv`) for the stepper `ty`.
    pub(crate) fn new(
        ty: &syn::Ident,
        t: &ErkCoefficients,
        lv: &Live,
        w: &EmbeddedWeights,
        options: &Options,
    ) -> Result<Self, Error> {
        let big_s = t.b.len();
        let bad = |reason: String| Error::InvalidTableau {
            name: t.name.clone(),
            reason,
        };
        if w.b_hat.len() != big_s {
            return Err(bad(format!(
                "{} embedded weights for {big_s} stages",
                w.b_hat.len()
            )));
        }
        if w.b_hat.iter().any(|x| !x.is_finite()) {
            return Err(bad("an embedded weight is not finite".into()));
        }
        let a = |i: usize, j: usize| t.a[i].get(j).copied().unwrap_or(0.0);
        let last = big_s - 1;
        if w.fsal {
            if t.c[last] != 1.0 {
                return Err(bad(format!(
                    "FSAL needs c[{last}] = 1, found {}",
                    t.c[last]
                )));
            }
            if let Some(j) = (0..big_s).find(|&j| a(last, j).to_bits() != t.b[j].to_bits()) {
                return Err(bad(format!(
                    "FSAL needs row a[{last}] = b: a[{last}][{j}] = {} ≠ b[{j}] = {}",
                    a(last, j),
                    t.b[j]
                )));
            }
        }
        let d: Vec<f64> = t.b.iter().zip(&w.b_hat).map(|(b, bh)| b - bh).collect();
        // Stage numbering: live stages 1 … s, then the stages only the estimate needs.
        let mut num: Vec<Option<usize>> = vec![None; big_s];
        for (li, &i) in lv.idx.iter().enumerate() {
            num[i] = Some(li + 1);
        }
        let mut needed = vec![false; big_s];
        for i in (0..big_s).rev() {
            needed[i] = num[i].is_none()
                && (d[i] != 0.0 || (i + 1..big_s).any(|j| needed[j] && a(j, i) != 0.0));
        }
        let dead: Vec<usize> = (0..big_s).filter(|&i| needed[i]).collect();
        let s = lv.b.len();
        for (m, &i) in dead.iter().enumerate() {
            num[i] = Some(s + m + 1);
        }
        let kname = |m: usize| format_ident!("k{}", m);
        let rt = &options.runtime_path;
        let reusable = lv.idx[0] == 0;
        let fsal = w.fsal && reusable;

        let mut consts = TokenStream::new();
        let q = Literal::u32_unsuffixed(w.error_order);
        consts.extend(quote! {
            /// The order `q` of the error estimate (`EmbeddedStepper::error_order`).
            pub const ERROR_ORDER: u32 = #q;
        });
        let mut fields = Vec::new();
        let mut init = Vec::new();
        // The stages only the estimate needs.
        let mut dead_code = TokenStream::new();
        let mut dead_k = Vec::new();
        for &i in &dead {
            let m = num[i].expect("numbered");
            let km = kname(m);
            let mut terms = Vec::new();
            for j in (0..i).filter(|&j| a(i, j) != 0.0) {
                let mj = num[j].ok_or_else(|| {
                    bad(format!(
                        "stage {i} of the estimate uses the absent stage {j}"
                    ))
                })?;
                let an = format_ident!("A{}{}", m, mj);
                let (v, doc) = (float(a(i, j)), format!(" `a_{m}{mj}` (error estimate)."));
                consts.extend(quote!(#[doc = #doc] pub const #an: f64 = #v;));
                terms.push((quote!(#an), kname(mj)));
            }
            let cn = format_ident!("C{}", m);
            let (v, doc) = (float(t.c[i]), format!(" `c_{m}` (error estimate)."));
            consts.extend(quote!(#[doc = #doc] pub const #cn: f64 = #v;));
            let ti = quote!(t + Self::#cn * h);
            let y = if w.fsal && i == last {
                // Row a_S equals b bit for bit: Y_S is u_{n+1}.
                quote!(&u_next[..])
            } else {
                let fill = match combination(&terms) {
                    Some(comb) => quote!(for e in 0..n { y[e] = u[e] + h * (#comb); }),
                    None => quote!(y.copy_from_slice(u);),
                };
                dead_code.extend(fill);
                quote!(&y[..])
            };
            dead_code.extend(quote! {
                model.try_rhs(#ti, #y, p, &mut #km[..]).map_err(|e| failed(#ti, e))?;
                evals += 1;
            });
            fields.push(quote!(#km: ::std::vec::Vec<f64>,));
            init.push(quote!(#km: ::std::vec![0.0; state_len],));
            dead_k.push(km);
        }
        // The estimate.
        let mut eterms = Vec::new();
        for i in (0..big_s).filter(|&i| d[i] != 0.0) {
            let m =
                num[i].ok_or_else(|| bad(format!("the estimate weighs the absent stage {i}")))?;
            let en = format_ident!("E{}", m);
            let (v, doc) = (float(d[i]), format!(" `b_{m} − b̂_{m}` (error estimate)."));
            consts.extend(quote!(#[doc = #doc] pub const #en: f64 = #v;));
            eterms.push((quote!(#en), kname(m)));
        }
        let estimate = match combination(&eterms) {
            Some(comb) => quote!(for e in 0..n { err[e] = (#comb) * h; }),
            None => quote!(for e in 0..n {
                err[e] = 0.0 * h;
            }),
        };
        let live_k: Vec<syn::Ident> = (1..=s).map(kname).collect();
        // First-stage reuse.
        let (take, keep, seed, reset) = if reusable {
            for f in ["first", "fsal"] {
                let (v, tt, uu, kk) = (
                    format_ident!("{f}_valid"),
                    format_ident!("{f}_t"),
                    format_ident!("{f}_u"),
                    format_ident!("{f}_k"),
                );
                fields.push(quote!(#v: bool, #tt: f64, #uu: ::std::vec::Vec<f64>, #kk: ::std::vec::Vec<f64>,));
                init.push(quote!(#v: false, #tt: 0.0, #uu: ::std::vec![0.0; state_len], #kk: ::std::vec![0.0; state_len],));
            }
            let take = quote! {
                let same = |ct: f64, cu: &[f64]| {
                    ct.to_bits() == at.t.to_bits()
                        && cu.len() == n
                        && cu.iter().zip(u).all(|(a, b)| a.to_bits() == b.to_bits())
                };
                let slot = if self.first_valid && same(self.first_t, &self.first_u) {
                    1
                } else if self.fsal_valid && same(self.fsal_t, &self.fsal_u) {
                    2
                } else {
                    0
                };
                let k1 = match slot {
                    1 => ::core::mem::take(&mut self.first_k),
                    2 => ::core::mem::take(&mut self.fsal_k),
                    _ => ::std::vec::Vec::new(),
                };
                let first = (slot != 0).then_some(&k1[..]);
                let stepped = self.forward_step(model, at, p, u, u_next, ::core::option::Option::Some(stages), first);
                match slot {
                    1 => self.first_k = k1,
                    2 => self.fsal_k = k1,
                    _ => {}
                }
                let mut evals = stepped?;
            };
            let mut keep = quote! {
                *first_t = at.t;
                first_u.copy_from_slice(u);
                first_k.copy_from_slice(k1);
                *first_valid = true;
            };
            if fsal {
                let kl = kname(num[last].expect("the FSAL stage is numbered"));
                let cl = format_ident!("C{}", num[last].expect("numbered"));
                keep = quote! {
                    #keep
                    *fsal_t = at.t + Self::#cl * at.h;
                    fsal_u.copy_from_slice(u_next);
                    fsal_k.copy_from_slice(&#kl[..]);
                    *fsal_valid = true;
                };
            }
            let seed = quote! {
                fn seed_first_stage(&mut self, t: f64, u: &[f64], k1: &[f64]) {
                    self.first_t = t;
                    self.first_u.copy_from_slice(u);
                    self.first_k.copy_from_slice(k1);
                    self.first_valid = true;
                }
            };
            let reset = quote! {
                fn reset(&mut self) {
                    self.first_valid = false;
                    self.fsal_valid = false;
                }
            };
            (take, keep, seed, reset)
        } else {
            let take = quote! {
                let mut evals = self.forward_step(model, at, p, u, u_next, ::core::option::Option::Some(stages), ::core::option::Option::None)?;
            };
            (
                take,
                TokenStream::new(),
                TokenStream::new(),
                TokenStream::new(),
            )
        };
        let caches = if reusable {
            quote!(
                first_valid,
                first_t,
                first_u,
                first_k,
                fsal_valid,
                fsal_t,
                fsal_u,
                fsal_k,
            )
        } else {
            TokenStream::new()
        };
        let methods = quote! {
            /// A trial step of the pair for `AdaptiveSolver`: `u_next` and the stage inputs
            /// `stages` exactly as `forward_step` computes them, and the local error estimate
            /// `err = h Σ_i (b_i − b̂_i) K_i` (stages only the estimate needs evaluated after
            /// the step; `K_1` reused from a cached `f(t, u)` at bitwise the same point).
            /// Returns the number of RHS evaluations.
            pub fn trial_step<M: #rt::model::Rhs + ?Sized>(
                &mut self,
                model: &mut M,
                at: #rt::stepper::StepAt,
                p: &[f64],
                u: &[f64],
                u_next: &mut [f64],
                stages: &mut [f64],
                err: &mut [f64],
            ) -> #rt::Result<u64> {
                let n = u.len();
                #take
                let (t, h) = (at.t, at.h);
                let failed = |t: f64, e| {
                    #rt::Error::model(at.index, t, #rt::Phase::Forward, #rt::model::Eval::Rhs, e)
                };
                let Self { #(#live_k,)* #(#dead_k,)* y, #caches .. } = self;
                #dead_code
                #keep
                #estimate
                ::core::result::Result::Ok(evals)
            }
        };
        let impls = quote! {
            #[allow(unused, clippy::all)]
            impl<M: #rt::model::Rhs + ?Sized> #rt::adaptive::EmbeddedStepper<M> for #ty {
                fn error_order(&self) -> u32 {
                    Self::ERROR_ORDER
                }

                fn try_step(
                    &mut self,
                    model: &mut M,
                    at: #rt::stepper::StepAt,
                    p: &[f64],
                    u: &[f64],
                    u_next: &mut [f64],
                    stages: &mut [f64],
                    err: &mut [f64],
                    stats: &mut #rt::Stats,
                ) -> #rt::Result<()> {
                    stats.rhs_evals += self.trial_step(model, at, p, u, u_next, stages, err)?;
                    ::core::result::Result::Ok(())
                }

                #seed
                #reset
            }
        };
        Ok(PairCode {
            consts,
            fields,
            init,
            methods,
            impls,
        })
    }
}
