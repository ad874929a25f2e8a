//! The text form: golden printing, `parse(print(f)) == f` for every op, attribute and
//! dtype (bit-exact floats), parse errors, and round trips of random functions.

use num_complex::{Complex32, Complex64};
use tenferro_ir::{
    parse, parse_and_verify, print, verify, Attr, BinaryOp, CmpOp, DType, Data, DotDims,
    ExtensionOp, Function, IrError, Op, ReduceOp, Tensor, TensorType, UnaryOp,
};

fn t(d: DType, s: &[usize]) -> TensorType {
    TensorType::new(d, s.to_vec())
}

/// Asserts that `f` survives print → parse, that printing is a fixed point, and that the
/// constants are bit-identical (Function's PartialEq compares constants by bits).
fn round_trip(f: &Function) -> Function {
    let text = print(f);
    let g = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        &g,
        f,
        "round trip changed the function:\n{text}\n{}",
        print(&g)
    );
    assert_eq!(print(&g), text);
    g
}

fn parse_err(text: &str) -> (usize, String) {
    match parse(text) {
        Err(IrError::Parse { line, message }) => (line, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn golden_text() {
    let mut f = Function::new("main");
    let x = f.add_param(t(DType::F64, &[3]));
    let _y = f.add_param(t(DType::F64, &[]));
    let sq = f.push1(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
    let s = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0],
            },
            &[sq],
        )
        .unwrap();
    let c = Tensor::from_vec_col_major(vec![2], vec![1.0f64, 2.5]).unwrap();
    f.push1(Op::Constant(c), &[]).unwrap();
    f.push1(Op::Compare(CmpOp::Lt), &[sq, sq]).unwrap();
    let ext = ExtensionOp::new("linalg.qr", vec![t(DType::F64, &[3]), t(DType::F64, &[])])
        .with_attr("mode", Attr::Str("reduced".into()));
    f.push(Op::Extension(ext), &[x]).unwrap();
    f.set_outputs(vec![s]);
    let want = "\
func @main(%0: f64[3], %1: f64[]) -> (f64[]) {
  %2 = mul %0, %0 : f64[3]
  %3 = reduce_sum {axes = [0]} %2 : f64[]
  %4 = constant f64[2] [1.0, 2.5]
  %5 = compare {dir = lt} %2, %2 : bool[3]
  %6, %7 = linalg.qr {mode = \"reduced\"} %0 : f64[3], f64[]
  return %3
}
";
    assert_eq!(print(&f), want);
    round_trip(&f);
}

/// A function using every core op (and every unary, binary, comparison and reduction kind).
fn every_op() -> Function {
    let mut f = Function::new("every_op");
    let x = f.add_param(t(DType::F64, &[2, 3]));
    let z = f.add_param(t(DType::C64, &[2, 3]));
    let i = f.add_param(t(DType::I64, &[4]));
    let mut outs = vec![];
    for u in UnaryOp::ALL {
        for v in [x, z, i] {
            if u.accepts(f.ty(v).dtype) {
                outs.push(f.push1(Op::Unary(u), &[v]).unwrap());
            }
        }
    }
    for b in BinaryOp::ALL {
        // integer-only ops (bitwise, shifts) on the i64 operand
        let v = if b.accepts(DType::F64) { x } else { i };
        outs.push(f.push1(Op::Binary(b), &[v, v]).unwrap());
    }
    outs.push(f.push1(Op::Binary(BinaryOp::Div), &[i, i]).unwrap());
    let mut pred = None;
    for c in CmpOp::ALL {
        pred = Some(f.push1(Op::Compare(c), &[x, x]).unwrap());
    }
    let pred = pred.unwrap();
    outs.push(f.push1(Op::Select, &[pred, x, x]).unwrap());
    for kind in ReduceOp::ALL {
        outs.push(
            f.push1(
                Op::Reduce {
                    kind,
                    axes: vec![0, 1],
                },
                &[x],
            )
            .unwrap(),
        );
    }
    let xt = f.push1(Op::Transpose { perm: vec![1, 0] }, &[x]).unwrap();
    outs.push(
        f.push1(Op::DotGeneral(DotDims::matmul()), &[x, xt])
            .unwrap(),
    );
    let batched = DotDims {
        lhs_contract: vec![0],
        rhs_contract: vec![0],
        lhs_batch: vec![1],
        rhs_batch: vec![1],
    };
    outs.push(f.push1(Op::DotGeneral(batched), &[z, z]).unwrap());
    outs.push(
        f.push1(
            Op::Reshape {
                shape: vec![3, 1, 2],
            },
            &[x],
        )
        .unwrap(),
    );
    outs.push(
        f.push1(
            Op::BroadcastInDim {
                shape: vec![2, 4, 3],
                dims: vec![0, 2],
            },
            &[x],
        )
        .unwrap(),
    );
    let sl = f
        .push1(
            Op::Slice {
                starts: vec![1, 0],
                limits: vec![2, 2],
            },
            &[x],
        )
        .unwrap();
    outs.push(sl);
    let zero = f.push1(Op::Constant(Tensor::scalar(0.0f64)), &[]).unwrap();
    outs.push(
        f.push1(
            Op::Pad {
                low: vec![1, 0],
                high: vec![0, 2],
            },
            &[x, zero],
        )
        .unwrap(),
    );
    let top = f
        .push1(
            Op::Slice {
                starts: vec![0, 0],
                limits: vec![1, 3],
            },
            &[x],
        )
        .unwrap();
    outs.push(f.push1(Op::Concatenate { axis: 0 }, &[x, top, x]).unwrap());
    let idx = f
        .push1(
            Op::Constant(Tensor::from_vec_col_major(vec![2], vec![2i64, 0]).unwrap()),
            &[],
        )
        .unwrap();
    let g = f.push1(Op::Gather { axis: 1 }, &[x, idx]).unwrap();
    outs.push(f.push1(Op::ScatterAdd { axis: 1 }, &[x, idx, g]).unwrap());
    for to in DType::ALL {
        outs.push(f.push1(Op::Convert { to }, &[x]).unwrap());
    }
    outs.push(
        f.push1(
            Op::Iota {
                ty: t(DType::I64, &[2, 3]),
                dim: 1,
            },
            &[],
        )
        .unwrap(),
    );
    f.set_outputs(outs);
    f
}

#[test]
fn every_op_round_trips() {
    let f = every_op();
    verify(&f).unwrap();
    let text = print(&f);
    for needle in [
        "dot_general {lhs_batch = [1], rhs_batch = [1], lhs_contract = [0], rhs_contract = [0]}",
        "broadcast_in_dim {shape = [2, 4, 3], dims = [0, 2]}",
        "slice {starts = [1, 0], limits = [2, 2]}",
        "pad {low = [1, 0], high = [0, 2]}",
        "scatter_add {axis = 1}",
        "convert {to = c32}",
        "concatenate {axis = 0}",
        "gather {axis = 1}",
        "reduce_prod {axes = [0, 1]}",
        "compare {dir = ge}",
        "= rsqrt %1 : c64[2,3]",
        "= abs %1 : f64[2,3]",
        "= maximum %0, %0 : f64[2,3]",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    assert!(text.contains("= iota {dim = 1} : i64[2,3]"), "{text}");
    round_trip(&f);
}

fn constant_fn(c: Tensor) -> Function {
    let mut f = Function::new("c");
    let v = f.push1(Op::Constant(c), &[]).unwrap();
    f.set_outputs(vec![v]);
    f
}

#[test]
fn constants_of_every_dtype_round_trip_bit_exactly() {
    let f64s = vec![
        0.0,
        -0.0,
        1.0,
        -2.5,
        0.1,
        1e300,
        -1e-300,
        5e-324,                                // smallest subnormal
        f64::from_bits(0x000f_ffff_ffff_ffff), // largest subnormal
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN with payload 1
        f64::from_bits(0xfff8_dead_beef_0000),
        std::f64::consts::PI,
    ];
    let f32s: Vec<f32> = vec![
        0.0,
        -0.0,
        0.1,
        1e-45, // smallest subnormal
        f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffc0_1234),
        16777217.0,
    ];
    let n64 = f64s.len();
    let n32 = f32s.len();
    let c64s: Vec<Complex64> = f64s
        .iter()
        .zip(f64s.iter().rev())
        .map(|(&a, &b)| Complex64::new(a, b))
        .collect();
    let c32s: Vec<Complex32> = f32s
        .iter()
        .zip(f32s.iter().rev())
        .map(|(&a, &b)| Complex32::new(a, b))
        .collect();
    let tensors = [
        Tensor::from_vec_col_major(vec![n64], f64s.clone()).unwrap(),
        Tensor::from_vec_col_major(vec![n32], f32s.clone()).unwrap(),
        Tensor::from_vec_col_major(vec![n64], c64s).unwrap(),
        Tensor::from_vec_col_major(vec![n32], c32s).unwrap(),
        Tensor::from_vec_col_major(vec![2, 2], vec![i64::MIN, -1, 0, i64::MAX]).unwrap(),
        Tensor::from_vec_col_major(vec![3], vec![i32::MIN, -1, i32::MAX]).unwrap(),
        Tensor::from_vec_col_major(vec![1, 3], vec![true, false, true]).unwrap(),
        Tensor::scalar(-0.0f64),
        Tensor::from_vec_col_major(vec![0, 2], Vec::<f64>::new()).unwrap(),
    ];
    for c in tensors {
        let f = constant_fn(c.clone());
        let g = round_trip(&f);
        match &g.insts()[0].op {
            Op::Constant(back) => assert!(back.bits_eq(&c), "{}", print(&f)),
            op => panic!("expected a constant, got {op:?}"),
        }
    }
    // The printed forms are the readable ones.
    let text = print(&constant_fn(Tensor::scalar(-0.0f64)));
    assert!(text.contains("constant f64[] [-0.0]"), "{text}");
    let text = print(&constant_fn(Tensor::scalar(f64::NAN)));
    assert!(text.contains("[nan(0x7ff8000000000000)]"), "{text}");
    let text = print(&constant_fn(Tensor::scalar(Complex32::new(1.5, -0.0))));
    assert!(text.contains("constant c32[] [(1.5, -0.0)]"), "{text}");
}

#[test]
fn large_constant_prints_in_full_and_round_trips() {
    let n = 200_000;
    let data: Vec<f64> = (0..n).map(|i| i as f64 * 0.37 - 5.0).collect();
    let f = constant_fn(Tensor::from_vec_col_major(vec![n], data).unwrap());
    let text = print(&f);
    assert!(text.contains(&format!("{:?}", (n - 1) as f64 * 0.37 - 5.0)));
    round_trip(&f);
}

#[test]
fn extension_ops_with_every_attribute_kind_round_trip() {
    let mut f = Function::new("ext");
    let x = f.add_param(t(DType::C64, &[3, 3]));
    let ext = ExtensionOp::new(
        "linalg.svd",
        vec![
            t(DType::C64, &[3, 3]),
            t(DType::F64, &[3]),
            t(DType::C64, &[3, 3]),
        ],
    )
    .with_attr("full", Attr::Bool(true))
    .with_attr("k", Attr::Int(-7))
    .with_attr("axes", Attr::Ints(vec![0, -1, 5]))
    .with_attr("empty", Attr::Ints(vec![]))
    .with_attr("eps", Attr::FloatBits(1e-12f64.to_bits()))
    .with_attr("whole", Attr::FloatBits(1e16f64.to_bits()))
    .with_attr("one", Attr::FloatBits(1.0f64.to_bits()))
    .with_attr("neg_zero", Attr::FloatBits((-0.0f64).to_bits()))
    .with_attr("inf", Attr::FloatBits(f64::NEG_INFINITY.to_bits()))
    .with_attr("nan", Attr::FloatBits(0x7ff4_0000_0000_0042))
    .with_attr("name", Attr::Str("quote \" back\\slash\nnewline\tτ".into()))
    .with_attr("odd key!", Attr::Str(String::new()));
    let r = f.push(Op::Extension(ext), &[x]).unwrap();
    // An extension op without results, and one with a name that is not a dotted identifier.
    f.push(Op::Extension(ExtensionOp::new("io.print", vec![])), &[r[1]])
        .unwrap();
    let odd = ExtensionOp::new("weird name", vec![t(DType::Bool, &[])]);
    let w = f.push(Op::Extension(odd), &[]).unwrap();
    f.set_outputs(vec![r[0], w[0], r[1]]);
    verify(&f).unwrap();
    let text = print(&f);
    assert!(text.contains("  io.print %"), "{text}");
    assert!(text.contains("= ext \"weird name\" : bool[]"), "{text}");
    assert!(text.contains("one = 1.0"), "{text}");
    assert!(text.contains("k = -7"), "{text}");
    round_trip(&f);
}

#[test]
fn declared_extension_results_that_differ_are_printed() {
    // Broken IR: the op declares two results but the instruction records one.
    let text = "func @f(%x: f64[2]) -> (f64[2]) {
  %y = my.op <f64[2], f64[]> %x : f64[2]
  return %y
}";
    let f = parse(text).unwrap();
    match &f.insts()[0].op {
        Op::Extension(e) => assert_eq!(e.results.len(), 2),
        op => panic!("{op:?}"),
    }
    assert!(print(&f).contains("my.op <f64[2], f64[]> %0 : f64[2]"));
    round_trip(&f);
    assert!(verify(&f).is_err());
}

