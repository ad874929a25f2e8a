//! Errors of the IR: typing, construction, verification and parsing.

use crate::dtype::DType;
use thiserror::Error;

/// An error from building, typing, verifying or parsing IR.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum IrError {
    /// An op was applied to operands it does not accept (shape, dtype, attribute).
    #[error("{op}: {message}")]
    InvalidOp { op: String, message: String },
    /// Wrong number of operands.
    #[error("{op}: expected {expected} operand(s), got {got}")]
    Arity {
        op: String,
        expected: String,
        got: usize,
    },
    /// A buffer's length does not match its shape.
    #[error("data length {got} does not match shape {shape:?} ({expected} elements)")]
    DataLength {
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
    /// A value of one dtype was used where another was required.
    #[error("{what}: expected dtype {expected}, got {got}")]
    DTypeMismatch {
        what: String,
        expected: DType,
        got: DType,
    },
    /// Verifier: an operand is not defined before its use.
    #[error("instruction {inst} ({op}): operand %{value} is not defined before its use")]
    UndefinedValue { inst: usize, op: String, value: u32 },
    /// Verifier: a value's recorded type differs from the type its op produces.
    #[error("instruction {inst} ({op}): result %{value} is recorded as {recorded} but the op produces {inferred}")]
    TypeMismatch {
        inst: usize,
        op: String,
        value: u32,
        recorded: String,
        inferred: String,
    },
    /// Verifier: a value is defined twice, or a result / parameter list is malformed.
    #[error("malformed function: {0}")]
    Malformed(String),
    /// Text form could not be parsed.
    #[error("parse error at line {line}: {message}")]
    Parse { line: usize, message: String },
}

impl IrError {
    /// Shorthand for [`IrError::InvalidOp`].
    pub fn invalid(op: impl Into<String>, message: impl Into<String>) -> IrError {
        IrError::InvalidOp {
            op: op.into(),
            message: message.into(),
        }
    }
}
