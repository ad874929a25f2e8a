//! Memory of reverse-mode programs: the gradient of many small slices of one value must
//! stay linear in the number of slices, not materialise one full-size cotangent per slice.

use tenferro_ad::TracedTensorAdExt;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::ir::Function;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};

/// `x` of length `n` with distinct values, and `loss = Σ_i sin(x[i..i+1])²` built from
/// `n` single-element slices.
fn slices_loss(n: usize) -> (TracedTensor, TracedTensor, Vec<f64>) {
    let xs: Vec<f64> = (0..n).map(|i| 0.001 * i as f64 - 0.7).collect();
    let x = TracedTensor::input(DType::F64, &[n]);
    let mut loss: Option<TracedTensor> = None;
    for i in 0..n {
        let s = x.slice(&[i], &[i + 1]).expect("slice").sin();
        let term = (&s * &s).sum();
        loss = Some(match loss {
            None => term,
            Some(l) => &l + &term,
        });
    }
    (x, loss.expect("n > 0"), xs)
}

/// Total bytes of every instruction result of `f`.
fn result_bytes(f: &Function) -> usize {
    f.insts()
        .iter()
        .flat_map(|inst| inst.results.iter())
        .map(|&r| f.ty(r).size_bytes())
        .sum()
}

#[test]
fn gradient_of_many_single_element_slices_is_linear_in_memory() {
    let n = 2000;
    let (x, loss, xs) = slices_loss(n);
    let g = loss.grad(&x).expect("grad");
    let program = GraphCompiler::new().compile(&g).expect("compile");
    let bytes = result_bytes(program.function());
    assert!(
        bytes < 100 * n * 8,
        "the gradient program of {n} slices computes {bytes} bytes of results"
    );
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let peak = ex.prepare(&program).expect("prepare").peak_bytes();
    assert!(
        peak < 100 * n * 8,
        "peak bytes {peak} of the gradient of {n} slices"
    );
    let xt = Tensor::from_vec_col_major(vec![n], xs.clone()).expect("tensor");
    let got = ex.run_with_inputs(&program, &[(&x, xt)]).expect("run");
    let got = got.as_slice::<f64>().expect("f64");
    for (i, (&gi, &xi)) in got.iter().zip(&xs).enumerate() {
        // d/dx sin(x)² = 2 sin x cos x
        let want = 2.0 * xi.sin() * xi.cos();
        assert!(
            (gi - want).abs() <= 1e-12 * (1.0 + want.abs()),
            "gradient #{i}: {gi} != {want}"
        );
    }
}
