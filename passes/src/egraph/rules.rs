//! Rewrite rules, one per identity, each named with the identity in a comment above it.
//!
//! A rule looks at one e-node (and the e-classes below it) and proposes right-hand sides
//! ([`Rhs`]) equal to the node's class. [`default_rules`] never changes a result's bits
//! under the reference evaluator's conventions (`tenferro_ir::eval`: reductions start from
//! `+0`, integers wrap); [`fast_math_rules`] may change rounding, signs of zeros and NaNs.
//! Following Cranelift's advice there is no general commutativity or associativity in
//! the default set: each useful orientation is its own rule.

use super::analysis::{Splat, TGraph};
use super::lang::{TNode, TOp};
use egg::Id;
use tenferro_ir::{BinaryOp, DType, ReduceOp, TensorType, UnaryOp};

/// A right-hand side: an existing class, a new node over right-hand sides, or a tensor of
/// one repeated value (materialised as a scalar constant broadcast to the type).
#[derive(Clone, Debug)]
pub enum Rhs {
    /// An existing class of the match.
    Class(Id),
    /// A new node over right-hand sides.
    Node(TOp, Vec<Rhs>),
    /// A splat constant of a type.
    Splat(TensorType, Splat),
}

/// The signature of a rule: the e-graph, the class of the node, the node, and where to
/// push the equal right-hand sides.
pub type RuleFn = fn(&TGraph, Id, &TNode, &mut Vec<Rhs>);

/// A named rewrite rule.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Unique name (`neg-neg`).
    pub name: &'static str,
    /// The identity it applies (`neg(neg(x)) == x`).
    pub identity: &'static str,
    /// The rewrite: matched class to its replacement, if the rule applies.
    pub apply: RuleFn,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.identity)
    }
}

fn ty(eg: &TGraph, id: Id) -> &TensorType {
    &eg[id].data.ty
}

fn splat(eg: &TGraph, id: Id) -> Option<Splat> {
    eg[id].data.splat
}

fn splat_is(eg: &TGraph, id: Id, p: impl Fn(&Splat) -> bool) -> bool {
    splat(eg, id).is_some_and(|s| p(&s))
}

/// The nodes of class `id` whose operator satisfies `p`.
fn nodes<'a>(
    eg: &'a TGraph,
    id: Id,
    p: impl Fn(&TOp) -> bool + 'a,
) -> impl Iterator<Item = &'a TNode> + 'a {
    eg[id].nodes.iter().filter(move |n| p(&n.op))
}

fn class(id: Id) -> Rhs {
    Rhs::Class(id)
}

fn node(op: TOp, args: Vec<Rhs>) -> Rhs {
    Rhs::Node(op, args)
}

/// Real floats and integers: the dtypes where `x*1`, `x/1`, `x*-1` are exact (complex
/// multiplication by `1+0i` turns `inf` imaginary parts into NaN).
fn real_or_int(d: DType) -> bool {
    d.is_real_float() || d.is_int()
}

fn is_identity_perm(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &a)| i == a)
}

macro_rules! rule {
    ($name:literal, $identity:literal, $f:ident) => {
        Rule {
            name: $name,
            identity: $identity,
            apply: $f,
        }
    };
}

