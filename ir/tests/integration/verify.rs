//! The verifier: one test per invariant, each on a function that breaks exactly it.

use tenferro_ir::{
    parse, parse_and_verify, verify, BinaryOp, DType, Function, Inst, IrError, Op, Tensor,
    TensorType, UnaryOp, Value, ValueData, ValueDef,
};

fn t(d: DType, s: &[usize]) -> TensorType {
    TensorType::new(d, s.to_vec())
}

fn v(i: usize) -> Value {
    Value::from_index(i)
}

fn malformed(f: &Function, needle: &str) {
    match verify(f) {
        Err(IrError::Malformed(m)) => assert!(m.contains(needle), "`{m}` lacks `{needle}`"),
        other => panic!("expected Malformed containing `{needle}`, got {other:?}"),
    }
}

/// `Function::from_parts` refuses to build a function that fails verification.
fn malformed_parts(f: &Result<Function, IrError>, needle: &str) {
    match f {
        Err(IrError::Malformed(m)) => assert!(m.contains(needle), "`{m}` lacks `{needle}`"),
        other => panic!("expected Malformed containing `{needle}`, got {other:?}"),
    }
}

#[test]
fn a_well_formed_function_verifies() {
    let f = parse_and_verify(
        "func @f(%x: f64[2,3], %i: i64[2]) -> (f64[3], f64[2,2]) {
  %s = reduce_sum {axes = [0]} %x : f64[3]
  %g = gather {axis = 1} %x, %i : f64[2,2]
  %q, %r = linalg.qr {mode = \"reduced\"} %x : f64[2,2], f64[2,3]
  return %s, %g
}",
    )
    .unwrap();
    assert_eq!(f.insts().len(), 3);
    assert_eq!(verify(&Function::new("empty")), Ok(()));
}

#[test]
fn undefined_operand() {
    let mut f = Function::new("f");
    let x = f.add_param(t(DType::F64, &[2]));
    f.push_unchecked(
        Op::Binary(BinaryOp::Add),
        vec![x, v(7)],
        vec![t(DType::F64, &[2])],
    );
    assert_eq!(
        verify(&f),
        Err(IrError::UndefinedValue {
            inst: 0,
            op: "add".into(),
            value: 7
        })
    );
}

#[test]
fn operand_used_before_its_definition() {
    let mut f = Function::new("f");
    let x = f.add_param(t(DType::F64, &[2]));
    // %1 = neg %2 ; %2 = neg %0
    let a = f.push_unchecked(
        Op::Unary(UnaryOp::Neg),
        vec![v(2)],
        vec![t(DType::F64, &[2])],
    );
    let b = f.push_unchecked(Op::Unary(UnaryOp::Neg), vec![x], vec![t(DType::F64, &[2])]);
    assert_eq!((a[0], b[0]), (v(1), v(2)));
    f.set_outputs(vec![a[0]]);
    assert_eq!(
        verify(&f),
        Err(IrError::UndefinedValue {
            inst: 0,
            op: "neg".into(),
            value: 2
        })
    );
}

#[test]
fn instruction_using_its_own_result() {
    let mut f = Function::new("f");
    f.add_param(t(DType::F64, &[2]));
    f.push_unchecked(
        Op::Unary(UnaryOp::Neg),
        vec![v(1)],
        vec![t(DType::F64, &[2])],
    );
    assert!(matches!(
        verify(&f),
        Err(IrError::UndefinedValue {
            inst: 0,
            value: 1,
            ..
        })
    ));
}

#[test]
fn recorded_type_differs_from_inferred() {
    let f = parse(
        "func @f(%x: f64[3]) -> (f32[3]) {
  %y = neg %x : f32[3]
  return %y
}",
    )
    .unwrap();
    assert_eq!(
        verify(&f),
        Err(IrError::TypeMismatch {
            inst: 0,
            op: "neg".into(),
            value: 1,
            recorded: "f32[3]".into(),
            inferred: "f64[3]".into()
        })
    );
}

