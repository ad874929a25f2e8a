//! The e-graph pass as a whole: saturation limits, sharing in extraction, the "never
//! more expensive" guard, opaque instructions, the O2 pipeline, the cost model, and the
//! property that the default rules keep results bit-identical on random functions.

use proptest::prelude::*;
use std::time::{Duration, Instant};
use tenferro_ir::arbitrary::{arb_function, arb_inputs, ArbConfig};
use tenferro_ir::eval::eval;
use tenferro_ir::verify::verify;
use tenferro_ir::{DType, DotDims, Function, Op, Tensor, TensorType, UnaryOp};
use tenferro_passes::cost::{op_cost, score};
use tenferro_passes::egraph::rules::{default_rules, Rhs, Rule};
use tenferro_passes::egraph::sexpr::parse_function;
use tenferro_passes::egraph::{
    simplify, simplify_with, EGraphOptions, StopReason, TGraph, TNode, TOp,
};
use tenferro_passes::{estimate, OptLevel, PassSpec, Pipeline};

fn generous() -> EGraphOptions {
    EGraphOptions {
        node_limit: 1_000_000,
        iter_limit: 1_000,
        time_limit: Duration::from_secs(60),
        fast_math: false,
    }
}

fn count(f: &Function, name: &str) -> usize {
    f.insts().iter().filter(|i| i.op.name() == name).count()
}

// ---- limits ----

/// With fast math, `x * 0 == 0` puts `x * zeros` in the class of `zeros`, and
/// reassociation then grows that class without end: only the limits stop it.
fn exploding() -> Function {
    parse_function("x:f64[2,3]", &["(mul x (broadcast:2,3: 0.0:f64))"]).unwrap()
}

#[test]
fn saturation_reports_saturated_when_nothing_is_left() {
    let mut f = parse_function("x:f64[3]", &["(neg (neg x))"]).unwrap();
    let r = simplify(&mut f, &generous());
    assert_eq!(r.saturation.stop, StopReason::Saturated);
}

#[test]
fn saturation_stops_at_the_node_limit_without_overshoot() {
    for limit in [20, 100, 500] {
        let mut f = exploding();
        let opts = EGraphOptions {
            node_limit: limit,
            fast_math: true,
            ..generous()
        };
        let r = simplify(&mut f, &opts);
        assert_eq!(r.saturation.stop, StopReason::NodeLimit);
        assert!(
            r.nodes <= limit,
            "{} e-nodes for a limit of {limit}",
            r.nodes
        );
    }
}

#[test]
fn saturation_stops_at_the_iteration_limit() {
    let mut f = exploding();
    let opts = EGraphOptions {
        iter_limit: 3,
        fast_math: true,
        ..generous()
    };
    let r = simplify(&mut f, &opts);
    assert_eq!(r.saturation.stop, StopReason::IterLimit);
    assert_eq!(r.saturation.iterations, 3);
}

#[test]
fn saturation_stops_at_the_time_limit() {
    let mut f = exploding();
    let opts = EGraphOptions {
        time_limit: Duration::ZERO,
        fast_math: true,
        ..generous()
    };
    let r = simplify(&mut f, &opts);
    assert_eq!(r.saturation.stop, StopReason::TimeLimit);
    assert_eq!(r.saturation.iterations, 0);

    let limit = Duration::from_millis(30);
    let mut f = exploding();
    let opts = EGraphOptions {
        time_limit: limit,
        fast_math: true,
        ..generous()
    };
    let start = Instant::now();
    let r = simplify(&mut f, &opts);
    let spent = start.elapsed();
    assert_eq!(r.saturation.stop, StopReason::TimeLimit);
    assert!(
        spent < limit + Duration::from_millis(250),
        "took {spent:?} for a limit of {limit:?}"
    );
}

// ---- extraction ----