/// The bit-exact rules, on by default in O2.
pub fn default_rules() -> Vec<Rule> {
    vec![
        rule!("neg-neg", "neg(neg(x)) == x", neg_neg),
        rule!("conj-conj", "conj(conj(x)) == x", conj_conj),
        rule!("conj-real", "conj(x) == x for real x", conj_real),
        rule!("real-real", "real(x) == x for real x", real_real),
        rule!("imag-real", "imag(x) == +0 for real x", imag_real),
        rule!("transpose-id", "transpose(x, id) == x", transpose_id),
        rule!("transpose-transpose", "transpose(transpose(x, p), q) == transpose(x, p∘q)", transpose_transpose),
        rule!("reshape-id", "reshape(x, shape(x)) == x", reshape_id),
        rule!("reshape-reshape", "reshape(reshape(x, s), t) == reshape(x, t)", reshape_reshape),
        rule!("convert-id", "convert(x, dtype(x)) == x", convert_id),
        rule!("broadcast-id", "broadcast(x, shape(x), 0..n) == x", broadcast_id),
        rule!("broadcast-broadcast", "broadcast(broadcast(x, s, d), t, e) == broadcast(x, t, e∘d)", broadcast_broadcast),
        rule!("splat-const", "const [c, c, ..] == broadcast(const c)", splat_const),
        rule!("add-neg-zero", "x + (-0) == x == (-0) + x", add_neg_zero),
        rule!("sub-pos-zero", "x - (+0) == x", sub_pos_zero),
        rule!("mul-one", "x * 1 == x == 1 * x (real, integer)", mul_one),
        rule!("div-one", "x / 1 == x (real, integer)", div_one),
        rule!("mul-minus-one", "x * -1 == neg(x) == -1 * x (real, integer)", mul_minus_one),
        rule!("sub-neg", "x - neg(y) == x + y", sub_neg),
        rule!("add-neg", "x + neg(y) == x - y == neg(y) + x", add_neg),
        rule!("mul-neg-neg", "neg(x) * neg(y) == x * y (real, integer)", mul_neg_neg),
        rule!("select-same", "select(c, x, x) == x", select_same),
        rule!("reduce-sum-broadcast", "reduce_sum(broadcast(x), new axes of size n) == x·n: n=1: x + 0, n=2: (x + x) + 0, integers: x * n", reduce_sum_broadcast_exact),
        rule!("transpose-unary", "f(transpose(x, p)) == transpose(f(x), p) for elementwise f", transpose_unary),
        rule!("transpose-binary", "g(transpose(x, p), transpose(y, p)) == transpose(g(x, y), p); a splat operand stays a splat", transpose_binary),
        rule!("dot-transpose-operand", "dot(transpose(a, p), b, dims) == dot(a, b, p(dims)) when free axes keep their order", dot_transpose_operand),
        rule!("transpose-dot", "transpose(dot(a, b), swap free blocks) == dot(b, a)", transpose_dot),
    ]
}

/// Value-changing rules (rounding, signed zeros, NaN and inf), off unless `fast_math`.
pub fn fast_math_rules() -> Vec<Rule> {
    vec![
        rule!("mul-zero", "x * 0 == 0 == 0 * x", mul_zero),
        rule!("sub-self", "x - x == 0", sub_self),
        rule!("add-zero", "x + 0 == x == 0 + x", add_zero),
        rule!(
            "mul-one-complex",
            "x * 1 == x == 1 * x, x / 1 == x (complex)",
            mul_one_complex
        ),
        rule!("add-assoc", "(x + y) + z == x + (y + z)", add_assoc),
        rule!("mul-assoc", "(x * y) * z == x * (y * z)", mul_assoc),
        rule!(
            "factor-mul",
            "x*y + x*z == x*(y + z); y*x + z*x == (y + z)*x",
            factor_mul
        ),
        rule!(
            "factor-dot",
            "dot(a, b) + dot(a, c) == dot(a, b + c); dot(a, c) + dot(b, c) == dot(a + b, c)",
            factor_dot
        ),
        rule!(
            "reduce-sum-broadcast-any",
            "reduce_sum(broadcast(x), new axes of size n) == x * n",
            reduce_sum_broadcast_any
        ),
    ]
}

// neg(neg(x)) == x
fn neg_neg(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Unary(UnaryOp::Neg) {
        for m in nodes(eg, n.children[0], |o| *o == TOp::Unary(UnaryOp::Neg)) {
            out.push(class(m.children[0]));
        }
    }
}

// conj(conj(x)) == x
fn conj_conj(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Unary(UnaryOp::Conj) {
        for m in nodes(eg, n.children[0], |o| *o == TOp::Unary(UnaryOp::Conj)) {
            out.push(class(m.children[0]));
        }
    }
}

