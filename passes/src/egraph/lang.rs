//! The tensor language of the e-graph: one e-node per core IR op, attributes inline,
//! constants interned by index, opaque values (parameters, extension results) as leaves.

use egg::{Id, Language};
use tenferro_ir::{BinaryOp, CmpOp, DType, DotDims, Op, ReduceOp, TensorType, UnaryOp};

/// The operator of an e-node with its attributes. Mirrors [`Op`] except that constants are
/// interned (`Const(i)` is entry `i` of the analysis's constant table) and that values the
/// e-graph does not model (parameters, results of extension ops) are `Leaf(value index)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TOp {
    /// An opaque value of the source function, by arena index.
    Leaf(u32),
    /// Interned constant tensor.
    Const(u32),
    /// Elementwise unary op.
    Unary(UnaryOp),
    /// Elementwise binary op.
    Binary(BinaryOp),
    /// Comparison.
    Compare(CmpOp),
    /// Select.
    Select,
    /// Reduction over axes.
    Reduce(ReduceOp, Vec<usize>),
    /// dot_general with its dimension numbers.
    Dot {
        /// Contracted axes of lhs.
        lhs_contract: Vec<usize>,
        /// Contracted axes of rhs.
        rhs_contract: Vec<usize>,
        /// Batch axes of lhs.
        lhs_batch: Vec<usize>,
        /// Batch axes of rhs.
        rhs_batch: Vec<usize>,
    },
    /// Axis permutation.
    Transpose(Vec<usize>),
    /// Column-major reshape.
    Reshape(Vec<usize>),
    /// broadcast_in_dim.
    Broadcast {
        /// Result shape.
        shape: Vec<usize>,
        /// Result axis of each operand axis.
        dims: Vec<usize>,
    },
    /// Contiguous block.
    Slice {
        /// First index per axis.
        starts: Vec<usize>,
        /// One past the last index per axis.
        limits: Vec<usize>,
    },
    /// Padding.
    Pad {
        /// Elements before each axis.
        low: Vec<usize>,
        /// Elements after each axis.
        high: Vec<usize>,
    },
    /// Concatenate along an axis.
    Concat(usize),
    /// Gather along an axis.
    Gather(usize),
    /// Scatter-add along an axis.
    ScatterAdd(usize),
    /// Convert to a dtype.
    Convert(DType),
    /// Index along an axis.
    Iota {
        /// Element type.
        dtype: DType,
        /// Result shape.
        shape: Vec<usize>,
        /// The indexed axis.
        dim: usize,
    },
    /// Stable sort permutation along an axis (carried opaquely: no rewrite rule uses it).
    Argsort {
        /// The sorted axis.
        axis: usize,
        /// Largest first.
        descending: bool,
    },
    /// Inclusive scan along an axis (carried opaquely).
    Cumulative {
        /// Which reduction is accumulated.
        kind: ReduceOp,
        /// The scanned axis.
        axis: usize,
        /// Last element first.
        reverse: bool,
    },
}

impl TOp {
    /// The e-graph operator of a core op; `None` for constants and extension ops (which
    /// the translation handles itself).
    pub fn from_ir(op: &Op) -> Option<TOp> {
        Some(match op {
            Op::Unary(u) => TOp::Unary(*u),
            Op::Binary(b) => TOp::Binary(*b),
            Op::Compare(c) => TOp::Compare(*c),
            Op::Select => TOp::Select,
            Op::Reduce { kind, axes } => TOp::Reduce(*kind, axes.clone()),
            Op::DotGeneral(d) => TOp::Dot {
                lhs_contract: d.lhs_contract.clone(),
                rhs_contract: d.rhs_contract.clone(),
                lhs_batch: d.lhs_batch.clone(),
                rhs_batch: d.rhs_batch.clone(),
            },
            Op::Transpose { perm } => TOp::Transpose(perm.clone()),
            Op::Reshape { shape } => TOp::Reshape(shape.clone()),
            Op::BroadcastInDim { shape, dims } => TOp::Broadcast {
                shape: shape.clone(),
                dims: dims.clone(),
            },
            Op::Slice { starts, limits } => TOp::Slice {
                starts: starts.clone(),
                limits: limits.clone(),
            },
            Op::Pad { low, high } => TOp::Pad {
                low: low.clone(),
                high: high.clone(),
            },
            Op::Concatenate { axis } => TOp::Concat(*axis),
            Op::Gather { axis } => TOp::Gather(*axis),
            Op::ScatterAdd { axis } => TOp::ScatterAdd(*axis),
            Op::Convert { to } => TOp::Convert(*to),
            Op::Iota { ty, dim } => TOp::Iota {
                dtype: ty.dtype,
                shape: ty.shape.clone(),
                dim: *dim,
            },
            Op::Argsort { axis, descending } => TOp::Argsort {
                axis: *axis,
                descending: *descending,
            },
            Op::Cumulative {
                kind,
                axis,
                reverse,
            } => TOp::Cumulative {
                kind: *kind,
                axis: *axis,
                reverse: *reverse,
            },
            Op::Constant(_) | Op::Extension(_) | Op::Barrier { .. } => return None,
        })
    }

