//! The method syntax of `TracedTensorAdExt` gives what `AdContext` gives. (The guide's
//! examples themselves, verbatim, are the root package's `tests/integration/spec_autodiff_guide.rs`.)

use tenferro_ad::{AdContext, TracedTensorAdExt};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

fn run(t: &TracedTensor) -> Vec<f64> {
    let program = GraphCompiler::new().compile(t).unwrap();
    let r = GraphExecutor::new(CpuBackend::new()).run(&program).unwrap();
    r.to_vec::<f64>().unwrap()
}

#[test]
fn method_syntax_matches_the_context() {
    let ad = AdContext::builder().build().unwrap();
    let x = TracedTensor::from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0]);
    let y = (&x * &x).sin();
    let loss = y.reduce_sum(&[0]);
    let t = TracedTensor::from_vec_col_major(vec![3], vec![0.5_f64, -1.0, 2.0]);

    assert_eq!(
        run(&loss.grad(&x).unwrap()),
        run(&ad.grad(&loss, &x).unwrap())
    );
    assert_eq!(
        run(&y.vjp(&x, &t).unwrap()),
        run(&ad.vjp(&y, &x, &t).unwrap())
    );
    assert_eq!(
        run(&y.jvp(&x, &t).unwrap()),
        run(&ad.jvp(&y, &x, &t).unwrap())
    );
    let expected: Vec<f64> = [1.0_f64, 2.0, 3.0]
        .iter()
        .map(|v| 2.0 * v * (v * v).cos())
        .collect();
    assert_eq!(run(&loss.grad(&x).unwrap()), expected);
}
