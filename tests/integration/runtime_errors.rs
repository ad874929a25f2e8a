//! Error paths of tracing, compiling and running, each with its message.

use tenferro_cpu::CpuBackend;
use tenferro_runtime::{
    CompileOptions, DType, GraphCompiler, GraphExecutor, OptLevel, PassSpec, Tensor, TracedTensor,
};

fn run_err(t: &TracedTensor) -> String {
    GraphCompiler::new().compile(t).unwrap_err().to_string()
}

#[test]
fn shape_mismatch_is_reported_by_compile_with_op_and_shapes() {
    let a = TracedTensor::from_vec_col_major(vec![2, 3], vec![0.0_f64; 6]);
    let b = TracedTensor::from_vec_col_major(vec![4], vec![0.0_f64; 4]);
    let msg = run_err(&(&a * &b).exp());
    assert!(
        msg.contains("mul") && msg.contains("f64[2,3]") && msg.contains("f64[4]"),
        "{msg}"
    );
}

#[test]
fn wrong_data_length_is_reported_by_compile() {
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f32; 3]);
    let msg = run_err(&a.sum());
    assert!(
        msg.contains("data length 3") && msg.contains("[2, 2]"),
        "{msg}"
    );
}

#[test]
fn bad_reduction_axis_is_reported_by_compile() {
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f64; 4]);
    let msg = run_err(&a.reduce_max(&[0, 2]));
    assert!(
        msg.contains("reduce_max") && msg.contains("axis 2"),
        "{msg}"
    );
}

#[test]
fn unsupported_dtype_is_reported() {
    let z = TracedTensor::from_vec_col_major(vec![1], vec![num_complex::Complex64::new(1.0, 1.0)]);
    let msg = run_err(&z.maximum(&z));
    assert!(msg.contains("maximum") && msg.contains("c64[1]"), "{msg}");
    let b = TracedTensor::from_vec_col_major(vec![2], vec![true, false]);
    let msg = run_err(&b.exp());
    assert!(msg.contains("exp") && msg.contains("bool[2]"), "{msg}");
}

#[test]
fn structural_ops_fail_at_once() {
    let a = TracedTensor::from_vec_col_major(vec![2, 3], vec![0.0_f64; 6]);
    let e = a.reshape(&[4]).unwrap_err().to_string();
    assert!(
        e.contains("reshape") && e.contains("f64[2,3]") && e.contains("[4]"),
        "{e}"
    );
    let e = a.transpose(&[0, 0]).unwrap_err().to_string();
    assert!(
        e.contains("transpose") && e.contains("appears twice"),
        "{e}"
    );
    let e = a.slice(&[0, 1], &[3, 2]).unwrap_err().to_string();
    assert!(e.contains("slice") && e.contains("axis 0"), "{e}");
    let e = a
        .convert(DType::F32)
        .and_then(|x| x.matmul(&x))
        .unwrap_err()
        .to_string();
    assert!(e.contains("matmul") && e.contains("[2, 3]"), "{e}");
    let idx = TracedTensor::from_vec_col_major(vec![1], vec![0.5_f64]);
    let e = a.gather(&idx, 0).unwrap_err().to_string();
    assert!(e.contains("gather") && e.contains("i64"), "{e}");
}

#[test]
fn unbound_placeholder_is_an_error() {
    let x = TracedTensor::input(DType::F64, &[3]);
    let program = GraphCompiler::new().compile(&x.exp()).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let msg = ex.run(&program).unwrap_err().to_string();
    assert!(
        msg.contains("placeholder f64[3]") && msg.contains("not given a value"),
        "{msg}"
    );
}

