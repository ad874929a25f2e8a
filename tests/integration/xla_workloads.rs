//! The benchmark workloads W1–W7 (the programs of `examples/bench_suite.rs` at small sizes)
//! and the autodiff guide's headline programs on the XLA backend, against the CPU backend.
//! SKIPs (passes with a note) when TENFERRO_PJRT_PLUGIN is unset; `.ci/run` sets it.
//!
//! Tolerance: `1e-10 · (1 + |cpu|)` per element for f64 / c64 and `1e-4 · (1 + |cpu|)` for
//! f32 (XLA's transcendental functions and summation orders differ from the CPU backend's).

use num_complex::Complex64;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_linalg::TracedTensorLinalgExt;
use tenferro_runtime::{DType, Data, GraphCompiler, GraphExecutor, Tensor, TracedTensor};
use tenferro_xla::{XlaBackend, PLUGIN_ENV};

fn xla() -> Option<XlaBackend> {
    if std::env::var_os(PLUGIN_ENV).is_none() {
        eprintln!("SKIP: {PLUGIN_ENV} is not set (pip install xla-cpu-pjrt; see the README)");
        return None;
    }
    Some(XlaBackend::from_env().expect("the plugin named by TENFERRO_PJRT_PLUGIN loads"))
}

/// Deterministic values in [-1, 1).
fn vals(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn input(shape: &[usize], seed: u64, dtype: DType) -> (TracedTensor, Tensor) {
    let n = shape.iter().product();
    let v = vals(seed, n);
    let data = match dtype {
        DType::F32 => Data::F32(v.iter().map(|&x| x as f32).collect()),
        _ => Data::F64(v),
    };
    let t = Tensor::new(shape.to_vec(), data).unwrap();
    (TracedTensor::input(dtype, shape), t)
}

/// Runs `outs` with `inputs` on both backends and compares every output.
fn agree(name: &str, outs: &[&TracedTensor], inputs: &[(TracedTensor, Tensor)]) {
    let Some(xla) = xla() else { return };
    let program = GraphCompiler::new().compile_many(outs).unwrap();
    let bind: Vec<(&TracedTensor, Tensor)> = inputs.iter().map(|(t, v)| (t, v.clone())).collect();
    let mut cpu = GraphExecutor::new(CpuBackend::new());
    cpu.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let want = cpu.run_many_with_inputs(&program, &bind).unwrap();
    let got = GraphExecutor::new(xla)
        .run_many_with_inputs(&program, &bind)
        .unwrap_or_else(|e| panic!("{name} on XLA: {e}"));
    assert_eq!(got.len(), want.len(), "{name}");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.ty(), w.ty(), "{name} output {k}");
        let tol = if matches!(g.dtype(), DType::F32 | DType::C32) {
            1e-4
        } else {
            1e-10
        };
        for i in 0..g.numel() {
            let (a, b) = (g.data().get_c64(i), w.data().get_c64(i));
            assert!(
                (a - b).norm() <= tol * (1.0 + b.norm()),
                "{name} output {k} element {i}: xla {a} vs cpu {b}"
            );
        }
    }
}

fn ad() -> AdContext {
    AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules().unwrap())
        .build()
        .unwrap()
}

#[test]
fn w1_w2_elementwise_gradients() {
    let ad = ad();
    let (x, xv) = input(&[1000], 1, DType::F64);
    let w1 = ad.grad(&(&x * &x).sum(), &x).unwrap();
    let (y0, yv) = input(&[1000], 2, DType::F64);
    let f = ((x.sin() * &y0 + x.cos()).exp() * 0.5 - x.tanh()).sum();
    let w2 = ad.grad(&f, &x).unwrap();
    agree("W1, W2", &[&w1, &f, &w2], &[(x, xv), (y0, yv)]);
}

