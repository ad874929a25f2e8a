//! # tenferro-ir
//!
//! The intermediate representation every tenferro program passes through.
//!
//! A [`Function`] owns an arena of SSA [`Value`]s (small `u32` handles, no `Rc` graph).
//! Each value has a static [`TensorType`]: a [`DType`] and a concrete shape. Layout is
//! column-major: axis 0 is contiguous, and `reshape` reorders nothing in memory.
//! Instructions ([`Inst`]) apply an [`Op`] to operands and are stored in a topological
//! order. Typing rules are in [`infer`]; [`verify()`] checks every invariant; [`print()`] and
//! [`parse()`] give a text form with `parse(print(f)) == f`; [`eval`] is a straightforward
//! reference interpreter used by constant folding and as the oracle of backend tests.

pub mod complex_math;
pub mod dtype;
pub mod error;
pub mod eval;
pub mod function;
pub mod infer;
pub mod op;
pub mod optable;
pub mod parse;
pub mod print;
pub mod tensor;
pub mod verify;

#[cfg(feature = "arbitrary")]
pub mod arbitrary;

pub use dtype::{col_major_strides, DType, TensorType};
pub use error::{AttrError, IrError};
pub use function::{Function, Inst, Value, ValueData, ValueDef};
pub use infer::{checked_numel, gather_shape, infer_types};
pub use op::{
    Attr, AttrReader, BinaryOp, CmpOp, DotDims, ExtensionOp, Op, ReduceOp, UnaryOp,
    SUBSET_FLAG_ATTR, SUBSET_RESULTS_ATTR,
};
pub use optable::{
    Domain, ElemCost, ElemMap, ElemMap2, IeeeMinMax, IntShift, RuleBuilder, Sensitivity, UnaryJvp,
};
pub use parse::{parse, parse_and_verify};
pub use print::print;
pub use tensor::{Data, Element, Tensor};
pub use verify::verify;
