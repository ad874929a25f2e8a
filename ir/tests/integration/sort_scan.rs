//! `argsort` and the cumulative ops in the IR: text round trip, typing errors and the
//! reference evaluator's semantics (NaN order, stable ties, -0.0, descending, reverse).

use tenferro_ir::{eval, parse, print, DType, Op, ReduceOp, Tensor, TensorType};

fn f64s(shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_vec_col_major(shape.to_vec(), v.to_vec()).unwrap()
}

fn run(op: Op, x: &Tensor) -> Tensor {
    eval::eval_op(&op, &[x]).unwrap().remove(0)
}

fn argsort(x: &Tensor, axis: usize, descending: bool) -> Vec<i64> {
    run(Op::Argsort { axis, descending }, x)
        .as_slice::<i64>()
        .unwrap()
        .to_vec()
}

fn scan(kind: ReduceOp, x: &Tensor, axis: usize, reverse: bool) -> Tensor {
    run(
        Op::Cumulative {
            kind,
            axis,
            reverse,
        },
        x,
    )
}

#[test]
fn text_round_trip() {
    let text = "func @main(%0: f64[3,4], %1: i64[5]) -> (i64[3,4], f64[3,4], i64[5], f64[3,4], f64[3,4], i64[5]) {
  %2 = argsort {axis = 1, descending = true} %0 : i64[3,4]
  %3 = cumsum {axis = 0, reverse = false} %0 : f64[3,4]
  %4 = cumprod {axis = 0, reverse = true} %1 : i64[5]
  %5 = cummax {axis = 1, reverse = false} %0 : f64[3,4]
  %6 = cummin {axis = 1, reverse = true} %0 : f64[3,4]
  %7 = argsort {axis = 0, descending = false} %1 : i64[5]
  return %2, %3, %4, %5, %6, %7
}
";
    let f = tenferro_ir::parse_and_verify(text).unwrap();
    assert_eq!(print(&f), text);
    assert_eq!(parse(&print(&f)).unwrap(), f);
    assert!(matches!(
        f.insts()[1].op,
        Op::Cumulative {
            kind: ReduceOp::Sum,
            axis: 0,
            reverse: false
        }
    ));
    // The flags default to false; result types may be omitted.
    let short = parse(
        "func @f(%x: f64[3]) -> (i64[3], f64[3]) {\n %a = argsort {axis = 0} %x\n %b = cummax {axis = 0} %x\n return %a, %b\n}",
    )
    .unwrap();
    assert_eq!(
        short.insts()[0].op,
        Op::Argsort {
            axis: 0,
            descending: false
        }
    );
    // Wrong attribute kinds and unknown attributes are errors naming the op.
    for bad in [
        "argsort {axis = 0, descending = 1} %x",
        "argsort {axis = 0, reverse = true} %x",
        "cumsum {axis = 0, descending = true} %x",
        "cumsum {reverse = true} %x",
    ] {
        let text =
            format!("func @f(%x: f64[3]) -> (f64[3]) {{\n %a = {bad} : f64[3]\n return %a\n}}");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(bad.split(' ').next().unwrap()), "{bad}: {e}");
    }
}

#[test]
fn typing_errors_name_the_op() {
    let c = TensorType::new(DType::C64, vec![3]);
    let x = TensorType::new(DType::F64, vec![3, 2]);
    let b = TensorType::new(DType::Bool, vec![3]);
    let check = |op: Op, t: &TensorType, want: &str| {
        let e = tenferro_ir::infer_types(&op, &[t]).unwrap_err().to_string();
        assert!(e.contains(op.name()) && e.contains(want), "{e}");
    };
    check(
        Op::Argsort {
            axis: 0,
            descending: false,
        },
        &c,
        "complex",
    );
    check(
        Op::Argsort {
            axis: 2,
            descending: false,
        },
        &x,
        "out of range",
    );
    for kind in ReduceOp::ALL {
        check(
            Op::Cumulative {
                kind,
                axis: 2,
                reverse: false,
            },
            &x,
            "out of range",
        );
        check(
            Op::Cumulative {
                kind,
                axis: 0,
                reverse: false,
            },
            &b,
            "bool",
        );
    }
    check(
        Op::Cumulative {
            kind: ReduceOp::Max,
            axis: 0,
            reverse: false,
        },
        &c,
        "complex",
    );
    // Complex sums and products are fine; argsort of bool and i64 too.
    for kind in [ReduceOp::Sum, ReduceOp::Prod] {
        let op = Op::Cumulative {
            kind,
            axis: 0,
            reverse: true,
        };
        assert_eq!(tenferro_ir::infer_types(&op, &[&c]).unwrap()[0], c);
    }
    let op = Op::Argsort {
        axis: 0,
        descending: true,
    };
    assert_eq!(
        tenferro_ir::infer_types(&op, &[&b]).unwrap()[0].dtype,
        DType::I64
    );
    // Rank 0 has no axis.
    let s = TensorType::scalar(DType::F64);
    check(
        Op::Argsort {
            axis: 0,
            descending: false,
        },
        &s,
        "out of range",
    );
}

