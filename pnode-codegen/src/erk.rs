//! Fused explicit Runge–Kutta steppers: stages unrolled, coefficients as constants.
//!
//! Forward, over the live stages `i = 1 … s`:
//! `Y_i = u_n + h Σ_{j<i} a_ij K_j`, `K_i = f(t_n + c_i h, Y_i)`, `u_{n+1} = u_n + h Σ_i b_i K_i`.
//! Reverse (`i = s … 1`), unscaled so a zero `b_i` needs no special case:
//! `w_i = h (b_i λ_{n+1} + Σ_{j>i} a_ji ξ_j)`, `(ξ_i, g_i) = (f_u(Y_i)ᵀ w_i, f_θ(Y_i)ᵀ w_i)`,
//! `λ_n = λ_{n+1} + Σ_i ξ_i`, `μ += Σ_i g_i`.
//!
//! The generated code performs the runtime's `ErkStepper` arithmetic in the same order, so a
//! generated stepper and the runtime's agree to round-off (bitwise, up to the sign of zeros).
//!
//! # References
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 1993.
//! * A. Sandu, "On the properties of Runge–Kutta discrete adjoints", ICCS 2006.

use crate::erk_pair::{EmbeddedWeights, PairCode};
use crate::index::float;
use crate::{Error, Options, type_ident};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// An explicit Butcher tableau as plain data (convert a `pnode_runtime::Tableau` with
/// `a[i] = (0..i).map(|j| t.a(i, j))`, `b = t.b()`, `c = t.c()`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErkCoefficients {
    /// The tableau's name (for documentation).
    pub name: String,
    /// Rows of `A`: row `i` holds `a_i0 … a_i,i−1` (entries at or above the diagonal, if
    /// given, must be zero).
    pub a: Vec<Vec<f64>>,
    /// Weights `b`.
    pub b: Vec<f64>,
    /// Nodes `c`.
    pub c: Vec<f64>,
}

/// The live-stage coefficients: `(a, b, c)` re-indexed over the stages that influence
/// `u_{n+1}` (`b_i ≠ 0`, or `a_ji ≠ 0` for a live `j > i`).
pub(crate) struct Live {
    pub(crate) a: Vec<Vec<f64>>,
    pub(crate) b: Vec<f64>,
    pub(crate) c: Vec<f64>,
    /// The tableau's index of each live stage.
    pub(crate) idx: Vec<usize>,
}

fn live(t: &ErkCoefficients) -> Result<Live, Error> {
    let s = t.b.len();
    let bad = |reason: String| Error::InvalidTableau {
        name: t.name.clone(),
        reason,
    };
    if s == 0 || t.c.len() != s || t.a.len() != s {
        return Err(bad(format!(
            "{} weights, {} nodes and {} rows of A",
            s,
            t.c.len(),
            t.a.len()
        )));
    }
    let a = |i: usize, j: usize| t.a[i].get(j).copied().unwrap_or(0.0);
    for (i, row) in t.a.iter().enumerate() {
        if row.len() > s || row.iter().skip(i).any(|&x| x != 0.0) {
            return Err(bad(format!(
                "row {i} of A is not strictly lower triangular"
            )));
        }
    }
    let all = t.a.iter().flatten().chain(&t.b).chain(&t.c);
    if all.clone().any(|x| !x.is_finite()) {
        return Err(bad("a coefficient is not finite".into()));
    }
    let mut is_live = vec![false; s];
    for i in (0..s).rev() {
        is_live[i] = t.b[i] != 0.0 || (i + 1..s).any(|j| is_live[j] && a(j, i) != 0.0);
    }
    let idx: Vec<usize> = (0..s).filter(|&i| is_live[i]).collect();
    if idx.is_empty() {
        return Err(bad("no stage influences the step".into()));
    }
    Ok(Live {
        a: idx
            .iter()
            .enumerate()
            .map(|(li, &i)| idx[..li].iter().map(|&j| a(i, j)).collect())
            .collect(),
        b: idx.iter().map(|&i| t.b[i]).collect(),
        c: idx.iter().map(|&i| t.c[i]).collect(),
        idx,
    })
}

