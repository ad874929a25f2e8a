//! Gradients through einsum against central finite differences (f64 and c64), jvp(grad)
//! against differences of gradients, eager backward = traced grad, and a 10-site MPS
//! norm.

mod common;
use common::*;
use num_complex::Complex64;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_einsum::{einsum, einsum_labels};
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};

/// `loss = Σ w · einsum(subscripts, ops)` with operand `which` a placeholder: its gradient
/// against central differences, and `jvp(grad)` (Hessian-vector product) against
/// differences of gradients.
fn check_grad(subscripts: &str, shapes: &[Vec<usize>], which: usize) {
    let consts: Vec<TracedTensor> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| col(s, noise(s.iter().product(), 11 + k as u64)))
        .collect();
    let x = TracedTensor::input(DType::F64, &shapes[which]);
    let refs: Vec<&TracedTensor> = (0..shapes.len())
        .map(|k| if k == which { &x } else { &consts[k] })
        .collect();
    let y = einsum(subscripts, &refs).unwrap();
    let ys = y.shape().unwrap();
    let w = col(&ys, noise(ys.iter().product(), 5));
    // A nonlinear loss so the Hessian is not zero: (Σ w·y)².
    let s = (&y * &w).sum();
    let loss = &s * &s;
    let ad = AdContext::new();
    let g = ad.grad(&loss, &x).unwrap();
    let n: usize = shapes[which].iter().product();
    let v = col(&shapes[which], noise(n, 77));
    let hv = ad.jvp(&g, &x, &v).unwrap();
    let (pl, pg, ph) = (
        GraphCompiler::new().compile(&loss).unwrap(),
        GraphCompiler::new().compile(&g).unwrap(),
        GraphCompiler::new().compile(&hv).unwrap(),
    );
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let x0 = noise(n, 3);
    let t = |d: Vec<f64>| Tensor::from_vec_col_major(shapes[which].clone(), d).unwrap();
    let mut run = |p, d: Vec<f64>| -> Vec<f64> {
        ex.run_with_inputs(p, &[(&x, t(d))])
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
    };
    let got = run(&pg, x0.clone());
    let got_hv = run(&ph, x0.clone());
    let h = 1e-4;
    let mut fd = Vec::new();
    for k in 0..n {
        let (mut a, mut b) = (x0.clone(), x0.clone());
        a[k] += h;
        b[k] -= h;
        fd.push((run(&pl, a)[0] - run(&pl, b)[0]) / (2.0 * h));
    }
    assert_close(
        &got,
        &fd,
        1e-6,
        &format!("grad of {subscripts} wrt operand {which}"),
    );
    let vd = noise(n, 77);
    let plus: Vec<f64> = x0.iter().zip(&vd).map(|(a, b)| a + h * b).collect();
    let minus: Vec<f64> = x0.iter().zip(&vd).map(|(a, b)| a - h * b).collect();
    let (gp, gm) = (run(&pg, plus), run(&pg, minus));
    let fd_hv: Vec<f64> = gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();
    assert_close(&got_hv, &fd_hv, 1e-6, &format!("jvp(grad) of {subscripts}"));
}

#[test]
fn gradients_by_finite_differences() {
    let cases: Vec<(&str, Vec<Vec<usize>>)> = vec![
        ("ij,jk,kl->il", vec![vec![2, 3], vec![3, 4], vec![4, 2]]),
        ("ijb,jkb->ikb", vec![vec![2, 3, 2], vec![3, 2, 2]]),
        ("ii,ij->j", vec![vec![3, 3], vec![3, 2]]),
        ("i->ii", vec![vec![3]]),
        ("...ij,jk,k->...i", vec![vec![2, 2, 3], vec![3, 2], vec![2]]),
        (
            "abc,cd,da,be->e",
            vec![vec![2, 3, 2], vec![2, 3], vec![3, 2], vec![3, 2]],
        ),
    ];
    for (s, shapes) in &cases {
        for which in 0..shapes.len() {
            check_grad(s, shapes, which);
        }
    }
}