// conj(x) == x for real x
fn conj_real(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Unary(UnaryOp::Conj) && !ty(eg, n.children[0]).dtype.is_complex() {
        out.push(class(n.children[0]));
    }
}

// real(x) == x for real x
fn real_real(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Unary(UnaryOp::Real) && !ty(eg, n.children[0]).dtype.is_complex() {
        out.push(class(n.children[0]));
    }
}

// imag(x) == +0 for real x
fn imag_real(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op != TOp::Unary(UnaryOp::Imag) {
        return;
    }
    let t = ty(eg, n.children[0]);
    if !t.dtype.is_complex() {
        out.push(Rhs::Splat(t.clone(), Splat::from_f64(t.dtype, 0.0)));
    }
}

// transpose(x, id) == x
fn transpose_id(_: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if let TOp::Transpose(p) = &n.op {
        if is_identity_perm(p) {
            out.push(class(n.children[0]));
        }
    }
}

// transpose(transpose(x, p), q) == transpose(x, r) with r[i] = p[q[i]] (x when r = id)
fn transpose_transpose(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    let TOp::Transpose(q) = &n.op else { return };
    for m in nodes(eg, n.children[0], |o| matches!(o, TOp::Transpose(_))) {
        let TOp::Transpose(p) = &m.op else { continue };
        let r: Vec<usize> = q.iter().map(|&i| p[i]).collect();
        let x = class(m.children[0]);
        out.push(if is_identity_perm(&r) {
            x
        } else {
            node(TOp::Transpose(r), vec![x])
        });
    }
}

// reshape(x, shape(x)) == x
fn reshape_id(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if let TOp::Reshape(s) = &n.op {
        if *s == ty(eg, n.children[0]).shape {
            out.push(class(n.children[0]));
        }
    }
}

// reshape(reshape(x, s), t) == reshape(x, t) (column-major: memory order never changes)
fn reshape_reshape(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    let TOp::Reshape(t) = &n.op else { return };
    for m in nodes(eg, n.children[0], |o| matches!(o, TOp::Reshape(_))) {
        let x = m.children[0];
        out.push(if ty(eg, x).shape == *t {
            class(x)
        } else {
            node(TOp::Reshape(t.clone()), vec![class(x)])
        });
    }
}

// convert(x, dtype(x)) == x
fn convert_id(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if let TOp::Convert(d) = n.op {
        if d == ty(eg, n.children[0]).dtype {
            out.push(class(n.children[0]));
        }
    }
}

// broadcast(x, shape(x), [0, 1, .., n-1]) == x
fn broadcast_id(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if let TOp::Broadcast { shape, dims } = &n.op {
        if *shape == ty(eg, n.children[0]).shape && is_identity_perm(dims) {
            out.push(class(n.children[0]));
        }
    }
}

// broadcast(broadcast(x, s, d), t, e) == broadcast(x, t, [e[d[0]], e[d[1]], ..])
fn broadcast_broadcast(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    let TOp::Broadcast { shape: t, dims: e } = &n.op else {
        return;
    };
    for m in nodes(eg, n.children[0], |o| matches!(o, TOp::Broadcast { .. })) {
        let TOp::Broadcast { dims: d, .. } = &m.op else {
            continue;
        };
        let dims = d.iter().map(|&i| e[i]).collect();
        out.push(node(
            TOp::Broadcast {
                shape: t.clone(),
                dims,
            },
            vec![class(m.children[0])],
        ));
    }
}

// const [c, c, .., c] == broadcast(const c, shape, [])
fn splat_const(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if let (TOp::Const(_), Some(s)) = (&n.op, splat(eg, id)) {
        let t = ty(eg, id);
        if t.numel() > 1 {
            out.push(Rhs::Splat(t.clone(), s));
        }
    }
}

