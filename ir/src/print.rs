//! Text form printer. [`print()`] writes a [`Function`] in the form that [`crate::parse()`]
//! reads back, so that `parse(&print(&f)) == f`:
//!
//! ```text
//! func @main(%0: f64[3] {name = "x"}, %1: f64[]) -> (f64[]) {
//!   %2 = mul %0, %0 : f64[3]
//!   %3 = reduce_sum {axes = [0]} %2 : f64[]
//!   %4 = constant f64[2] [1.0, 2.5]
//!   %5 = compare {dir = lt} %2, %2 : bool[3]
//!   %6, %7 = linalg.qr {mode = "reduced"} %0 : f64[3,3], f64[3,3]
//!   return %3
//! }
//! ```
//!
//! A parameter is `%value: type`, then `{name = "..."}` when it has a name (a named
//! placeholder's). An instruction is `results = op <declared types> {attributes}
//! operands : result types`.
//! Floats print as the shortest decimal that reads back to the same bits (`-0.0`, `inf`,
//! `5e-324`); NaNs print their bit pattern, `nan(0x7ff8000000000000)`. Complex elements
//! print as `(re, im)`. Constants list their elements in column-major order and omit the
//! result type when it is the constant's own type. An extension op whose name is not a
//! dotted identifier prints as `ext "name"`; its declared result types print in `<...>`
//! only when they differ from the recorded ones (broken IR stays printable). Printing is
//! linear in the size of the function, constants included, and never panics, even on a
//! function the verifier rejects.

use crate::dtype::TensorType;
use crate::function::{Function, Value};
use crate::op::{Attr, Op};
use crate::tensor::{Data, Tensor};
use std::fmt::{self, Write};

/// Prints `f` in the text form that [`crate::parse()`] reads back.
pub fn print(f: &Function) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_function(&mut out, f);
    out
}

/// Writes `f` in text form to `out` (what [`print()`] returns).
pub fn write_function(out: &mut impl Write, f: &Function) -> fmt::Result {
    out.write_str("func @")?;
    write_symbol(out, &f.name)?;
    out.write_str("(")?;
    for (i, &p) in f.params().iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        write!(out, "{p}: ")?;
        write_value_type(out, f, p)?;
        if let Some(name) = f.param_name(i) {
            write!(out, " {{name = {name:?}}}")?;
        }
    }
    out.write_str(") -> (")?;
    for (i, &o) in f.outputs().iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        write_value_type(out, f, o)?;
    }
    out.write_str(") {\n")?;
    for inst in f.insts() {
        out.write_str("  ")?;
        if !inst.results.is_empty() {
            write_values(out, &inst.results)?;
            out.write_str(" = ")?;
        }
        let recorded: Vec<Option<&TensorType>> =
            inst.results.iter().map(|&r| f.try_ty(r)).collect();
        write_op(out, &inst.op, &recorded)?;
        if !inst.args.is_empty() {
            out.write_str(" ")?;
            write_values(out, &inst.args)?;
        }
        let omit_types = match &inst.op {
            Op::Constant(t) => recorded.len() == 1 && recorded[0] == Some(&t.ty()),
            _ => recorded.is_empty(),
        };
        if !omit_types {
            out.write_str(" : ")?;
            for (i, &r) in inst.results.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write_value_type(out, f, r)?;
            }
        }
        out.write_str("\n")?;
    }
    out.write_str("  return")?;
    if !f.outputs().is_empty() {
        out.write_str(" ")?;
        write_values(out, f.outputs())?;
    }
    out.write_str("\n}\n")
}

fn write_values(out: &mut impl Write, vs: &[Value]) -> fmt::Result {
    for (i, v) in vs.iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        write!(out, "{v}")?;
    }
    Ok(())
}

/// A value's type; `?` for a value outside the arena (only in broken functions).
fn write_value_type(out: &mut impl Write, f: &Function, v: Value) -> fmt::Result {
    match f.try_ty(v) {
        Some(t) => write!(out, "{t}"),
        None => out.write_str("?"),
    }
}

/// `true` when `s` prints bare as a symbol (function name, attribute key).
pub(crate) fn is_plain_symbol(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// `true` when an extension op name prints bare: a dotted identifier (`linalg.qr`).
pub(crate) fn is_plain_extension_name(s: &str) -> bool {
    is_plain_symbol(s) && s.contains('.') && !s.ends_with('.')
}

fn write_symbol(out: &mut impl Write, s: &str) -> fmt::Result {
    if is_plain_symbol(s) {
        out.write_str(s)
    } else {
        write!(out, "{s:?}")
    }
}

fn write_usizes(out: &mut impl Write, xs: &[usize]) -> fmt::Result {
    out.write_str("[")?;
    for (i, x) in xs.iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        write!(out, "{x}")?;
    }
    out.write_str("]")
}

