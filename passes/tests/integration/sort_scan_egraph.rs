//! `argsort` and the cumulative ops through the passes: s-expression round trip, the
//! e-graph carries them opaquely (simplification around them keeps results identical),
//! the O2 pipeline keeps them, and the cost model prices them.

use std::time::Duration;
use tenferro_ir::eval::eval;
use tenferro_ir::verify::verify;
use tenferro_ir::{DType, Op, ReduceOp, Tensor, TensorType};
use tenferro_passes::cost::op_cost;
use tenferro_passes::egraph::sexpr::{parse_function, to_sexprs};
use tenferro_passes::egraph::{simplify, EGraphOptions, TOp};
use tenferro_passes::{OptLevel, Pipeline};

fn count(f: &tenferro_ir::Function, name: &str) -> usize {
    f.insts().iter().filter(|i| i.op.name() == name).count()
}

#[test]
fn sexpr_round_trip_and_tops() {
    let exprs = [
        "(argsort:1:true x)",
        "(cumsum:0:false x)",
        "(cumprod:1:true x)",
        "(cummax:0:true x)",
        "(cummin:1:false x)",
    ];
    let f = parse_function("x:f64[3,4]", &exprs).unwrap();
    verify(&f).unwrap();
    // Parameters print as p0, p1, ...
    assert_eq!(
        to_sexprs(&f),
        exprs
            .iter()
            .map(|s| s.replace(" x)", " p0)"))
            .collect::<Vec<_>>()
    );
    for inst in f.insts() {
        let t = TOp::from_ir(&inst.op).unwrap();
        assert_eq!(t.to_ir().unwrap(), inst.op);
    }
    assert!(parse_function("x:f64[3]", &["(argsort:0:maybe x)"]).is_err());
    assert!(parse_function("x:f64[3]", &["(cumsum:0 x)"]).is_err());
}

#[test]
fn egraph_carries_them_opaquely() {
    // x * 1 around the scans simplifies; the scans themselves stay.
    let mut f = parse_function(
        "x:f64[3,4]",
        &[
            "(mul (cumsum:1:false (mul x (broadcast:3,4: 1.0:f64))) (broadcast:3,4: 1.0:f64))",
            "(argsort:0:false (mul x (broadcast:3,4: 1.0:f64)))",
        ],
    )
    .unwrap();
    let x = Tensor::from_vec_col_major(
        vec![3, 4],
        (0..12)
            .map(|i| ((i * 7) % 5) as f64 - 2.0)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let before = eval(&f, &[x.clone()]).unwrap();
    simplify(
        &mut f,
        &EGraphOptions {
            node_limit: 100_000,
            iter_limit: 100,
            time_limit: Duration::from_secs(30),
            fast_math: false,
        },
    );
    verify(&f).unwrap();
    assert_eq!(count(&f, "cumsum"), 1);
    assert_eq!(count(&f, "argsort"), 1);
    assert_eq!(count(&f, "mul"), 0, "{}", tenferro_ir::print(&f));
    let after = eval(&f, &[x]).unwrap();
    for (a, b) in after.iter().zip(&before) {
        assert!(a.bits_eq(b));
    }
}

#[test]
fn o2_pipeline_keeps_them() {
    let mut f = tenferro_ir::parse(
        "func @main(%0: f64[5]) -> (i64[5], f64[5]) {
  %1 = argsort {axis = 0, descending = true} %0 : i64[5]
  %2 = cummax {axis = 0, reverse = true} %0 : f64[5]
  return %1, %2
}",
    )
    .unwrap();
    let x = Tensor::from_vec_col_major(vec![5], vec![3.0, -1.0, 3.0, f64::NAN, 0.0]).unwrap();
    let before = eval(&f, &[x.clone()]).unwrap();
    Pipeline::for_level(OptLevel::O2)
        .run(&mut f, &mut |_| {})
        .unwrap();
    verify(&f).unwrap();
    let after = eval(&f, &[x]).unwrap();
    for (a, b) in after.iter().zip(&before) {
        assert!(a.bits_eq(b));
    }
}

#[test]
fn costs() {
    let t = TensorType::new(DType::F64, vec![8, 16]);
    let c = op_cost(
        &Op::Cumulative {
            kind: ReduceOp::Sum,
            axis: 1,
            reverse: false,
        },
        &[&t],
        &[&t],
    );
    assert_eq!(c.flops, 128.0);
    let i = t.with_dtype(DType::I64);
    let s = op_cost(
        &Op::Argsort {
            axis: 1,
            descending: false,
        },
        &[&t],
        &[&i],
    );
    assert_eq!(s.flops, 128.0 * 4.0);
    assert_eq!(s.bytes, 2.0 * 128.0 * 8.0);
}