// x + (-0) == x == (-0) + x  (IEEE: -0 is the exact additive identity; +0 is not, as
// -0 + +0 = +0; for integers 0 is exact)
fn add_neg_zero(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Add) {
        let (a, b) = (n.children[0], n.children[1]);
        if splat_is(eg, b, Splat::is_neg_zero) {
            out.push(class(a));
        }
        if splat_is(eg, a, Splat::is_neg_zero) {
            out.push(class(b));
        }
    }
}

// x - (+0) == x  (x - +0 = x + -0)
fn sub_pos_zero(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Sub) && splat_is(eg, n.children[1], Splat::is_pos_zero) {
        out.push(class(n.children[0]));
    }
}

// x * 1 == x == 1 * x  (real floats and integers)
fn mul_one(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Mul) && real_or_int(ty(eg, id).dtype) {
        let (a, b) = (n.children[0], n.children[1]);
        if splat_is(eg, b, Splat::is_one) {
            out.push(class(a));
        }
        if splat_is(eg, a, Splat::is_one) {
            out.push(class(b));
        }
    }
}

// x / 1 == x  (real floats and integers)
fn div_one(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Div)
        && real_or_int(ty(eg, id).dtype)
        && splat_is(eg, n.children[1], Splat::is_one)
    {
        out.push(class(n.children[0]));
    }
}

// x * -1 == neg(x) == -1 * x  (real floats: sign flip is exact; integers wrap alike)
fn mul_minus_one(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Mul) && real_or_int(ty(eg, id).dtype) {
        let (a, b) = (n.children[0], n.children[1]);
        if splat_is(eg, b, Splat::is_minus_one) {
            out.push(node(TOp::Unary(UnaryOp::Neg), vec![class(a)]));
        }
        if splat_is(eg, a, Splat::is_minus_one) {
            out.push(node(TOp::Unary(UnaryOp::Neg), vec![class(b)]));
        }
    }
}

// x - neg(y) == x + y  (IEEE subtraction is addition of the negation)
fn sub_neg(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Sub) {
        for m in nodes(eg, n.children[1], |o| *o == TOp::Unary(UnaryOp::Neg)) {
            out.push(node(
                TOp::Binary(BinaryOp::Add),
                vec![class(n.children[0]), class(m.children[0])],
            ));
        }
    }
}

// x + neg(y) == x - y == neg(y) + x
fn add_neg(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Add) {
        let (a, b) = (n.children[0], n.children[1]);
        for m in nodes(eg, b, |o| *o == TOp::Unary(UnaryOp::Neg)) {
            out.push(node(
                TOp::Binary(BinaryOp::Sub),
                vec![class(a), class(m.children[0])],
            ));
        }
        for m in nodes(eg, a, |o| *o == TOp::Unary(UnaryOp::Neg)) {
            out.push(node(
                TOp::Binary(BinaryOp::Sub),
                vec![class(b), class(m.children[0])],
            ));
        }
    }
}

// neg(x) * neg(y) == x * y  (real floats and integers)
fn mul_neg_neg(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Mul) && real_or_int(ty(eg, id).dtype) {
        let is_neg = |o: &TOp| *o == TOp::Unary(UnaryOp::Neg);
        for l in nodes(eg, n.children[0], is_neg) {
            for r in nodes(eg, n.children[1], is_neg) {
                out.push(node(
                    TOp::Binary(BinaryOp::Mul),
                    vec![class(l.children[0]), class(r.children[0])],
                ));
            }
        }
    }
}

// select(c, x, x) == x
fn select_same(_: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Select && n.children[1] == n.children[2] {
        out.push(class(n.children[1]));
    }
}

