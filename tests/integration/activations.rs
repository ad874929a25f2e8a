//! The activations (`tenferro_runtime::activations`): values against hand computation,
//! derivatives against central finite differences and at the kinks (as JAX), stability
//! at large |x| and ±inf, eager against traced.

use tenferro_ad::{AdContext, EagerContext};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};

fn run(t: &TracedTensor) -> Tensor {
    let p = GraphCompiler::new().compile(t).expect("compile");
    GraphExecutor::new(CpuBackend::new()).run(&p).expect("run")
}

fn f64s(t: &TracedTensor) -> Vec<f64> {
    run(t).to_vec::<f64>().expect("f64 result")
}

fn bools(t: &TracedTensor) -> Vec<bool> {
    run(t).to_vec::<bool>().expect("bool result")
}

fn c(v: &[f64]) -> TracedTensor {
    TracedTensor::from_vec_col_major(vec![v.len()], v.to_vec())
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        let ok = (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * (1.0 + y.abs());
        assert!(ok, "{a:?} vs {b:?}");
    }
}

/// Elementwise derivative `f'(x)` (gradient of `Σ f(x)`).
fn deriv(f: &dyn Fn(&TracedTensor) -> TracedTensor, x: &[f64]) -> Vec<f64> {
    let ad = AdContext::builder().build().unwrap();
    let xt = c(x);
    f64s(&ad.grad(&f(&xt).sum(), &xt).expect("grad"))
}

fn fd(f: &dyn Fn(&TracedTensor) -> TracedTensor, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    x.iter()
        .map(|&v| (f64s(&f(&c(&[v + h])))[0] - f64s(&f(&c(&[v - h])))[0]) / (2.0 * h))
        .collect()
}

/// Smooth points (away from every kink).
const PTS: [f64; 7] = [-3.1, -1.2, -0.4, 0.3, 0.9, 2.2, 4.7];

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// erf by the positive series `2/√π e^{-x²} Σ 2ⁿ x^{2n+1} / (1·3···(2n+1))` (no
/// cancellation, so accurate to rounding for the moderate `x` used here).
fn erf(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= 2.0 * x * x / (2 * n + 1) as f64;
        sum += term;
    }
    std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp() * sum
}

#[test]
fn values() {
    let x = c(&PTS);
    let map = |f: &dyn Fn(f64) -> f64| PTS.iter().map(|&v| f(v)).collect::<Vec<_>>();
    close(&f64s(&x.relu()), &map(&|v| v.max(0.0)), 0.0);
    close(&f64s(&x.relu6()), &map(&|v| v.clamp(0.0, 6.0)), 0.0);
    close(&f64s(&c(&[7.5, -2.0, 3.0]).relu6()), &[6.0, 0.0, 3.0], 0.0);
    close(&f64s(&x.sigmoid()), &map(&sig), 1e-15);
    close(&f64s(&x.silu()), &map(&|v| v * sig(v)), 1e-15);
    close(&f64s(&x.softplus()), &map(&|v| (1.0 + v.exp()).ln()), 1e-15);
    close(&f64s(&x.log_sigmoid()), &map(&|v| sig(v).ln()), 1e-15);
    close(
        &f64s(&x.gelu(false)),
        &map(&|v| 0.5 * v * (1.0 + erf(v / 2f64.sqrt()))),
        1e-15,
    );
    let k = (2.0 / std::f64::consts::PI).sqrt();
    close(
        &f64s(&x.gelu(true)),
        &map(&|v| 0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())),
        1e-15,
    );
    close(
        &f64s(&x.clamp(-1.0, 1.0)),
        &map(&|v| v.clamp(-1.0, 1.0)),
        0.0,
    );
    close(&f64s(&x.clip(0.0, 2.0)), &map(&|v| v.clamp(0.0, 2.0)), 0.0);
    close(&f64s(&x.square()), &map(&|v| v * v), 0.0);
    close(&f64s(&x.reciprocal()), &map(&|v| 1.0 / v), 1e-16);
    // clip with lo > hi gives hi (as jnp.clip).
    assert_eq!(f64s(&c(&[0.5]).clamp(2.0, 1.0)), vec![1.0]);
    // Integer operands: relu / clamp / square stay i64, reciprocal is f64.
    let i = TracedTensor::from_vec_col_major(vec![3], vec![-2_i64, 0, 3]);
    assert_eq!(run(&i.relu()).to_vec::<i64>().unwrap(), vec![0, 0, 3]);
    assert_eq!(
        run(&i.clamp(-1.0, 2.0)).to_vec::<i64>().unwrap(),
        vec![-1, 0, 2]
    );
    assert_eq!(run(&i.square()).to_vec::<i64>().unwrap(), vec![4, 0, 9]);
    assert_eq!(i.reciprocal().dtype().unwrap(), DType::F64);
    assert_eq!(i.sigmoid().dtype().unwrap(), DType::F64);
    // f32 stays f32.
    let h = TracedTensor::from_vec_col_major(vec![2], vec![-1.0_f32, 2.0]);
    assert_eq!(h.gelu(false).dtype().unwrap(), DType::F32);
    assert_eq!(h.softplus().dtype().unwrap(), DType::F32);
}