#[test]
fn odd_function_names_and_empty_signatures_round_trip() {
    for name in ["", "with space", "q\"uote", "ünï", "a.b_c9"] {
        let mut f = Function::new(name);
        let c = f.push1(Op::Constant(Tensor::scalar(1i64)), &[]).unwrap();
        f.set_outputs(vec![c]);
        round_trip(&f);
        round_trip(&Function::new(name));
    }
}

#[test]
fn hand_written_text_with_names_comments_and_inferred_types() {
    let text = "
// a comment
func @loss(%x: f64[2,3], %w: f64[3]) -> (f64[], f64[2]) {
  %y.1 = dot_general {lhs_contract = [1], rhs_contract = [0]} %x, %w   // f64[2]
  %sq = mul %y.1, %y.1
  %c = constant f64[] [0.5]
  %half = broadcast_in_dim {shape = [2], dims = []} %c
  %h = mul %sq, %half : f64[2]
  %s = reduce_sum {axes = [0]} %h
  %i = iota {dim = 0, type = i64[2]}
  return %s, %h
}
";
    let f = parse_and_verify(text).unwrap();
    assert_eq!(f.name, "loss");
    assert_eq!(f.insts().len(), 7);
    assert_eq!(
        f.output_types(),
        vec![t(DType::F64, &[]), t(DType::F64, &[2])]
    );
    assert_eq!(f.ty(f.insts()[0].result()), &t(DType::F64, &[2]));
    // Renumbered in definition order.
    let printed = print(&f);
    assert!(printed.contains("%3 = mul %2, %2 : f64[2]"), "{printed}");
    assert!(
        printed.contains("%8 = iota {dim = 0} : i64[2]"),
        "{printed}"
    );
    round_trip(&f);
}

