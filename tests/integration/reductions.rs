//! The everyday reductions (`tenferro_runtime::reductions`): values against hand
//! computation, gradients against central finite differences, eager against traced, and
//! the edge cases (-inf in logsumexp, ties and NaN in argmax, integer means, keepdims,
//! negative axes, bad axes).

use num_complex::Complex64;
use tenferro_ad::{AdContext, EagerContext};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};

pub(crate) fn run(t: &TracedTensor) -> Tensor {
    let p = GraphCompiler::new().compile(t).expect("compile");
    GraphExecutor::new(CpuBackend::new()).run(&p).expect("run")
}

pub(crate) fn f64s(t: &TracedTensor) -> Vec<f64> {
    run(t).to_vec::<f64>().expect("f64 result")
}

pub(crate) fn i64s(t: &TracedTensor) -> Vec<i64> {
    run(t).to_vec::<i64>().expect("i64 result")
}

pub(crate) fn bools(t: &TracedTensor) -> Vec<bool> {
    run(t).to_vec::<bool>().expect("bool result")
}

pub(crate) fn c(shape: &[usize], v: &[f64]) -> TracedTensor {
    TracedTensor::from_vec_col_major(shape.to_vec(), v.to_vec())
}

pub(crate) fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        let ok = (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * (1.0 + y.abs());
        assert!(ok, "{a:?} vs {b:?}");
    }
}

/// Gradient of the scalar `f(x)` at `x` (f64 of `shape`).
pub(crate) fn grad(
    f: &dyn Fn(&TracedTensor) -> TracedTensor,
    shape: &[usize],
    x: &[f64],
) -> Vec<f64> {
    let ad = AdContext::builder().build().unwrap();
    let xt = c(shape, x);
    let g = ad.grad(&f(&xt), &xt).expect("grad");
    f64s(&g)
}

/// Central finite differences of the scalar `f` at `x`.
pub(crate) fn fd(
    f: &dyn Fn(&TracedTensor) -> TracedTensor,
    shape: &[usize],
    x: &[f64],
) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let mut p = x.to_vec();
            let mut m = x.to_vec();
            p[i] += h;
            m[i] -= h;
            (f64s(&f(&c(shape, &p)))[0] - f64s(&f(&c(shape, &m)))[0]) / (2.0 * h)
        })
        .collect()
}

pub(crate) fn check_grad(f: &dyn Fn(&TracedTensor) -> TracedTensor, shape: &[usize], x: &[f64]) {
    close(&grad(f, shape, x), &fd(f, shape, x), 1e-6);
}

/// A fixed smooth weighting, so that `Σ w·f(x)` depends on every output.
pub(crate) fn weigh(y: &TracedTensor) -> TracedTensor {
    let n: usize = y.shape().unwrap().iter().product();
    let w: Vec<f64> = (0..n).map(|i| 0.3 + 0.7 * i as f64).collect();
    (y * &c(&y.shape().unwrap(), &w)).sum()
}

// [2, 3] column-major: rows (0.5, -1, 2) and (1.5, 3, -0.25).
const X: [f64; 6] = [0.5, 1.5, -1.0, 3.0, 2.0, -0.25];

#[test]
fn sums_over_signed_axes_with_keepdims() {
    let x = c(&[2, 3], &X);
    assert_eq!(f64s(&x.sum_axes(&[0], false)), vec![2.0, 2.0, 1.75]);
    assert_eq!(f64s(&x.sum_axes(&[-1], false)), vec![1.5, 4.25]);
    assert_eq!(x.sum_axes(&[-1], true).shape().unwrap(), vec![2, 1]);
    assert_eq!(x.sum_axes(&[0], true).shape().unwrap(), vec![1, 3]);
    assert_eq!(x.sum_axes(&[0, -1], true).shape().unwrap(), vec![1, 1]);
    assert_eq!(x.sum_axes(&[], false).shape().unwrap(), vec![2, 3]);
    assert_eq!(f64s(&x.sum_axes(&[1, 0], false)), vec![5.75]);
    assert_eq!(f64s(&x.prod_axes(&[1], false)), vec![-1.0, -1.125]);
    assert_eq!(f64s(&x.max_axes(&[-1], false)), vec![2.0, 3.0]);
    assert_eq!(f64s(&x.min_axes(&[0], true)), vec![0.5, -1.0, -0.25]);
    assert_eq!(f64s(&x.max()), vec![3.0]);
    assert_eq!(f64s(&x.min()), vec![-1.0]);
    assert_eq!(f64s(&x.prod()), vec![1.125]);
    let b = TracedTensor::from_vec_col_major(vec![3], vec![true, false, true]);
    assert_eq!(i64s(&b.sum_axes(&[0], false)), vec![2]);
    assert_eq!(bools(&b.max_axes(&[0], false)), vec![true]);
    assert_eq!(bools(&b.min_axes(&[0], false)), vec![false]);
}

