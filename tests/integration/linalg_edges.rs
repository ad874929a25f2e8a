//! Degenerate and invalid linalg inputs: empty matrices, wrong dtypes and ranks either
//! work or fail with errors naming the op, never panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_linalg::TracedTensorLinalgExt;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, TensorType, TracedTensor};

fn run_all(t: &[TracedTensor]) -> Result<(), String> {
    let refs: Vec<&TracedTensor> = t.iter().collect();
    let p = GraphCompiler::new()
        .compile_many(&refs)
        .map_err(|e| e.to_string())?;
    let mut ex = GraphExecutor::new(CpuBackend::with_threads(1));
    ex.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    ex.run_many(&p).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn degenerate_and_invalid_inputs_do_not_panic() {
    let shapes: &[&[usize]] = &[
        &[0, 0],
        &[1, 1],
        &[3, 0],
        &[0, 3],
        &[2, 3],
        &[3],
        &[],
        &[2, 2, 0],
    ];
    let dtypes = [DType::F64, DType::C64, DType::I64, DType::I32, DType::Bool];
    let ad = AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules().unwrap())
        .build()
        .unwrap();
    for shape in shapes {
        for dt in dtypes {
            let a = TracedTensor::full(&TensorType::new(dt, shape.to_vec()), 1.0);
            let r = catch_unwind(AssertUnwindSafe(|| {
                let mut outs: Vec<TracedTensor> = Vec::new();
                // A trace-time error names the op it comes from.
                let mut take =
                    |r: Result<Vec<TracedTensor>, tenferro_runtime::RuntimeError>| match r {
                        Ok(v) => outs.extend(v),
                        Err(e) => {
                            let m = e.to_string();
                            let named = [
                                "cholesky", "inv", "det", "lu", "qr", "svd", "eigh", "eigvalsh",
                                "solve",
                            ]
                            .iter()
                            .any(|op| m.contains(op));
                            assert!(named, "error does not name an op: {m}");
                        }
                    };
                take(a.cholesky().map(|x| vec![x]));
                take(a.inv().map(|x| vec![x]));
                take(a.det().map(|x| vec![x]));
                take(a.slogdet().map(|(s, l)| vec![s, l]));
                take(a.qr().map(|(q, r)| vec![q, r]));
                take(a.svd().map(|(u, s, v)| vec![u, s, v]));
                take(a.svdvals().map(|x| vec![x]));
                take(a.eigh().map(|(w, v)| vec![w, v]));
                take(a.eigvalsh().map(|x| vec![x]));
                take(a.solve(&a).map(|x| vec![x]));
                for o in &outs {
                    let _ = run_all(std::slice::from_ref(o));
                    if let Ok(t) = o.ty() {
                        if t.dtype.is_float() {
                            let loss = o.abs().sum();
                            if let Ok(g) = ad.grad(&loss, &a) {
                                let _ = run_all(&[g]);
                            }
                        }
                    }
                }
            }));
            assert!(r.is_ok(), "panicked for {dt:?}{shape:?}");
        }
    }
}

#[test]
fn empty_matrices_follow_the_empty_conventions() {
    // det of a 0×0 matrix is the empty product, 1; its inverse is 0×0.
    let a = TracedTensor::full(&TensorType::new(DType::F64, vec![0, 0]), 1.0);
    let p = GraphCompiler::new()
        .compile_many(&[&a.det().unwrap(), &a.inv().unwrap()])
        .unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::with_threads(1));
    ex.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let out = ex.run_many(&p).unwrap();
    assert_eq!(out[0].as_slice::<f64>().unwrap(), &[1.0]);
    assert_eq!(out[1].shape(), &[0, 0]);
}

#[test]
fn wrong_dtype_and_rank_errors_name_the_op() {
    let i = TracedTensor::full(&TensorType::new(DType::I64, vec![2, 2]), 1.0);
    let e = i.cholesky().unwrap_err().to_string();
    assert!(e.contains("cholesky") && e.contains("i64[2,2]"), "{e}");
    let v = TracedTensor::full(&TensorType::new(DType::F64, vec![3]), 1.0);
    let e = v.inv().unwrap_err().to_string();
    assert!(e.contains("f64[3]"), "{e}");
}

#[test]
fn singular_matrices_have_zero_det_and_nan_inputs_are_named() {
    // [[0, 0], [0, 1]]: the zero pivot is in the first column.
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![0.0_f64, 0.0, 0.0, 1.0]);
    let (sign, logabs) = a.slogdet().unwrap();
    let (_, l, u) = a.lu().unwrap();
    let p = GraphCompiler::new()
        .compile_many(&[&a.det().unwrap(), &sign, &logabs, &l, &u])
        .unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::with_threads(1));
    ex.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let out = ex.run_many(&p).unwrap();
    assert_eq!(out[0].as_slice::<f64>().unwrap(), &[0.0]);
    assert_eq!(out[1].as_slice::<f64>().unwrap(), &[0.0]);
    assert_eq!(out[2].as_slice::<f64>().unwrap(), &[f64::NEG_INFINITY]);
    assert_eq!(out[3].as_slice::<f64>().unwrap(), &[1.0, 0.0, 0.0, 1.0]);
    assert_eq!(out[4].as_slice::<f64>().unwrap(), &[0.0, 0.0, 0.0, 1.0]);
    // A NaN entry is reported as such, not as an indefinite or singular matrix.
    let nan = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f64, f64::NAN, 0.0, 1.0]);
    for y in [
        nan.cholesky().unwrap(),
        nan.inv().unwrap(),
        nan.eigvalsh().unwrap(),
    ] {
        let e = run_all(&[y]).unwrap_err();
        assert!(
            e.contains("linalg.") && e.contains("NaN or infinity"),
            "{e}"
        );
    }
}
