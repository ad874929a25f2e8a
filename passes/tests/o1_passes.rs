//! The O1 passes (dce, cse, fold) on small functions: input function → expected function,
//! plus the pipeline's name parsing, verify-each mode and observer.

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
fn dce_removes_unused_chains_and_keeps_params() {
    let mut f = Function::new("f");
    let x = f.add_param(f64v(&[3]));
    let y = f.add_param(f64v(&[3])); // unused parameter stays
    let a = un(&mut f, UnaryOp::Exp, x); // dead
    let _b = un(&mut f, UnaryOp::Sin, a); // dead
    let c = un(&mut f, UnaryOp::Neg, x);
    f.set_outputs(vec![c, x]);
    let _ = y;

    let mut want = Function::new("f");
    let x = want.add_param(f64v(&[3]));
    want.add_param(f64v(&[3]));
    let c = un(&mut want, UnaryOp::Neg, x);
    want.set_outputs(vec![c, x]);

    let stats = run(&["dce"], &mut f);
    assert_eq!(f, want);
    assert_eq!(counter(&stats, "removed"), 2);
    assert!(stats.changed);
    let again = run(&["dce"], &mut f);
    assert_eq!(counter(&again, "removed"), 0);
    assert!(!again.changed);
}

#[test]
fn cse_merges_equal_ops_only() {
    let mut f = Function::new("f");
    let x = f.add_param(f64v(&[2, 2]));
    let a = bin(&mut f, BinaryOp::Add, x, x);
    let b = bin(&mut f, BinaryOp::Add, x, x); // merged with a
    let s0 = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0],
            },
            &[a],
        )
        .unwrap();
    let s1 = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![1],
            },
            &[b],
        )
        .unwrap(); // other axes
    let z = cst(&mut f, &[], &[0.0]);
    let nz = cst(&mut f, &[], &[-0.0]); // differs bitwise from 0.0
    let n1 = cst(&mut f, &[], &[f64::NAN]);
    let n2 = cst(&mut f, &[], &[f64::NAN]); // same bits: merged
    let p = bin(&mut f, BinaryOp::Add, z, nz);
    let q = bin(&mut f, BinaryOp::Add, n1, n2);
    f.set_outputs(vec![s0, s1, p, q]);

    let mut want = Function::new("f");
    let x = want.add_param(f64v(&[2, 2]));
    let a = bin(&mut want, BinaryOp::Add, x, x);
    let s0 = want
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0],
            },
            &[a],
        )
        .unwrap();
    let s1 = want
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![1],
            },
            &[a],
        )
        .unwrap();
    let z = cst(&mut want, &[], &[0.0]);
    let nz = cst(&mut want, &[], &[-0.0]);
    let n1 = cst(&mut want, &[], &[f64::NAN]);
    let p = bin(&mut want, BinaryOp::Add, z, nz);
    let q = bin(&mut want, BinaryOp::Add, n1, n1);
    want.set_outputs(vec![s0, s1, p, q]);

    let stats = run(&["cse"], &mut f);
    assert_eq!(f, want);
    assert_eq!(counter(&stats, "merged"), 2);
}

#[test]
fn fold_evaluates_constant_instructions() {
    let mut f = Function::new("f");
    let x = f.add_param(f64v(&[2]));
    let a = cst(&mut f, &[2], &[1.0, 2.0]);
    let b = cst(&mut f, &[2], &[3.0, 5.0]);
    let s = bin(&mut f, BinaryOp::Mul, a, b); // [3, 10]
    let r = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0],
            },
            &[s],
        )
        .unwrap(); // 13
    let y = bin(&mut f, BinaryOp::Add, x, s); // depends on a parameter: kept
    f.set_outputs(vec![y, r]);

    let mut want = Function::new("f");
    let x = want.add_param(f64v(&[2]));
    let s = cst(&mut want, &[2], &[3.0, 10.0]);
    let r = cst(&mut want, &[], &[13.0]);
    let y = bin(&mut want, BinaryOp::Add, x, s);
    want.set_outputs(vec![y, r]);

    let records = Pipeline::from_names(&["fold", "dce"])
        .unwrap()
        .run(&mut f, &mut |_| {})
        .unwrap();
    assert_eq!(f, want);
    assert_eq!(counter(&records[0].stats, "folded"), 2);
    assert_eq!(counter(&records[1].stats, "removed"), 2);
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
fn o1_pipeline_end_to_end() {
    // (2 + 3) * x + (2 + 3) * x, with an unused branch.
    let mut f = Function::new("f");
    let x = f.add_param(f64v(&[]));
    let two = cst(&mut f, &[], &[2.0]);
    let three = cst(&mut f, &[], &[3.0]);
    let five_a = bin(&mut f, BinaryOp::Add, two, three);
    let five_b = bin(&mut f, BinaryOp::Add, two, three);
    let p = bin(&mut f, BinaryOp::Mul, five_a, x);
    let q = bin(&mut f, BinaryOp::Mul, five_b, x);
    let _dead = un(&mut f, UnaryOp::Exp, q);
    let r = bin(&mut f, BinaryOp::Add, p, q);
    f.set_outputs(vec![r]);

    let mut want = Function::new("f");
    let x = want.add_param(f64v(&[]));
    let five = cst(&mut want, &[], &[5.0]);
    let p = bin(&mut want, BinaryOp::Mul, five, x);
    let r = bin(&mut want, BinaryOp::Add, p, p);
    want.set_outputs(vec![r]);

    let records = Pipeline::for_level(tenferro_passes::OptLevel::O1)
        .run(&mut f, &mut |_| {})
        .unwrap();
    assert_eq!(f, want, "got {f:?}");
    let names: Vec<&str> = records.iter().map(|r| r.pass.as_str()).collect();
    assert_eq!(names, ["verify", "dce", "cse", "fold", "dce"]);
    assert_eq!(records.last().unwrap().insts_after, 3);
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