#[test]
fn mean_var_std() {
    let x = c(&[2, 3], &X);
    close(&f64s(&x.mean()), &[5.75 / 6.0], 1e-15);
    close(&f64s(&x.mean_axes(&[0], false)), &[1.0, 1.0, 0.875], 1e-15);
    assert_eq!(x.mean_axes(&[-2], true).shape().unwrap(), vec![1, 3]);
    // Row 0: 0.5, -1, 2 (mean 0.5); deviations 0, -1.5, 1.5: Σ = 4.5.
    close(
        &f64s(&x.var_axes(&[1], 0, false)),
        &[1.5, var(&[1.5, 3.0, -0.25], 0)],
        1e-14,
    );
    close(
        &f64s(&x.var_axes(&[1], 1, true)),
        &[2.25, var(&[1.5, 3.0, -0.25], 1)],
        1e-14,
    );
    close(
        &f64s(&x.std_axes(&[-1], 0, false)),
        &[1.5f64.sqrt(), var(&[1.5, 3.0, -0.25], 0).sqrt()],
        1e-14,
    );
    close(&f64s(&x.var(0)), &[var(&X, 0)], 1e-14);
    close(&f64s(&x.std(1)), &[var(&X, 1).sqrt()], 1e-14);
    // Integer means are f64 (as NumPy / JAX).
    let i = TracedTensor::from_vec_col_major(vec![4], vec![0_i64, 1, 2, 3]);
    assert_eq!(i.mean().dtype().unwrap(), DType::F64);
    assert_eq!(f64s(&i.mean()), vec![1.5]);
    assert_eq!(f64s(&i.var(0)), vec![1.25]);
    // Empty: mean of nothing is NaN, sum 0.
    let e = c(&[0], &[]);
    assert!(f64s(&e.mean())[0].is_nan());
    assert_eq!(f64s(&e.sum_axes(&[0], false)), vec![0.0]);
    // f32 stays f32.
    let h = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f32, 2.0]);
    assert_eq!(h.mean().dtype().unwrap(), DType::F32);
}

fn var(v: &[f64], ddof: usize) -> f64 {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - ddof) as f64
}

#[test]
fn complex_mean_and_var() {
    let z = TracedTensor::from_vec_col_major(
        vec![2],
        vec![Complex64::new(1.0, 2.0), Complex64::new(3.0, -2.0)],
    );
    assert_eq!(
        run(&z.mean()).to_vec::<Complex64>().unwrap(),
        vec![Complex64::new(2.0, 0.0)]
    );
    // |z - 2|² = 1 + 4 = 5 each.
    assert_eq!(z.var(0).dtype().unwrap(), DType::F64);
    assert_eq!(f64s(&z.var(0)), vec![5.0]);
    // Gradient of |mean(z)|² w.r.t. z: ∂/∂Re + i ∂/∂Im = 2·mean/n = (2, 0) each... at
    // mean = 2 + 0i: (2·2/2, 0) = (2, 0).
    let ad = AdContext::builder().build().unwrap();
    let m = z.mean();
    let loss = (&m.real() * &m.real()) + (&m.imag() * &m.imag());
    let g = run(&ad.grad(&loss.sum(), &z).unwrap())
        .to_vec::<Complex64>()
        .unwrap();
    for gi in g {
        assert!((gi - Complex64::new(2.0, 0.0)).norm() < 1e-14, "{gi}");
    }
    // sum_axes of c64 with finite differences on the real and imaginary parts.
    let base = [0.3, -0.7, 1.1, 0.4];
    let f = |v: &[f64]| {
        let zz = TracedTensor::from_vec_col_major(
            vec![2],
            vec![Complex64::new(v[0], v[1]), Complex64::new(v[2], v[3])],
        );
        zz
    };
    let loss_of = |zz: &TracedTensor| {
        let s = zz.sum_axes(&[-1], false);
        let v = zz.var(1);
        &(&(&s.real() * &s.imag()) + &v) + &s.real().exp()
    };
    let zz = f(&base);
    let g = run(&ad.grad(&loss_of(&zz).sum(), &zz).unwrap())
        .to_vec::<Complex64>()
        .unwrap();
    let h = 1e-6;
    for k in 0..4 {
        let (mut p, mut q) = (base, base);
        p[k] += h;
        q[k] -= h;
        let d = (f64s(&loss_of(&f(&p)).sum())[0] - f64s(&loss_of(&f(&q)).sum())[0]) / (2.0 * h);
        let got = if k % 2 == 0 { g[k / 2].re } else { g[k / 2].im };
        assert!((got - d).abs() < 1e-6, "component {k}: {got} vs {d}");
    }
}

