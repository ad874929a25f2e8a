//! The primitive operations of the IR and their attributes. The set follows StableHLO
//! (dot_general, broadcast_in_dim, reduce, gather / scatter, select, convert) so that a
//! program can later be exported; typing rules live in [`crate::infer`].

use crate::dtype::{DType, TensorType};
use crate::error::AttrError;
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::fmt;

pub use crate::optable::{BinaryOp, UnaryOp};

/// Comparison direction of [`Op::Compare`]; the result is bool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CmpOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Less than.
    Lt,
    /// Less or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Ge,
}

impl CmpOp {
    /// Every comparison.
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ];

    /// Name in the text form (`dir = lt`).
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// Reduction kind of [`Op::Reduce`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceOp {
    /// Sum (0 for an empty reduction).
    Sum,
    /// Product (1 for an empty reduction).
    Prod,
    /// Real dtypes only; NaN-propagating; `-inf` for an empty reduction.
    Max,
    /// Real dtypes only; NaN-propagating; `+inf` for an empty reduction.
    Min,
}

impl ReduceOp {
    /// Every reduction.
    pub const ALL: [ReduceOp; 4] = [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min];

    /// Name in the text form.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Prod => "reduce_prod",
            ReduceOp::Max => "reduce_max",
            ReduceOp::Min => "reduce_min",
        }
    }

    /// Name of the inclusive scan [`Op::Cumulative`] of this kind in the text form.
    pub fn cumulative_name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "cumsum",
            ReduceOp::Prod => "cumprod",
            ReduceOp::Max => "cummax",
            ReduceOp::Min => "cummin",
        }
    }
}

/// Dimension numbers of [`Op::DotGeneral`] (StableHLO's). The result's axes are the batch
/// axes (in `lhs_batch` order), then lhs's free axes, then rhs's free axes, each in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct DotDims {
    /// Contracted axes of lhs.
    pub lhs_contract: Vec<usize>,
    /// Contracted axes of rhs, paired with `lhs_contract`.
    pub rhs_contract: Vec<usize>,
    /// Batch axes of lhs.
    pub lhs_batch: Vec<usize>,
    /// Batch axes of rhs, paired with `lhs_batch`.
    pub rhs_batch: Vec<usize>,
}

impl DotDims {
    /// Plain matrix product `[m,k] x [k,n] -> [m,n]`.
    pub fn matmul() -> DotDims {
        DotDims {
            lhs_contract: vec![1],
            rhs_contract: vec![0],
            lhs_batch: vec![],
            rhs_batch: vec![],
        }
    }
}

/// An attribute value of an extension op.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attr {
    /// A flag.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A float stored by its bits so attributes stay `Eq + Hash`.
    FloatBits(u64),
    /// A string.
    Str(String),
}

/// Reserved [`ExtensionOp`] attribute: the bool attribute that selects the richer variant
/// of an op (see [`ExtensionOp::with_superset`]).
pub const SUBSET_FLAG_ATTR: &str = "subset_of";
/// Reserved [`ExtensionOp`] attribute: the positions of an op's results among its richer
/// variant's results (see [`ExtensionOp::with_superset`]).
pub const SUBSET_RESULTS_ATTR: &str = "subset_results";

/// An operation defined by an extension crate (e.g. `linalg.cholesky`). The IR knows only
/// its name, attributes and result types; kernels and AD rules come from the extension,
/// registered on an executor or an `AdContext`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionOp {
    /// Qualified name, `family.op` (e.g. `linalg.cholesky`).
    pub name: String,
    /// Attributes, by name.
    pub attrs: BTreeMap<String, Attr>,
    /// Result types, fixed when the op is traced.
    pub results: Vec<TensorType>,
}

impl ExtensionOp {
    /// An op with no attributes.
    pub fn new(name: impl Into<String>, results: Vec<TensorType>) -> ExtensionOp {
        ExtensionOp {
            name: name.into(),
            attrs: BTreeMap::new(),
            results,
        }
    }

    /// Adds an attribute.
    pub fn with_attr(mut self, key: impl Into<String>, value: Attr) -> ExtensionOp {
        self.attrs.insert(key.into(), value);
        self
    }