#[test]
fn argsort_order_nan_ties_and_signed_zero() {
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let x = f64s(&[8], &[1.0, nan, -0.0, 0.0, -inf, 1.0, -nan, inf]);
    // Ascending: -inf, (-0.0, 0.0 in input order), (1, 1), inf, then NaNs in input order.
    assert_eq!(argsort(&x, 0, false), vec![4, 2, 3, 0, 5, 7, 1, 6]);
    // Descending: NaNs first (input order), inf, ties in input order, -inf last.
    assert_eq!(argsort(&x, 0, true), vec![1, 6, 7, 0, 5, 2, 3, 4]);
    // f32 and i64 and bool.
    let y = Tensor::from_vec_col_major(vec![4], vec![2.0f32, f32::NAN, -1.0, 2.0]).unwrap();
    assert_eq!(argsort(&y, 0, false), vec![2, 0, 3, 1]);
    let i = Tensor::from_vec_col_major(vec![5], vec![3i64, i64::MIN, 3, i64::MAX, 0]).unwrap();
    assert_eq!(argsort(&i, 0, false), vec![1, 4, 0, 2, 3]);
    assert_eq!(argsort(&i, 0, true), vec![3, 0, 2, 4, 1]);
    let b = Tensor::from_vec_col_major(vec![4], vec![true, false, true, false]).unwrap();
    assert_eq!(argsort(&b, 0, false), vec![1, 3, 0, 2]);
}

#[test]
fn argsort_along_each_axis_is_column_major() {
    // [[3, 1], [2, 2], [1, 3]] stored column-major.
    let x = f64s(&[3, 2], &[3.0, 2.0, 1.0, 1.0, 2.0, 3.0]);
    assert_eq!(argsort(&x, 0, false), vec![2, 1, 0, 0, 1, 2]);
    assert_eq!(argsort(&x, 1, false), vec![1, 0, 0, 0, 1, 1]);
    // Row 1 ties: stable order keeps [0, 1] both ways.
    assert_eq!(argsort(&x, 1, true), vec![0, 0, 1, 1, 1, 0]);
    // Empty axis and empty lines.
    let e = f64s(&[0, 3], &[]);
    assert_eq!(argsort(&e, 0, false), Vec::<i64>::new());
    assert_eq!(argsort(&e, 1, false), Vec::<i64>::new());
}

#[test]
fn scans_are_sequential() {
    let x = f64s(&[4], &[1.0, 2.0, 3.0, 4.0]);
    let v = |t: Tensor| t.as_slice::<f64>().unwrap().to_vec();
    assert_eq!(
        v(scan(ReduceOp::Sum, &x, 0, false)),
        vec![1.0, 3.0, 6.0, 10.0]
    );
    assert_eq!(
        v(scan(ReduceOp::Sum, &x, 0, true)),
        vec![10.0, 9.0, 7.0, 4.0]
    );
    assert_eq!(
        v(scan(ReduceOp::Prod, &x, 0, false)),
        vec![1.0, 2.0, 6.0, 24.0]
    );
    assert_eq!(
        v(scan(ReduceOp::Prod, &x, 0, true)),
        vec![24.0, 24.0, 12.0, 4.0]
    );
    let y = f64s(&[5], &[2.0, 1.0, f64::NAN, 5.0, -1.0]);
    let m = v(scan(ReduceOp::Max, &y, 0, false));
    assert_eq!(&m[..2], &[2.0, 2.0]);
    assert!(m[2..].iter().all(|z| z.is_nan()));
    let m = v(scan(ReduceOp::Min, &y, 0, true));
    assert!(m[..3].iter().all(|z| z.is_nan()));
    assert_eq!(&m[3..], &[-1.0, -1.0]);
    // The first element is copied: a cumsum of [-0.0] is -0.0.
    let z = v(scan(ReduceOp::Sum, &f64s(&[1], &[-0.0]), 0, false));
    assert!(z[0] == 0.0 && z[0].is_sign_negative());
    // Along axis 1 of [[1, 2], [3, 4]] (column-major [1, 3, 2, 4]).
    let a = f64s(&[2, 2], &[1.0, 3.0, 2.0, 4.0]);
    assert_eq!(
        v(scan(ReduceOp::Sum, &a, 1, false)),
        vec![1.0, 3.0, 3.0, 7.0]
    );
    assert_eq!(
        v(scan(ReduceOp::Sum, &a, 0, false)),
        vec![1.0, 4.0, 2.0, 6.0]
    );
    // Integers wrap.
    let i = Tensor::from_vec_col_major(vec![2], vec![i64::MAX, 1]).unwrap();
    let s = scan(ReduceOp::Sum, &i, 0, false);
    assert_eq!(s.as_slice::<i64>().unwrap(), &[i64::MAX, i64::MIN]);
    // Complex products.
    let c = Tensor::from_vec_col_major(
        vec![2],
        vec![
            num_complex::Complex64::new(0.0, 1.0),
            num_complex::Complex64::new(0.0, 1.0),
        ],
    )
    .unwrap();
    let p = scan(ReduceOp::Prod, &c, 0, false);
    assert_eq!(
        p.as_slice::<num_complex::Complex64>().unwrap()[1],
        num_complex::Complex64::new(-1.0, 0.0)
    );
}