#[test]
fn reduction_gradients_match_finite_differences() {
    let s = [2, 3];
    check_grad(&|x| weigh(&x.sum_axes(&[-1], true)), &s, &X);
    check_grad(&|x| weigh(&x.mean_axes(&[0], false)), &s, &X);
    check_grad(&|x| weigh(&x.var_axes(&[1], 1, false)), &s, &X);
    check_grad(&|x| weigh(&x.std_axes(&[-1], 0, true)), &s, &X);
    check_grad(&|x| weigh(&x.prod_axes(&[0], false)), &s, &X);
    check_grad(&|x| weigh(&x.max_axes(&[1], false)), &s, &X);
    check_grad(&|x| weigh(&x.min_axes(&[-2], false)), &s, &X);
    check_grad(&|x| x.mean(), &s, &X);
    check_grad(&|x| x.var(0), &s, &X);
    check_grad(&|x| x.std(1), &s, &X);
    check_grad(&|x| weigh(&x.logsumexp(&[-1], false)), &s, &X);
    check_grad(&|x| x.logsumexp(&[0, 1], false), &s, &X);
    check_grad(&|x| weigh(&x.softmax(0)), &s, &X);
    check_grad(&|x| weigh(&x.softmax(-1)), &s, &X);
    check_grad(&|x| weigh(&x.log_softmax(1)), &s, &X);
}

