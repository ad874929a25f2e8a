//! Errors of tracing, compiling and executing programs.

use tenferro_ir::{DType, IrError};
use thiserror::Error;

/// An error from tracing, compiling or running a tenferro program.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuntimeError {
    /// An op was traced with operands it does not accept (names the op and the operands).
    #[error("{0}")]
    Ir(#[from] IrError),
    /// An error raised by a pass of the compile pipeline.
    #[error("pass `{pass}` failed: {message}")]
    Pass {
        /// The pass.
        pass: String,
        /// Its error.
        message: String,
    },
    /// A placeholder that the program reads was not given a value.
    #[error("placeholder {ty} (input #{index}) was not given a value; pass it to run_with_inputs")]
    UnboundInput {
        /// Parameter index.
        index: usize,
        /// Its type.
        ty: String,
    },
    /// A value given for a placeholder has the wrong type, or is not a placeholder of the program.
    #[error("input binding: {0}")]
    BadInput(String),
    /// The program has an extension op that no registered extension provides.
    #[error("no kernel for extension op `{op}` is registered on this executor (register its extension with `register_extension`)")]
    MissingKernel {
        /// The extension op.
        op: String,
    },
    /// An extension kernel was registered twice.
    #[error("extension op `{op}` is already registered on this executor")]
    DuplicateKernel {
        /// The extension op.
        op: String,
    },
    /// A kernel failed at run time (e.g. a singular matrix); names the op and the reason.
    #[error("{op}: {message}")]
    Kernel {
        /// The op.
        op: String,
        /// Why it failed.
        message: String,
    },
    /// A tensor of the wrong dtype was passed to a typed accessor.
    #[error("{what}: expected dtype {expected}, got {got}")]
    DType {
        /// Who asked.
        what: String,
        /// The dtype required.
        expected: DType,
        /// The dtype found.
        got: DType,
    },
    /// A request that is malformed in some other way (names what and why).
    #[error("{0}")]
    Invalid(String),
}

impl RuntimeError {
    /// Shorthand for [`RuntimeError::Kernel`].
    pub fn kernel(op: impl Into<String>, message: impl Into<String>) -> RuntimeError {
        RuntimeError::Kernel {
            op: op.into(),
            message: message.into(),
        }
    }

    /// The error with the source location of the traced op that raised it appended
    /// (`... (at src/main.rs:42:17)`), when it is an invalid-op error without a location
    /// yet. Operators and elementwise methods record their caller's location this way, so
    /// an error reported at compile time says where the bad op was written.
    pub fn located(self, at: &std::panic::Location<'_>) -> RuntimeError {
        match self {
            RuntimeError::Ir(IrError::InvalidOp { op, message }) if !message.contains(" (at ") => {
                RuntimeError::Ir(IrError::InvalidOp {
                    op,
                    message: format!("{message} (at {}:{}:{})", at.file(), at.line(), at.column()),
                })
            }
            other => other,
        }
    }

    /// The error as the caller of a public function of another crate sees it (`own_file`:
    /// a source file of that crate, its `file!()`): an invalid-op error without a location,
    /// or located in that crate's source directory (an op the crate traced, whose line
    /// means nothing to its caller), is located at `at` instead; an error located
    /// elsewhere (carried in from an operand, where it was written) is unchanged.
    pub fn at_caller(self, own_file: &str, at: &std::panic::Location<'_>) -> RuntimeError {
        let dir = std::path::Path::new(own_file)
            .parent()
            .map(|d| format!("(at {}", d.display()))
            .unwrap_or_default();
        let m = self.to_string();
        if !m.contains(" (at ") || (!dir.is_empty() && m.contains(&dir)) {
            self.unlocated().located(at)
        } else {
            self
        }
    }

    /// The error without a location recorded by [`RuntimeError::located`] (for callers
    /// that trace on the user's behalf and report the error at once, like eager mode,
    /// where the recorded location would be their own).
    pub fn unlocated(self) -> RuntimeError {
        match self {
            RuntimeError::Ir(IrError::InvalidOp { op, message }) => {
                let message = match message.rfind(" (at ") {
                    Some(i) if message.ends_with(')') => message[..i].to_string(),
                    _ => message,
                };
                RuntimeError::Ir(IrError::InvalidOp { op, message })
            }
            other => other,
        }
    }

    /// Shorthand for an [`IrError::InvalidOp`] wrapped as a runtime error.
    pub fn invalid_op(op: impl Into<String>, message: impl Into<String>) -> RuntimeError {
        RuntimeError::Ir(IrError::invalid(op, message))
    }
}

impl From<tenferro_ir::AttrError> for RuntimeError {
    /// An attribute that does not decode, as [`IrError::Attr`].
    fn from(e: tenferro_ir::AttrError) -> RuntimeError {
        RuntimeError::Ir(IrError::Attr(e))
    }
}

/// Result type of the runtime.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