/// For `reduce_sum(broadcast(x, shape, dims), axes)` reducing exactly the axes the
/// broadcast added: `x` brought to the result's shape, and the number of copies summed.
fn sum_of_broadcast(eg: &TGraph, id: Id, n: &TNode) -> Vec<(Rhs, usize)> {
    let TOp::Reduce(ReduceOp::Sum, axes) = &n.op else {
        return vec![];
    };
    let result = ty(eg, id);
    let mut found = vec![];
    for m in nodes(eg, n.children[0], |o| matches!(o, TOp::Broadcast { .. })) {
        let TOp::Broadcast { shape, dims } = &m.op else {
            continue;
        };
        let added: Vec<usize> = (0..shape.len()).filter(|a| !dims.contains(a)).collect();
        let mut sorted = axes.clone();
        sorted.sort_unstable();
        if sorted != added {
            continue;
        }
        let copies: usize = added.iter().map(|&a| shape[a]).product();
        let x = m.children[0];
        let base = if ty(eg, x).shape == result.shape {
            class(x)
        } else {
            let dims = (0..result.rank()).collect();
            node(
                TOp::Broadcast {
                    shape: result.shape.clone(),
                    dims,
                },
                vec![class(x)],
            )
        };
        found.push((base, copies));
    }
    found
}

// reduce_sum(broadcast(x), the n-fold new axes) == x·n where exact. The reduction computes
// ((+0 + x) + x) + ..: n = 1 gives x + (+0); n = 2 gives (x + x) + (+0); integers wrap,
// so x * n is exact for any n.
fn reduce_sum_broadcast_exact(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    let t = ty(eg, id).clone();
    let add = |a, b| node(TOp::Binary(BinaryOp::Add), vec![a, b]);
    for (base, copies) in sum_of_broadcast(eg, id, n) {
        let zero = Rhs::Splat(t.clone(), Splat::from_f64(t.dtype, 0.0));
        match (t.dtype, copies) {
            (DType::I32 | DType::I64, c) => {
                let k = Rhs::Splat(t.clone(), Splat::wrapping_int(t.dtype, c as i64));
                out.push(node(TOp::Binary(BinaryOp::Mul), vec![base, k]));
            }
            (_, 1) => out.push(add(base, zero)),
            (_, 2) => out.push(add(add(base.clone(), base), zero)),
            _ => {}
        }
    }
}

// f(transpose(x, p)) == transpose(f(x), p) for elementwise unary f (and convert)
fn transpose_unary(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if !matches!(n.op, TOp::Unary(_) | TOp::Convert(_)) {
        return;
    }
    for m in nodes(eg, n.children[0], |o| matches!(o, TOp::Transpose(_))) {
        let inner = node(n.op.clone(), vec![class(m.children[0])]);
        out.push(node(m.op.clone(), vec![inner]));
    }
}

// g(transpose(x, p), transpose(y, p)) == transpose(g(x, y), p) for elementwise binary g
// (and compare); a splat operand is re-splatted at x's shape.
fn transpose_binary(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if !matches!(n.op, TOp::Binary(_) | TOp::Compare(_)) {
        return;
    }
    let (a, b) = (n.children[0], n.children[1]);
    let is_t = |o: &TOp| matches!(o, TOp::Transpose(_));
    for l in nodes(eg, a, is_t) {
        let x = l.children[0];
        for r in nodes(eg, b, is_t) {
            if r.op == l.op {
                let inner = node(n.op.clone(), vec![class(x), class(r.children[0])]);
                out.push(node(l.op.clone(), vec![inner]));
            }
        }
        if let Some(s) = splat(eg, b) {
            let other = Rhs::Splat(ty(eg, x).clone(), s);
            out.push(node(
                l.op.clone(),
                vec![node(n.op.clone(), vec![class(x), other])],
            ));
        }
    }
    if let Some(s) = splat(eg, a) {
        for r in nodes(eg, b, is_t) {
            let y = r.children[0];
            let other = Rhs::Splat(ty(eg, y).clone(), s);
            out.push(node(
                r.op.clone(),
                vec![node(n.op.clone(), vec![other, class(y)])],
            ));
        }
    }
}