#[test]
fn stable_at_large_and_infinite_inputs() {
    let inf = f64::INFINITY;
    let x = c(&[-inf, -1000.0, -40.0, 40.0, 1000.0, inf]);
    assert_eq!(
        f64s(&x.sigmoid()),
        vec![0.0, 0.0, sig(-40.0), 1.0, 1.0, 1.0]
    );
    close(
        &f64s(&x.softplus()),
        &[0.0, 0.0, (-40.0f64).exp(), 40.0, 1000.0, inf],
        1e-15,
    );
    close(
        &f64s(&x.log_sigmoid()),
        &[-inf, -1000.0, -40.0, -(-40.0f64).exp(), 0.0, 0.0],
        1e-15,
    );
    assert_eq!(f64s(&x.relu()), vec![0.0, 0.0, 0.0, 40.0, 1000.0, inf]);
    // Derivatives stay finite (no 0·inf): sigmoid' = σ(1-σ), softplus' = σ.
    for (name, f) in [
        (
            "sigmoid",
            &(|t: &TracedTensor| t.sigmoid()) as &dyn Fn(&TracedTensor) -> TracedTensor,
        ),
        ("softplus", &|t: &TracedTensor| t.softplus()),
        ("log_sigmoid", &|t: &TracedTensor| t.log_sigmoid()),
        ("silu", &|t: &TracedTensor| t.silu()),
    ] {
        let d = deriv(f, &[-1000.0, -40.0, 40.0, 1000.0]);
        assert!(d.iter().all(|v| v.is_finite()), "{name}: {d:?}");
    }
    let d = deriv(&|t| t.softplus(), &[-1000.0, 1000.0, -inf, inf]);
    assert_eq!(d, vec![0.0, 1.0, 0.0, 1.0]);
    // NaN propagates.
    let n = c(&[f64::NAN]);
    for t in [
        n.relu(),
        n.relu6(),
        n.sigmoid(),
        n.softplus(),
        n.gelu(false),
        n.clamp(0.0, 1.0),
    ] {
        assert!(f64s(&t)[0].is_nan());
    }
}

#[test]
fn derivatives_match_finite_differences() {
    type F = fn(&TracedTensor) -> TracedTensor;
    let fs: [(&str, F); 11] = [
        ("relu", |t| t.relu()),
        ("relu6", |t| t.relu6()),
        ("sigmoid", |t| t.sigmoid()),
        ("silu", |t| t.silu()),
        ("softplus", |t| t.softplus()),
        ("log_sigmoid", |t| t.log_sigmoid()),
        ("gelu", |t| t.gelu(false)),
        ("gelu_tanh", |t| t.gelu(true)),
        ("clamp", |t| t.clamp(-1.0, 1.0)),
        ("square", |t| t.square()),
        ("reciprocal", |t| t.reciprocal()),
    ];
    for (name, f) in fs {
        let g = deriv(&f, &PTS);
        let want = fd(&f, &PTS);
        for (a, b) in g.iter().zip(&want) {
            assert!(
                (a - b).abs() < 1e-6 * (1.0 + b.abs()),
                "{name}: {g:?} vs {want:?}"
            );
        }
    }
    // Closed forms.
    close(
        &deriv(&|t| t.sigmoid(), &PTS),
        &PTS.iter()
            .map(|&v| sig(v) * (1.0 - sig(v)))
            .collect::<Vec<_>>(),
        1e-14,
    );
    close(
        &deriv(&|t| t.softplus(), &PTS),
        &PTS.iter().map(|&v| sig(v)).collect::<Vec<_>>(),
        1e-14,
    );
}

#[test]
fn kinks_follow_jax() {
    // relu'(0) = 0; relu6' is 0 at 0 and at 6.
    assert_eq!(
        deriv(&|t| t.relu(), &[0.0, -0.0, 1.0, -1.0]),
        vec![0.0, 0.0, 1.0, 0.0]
    );
    assert_eq!(
        deriv(&|t| t.relu6(), &[0.0, 6.0, 3.0, 7.0]),
        vec![0.0, 0.0, 1.0, 0.0]
    );
    // jnp.clip = minimum(maximum(x, lo), hi): 0.5 at either bound.
    assert_eq!(
        deriv(&|t| t.clamp(-1.0, 1.0), &[-1.0, 1.0, 0.0, 2.0, -2.0]),
        vec![0.5, 0.5, 1.0, 0.0, 0.0]
    );
    // Tensor bounds: the other half of the tie goes to the bound.
    let ad = AdContext::builder().build().unwrap();
    let x = c(&[-1.0, 0.5, 3.0]);
    let lo = c(&[-1.0, -1.0, -1.0]);
    let hi = c(&[2.0, 2.0, 3.0]);
    let y = x.clamp_tensors(&lo, &hi).sum();
    let g = ad.grad_many(&y, &[&x, &lo, &hi]).unwrap();
    assert_eq!(f64s(&g[0]), vec![0.5, 1.0, 0.5]);
    assert_eq!(f64s(&g[1]), vec![0.5, 0.0, 0.0]);
    assert_eq!(f64s(&g[2]), vec![0.0, 0.0, 0.5]);
    // softplus'(0) = sigmoid(0) = 1/2 exactly; sigmoid'(0) = 1/4.
    assert_eq!(deriv(&|t| t.softplus(), &[0.0]), vec![0.5]);
    assert_eq!(deriv(&|t| t.sigmoid(), &[0.0]), vec![0.25]);
    // gelu'(0) = 1/2.
    close(&deriv(&|t| t.gelu(false), &[0.0]), &[0.5], 1e-15);
}