    /// The IR op of this operator; `None` for leaves and constants (which need the
    /// analysis's tables).
    pub fn to_ir(&self) -> Option<Op> {
        Some(match self {
            TOp::Leaf(_) | TOp::Const(_) => return None,
            TOp::Unary(u) => Op::Unary(*u),
            TOp::Binary(b) => Op::Binary(*b),
            TOp::Compare(c) => Op::Compare(*c),
            TOp::Select => Op::Select,
            TOp::Reduce(kind, axes) => Op::Reduce {
                kind: *kind,
                axes: axes.clone(),
            },
            TOp::Dot {
                lhs_contract,
                rhs_contract,
                lhs_batch,
                rhs_batch,
            } => Op::DotGeneral(DotDims {
                lhs_contract: lhs_contract.clone(),
                rhs_contract: rhs_contract.clone(),
                lhs_batch: lhs_batch.clone(),
                rhs_batch: rhs_batch.clone(),
            }),
            TOp::Transpose(perm) => Op::Transpose { perm: perm.clone() },
            TOp::Reshape(shape) => Op::Reshape {
                shape: shape.clone(),
            },
            TOp::Broadcast { shape, dims } => Op::BroadcastInDim {
                shape: shape.clone(),
                dims: dims.clone(),
            },
            TOp::Slice { starts, limits } => Op::Slice {
                starts: starts.clone(),
                limits: limits.clone(),
            },
            TOp::Pad { low, high } => Op::Pad {
                low: low.clone(),
                high: high.clone(),
            },
            TOp::Concat(axis) => Op::Concatenate { axis: *axis },
            TOp::Gather(axis) => Op::Gather { axis: *axis },
            TOp::ScatterAdd(axis) => Op::ScatterAdd { axis: *axis },
            TOp::Convert(to) => Op::Convert { to: *to },
            TOp::Iota { dtype, shape, dim } => Op::Iota {
                ty: TensorType::new(*dtype, shape.clone()),
                dim: *dim,
            },
            TOp::Argsort { axis, descending } => Op::Argsort {
                axis: *axis,
                descending: *descending,
            },
            TOp::Cumulative {
                kind,
                axis,
                reverse,
            } => Op::Cumulative {
                kind: *kind,
                axis: *axis,
                reverse: *reverse,
            },
        })
    }
}

/// An e-node: an operator applied to e-classes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TNode {
    /// The operator.
    pub op: TOp,
    /// Operand classes.
    pub children: Vec<Id>,
}

impl TNode {
    /// A node with operands.
    pub fn new(op: TOp, children: Vec<Id>) -> TNode {
        TNode { op, children }
    }

    /// A node without operands.
    pub fn leaf(op: TOp) -> TNode {
        TNode {
            op,
            children: Vec::new(),
        }
    }
}

impl Language for TNode {
    type Discriminant = TOp;

    fn discriminant(&self) -> TOp {
        self.op.clone()
    }

    fn matches(&self, other: &Self) -> bool {
        self.op == other.op && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}