/// Maps operand axes of `transpose(x, p)` in dot dimension numbers to axes of `x`; `None`
/// when the free axes would change order (the result's layout would then differ).
fn absorb_perm(
    p: &[usize],
    contract: &[usize],
    batch: &[usize],
) -> Option<(Vec<usize>, Vec<usize>)> {
    let free: Vec<usize> = (0..p.len())
        .filter(|a| !contract.contains(a) && !batch.contains(a))
        .map(|a| p[a])
        .collect();
    if free.windows(2).any(|w| w[0] > w[1]) {
        return None;
    }
    Some((
        contract.iter().map(|&a| p[a]).collect(),
        batch.iter().map(|&a| p[a]).collect(),
    ))
}

/// Whether a GEMM reads an operand of `shape` in place as matrices of `rows × cols` (each
/// group flattened column-major in the given order): both groups are single strided runs
/// of the column-major layout and one has stride 1. Otherwise the CPU backend packs the
/// operand into a scratch copy per call.
fn gemm_in_place(shape: &[usize], rows: &[usize], cols: &[usize]) -> bool {
    let mut strides = vec![1usize; shape.len()];
    for a in 1..shape.len() {
        strides[a] = strides[a - 1] * shape[a - 1];
    }
    // (stride, elements) of a group that is one strided run
    let run = |axes: &[usize]| -> Option<(usize, usize)> {
        let big: Vec<usize> = axes.iter().copied().filter(|&a| shape[a] != 1).collect();
        if big
            .windows(2)
            .any(|w| strides[w[1]] != strides[w[0]] * shape[w[0]])
        {
            return None;
        }
        let n = big.iter().map(|&a| shape[a]).product::<usize>();
        Some((if n <= 1 { 1 } else { strides[big[0]] }, n))
    };
    matches!((run(rows), run(cols)), (Some((r, _)), Some((c, _))) if r == 1 || c == 1)
}

/// Whether absorbing a transpose into a dot operand keeps the GEMM reading it in place:
/// `from` is the transposed operand with its `(rows, cols)` groups, `to` the untransposed
/// one with the mapped groups. A transpose placed to avoid a GEMM pack stays.
fn absorb_keeps_gemm(
    from: (&TensorType, &[usize], &[usize]),
    to: (&TensorType, &[usize], &[usize]),
) -> bool {
    !gemm_in_place(&from.0.shape, from.1, from.2) || gemm_in_place(&to.0.shape, to.1, to.2)
}

/// The axes of a rank-`rank` dot operand that are neither contracted nor batch axes.
fn dot_free(rank: usize, contract: &[usize], batch: &[usize]) -> Vec<usize> {
    (0..rank)
        .filter(|a| !contract.contains(a) && !batch.contains(a))
        .collect()
}

// dot(transpose(a, p), b, dims) == dot(a, b, dims with lhs axes mapped through p), and the
// same on the right, when the free axes keep their order (the contraction order is that
// of the dimension-number pairs, so the sums are the same). Not applied when the GEMM
// reads the transposed operand in place but would pack the untransposed one.
fn dot_transpose_operand(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    let TOp::Dot {
        lhs_contract,
        rhs_contract,
        lhs_batch,
        rhs_batch,
    } = &n.op
    else {
        return;
    };
    let (l, r) = (n.children[0], n.children[1]);
    for m in nodes(eg, l, |o| matches!(o, TOp::Transpose(_))) {
        let TOp::Transpose(p) = &m.op else { continue };
        if let Some((lc, lb)) = absorb_perm(p, lhs_contract, lhs_batch) {
            let (t, x) = (ty(eg, l), ty(eg, m.children[0]));
            let f = dot_free(t.rank(), lhs_contract, lhs_batch);
            let g = dot_free(x.rank(), &lc, &lb);
            if !absorb_keeps_gemm((t, &f, lhs_contract), (x, &g, &lc)) {
                continue;
            }
            let op = TOp::Dot {
                lhs_contract: lc,
                rhs_contract: rhs_contract.clone(),
                lhs_batch: lb,
                rhs_batch: rhs_batch.clone(),
            };
            out.push(node(op, vec![class(m.children[0]), class(r)]));
        }
    }
    for m in nodes(eg, r, |o| matches!(o, TOp::Transpose(_))) {
        let TOp::Transpose(p) = &m.op else { continue };
        if let Some((rc, rb)) = absorb_perm(p, rhs_contract, rhs_batch) {
            let (t, x) = (ty(eg, r), ty(eg, m.children[0]));
            let f = dot_free(t.rank(), rhs_contract, rhs_batch);
            let g = dot_free(x.rank(), &rc, &rb);
            if !absorb_keeps_gemm((t, rhs_contract, &f), (x, &rc, &g)) {
                continue;
            }
            let op = TOp::Dot {
                lhs_contract: lhs_contract.clone(),
                rhs_contract: rc,
                lhs_batch: lhs_batch.clone(),
                rhs_batch: rb,
            };
            out.push(node(op, vec![class(l), class(m.children[0])]));
        }
    }
}