fn softmax_ref(v: &[f64]) -> Vec<f64> {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[test]
fn logsumexp_is_stable_and_its_gradient_is_the_softmax() {
    let v = [1000.0, 1000.0, 999.0];
    let want = 1000.0 + (2.0 + (-1.0f64).exp()).ln();
    close(&f64s(&c(&[3], &v).logsumexp(&[0], false)), &[want], 1e-15);
    let small = [-1000.0, -1001.0];
    close(
        &f64s(&c(&[2], &small).logsumexp(&[-1], false)),
        &[-1000.0 + (1.0 + (-1.0f64).exp()).ln()],
        1e-15,
    );
    // Non-integer maximum, where the detached shift is trunc(max).
    let v2 = [2.7, -0.3, 2.1];
    let g = grad(&|x| x.logsumexp(&[0], false), &[3], &v2);
    close(&g, &softmax_ref(&v2), 1e-15);
    // The shift contributes exactly nothing: the gradient is the softmax, bit for bit.
    assert_eq!(g, f64s(&c(&[3], &v2).softmax(0)));
    close(&g, &fd(&|x| x.logsumexp(&[0], false), &[3], &v2), 1e-7);
    // Large values beyond i64 (the shift is the max itself there).
    let big = [1e20, 1e20];
    close(
        &f64s(&c(&[2], &big).logsumexp(&[0], false)),
        &[1e20 + 2f64.ln()],
        1e-15,
    );
    close(
        &grad(&|x| x.logsumexp(&[0], false), &[2], &big),
        &[0.5, 0.5],
        1e-15,
    );

    // -inf entries: value finite, gradient the softmax with an exact 0, no NaN.
    let ni = [f64::NEG_INFINITY, 0.0, 1.0];
    let y = f64s(&c(&[3], &ni).logsumexp(&[0], false))[0];
    close(&[y], &[(1.0 + 1f64.exp()).ln()], 1e-15);
    let g = grad(&|x| x.logsumexp(&[0], false), &[3], &ni);
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    close(&g, &softmax_ref(&ni), 1e-15);
    assert_eq!(g[0], 0.0);
    // softmax and log_softmax at -inf.
    close(&f64s(&c(&[3], &ni).softmax(0)), &softmax_ref(&ni), 1e-15);
    let ls = f64s(&c(&[3], &ni).log_softmax(-1));
    assert_eq!(ls[0], f64::NEG_INFINITY);
    close(
        &ls[1..],
        &[-(1.0 + 1f64.exp()).ln(), 1.0 - (1.0 + 1f64.exp()).ln()],
        1e-15,
    );
    let g = grad(
        &|x| x.log_softmax(0).slice(&[1], &[3]).unwrap().sum(),
        &[3],
        &ni,
    );
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");

    // A row of only -inf gives -inf; +inf gives +inf; NaN propagates.
    let rows = c(&[2, 2], &[f64::NEG_INFINITY, 1.0, f64::NEG_INFINITY, 2.0]);
    let r = f64s(&rows.logsumexp(&[1], false));
    assert_eq!(r[0], f64::NEG_INFINITY);
    close(&r[1..], &[2.0 + (1.0 + (-1.0f64).exp()).ln()], 1e-15);
    assert_eq!(
        f64s(&c(&[2], &[f64::INFINITY, 0.0]).logsumexp(&[0], false)),
        vec![f64::INFINITY]
    );
    assert!(f64s(&c(&[2], &[f64::NAN, 0.0]).logsumexp(&[0], false))[0].is_nan());
    // Empty reduction: -inf. keepdims shape.
    assert_eq!(
        f64s(&c(&[0], &[]).logsumexp(&[0], false)),
        vec![f64::NEG_INFINITY]
    );
    assert_eq!(
        c(&[2, 3], &X).logsumexp(&[-1], true).shape().unwrap(),
        vec![2, 1]
    );
    // softmax along the rows of X sums to 1.
    let sm = f64s(&c(&[2, 3], &X).softmax(-1).sum_axes(&[1], false));
    close(&sm, &[1.0, 1.0], 1e-15);
}

#[test]
fn logsumexp_second_derivative() {
    // d²/dx² logsumexp = diag(p) - p pᵀ; check the Hessian-vector product against
    // finite differences of the gradient.
    let ad = AdContext::builder().build().unwrap();
    let v = [0.2, -1.3, 0.9];
    let p = softmax_ref(&v);
    let x = c(&[3], &v);
    let g = ad.grad(&x.logsumexp(&[0], false), &x).unwrap();
    let t = c(&[3], &[1.0, 0.0, 0.0]);
    let hv = ad.jvp(&g, &x, &t).unwrap();
    let want: Vec<f64> = (0..3)
        .map(|i| {
            if i == 0 {
                p[0] - p[0] * p[0]
            } else {
                -p[i] * p[0]
            }
        })
        .collect();
    close(&f64s(&hv), &want, 1e-14);
}

#[test]
fn argmax_ties_nan_and_keepdims() {
    let x = c(&[2, 3], &[1.0, 5.0, 3.0, 5.0, 3.0, 0.0]);
    // Rows (1, 3, 3) and (5, 5, 0).
    assert_eq!(i64s(&x.argmax(-1, false)), vec![1, 0]);
    assert_eq!(i64s(&x.argmin(1, false)), vec![0, 2]);
    assert_eq!(i64s(&x.argmax(0, false)), vec![1, 1, 0]);
    assert_eq!(x.argmax(0, true).shape().unwrap(), vec![1, 3]);
    assert_eq!(x.argmax(0, false).dtype().unwrap(), DType::I64);
    // Column-major flat index: max 5 first at (1, 0) = flat 1.
    assert_eq!(i64s(&x.argmax_all()), vec![1]);
    assert_eq!(i64s(&x.argmin_all()), vec![5]);
    // NaN is the extremum for both: the first NaN.
    let n = c(&[5], &[1.0, f64::NAN, 7.0, f64::NAN, -3.0]);
    assert_eq!(i64s(&n.argmax(0, false)), vec![1]);
    assert_eq!(i64s(&n.argmin(0, false)), vec![1]);
    assert!(f64s(&n.max())[0].is_nan());
    // Infinities and signed zeros.
    let inf = c(&[3], &[f64::NEG_INFINITY, f64::INFINITY, f64::INFINITY]);
    assert_eq!(i64s(&inf.argmax(0, false)), vec![1]);
    assert_eq!(i64s(&inf.argmin(0, false)), vec![0]);
    let z = c(&[2], &[-0.0, 0.0]);
    assert_eq!(i64s(&z.argmax(0, false)), vec![0]);
    // Integers and bools.
    let i = TracedTensor::from_vec_col_major(vec![4], vec![3_i64, 9, 9, -1]);
    assert_eq!(i64s(&i.argmax(0, false)), vec![1]);
    let b = TracedTensor::from_vec_col_major(vec![3], vec![false, true, true]);
    assert_eq!(i64s(&b.argmax(0, false)), vec![1]);
    // max's gradient at a tie is split (as JAX).
    let g = grad(&|x| x.max(), &[3], &[2.0, 1.0, 2.0]);
    assert_eq!(g, vec![0.5, 0.0, 0.5]);
}

#[test]
fn all_and_any() {
    let b = TracedTensor::from_vec_col_major(vec![2, 2], vec![true, true, false, true]);
    assert_eq!(bools(&b.all(&[0], false)), vec![true, false]);
    assert_eq!(bools(&b.any(&[-1], false)), vec![true, true]);
    assert_eq!(bools(&b.all(&[0, 1], false)), vec![false]);
    assert_eq!(b.any(&[1], true).shape().unwrap(), vec![2, 1]);
    let x = c(&[3], &[0.0, f64::NAN, -0.0]);
    assert_eq!(bools(&x.any(&[0], false)), vec![true]);
    assert_eq!(bools(&x.all(&[0], false)), vec![false]);
    let z = c(&[2], &[0.0, -0.0]);
    assert_eq!(bools(&z.any(&[0], false)), vec![false]);
    let i = TracedTensor::from_vec_col_major(vec![2], vec![2_i64, -1]);
    assert_eq!(bools(&i.all(&[0], false)), vec![true]);
    let e = c(&[0], &[]);
    assert_eq!(bools(&e.all(&[0], false)), vec![true]);
    assert_eq!(bools(&e.any(&[0], false)), vec![false]);
}

#[test]
fn bad_axes_name_the_op_and_operand() {
    let x = c(&[2, 3], &X);
    let cases: Vec<(&str, TracedTensor)> = vec![
        ("sum_axes", x.sum_axes(&[2], false)),
        ("mean_axes", x.mean_axes(&[-3], false)),
        ("var_axes", x.var_axes(&[0, -2], 0, false)),
        ("max_axes", x.max_axes(&[5], true)),
        ("logsumexp", x.logsumexp(&[2], false)),
        ("softmax", x.softmax(-3)),
        ("log_softmax", x.log_softmax(2)),
        ("argmax", x.argmax(2, false)),
        ("all", x.all(&[7], false)),
    ];
    for (op, t) in cases {
        let msg = t.error().expect("error recorded").to_string();
        assert!(
            msg.contains(op) && msg.contains("f64[2, 3]")
                || msg.contains(op) && msg.contains("f64[2,3]"),
            "{op}: {msg}"
        );
        assert!(msg.contains("-2..2"), "{op}: {msg}");
    }
    let z = TracedTensor::from_vec_col_major(vec![1], vec![Complex64::new(1.0, 0.0)]);
    let msg = z.logsumexp(&[0], false).error().unwrap().to_string();
    assert!(
        msg.contains("logsumexp") && msg.contains("complex"),
        "{msg}"
    );
    let msg = c(&[0], &[]).argmax(0, false).error().unwrap().to_string();
    assert!(msg.contains("argmax") && msg.contains("empty"), "{msg}");
}

#[test]
fn eager_equals_traced() {
    let ctx = EagerContext::new(CpuBackend::new());
    let e = ctx.from_vec_col_major(vec![2, 3], X.to_vec()).unwrap();
    let x = c(&[2, 3], &X);
    let pairs: Vec<(Tensor, TracedTensor)> = vec![
        (
            e.sum_axes(&[-1], true).unwrap().value().unwrap(),
            x.sum_axes(&[-1], true),
        ),
        (e.mean().unwrap().value().unwrap(), x.mean()),
        (
            e.mean_axes(&[0], false).unwrap().value().unwrap(),
            x.mean_axes(&[0], false),
        ),
        (
            e.var_axes(&[1], 1, false).unwrap().value().unwrap(),
            x.var_axes(&[1], 1, false),
        ),
        (e.var(0).unwrap().value().unwrap(), x.var(0)),
        (
            e.std_axes(&[0], 0, true).unwrap().value().unwrap(),
            x.std_axes(&[0], 0, true),
        ),
        (e.std(1).unwrap().value().unwrap(), x.std(1)),
        (
            e.max_axes(&[0], false).unwrap().value().unwrap(),
            x.max_axes(&[0], false),
        ),
        (
            e.min_axes(&[1], false).unwrap().value().unwrap(),
            x.min_axes(&[1], false),
        ),
        (
            e.prod_axes(&[1], true).unwrap().value().unwrap(),
            x.prod_axes(&[1], true),
        ),
        (e.max().unwrap().value().unwrap(), x.max()),
        (e.min().unwrap().value().unwrap(), x.min()),
        (e.prod().unwrap().value().unwrap(), x.prod()),
        (
            e.logsumexp(&[-1], false).unwrap().value().unwrap(),
            x.logsumexp(&[-1], false),
        ),
        (e.softmax(0).unwrap().value().unwrap(), x.softmax(0)),
        (
            e.log_softmax(-1).unwrap().value().unwrap(),
            x.log_softmax(-1),
        ),
        (
            e.argmax(1, false).unwrap().value().unwrap(),
            x.argmax(1, false),
        ),
        (
            e.argmin(0, true).unwrap().value().unwrap(),
            x.argmin(0, true),
        ),
        (e.argmax_all().unwrap().value().unwrap(), x.argmax_all()),
        (e.argmin_all().unwrap().value().unwrap(), x.argmin_all()),
        (
            e.all(&[0], false).unwrap().value().unwrap(),
            x.all(&[0], false),
        ),
        (
            e.any(&[1], true).unwrap().value().unwrap(),
            x.any(&[1], true),
        ),
    ];
    for (i, (got, t)) in pairs.into_iter().enumerate() {
        let want = run(&t);
        // Eager runs at O1, compile at O2: float results agree to rounding.
        match (got.to_vec::<f64>(), want.to_vec::<f64>()) {
            (Ok(a), Ok(b)) => close(&a, &b, 1e-15),
            _ => assert_eq!(got, want, "case {i}"),
        }
        assert_eq!(got.shape(), want.shape(), "case {i}");
    }
    // Eager backward through logsumexp is the softmax.
    let l = ctx
        .from_vec_col_major(vec![3], vec![f64::NEG_INFINITY, 0.0, 1.0])
        .unwrap()
        .requires_grad(true);
    l.logsumexp(&[0], false).unwrap().backward().unwrap();
    let g = l.grad().unwrap().to_vec::<f64>().unwrap();
    close(&g, &softmax_ref(&[f64::NEG_INFINITY, 0.0, 1.0]), 1e-15);
    // Errors are reported at once.
    let err = e.sum_axes(&[3], false).unwrap_err().to_string();
    assert!(err.contains("sum_axes"), "{err}");
}

/// The bit patterns of a real or complex tensor's elements (parts).
fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits() as u64)
            .collect(),
        DType::C64 => t
            .to_vec::<Complex64>()
            .unwrap()
            .iter()
            .flat_map(|z| [z.re.to_bits(), z.im.to_bits()])
            .collect(),
        _ => t
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
    }
}