#[test]
fn finite_nan_inf_predicates() {
    let x = c(&[1.0, f64::NAN, f64::INFINITY, -f64::INFINITY, -0.0]);
    assert_eq!(bools(&x.is_finite()), vec![true, false, false, false, true]);
    assert_eq!(bools(&x.is_nan()), vec![false, true, false, false, false]);
    assert_eq!(bools(&x.is_inf()), vec![false, false, true, true, false]);
    let i = TracedTensor::from_vec_col_major(vec![2], vec![1_i64, i64::MAX]);
    assert_eq!(bools(&i.is_finite()), vec![true, true]);
    assert_eq!(bools(&i.is_nan()), vec![false, false]);
    assert_eq!(bools(&i.is_inf()), vec![false, false]);
    use num_complex::Complex64 as C;
    let z = TracedTensor::from_vec_col_major(
        vec![4],
        vec![
            C::new(1.0, 2.0),
            C::new(f64::NAN, 0.0),
            C::new(0.0, f64::INFINITY),
            C::new(1e308, 1e308),
        ],
    );
    assert_eq!(bools(&z.is_finite()), vec![true, false, false, true]);
    assert_eq!(bools(&z.is_nan()), vec![false, true, false, false]);
    assert_eq!(bools(&z.is_inf()), vec![false, false, true, false]);
    // Complex where an order is needed is an error naming the method.
    let msg = z.relu().error().unwrap().to_string();
    assert!(msg.contains("relu") && msg.contains("c64[4]"), "{msg}");
}

#[test]
fn eager_equals_traced() {
    let ctx = EagerContext::new(CpuBackend::new());
    let e = ctx.from_vec_col_major(vec![7], PTS.to_vec()).unwrap();
    let x = c(&PTS);
    let lo = c(&[-1.0; 7]);
    let hi = c(&[1.0; 7]);
    let elo = ctx.from_vec_col_major(vec![7], vec![-1.0; 7]).unwrap();
    let ehi = ctx.from_vec_col_major(vec![7], vec![1.0; 7]).unwrap();
    let pairs: Vec<(Tensor, TracedTensor)> = vec![
        (e.relu().unwrap().value().unwrap(), x.relu()),
        (e.relu6().unwrap().value().unwrap(), x.relu6()),
        (e.sigmoid().unwrap().value().unwrap(), x.sigmoid()),
        (e.silu().unwrap().value().unwrap(), x.silu()),
        (e.softplus().unwrap().value().unwrap(), x.softplus()),
        (e.log_sigmoid().unwrap().value().unwrap(), x.log_sigmoid()),
        (e.gelu(false).unwrap().value().unwrap(), x.gelu(false)),
        (e.gelu(true).unwrap().value().unwrap(), x.gelu(true)),
        (
            e.clamp(-1.0, 1.0).unwrap().value().unwrap(),
            x.clamp(-1.0, 1.0),
        ),
        (e.clip(0.0, 2.0).unwrap().value().unwrap(), x.clip(0.0, 2.0)),
        (
            e.clamp_tensors(&elo, &ehi).unwrap().value().unwrap(),
            x.clamp_tensors(&lo, &hi),
        ),
        (e.square().unwrap().value().unwrap(), x.square()),
        (e.reciprocal().unwrap().value().unwrap(), x.reciprocal()),
        (e.is_finite().unwrap().value().unwrap(), x.is_finite()),
        (e.is_nan().unwrap().value().unwrap(), x.is_nan()),
        (e.is_inf().unwrap().value().unwrap(), x.is_inf()),
    ];
    for (i, (got, t)) in pairs.into_iter().enumerate() {
        let want = run(&t);
        let (a, b) = (got.to_vec::<f64>(), want.to_vec::<f64>());
        match (a, b) {
            (Ok(a), Ok(b)) => close(&a, &b, 1e-15),
            _ => assert_eq!(got, want, "case {i}"),
        }
    }
    // Different clamp bounds are different cached ops.
    assert_ne!(
        e.clamp(-1.0, 1.0).unwrap().value(),
        e.clamp(-2.0, 2.0).unwrap().value()
    );
    // Eager backward: relu'(0) = 0, clip at the bound 0.5.
    let l = ctx
        .from_vec_col_major(vec![3], vec![0.0, 1.0, -1.0])
        .unwrap()
        .requires_grad(true);
    let y = l.relu().unwrap().sum().unwrap();
    let z = l.clamp(-1.0, 1.0).unwrap().sum().unwrap();
    (&y + &z).backward().unwrap();
    assert_eq!(
        l.grad().unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, 1.5, 0.5]
    );
}