#[test]
fn placeholder_value_of_wrong_type_is_an_error() {
    let x = TracedTensor::input(DType::F64, &[3]);
    let program = GraphCompiler::new().compile(&x.exp()).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let v = Tensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]).unwrap();
    let msg = ex
        .run_with_inputs(&program, &[(&x, v)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("f64[3]") && msg.contains("f64[2]"), "{msg}");
    // a placeholder the program does not read may be bound, but only to a value of its type
    let other = TracedTensor::input(DType::F64, &[3]);
    let v = Tensor::from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0]).unwrap();
    ex.run_with_inputs(&program, &[(&x, v.clone()), (&other, v.clone())])
        .unwrap();
    let w = Tensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]).unwrap();
    let msg = ex
        .run_with_inputs(&program, &[(&x, v.clone()), (&other, w)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("f64[3]") && msg.contains("f64[2]"), "{msg}");
    // a computed value is not a placeholder
    let msg = ex
        .run_with_inputs(&program, &[(&x, v.clone()), (&x.exp(), v)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("is not a placeholder"), "{msg}");
}

#[test]
fn run_of_a_multi_output_program_points_to_run_many() {
    let a = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let program = GraphCompiler::new()
        .compile_many(&[&a.exp(), &a.sin()])
        .unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let msg = ex.run(&program).unwrap_err().to_string();
    assert!(
        msg.contains("2 outputs") && msg.contains("run_many"),
        "{msg}"
    );
    let out = ex.run_many(&program).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].as_slice::<f64>().unwrap(),
        &[1.0_f64.exp(), 2.0_f64.exp()]
    );
    assert!(GraphCompiler::new().compile_many(&[]).is_err());
}

#[test]
fn as_slice_of_the_wrong_dtype_is_an_error() {
    let t = Tensor::from_vec_col_major(vec![2], vec![1.0_f32, 2.0]).unwrap();
    let msg = t.as_slice::<f64>().unwrap_err().to_string();
    assert!(msg.contains("expected dtype f64, got f32"), "{msg}");
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
}

#[test]
fn one_program_reruns_on_new_values_without_retracing() {
    let x = TracedTensor::input(DType::F64, &[2]);
    let y = (&(&x * &x) + 1.0).sum();
    let program = GraphCompiler::new().compile(&y).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    for k in 0..3 {
        let v = Tensor::from_vec_col_major(vec![2], vec![k as f64, 2.0]).unwrap();
        let r = ex.run_with_inputs(&program, &[(&x, v)]).unwrap();
        assert_eq!(r.as_slice::<f64>().unwrap(), &[(k * k) as f64 + 4.0 + 2.0]);
    }
}

#[test]
fn pipeline_is_configurable_and_observable() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let opts = CompileOptions::new()
        .passes(vec![PassSpec::Cse, PassSpec::Dce])
        .verify_each(true)
        .observer(move |e| {
            log.lock()
                .unwrap()
                .push(format!("{} {}", e.pass, e.function.insts().len()))
        });
    let a = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let y = &a.exp() + &a.exp();
    let program = GraphCompiler::with_options(opts).compile(&y).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["cse 3".to_string(), "dce 3".to_string()]
    );
    assert_eq!(program.pass_records().len(), 2);
    // O0 keeps the duplicate exp; printing the program shows the IR.
    let o0 = GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O0))
        .compile(&y)
        .unwrap();
    assert_eq!(o0.to_string().matches("exp").count(), 2, "{o0}");
}

#[test]
fn broadcasting_and_promotion_follow_numpy() {
    let a = TracedTensor::from_vec_col_major(vec![2, 1], vec![1.0_f32, 2.0]);
    let b = TracedTensor::from_vec_col_major(vec![3], vec![10.0_f64, 20.0, 30.0]);
    let y = &a + &b;
    assert_eq!(y.shape().unwrap(), vec![2, 3]);
    let program = GraphCompiler::new().compile(&y).unwrap();
    let r = GraphExecutor::new(CpuBackend::new()).run(&program).unwrap();
    assert_eq!(r.dtype(), DType::F64);
    // column-major: element (i, j) at i + 2 j
    assert_eq!(
        r.as_slice::<f64>().unwrap(),
        &[11.0, 12.0, 21.0, 22.0, 31.0, 32.0]
    );
    let s = 2.0 - &b;
    let r = GraphExecutor::new(CpuBackend::new())
        .run(&GraphCompiler::new().compile(&s).unwrap())
        .unwrap();
    assert_eq!(r.as_slice::<f64>().unwrap(), &[-8.0, -18.0, -28.0]);
}