#[test]
fn a_shared_expensive_subterm_is_computed_once() {
    let params = "a:f64[32,32] b:f64[32,32]";
    let mut f = parse_function(
        params,
        &[
            "(exp (dot:1:0:: a b))",
            "(tanh (neg (neg (dot:1:0:: a b))))",
            "(transpose:1,0 (transpose:1,0 (dot:1:0:: a b)))",
        ],
    )
    .unwrap();
    assert_eq!(count(&f, "dot_general"), 1);
    simplify(&mut f, &generous());
    verify(&f).unwrap();
    assert_eq!(count(&f, "dot_general"), 1, "{f:?}");
    let want = parse_function(
        params,
        &[
            "(exp (dot:1:0:: a b))",
            "(tanh (dot:1:0:: a b))",
            "(dot:1:0:: a b)",
        ],
    )
    .unwrap();
    assert_eq!(f, want);
}

/// A deliberately wrong rule, `exp(dot(a, b)) == exp(neg(a))`: cheaper as a tree, but the
/// dot stays needed by another use, so the extracted function costs more than the input.
fn exp_of_dot_is_exp_of_neg(eg: &TGraph, _: egg::Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op != TOp::Unary(UnaryOp::Exp) {
        return;
    }
    for m in eg[n.children[0]]
        .nodes
        .iter()
        .filter(|m| matches!(m.op, TOp::Dot { .. }))
    {
        let neg = Rhs::Node(TOp::Unary(UnaryOp::Neg), vec![Rhs::Class(m.children[0])]);
        out.push(Rhs::Node(TOp::Unary(UnaryOp::Exp), vec![neg]));
    }
}

#[test]
fn the_pass_never_returns_a_more_expensive_function() {
    let mut f = parse_function(
        "a:f64[32,32] b:f64[32,32]",
        &["(exp (dot:1:0:: a b))", "(tanh (dot:1:0:: a b))"],
    )
    .unwrap();
    let before = f.clone();
    let rule = Rule {
        name: "bogus",
        identity: "exp(dot(a, b)) == exp(neg(a))",
        apply: exp_of_dot_is_exp_of_neg,
    };
    let r = simplify_with(&mut f, &[rule], &generous());
    assert_eq!(r.saturation.rewrites(), 1);
    assert!(r.score_after > r.score_before, "{r:?}");
    assert!(r.kept_input);
    assert_eq!(f, before);
}

/// A deliberately wrong rule making `x + x` equal to the result of the opaque op, so the
/// cheapest form of a value needed *before* that op depends on its result.
fn add_self_is_opaque_result(eg: &TGraph, _: egg::Id, n: &TNode, out: &mut Vec<Rhs>) {
    if n.op == TOp::Binary(tenferro_ir::BinaryOp::Add) && n.children[0] == n.children[1] {
        for c in eg.classes() {
            if c.nodes.iter().any(|m| m.op == TOp::Leaf(2)) {
                out.push(Rhs::Class(c.id));
            }
        }
    }
}

#[test]
fn values_needed_before_an_opaque_op_do_not_use_its_results() {
    // %0 = x, %1 = x + x, %2 = opaque(%1), out = %2 * %1.
    let mut f = parse_function("x:f64[3]", &["(mul (opaque:f64[3] (add x x)) (add x x))"]).unwrap();
    assert_eq!(f.insts()[1].results[0].index(), 2);
    let rule = Rule {
        name: "bogus",
        identity: "x + x == opaque result",
        apply: add_self_is_opaque_result,
    };
    simplify_with(&mut f, &[rule], &generous());
    verify(&f).unwrap();
    let names: Vec<&str> = f.insts().iter().map(|i| i.op.name()).collect();
    assert_eq!(names, ["add", "test.opaque", "mul"]);
    // `x + x`, computed before the opaque op, is reused after it.
    let sum = f.insts()[0].results[0];
    assert_eq!(f.insts()[2].args, [f.insts()[1].args[0], sum]);
}

#[test]
fn rewrites_cross_opaque_ops() {
    let mut f = parse_function("x:f64[3]", &["(neg (neg (opaque:f64[3] (neg (neg x)))))"]).unwrap();
    simplify(&mut f, &generous());
    assert_eq!(
        f,
        parse_function("x:f64[3]", &["(opaque:f64[3] x)"]).unwrap()
    );
}

