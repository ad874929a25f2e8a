//! Eager gradients equal traced gradients: random programs (real, complex, and linalg
//! through `EagerTensorLinalgExt`) are run in both modes; `backward()`, the functional
//! `grad_many` and `jvp` must agree with `AdContext::grad_many` / `jvp` compiled and run by
//! a `GraphExecutor`.

use num_complex::Complex64;
use proptest::prelude::*;
use tenferro_ad::{AdContext, EagerContext, EagerTensor};
use tenferro_cpu::CpuBackend;
use tenferro_linalg::{EagerTensorLinalgExt, TracedTensorLinalgExt};
use tenferro_runtime::{GraphCompiler, GraphExecutor, Tensor, TracedTensor};

/// One step of a random program over values of shape [3, 2]. Operands index earlier
/// values (modulo their count); `w` is a second input of shape [2] (broadcast), `c` an
/// untracked constant [2, 2].
#[derive(Clone, Debug)]
enum Step {
    Sin(usize),
    Tanh(usize),
    ExpHalf(usize),
    Square(usize),
    Conj(usize),
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    DivSoft(usize, usize),
    Max(usize, usize),
    AddW(usize),
    MulW(usize),
    Scale(usize, i8),
    MatmulC(usize),
    SumBack(usize),
}

fn step(complex: bool) -> impl Strategy<Value = Step> {
    let i = 0usize..8;
    let real_only = prop_oneof![
        i.clone().prop_map(Step::Tanh),
        (i.clone(), i.clone()).prop_map(|(a, b)| Step::Max(a, b)),
        (i.clone(), i.clone()).prop_map(|(a, b)| Step::DivSoft(a, b)),
    ];
    let common = prop_oneof![
        i.clone().prop_map(Step::Sin),
        i.clone().prop_map(Step::ExpHalf),
        i.clone().prop_map(Step::Square),
        i.clone().prop_map(Step::Conj),
        (i.clone(), i.clone()).prop_map(|(a, b)| Step::Add(a, b)),
        (i.clone(), i.clone()).prop_map(|(a, b)| Step::Sub(a, b)),
        (i.clone(), i.clone()).prop_map(|(a, b)| Step::Mul(a, b)),
        i.clone().prop_map(Step::AddW),
        i.clone().prop_map(Step::MulW),
        (i.clone(), -3i8..3).prop_map(|(a, s)| Step::Scale(a, s)),
        i.clone().prop_map(Step::MatmulC),
        i.clone().prop_map(Step::SumBack),
    ];
    if complex {
        common.boxed()
    } else {
        prop_oneof![common, real_only].boxed()
    }
}

fn traced_step(s: &Step, v: &[TracedTensor], w: &TracedTensor, c: &TracedTensor) -> TracedTensor {
    let g = |i: &usize| &v[i % v.len()];
    match s {
        Step::Sin(a) => g(a).sin(),
        Step::Tanh(a) => g(a).tanh(),
        Step::ExpHalf(a) => (g(a) * 0.5).exp(),
        Step::Square(a) => g(a) * g(a),
        Step::Conj(a) => g(a).conj(),
        Step::Add(a, b) => g(a) + g(b),
        Step::Sub(a, b) => g(a) - g(b),
        Step::Mul(a, b) => g(a) * g(b),
        Step::DivSoft(a, b) => g(a) / (1.0 + &(g(b) * g(b))),
        Step::Max(a, b) => g(a).maximum(g(b)),
        Step::AddW(a) => g(a) + w,
        Step::MulW(a) => g(a) * w,
        Step::Scale(a, k) => *k as f64 * g(a),
        Step::MatmulC(a) => g(a).matmul(c).unwrap(),
        Step::SumBack(a) => g(a).reduce_sum(&[0]).broadcast_to(&[3, 2]).unwrap(),
    }
}