fn write_op(out: &mut impl Write, op: &Op, recorded: &[Option<&TensorType>]) -> fmt::Result {
    if let Op::Extension(e) = op {
        if is_plain_extension_name(&e.name) {
            out.write_str(&e.name)?;
        } else {
            write!(out, "ext {:?}", e.name)?;
        }
        let same = e.results.len() == recorded.len()
            && e.results.iter().zip(recorded).all(|(a, b)| Some(a) == *b);
        if !same {
            out.write_str(" <")?;
            for (i, t) in e.results.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write!(out, "{t}")?;
            }
            out.write_str(">")?;
        }
        if !e.attrs.is_empty() {
            out.write_str(" {")?;
            for (i, (k, v)) in e.attrs.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write_symbol(out, k)?;
                out.write_str(" = ")?;
                write_attr(out, v)?;
            }
            out.write_str("}")?;
        }
        return Ok(());
    }
    out.write_str(op.name())?;
    match op {
        Op::Unary(_) | Op::Binary(_) | Op::Select => Ok(()),
        Op::Compare(c) => write!(out, " {{dir = {}}}", c.name()),
        Op::Reduce { axes, .. } => {
            out.write_str(" {axes = ")?;
            write_usizes(out, axes)?;
            out.write_str("}")
        }
        Op::DotGeneral(d) => {
            out.write_str(" {")?;
            if !d.lhs_batch.is_empty() || !d.rhs_batch.is_empty() {
                out.write_str("lhs_batch = ")?;
                write_usizes(out, &d.lhs_batch)?;
                out.write_str(", rhs_batch = ")?;
                write_usizes(out, &d.rhs_batch)?;
                out.write_str(", ")?;
            }
            out.write_str("lhs_contract = ")?;
            write_usizes(out, &d.lhs_contract)?;
            out.write_str(", rhs_contract = ")?;
            write_usizes(out, &d.rhs_contract)?;
            out.write_str("}")
        }
        Op::Transpose { perm } => {
            out.write_str(" {perm = ")?;
            write_usizes(out, perm)?;
            out.write_str("}")
        }
        Op::Reshape { shape } => {
            out.write_str(" {shape = ")?;
            write_usizes(out, shape)?;
            out.write_str("}")
        }
        Op::BroadcastInDim { shape, dims } => {
            out.write_str(" {shape = ")?;
            write_usizes(out, shape)?;
            out.write_str(", dims = ")?;
            write_usizes(out, dims)?;
            out.write_str("}")
        }
        Op::Slice { starts, limits } => {
            out.write_str(" {starts = ")?;
            write_usizes(out, starts)?;
            out.write_str(", limits = ")?;
            write_usizes(out, limits)?;
            out.write_str("}")
        }
        Op::Pad { low, high } => {
            out.write_str(" {low = ")?;
            write_usizes(out, low)?;
            out.write_str(", high = ")?;
            write_usizes(out, high)?;
            out.write_str("}")
        }
        Op::Concatenate { axis } | Op::Gather { axis } | Op::ScatterAdd { axis } => {
            write!(out, " {{axis = {axis}}}")
        }
        Op::Convert { to } => write!(out, " {{to = {to}}}"),
        Op::Iota { ty, dim } => {
            if recorded.len() == 1 && recorded[0] == Some(ty) {
                write!(out, " {{dim = {dim}}}")
            } else {
                write!(out, " {{dim = {dim}, type = {ty}}}")
            }
        }
        Op::Constant(t) => {
            write!(out, " {} ", t.ty())?;
            write_elements(out, t)
        }
        Op::Argsort { axis, descending } => {
            write!(out, " {{axis = {axis}, descending = {descending}}}")
        }
        Op::Cumulative { axis, reverse, .. } => {
            write!(out, " {{axis = {axis}, reverse = {reverse}}}")
        }
        Op::Extension(_) => Ok(()),
        Op::Barrier { label } => write!(out, " {{label = {label:?}}}"),
    }
}

fn write_attr(out: &mut impl Write, a: &Attr) -> fmt::Result {
    match a {
        Attr::Bool(b) => write!(out, "{b}"),
        Attr::Int(i) => write!(out, "{i}"),
        Attr::Ints(xs) => {
            out.write_str("[")?;
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write!(out, "{x}")?;
            }
            out.write_str("]")
        }
        Attr::FloatBits(bits) => write_f64(out, f64::from_bits(*bits)),
        Attr::Str(s) => write!(out, "{s:?}"),
    }
}

/// Shortest round-trip decimal (`{:?}` always shows a `.`, an exponent, `inf` or `NaN`),
/// or `nan(0x...)` with the exact bits.
pub(crate) fn write_f64(out: &mut impl Write, x: f64) -> fmt::Result {
    if x.is_nan() {
        write!(out, "nan(0x{:016x})", x.to_bits())
    } else {
        write!(out, "{x:?}")
    }
}

/// As [`write_f64`] for f32 (shortest decimal that reads back as the same f32).
pub(crate) fn write_f32(out: &mut impl Write, x: f32) -> fmt::Result {
    if x.is_nan() {
        write!(out, "nan(0x{:08x})", x.to_bits())
    } else {
        write!(out, "{x:?}")
    }
}

/// The elements of a constant, column-major, as `[e0, e1, ...]`.
fn write_elements(out: &mut impl Write, t: &Tensor) -> fmt::Result {
    out.write_str("[")?;
    fn each<T, W: Write>(
        out: &mut W,
        xs: &[T],
        mut w: impl FnMut(&mut W, &T) -> fmt::Result,
    ) -> fmt::Result {
        for (i, x) in xs.iter().enumerate() {
            if i > 0 {
                out.write_str(", ")?;
            }
            w(out, x)?;
        }
        Ok(())
    }
    match t.data() {
        Data::F32(v) => each(out, v, |o, &x| write_f32(o, x))?,
        Data::F64(v) => each(out, v, |o, &x| write_f64(o, x))?,
        Data::C32(v) => each(out, v, |o, z| {
            o.write_str("(")?;
            write_f32(o, z.re)?;
            o.write_str(", ")?;
            write_f32(o, z.im)?;
            o.write_str(")")
        })?,
        Data::C64(v) => each(out, v, |o, z| {
            o.write_str("(")?;
            write_f64(o, z.re)?;
            o.write_str(", ")?;
            write_f64(o, z.im)?;
            o.write_str(")")
        })?,
        Data::I32(v) => each(out, v, |o, x| write!(o, "{x}"))?,
        Data::I64(v) => each(out, v, |o, x| write!(o, "{x}"))?,
        Data::Bool(v) => each(out, v, |o, x| write!(o, "{x}"))?,
    }
    out.write_str("]")
}