// ---- pipeline ----

#[test]
fn o2_runs_the_egraph_pass_after_cse() {
    let p = Pipeline::for_level(OptLevel::O2);
    let names: Vec<&str> = p.passes.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        ["verify", "dce", "cse", "egraph", "hdot", "fold", "dce", "reorder"]
    );
    assert_eq!(
        PassSpec::from_name("egraph").unwrap(),
        PassSpec::EGraph(EGraphOptions::default())
    );
    assert!(!Pipeline::for_level(OptLevel::O1)
        .passes
        .iter()
        .any(|s| s.name() == "egraph"));

    let mut f = parse_function(
        "x:f64[2,3]",
        &["(transpose:1,0 (neg (neg (transpose:1,0 x))))"],
    )
    .unwrap();
    let records = p.run(&mut f, &mut |_| {}).unwrap();
    assert_eq!(f, parse_function("x:f64[2,3]", &["x"]).unwrap());
    let eg = records.iter().find(|r| r.pass == "egraph").unwrap();
    assert!(eg.stats.changed);
    assert_eq!((eg.insts_before, eg.insts_after), (4, 0));
}

// ---- cost model ----

#[test]
fn cost_of_dot_general_counts_batch_and_contraction() {
    let l = TensorType::new(DType::F64, [5, 2, 3]);
    let r = TensorType::new(DType::F64, [5, 3, 4]);
    let out = TensorType::new(DType::F64, [5, 2, 4]);
    let d = DotDims {
        lhs_contract: vec![2],
        rhs_contract: vec![1],
        lhs_batch: vec![0],
        rhs_batch: vec![0],
    };
    let c = op_cost(&Op::DotGeneral(d), &[&l, &r], &[&out]);
    assert_eq!(c.flops, 2.0 * 5.0 * 2.0 * 4.0 * 3.0);
    assert_eq!(c.bytes, 8.0 * (30.0 + 60.0 + 40.0));
}

#[test]
fn cost_of_elementwise_reshape_and_function() {
    let f = parse_function("x:f32[2,3]", &["(reshape:6 (add x (exp x)))"]).unwrap();
    let e = estimate(&f);
    // exp: 6 flops, 24 + 24 bytes; add: 6 flops, 3 x 24 bytes; reshape: free.
    assert_eq!(e.flops, 12.0);
    assert_eq!(e.bytes, 48.0 + 72.0);
    let t = TensorType::new(DType::F32, [2, 3]);
    let six = TensorType::new(DType::F32, [6]);
    assert_eq!(
        op_cost(&Op::Reshape { shape: vec![6] }, &[&t], &[&six]).bytes,
        0.0
    );
    // A fused elementwise op scores less than a transpose moving the same bytes.
    let tr = Op::Transpose { perm: vec![1, 0] };
    let t32 = TensorType::new(DType::F32, [3, 2]);
    let neg = Op::Unary(UnaryOp::Neg);
    assert!(
        tenferro_passes::cost::op_score(&neg, &[&t], &[&t])
            < tenferro_passes::cost::op_score(&tr, &[&t], &[&t32])
    );
}

// ---- random functions ----

/// Appends identities the default rules remove (`neg∘neg`, `transpose∘transpose`,
/// `x * 1`) on every numeric output, so the rules have work on every random function.
fn with_removable_noise(mut f: Function) -> Function {
    let mut outs = f.outputs().to_vec();
    for o in outs.iter_mut() {
        let ty = f.ty(*o).clone();
        if ty.dtype == DType::Bool {
            continue;
        }
        let mut v = f.push1(Op::Unary(UnaryOp::Neg), &[*o]).unwrap();
        v = f.push1(Op::Unary(UnaryOp::Neg), &[v]).unwrap();
        if ty.rank() >= 2 {
            let perm: Vec<usize> = (0..ty.rank()).rev().collect();
            v = f.push1(Op::Transpose { perm: perm.clone() }, &[v]).unwrap();
            v = f.push1(Op::Transpose { perm }, &[v]).unwrap();
        }
        if ty.dtype.is_real_float() || ty.dtype == DType::I64 {
            let one = f
                .push1(
                    Op::Constant(Tensor::full(&TensorType::scalar(ty.dtype), 1.0)),
                    &[],
                )
                .unwrap();
            let ones = f
                .push1(
                    Op::BroadcastInDim {
                        shape: ty.shape.clone(),
                        dims: vec![],
                    },
                    &[one],
                )
                .unwrap();
            v = f
                .push1(Op::Binary(tenferro_ir::BinaryOp::Mul), &[v, ones])
                .unwrap();
        }
        *o = v;
    }
    f.set_outputs(outs);
    f
}

