//! Errors of the IR: typing, construction, verification and parsing.

use crate::dtype::DType;
use thiserror::Error;

/// An error from building, typing, verifying or parsing IR.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum IrError {
    /// An op was applied to operands it does not accept (shape, dtype, attribute).
    #[error("{op}: {message}")]
    InvalidOp {
        /// The op.
        op: String,
        /// What is wrong, naming the operands and what was expected.
        message: String,
    },
    /// Wrong number of operands.
    #[error("{op}: expected {expected} operand(s), got {got}")]
    Arity {
        /// The op.
        op: String,
        /// How many operands it takes.
        expected: String,
        /// How many it was given.
        got: usize,
    },
    /// A buffer's length does not match its shape.
    #[error("data length {got} does not match shape {shape:?} ({expected} elements)")]
    DataLength {
        /// The shape given.
        shape: Vec<usize>,
        /// Elements the shape holds.
        expected: usize,
        /// Elements the buffer holds.
        got: usize,
    },
    /// A value of one dtype was used where another was required.
    #[error("{what}: expected dtype {expected}, got {got}")]
    DTypeMismatch {
        /// Who asked.
        what: String,
        /// The dtype required.
        expected: DType,
        /// The dtype found.
        got: DType,
    },
    /// Verifier: an operand is not defined before its use.
    #[error("instruction {inst} ({op}): operand %{value} is not defined before its use")]
    UndefinedValue {
        /// Index of the instruction.
        inst: usize,
        /// Its op.
        op: String,
        /// The undefined operand.
        value: u32,
    },
    /// Verifier: a value's recorded type differs from the type its op produces.
    #[error("instruction {inst} ({op}): result %{value} is recorded as {recorded} but the op produces {inferred}")]
    TypeMismatch {
        /// Index of the instruction.
        inst: usize,
        /// Its op.
        op: String,
        /// The result value.
        value: u32,
        /// The type recorded for it.
        recorded: String,
        /// The type its op produces.
        inferred: String,
    },
    /// Verifier: a value is defined twice, or a result / parameter list is malformed.
    #[error("malformed function: {0}")]
    Malformed(String),
    /// A buffer could not be allocated: the machine cannot provide `bytes` bytes.
    #[error("{op}: cannot allocate {bytes} bytes")]
    AllocationFailed {
        /// The op (or constructor) that needed the buffer.
        op: String,
        /// Bytes requested.
        bytes: usize,
    },
    /// A shape whose element count, or byte size, does not fit in the address space
    /// (more than `isize::MAX` bytes, or an arithmetic overflow computing it).
    #[error("{op}: shape {shape:?} of {dtype} has more elements than fit in memory")]
    ShapeOverflow {
        /// The op (or constructor) that met the shape.
        op: String,
        /// The shape; axes that could not be computed are reported as `usize::MAX`.
        shape: Vec<usize>,
        /// The element type.
        dtype: DType,
    },
    /// Text form could not be parsed.
    #[error("parse error at line {line}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// An extension op's attributes do not decode into the op's typed form.
    #[error("{0}")]
    Attr(#[from] AttrError),
}

/// An attribute of an extension op that is missing, not declared by the op, of another
/// kind than declared, or out of range: what a typed decoding (see
/// [`crate::op::AttrReader`]) reports instead of a default. Each names the op and the key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AttrError {
    /// A declared attribute is absent.
    #[error("{op}: attribute `{key}` is missing")]
    Missing {
        /// The op.
        op: String,
        /// The absent key.
        key: String,
    },
    /// The op carries an attribute it does not declare (a misspelt key, say).
    #[error("{op}: unknown attribute `{key}` (the op takes {expected})")]
    Unknown {
        /// The op.
        op: String,
        /// The undeclared key.
        key: String,
        /// The keys the op declares, comma-separated (`none` when it takes no attributes).
        expected: String,
    },
    /// An attribute of another kind than declared.
    #[error("{op}: attribute `{key}` must be {expected}, got {found:?}")]
    WrongType {
        /// The op.
        op: String,
        /// The key.
        key: String,
        /// The declared kind (`a bool`, `an integer`, ...).
        expected: &'static str,
        /// The value found.
        found: crate::op::Attr,
    },
    /// An attribute of the declared kind whose value the op does not accept.
    #[error("{op}: attribute `{key}` {message}")]
    BadValue {
        /// The op.
        op: String,
        /// The key.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The op is not the one whose attributes were asked for.
    #[error("{op}: expected a `{expected}` op")]
    WrongOp {
        /// The op met.
        op: String,
        /// The op the decoding is for.
        expected: String,
    },
}

impl IrError {
    /// Shorthand for [`IrError::AllocationFailed`].
    pub fn allocation_failed(op: impl Into<String>, bytes: usize) -> IrError {
        IrError::AllocationFailed {
            op: op.into(),
            bytes,
        }
    }

    /// Shorthand for [`IrError::ShapeOverflow`].
    pub fn shape_overflow(op: impl Into<String>, ty: &crate::dtype::TensorType) -> IrError {
        IrError::ShapeOverflow {
            op: op.into(),
            shape: ty.shape.clone(),
            dtype: ty.dtype,
        }
    }

    /// Shorthand for [`IrError::InvalidOp`].
    pub fn invalid(op: impl Into<String>, message: impl Into<String>) -> IrError {
        IrError::InvalidOp {
            op: op.into(),
            message: message.into(),
        }
    }
}
