//! A result the caller dropped is reused by the next run (no fresh allocation, no
//! zeroing); a result the caller keeps is never written again.

use tenferro_cpu::CpuBackend;
use tenferro_ir::{DType, Data, Tensor};
use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

fn ptr(t: &Tensor) -> *const f64 {
    match t.data() {
        Data::F64(v) => v.as_ptr(),
        _ => unreachable!(),
    }
}

#[test]
fn dropped_results_come_back_and_kept_ones_stay_intact() {
    let x = TracedTensor::input(DType::F64, &[1 << 16]);
    let y = (&x.sin() * 2.0).exp();
    let p = GraphCompiler::new().compile(&y).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let input = |v: f64| Tensor::from_vec_col_major(vec![1 << 16], vec![v; 1 << 16]).unwrap();
    let first = ex.run_with_inputs(&p, &[(&x, input(0.5))]).unwrap();
    let kept = first.to_vec::<f64>().unwrap();
    let first_ptr = ptr(&first);
    // the caller keeps `first`: the next run must not write into it
    let second = ex.run_with_inputs(&p, &[(&x, input(1.5))]).unwrap();
    assert_ne!(ptr(&second), first_ptr);
    assert_eq!(first.to_vec::<f64>().unwrap(), kept);
    let want = ((1.5f64).sin() * 2.0).exp();
    assert!(second
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .all(|&v| (v - want).abs() < 1e-12));
    // the caller drops `second`: the run after next reuses its buffer
    let second_ptr = ptr(&second);
    drop(second);
    let third = ex.run_with_inputs(&p, &[(&x, input(0.5))]).unwrap();
    assert_eq!(ptr(&third), second_ptr);
    assert_eq!(third.to_vec::<f64>().unwrap(), kept);
}
