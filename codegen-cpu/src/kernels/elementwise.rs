//! Elementwise kernels: unary, binary, compare and select over whole buffers (convert is
//! the reference evaluator's [`tenferro_ir::eval::convert_data`]).
//! The scalar functions are the ones the reference evaluator uses (std / num-complex), so
//! results are bit-identical to it.

use crate::error::internal;
use tenferro_ir::eval::{binary_data, unary_data};
use tenferro_ir::{BinaryOp, CmpOp, Data, UnaryOp};
use tenferro_runtime::Result;

fn map2<T: Copy, R>(x: &[T], y: &[T], f: impl Fn(T, T) -> R) -> Vec<R> {
    x.iter().zip(y).map(|(&a, &b)| f(a, b)).collect()
}

/// `u` applied to every element of `x`, with the op table's semantics: the reference
/// evaluator's own function, so results are bit-identical to it.
pub(crate) fn unary(name: &str, u: UnaryOp, x: &Data) -> Result<Data> {
    unary_data(u, x).ok_or_else(|| internal(name, "an operand dtype the op has no semantics for"))
}

/// `b` applied to the elements of `x` and `y` pairwise (same dtype and length), with the
/// reference evaluator's function.
pub(crate) fn binary(name: &str, b: BinaryOp, x: &Data, y: &Data) -> Result<Data> {
    binary_data(b, x, y)
        .ok_or_else(|| internal(name, "operands of unsupported or different dtypes"))
}

fn ordered<T: PartialOrd + Copy>(c: CmpOp, x: &[T], y: &[T]) -> Vec<bool> {
    match c {
        CmpOp::Eq => map2(x, y, |p, q| p == q),
        CmpOp::Ne => map2(x, y, |p, q| p != q),
        CmpOp::Lt => map2(x, y, |p, q| p < q),
        CmpOp::Le => map2(x, y, |p, q| p <= q),
        CmpOp::Gt => map2(x, y, |p, q| p > q),
        CmpOp::Ge => map2(x, y, |p, q| p >= q),
    }
}

fn equality<T: PartialEq + Copy>(name: &str, c: CmpOp, x: &[T], y: &[T]) -> Result<Vec<bool>> {
    match c {
        CmpOp::Eq => Ok(map2(x, y, |p, q| p == q)),
        CmpOp::Ne => Ok(map2(x, y, |p, q| p != q)),
        _ => Err(internal(name, "ordered comparison of complex operands")),
    }
}

/// Comparison `c` of `x` and `y` elementwise; a bool buffer.
pub(crate) fn compare(name: &str, c: CmpOp, x: &Data, y: &Data) -> Result<Data> {
    Ok(Data::Bool(match (x, y) {
        (Data::F32(u), Data::F32(v)) => ordered(c, u, v),
        (Data::F64(u), Data::F64(v)) => ordered(c, u, v),
        (Data::I32(u), Data::I32(v)) => ordered(c, u, v),
        (Data::I64(u), Data::I64(v)) => ordered(c, u, v),
        (Data::Bool(u), Data::Bool(v)) => ordered(c, u, v),
        (Data::C32(u), Data::C32(v)) => equality(name, c, u, v)?,
        (Data::C64(u), Data::C64(v)) => equality(name, c, u, v)?,
        _ => return Err(internal(name, "operands of different dtypes")),
    }))
}

fn pick<T: Copy>(p: &[bool], t: &[T], f: &[T]) -> Vec<T> {
    p.iter()
        .zip(t.iter().zip(f))
        .map(|(&c, (&a, &b))| if c { a } else { b })
        .collect()
}

/// `p ? t : f` elementwise.
pub(crate) fn select(name: &str, p: &Data, t: &Data, f: &Data) -> Result<Data> {
    let Data::Bool(p) = p else {
        return Err(internal(name, "non-bool predicate"));
    };
    Ok(match (t, f) {
        (Data::F32(a), Data::F32(b)) => Data::F32(pick(p, a, b)),
        (Data::F64(a), Data::F64(b)) => Data::F64(pick(p, a, b)),
        (Data::C32(a), Data::C32(b)) => Data::C32(pick(p, a, b)),
        (Data::C64(a), Data::C64(b)) => Data::C64(pick(p, a, b)),
        (Data::I32(a), Data::I32(b)) => Data::I32(pick(p, a, b)),
        (Data::I64(a), Data::I64(b)) => Data::I64(pick(p, a, b)),
        (Data::Bool(a), Data::Bool(b)) => Data::Bool(pick(p, a, b)),
        _ => return Err(internal(name, "branches of different dtypes")),
    })
}