/// Builds `build(x, y)` over two inputs of `shape` and `dtype` (deterministic values in
/// [-0.5, 0.5), complex parts too) and asserts that one and two threads give the reference
/// evaluator's bits.
fn assert_reference_bits(
    shape: &[usize],
    dtype: DType,
    build: impl Fn(&TracedTensor, &TracedTensor) -> TracedTensor,
    what: &str,
) {
    use tenferro_ir::eval::eval;
    let n: usize = shape.iter().product();
    let vals = |seed: f64| -> Tensor {
        let v = (0..n).map(|i| ((i as f64 + seed) * 0.618_033_988_749_895).fract() - 0.5);
        let shape = shape.to_vec();
        match dtype {
            DType::F32 => Tensor::from_vec_col_major(shape, v.map(|x| x as f32).collect()),
            DType::C64 => {
                Tensor::from_vec_col_major(shape, v.map(|x| Complex64::new(x, 0.5 - x)).collect())
            }
            _ => Tensor::from_vec_col_major(shape, v.collect()),
        }
        .unwrap()
    };
    let (xv, yv) = (vals(0.0), vals(7.0));
    let (x, y) = (
        TracedTensor::input(dtype, shape),
        TracedTensor::input(dtype, shape),
    );
    let p = GraphCompiler::new().compile(&build(&x, &y)).unwrap();
    let args: Vec<Tensor> = p
        .inputs()
        .iter()
        .map(|t| {
            if t.same_as(&x) {
                xv.clone()
            } else {
                yv.clone()
            }
        })
        .collect();
    let want = eval(p.function(), &args).unwrap().remove(0);
    for threads in [1, 2] {
        let got = GraphExecutor::new(CpuBackend::with_threads(threads))
            .run_with_inputs(&p, &[(&x, xv.clone()), (&y, yv.clone())])
            .unwrap();
        assert_eq!(bits(&got), bits(&want), "{what}, {threads} threads");
    }
}