#[test]
fn bad_attributes_and_operand_types_report_the_typing_error() {
    let cases = [
        (
            "%y = transpose {perm = [0, 0]} %x : f64[2,2]",
            "appears twice",
        ),
        ("%y = reduce_sum {axes = [5]} %x : f64[2]", "out of range"),
        ("%y = reshape {shape = [3]} %x : f64[3]", "cannot reshape"),
        (
            "%y = slice {starts = [0, 1], limits = [2, 3]} %x : f64[2,2]",
            "limit 3 <= size 2",
        ),
        ("%y = add %x, %i : f64[2,2]", "must have one type"),
        ("%y = exp %i : i64[2,2]", "must be float or complex"),
        ("%y = gather {axis = 0} %x, %x : f64[2,2,2]", "must be i64"),
    ];
    for (line, needle) in cases {
        let text = format!("func @f(%x: f64[2,2], %i: i64[2,2]) -> () {{\n  {line}\n  return\n}}");
        let f = parse(&text).unwrap();
        match verify(&f) {
            Err(IrError::InvalidOp { message, .. }) => {
                assert!(message.contains(needle), "`{message}` lacks `{needle}`");
                assert!(message.contains("(instruction 0)"), "{message}");
            }
            other => panic!("{line}: expected InvalidOp, got {other:?}"),
        }
    }
    let f = parse(
        "func @f(%x: f64[2]) -> () {
  %y = add %x : f64[2]
  return
}",
    )
    .unwrap();
    assert!(matches!(verify(&f), Err(IrError::Arity { got: 1, .. })));
}

#[test]
fn extension_result_count_disagrees_with_its_declaration() {
    let f = parse(
        "func @f(%x: f64[2]) -> (f64[2]) {
  %y = my.op <f64[2], f64[]> %x : f64[2]
  return %y
}",
    )
    .unwrap();
    malformed(&f, "produces 2 result(s) but the instruction defines 1");
}

#[test]
fn extension_result_types_disagree_with_its_declaration() {
    let f = parse(
        "func @f(%x: f64[2]) -> (f64[2], c64[]) {
  %y, %z = my.op <f64[2], f64[]> %x : f64[2], c64[]
  return %y, %z
}",
    )
    .unwrap();
    assert_eq!(
        verify(&f),
        Err(IrError::TypeMismatch {
            inst: 0,
            op: "my.op".into(),
            value: 2,
            recorded: "c64[]".into(),
            inferred: "f64[]".into()
        })
    );
}

#[test]
fn core_op_with_two_results() {
    let f = parse(
        "func @f(%x: f64[2]) -> (f64[2]) {
  %y, %z = neg %x : f64[2], f64[2]
  return %y
}",
    )
    .unwrap();
    malformed(&f, "produces 1 result(s) but the instruction defines 2");
}

#[test]
fn undefined_output() {
    let mut f = Function::new("f");
    let x = f.add_param(t(DType::F64, &[2]));
    f.set_outputs(vec![x, v(9)]);
    malformed(&f, "output 1 is %9, which is not defined");
}

fn data(ty: TensorType, def: ValueDef) -> ValueData {
    ValueData { ty, def }
}

#[test]
fn parameter_whose_definition_is_inconsistent() {
    let f64_2 = t(DType::F64, &[2]);
    // Parameter 0 is %0, but %0 says it is parameter 1.
    let f = Function::from_parts(
        "f",
        vec![data(f64_2.clone(), ValueDef::Param(1))],
        vec![v(0)],
        vec![],
        vec![v(0)],
    );
    malformed_parts(
        &f,
        "parameter 0 is %0, whose definition is recorded as Param(1)",
    );
    // A parameter outside the arena.
    let f = Function::from_parts("f", vec![], vec![v(3)], vec![], vec![]);
    malformed_parts(&f, "outside the arena");
    // The same value listed as two parameters.
    let f = Function::from_parts(
        "f",
        vec![data(f64_2, ValueDef::Param(0))],
        vec![v(0), v(0)],
        vec![],
        vec![],
    );
    malformed_parts(
        &f,
        "parameter 1 is %0, whose definition is recorded as Param(0)",
    );
}