#[test]
fn very_deep_traces_lower_differentiate_and_drop_without_recursion() {
    use tenferro_ad::AdContext;
    let x = TracedTensor::from_vec_col_major(vec![2], vec![0.5_f64, -0.25]);
    let mut y = x.clone();
    for _ in 0..20_000 {
        y = &y * 0.999_99;
    }
    let loss = y.sum();
    let g = AdContext::builder()
        .build()
        .unwrap()
        .grad(&loss, &x)
        .unwrap();
    let program = GraphCompiler::new().compile(&g).unwrap();
    let r = GraphExecutor::new(CpuBackend::new()).run(&program).unwrap();
    let expected = 0.999_99_f64.powi(20_000);
    for v in r.as_slice::<f64>().unwrap() {
        assert!((v - expected).abs() < 1e-9, "{v} vs {expected}");
    }
    drop((loss, y, g));
}

#[test]
fn operator_errors_say_where_the_bad_op_was_written() {
    let x = TracedTensor::input(DType::F64, &[3]);
    let y = TracedTensor::input(DType::F64, &[4]);
    let line = line!() + 1;
    let bad = &x + &y;
    let err = GraphCompiler::new()
        .compile(&bad.sum())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{}:{line}:", file!())), "{err}");
    // a bad elementwise op on an unsupported dtype is located too
    let b = TracedTensor::from_vec_col_major(vec![2], vec![true, false]);
    let line = line!() + 1;
    let e = b.exp();
    let err = GraphCompiler::new().compile(&e).unwrap_err().to_string();
    assert!(err.contains(&format!("{}:{line}:", file!())), "{err}");
}

#[test]
fn vocabulary_errors_say_where_the_bad_call_was_written() {
    let x = TracedTensor::input(DType::F64, &[3, 2]);
    let line = line!() + 1;
    let s = x.softmax(5);
    let err = GraphCompiler::new().compile(&s).unwrap_err().to_string();
    assert!(
        err.contains("softmax") && err.contains(&format!("{}:{line}:", file!())),
        "{err}"
    );
}

/// Errors of the structural and shape ops name the line that called them, never a line
/// inside tenferro (the ops they are built from are traced on the caller's behalf).
#[test]
fn op_errors_name_the_callers_line_not_a_library_line() {
    let x = TracedTensor::input(DType::F64, &[3, 2]);
    let v = TracedTensor::input(DType::F64, &[3]);
    let b = TracedTensor::from_vec_col_major(vec![2], vec![true, false]);
    let i = TracedTensor::from_vec_col_major(vec![2], vec![0i64, 5]);
    let msg = |r: Result<TracedTensor, tenferro_runtime::RuntimeError>| match r {
        Ok(t) => t.error().map(|e| e.to_string()).unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    let here = format!("(at {}:", file!());
    let located = [
        msg(b.dot_general(&b, Default::default())),
        msg(x.transpose(&[0, 0])),
        msg(x.reshape(&[5])),
        msg(x.broadcast_in_dim(&[4, 4], &[0, 1])),
        msg(x.slice(&[0, 0], &[9, 9])),
        msg(x.pad(&[0], &[1], 0.0)),
        msg(TracedTensor::concatenate(&[&x, &v], 0)),
        msg(x.gather(&i, 7)),
        msg(TracedTensor::iota(DType::F64, &[2], 3)),
        msg(TracedTensor::eye(DType::F64, usize::MAX, None, 0)),
        msg(Ok(x.sum_axes(&[7], false))),
        msg(Ok(v.top_k(9).0)),
        msg(Ok(x.softmax(5))),
    ];
    for m in located {
        assert!(m.contains(&here), "{m}");
    }
    // errors returned at once may carry no location, but never a library one
    for m in [
        msg(x.matmul(&x)),
        msg(x.expand_dims(9)),
        msg(x.squeeze(&[0])),
        msg(v.tril(0)),
        msg(x.diagonal(0, 0, 0)),
        msg(TracedTensor::stack(&[&x, &v], 0)),
    ] {
        assert!(!m.is_empty() && !m.contains("(at runtime/"), "{m}");
    }
}