/// Complex operands from real noise (real and imaginary parts interleaved).
fn ccol(shape: &[usize], seed: u64) -> (TracedTensor, Vec<f64>) {
    let n: usize = shape.iter().product();
    let v = noise(2 * n, seed);
    (cz(shape, &v), v)
}

fn cz(shape: &[usize], v: &[f64]) -> TracedTensor {
    let z = v.chunks(2).map(|p| Complex64::new(p[0], p[1])).collect();
    TracedTensor::from_vec_col_major(shape.to_vec(), z)
}

/// `loss = |s|² + Re s` with `s = Σ w · einsum(subscripts, ops)` on c64 operands, one of
/// them (`which`) conjugated in the network when `conj`: the gradient with respect to
/// operand `which` (real part `∂loss/∂Re z`, imaginary part `∂loss/∂Im z`) against
/// central differences of the real and imaginary parts.
fn check_grad_c64(subscripts: &str, shapes: &[Vec<usize>], which: usize, conj: bool) {
    let consts: Vec<TracedTensor> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| ccol(s, 31 + k as u64).0)
        .collect();
    let (_, x0) = ccol(&shapes[which], 9);
    let loss_of = |x: &TracedTensor| {
        let xc = if conj { x.conj() } else { x.clone() };
        let refs: Vec<&TracedTensor> = (0..shapes.len())
            .map(|k| if k == which { &xc } else { &consts[k] })
            .collect();
        let y = einsum(subscripts, &refs).unwrap();
        let w = ccol(&y.shape().unwrap(), 5).0;
        let s = (&y * &w).sum();
        &(&(&s.real() * &s.real()) + &(&s.imag() * &s.imag())) + &s.real()
    };
    let value = |v: &[f64]| -> f64 {
        let l = loss_of(&cz(&shapes[which], v));
        let p = GraphCompiler::new().compile(&l).unwrap();
        let mut ex = GraphExecutor::new(CpuBackend::new());
        ex.run(&p).unwrap().to_vec::<f64>().unwrap()[0]
    };
    let x = cz(&shapes[which], &x0);
    let g = AdContext::new().grad(&loss_of(&x), &x).unwrap();
    let p = GraphCompiler::new().compile(&g).unwrap();
    let got: Vec<f64> = GraphExecutor::new(CpuBackend::new())
        .run(&p)
        .unwrap()
        .to_vec::<Complex64>()
        .unwrap()
        .iter()
        .flat_map(|z| [z.re, z.im])
        .collect();
    let h = 1e-5;
    let fd: Vec<f64> = (0..x0.len())
        .map(|k| {
            let (mut a, mut b) = (x0.clone(), x0.clone());
            a[k] += h;
            b[k] -= h;
            (value(&a) - value(&b)) / (2.0 * h)
        })
        .collect();
    assert_close(
        &got,
        &fd,
        1e-6,
        &format!("c64 grad of {subscripts} wrt operand {which} (conj {conj})"),
    );
}

#[test]
fn complex_gradients_by_finite_differences() {
    let cases: Vec<(&str, Vec<Vec<usize>>)> = vec![
        ("ij,jk->ik", vec![vec![2, 3], vec![3, 2]]),
        ("ijb,jkb->ikb", vec![vec![2, 3, 2], vec![3, 2, 2]]),
        ("ii,ij->j", vec![vec![3, 3], vec![3, 2]]),
        (
            "asb,csd,bd->ac",
            vec![vec![2, 2, 3], vec![2, 2, 3], vec![3, 3]],
        ),
    ];
    for (s, shapes) in &cases {
        for which in 0..shapes.len() {
            for conj in [false, true] {
                check_grad_c64(s, shapes, which, conj);
            }
        }
    }
}