    /// Declares that this op computes part of what a richer variant of it computes: the
    /// same op on the same operands with the bool attribute `flag` set to `true` (and no
    /// declaration) has this op's results at `positions` among its own, with the same
    /// values. For example `linalg.svd` without `compute_uv` gives `S`, which is result 1
    /// of the op with `compute_uv`. Common subexpression elimination then computes the
    /// richer op once when a program holds both (as the value and derivative of
    /// singular values do). The declaration is stored in the reserved attributes
    /// [`SUBSET_FLAG_ATTR`] and [`SUBSET_RESULTS_ATTR`], which attribute readers skip.
    pub fn with_superset(self, flag: &str, positions: &[usize]) -> ExtensionOp {
        let positions = positions
            .iter()
            .map(|&p| i64::try_from(p).unwrap_or(i64::MAX))
            .collect();
        self.with_attr(SUBSET_FLAG_ATTR, Attr::Str(flag.to_string()))
            .with_attr(SUBSET_RESULTS_ATTR, Attr::Ints(positions))
    }

    /// The richer variant declared by [`ExtensionOp::with_superset`] (its result types
    /// left empty: they are not known here) and the positions of this op's results among
    /// its results; `None` without a well-formed declaration.
    pub fn superset(&self) -> Option<(ExtensionOp, Vec<usize>)> {
        let Some(Attr::Str(flag)) = self.attrs.get(SUBSET_FLAG_ATTR) else {
            return None;
        };
        let Some(Attr::Ints(pos)) = self.attrs.get(SUBSET_RESULTS_ATTR) else {
            return None;
        };
        if pos.len() != self.results.len()
            || !matches!(self.attrs.get(flag), Some(Attr::Bool(false)))
        {
            return None;
        }
        let positions = pos
            .iter()
            .map(|&p| usize::try_from(p).ok())
            .collect::<Option<Vec<_>>>()?;
        let mut attrs = self.attrs.clone();
        attrs.remove(SUBSET_FLAG_ATTR);
        attrs.remove(SUBSET_RESULTS_ATTR);
        attrs.insert(flag.clone(), Attr::Bool(true));
        Some((
            ExtensionOp {
                name: self.name.clone(),
                attrs,
                results: Vec::new(),
            },
            positions,
        ))
    }