// transpose(dot(a, b), [batch, b's free axes, a's free axes]) == dot(b, a) (products
// commute exactly; the contraction order is unchanged)
fn transpose_dot(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    let TOp::Transpose(perm) = &n.op else { return };
    for m in nodes(eg, n.children[0], |o| matches!(o, TOp::Dot { .. })) {
        let TOp::Dot {
            lhs_contract,
            rhs_contract,
            lhs_batch,
            rhs_batch,
        } = &m.op
        else {
            continue;
        };
        let (a, b) = (m.children[0], m.children[1]);
        let nb = lhs_batch.len();
        let lf = ty(eg, a).rank() - nb - lhs_contract.len();
        let rf = ty(eg, b).rank() - nb - rhs_contract.len();
        let want: Vec<usize> = (0..nb)
            .chain(nb + lf..nb + lf + rf)
            .chain(nb..nb + lf)
            .collect();
        if *perm == want {
            let op = TOp::Dot {
                lhs_contract: rhs_contract.clone(),
                rhs_contract: lhs_contract.clone(),
                lhs_batch: rhs_batch.clone(),
                rhs_batch: lhs_batch.clone(),
            };
            out.push(node(op, vec![class(b), class(a)]));
        }
    }
}

// ---- fast math ----

// x * 0 == 0 == 0 * x  (wrong for inf and NaN x, and for the sign of zero)
fn mul_zero(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Mul)
        && (splat_is(eg, n.children[0], Splat::is_zero)
            || splat_is(eg, n.children[1], Splat::is_zero))
    {
        let t = ty(eg, id);
        out.push(Rhs::Splat(t.clone(), Splat::from_f64(t.dtype, 0.0)));
    }
}

// x - x == 0  (wrong for inf and NaN x)
fn sub_self(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Sub) && n.children[0] == n.children[1] {
        let t = ty(eg, id);
        out.push(Rhs::Splat(t.clone(), Splat::from_f64(t.dtype, 0.0)));
    }
}

// x + 0 == x == 0 + x  (zeros of either sign: wrong only for the sign of a zero result)
fn add_zero(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(BinaryOp::Add) {
        let (a, b) = (n.children[0], n.children[1]);
        if splat_is(eg, b, Splat::is_zero) {
            out.push(class(a));
        }
        if splat_is(eg, a, Splat::is_zero) {
            out.push(class(b));
        }
    }
}

// x * 1 == x == 1 * x, x / 1 == x for complex x (wrong when a part is inf or NaN)
fn mul_one_complex(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    let (a, b) = match n.children[..] {
        [a, b] => (a, b),
        _ => return,
    };
    if n.op == TOp::Binary(BinaryOp::Mul) {
        if splat_is(eg, b, Splat::is_one) {
            out.push(class(a));
        }
        if splat_is(eg, a, Splat::is_one) {
            out.push(class(b));
        }
    }
    if n.op == TOp::Binary(BinaryOp::Div) && splat_is(eg, b, Splat::is_one) {
        out.push(class(a));
    }
}