fn eager_step(
    s: &Step,
    v: &[EagerTensor],
    w: &EagerTensor,
    c: &EagerTensor,
) -> tenferro_ad::Result<EagerTensor> {
    let g = |i: &usize| &v[i % v.len()];
    match s {
        Step::Sin(a) => g(a).sin(),
        Step::Tanh(a) => g(a).tanh(),
        Step::ExpHalf(a) => (g(a) * 0.5).exp(),
        Step::Square(a) => Ok(g(a) * g(a)),
        Step::Conj(a) => g(a).conj(),
        Step::Add(a, b) => Ok(g(a) + g(b)),
        Step::Sub(a, b) => Ok(g(a) - g(b)),
        Step::Mul(a, b) => Ok(g(a) * g(b)),
        Step::DivSoft(a, b) => Ok(g(a) / (1.0 + (g(b) * g(b)))),
        Step::Max(a, b) => g(a).maximum(g(b)),
        Step::AddW(a) => Ok(g(a) + w),
        Step::MulW(a) => Ok(g(a) * w),
        Step::Scale(a, k) => Ok(*k as f64 * g(a)),
        Step::MatmulC(a) => g(a).matmul(c),
        Step::SumBack(a) => g(a).reduce_sum(&[0])?.broadcast_to(&[3, 2]),
    }
}

/// The loss: real for complex values (`Σ |v|² + Σ imag(v)`), `Σ v·v + Σ v` for reals.
fn traced_program(
    steps: &[Step],
    x: &TracedTensor,
    w: &TracedTensor,
    c: &TracedTensor,
) -> TracedTensor {
    let mut v = vec![x.clone()];
    for s in steps {
        let y = traced_step(s, &v, w, c);
        v.push(y);
    }
    let last = v.last().unwrap();
    (last * &last.conj()).real().sum() + last.imag().sum() + last.real().sum()
}

fn eager_program(
    steps: &[Step],
    x: &EagerTensor,
    w: &EagerTensor,
    c: &EagerTensor,
) -> tenferro_ad::Result<EagerTensor> {
    let mut v = vec![x.clone()];
    for s in steps {
        let y = eager_step(s, &v, w, c)?;
        v.push(y);
    }
    let last = v.last().unwrap();
    let a = (last * &last.conj()?).real()?.sum()?;
    let b = last.imag()?.sum()?;
    let d = last.real()?.sum()?;
    Ok((&a + &b) + d)
}

fn run_traced(outs: &[&TracedTensor]) -> Vec<Tensor> {
    let program = GraphCompiler::new().compile_many(outs).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::with_threads(1));
    ex.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    ex.run_many(&program).unwrap()
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.ty(), b.ty(), "{what}");
    let n = a.numel();
    for i in 0..n {
        let (x, y) = (a.data().get_c64(i), b.data().get_c64(i));
        assert!(
            (x - y).norm() <= 1e-9 * (1.0 + y.norm()),
            "{what}: element {i}: eager {x} vs traced {y}\n{a:?}\n{b:?}"
        );
    }
}

fn f64s(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-1.5f64..1.5, n)
}

fn check(steps: &[Step], x: Tensor, w: Tensor, c: Tensor, t: Tensor) {
    // Traced.
    let (xt, wt, ct) = (
        TracedTensor::from_tensor(x.clone()),
        TracedTensor::from_tensor(w.clone()),
        TracedTensor::from_tensor(c.clone()),
    );
    let ad = AdContext::new();
    let loss = traced_program(steps, &xt, &wt, &ct);
    let g = ad.grad_many(&loss, &[&xt, &wt]).unwrap();
    let tt = TracedTensor::from_tensor(t.clone());
    let jv = ad.jvp(&loss, &xt, &tt).unwrap();
    let want = run_traced(&[&loss, &g[0], &g[1], &jv]);
    // Eager backward (twice: the second run takes the cached program and accumulates).
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let xe = ctx.from_tensor(x).requires_grad(true);
    let we = ctx.from_tensor(w).requires_grad(true);
    let ce = ctx.from_tensor(c);
    let le = eager_program(steps, &xe, &we, &ce).unwrap();
    assert_close(&le.value().unwrap(), &want[0], "loss");
    le.backward().unwrap();
    assert_close(&xe.grad().unwrap(), &want[1], "backward dx");
    // A leaf the loss does not reach keeps no gradient (as PyTorch); traced gives zeros.
    match we.grad() {
        Some(g) => assert_close(&g, &want[2], "backward dw"),
        None => assert_close(&Tensor::zeros(&want[2].ty()), &want[2], "unreached dw"),
    }
    let compiled = ctx.stats().transforms_compiled;
    le.backward().unwrap();
    assert_eq!(
        ctx.stats().transforms_compiled,
        compiled,
        "second backward recompiled"
    );
    let twice = |t: &Tensor| {
        let e = ctx.from_tensor(t.clone());
        (&e + &e).value().unwrap()
    };
    assert_close(&xe.grad().unwrap(), &twice(&want[1]), "accumulated dx");
    // Functional forms.
    let gs = ctx
        .grad_many(|v| eager_program(steps, &v[0], &v[1], &ce), &[&xe, &we])
        .unwrap();
    assert_close(&gs[0].value().unwrap(), &want[1], "grad_many dx");
    assert_close(&gs[1].value().unwrap(), &want[2], "grad_many dw");
    let te = ctx.from_tensor(t);
    let (y, dy) = ctx
        .jvp(|x| eager_program(steps, x, &we, &ce), &xe, &te)
        .unwrap();
    assert_close(&y.value().unwrap(), &want[0], "jvp primal");
    assert_close(&dy.value().unwrap(), &want[3], "jvp tangent");
}