#[test]
fn eager_backward_equals_traced_grad() {
    use tenferro_ad::EagerContext;
    use tenferro_einsum::einsum_eager;
    let ctx = EagerContext::new(CpuBackend::new());
    let (sa, sb) = (vec![3, 4], vec![4, 2]);
    let (da, db) = (noise(12, 1), noise(8, 2));
    let a = ctx
        .from_vec_col_major(sa.clone(), da.clone())
        .unwrap()
        .requires_grad(true);
    let b = ctx.from_vec_col_major(sb.clone(), db.clone()).unwrap();
    let y = einsum_eager("ij,jk->", &[&a, &b]).unwrap();
    y.backward().unwrap();
    let ge = a.grad().unwrap().to_vec::<f64>().unwrap();
    let x = TracedTensor::input(DType::F64, &sa);
    let loss = einsum("ij,jk->", &[&x, &col(&sb, db)]).unwrap();
    let g = AdContext::new().grad(&loss, &x).unwrap();
    let p = GraphCompiler::new().compile(&g).unwrap();
    let gt = GraphExecutor::new(CpuBackend::new())
        .run_with_inputs(&p, &[(&x, Tensor::from_vec_col_major(sa, da).unwrap())])
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_close(&ge, &gt, 1e-12, "eager backward");
}

/// ⟨ψ|ψ⟩ of a 10-site open-boundary MPS (bond 3, physical 2) in one einsum with integer
/// labels, and its gradient with respect to site 4 against finite differences.
#[test]
fn mps_norm_and_gradient() {
    let (l, d, chi) = (10usize, 2usize, 3usize);
    let shape = |k: usize| {
        vec![
            if k == 0 { 1 } else { chi },
            d,
            if k == l - 1 { 1 } else { chi },
        ]
    };
    // ket bonds 0..=l, bra bonds 100.., physical 200..
    let ket: Vec<Vec<usize>> = (0..l).map(|k| vec![k, 200 + k, k + 1]).collect();
    let bra: Vec<Vec<usize>> = (0..l)
        .map(|k| vec![100 + k, 200 + k, 100 + k + 1])
        .collect();
    let labels: Vec<&[usize]> = ket.iter().chain(&bra).map(|v| v.as_slice()).collect();
    let site = 4;
    let x = TracedTensor::input(DType::F64, &shape(site));
    let sites: Vec<TracedTensor> = (0..l)
        .map(|k| col(&shape(k), noise(shape(k).iter().product(), k as u64)))
        .collect();
    let ops: Vec<&TracedTensor> = (0..2 * l)
        .map(|k| if k % l == site { &x } else { &sites[k % l] })
        .collect();
    let norm = einsum_labels(&labels, &[], &ops).unwrap();
    let g = AdContext::new().grad(&norm, &x).unwrap();

    let (pn, pg) = (
        GraphCompiler::new().compile(&norm).unwrap(),
        GraphCompiler::new().compile(&g).unwrap(),
    );
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let n = chi * d * chi;
    let x0 = noise(n, site as u64);
    let t = |v: Vec<f64>| Tensor::from_vec_col_major(shape(site), v).unwrap();
    let mut run = |p, v: Vec<f64>| {
        ex.run_with_inputs(p, &[(&x, t(v))])
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
    };
    let nv = run(&pn, x0.clone())[0];
    // The norm by transfer matrices on the host.
    let data: Vec<Vec<f64>> = (0..l)
        .map(|k| noise(shape(k).iter().product(), k as u64))
        .collect();
    let mut e = vec![1.0]; // [1 x 1] environment
    let mut dim = 1;
    for (k, a) in data.iter().enumerate() {
        let r = shape(k)[2];
        let mut ne = vec![0.0; r * r];
        for i in 0..dim {
            for j in 0..dim {
                for s in 0..d {
                    for p in 0..r {
                        for q in 0..r {
                            ne[p + r * q] += e[i + dim * j]
                                * a[i + dim * (s + d * p)]
                                * a[j + dim * (s + d * q)];
                        }
                    }
                }
            }
        }
        e = ne;
        dim = r;
    }
    assert!(
        (nv - e[0]).abs() <= 1e-12 * e[0].abs(),
        "norm {nv} vs {}",
        e[0]
    );
    let got = run(&pg, x0.clone());
    let h = 1e-5;
    let fd: Vec<f64> = (0..n)
        .map(|k| {
            let (mut a, mut b) = (x0.clone(), x0.clone());
            a[k] += h;
            b[k] -= h;
            (run(&pn, a)[0] - run(&pn, b)[0]) / (2.0 * h)
        })
        .collect();
    assert_close(&got, &fd, 1e-6, "MPS norm gradient");
}