#[test]
fn parser_does_not_check_types() {
    // Wrong recorded type, wrong operand types: syntax is fine, the verifier complains.
    let text = "func @f(%a: f64[2], %b: f32[3]) -> (i64[7]) {
  %c = add %a, %b : i64[7]
  return %c
}";
    let f = parse(text).unwrap();
    assert!(verify(&f).is_err());
    assert!(parse_and_verify(text).is_err());
    round_trip(&f);
}

#[test]
fn parse_errors_name_the_problem_and_the_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = frobnicate %a : f64[2]\n  return %b\n}",
            2,
            "unknown op `frobnicate`",
        ),
        (
            "func @f(%a: f65[2]) -> (f64[2]) {\n  return %a\n}",
            1,
            "unknown dtype `f65`",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = neg %a : f64[2]\n  %c = add %b, %zz : f64[2]\n  return %c\n}",
            3,
            "undefined value %zz",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = neg %c : f64[2]\n  %c = neg %a : f64[2]\n  return %b\n}",
            2,
            "undefined value %c",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %a = neg %a : f64[2]\n  return %a\n}",
            2,
            "%a is defined twice",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = transpose {perm = [0], bogus = 1} %a : f64[2]\n  return %b\n}",
            2,
            "unknown attribute `bogus`",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = transpose %a : f64[2]\n  return %b\n}",
            2,
            "missing attribute `perm`",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = transpose {perm = 0} %a : f64[2]\n  return %b\n}",
            2,
            "expected an integer list",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = slice {starts = [-1], limits = [1]} %a : f64[1]\n  return %b\n}",
            2,
            "non-negative",
        ),
        (
            "func @f(%a: f64[2]) -> (bool[2]) {\n  %b = compare {dir = sideways} %a, %a : bool[2]\n  return %b\n}",
            2,
            "unknown comparison direction `sideways`",
        ),
        (
            "func @f() -> (f64[2]) {\n  %b = constant f64[2] [1.0, 2.0, 3.0]\n  return %b\n}",
            2,
            "needs 2 element(s), got 3",
        ),
        (
            "func @f() -> (f64[1]) {\n  %b = constant f64[1] [1.0x]\n  return %b\n}",
            2,
            "bad f64 literal `1.0x`",
        ),
        (
            "func @f() -> (f64[]) {\n  %b = constant f64[] [nan(0x3ff0000000000000)]\n  return %b\n}",
            2,
            "not a NaN bit pattern",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[3]) {\n  %b = neg %a : f64[2]\n  return %b\n}",
            3,
            "signature declares f64[3]",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = neg %a : f64[2]\n}",
            3,
            "expected an instruction or `return`",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b, %c = neg %a : f64[2]\n  return %b\n}",
            2,
            "2 result name(s) but 1 result type(s)",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = add %a : f64[2]\n  return %b\n}",
            2,
            "", // arity is a type error, so the parser accepts it (checked below)
        ),
        (
            "func @f(%a: f64[2], %b: f32[2]) -> (f64[2]) {\n  %c = add %a, %b\n  return %c\n}",
            2,
            "cannot infer the result types",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = my.op %a\n  return %b\n}",
            2,
            "needs its result types",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = neg <f64[2]> %a : f64[2]\n  return %b\n}",
            2,
            "only extension ops declare result types",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  %b = my.op {t = f64[2]} %a : f64[2]\n  return %b\n}",
            2,
            "extension attributes are",
        ),
        (
            "func @f(%a: f64[2]) -> (f64[2]) {\n  return %a\n}\n}",
            4,
            "unexpected `}` after the function",
        ),
        ("func @f(%a: f64[2]) -> (f64[2]) {\n  %b = neg \"oops", 2, "unterminated string"),
        ("fun @f() -> () {\n return\n}", 1, "expected `func`"),
        ("func @f() -> () {\n  %b = iota {dim = 0}\n return\n}", 2, "needs its type"),
    ];
    for &(text, line, needle) in cases {
        if needle.is_empty() {
            assert!(parse(text).is_ok());
            assert!(matches!(parse_and_verify(text), Err(IrError::Arity { .. })));
            continue;
        }
        let (l, m) = parse_err(text);
        assert!(
            m.contains(needle),
            "message `{m}` lacks `{needle}` for\n{text}"
        );
        assert_eq!(l, line, "wrong line for `{m}` in\n{text}");
    }
}