    /// A bool attribute.
    pub fn attr_bool(&self, key: &str) -> Option<bool> {
        match self.attrs.get(key) {
            Some(Attr::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// An integer attribute.
    pub fn attr_int(&self, key: &str) -> Option<i64> {
        match self.attrs.get(key) {
            Some(Attr::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A reader of this op's attributes for decoding them into a typed form: every key
    /// is required and of a declared kind, and [`AttrReader::finish`] rejects keys that
    /// were not read.
    pub fn read_attrs(&self) -> AttrReader<'_> {
        AttrReader {
            op: self,
            read: Vec::new(),
        }
    }
}

/// Reads an [`ExtensionOp`]'s attributes by key and kind (see
/// [`ExtensionOp::read_attrs`]). A missing key, a value of another kind, or (at
/// [`AttrReader::finish`]) a key nobody read is an [`AttrError`] naming the op and the key.
#[derive(Debug)]
pub struct AttrReader<'a> {
    op: &'a ExtensionOp,
    read: Vec<&'static str>,
}

impl<'a> AttrReader<'a> {
    /// Checks that the op is the `expected` one ([`AttrError::WrongOp`] if not).
    pub fn expect_op(&self, expected: &str) -> Result<(), AttrError> {
        if self.op.name == expected {
            Ok(())
        } else {
            Err(AttrError::WrongOp {
                op: self.op.name.clone(),
                expected: expected.to_string(),
            })
        }
    }

    fn get(&mut self, key: &'static str) -> Result<&'a Attr, AttrError> {
        self.read.push(key);
        self.op.attrs.get(key).ok_or_else(|| AttrError::Missing {
            op: self.op.name.clone(),
            key: key.to_string(),
        })
    }

    fn wrong(&self, key: &str, expected: &'static str, found: &Attr) -> AttrError {
        AttrError::WrongType {
            op: self.op.name.clone(),
            key: key.to_string(),
            expected,
            found: found.clone(),
        }
    }

    /// The [`Attr::Bool`] at `key`.
    pub fn bool(&mut self, key: &'static str) -> Result<bool, AttrError> {
        match self.get(key)? {
            Attr::Bool(b) => Ok(*b),
            other => Err(self.wrong(key, "a bool", other)),
        }
    }

    /// The [`Attr::Int`] at `key`.
    pub fn int(&mut self, key: &'static str) -> Result<i64, AttrError> {
        match self.get(key)? {
            Attr::Int(i) => Ok(*i),
            other => Err(self.wrong(key, "an integer", other)),
        }
    }

    /// The [`Attr::FloatBits`] at `key`, as an `f64`.
    pub fn float(&mut self, key: &'static str) -> Result<f64, AttrError> {
        match self.get(key)? {
            Attr::FloatBits(b) => Ok(f64::from_bits(*b)),
            other => Err(self.wrong(key, "a float", other)),
        }
    }

    /// An [`AttrError::BadValue`] for `key` with `message` (what is wrong, what was
    /// expected), for values of the right kind that the op does not accept.
    pub fn bad_value(&self, key: &str, message: impl Into<String>) -> AttrError {
        AttrError::BadValue {
            op: self.op.name.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Ends the decoding: an [`AttrError::Unknown`] for the first key of the op that was
    /// not read.
    pub fn finish(self) -> Result<(), AttrError> {
        match self
            .op
            .attrs
            .keys()
            .filter(|k| *k != SUBSET_FLAG_ATTR && *k != SUBSET_RESULTS_ATTR)
            .find(|k| !self.read.contains(&k.as_str()))
        {
            None => Ok(()),
            Some(k) => Err(AttrError::Unknown {
                op: self.op.name.clone(),
                key: k.clone(),
                expected: if self.read.is_empty() {
                    "none".to_string()
                } else {
                    self.read.join(", ")
                },
            }),
        }
    }
}

/// An IR operation with its attributes. Operand counts and typing rules:
///
/// | op | operands | result |
/// |---|---|---|
/// | `Unary` | x | same shape; dtype of x (real for abs/real/imag of complex) |
/// | `Binary` | x, y of one type | that type |
/// | `Compare` | x, y of one type | bool, same shape |
/// | `Select` | pred (bool), on_true, on_false (one type); same shape | type of on_true |
/// | `Reduce` | x | x's shape without `axes` (sorted, distinct) |
/// | `DotGeneral` | lhs, rhs of one dtype | batch ++ lhs free ++ rhs free |
/// | `Transpose` | x | `shape[perm[i]]` |
/// | `Reshape` | x | `shape` (same element count; column-major order) |
/// | `BroadcastInDim` | x | `shape`; operand axis i maps to result axis `dims[i]` (size equal or 1) |
/// | `Slice` | x | `limits - starts` per axis |
/// | `Pad` | x, pad value (scalar, same dtype) | `low + n + high` per axis |
/// | `Concatenate` | x1..xn (n ≥ 1), equal except on `axis` | sum along `axis` |
/// | `Gather` | x, indices (i64) | `x.shape[..axis] ++ idx.shape ++ x.shape[axis+1..]` |
/// | `ScatterAdd` | base, indices (i64), updates (gather-shaped) | base's type |
/// | `Convert` | x | same shape, dtype `to` |
/// | `Iota` | — | `ty`, value = index along `dim` |
/// | `Constant` | — | the tensor's type |
/// | `Argsort` | x (real or integer) | i64, x's shape: the stable sort permutation along `axis` |
/// | `Cumulative` | x (numeric; real for max/min) | x's type: inclusive scan along `axis` |
/// | `Extension` | any | `op.results` |
/// | `Barrier` | x, deps... (n ≥ 1, any types) | x's type, value = x |
///
/// Gather and scatter_add clamp indices into `[0, x.shape[axis] - 1]`.
///
/// `Barrier` is an optimisation barrier (JAX's `optimization_barrier`): its value is its
/// first operand; the other operands are dependencies whose values are ignored (the
/// barrier runs after them). Passes treat it as opaque: nothing folds, simplifies or
/// rewrites through it, so a value computed from a barrier is never identified with one
/// computed from the barrier's operand (this is what keeps rematerialisation from being
/// undone by CSE). `label` is free text; autodiff gives labels starting with `ad.` a
/// meaning (region markers of custom_jvp / custom_vjp / checkpoint), any other barrier
/// differentiates as the identity in its first operand.
///
/// `Argsort` orders by the total order of `jnp.sort`: `-0.0 == 0.0`, NaN after every
/// number (`+inf` included), equal keys (NaNs among themselves included) in their original
/// order. `descending = true` reverses the comparison but keeps the sort stable, as
/// `jnp.argsort(x, descending=True)` does: NaN comes first, then `+inf`, ..., and equal
/// keys stay in their original order. Complex operands are rejected (not ordered).
///
/// `Cumulative` element `i` is the left-to-right reduction of elements `0..=i` along
/// `axis` (`n-1..=i`, right to left, when `reverse`), accumulated sequentially;
/// max/min propagate NaN as `reduce_max` does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Elementwise unary op.
    Unary(UnaryOp),
    /// Elementwise binary op.
    Binary(BinaryOp),
    /// Elementwise comparison (bool result).
    Compare(CmpOp),
    /// `pred ? on_true : on_false`, elementwise.
    Select,
    /// Reduction over `axes`.
    Reduce {
        /// Which reduction.
        kind: ReduceOp,
        /// Reduced axes, sorted and distinct.
        axes: Vec<usize>,
    },
    /// General contraction. Each result element is +0 plus the sum of its products (so
    /// a product of -0 terms is +0, where a multiply keeps -0).
    DotGeneral(DotDims),
    /// Axis permutation.
    Transpose {
        /// Result axis `i` is operand axis `perm[i]`.
        perm: Vec<usize>,
    },
    /// Column-major reshape.
    Reshape {
        /// The new shape.
        shape: Vec<usize>,
    },
    /// Broadcast into a larger shape.
    BroadcastInDim {
        /// The result shape.
        shape: Vec<usize>,
        /// Result axis of each operand axis, increasing.
        dims: Vec<usize>,
    },
    /// Contiguous block.
    Slice {
        /// First index per axis.
        starts: Vec<usize>,
        /// One past the last index per axis.
        limits: Vec<usize>,
    },
    /// Padding with a scalar value operand.
    Pad {
        /// Elements before each axis.
        low: Vec<usize>,
        /// Elements after each axis.
        high: Vec<usize>,
    },
    /// Join along an axis.
    Concatenate {
        /// The joined axis.
        axis: usize,
    },
    /// `take` along an axis with i64 indices.
    Gather {
        /// The indexed axis.
        axis: usize,
    },
    /// Add updates at indices along an axis (the transpose of gather).
    ScatterAdd {
        /// The indexed axis.
        axis: usize,
    },
    /// Elementwise dtype conversion.
    Convert {
        /// Target dtype.
        to: DType,
    },
    /// Index along one axis.
    Iota {
        /// The result type.
        ty: TensorType,
        /// The axis whose index is the value.
        dim: usize,
    },
    /// A known tensor.
    Constant(Tensor),
    /// Stable sort permutation (i64 indices into `axis`) of the operand along `axis`.
    Argsort {
        /// The sorted axis.
        axis: usize,
        /// Largest first (still stable; NaN first).
        descending: bool,
    },
    /// Inclusive scan (cumsum / cumprod / cummax / cummin) along `axis`.
    Cumulative {
        /// Which reduction is accumulated.
        kind: ReduceOp,
        /// The scanned axis.
        axis: usize,
        /// Scan from the last element to the first.
        reverse: bool,
    },
    /// An op of an extension crate.
    Extension(ExtensionOp),
    /// Optimisation barrier: the value of operand 0, after the other operands.
    Barrier {
        /// Free text (autodiff region markers use labels `ad.*`).
        label: String,
    },
}

impl Op {
    /// The op's name as printed in the text form (`add`, `dot_general`, `linalg.cholesky`).
    pub fn name(&self) -> &str {
        match self {
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(_) => "compare",
            Op::Select => "select",
            Op::Reduce { kind, .. } => kind.name(),
            Op::DotGeneral(_) => "dot_general",
            Op::Transpose { .. } => "transpose",
            Op::Reshape { .. } => "reshape",
            Op::BroadcastInDim { .. } => "broadcast_in_dim",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Concatenate { .. } => "concatenate",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Convert { .. } => "convert",
            Op::Iota { .. } => "iota",
            Op::Constant(_) => "constant",
            Op::Argsort { .. } => "argsort",
            Op::Cumulative { kind, .. } => kind.cumulative_name(),
            Op::Extension(e) => &e.name,
            Op::Barrier { .. } => "barrier",
        }
    }

    /// `true` for elementwise ops (unary, binary, compare, select, convert).
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Convert { .. }
        )
    }

    /// Number of results (1 except for extension ops).
    pub fn num_results(&self) -> usize {
        match self {
            Op::Extension(e) => e.results.len(),
            _ => 1,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