fn with_inputs(f: Function) -> impl Strategy<Value = (Function, Vec<Tensor>)> {
    let inputs = arb_inputs(&f);
    (Just(f), inputs)
}

/// `|a - b| <= tol * (1 + max |a|)` per output, on elements where `a` is finite (fast
/// math may turn `inf * 0 = NaN` into 0); integers and bools exactly.
fn within_tolerance(a: &Tensor, b: &Tensor) -> bool {
    let tol = match a.dtype() {
        DType::F32 | DType::C32 => 1e-3,
        DType::F64 | DType::C64 => 1e-9,
        DType::I32 | DType::I64 | DType::Bool => return a.bits_eq(b),
    };
    let n = a.numel();
    let scale = 1.0
        + (0..n)
            .map(|i| a.data().get_c64(i).norm())
            .filter(|x| x.is_finite())
            .fold(0.0, f64::max);
    (0..n).all(|i| {
        let (x, y) = (a.data().get_c64(i), b.data().get_c64(i));
        !(x.re.is_finite() && x.im.is_finite()) || (x - y).norm() <= tol * scale
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn default_rules_keep_results_bit_identical(
        (f, inputs) in arb_function(ArbConfig::default()).prop_map(with_removable_noise).prop_flat_map(with_inputs)
    ) {
        let mut g = f.clone();
        let r = simplify(&mut g, &EGraphOptions { node_limit: 5_000, ..generous() });
        prop_assert_eq!(r.saturation.ill_typed, 0);
        verify(&g).unwrap();
        prop_assert!(score(&g) <= score(&f));
        prop_assert_eq!(g.output_types(), f.output_types());
        // The appended noise is always removed.
        if f.output_types().iter().any(|t| t.dtype != DType::Bool) {
            prop_assert!(g.insts().len() < f.insts().len(), "{:?}\nbefore: {:?}\nafter: {:?}", r, f, g);
        }
        let (x, y) = (eval(&f, &inputs).unwrap(), eval(&g, &inputs).unwrap());
        for (a, b) in x.iter().zip(&y) {
            prop_assert!(a.bits_eq(b), "{:?}\nbefore: {:?}\nafter: {:?}\n{:?} vs {:?}", r, f, g, a, b);
        }
    }

    #[test]
    fn fast_math_rules_stay_within_tolerance(
        (f, inputs) in arb_function(ArbConfig::default()).prop_flat_map(with_inputs)
    ) {
        let mut g = f.clone();
        let opts = EGraphOptions { node_limit: 3_000, iter_limit: 6, fast_math: true, ..generous() };
        let r = simplify(&mut g, &opts);
        prop_assert_eq!(r.saturation.ill_typed, 0);
        verify(&g).unwrap();
        prop_assert!(score(&g) <= score(&f));
        let (x, y) = (eval(&f, &inputs).unwrap(), eval(&g, &inputs).unwrap());
        for (a, b) in x.iter().zip(&y) {
            prop_assert!(within_tolerance(a, b), "{:?}\nbefore: {:?}\nafter: {:?}\n{:?} vs {:?}", r, f, g, a, b);
        }
    }
}

#[test]
fn default_rule_names_are_unique() {
    let rules = default_rules();
    let mut names: Vec<&str> = rules.iter().map(|r| r.name).collect();
    names.extend(
        tenferro_passes::egraph::fast_math_rules()
            .iter()
            .map(|r| r.name),
    );
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n);
}
