//! Opaque layers in the IR: lowering (`layer net = opaque(in, out)`), their derivatives (a JVP
//! node in the state direction, a VJP node kept as an effect even when its input is inactive),
//! and the refusal of every executor that has no layer to call.

use pnode_ir::lower::{OpaqueLayerDecl, Program, codes, compile_source};
use pnode_ir::{Error, Interpreter, Op, Shape, jvp, vjp};

fn program(src: &str) -> Program {
    let l = compile_source(src);
    let text: String = l
        .diagnostics
        .iter()
        .map(|d| d.render_plain(src, "m.pode"))
        .collect();
    assert!(l.diagnostics.is_empty(), "{text}");
    l.program.expect("a program")
}

fn errors(src: &str) -> Vec<(Option<&'static str>, String)> {
    let l = compile_source(src);
    assert!(l.program.is_none(), "lowered: {src}");
    l.diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.code, d.message.clone()))
        .collect()
}

fn count(f: &pnode_ir::Function, name: &str) -> usize {
    f.graph()
        .nodes()
        .iter()
        .filter(|n| n.op.name() == name)
        .count()
}

const MODEL: &str = "model m\nstate u[2] = [1, 2]\nparam k = 0.5\n\
    layer net = opaque(2, [2])\nlayer drive = opaque(1, 2)\n\
    d(u)/dt = net(u) - k * u + drive([t])\n";

#[test]
fn opaque_layers_lower_to_opaque_nodes_numbered_in_declaration_order() {
    let p = program(MODEL);
    assert_eq!(
        p.opaque_layers,
        vec![
            OpaqueLayerDecl {
                name: "net".into(),
                input: Shape::new(&[2]),
                output: Shape::new(&[2]),
            },
            OpaqueLayerDecl {
                name: "drive".into(),
                input: Shape::new(&[1]),
                output: Shape::new(&[2]),
            },
        ]
    );
    assert_eq!(
        p.opaque_layer_lengths(),
        vec![("net".to_string(), 2, 2), ("drive".to_string(), 1, 2)]
    );
    // They declare no parameters: θ holds only k.
    assert_eq!(p.param_len(), 1);
    assert_eq!(p.rhs.opaque_layers(), vec![0, 1]);
    let layers: Vec<usize> = p
        .rhs
        .graph()
        .nodes()
        .iter()
        .filter_map(|n| match n.op {
            Op::Opaque { layer, .. } => Some(layer),
            _ => None,
        })
        .collect();
    assert_eq!(layers, vec![0, 1]);
    assert!(p.rhs.to_string().contains("layer 1"), "{}", p.rhs);
}

#[test]
fn derivatives_call_the_layers_own_jvp_and_vjp() {
    let p = program(MODEL);
    let j = jvp(&p.rhs).unwrap();
    // Only `net` sees the state: one JVP node (drive's input, the time, has no tangent).
    assert_eq!(count(&j, "opaque_jvp"), 1);
    assert_eq!(count(&j, "opaque_vjp"), 0);
    let v = vjp(&p.rhs).unwrap();
    // Both layers have a VJP: drive's x̄ is not needed (its input is inactive) but its φ̄ is,
    // so its node is an effect of the function.
    assert_eq!(count(&v, "opaque_vjp"), 2);
    assert_eq!(v.effects().len(), 2);
    for e in v.effects() {
        assert!(matches!(
            v.graph().get(*e).unwrap().op,
            Op::OpaqueVjp { .. }
        ));
    }
    // Second derivatives are not available from a layer.
    let e = vjp(&j).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsupported {
                op: "opaque_jvp",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn the_interpreter_refuses_opaque_layers() {
    let p = program(MODEL);
    let mut out = vec![0.0; 2];
    let e = Interpreter::new(&p.rhs)
        .eval(0.0, &[1.0, 2.0], &[0.5], &[], &mut out)
        .unwrap_err();
    assert_eq!(
        e,
        Error::OpaqueLayer {
            layer: 0,
            op: "opaque"
        }
    );
    assert!(e.to_string().contains("#[neural_ode]"), "{e}");
}

#[test]
fn bad_opaque_layers_are_diagnostics() {
    let e = errors("model m\nstate u[2] = [1, 2]\nlayer net = opaque(3, 2)\nd(u)/dt = net(u)\n");
    assert!(
        e.iter().any(|(c, m)| *c == Some(codes::LAYER_SHAPE)
            && m.contains("opaque `net` expects an input of shape [3], found [2]")),
        "{e:?}"
    );
    let e = errors("model m\nstate u[2] = [1, 2]\nlayer net = opaque(2)\nd(u)/dt = net(u)\n");
    assert!(
        e.iter()
            .any(|(c, m)| *c == Some(codes::ARGUMENTS) && m.contains("takes 2 positional")),
        "{e:?}"
    );
    let e = errors("model m\nstate u[2] = [1, 2]\nlayer net = opaque(2, [])\nd(u)/dt = net(u)\n");
    assert!(
        e.iter()
            .any(|(_, m)| m.contains("needs at least one dimension")),
        "{e:?}"
    );
    let e = errors("model m\nstate u[2] = [1, 2]\nlayer net = opaque(0, 2)\nd(u)/dt = net(u)\n");
    assert!(
        e.iter().any(|(_, m)| m.contains("positive integer")),
        "{e:?}"
    );
    // The output shape is the declared one: a mismatch with the state is the usual error.
    let e = errors("model m\nstate u[2] = [1, 2]\nlayer net = opaque(2, 3)\nd(u)/dt = net(u)\n");
    assert!(!e.is_empty());
}