fn complex(v: &[f64]) -> Vec<Complex64> {
    v.chunks(2).map(|p| Complex64::new(p[0], p[1])).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn real_programs(
        steps in prop::collection::vec(step(false), 1..7),
        x in f64s(6), w in f64s(2), c in f64s(4), t in f64s(6),
    ) {
        let x = Tensor::from_vec_col_major(vec![3, 2], x).unwrap();
        let w = Tensor::from_vec_col_major(vec![2], w).unwrap();
        let c = Tensor::from_vec_col_major(vec![2, 2], c).unwrap();
        let t = Tensor::from_vec_col_major(vec![3, 2], t).unwrap();
        check(&steps, x, w, c, t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn complex_programs(
        steps in prop::collection::vec(step(true), 1..6),
        x in f64s(12), w in f64s(4), c in f64s(8), t in f64s(12),
    ) {
        let x = Tensor::from_vec_col_major(vec![3, 2], complex(&x)).unwrap();
        let w = Tensor::from_vec_col_major(vec![2], complex(&w)).unwrap();
        let c = Tensor::from_vec_col_major(vec![2, 2], complex(&c)).unwrap();
        let t = Tensor::from_vec_col_major(vec![3, 2], complex(&t)).unwrap();
        check(&steps, x, w, c, t);
    }
}

fn linalg_ad() -> AdContext {
    AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules().unwrap())
        .build()
        .unwrap()
}

/// `Σ chol(A)·C + Σ solve(A, b) + log|det A|` with `A = M Mᵀ + 3I`.
fn traced_linalg(m: &TracedTensor, b: &TracedTensor, c: &TracedTensor) -> TracedTensor {
    let eye = TracedTensor::from_vec_col_major(
        vec![3, 3],
        vec![3.0_f64, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 3.0],
    );
    let a = &m.matmul(&m.t().unwrap()).unwrap() + &eye;
    let l = a.cholesky().unwrap();
    let x = a.solve(b).unwrap();
    let (_, logdet) = a.slogdet().unwrap();
    (&l * c).sum() + x.sum() + logdet
}

fn eager_linalg(
    m: &EagerTensor,
    b: &EagerTensor,
    c: &EagerTensor,
) -> tenferro_ad::Result<EagerTensor> {
    let eye = m.context().from_vec_col_major(
        vec![3, 3],
        vec![3.0_f64, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 3.0],
    )?;
    let a = m.matmul(&m.t()?)? + &eye;
    let l = a.cholesky()?;
    let x = a.solve(b)?;
    let (_, logdet) = a.slogdet()?;
    Ok((&l * c).sum()? + x.sum()? + logdet)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn linalg_programs(m in f64s(9), b in f64s(3), c in f64s(9)) {
        let m = Tensor::from_vec_col_major(vec![3, 3], m).unwrap();
        let b = Tensor::from_vec_col_major(vec![3], b).unwrap();
        let c = Tensor::from_vec_col_major(vec![3, 3], c).unwrap();
        let (mt, bt, ct) = (
            TracedTensor::from_tensor(m.clone()),
            TracedTensor::from_tensor(b.clone()),
            TracedTensor::from_tensor(c.clone()),
        );
        let ad = linalg_ad();
        let loss = traced_linalg(&mt, &bt, &ct);
        let g = ad.grad_many(&loss, &[&mt, &bt]).unwrap();
        let want = run_traced(&[&loss, &g[0], &g[1]]);

        let ctx = EagerContext::with_ad_context(CpuBackend::with_threads(1), linalg_ad());
        ctx.register_extension(tenferro_linalg::register_runtime).unwrap();
        let me = ctx.from_tensor(m).requires_grad(true);
        let be = ctx.from_tensor(b).requires_grad(true);
        let ce = ctx.from_tensor(c);
        let le = eager_linalg(&me, &be, &ce).unwrap();
        assert_close(&le.value()?, &want[0], "linalg loss");
        le.backward().unwrap();
        assert_close(&me.grad().unwrap(), &want[1], "linalg dm");
        assert_close(&be.grad().unwrap(), &want[2], "linalg db");
        let gs = ctx.grad_many(|v| eager_linalg(&v[0], &v[1], &ce), &[&me, &be]).unwrap();
        assert_close(&gs[0].value()?, &want[1], "linalg grad_many dm");
    }
}

/// Structural and indexing ops: eager backward equals traced grad.
#[test]
fn structural_ops() {
    use tenferro_runtime::DType;
    let xd: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).sin()).collect();
    let x = Tensor::from_vec_col_major(vec![3, 4], xd).unwrap();
    let idx = Tensor::from_vec_col_major(vec![5], vec![2_i64, 0, 3, 3, 1]).unwrap();
    let traced = |x: &TracedTensor, i: &TracedTensor| -> TracedTensor {
        let g = x.gather(i, 1).unwrap(); // [3, 5]
        let s = x.scatter_add(i, &(&g * 2.0), 1).unwrap(); // [3, 4]
        let p = s
            .pad(&[1, 0], &[0, 2], 0.5)
            .unwrap()
            .slice(&[0, 1], &[4, 5])
            .unwrap(); // [4, 4]
        let c = TracedTensor::concatenate(&[&p, x], 0).unwrap(); // [7, 4]
        let r = c.reshape(&[4, 7]).unwrap().transpose(&[1, 0]).unwrap(); // [7, 4]
        let d = r
            .dot_general(
                x,
                tenferro_ir::DotDims {
                    lhs_contract: vec![1],
                    rhs_contract: vec![1],
                    ..Default::default()
                },
            )
            .unwrap(); // [7, 3]
        let m = d.greater(&d.reduce_mean(&[0]));
        let sel = TracedTensor::select(&m, &d, &d.tanh());
        let z = sel.convert(DType::C64).unwrap();
        (&z * &z).real().reduce_max(&[1]).sum()
            + x.broadcast_in_dim(&[2, 3, 4], &[1, 2])
                .unwrap()
                .reduce_prod(&[0])
                .sum()
    };
    let eager = |x: &EagerTensor, i: &EagerTensor| -> tenferro_ad::Result<EagerTensor> {
        let g = x.gather(i, 1)?;
        let s = x.scatter_add(i, &(&g * 2.0), 1)?;
        let p = s.pad(&[1, 0], &[0, 2], 0.5)?.slice(&[0, 1], &[4, 5])?;
        let c = EagerTensor::concatenate(&[&p, x], 0)?;
        let r = c.reshape(&[4, 7])?.transpose(&[1, 0])?;
        let d = r.dot_general(
            x,
            tenferro_ir::DotDims {
                lhs_contract: vec![1],
                rhs_contract: vec![1],
                ..Default::default()
            },
        )?;
        let m = d.greater(&d.reduce_mean(&[0])?)?;
        let sel = EagerTensor::select(&m, &d, &d.tanh()?)?;
        let z = sel.convert(DType::C64)?;
        Ok((&z * &z).real()?.reduce_max(&[1])?.sum()?
            + x.broadcast_in_dim(&[2, 3, 4], &[1, 2])?
                .reduce_prod(&[0])?
                .sum()?)
    };
    let xt = TracedTensor::from_tensor(x.clone());
    let it = TracedTensor::from_tensor(idx.clone());
    let loss = traced(&xt, &it);
    let g = AdContext::new().grad(&loss, &xt).unwrap();
    let want = run_traced(&[&loss, &g]);
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let xe = ctx.from_tensor(x).requires_grad(true);
    let ie = ctx.from_tensor(idx);
    let le = eager(&xe, &ie).unwrap();
    assert_close(&le.value().unwrap(), &want[0], "structural loss");
    le.backward().unwrap();
    assert_close(&xe.grad().unwrap(), &want[1], "structural dx");
}
