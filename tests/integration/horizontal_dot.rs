//! Horizontal fusion of products sharing an operand (the `hdot` pass, O2) on a
//! Hessian-vector product: `A·x` and `A·v` become one product, and the values match the
//! unoptimised program's (to rounding: a two-column GEMM may sum in another order) and
//! are the same bits at one and two threads. The CPU backend then runs `A·[x v]`, the
//! elementwise ops and `Aᵀ·w` in one pass over `A` (its `shared_matrix` step), as it does
//! for a logistic regression's gradient.

use tenferro::fuzz::rng::Rng;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_ir::{DType, Op, Tensor};
use tenferro_passes::OptLevel;
use tenferro_runtime::{
    Backend, CompileOptions, GraphCompiler, GraphExecutor, Program, TracedTensor,
};

fn hvp_program(n: usize, level: OptLevel) -> (Program, [TracedTensor; 3]) {
    let ad = AdContext::builder().build().unwrap();
    let a = TracedTensor::input(DType::F64, &[n, n]);
    let x = TracedTensor::input(DType::F64, &[n]);
    let v = TracedTensor::input(DType::F64, &[n]);
    let t = a.matmul(&x).unwrap().tanh();
    let g = ad.grad(&(&t * &t).sum(), &x).unwrap();
    let h = ad.jvp(&g, &x, &v).unwrap();
    let p = GraphCompiler::with_options(CompileOptions::new().opt_level(level))
        .compile(&h)
        .unwrap();
    (p, [a, x, v])
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.uniform(-0.125, 0.125)).collect()
}

fn run(p: &Program, ins: &[TracedTensor; 3], n: usize, threads: usize) -> Vec<f64> {
    let vals = [
        Tensor::from_vec_col_major(vec![n, n], values(n * n, 1)).unwrap(),
        Tensor::from_vec_col_major(vec![n], values(n, 2)).unwrap(),
        Tensor::from_vec_col_major(vec![n], values(n, 3)).unwrap(),
    ];
    let inputs: Vec<(&TracedTensor, Tensor)> = ins.iter().zip(vals).collect();
    GraphExecutor::new(CpuBackend::with_threads(threads))
        .run_with_inputs(p, &inputs)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

#[test]
fn hvp_products_sharing_a_matrix_merge_and_keep_their_values() {
    let n = 300;
    let (o2, ins2) = hvp_program(n, OptLevel::O2);
    let (o0, ins0) = hvp_program(n, OptLevel::O0);
    let dots = |p: &Program| {
        p.function()
            .insts()
            .iter()
            .filter(|i| matches!(i.op, Op::DotGeneral(_)))
            .count()
    };
    assert!(dots(&o0) >= 3, "{}", tenferro_ir::print(o0.function()));
    assert_eq!(dots(&o2), 2, "{}", tenferro_ir::print(o2.function()));
    let want = run(&o0, &ins0, n, 1);
    let got = run(&o2, &ins2, n, 1);
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * scale, "entry {i}: {g} vs {w}");
    }
    let two = run(&o2, &ins2, n, 2);
    assert!(
        got.iter()
            .zip(&two)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "1 and 2 threads differ"
    );
}

/// Whether the CPU backend runs `p` with a `shared_matrix` step.
fn one_pass(p: &Program) -> bool {
    let prepared = CpuBackend::new().prepare(p.function()).unwrap();
    prepared
        .steps()
        .iter()
        .any(|s| s.kernel_name() == "shared_matrix")
}

#[test]
fn an_hvp_and_a_logistic_gradient_read_their_matrix_once() {
    let n = 300;
    let (o2, _) = hvp_program(n, OptLevel::O2);
    assert!(one_pass(&o2));
    // The gradient of Σ log(1 + exp(A·w)) - b·(A·w): Aᵀ·(σ(A·w) - b).
    let (m, k) = (700, 250);
    let grad = |level: OptLevel| {
        let a = TracedTensor::input(DType::F64, &[m, k]);
        let w = TracedTensor::input(DType::F64, &[k]);
        let b = TracedTensor::input(DType::F64, &[m]);
        let z = a.matmul(&w).unwrap();
        let loss = ((z.exp() + 1.0).log() - &b * &z).sum();
        let g = AdContext::builder()
            .build()
            .unwrap()
            .grad(&loss, &w)
            .unwrap();
        let p = GraphCompiler::with_options(CompileOptions::new().opt_level(level))
            .compile(&g)
            .unwrap();
        (p, [a, w, b])
    };
    // `fuse = false` runs each op as its own step (no fused group, so no one-pass step).
    let run_with = |p: &Program, ins: &[TracedTensor; 3], threads: usize, fuse: bool| {
        let vals = [
            Tensor::from_vec_col_major(vec![m, k], values(m * k, 4)).unwrap(),
            Tensor::from_vec_col_major(vec![k], values(k, 5)).unwrap(),
            Tensor::from_vec_col_major(vec![m], values(m, 6)).unwrap(),
        ];
        let inputs: Vec<(&TracedTensor, Tensor)> = ins.iter().zip(vals).collect();
        GraphExecutor::new(CpuBackend::with_threads(threads).with_fusion(fuse))
            .run_with_inputs(p, &inputs)
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
    };
    let run =
        |p: &Program, ins: &[TracedTensor; 3], threads: usize| run_with(p, ins, threads, true);
    let (o2, ins2) = grad(OptLevel::O2);
    let (o0, ins0) = grad(OptLevel::O0);
    assert!(
        one_pass(&o2),
        "{}",
        CpuBackend::new().prepare(o2.function()).unwrap()
    );
    let want = run_with(&o0, &ins0, 1, false);
    let got = run(&o2, &ins2, 1);
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * scale, "entry {i}: {g} vs {w}");
    }
    let two = run(&o2, &ins2, 2);
    assert!(
        got.iter()
            .zip(&two)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "1 and 2 threads differ"
    );
}
