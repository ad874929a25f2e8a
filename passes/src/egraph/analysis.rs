//! The e-class analysis: every class carries its static type (dtype + shape) and, when
//! known, the one value all of its elements share (a splat), which rules use to spot
//! `zeros`, `ones` and friends.

use super::lang::{TNode, TOp};
use egg::{Analysis, DidMerge, EGraph, Id};
use std::collections::HashMap;
use tenferro_ir::{infer_types, DType, Data, IrError, Tensor, TensorType, UnaryOp};

/// The e-graph type used by the pass.
pub type TGraph = EGraph<TNode, TensorAnalysis>;

/// A value shared by every element of a tensor, kept bit-exact (`-0.0` and `+0.0` differ).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Splat {
    /// f32 or f64 (f32 values are exact in f64).
    Real(f64),
    /// c32 or c64: real and imaginary parts.
    Complex(f64, f64),
    /// i32 or i64: every element equals this integer (i32 values are exact in i64).
    Int(i64),
    /// Every element equals this bool.
    Bool(bool),
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

impl Splat {
    /// Bit-exact equality (so `-0.0 != +0.0`, and a NaN equals the same NaN).
    pub fn bits_eq(&self, other: &Splat) -> bool {
        match (self, other) {
            (Splat::Real(a), Splat::Real(b)) => same_bits(*a, *b),
            (Splat::Complex(a, b), Splat::Complex(c, d)) => same_bits(*a, *c) && same_bits(*b, *d),
            (Splat::Int(a), Splat::Int(b)) => a == b,
            (Splat::Bool(a), Splat::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// `+0` in every part (`0` for integers).
    pub fn is_pos_zero(&self) -> bool {
        match *self {
            Splat::Real(v) => same_bits(v, 0.0),
            Splat::Complex(re, im) => same_bits(re, 0.0) && same_bits(im, 0.0),
            Splat::Int(v) => v == 0,
            Splat::Bool(_) => false,
        }
    }

    /// `-0` in every part (`0` for integers): the exact additive identity.
    pub fn is_neg_zero(&self) -> bool {
        match *self {
            Splat::Real(v) => same_bits(v, -0.0),
            Splat::Complex(re, im) => same_bits(re, -0.0) && same_bits(im, -0.0),
            Splat::Int(v) => v == 0,
            Splat::Bool(_) => false,
        }
    }

    /// Zero of either sign in every part.
    pub fn is_zero(&self) -> bool {
        match *self {
            Splat::Real(v) => v == 0.0,
            Splat::Complex(re, im) => re == 0.0 && im == 0.0,
            Splat::Int(v) => v == 0,
            Splat::Bool(_) => false,
        }
    }

    /// Exactly `1` (`1 + 0i` for complex).
    pub fn is_one(&self) -> bool {
        match *self {
            Splat::Real(v) => v == 1.0,
            Splat::Complex(re, im) => re == 1.0 && same_bits(im, 0.0),
            Splat::Int(v) => v == 1,
            Splat::Bool(_) => false,
        }
    }

    /// Exactly `-1`.
    pub fn is_minus_one(&self) -> bool {
        match *self {
            Splat::Real(v) => v == -1.0,
            Splat::Complex(re, im) => re == -1.0 && same_bits(im, 0.0),
            Splat::Int(v) => v == -1,
            Splat::Bool(_) => false,
        }
    }

    /// The real number `v` in `dtype` (bool: `v != 0`).
    pub fn from_f64(dtype: DType, v: f64) -> Splat {
        match dtype {
            DType::F32 => Splat::Real(v as f32 as f64),
            DType::F64 => Splat::Real(v),
            DType::C32 => Splat::Complex(v as f32 as f64, 0.0),
            DType::C64 => Splat::Complex(v, 0.0),
            DType::I32 => Splat::Int(v as i32 as i64),
            DType::I64 => Splat::Int(v as i64),
            DType::Bool => Splat::Bool(v != 0.0),
        }
    }

    /// The integer `v` in the integer dtype `dtype`, wrapped to its width (i32 keeps the
    /// low 32 bits, as i32 arithmetic does).
    pub fn wrapping_int(dtype: DType, v: i64) -> Splat {
        Splat::Int(if dtype == DType::I32 {
            v as i32 as i64
        } else {
            v
        })
    }

    /// A tensor of type `ty` whose elements all equal this splat.
    pub fn to_tensor(&self, ty: &TensorType) -> Tensor {
        let n = ty.numel();
        let data = match (ty.dtype, *self) {
            (DType::F32, Splat::Real(v)) => Data::F32(vec![v as f32; n]),
            (DType::F64, Splat::Real(v)) => Data::F64(vec![v; n]),
            (DType::C32, Splat::Complex(re, im)) => {
                Data::C32(vec![num_complex::Complex32::new(re as f32, im as f32); n])
            }
            (DType::C64, Splat::Complex(re, im)) => {
                Data::C64(vec![num_complex::Complex64::new(re, im); n])
            }
            (DType::I32, Splat::Int(v)) => Data::I32(vec![v as i32; n]),
            (DType::I64, Splat::Int(v)) => Data::I64(vec![v; n]),
            (DType::Bool, Splat::Bool(v)) => Data::Bool(vec![v; n]),
            (dtype, s) => unreachable!("splat {s:?} does not belong to dtype {dtype}"),
        };
        Tensor::new(ty.shape.clone(), data).expect("splat length matches its shape")
    }

    /// The shared value of a tensor's elements, if all are bit-identical and there is at
    /// least one.
    pub fn of_tensor(t: &Tensor) -> Option<Splat> {
        fn all_eq<T: Copy>(v: &[T], eq: impl Fn(T, T) -> bool) -> Option<T> {
            let first = *v.first()?;
            v.iter().all(|&x| eq(x, first)).then_some(first)
        }
        Some(match t.data() {
            Data::F32(v) => Splat::Real(all_eq(v, |a, b| a.to_bits() == b.to_bits())? as f64),
            Data::F64(v) => Splat::Real(all_eq(v, |a, b| a.to_bits() == b.to_bits())?),
            Data::C32(v) => {
                let c = all_eq(v, |a, b| {
                    a.re.to_bits() == b.re.to_bits() && a.im.to_bits() == b.im.to_bits()
                })?;
                Splat::Complex(c.re as f64, c.im as f64)
            }
            Data::C64(v) => {
                let c = all_eq(v, |a, b| {
                    a.re.to_bits() == b.re.to_bits() && a.im.to_bits() == b.im.to_bits()
                })?;
                Splat::Complex(c.re, c.im)
            }
            Data::I32(v) => Splat::Int(all_eq(v, |a, b| a == b)? as i64),
            Data::I64(v) => Splat::Int(all_eq(v, |a, b| a == b)?),
            Data::Bool(v) => Splat::Bool(all_eq(v, |a, b| a == b)?),
        })
    }
}

/// What the analysis knows of an e-class.
#[derive(Clone, Debug)]
pub struct ClassData {
    /// Static type of the class.
    pub ty: TensorType,
    /// The value of every element, when all are equal and known.
    pub splat: Option<Splat>,
}

/// The analysis state: the interned constants and the types of leaves.
#[derive(Default, Debug)]
pub struct TensorAnalysis {
    consts: Vec<Tensor>,
    const_index: HashMap<Tensor, u32>,
    leaf_types: HashMap<u32, TensorType>,
}

impl TensorAnalysis {
    /// Interns a constant and returns its operator.
    pub fn intern(&mut self, t: Tensor) -> TOp {
        if let Some(&i) = self.const_index.get(&t) {
            return TOp::Const(i);
        }
        let i = self.consts.len() as u32;
        self.consts.push(t.clone());
        self.const_index.insert(t, i);
        TOp::Const(i)
    }

    /// The constant of a `Const(i)` operator.
    pub fn constant(&self, i: u32) -> &Tensor {
        &self.consts[i as usize]
    }

    /// Declares the type of leaf `Leaf(v)`.
    pub fn declare_leaf(&mut self, v: u32, ty: TensorType) {
        self.leaf_types.insert(v, ty);
    }

    /// The type of a leaf, if declared.
    pub fn leaf_type(&self, v: u32) -> Option<&TensorType> {
        self.leaf_types.get(&v)
    }
}

/// The result type of `op` applied to classes of types `args`, or the typing error.
pub fn node_type(
    analysis: &TensorAnalysis,
    op: &TOp,
    args: &[&TensorType],
) -> Result<TensorType, IrError> {
    match op {
        TOp::Leaf(v) => analysis
            .leaf_type(*v)
            .cloned()
            .ok_or_else(|| IrError::Malformed(format!("e-graph leaf %{v} has no declared type"))),
        TOp::Const(i) => Ok(analysis.constant(*i).ty()),
        other => {
            let op = other.to_ir().expect("non-leaf operators have an IR op");
            let mut tys = infer_types(&op, args)?;
            Ok(tys.remove(0))
        }
    }
}

impl Analysis<TNode> for TensorAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut TGraph, enode: &TNode, _id: Id) -> ClassData {
        let args: Vec<&TensorType> = enode.children.iter().map(|&c| &egraph[c].data.ty).collect();
        let ty = node_type(&egraph.analysis, &enode.op, &args)
            .expect("e-nodes are type-checked before they are added");
        let child_splat = |i: usize| egraph[enode.children[i]].data.splat;
        let splat = match &enode.op {
            TOp::Const(i) => Splat::of_tensor(egraph.analysis.constant(*i)),
            TOp::Broadcast { .. } | TOp::Reshape(_) | TOp::Transpose(_) => child_splat(0),
            TOp::Unary(UnaryOp::Neg) => match child_splat(0) {
                Some(Splat::Real(v)) => Some(Splat::Real(-v)),
                Some(Splat::Complex(re, im)) => Some(Splat::Complex(-re, -im)),
                _ => None,
            },
            _ => None,
        };
        ClassData { ty, splat }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        debug_assert_eq!(a.ty, b.ty, "merged e-classes of different types");
        match (a.splat, b.splat) {
            (None, Some(s)) => {
                a.splat = Some(s);
                DidMerge(true, false)
            }
            (Some(_), None) => DidMerge(false, true),
            _ => DidMerge(false, false),
        }
    }
}