fn reassociate(eg: &TGraph, n: &TNode, op: BinaryOp, out: &mut Vec<Rhs>) {
    let bop = TOp::Binary(op);
    if n.op != bop {
        return;
    }
    let (a, z) = (n.children[0], n.children[1]);
    for m in nodes(eg, a, |o| *o == bop) {
        let (x, y) = (m.children[0], m.children[1]);
        out.push(node(
            bop.clone(),
            vec![class(x), node(bop.clone(), vec![class(y), class(z)])],
        ));
    }
    let x = a;
    for m in nodes(eg, z, |o| *o == bop) {
        let (y, w) = (m.children[0], m.children[1]);
        out.push(node(
            bop.clone(),
            vec![node(bop.clone(), vec![class(x), class(y)]), class(w)],
        ));
    }
}

// (x + y) + z == x + (y + z), both directions
fn add_assoc(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    reassociate(eg, n, BinaryOp::Add, out)
}

// (x * y) * z == x * (y * z), both directions
fn mul_assoc(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    reassociate(eg, n, BinaryOp::Mul, out)
}

// x*y + x*z == x*(y + z); y*x + z*x == (y + z)*x
fn factor_mul(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op != TOp::Binary(BinaryOp::Add) {
        return;
    }
    let mul = TOp::Binary(BinaryOp::Mul);
    let add = TOp::Binary(BinaryOp::Add);
    for l in nodes(eg, n.children[0], |o| *o == mul) {
        for r in nodes(eg, n.children[1], |o| *o == mul) {
            if l.children[0] == r.children[0] {
                let sum = node(
                    add.clone(),
                    vec![class(l.children[1]), class(r.children[1])],
                );
                out.push(node(mul.clone(), vec![class(l.children[0]), sum]));
            }
            if l.children[1] == r.children[1] {
                let sum = node(
                    add.clone(),
                    vec![class(l.children[0]), class(r.children[0])],
                );
                out.push(node(mul.clone(), vec![sum, class(l.children[1])]));
            }
        }
    }
}

// dot(a, b) + dot(a, c) == dot(a, b + c); dot(a, c) + dot(b, c) == dot(a + b, c)
fn factor_dot(eg: &TGraph, _: Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op != TOp::Binary(BinaryOp::Add) {
        return;
    }
    let add = TOp::Binary(BinaryOp::Add);
    let is_dot = |o: &TOp| matches!(o, TOp::Dot { .. });
    for l in nodes(eg, n.children[0], is_dot) {
        for r in nodes(eg, n.children[1], is_dot) {
            if l.op != r.op {
                continue;
            }
            let (a, b, c, d) = (l.children[0], l.children[1], r.children[0], r.children[1]);
            if a == c && ty(eg, b) == ty(eg, d) {
                out.push(node(
                    l.op.clone(),
                    vec![class(a), node(add.clone(), vec![class(b), class(d)])],
                ));
            }
            if b == d && ty(eg, a) == ty(eg, c) {
                out.push(node(
                    l.op.clone(),
                    vec![node(add.clone(), vec![class(a), class(c)]), class(b)],
                ));
            }
        }
    }
}

// reduce_sum(broadcast(x), the n-fold new axes) == x * n  (rounding differs for n > 2)
fn reduce_sum_broadcast_any(eg: &TGraph, id: Id, n: &TNode, out: &mut Vec<Rhs>) {
    let t = ty(eg, id).clone();
    if !t.dtype.is_float() {
        return;
    }
    for (base, copies) in sum_of_broadcast(eg, id, n) {
        let k = Rhs::Splat(t.clone(), Splat::from_f64(t.dtype, copies as f64));
        out.push(node(TOp::Binary(BinaryOp::Mul), vec![base, k]));
    }
}
