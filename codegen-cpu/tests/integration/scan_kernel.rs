//! The scan and argsort kernels against the reference evaluator, bit for bit: random
//! shapes and axes, values with NaN, ±0.0, ±inf and many ties, every accepted dtype, at
//! 1 and 2 threads, with fusion on and off, including inputs large enough to run blocks
//! in parallel and scans whose operand comes out of a fusion group.

use crate::common;

use common::*;
use tenferro_ir::{eval, DType, Function, Op, ReduceOp, TensorType};
use tenferro_runtime::Backend;

fn ops(rank: usize, r: &mut SeedRng) -> Vec<Op> {
    let axis = r.below(rank);
    let mut v = vec![
        Op::Argsort {
            axis,
            descending: false,
        },
        Op::Argsort {
            axis,
            descending: true,
        },
    ];
    for kind in ReduceOp::ALL {
        for reverse in [false, true] {
            v.push(Op::Cumulative {
                kind,
                axis,
                reverse,
            });
        }
    }
    v
}

/// Runs `f` at 1 and 2 threads, fused and not, and checks every result's bits.
fn check_all_ways(f: &Function, inputs: &[tenferro_ir::Tensor], what: &str) {
    let want = eval::eval(f, inputs).unwrap();
    for threads in [1, 2] {
        for fusion in [false, true] {
            let got = run_cpu_with(f, inputs, threads, fusion);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    bits_eq_any_nan(g, w),
                    "{what} (threads {threads}, fusion {fusion})\n cpu: {g:?}\n ref: {w:?}"
                );
            }
        }
    }
}

#[test]
fn single_ops_match_the_evaluator_bit_for_bit() {
    let mut r = SeedRng::new(7);
    let mut ran = 0;
    for case in 0..60 {
        let rank = 1 + r.below(3);
        let lo = if case % 10 == 0 { 0 } else { 1 };
        let shape = r.shape(rank, lo, 5);
        let ops = ops(rank, &mut r);
        for dt in DType::ALL {
            let x = r.tensor(&TensorType::new(dt, shape.clone()), true);
            for op in &ops {
                if !accepts(op, &[&x]) {
                    continue;
                }
                let f = single_op_function(op, &[&x]);
                check_all_ways(&f, &[x.clone()], &format!("{op:?} on {}", x.ty()));
                ran += 1;
            }
        }
    }
    assert!(ran > 1000, "{ran}");
}

#[test]
fn large_inputs_run_blocks_in_parallel() {
    let mut r = SeedRng::new(11);
    // 8192+ elements, several blocks along every axis choice.
    let shape = vec![16, 32, 17];
    for dt in [DType::F64, DType::F32, DType::I64, DType::C64] {
        let x = r.tensor(&TensorType::new(dt, shape.clone()), true);
        for axis in 0..3 {
            let mut all = vec![Op::Argsort {
                axis,
                descending: axis == 1,
            }];
            for kind in ReduceOp::ALL {
                all.push(Op::Cumulative {
                    kind,
                    axis,
                    reverse: axis == 2,
                });
            }
            for op in all {
                if accepts(&op, &[&x]) {
                    let f = single_op_function(&op, &[&x]);
                    check_all_ways(&f, &[x.clone()], &format!("{op:?} on {}", x.ty()));
                }
            }
        }
    }
}

#[test]
fn scans_of_fused_values_and_into_fused_consumers() {
    // neg(x) -> cumsum -> mul by itself -> argsort of the result: the scan and the sort
    // are boundaries between two fusion groups.
    let text = "func @main(%0: f64[6,5]) -> (f64[6,5], i64[6,5], f64[6,5]) {
  %1 = neg %0 : f64[6,5]
  %2 = cumsum {axis = 1, reverse = false} %1 : f64[6,5]
  %3 = mul %2, %2 : f64[6,5]
  %4 = argsort {axis = 0, descending = true} %3 : i64[6,5]
  %5 = cummax {axis = 0, reverse = true} %3 : f64[6,5]
  %6 = abs %5 : f64[6,5]
  return %3, %4, %6
}";
    let f = tenferro_ir::parse_and_verify(text).unwrap();
    let mut r = SeedRng::new(3);
    for _ in 0..20 {
        let x = r.tensor(&TensorType::new(DType::F64, vec![6, 5]), true);
        check_all_ways(&f, &[x], "fused chain");
    }
    // The partitioner names the reason.
    let prog = tenferro_cpu::CpuBackend::with_threads(1)
        .prepare(&f)
        .unwrap();
    let notes = format!("{:?}", prog.fusion_notes());
    assert!(notes.contains("argsort sorts whole lines"), "{notes}");
    assert!(notes.contains("a scan runs sequentially"), "{notes}");
    let kernels: Vec<&str> = prog.steps().iter().map(|s| s.kernel_name()).collect();
    assert!(
        kernels.contains(&"scan") && kernels.contains(&"argsort"),
        "{kernels:?}"
    );
}

#[test]
fn stable_ties_and_nan_on_the_backend() {
    let x = tenferro_ir::Tensor::from_vec_col_major(
        vec![7],
        vec![1.0, f64::NAN, 0.0, -0.0, 1.0, f64::NAN, -1.0],
    )
    .unwrap();
    let op = Op::Argsort {
        axis: 0,
        descending: false,
    };
    let f = single_op_function(&op, &[&x]);
    let got = run_cpu(&f, &[x.clone()], 2);
    assert_eq!(got[0].as_slice::<i64>().unwrap(), &[6, 2, 3, 0, 4, 1, 5]);
    let op = Op::Argsort {
        axis: 0,
        descending: true,
    };
    let f = single_op_function(&op, &[&x]);
    let got = run_cpu(&f, &[x], 2);
    assert_eq!(got[0].as_slice::<i64>().unwrap(), &[1, 5, 0, 4, 2, 3, 6]);
}
