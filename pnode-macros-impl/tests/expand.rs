//! The translation Rust syntax → `.pode` (checked through the DSL printer), the errors of
//! invalid input, and a snapshot of one small model's whole expansion.

use pnode_macros_impl::{Paths, model_file, neural_ode, syntax};
use proc_macro2::TokenStream;
use quote::quote;

/// The `.pode` text of a model module's translation.
fn dsl(attr: TokenStream, body: TokenStream) -> String {
    let item = quote!(mod m { #body });
    let t = syntax::translate(attr, item).unwrap_or_else(|e| panic!("{e}"));
    pnode_grammar::print(&t.model)
}

/// The one-line DSL of the derivative of state `x` given by `rhs`.
fn check_expr(rhs: TokenStream, expect: &str) {
    let text = dsl(
        quote!(),
        quote! {
            state! { x[2, 2] = zeros }
            param! { a[2, 2] = ones }
            fn rhs(t: f64, x: f64) -> f64 { #rhs }
        },
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("d(x)/dt"))
        .unwrap_or_else(|| panic!("no equation in\n{text}"));
    assert_eq!(line, format!("d(x)/dt = {expect}"), "{text}");
}

/// The messages of the expansion's compile errors (`compile_error! { "…" }`).
fn errors(out: &TokenStream) -> Vec<String> {
    let text = out.to_string();
    text.split("compile_error !")
        .skip(1)
        .map(|s| {
            let start = s.find('"').expect("a message") + 1;
            let end = s[start..].find("\" }").map_or(s.len(), |e| start + e);
            s[start..end].replace("\\\"", "\"").replace("\\n", "\n")
        })
        .collect()
}

fn expand(attr: TokenStream, body: TokenStream) -> TokenStream {
    neural_ode(attr, quote!(mod m { #body }), &Paths::default())
}

fn check_err(attr: TokenStream, body: TokenStream, expect: &str) {
    let out = expand(attr, body);
    let errs = errors(&out);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains(expect), "`{}` lacks `{expect}`", errs[0]);
    // The fallback module keeps the names resolvable.
    assert!(out.to_string().contains("pub struct Ode"), "{out}");
}

#[test]
fn expressions_translate_to_the_dsl() {
    check_expr(quote!(-x * 2.0 + a / 3), "-x * 2.0 + a / 3");
    check_expr(quote!(x.powi(2) + pow(x, 0.5)), "x ^ 2 + x ^ 0.5");
    check_expr(quote!((x + 1.0).powf(a)), "(x + 1.0) ^ a");
    check_expr(
        quote!(matmul(a, x) - a.matmul(x) + x.dot(a)),
        "a @ x - a @ x + x @ a",
    );
    check_expr(
        quote!(x.tanh() * tanh(x) + x.ln()),
        "tanh(x) * tanh(x) + log(x)",
    );
    check_expr(
        quote!(sum(x, axis = 0) + mean(x)),
        "sum(x, axis = 0) + mean(x)",
    );
    check_expr(
        quote!(x[(.., 1)] + x[0][1] + x[(1, 0)]),
        "x[:, 1] + x[0][1] + x[1, 0]",
    );
    check_expr(quote!(x[0..1] + x[1..] + x[..1]), "x[0:1] + x[1:] + x[:1]");
    check_expr(
        quote!([[1.0, 2.0], [x[(0, 0)], t]]),
        "[[1.0, 2.0], [x[0, 0], t]]",
    );
    check_expr(quote!((x)), "x");
}

#[test]
fn items_translate_to_the_dsl() {
    let text = dsl(
        quote!(
            method = "rk4",
            steps = 10,
            t = (0.0, 2.5),
            checkpoint = "all"
        ),
        quote! {
            state! { x = 1.0, u[2] = [1.0, -1.0] }
            param! { k = 0.5 }
            const C: f64 = 2.0;
            layer! { net = mlp([2, 4, 2], activation = tanh) }
            fn rhs(t: f64, x: f64, u: [f64; 2]) -> (f64, [f64; 2]) {
                let v = k * x;
                (-v * C, net(u))
            }
        },
    );
    let expect = "model m\n\nstate x = 1.0\nstate u[2] = [1.0, -1.0]\n\nparam k = 0.5\n\n\
        const C = 2.0\n\nlayer net = mlp([2, 4, 2], activation = tanh)\n\nlet v = k * x\n\n\
        d(x)/dt = -v * C\nd(u)/dt = net(u)\n\nsolve {\n    method = rk4\n    steps = 10\n    \
        t = 0.0 .. 2.5\n    checkpoint = store_all\n}\n";
    assert_eq!(text, expect);
}

#[test]
fn step_control_options_become_the_methods_arguments() {
    let body = quote! {
        state! { x[2] = [1.0, 0.0] }
        fn rhs(t: f64, x: [f64; 2]) -> [f64; 2] { -x }
    };
    let text = dsl(
        quote!(
            method = "dopri5",
            rtol = 1e-6,
            atol = [1e-9, 1e-8],
            h_max = 0.5,
            max_steps = 500,
            t = (0.0, 2.0)
        ),
        body.clone(),
    );
    assert!(
        text.contains(
            "method = dopri5(rtol = 1e-6, atol = [1e-9, 1e-8], h_max = 0.5, max_steps = 500)"
        ),
        "{text}"
    );
    // Adaptive: no default `steps`; a fixed method keeps it.
    assert_eq!(
        text.matches("steps =").count(),
        1,
        "only `max_steps`: {text}"
    );
    assert!(dsl(quote!(method = "dopri5"), body.clone()).contains("steps = 100"));
    // Written as the DSL writes it, the same.
    let text = dsl(
        quote!(method = dopri5(rtol = 1e-6), t = (0.0, 2.0)),
        body.clone(),
    );
    assert!(
        text.contains("method = dopri5(rtol = 1e-6)") && !text.contains("steps ="),
        "{text}"
    );
    // The expansion is an `Ode` over the runtime's adaptive solver, without a schedule.
    let out = expand(
        quote!(
            method = "tsit5",
            rtol = 1e-5,
            checkpoint = online(slots = 3)
        ),
        body,
    )
    .to_string();
    assert!(
        out.contains("AdaptiveSolver < Stepper >") && out.contains("EmbeddedErk"),
        "{out}"
    );
    assert!(
        out.contains("pub const RTOL") && !out.contains("N_STEPS"),
        "{out}"
    );
    assert!(out.contains("at most 3 solution slots"), "{out}");
}

#[test]
fn invalid_step_control_is_one_error_at_its_tokens() {
    let lv = quote! {
        state! { x = 1.0 }
        param! { k = 0.5 }
        fn rhs(x: f64) -> f64 { -k * x }
    };
    check_err(quote!(rtol = 1e-6), lv.clone(), "give the method too");
    check_err(
        quote!(method = rk4, rtol = 1e-6),
        lv.clone(),
        "has no error estimate",
    );
    check_err(
        quote!(
            method = "dopri5",
            rtol = 1e-6,
            checkpoint = revolve(slots = 4)
        ),
        lv.clone(),
        "revolve",
    );
    check_err(quote!(method = "dopri5", rtol = -1.0), lv.clone(), "rtol");
    check_err(
        quote!(method = "dopri5", rtol = 1e-6, steps = 10),
        lv,
        "steps",
    );
}

#[test]
fn invalid_input_is_one_error_at_the_right_place() {
    let lv = quote! {
        state! { x = 1.0 }
        param! { k = 0.5 }
    };
    check_err(
        quote!(),
        quote!(#lv fn rhs(x: f64) -> f64 { x ^ 2 }),
        "exclusive or",
    );
    check_err(
        quote!(),
        quote!(#lv fn rhs(x: f64) -> f64 { z * x }),
        "unknown name `z`",
    );
    check_err(
        quote!(),
        quote!(#lv fn rhs(x: f64) -> (f64, f64) { (x, x) }),
        "returns 2 values",
    );
    check_err(
        quote!(methd = rk4),
        quote!(#lv fn rhs(x: f64) -> f64 { x }),
        "did you mean `method`",
    );
    // Newton options: implicit methods only, values checked by the lowering, PETSc refused.
    check_err(
        quote!(method = rk4, newton_tol = 1e-8),
        quote!(#lv fn rhs(x: f64) -> f64 { x }),
        "only applies to implicit methods",
    );
    check_err(
        quote!(method = "backward_euler", linear_solver = "lu"),
        quote!(#lv fn rhs(x: f64) -> f64 { x }),
        "`linear_solver` expects gmres, dense or petsc",
    );
    check_err(
        quote!(method = sdirk2, linear_solver = petsc),
        quote!(#lv fn rhs(x: f64) -> f64 { x }),
        "`petsc` is not available",
    );
    check_err(
        quote!(),
        quote!(#lv fn rhs(x: f64) -> f64 { if x { x } else { x } }),
        "unsupported",
    );
    check_err(quote!(), quote!(#lv), "has no `fn rhs");
    check_err(
        quote!(steps = 0),
        quote!(#lv fn rhs(x: f64) -> f64 { x }),
        "[I0",
    );
    // Not a module: an error and nothing else.
    let out = neural_ode(
        quote!(),
        quote!(
            struct S;
        ),
        &Paths::default(),
    );
    assert_eq!(errors(&out).len(), 1);
}

#[test]
fn model_file_reports_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("pnode-macros-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.pode"),
        "model bad\nstate u = 1.0\nd(u)/dt = -q * u\n",
    )
    .unwrap();
    let out = model_file(quote!("bad.pode"), &dir, &Paths::default());
    let errs = errors(&out);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("bad.pode:3:12: unknown name `q`"),
        "{}",
        errs[0]
    );
    assert!(
        out.to_string().contains("include_bytes"),
        "rebuilds when the file changes"
    );
    std::fs::write(
        dir.join("ok.pode"),
        "model ok\nstate u = 1.0\nd(u)/dt = -u\n",
    )
    .unwrap();
    let out = model_file(quote!("ok.pode"), &dir, &Paths::default());
    assert!(errors(&out).is_empty());
    assert!(out.to_string().contains("pub mod ok"));
    let out = model_file(quote!("missing.pode"), &dir, &Paths::default());
    assert!(errors(&out)[0].starts_with("cannot read `missing.pode`"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The whole expansion of a two-state model on a 4-step grid, formatted: the generated model
/// (RHS, JVP, VJP), the fused RK4 stepper and `Ode` with its compile-time schedule.
#[test]
fn snapshot_of_a_small_model() {
    let out = expand(
        quote!(
            method = "rk4",
            steps = 4,
            t = (0.0, 1.0),
            checkpoint = revolve(slots = 2)
        ),
        quote! {
            state! { x = 1.0, v = 0.0 }
            param! { omega = 2.0 }
            fn rhs(t: f64, x: f64, v: f64) -> (f64, f64) {
                (v, -omega.powi(2) * x)
            }
        },
    );
    assert!(errors(&out).is_empty());
    let file: syn::File = syn::parse2(out).expect("the expansion parses");
    insta::assert_snapshot!(prettyplease::unparse(&file));
}

#[test]
fn lowering_warnings_become_deprecation_warnings_at_their_tokens() {
    let out = expand(
        quote!(method = "rk4", steps = 10),
        quote! {
            state! { x = 1.0 }
            param! { k = 0.5, spare = 2.0 }
            fn rhs(t: f64, x: f64) -> f64 { -k * x }
        },
    );
    assert!(errors(&out).is_empty(), "{out}");
    let text = out.to_string();
    assert_eq!(text.matches("deprecated").count(), 1, "{text}");
    assert!(text.contains("pnode: unused parameter `spare`"), "{text}");
    // A model without warnings has none.
    let out = expand(
        quote!(method = "rk4", steps = 10),
        quote! {
            state! { x = 1.0 }
            param! { k = 0.5 }
            fn rhs(t: f64, x: f64) -> f64 { -k * x }
        },
    );
    assert!(!out.to_string().contains("deprecated"), "{out}");
}

/// `data(..)` under the macros: read at compile time relative to the crate (inline models) or
/// the `.pode` file (file models), each file `include_bytes!`d so cargo rebuilds; a bad file is
/// one compile error naming it.
#[test]
fn data_files_are_read_at_compile_time_and_tracked() {
    use pnode_macros_impl::neural_ode_in;
    let dir = std::env::temp_dir().join(format!("pnode-macros-data-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("x0.csv"), "0.25\n-0.5\n").unwrap();
    std::fs::write(dir.join("t.csv"), "0\n0.25\n0.75\n1\n").unwrap();
    std::fs::write(dir.join("short.csv"), "1\n").unwrap();
    let body = quote! {
        state! { x[2] = data("x0.csv") }
        fn rhs(x: [f64; 2]) -> [f64; 2] { -x }
    };
    let out = neural_ode_in(
        quote!(steps = data("t.csv"), t = (0.0, 1.0), outputs = [0.5, 1.0]),
        quote!(mod m { #body }),
        &dir,
        &Paths::default(),
    );
    assert!(errors(&out).is_empty(), "{:?}", errors(&out));
    let text = out.to_string();
    for f in ["x0.csv", "t.csv"] {
        let abs = std::path::absolute(dir.join(f)).unwrap();
        let tracked = format!("include_bytes ! ({:?})", abs.to_string_lossy());
        assert!(text.contains(&tracked), "{f} not tracked in {text}");
    }
    // The values: u0 from the file, the grid's points with the output time 0.5 inserted.
    let file: syn::File = syn::parse2(out).unwrap();
    let pretty = prettyplease::unparse(&file);
    assert!(
        pretty.contains("pub const U0: [f64; 2] = [0.25, -0.5];"),
        "{pretty}"
    );
    assert!(
        pretty.contains("pub const GRID_TIMES: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];"),
        "{pretty}"
    );

    // A file of the wrong size: one error naming the file and both sizes, still tracked.
    let out = neural_ode_in(
        quote!(),
        quote!(
            mod m {
                state! { x[2] = data("short.csv") }
                fn rhs(x: [f64; 2]) -> [f64; 2] {
                    -x
                }
            }
        ),
        &dir,
        &Paths::default(),
    );
    let errs = errors(&out);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("short.csv") && errs[0].contains("expected 2 values"),
        "{}",
        errs[0]
    );
    assert!(out.to_string().contains("include_bytes"));
    assert!(
        out.to_string().contains("pub struct Ode"),
        "fallback module"
    );

    // `model!`: paths relative to the `.pode` file's directory.
    std::fs::write(dir.join("models/x0.csv"), "3\n4\n").unwrap();
    std::fs::write(
        dir.join("models/f.pode"),
        "model f\nstate x[2] = data(\"x0.csv\")\nd(x)/dt = -x\n",
    )
    .unwrap();
    let out = model_file(quote!("models/f.pode"), &dir, &Paths::default());
    assert!(errors(&out).is_empty(), "{:?}", errors(&out));
    let pretty = prettyplease::unparse(&syn::parse2::<syn::File>(out).unwrap());
    assert!(
        pretty.contains("pub const U0: [f64; 2] = [3.0, 4.0];"),
        "{pretty}"
    );

    // Constants from files: read while lowering, relative to the `.pode` file, tracked; the
    // expansion is the inline constant's, token for token; a missing one is a compile error
    // naming the file.
    std::fs::write(dir.join("models/k.csv"), "0.5\n2\n").unwrap();
    let with_const = |name: &str, k: &str| {
        std::fs::write(
            dir.join(format!("models/{name}.pode")),
            format!("model c\nconst k = {k}\nstate x[2] = [1.0, 1.0]\nd(x)/dt = -k * x\n"),
        )
        .unwrap();
        let lit = format!("models/{name}.pode");
        model_file(quote!(#lit), &dir, &Paths::default())
    };
    let from_file = with_const("k_file", "data(\"k.csv\")");
    assert!(errors(&from_file).is_empty(), "{:?}", errors(&from_file));
    let abs = std::path::absolute(dir.join("models/k.csv")).unwrap();
    let tracked = format!("include_bytes ! ({:?})", abs.to_string_lossy());
    let from_file = from_file.to_string();
    assert!(
        from_file.contains(&tracked),
        "k.csv not tracked in {from_file}"
    );
    let inline = with_const("k_inline", "[0.5, 2.0]").to_string();
    // The expansion less its `const _: &[u8] = include_bytes!(..);` file trackers.
    let strip = |t: &str| {
        let marker = "const _ : & [u8] = :: core :: include_bytes";
        let mut out = String::new();
        let mut rest = t;
        while let Some(i) = rest.find(marker) {
            out += &rest[..i];
            rest = rest[i..].split_once("; ").map_or("", |(_, r)| r);
        }
        (out + rest).replace("k_file", "k_inline")
    };
    assert_eq!(strip(&from_file), strip(&inline));
    let missing = with_const("k_missing", "data(\"nowhere.csv\")");
    let errs = errors(&missing);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("cannot read constant `k`: cannot read `")
            && errs[0].contains("nowhere.csv")
            && errs[0].contains("[I012]"),
        "{}",
        errs[0]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