#[test]
fn data_with_wrong_dtype_is_not_confused() {
    // i64 and bool elements are checked against the constant's dtype.
    let (_, m) = parse_err("func @f() -> (i64[1]) {\n %b = constant i64[1] [1.5]\n return %b\n}");
    assert!(m.contains("bad i64 literal"), "{m}");
    // an i32 element outside the i32 range is an error naming the literal
    let (_, m) =
        parse_err("func @f() -> (i32[1]) {\n %b = constant i32[1] [2147483648]\n return %b\n}");
    assert!(m.contains("bad i32 literal `2147483648`"), "{m}");
    let (_, m) = parse_err("func @f() -> (bool[1]) {\n %b = constant bool[1] [1]\n return %b\n}");
    assert!(m.contains("bad bool literal"), "{m}");
    // Data::zeros is the empty buffer the parser fills; an empty f64 constant is fine.
    assert_eq!(Data::zeros(DType::F64, 0).len(), 0);
}

#[cfg(feature = "arbitrary")]
mod random {
    use super::*;
    use proptest::prelude::*;
    use tenferro_ir::arbitrary::{arb_function, arb_inputs, ArbConfig};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn random_functions_are_well_typed_and_round_trip(f in arb_function(ArbConfig::default())) {
            prop_assert!(verify(&f).is_ok(), "{}", print(&f));
            let g = parse(&print(&f)).map_err(|e| TestCaseError::fail(format!("{e}\n{}", print(&f))))?;
            prop_assert!(g == f, "{}\n{}", print(&f), print(&g));
        }