#[test]
fn w3_mlp_gradients_f64_and_f32() {
    for dtype in [DType::F64, DType::F32] {
        let ad = ad();
        let (b, d) = (8, 16);
        let (xx, xv) = input(&[b, d], 3, dtype);
        let (yy, yv) = input(&[b, d], 4, dtype);
        let params: Vec<(TracedTensor, Tensor)> = (0..3)
            .flat_map(|l| [input(&[d, d], 10 + l, dtype), input(&[d], 20 + l, dtype)])
            .collect();
        let p: Vec<&TracedTensor> = params.iter().map(|(t, _)| t).collect();
        let h1 = (xx.matmul(p[0]).unwrap() + p[1]).tanh();
        let h2 = (h1.matmul(p[2]).unwrap() + p[3]).tanh();
        let out = h2.matmul(p[4]).unwrap() + p[5];
        let diff = &out - &yy;
        let loss = (&diff * &diff).reduce_mean(&[0, 1]);
        let grads = ad.grad_many(&loss, &p).unwrap();
        let mut outs: Vec<&TracedTensor> = grads.iter().collect();
        outs.push(&loss);
        let mut inputs = vec![(xx, xv), (yy, yv)];
        inputs.extend(params);
        agree(&format!("W3 {dtype}"), &outs, &inputs);
    }
}

#[test]
fn w4_matmul_and_its_vjp() {
    let ad = ad();
    let (a, av) = input(&[12, 7], 5, DType::F64);
    let (b, bv) = input(&[7, 9], 6, DType::F64);
    let (g, gv) = input(&[12, 9], 7, DType::F64);
    let c = a.matmul(&b).unwrap();
    let grads = ad.vjp_many(&c, &[&a, &b], &g).unwrap();
    agree(
        "W4",
        &[&c, &grads[0], &grads[1]],
        &[(a, av), (b, bv), (g, gv)],
    );
}

#[test]
fn w5_hessian_vector_product() {
    let ad = ad();
    let n = 20;
    let (a, av) = input(&[n, n], 8, DType::F64);
    let (x, xv) = input(&[n], 9, DType::F64);
    let (v, vv) = input(&[n], 10, DType::F64);
    let t = a.matmul(&x).unwrap().tanh();
    let f = (&t * &t).sum();
    let g = ad.grad(&f, &x).unwrap();
    let h = ad.jvp(&g, &x, &v).unwrap();
    agree("W5", &[&g, &h], &[(a, av), (x, xv), (v, vv)]);
}

#[test]
fn w6_cholesky_and_its_gradient() {
    let ad = ad();
    let n = 6;
    let m = vals(11, n * n);
    let mut spd = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            spd[i + j * n] = (0..n).map(|k| m[i + k * n] * m[j + k * n]).sum::<f64>()
                + if i == j { n as f64 } else { 0.0 };
        }
    }
    let av = Tensor::from_vec_col_major(vec![n, n], spd).unwrap();
    let a = TracedTensor::input(DType::F64, &[n, n]);
    let l = a.cholesky().unwrap();
    let g = ad.grad(&l.sum(), &a).unwrap();
    agree("W6", &[&l, &g], &[(a, av)]);
}

#[test]
fn w7_complex_gradient() {
    let ad = ad();
    let n = 500;
    let (re, im) = (vals(12, n), vals(13, n));
    let zv = Tensor::new(
        vec![n],
        Data::C64(
            re.iter()
                .zip(&im)
                .map(|(&r, &i)| Complex64::new(r, i))
                .collect(),
        ),
    )
    .unwrap();
    let z = TracedTensor::input(DType::C64, &[n]);
    let a = (&z * &z).abs();
    let g = ad.grad(&(&a * &a).sum(), &z).unwrap();
    agree("W7", &[&g], &[(z, zv)]);
}

#[test]
fn guide_programs_grad_hvp_and_complex_grad() {
    // The autodiff guide's headline computations: grad of Σx², jvp(grad f) as an HVP, and
    // the gradient of |z|² at 3+4i (6+8i in this project's convention).
    let ad = ad();
    let (x, xv) = input(&[3], 14, DType::F64);
    let (v, vv) = input(&[3], 15, DType::F64);
    let f = (&x * &x * &x).sum();
    let g = ad.grad(&f, &x).unwrap();
    let hvp = ad.jvp(&g, &x, &v).unwrap();
    let z = TracedTensor::input(DType::C64, &[1]);
    let zv = Tensor::new(vec![1], Data::C64(vec![Complex64::new(3.0, 4.0)])).unwrap();
    let gz = ad.grad(&(&z * &z.conj()).real().sum(), &z).unwrap();
    agree("guide", &[&g, &hvp, &gz], &[(x, xv), (v, vv), (z, zv)]);
}