#[test]
fn instruction_result_whose_definition_is_inconsistent() {
    let f64_2 = t(DType::F64, &[2]);
    let neg = |arg: usize, res: usize| Inst {
        op: Op::Unary(UnaryOp::Neg),
        args: vec![v(arg)],
        results: vec![v(res)],
    };
    // %1 claims to be defined by instruction 1, but instruction 0 lists it.
    let f = Function::from_parts(
        "f",
        vec![
            data(f64_2.clone(), ValueDef::Param(0)),
            data(f64_2.clone(), ValueDef::Inst { inst: 1, result: 0 }),
        ],
        vec![v(0)],
        vec![neg(0, 1)],
        vec![v(1)],
    );
    malformed_parts(&f, "result 0 is %1, whose definition is recorded as Inst");
    // An instruction redefining a parameter.
    let f = Function::from_parts(
        "f",
        vec![data(f64_2.clone(), ValueDef::Param(0))],
        vec![v(0)],
        vec![neg(0, 0)],
        vec![v(0)],
    );
    malformed_parts(&f, "whose definition is recorded as Param(0)");
    // Two instructions defining one value.
    let f = Function::from_parts(
        "f",
        vec![
            data(f64_2.clone(), ValueDef::Param(0)),
            data(f64_2.clone(), ValueDef::Inst { inst: 0, result: 0 }),
        ],
        vec![v(0)],
        vec![neg(0, 1), neg(0, 1)],
        vec![v(1)],
    );
    malformed_parts(
        &f,
        "result 0 is %1, whose definition is recorded as Inst { inst: 0",
    );
    // A result outside the arena.
    let f = Function::from_parts(
        "f",
        vec![data(f64_2.clone(), ValueDef::Param(0))],
        vec![v(0)],
        vec![neg(0, 4)],
        vec![],
    );
    malformed_parts(&f, "result 0 is %4, outside the arena");
}

#[test]
fn value_defined_by_nothing() {
    let f64_2 = t(DType::F64, &[2]);
    let f = Function::from_parts(
        "f",
        vec![
            data(f64_2.clone(), ValueDef::Param(0)),
            data(f64_2, ValueDef::Inst { inst: 3, result: 0 }),
        ],
        vec![v(0)],
        vec![],
        vec![v(0)],
    );
    malformed_parts(
        &f,
        "%1 is in the arena but no parameter or instruction defines it",
    );
}

#[test]
fn constants_and_iotas_are_checked_against_their_recorded_types() {
    let mut f = Function::new("f");
    f.push_unchecked(
        Op::Constant(Tensor::scalar(1.0f32)),
        vec![],
        vec![t(DType::F64, &[])],
    );
    assert!(matches!(
        verify(&f),
        Err(IrError::TypeMismatch { value: 0, .. })
    ));
    let f = parse(
        "func @f() -> (f64[3]) {
  %y = iota {dim = 0, type = f64[2]} : f64[3]
  return %y
}",
    )
    .unwrap();
    assert!(matches!(verify(&f), Err(IrError::TypeMismatch { .. })));
    let f = parse(
        "func @f() -> (f64[3]) {
  %y = iota {dim = 1} : f64[3]
  return %y
}",
    )
    .unwrap();
    assert!(matches!(verify(&f), Err(IrError::InvalidOp { .. })));
}

#[test]
fn a_parameter_whose_element_count_overflows_is_rejected() {
    let mut f = Function::new("f");
    let p = f.add_param(t(DType::I64, &[4, 1 << 62, 3, 3]));
    f.set_outputs(vec![p]);
    malformed(&f, "i64[4,4611686018427387904,3,3]");
    let e = parse("func @f(%0: i64[4,4611686018427387904,3,3]) -> () {\n  return\n}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("i64[4,4611686018427387904,3,3]"), "{e}");
}

#[test]
fn shape_rules_reject_overflow_instead_of_wrapping() {
    use tenferro_ir::infer_types;
    let x = t(DType::F32, &[(1 << 59) - 1]);
    let args = vec![&x; 33];
    let e = infer_types(&Op::Concatenate { axis: 0 }, &args).unwrap_err();
    assert!(
        e.to_string().contains("concatenate") && e.to_string().contains("overflow"),
        "{e}"
    );
    let x = t(DType::F64, &[0, 1 << 62]);
    let s = t(DType::F64, &[]);
    let pad = Op::Pad {
        low: vec![0, i64::MAX as usize],
        high: vec![0, i64::MAX as usize],
    };
    let e = infer_types(&pad, &[&x, &s]).unwrap_err();
    assert!(
        e.to_string().contains("pad") && e.to_string().contains("overflow"),
        "{e}"
    );
}

#[test]
fn tensor_constructors_report_overflow_and_failed_allocation() {
    let e = Tensor::try_zeros(&t(DType::F64, &[1 << 32, 1 << 32])).unwrap_err();
    assert!(matches!(e, IrError::ShapeOverflow { .. }), "{e:?}");
    let e = Tensor::try_full(&t(DType::F64, &[1 << 40]), 2.0).unwrap_err();
    assert_eq!(
        e,
        IrError::AllocationFailed {
            op: "full".into(),
            bytes: 1 << 43
        }
    );
    assert_eq!(t(DType::F64, &[1 << 32, 1 << 32]).numel(), usize::MAX);
    assert_eq!(t(DType::F64, &[1 << 32, 1 << 32]).checked_numel(), None);
}
