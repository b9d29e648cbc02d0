//! The stable codes of the lowering diagnostics (`I…` errors, `W…` warnings).

/// Lowering failed without a more precise diagnostic (a bug in the lowering if it ever shows).
pub const INTERNAL: &str = "I000";
/// A name that is not defined.
pub const UNKNOWN_NAME: &str = "I001";
/// A layer, function or non-numeric literal used as a value.
pub const NOT_A_VALUE: &str = "I002";
/// A call of something that is neither a layer nor a built-in function.
pub const NOT_CALLABLE: &str = "I003";
/// Wrong number or kind of arguments of a built-in function or layer.
pub const ARGUMENTS: &str = "I004";
/// Operand shapes an operation cannot combine.
pub const SHAPE_MISMATCH: &str = "I005";
/// A layer applied to a value of the wrong shape.
pub const LAYER_SHAPE: &str = "I006";
/// An index out of bounds, or not an integer.
pub const INDEX: &str = "I007";
/// A state whose components are not all given exactly once.
pub const COVERAGE: &str = "I008";
/// An equation whose right-hand side does not have the shape of its target.
pub const EQUATION_SHAPE: &str = "I009";
/// An equation for something that is not a state.
pub const NOT_A_STATE: &str = "I010";
/// A shape dimension that is not a positive integer, or a shape of too high a rank.
pub const DIMENSION: &str = "I011";
/// An initial value of the wrong shape, or an initializer that does not fit.
pub const INITIALIZER: &str = "I012";
/// A value that must be a constant but depends on the state, parameters or time.
pub const NOT_CONSTANT: &str = "I013";
/// An option value of the wrong type or out of range.
pub const OPTION_VALUE: &str = "I014";
/// An option that does not fit the chosen method.
pub const OPTION_METHOD: &str = "I015";
/// An invalid user Butcher tableau.
pub const TABLEAU: &str = "I016";
/// An invalid time span, step grid, or output times outside the span.
pub const TIMES: &str = "I017";
/// A required block, option or item is missing.
pub const MISSING: &str = "I018";
/// A `let` or `const` defined in terms of itself.
pub const CYCLE: &str = "I019";
/// A value or buffer larger than the lowering limits.
pub const TOO_LARGE: &str = "I020";
/// A loss that is not a scalar, or observations used outside a data-fit term.
pub const LOSS: &str = "I021";
/// An invalid layer definition (sizes, groups, kernel).
pub const LAYER_DEFINITION: &str = "I022";
/// A construct used where it does not belong (an initializer in an expression, `data` in the
/// right-hand side, the name `t` redefined).
pub const MISPLACED: &str = "I023";

/// A parameter that nothing uses.
pub const UNUSED_PARAM: &str = "W001";
/// A layer that nothing applies.
pub const UNUSED_LAYER: &str = "W002";
/// A `let` that nothing uses.
pub const UNUSED_LET: &str = "W003";
/// A constant that nothing uses.
pub const UNUSED_CONST: &str = "W004";
/// An option that has no effect with the other options.
pub const NO_EFFECT: &str = "W005";