type Build = fn(&TracedTensor, &TracedTensor) -> TracedTensor;

/// Reductions over the slowest axes of large column-major arrays (`x.sum(axis=-1)`) run
/// as stripes of result elements on two threads (a plain f32 / f64 sum of an input, four
/// columns per pass): the bits equal the reference evaluator's (each element folds its
/// inputs in column-major order) and one thread's, for sum, max, min, a fused product and
/// sum, mean, f32 and c64, with stripe bounds that do not fall on whole tiles.
#[test]
fn slow_axis_reductions_in_stripes_are_bit_identical() {
    let ops: [(&str, Build); 6] = [
        ("sum", |x, _| x.sum_axes(&[-1], false)),
        ("max", |x, _| x.max_axes(&[-1], false)),
        ("min", |x, _| x.reduce_min(&[1])),
        ("mul-sum", |x, y| (x * y).sum_axes(&[1], false)),
        ("mean", |x, _| x.mean_axes(&[1], false)),
        ("sum over two axes", |x, _| {
            x.reshape(&[x.shape().unwrap()[0], 2, x.shape().unwrap()[1] / 2])
                .unwrap()
                .sum_axes(&[1, 2], false)
        }),
    ];
    for (shape, dtype) in [
        ([1100usize, 130usize], DType::F64),
        ([4096, 64], DType::F32),
        ([1030, 128], DType::C64),
    ] {
        for (name, build) in &ops {
            if dtype == DType::C64 && matches!(*name, "max" | "min") {
                continue;
            }
            assert_reference_bits(&shape, dtype, build, &format!("{name} {dtype:?} {shape:?}"));
        }
    }
}

