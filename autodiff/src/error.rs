//! Errors of the autodiff transforms.

use tenferro_runtime::RuntimeError;
use thiserror::Error;

/// An error from building an [`crate::AdContext`] or applying a transform.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AdError {
    /// Tracing or lowering failed (the error recorded in a traced value, a bad shape, ...).
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    /// `grad` of a value that is not a scalar.
    #[error("grad: the loss must be a scalar (rank 0 or one element), got {ty}; use vjp for non-scalar outputs")]
    NonScalarLoss {
        /// The loss's type.
        ty: String,
    },
    /// An op has no rule for the requested mode in this context.
    #[error("no {mode} rule for op `{op}` in this AdContext (add the extension's rules with AdContext::builder().with_extension_rules(..))")]
    MissingRule {
        /// The op.
        op: String,
        /// `jvp` or `transpose`.
        mode: &'static str,
    },
    /// Two rule sets register the same op.
    #[error("AD rules for op `{op}` are registered twice")]
    DuplicateRule {
        /// The op.
        op: String,
    },
    /// A tangent / cotangent / input does not have the type the transform needs.
    #[error("{transform}: {message}")]
    BadArgument {
        /// The transform (`grad`, `vjp`, `jvp`).
        transform: &'static str,
        /// What is wrong, with both types.
        message: String,
    },
    /// Differentiation with respect to, or through, a value that is not differentiable.
    #[error("{0}")]
    NotDifferentiable(String),
    /// A transform met IR it cannot handle (e.g. a linear value used nonlinearly in a
    /// tangent program, or a rule that built ill-typed IR); names the op.
    #[error("internal autodiff error: {0}")]
    Internal(String),
}

impl From<tenferro_runtime::ir::IrError> for AdError {
    /// A host-tensor error (building or reading a `Tensor`) as a runtime error.
    fn from(e: tenferro_runtime::ir::IrError) -> Self {
        AdError::Runtime(RuntimeError::from(e))
    }
}

/// Result type of the autodiff crate.
pub type Result<T, E = AdError> = std::result::Result<T, E>;