/// `Σ_j coef_j · vec_j[e]` over the non-zero coefficients, left to right, or `None`.
pub(crate) fn combination(terms: &[(TokenStream, syn::Ident)]) -> Option<TokenStream> {
    let parts: Vec<TokenStream> = terms
        .iter()
        .map(|(c, v)| quote!(Self::#c * #v[e]))
        .collect();
    (!parts.is_empty()).then(|| quote!(#(#parts)+*))
}

/// Generate a stepper type named `name` for the explicit tableau `tableau`, implementing the
/// runtime's `ForwardStepper<M>` and `AdjointStepper<M>` for every model `M`.
///
/// The type has `new(state_len, param_len)` (all scratch allocated there), `LIVE_STAGES`, the
/// live coefficients as constants `A21`, `B1`, `C2`, … (1-based over the live stages), and the
/// fused functions `forward_step`, `stages` (stage inputs, optionally without the last RHS, for
/// recomputation) and `adjoint_step`, each returning how many RHS evaluations or VJPs it made.
/// Dead stages (the FSAL stage of dopri5 at fixed steps) are neither computed nor reversed, and
/// the stage values kept for the adjoint are the stage inputs `Y_1 = u_n, …, Y_s`, as in the
/// runtime's `ErkStepper`, so schedules, statistics and gradients are interchangeable.
pub fn generate_erk_stepper(
    name: &str,
    tableau: &ErkCoefficients,
    options: &Options,
) -> Result<TokenStream, Error> {
    generate(name, tableau, None, None, options)
}

/// [`generate_erk_stepper`] for an embedded pair (bosh3, dopri5, tsit5, fehlberg45): the
/// stepper also implements the runtime's `adaptive::EmbeddedStepper`, so `AdaptiveSolver`
/// drives it. Its `trial_step` is `forward_step` (so `u_{n+1}` and the stage values are the
/// fixed step's) followed by the stages only the estimate needs (dopri5's FSAL stage at
/// `Y_7 = u_{n+1}`, fehlberg45's sixth stage) and the estimate `err = h Σ_i (b_i − b̂_i) K_i`
/// in the arithmetic of the runtime's `EmbeddedErk` (so the two agree bitwise up to the sign of
/// zeros), reusing `K_1 = f(t_n, u_n)` cached at bitwise the same point (a retry, the FSAL
/// stage of the last step, the driver's seed). The extra stages' constants continue the live
/// numbering (`A71`, `C7`); `E{i}` is `b_i − b̂_i`; `ERROR_ORDER` is `q`. Reference:
/// Hairer–Nørsett–Wanner I, §II.4.
pub fn generate_erk_pair_stepper(
    name: &str,
    tableau: &ErkCoefficients,
    embedded: &EmbeddedWeights,
    options: &Options,
) -> Result<TokenStream, Error> {
    generate(name, tableau, None, Some(embedded), options)
}

/// [`generate_erk_stepper`] for a model of `state_len` states and `param_len` parameters
/// known when the code is generated (the `#[neural_ode]` macro): the stage buffers are
/// fixed-size arrays `[f64; N]` in the struct instead of vectors, loops run to the constant
/// `N` and the state slices are rebound as arrays, so the compiler can keep short states in
/// registers and drop bounds checks. The arithmetic, its order and the stage layout are those
/// of [`generate_erk_stepper`]. `new(state_len, param_len)` keeps its signature; the solver
/// checks the model's lengths against the stepper's, and a slice of another length panics
/// with its name (`u has N elements`).
pub fn generate_erk_stepper_sized(
    name: &str,
    tableau: &ErkCoefficients,
    state_len: usize,
    param_len: usize,
    options: &Options,
) -> Result<TokenStream, Error> {
    generate(name, tableau, Some((state_len, param_len)), None, options)
}

fn generate(
    name: &str,
    tableau: &ErkCoefficients,
    sizes: Option<(usize, usize)>,
    embedded: Option<&EmbeddedWeights>,
    options: &Options,
) -> Result<TokenStream, Error> {
    let ty = type_ident(name)?;
    let lv = live(tableau)?;
    let pair = embedded
        .map(|w| PairCode::new(&ty, tableau, &lv, w, options))
        .transpose()?
        .unwrap_or_default();
    // Only a pair's steps can be given their first stage (`first`, a cached `f(t, u)`).
    let with_first = embedded.is_some();
    let s = lv.b.len();
    let rt = &options.runtime_path;
    let k: Vec<syn::Ident> = (1..=s).map(|i| format_ident!("k{}", i)).collect();
    let xi: Vec<syn::Ident> = (1..=s).map(|i| format_ident!("xi{}", i)).collect();
    let aname = |i: usize, j: usize| format_ident!("A{}{}", i + 1, j + 1);
    let (bname, cname) = (
        |i: usize| format_ident!("B{}", i + 1),
        |i: usize| format_ident!("C{}", i + 1),
    );
    // Constants.
    let mut consts = TokenStream::new();
    for i in 0..s {
        for j in 0..i {
            if lv.a[i][j] != 0.0 {
                let (n, v) = (aname(i, j), float(lv.a[i][j]));
                let doc = format!(" `a_{}{}`.", i + 1, j + 1);
                consts.extend(quote!(#[doc = #doc] pub const #n: f64 = #v;));
            }
        }
    }
    for i in 0..s {
        let (n, v) = (bname(i), float(lv.b[i]));
        let doc = format!(" `b_{}`.", i + 1);
        consts.extend(quote!(#[doc = #doc] pub const #n: f64 = #v;));
        let (n, v) = (cname(i), float(lv.c[i]));
        let doc = format!(" `c_{}`.", i + 1);
        consts.extend(quote!(#[doc = #doc] pub const #n: f64 = #v;));
    }
    let time = |i: usize| {
        if lv.c[i] == 0.0 {
            quote!(t)
        } else {
            let c = cname(i);
            quote!(t + Self::#c * h)
        }
    };
    // Stage inputs and derivatives.
    let mut stage_code = TokenStream::new();
    for i in 0..s {
        let (lo, hi) = (
            Literal::usize_unsuffixed(i),
            Literal::usize_unsuffixed(i + 1),
        );
        let ti = time(i);
        let ki = &k[i];
        let rhs = if i + 1 == s {
            quote!(if last_k { model.try_rhs(#ti, y, p, #ki).map_err(|e| failed(#ti, e))?; evals += 1; })
        } else {
            quote!(model.try_rhs(#ti, y, p, #ki).map_err(|e| failed(#ti, e))?; evals += 1;)
        };
        let terms: Vec<(TokenStream, syn::Ident)> = (0..i)
            .filter(|&j| lv.a[i][j] != 0.0)
            .map(|j| {
                let a = aname(i, j);
                (quote!(#a), k[j].clone())
            })
            .collect();
        let fill = match combination(&terms) {
            Some(comb) => quote!(for e in 0..n { y[e] = u[e] + h * (#comb); }),
            None => quote!(y.copy_from_slice(u);),
        };
        if i == 0 {
            stage_code.extend(quote! {
                if let Some(st) = stages.as_deref_mut() {
                    st[..n].copy_from_slice(u);
                }
            });
            let eval =
                quote!(model.try_rhs(#ti, u, p, #ki).map_err(|e| failed(#ti, e))?; evals += 1;);
            let guard = match (with_first, s == 1) {
                (true, true) => quote!(else if last_k),
                (true, false) => quote!(else),
                (false, true) => quote!(if last_k),
                (false, false) => TokenStream::new(),
            };
            stage_code.extend(match (with_first, s == 1) {
                (true, _) => quote! {
                    if let ::core::option::Option::Some(k) = first {
                        #ki.copy_from_slice(k);
                    } #guard { #eval }
                },
                (false, true) => quote!(#guard { #eval }),
                (false, false) => eval,
            });
            continue;
        }
        stage_code.extend(quote! {
            {
                let y: &mut [f64] = match stages.as_deref_mut() {
                    Some(st) => &mut st[#lo * n..#hi * n],
                    None => &mut scratch[..],
                };
                #fill
                #rhs
            }
        });
    }
    let bterms: Vec<(TokenStream, syn::Ident)> = (0..s)
        .filter(|&i| lv.b[i] != 0.0)
        .map(|i| {
            let b = bname(i);
            (quote!(#b), k[i].clone())
        })
        .collect();
    let update = combination(&bterms).expect("a live stage has a weight");
    // Reverse stages.
    let mut reverse_code = TokenStream::new();
    for i in (0..s).rev() {
        let mut terms = Vec::new();
        if lv.b[i] != 0.0 {
            let b = bname(i);
            terms.push(quote!(Self::#b * lambda[e]));
        }
        for j in i + 1..s {
            if lv.a[j][i] != 0.0 {
                let (a, x) = (aname(j, i), &xi[j]);
                terms.push(quote!(Self::#a * #x[e]));
            }
        }
        let (lo, hi) = (
            Literal::usize_unsuffixed(i),
            Literal::usize_unsuffixed(i + 1),
        );
        let (ti, x) = (time(i), &xi[i]);
        reverse_code.extend(quote! {
            {
                for e in 0..n { w[e] = h * (#(#terms)+*); }
                model
                    .try_vjp(#ti, &stages[#lo * n..#hi * n], p, w, #x, gp)
                    .map_err(|e| failed(#ti, e))?;
                for (m, g) in mu.iter_mut().zip(gp.iter()) { *m += *g; }
            }
        });
    }
    let s_lit = Literal::usize_unsuffixed(s);
    let s_u64 = Literal::u64_unsuffixed(s as u64);
    let s_m1 = Literal::u64_unsuffixed(s as u64 - 1);
    let doc = format!(
        " The explicit Runge–Kutta method `{}` ({s} live stages) with its exact discrete \
         adjoint, generated by pnode-codegen: stages unrolled, coefficients as constants.",
        tableau.name
    );
    let (first_param, first_arg, no_first) = if with_first {
        (
            quote!(first: ::core::option::Option<&[f64]>,),
            quote!(, first),
            quote!(, ::core::option::Option::None),
        )
    } else {
        (TokenStream::new(), TokenStream::new(), TokenStream::new())
    };
    // Doc lines as `///` comments in `quote!` would give them.
    let (stages_doc, forward_doc): (&[&str], &[&str]) = if with_first {
        (
            &[
                " The stage inputs `Y_i` of the step `at` from `u` (into `stages`,",
                " `LIVE_STAGES` vectors, when given) and the stage derivatives `K_i` (the last one",
                " only when `last_k`; `K_1` copied from `first` instead of evaluated when given,",
                " which must be `f(t, u)`). Returns the number of RHS evaluations; a model failure",
                " is the runtime's `Error::Model` of this step in `phase`.",
            ],
            &[
                " `u_next = u + h Σ b_i K_i` for the step `at`, keeping the stage inputs in",
                " `stages` when given (`K_1` from `first` when given, see `stages`). Returns the",
                " number of RHS evaluations.",
            ],
        )
    } else {
        (
            &[
                " The stage inputs `Y_i` of the step `at` from `u` (into `stages`,",
                " `LIVE_STAGES` vectors, when given) and the stage derivatives `K_i` (the last one",
                " only when `last_k`). Returns the number of RHS evaluations; a model failure is",
                " the runtime's `Error::Model` of this step in `phase`.",
            ],
            &[
                " `u_next = u + h Σ b_i K_i` for the step `at`, keeping the stage inputs in",
                " `stages` when given. Returns the number of RHS evaluations.",
            ],
        )
    };
    let (stages_doc, forward_doc) = (
        quote!(#(#[doc = #stages_doc])*),
        quote!(#(#[doc = #forward_doc])*),
    );
    let PairCode {
        consts: pair_consts,
        fields: pair_fields,
        init: pair_init,
        methods: pair_methods,
        impls: pair_impls,
    } = pair;
    // Buffers: vectors sized by `new`, or arrays of the known sizes.
    let (bn, bp, zn, zp, len_u, len_l, fix_u, fix_next, fix_l) = match sizes {
        None => (
            quote!(::std::vec::Vec<f64>),
            quote!(::std::vec::Vec<f64>),
            quote!(::std::vec![0.0; state_len]),
            quote!(::std::vec![0.0; param_len]),
            quote!(u.len()),
            quote!(lambda.len()),
            TokenStream::new(),
            TokenStream::new(),
            TokenStream::new(),
        ),
        Some((n, np)) => {
            let (n, np) = (Literal::usize_unsuffixed(n), Literal::usize_unsuffixed(np));
            let msg = |v: &str| format!("`{v}` has {n} elements");
            let (mu, mn, ml) = (msg("u"), msg("u_next"), msg("lambda"));
            (
                quote!([f64; #n]),
                quote!([f64; #np]),
                quote!([0.0; #n]),
                quote!([0.0; #np]),
                quote!(#n),
                quote!(#n),
                quote!(let u: &[f64; #n] = u.try_into().expect(#mu);),
                quote!(let u_next: &mut [f64; #n] = u_next.try_into().expect(#mn);),
                quote!(let lambda: &mut [f64; #n] = lambda.try_into().expect(#ml);),
            )
        }
    };
    Ok(quote! {
        #[doc = #doc]
        #[derive(Debug, Clone)]
        pub struct #ty {
            #(#k: #bn,)*
            #(#xi: #bn,)*
            y: #bn,
            w: #bn,
            gp: #bp,
            #(#pair_fields)*
        }

        #[allow(unused, clippy::all)]
        impl #ty {
            /// Number of live stages.
            pub const LIVE_STAGES: usize = #s_lit;
            #consts
            #pair_consts

            /// A stepper for `state_len` states and `param_len` parameters.
            pub fn new(state_len: usize, param_len: usize) -> Self {
                Self {
                    #(#k: #zn,)*
                    #(#xi: #zn,)*
                    y: #zn,
                    w: #zn,
                    gp: #zp,
                    #(#pair_init)*
                }
            }

            #stages_doc
            pub fn stages<M: #rt::model::Rhs + ?Sized>(
                &mut self,
                model: &mut M,
                at: #rt::stepper::StepAt,
                phase: #rt::Phase,
                p: &[f64],
                u: &[f64],
                mut stages: ::core::option::Option<&mut [f64]>,
                last_k: bool,
                #first_param
            ) -> #rt::Result<u64> {
                let (t, h) = (at.t, at.h);
                let failed = |t: f64, e| {
                    #rt::Error::model(at.index, t, phase, #rt::model::Eval::Rhs, e)
                };
                let n = #len_u;
                #fix_u
                let Self { #(#k,)* y: scratch, .. } = self;
                let mut evals = 0;
                #stage_code
                ::core::result::Result::Ok(evals)
            }

            #forward_doc
            pub fn forward_step<M: #rt::model::Rhs + ?Sized>(
                &mut self,
                model: &mut M,
                at: #rt::stepper::StepAt,
                p: &[f64],
                u: &[f64],
                u_next: &mut [f64],
                stages: ::core::option::Option<&mut [f64]>,
                #first_param
            ) -> #rt::Result<u64> {
                let evals = self.stages(model, at, #rt::Phase::Forward, p, u, stages, true #first_arg)?;
                let h = at.h;
                let n = #len_u;
                #fix_u
                #fix_next
                let Self { #(#k,)* .. } = self;
                for e in 0..n { u_next[e] = u[e] + h * (#update); }
                ::core::result::Result::Ok(evals)
            }

            /// The adjoint of the step `at` whose stage inputs are `stages`: `lambda` goes
            /// from `λ_{n+1}` to `λ_n`, `mu += f_θᵀ w` over the stages. Returns the number of
            /// VJPs.
            pub fn adjoint_step<M: #rt::model::RhsVjp + ?Sized>(
                &mut self,
                model: &mut M,
                at: #rt::stepper::StepAt,
                p: &[f64],
                stages: &[f64],
                lambda: &mut [f64],
                mu: &mut [f64],
            ) -> #rt::Result<u64> {
                let (t, h) = (at.t, at.h);
                let failed = |t: f64, e| {
                    #rt::Error::model(at.index, t, #rt::Phase::Reverse, #rt::model::Eval::Vjp, e)
                };
                let n = #len_l;
                #fix_l
                let Self { #(#xi,)* w, gp, .. } = self;
                #reverse_code
                for e in 0..n { lambda[e] = lambda[e] #(+ #xi[e])*; }
                ::core::result::Result::Ok(#s_u64)
            }

            #pair_methods
        }

        #[allow(unused, clippy::all)]
        impl<M: #rt::model::Rhs + ?Sized> #rt::stepper::ForwardStepper<M> for #ty {
            fn cost(&self) -> #rt::checkpoint::StepCost {
                #rt::checkpoint::StepCost {
                    rhs_per_step: #s_u64,
                    rhs_per_stage_recompute: #s_m1,
                    vjp_per_reverse: #s_u64,
                    stage_vectors: #s_u64,
                }
            }

            fn stage_vectors(&self) -> usize {
                Self::LIVE_STAGES
            }

            fn step(
                &mut self,
                model: &mut M,
                at: #rt::stepper::StepAt,
                p: &[f64],
                u: &[f64],
                u_next: &mut [f64],
                stages: ::core::option::Option<&mut [f64]>,
                stats: &mut #rt::Stats,
            ) -> #rt::Result<()> {
                stats.rhs_evals += self.forward_step(model, at, p, u, u_next, stages #no_first)?;
                ::core::result::Result::Ok(())
            }

            fn recompute_stages(
                &mut self,
                model: &mut M,
                at: #rt::stepper::StepAt,
                p: &[f64],
                u: &[f64],
                stages: &mut [f64],
                stats: &mut #rt::Stats,
            ) -> #rt::Result<()> {
                stats.rhs_evals += self.stages(
                    model,
                    at,
                    #rt::Phase::Recompute,
                    p,
                    u,
                    ::core::option::Option::Some(stages),
                    false
                    #no_first
                )?;
                ::core::result::Result::Ok(())
            }
        }

        #[allow(unused, clippy::all)]
        impl<M: #rt::model::RhsVjp + ?Sized> #rt::stepper::AdjointStepper<M> for #ty {
            fn reverse(
                &mut self,
                model: &mut M,
                at: #rt::stepper::StepAt,
                p: &[f64],
                stages: &[f64],
                lambda: &mut [f64],
                mu: &mut [f64],
                stats: &mut #rt::Stats,
            ) -> #rt::Result<()> {
                stats.vjp_evals += self.adjoint_step(model, at, p, stages, lambda, mu)?;
                ::core::result::Result::Ok(())
            }
        }

        #pair_impls
    })
}