/// Reductions over the fastest axis of column-major arrays (`x.sum(axis=0)`, a batched
/// inner product) fold four runs side by side (a product of two inputs with the multiply
/// in the same loop): the bits equal the reference evaluator's (each element folds its
/// run in order) and one thread's, for sum, max, min, prod, a product and sum, a sum of
/// squares, a sum of a difference, mean, two reductions of one group, runs that share an
/// output (a sum over the first and last axes), f32 and c64, run counts that leave a
/// remainder, and runs longer than a tile.
#[test]
fn fast_axis_reductions_fold_runs_side_by_side_bit_identically() {
    let ops: [(&str, Build); 12] = [
        ("sum and sum of squares", |x, _| {
            let p = x + 1.0;
            &p.sum_axes(&[0], false) + &(&p * &p).sum_axes(&[0], false)
        }),
        ("two sums of products of one value", |x, y| {
            let p = x + y;
            &(&p * &p).sum_axes(&[0], false) + &(&p * x).sum_axes(&[0], false)
        }),
        ("max and sum of products", |x, y| {
            let p = x * y;
            &p.max_axes(&[0], false) * &(&p - x).sum_axes(&[0], false)
        }),
        ("sum", |x, _| x.sum_axes(&[0], false)),
        ("max", |x, _| x.max_axes(&[0], false)),
        ("min", |x, _| x.reduce_min(&[0])),
        ("prod", |x, _| (x + 1.0).prod_axes(&[0], false)),
        ("mul-sum", |x, y| (x * y).sum_axes(&[0], false)),
        ("square-sum", |x, _| (x * x).sum_axes(&[0], true)),
        ("sub-sum", |x, y| (x - y).sum_axes(&[0], false)),
        ("mean", |x, _| x.mean_axes(&[0], false)),
        ("sum over first and last axes", |x, _| {
            let s = x.shape().unwrap();
            x.reshape(&[s[0], s[1] / 2, 2])
                .unwrap()
                .sum_axes(&[0, 2], false)
        }),
    ];
    for (shape, dtype) in [
        ([300usize, 26usize], DType::F64),
        ([4100, 14], DType::F64),
        ([1030, 70], DType::F32),
        ([512, 38], DType::C64),
    ] {
        for (name, build) in &ops {
            if dtype == DType::C64 && (name.starts_with("max") || *name == "min") {
                continue;
            }
            assert_reference_bits(&shape, dtype, build, &format!("{name} {dtype:?} {shape:?}"));
        }
    }
}

