//! Wrong answers found by the attack run, each checked against the reference evaluator or a
//! closed form: a product read through a transpose, long products, gradients that ignore
//! their input.

use tenferro_ad::{AdContext, EagerContext};
use tenferro_cpu::CpuBackend;
use tenferro_ir::{eval::eval, DType, DotDims, Tensor};
use tenferro_passes::OptLevel;
use tenferro_runtime::{CompileOptions, GraphCompiler, GraphExecutor, TracedTensor};

fn levels() -> [OptLevel; 3] {
    [OptLevel::O0, OptLevel::O1, OptLevel::O2]
}

/// Runs `y` at every opt level, 1 and 2 threads, fused and not, binding `inputs`, and
/// checks every result against the reference evaluator on the unoptimised program.
fn run_everywhere(y: &TracedTensor, inputs: &[(&TracedTensor, Tensor)]) -> Vec<f64> {
    let p0 = GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O0))
        .compile(y)
        .unwrap();
    let args: Vec<Tensor> = p0
        .inputs()
        .iter()
        .map(|p| {
            inputs
                .iter()
                .find(|(t, _)| t.same_as(p))
                .expect("every placeholder is bound")
                .1
                .clone()
        })
        .collect();
    let want = eval(p0.function(), &args).unwrap().remove(0);
    let want = want.to_vec::<f64>().unwrap();
    for level in levels() {
        let p = GraphCompiler::with_options(CompileOptions::new().opt_level(level))
            .compile(y)
            .unwrap();
        for threads in [1, 2] {
            for fusion in [true, false] {
                let backend = CpuBackend::with_threads(threads).with_fusion(fusion);
                let got = GraphExecutor::new(backend)
                    .run_with_inputs(&p, inputs)
                    .unwrap()
                    .to_vec::<f64>()
                    .unwrap();
                assert_eq!(
                    got, want,
                    "{level:?}, {threads} threads, fusion {fusion}:\n{p}"
                );
            }
        }
    }
    want
}

fn seq(n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|i| (i as f64 + 1.0) * scale).collect()
}

#[test]
fn transpose_of_a_product_whose_free_axes_come_from_one_operand() {
    let a = TracedTensor::input(DType::F64, &[3, 4, 2]);
    let w = TracedTensor::input(DType::F64, &[2]);
    let dims = DotDims {
        lhs_contract: vec![2],
        rhs_contract: vec![0],
        ..Default::default()
    };
    let y = a.dot_general(&w, dims).unwrap().t().unwrap();
    let av = Tensor::from_vec_col_major(vec![3, 4, 2], seq(24, 0.5)).unwrap();
    let wv = Tensor::from_vec_col_major(vec![2], vec![1.0, -0.5]).unwrap();
    let got = run_everywhere(&y, &[(&a, av.clone()), (&w, wv.clone())]);
    // y[j, i] = Σ_k a[i, j, k] w[k], column-major [4, 3]
    let a_ = av.to_vec::<f64>().unwrap();
    let w_ = [1.0, -0.5];
    for i in 0..3 {
        for j in 0..4 {
            let v: f64 = (0..2).map(|k| a_[i + 3 * j + 12 * k] * w_[k]).sum();
            assert_eq!(got[j + 4 * i], v);
        }
    }
    // the same with the vector on the left: both free axes from the rhs
    let dims = DotDims {
        lhs_contract: vec![0],
        rhs_contract: vec![2],
        ..Default::default()
    };
    let y = w.dot_general(&a, dims).unwrap().t().unwrap();
    run_everywhere(&y, &[(&a, av), (&w, wv)]);
}

