//! Pass API tests built with the builder (the IR-in / IR-out cases are in `tests/o1/`):
//! fold size limits, pass names, verify-each mode and the observer.

use tenferro_ir::{
    BinaryOp, DType, ExtensionOp, Function, Op, ReduceOp, Tensor, TensorType, UnaryOp, Value,
};
use tenferro_passes::{PassError, PassStats, Pipeline};

fn f64v(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F64, shape.to_vec())
}

fn cst(f: &mut Function, shape: &[usize], v: &[f64]) -> Value {
    let t = Tensor::from_vec_col_major(shape.to_vec(), v.to_vec()).unwrap();
    f.push1(Op::Constant(t), &[]).unwrap()
}

fn un(f: &mut Function, u: UnaryOp, x: Value) -> Value {
    f.push1(Op::Unary(u), &[x]).unwrap()
}

fn bin(f: &mut Function, b: BinaryOp, x: Value, y: Value) -> Value {
    f.push1(Op::Binary(b), &[x, y]).unwrap()
}

/// Runs the named passes and returns the stats of the last one.
fn run(names: &[&str], f: &mut Function) -> PassStats {
    let records = Pipeline::from_names(names)
        .unwrap()
        .run(f, &mut |_| {})
        .unwrap();
    records.last().unwrap().stats.clone()
}

fn counter(stats: &PassStats, name: &str) -> u64 {
    stats.counters.iter().find(|(k, _)| *k == name).unwrap().1
}

#[test]
fn fold_respects_size_limits_and_extension_ops() {
    let mut f = Function::new("f");
    let small = f
        .push1(
            Op::Iota {
                ty: f64v(&[4]),
                dim: 0,
            },
            &[],
        )
        .unwrap(); // folded
    let big = f
        .push1(
            Op::Iota {
                ty: f64v(&[65]),
                dim: 0,
            },
            &[],
        )
        .unwrap(); // not: iota > 64
    let one = cst(&mut f, &[], &[1.0]);
    let bc = f
        .push1(
            Op::BroadcastInDim {
                shape: vec![65],
                dims: vec![],
            },
            &[one],
        )
        .unwrap(); // not: broadcast > 64
    let big_c = cst(&mut f, &[5000], &vec![1.0; 5000]);
    let neg_big = un(&mut f, UnaryOp::Neg, big_c); // not: > 4096 elements
    let sum_big = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0],
            },
            &[big_c],
        )
        .unwrap(); // folded: the result is small
    let ext = f
        .push(
            Op::Extension(ExtensionOp::new(
                "test.op",
                vec![TensorType::scalar(DType::F64)],
            )),
            &[one],
        )
        .unwrap()[0]; // never folded
    f.set_outputs(vec![small, big, bc, neg_big, sum_big, ext]);

    let stats = run(&["fold"], &mut f);
    assert_eq!(counter(&stats, "folded"), 2);
    let ops: Vec<&str> = f.insts().iter().map(|i| i.op.name()).collect();
    assert_eq!(
        ops,
        [
            "constant",
            "iota",
            "constant",
            "broadcast_in_dim",
            "constant",
            "neg",
            "constant",
            "test.op"
        ]
    );
    let out = tenferro_ir::eval::eval(&f, &[]);
    assert!(out.is_err(), "the extension op cannot be evaluated");
    let folded_sum = &f.insts()[6].op;
    match folded_sum {
        Op::Constant(t) => assert_eq!(t.to_vec::<f64>().unwrap(), [5000.0]),
        other => panic!("expected a constant, got {other:?}"),
    }
}

#[test]
fn unknown_pass_name_is_an_error() {
    let err = Pipeline::from_names(&["dce", "no-such-pass"]).unwrap_err();
    assert_eq!(err, PassError::UnknownPass("no-such-pass".to_string()));
    assert!(err.to_string().contains("no-such-pass"));
}

#[test]
fn observer_sees_every_pass_once_with_its_stats() {
    let mut f = Function::new("f");
    let x = f.add_param(f64v(&[2]));
    let a = un(&mut f, UnaryOp::Exp, x);
    let b = un(&mut f, UnaryOp::Exp, x);
    let _dead = un(&mut f, UnaryOp::Sin, x);
    let c = bin(&mut f, BinaryOp::Add, a, b);
    f.set_outputs(vec![c]);

    let pipeline = Pipeline::from_names(&["dce", "cse", "fold", "dce"]).unwrap();
    let mut seen: Vec<(String, PassStats, usize)> = Vec::new();
    let records = pipeline
        .run(&mut f, &mut |e| {
            seen.push((
                e.pass.to_string(),
                e.stats.clone(),
                e.function.insts().len(),
            ))
        })
        .unwrap();
    assert_eq!(seen.len(), 4);
    for ((name, stats, n), rec) in seen.iter().zip(&records) {
        assert_eq!(*name, rec.pass);
        assert_eq!(*stats, rec.stats);
        assert_eq!(*n, rec.insts_after);
    }
    assert_eq!(counter(&seen[0].1, "removed"), 1);
    assert_eq!(counter(&seen[1].1, "merged"), 1);
    assert_eq!(counter(&seen[2].1, "folded"), 0);
    assert_eq!(counter(&seen[3].1, "removed"), 0); // cse dropped the duplicate itself
    assert_eq!(f.insts().len(), 2);
}

#[test]
fn verify_each_checks_after_every_pass() {
    // neg of an f64 value recorded as f32: ill-typed, and every pass preserves it.
    let mut bad = Function::new("bad");
    let x = bad.add_param(f64v(&[2]));
    let y = bad.push_unchecked(
        Op::Unary(UnaryOp::Neg),
        vec![x],
        vec![TensorType::new(DType::F32, vec![2])],
    );
    bad.set_outputs(y);

    let mut pipeline = Pipeline::from_names(&["cse", "dce"]).unwrap();
    let mut copy = bad.clone();
    assert!(
        pipeline.run(&mut copy, &mut |_| {}).is_ok(),
        "without verify_each nothing checks"
    );

    pipeline.verify_each = true;
    let mut calls = 0;
    let err = pipeline.run(&mut bad, &mut |_| calls += 1).unwrap_err();
    match err {
        PassError::Verify { after, .. } => assert_eq!(after, "cse"),
        other => panic!("expected a verification error, got {other}"),
    }
    assert_eq!(calls, 0, "the observer runs after verification");

    // A well-typed function passes every check.
    let mut good = Function::new("good");
    let x = good.add_param(f64v(&[2]));
    let y = un(&mut good, UnaryOp::Neg, x);
    good.set_outputs(vec![y]);
    assert_eq!(pipeline.run(&mut good, &mut |_| {}).unwrap().len(), 2);
}