/// Property: random reductions that include the fastest axis (random shapes with long
/// first axes, random further axes, elementwise producers, sum / max / min / mean, alone
/// or with a second reduction of the same value, f64 and f32) give the reference
/// evaluator's bits on one and two threads.
#[test]
fn random_reductions_over_the_fastest_axis_match_the_reference_bits() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: usize| -> usize {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n as u64) as usize
    };
    for case in 0..60 {
        let rank = 2 + next(3);
        let mut shape = vec![[256, 300, 511, 1024, 1500][next(5)]];
        shape.extend((1..rank).map(|_| 2 + next(5)));
        let mut axes = vec![0isize];
        axes.extend((1..rank as isize).filter(|_| next(3) == 0));
        if axes.len() == rank {
            // Keep an axis: a whole reduction folds in lanes, not the reference's order.
            axes.pop();
        }
        let dtype = [DType::F64, DType::F32][next(2)];
        let (producer, kind, pair) = (next(6), next(4), next(2) == 1);
        let build = |x: &TracedTensor, y: &TracedTensor| {
            let p = match producer {
                0 => x.clone(),
                1 => x * y,
                2 => x + y,
                3 => x * x,
                4 => &(x + y) * y,
                _ => x - y,
            };
            let z = match kind {
                0 => p.sum_axes(&axes, false),
                1 => p.max_axes(&axes, true),
                2 => p.min_axes(&axes, false),
                _ => p.mean_axes(&axes, false),
            };
            // A second reduction of the same value, in the same fused group.
            match pair {
                true => &z + &(&p * x).sum_axes(&axes, kind == 1),
                false => z,
            }
        };
        let what = format!(
            "case {case}: producer {producer}, kind {kind}, pair {pair}, {dtype:?} {shape:?} \
             axes {axes:?}"
        );
        assert_reference_bits(&shape, dtype, build, &what);
    }
}

/// A maximum or minimum over an empty axis is an error naming the caller's line, as in
/// NumPy and `jnp.max`; the lax-style `reduce_max` keeps its identity `-inf`.
#[test]
fn max_and_min_of_nothing_are_errors() {
    let e = c(&[0, 3], &[]);
    for (name, y) in [
        ("max", e.max()),
        ("min", e.min()),
        ("max_axes", e.max_axes(&[0], false)),
        ("min_axes", e.min_axes(&[-2], true)),
    ] {
        let m = GraphCompiler::new().compile(&y).unwrap_err().to_string();
        assert!(m.contains("empty") && m.contains(file!()), "{name}: {m}");
    }
    // a reduction over the non-empty axis of a tensor with an empty one is fine
    assert_eq!(run(&e.max_axes(&[1], false)).shape(), &[0]);
    assert_eq!(f64s(&e.reduce_max(&[0])), vec![f64::NEG_INFINITY; 3]);
}