#[test]
fn gradient_of_traces_is_the_transpose() {
    let ad = AdContext::new();
    let a = TracedTensor::input(DType::F64, &[3, 3]);
    let x = TracedTensor::input(DType::F64, &[3, 3]);
    let av = Tensor::from_vec_col_major(vec![3, 3], seq(9, 1.0)).unwrap();
    let xv = Tensor::from_vec_col_major(vec![3, 3], seq(9, 0.25)).unwrap();
    let tr = |l: &TracedTensor, r: &TracedTensor| {
        l.dot_general(
            r,
            DotDims {
                lhs_contract: vec![0, 1],
                rhs_contract: vec![1, 0],
                ..Default::default()
            },
        )
        .unwrap()
    };
    // d tr(A X) / dX = Aᵀ
    let g = ad.grad(&tr(&a, &x), &x).unwrap();
    let got = run_everywhere(&g, &[(&a, av.clone()), (&x, xv.clone())]);
    let a_ = av.to_vec::<f64>().unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(got[i + 3 * j], a_[j + 3 * i]);
        }
    }
    // d tr(X X) / dX = 2 Xᵀ
    let g = ad.grad(&tr(&x, &x), &x).unwrap();
    let got = run_everywhere(&g, &[(&x, xv.clone())]);
    let x_ = xv.to_vec::<f64>().unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(got[i + 3 * j], 2.0 * x_[j + 3 * i]);
        }
    }
    // and in eager mode
    let ctx = EagerContext::new(CpuBackend::new());
    let xe = ctx.from_tensor(xv).requires_grad(true);
    let l = xe
        .dot_general(
            &xe,
            DotDims {
                lhs_contract: vec![0, 1],
                rhs_contract: vec![1, 0],
                ..Default::default()
            },
        )
        .unwrap();
    l.backward().unwrap();
    let g = xe.grad().unwrap().to_vec::<f64>().unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(g[i + 3 * j], 2.0 * x_[j + 3 * i]);
        }
    }
}

#[test]
fn gradient_that_does_not_read_its_input_accepts_that_input() {
    let x = TracedTensor::input(DType::F64, &[3]);
    let w = TracedTensor::input(DType::F64, &[3]);
    let g = AdContext::new().grad(&(&x * &w).sum(), &x).unwrap();
    let p = GraphCompiler::new().compile(&g).unwrap();
    let xv = Tensor::from_vec_col_major(vec![3], vec![1.0, 2.0, 3.0]).unwrap();
    let wv = Tensor::from_vec_col_major(vec![3], vec![4.0, 5.0, 6.0]).unwrap();
    let got = GraphExecutor::new(CpuBackend::new())
        .run_with_inputs(&p, &[(&x, xv), (&w, wv)])
        .unwrap();
    assert_eq!(got.to_vec::<f64>().unwrap(), vec![4.0, 5.0, 6.0]);
}

/// The sequential product, for comparison.
fn sequential_product(v: &[f64]) -> f64 {
    v.iter().product()
}

#[test]
fn long_products_that_reach_zero_are_zero_not_nan() {
    for n in [1024usize, 3073, 5000] {
        let data: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let x = TracedTensor::input(DType::F64, &[n]);
        let y = x.reduce_prod(&[0]);
        let xv = Tensor::from_vec_col_major(vec![n], data.clone()).unwrap();
        let got = run_everywhere(&y, &[(&x, xv)]);
        assert_eq!(got, vec![sequential_product(&data)], "n = {n}");
        assert_eq!(got, vec![0.0]);
    }
    // a product that overflows in part, then comes back: (1e200)^k (1e-200)^k
    let n = 64;
    let data: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { 1e200 } else { 1e-200 })
        .collect();
    let x = TracedTensor::input(DType::F64, &[n]);
    let xv = Tensor::from_vec_col_major(vec![n], data.clone()).unwrap();
    let got = run_everywhere(&x.reduce_prod(&[0]), &[(&x, xv)]);
    let want = sequential_product(&data);
    assert!(want.is_finite());
    assert!(
        (got[0] - want).abs() <= 1e-12 * want.abs(),
        "{got:?} vs {want}"
    );
}

#[test]
fn long_f32_products_match_the_sequential_product() {
    for n in [1024usize, 2000] {
        let data: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let x = TracedTensor::input(DType::F32, &[n]);
        let p = GraphCompiler::new().compile(&x.reduce_prod(&[0])).unwrap();
        let xv = Tensor::from_vec_col_major(vec![n], data).unwrap();
        for threads in [1, 2] {
            let got = GraphExecutor::new(CpuBackend::with_threads(threads))
                .run_with_inputs(&p, &[(&x, xv.clone())])
                .unwrap();
            assert_eq!(got.to_vec::<f32>().unwrap(), vec![0.0f32]);
        }
    }
    // factors that overflow a lane's partial product but not the whole product
    let data: Vec<f32> = (0..600)
        .map(|i| if i % 2 == 0 { 1e30 } else { 1e-30 })
        .collect();
    let want: f32 = data.iter().product();
    assert!(want.is_finite() && want > 0.5);
    let x = TracedTensor::input(DType::F32, &[600]);
    let p = GraphCompiler::new().compile(&x.reduce_prod(&[0])).unwrap();
    let xv = Tensor::from_vec_col_major(vec![600], data).unwrap();
    let got = GraphExecutor::new(CpuBackend::new())
        .run_with_inputs(&p, &[(&x, xv)])
        .unwrap()
        .to_vec::<f32>()
        .unwrap()[0];
    assert!((got - want).abs() <= 1e-4 * want.abs(), "{got} vs {want}");
}