        #[test]
        fn random_functions_over_all_dtypes_round_trip(
            f in arb_function(ArbConfig::with_dtypes(&DType::ALL))
        ) {
            prop_assert!(verify(&f).is_ok(), "{}", print(&f));
            prop_assert!(parse(&print(&f)).unwrap() == f);
        }

        #[test]
        fn value_safe_functions_use_only_value_safe_ops(
            (f, inputs) in arb_function(ArbConfig::value_safe())
                .prop_flat_map(|f| { let i = arb_inputs(&f); (Just(f), i) })
        ) {
            prop_assert!(verify(&f).is_ok());
            for inst in f.insts() {
                let ok = match &inst.op {
                    Op::Unary(u) => {
                        let complex = f.ty(inst.args[0]).dtype.is_complex();
                        // the op table's exact ops (complex abs and sign round the norm)
                        u.is_exact() && !(complex && matches!(u, UnaryOp::Abs | UnaryOp::Sign))
                    }
                    Op::Binary(b) => match b {
                        BinaryOp::Mul => f.ty(inst.args[0]).dtype.is_real_float(),
                        BinaryOp::Div | BinaryOp::Pow | BinaryOp::Atan2 | BinaryOp::Rem => false,
                        _ => true,
                    },
                    Op::Reduce { kind, .. } => matches!(kind, ReduceOp::Max | ReduceOp::Min),
                    Op::DotGeneral(_) | Op::ScatterAdd { .. } | Op::Extension(_) => false,
                    _ => true,
                };
                prop_assert!(ok, "{} is not value-safe in\n{}", inst.op, print(&f));
            }
            prop_assert_eq!(inputs.len(), f.params().len());
            for (x, p) in inputs.iter().zip(f.params()) {
                prop_assert_eq!(&x.ty(), f.ty(*p));
                match x.data() {
                    Data::F64(v) => prop_assert!(v.iter().all(|a| a.is_finite() && a.abs() <= 2.0)),
                    Data::F32(v) => prop_assert!(v.iter().all(|a| a.is_finite() && a.abs() <= 2.0)),
                    Data::C64(v) => prop_assert!(v.iter().all(|a| a.re.abs() <= 2.0 && a.im.abs() <= 2.0)),
                    Data::I64(v) => prop_assert!(v.iter().all(|a| a.abs() <= 5)),
                    _ => {}
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Generated inputs fit the parameters, and the reference evaluator runs every
        /// generated function to outputs of the declared types.
        #[test]
        fn random_functions_evaluate_on_random_inputs(
            (f, inputs) in arb_function(ArbConfig::default())
                .prop_flat_map(|f| { let i = arb_inputs(&f); (Just(f), i) })
        ) {
            let outs = tenferro_ir::eval::eval(&f, &inputs)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{}", print(&f))))?;
            let tys: Vec<TensorType> = outs.iter().map(|o| o.ty()).collect();
            prop_assert_eq!(tys, f.output_types());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Damaged text gives a result or an error, never a panic (and whatever parses
        /// can be verified and printed).
        #[test]
        fn parser_never_panics_on_damaged_text(
            (text, cut, len, ins) in arb_function(ArbConfig::default()).prop_flat_map(|f| {
                let text = print(&f);
                let n = text.chars().count();
                (Just(text), 0..n, 0usize..6, proptest::option::of(any::<char>()))
            })
        ) {
            let chars: Vec<char> = text.chars().collect();
            let mut damaged: String = chars[..cut].iter().collect();
            damaged.extend(ins);
            damaged.extend(&chars[(cut + len).min(chars.len())..]);
            if let Ok(g) = parse(&damaged) {
                let _ = verify(&g);
                let _ = print(&g);
            }
        }

        #[test]
        fn parser_never_panics_on_token_soup(text in "[-%@a-z0-9_.\\[\\](){}<>,:= \n\"]{0,120}") {
            let _ = parse(&text);
            let _ = parse(&format!("func @f(%a: f64[2]) -> (f64[2]) {{\n {text}\n return %a\n}}"));
        }
    }

    /// The generator reaches every op kind it promises (over a fixed set of seeds).
    #[test]
    fn generator_covers_the_op_set() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strat = arb_function(ArbConfig::default());
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let f = strat.new_tree(&mut runner).unwrap().current();
            for inst in f.insts() {
                let name = match &inst.op {
                    Op::Unary(_) => "unary",
                    Op::Binary(_) => "binary",
                    Op::Reduce { .. } => "reduce",
                    op => op.name(),
                };
                seen.insert(name.to_string());
            }
        }
        for want in [
            "unary",
            "binary",
            "compare",
            "select",
            "reduce",
            "dot_general",
            "transpose",
            "reshape",
            "broadcast_in_dim",
            "slice",
            "pad",
            "concatenate",
            "gather",
            "scatter_add",
            "convert",
            "iota",
            "constant",
        ] {
            assert!(seen.contains(want), "never generated {want}; saw {seen:?}");
        }
    }
}

#[test]
fn parameter_names_print_and_round_trip() {
    let mut f = Function::new("main");
    let x = f.add_named_param(t(DType::F64, &[3]), Some("x".into()));
    let y = f.add_param(t(DType::F64, &[3]));
    let odd = f.add_named_param(t(DType::F32, &[]), Some("layer 1.\"w\"\n".into()));
    let s = f.push1(Op::Binary(BinaryOp::Add), &[x, y]).unwrap();
    f.set_outputs(vec![s, odd]);
    let text = print(&f);
    assert!(
        text.starts_with(
            "func @main(%0: f64[3] {name = \"x\"}, %1: f64[3], %2: f32[] {name = \"layer 1.\\\"w\\\"\\n\"})"
        ),
        "{text}"
    );
    let g = round_trip(&f);
    assert_eq!(g.param_name(0), Some("x"));
    assert_eq!(g.param_name(1), None);
    assert_eq!(g.param_name(2), Some("layer 1.\"w\"\n"));
    // Names take part in equality: the same function without them differs.
    let mut bare = Function::new("main");
    let (a, b) = (
        bare.add_param(t(DType::F64, &[3])),
        bare.add_param(t(DType::F64, &[3])),
    );
    let c = bare.add_param(t(DType::F32, &[]));
    let s = bare.push1(Op::Binary(BinaryOp::Add), &[a, b]).unwrap();
    bare.set_outputs(vec![s, c]);
    assert_ne!(bare, f);
    // A parameter's braces hold only a name.
    let (_, m) = parse_err("func @f(%0: f64[] {label = \"x\"}) -> () {\n  return\n}");
    assert!(m.contains("name = "), "{m}");
}

#[test]
fn i32_programs_parse_print_and_round_trip() {
    let text = "
func @f(%a: i32[2], %b: i64[2]) -> (i64[2], i32[2], i32[2]) {
  %w = convert {to = i64} %a
  %s = add %w, %b
  %n = shift_left %a, %a
  %i = iota {dim = 0, type = i32[2]}
  return %s, %n, %i
}
";
    let f = parse_and_verify(text).unwrap();
    assert_eq!(
        f.output_types(),
        vec![
            t(DType::I64, &[2]),
            t(DType::I32, &[2]),
            t(DType::I32, &[2])
        ]
    );
    let printed = print(&f);
    assert!(printed.contains("%0: i32[2]"), "{printed}");
    assert!(printed.contains("convert {to = i64}"), "{printed}");
    round_trip(&f);
    // mixing i32 and i64 operands is a type error naming both (the IR never promotes)
    let bad = "func @g(%a: i32[2], %b: i64[2]) -> (i64[2]) {\n  %s = add %a, %b\n  return %s\n}";
    let e = parse_and_verify(bad).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("i32[2]") && e.contains("i64[2]"),
        "{e}"
    );
}