/// A product whose terms are all -0 is +0 (every dot_general sum starts at +0, as the
/// reference evaluator's does), on every kernel path, f64 and c64: faer's small,
/// matrix-vector, rank-1 and complex products stored -0, which `rsqrt` turns into -inf
/// where the reference gives +inf (found by the differential fuzzer).
#[test]
fn products_of_negative_zeros_are_positive_zero() {
    use num_complex::Complex64;
    let dims = |lb: &[usize], rb: &[usize], lc: &[usize], rc: &[usize]| DotDims {
        lhs_batch: lb.to_vec(),
        rhs_batch: rb.to_vec(),
        lhs_contract: lc.to_vec(),
        rhs_contract: rc.to_vec(),
    };
    let cases: [(&[usize], &[usize], DotDims); 12] = [
        (&[3], &[2], DotDims::default()),
        (&[3, 1], &[1, 2], DotDims::matmul()),
        (&[3, 2], &[2, 2], DotDims::matmul()),
        (&[300], &[200], DotDims::default()),
        (&[300, 2], &[2, 200], DotDims::matmul()),
        (&[300, 64], &[64, 200], DotDims::matmul()),
        (&[40, 5], &[5], dims(&[], &[], &[1], &[0])),
        (&[5], &[5], dims(&[], &[], &[0], &[0])),
        (&[32, 6], &[32, 7], dims(&[0], &[0], &[], &[])),
        (&[32, 6, 5], &[32, 5, 7], dims(&[0], &[0], &[2], &[1])),
        (&[6, 32], &[7, 32], dims(&[1], &[1], &[], &[])),
        (&[6, 3, 32], &[3, 7, 32], dims(&[2], &[2], &[1], &[0])),
    ];
    for complex in [false, true] {
        let dt = if complex { DType::C64 } else { DType::F64 };
        let value = |shape: &[usize], v: f64| {
            let n = shape.iter().product();
            if complex {
                Tensor::from_vec_col_major(shape.to_vec(), vec![Complex64::new(v, v); n])
            } else {
                Tensor::from_vec_col_major(shape.to_vec(), vec![v; n])
            }
            .unwrap()
        };
        // Sign bits of every real and imaginary part.
        let signs = |t: &Tensor| -> Vec<bool> {
            if complex {
                let z = t.to_vec::<Complex64>().unwrap();
                z.iter()
                    .flat_map(|z| [z.re.is_sign_negative(), z.im.is_sign_negative()])
                    .collect()
            } else {
                let x = t.to_vec::<f64>().unwrap();
                x.iter().map(|x| x.is_sign_negative()).collect()
            }
        };
        for (ls, rs, d) in &cases {
            let (l, r) = (TracedTensor::input(dt, ls), TracedTensor::input(dt, rs));
            let (lv, rv) = (value(ls, -0.0), value(rs, 1.0));
            let y = l.dot_general(&r, d.clone()).unwrap();
            let p0 = GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O0))
                .compile(&y)
                .unwrap();
            let want = eval(p0.function(), &[lv.clone(), rv.clone()]).unwrap();
            assert!(
                !signs(&want[0]).contains(&true),
                "reference, {ls:?} {rs:?} {d:?}"
            );
            for level in levels() {
                let p = GraphCompiler::with_options(CompileOptions::new().opt_level(level))
                    .compile(&y)
                    .unwrap();
                for threads in [1, 2] {
                    for fusion in [true, false] {
                        let backend = CpuBackend::with_threads(threads).with_fusion(fusion);
                        let got = GraphExecutor::new(backend)
                            .run_with_inputs(&p, &[(&l, lv.clone()), (&r, rv.clone())])
                            .unwrap();
                        assert!(
                            !signs(&got).contains(&true),
                            "{dt:?} {ls:?} {rs:?} {d:?}: {level:?}, {threads} threads, fusion {fusion}"
                        );
                    }
                }
            }
        }
    }
}
