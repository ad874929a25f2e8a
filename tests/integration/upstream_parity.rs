//! Behaviours that upstream tenferro-rs's own tests exercise, written in this crate's API
//! (one test per behaviour group): broadcasting, the elementwise surface, compare and
//! select, dtype conversion, real/complex scaling, dot_general, static index selection,
//! stack, the derivatives of reductions and elementwise ops, eager autodiff bookkeeping,
//! linear algebra (values and derivatives) and einsum forms and errors.

use num_complex::Complex64;
use tenferro_ad::{AdContext, EagerContext, EagerTensor};
use tenferro_cpu::CpuBackend;
use tenferro_einsum::{einsum, einsum_with, EinsumOptions, Optimize};
use tenferro_ir::{CmpOp, DotDims};
use tenferro_linalg::{EagerTensorLinalgExt, TracedTensorLinalgExt};
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};

fn run(t: &TracedTensor) -> Tensor {
    let p = GraphCompiler::new().compile(t).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::with_threads(1));
    ex.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    ex.run(&p).unwrap()
}

fn f64s(t: &TracedTensor) -> Vec<f64> {
    run(t).as_slice::<f64>().unwrap().to_vec()
}

fn tv(shape: &[usize], data: &[f64]) -> TracedTensor {
    TracedTensor::from_vec_col_major(shape.to_vec(), data.to_vec())
}

fn ad() -> AdContext {
    AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules().unwrap())
        .build()
        .unwrap()
}

fn eager_ctx() -> EagerContext {
    let ctx = EagerContext::with_ad_context(CpuBackend::with_threads(1), ad());
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    ctx
}

fn close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "index {i}: got {g}, want {w}");
    }
}

/// Central differences of the scalar `f` at `x`.
fn fd_grad(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let (mut p, mut m) = (x.to_vec(), x.to_vec());
            p[i] += h;
            m[i] -= h;
            (f(&p) - f(&m)) / (2.0 * h)
        })
        .collect()
}

fn matmul_dims() -> DotDims {
    DotDims {
        lhs_contract: vec![1],
        rhs_contract: vec![0],
        lhs_batch: vec![],
        rhs_batch: vec![],
    }
}

#[test]
fn numpy_broadcasting_pads_rank_and_stretches_singletons() {
    let want = [
        11.0, 12.0, 13.0, 21.0, 22.0, 23.0, 31.0, 32.0, 33.0, 41.0, 42.0, 43.0,
    ];
    let (a, b) = (
        tv(&[3, 1], &[1.0, 2.0, 3.0]),
        tv(&[1, 4], &[10.0, 20.0, 30.0, 40.0]),
    );
    let y = &a + &b;
    assert_eq!(y.shape().unwrap(), vec![3, 4]);
    assert_eq!(f64s(&y), want);
    // scalar + vector, vector / scalar, column * row
    assert_eq!(
        f64s(&(&tv(&[], &[1.0]) + &tv(&[3], &[1.0, 2.0, 3.0]))),
        [2.0, 3.0, 4.0]
    );
    assert_eq!(
        f64s(&(&tv(&[3], &[2.0, 4.0, 8.0]) / &tv(&[], &[2.0]))),
        [1.0, 2.0, 4.0]
    );
    assert_eq!(
        f64s(&tv(&[3], &[2.0, 3.0, 4.0]).pow(&tv(&[], &[2.0]))),
        [4.0, 9.0, 16.0]
    );
    let ctx = eager_ctx();
    let ea = ctx
        .from_vec_col_major(vec![3, 1], vec![1.0_f64, 2.0, 3.0])
        .unwrap();
    let eb = ctx
        .from_vec_col_major(vec![1, 4], vec![10.0_f64, 20.0, 30.0, 40.0])
        .unwrap();
    let ey = (&ea + &eb).value().unwrap();
    assert_eq!(ey.shape(), &[3, 4]);
    assert_eq!(ey.as_slice::<f64>().unwrap(), want);
}

#[test]
fn elementwise_surface_values() {
    let x = tv(&[2], &[1.0, 4.0]);
    assert_eq!(f64s(&-&x), [-1.0, -4.0]);
    assert_eq!(f64s(&tv(&[2], &[-1.0, 4.0]).abs()), [1.0, 4.0]);
    assert_eq!(f64s(&tv(&[3], &[-2.0, 0.0, 4.0]).sign()), [-1.0, 0.0, 1.0]);
    assert_eq!(f64s(&x.sqrt()), [1.0, 2.0]);
    assert_eq!(f64s(&x.rsqrt()), [1.0, 0.5]);
    let a = [0.0, 1.0];
    let t = tv(&[2], &a);
    let apply = |f: fn(f64) -> f64| a.iter().map(|&v| f(v)).collect::<Vec<_>>();
    close(&f64s(&t.exp()), &apply(f64::exp), 1e-15);
    close(&f64s(&x.log()), &[0.0, 4f64.ln()], 1e-15);
    close(&f64s(&t.sin()), &apply(f64::sin), 1e-15);
    close(&f64s(&t.cos()), &apply(f64::cos), 1e-15);
    close(&f64s(&t.tanh()), &apply(f64::tanh), 1e-15);
    close(&f64s(&t.expm1()), &apply(f64::exp_m1), 1e-15);
    close(&f64s(&t.log1p()), &apply(f64::ln_1p), 1e-15);
    let z = TracedTensor::from_vec_col_major(
        vec![2],
        vec![Complex64::new(1.0, 2.0), Complex64::new(3.0, -4.0)],
    );
    assert_eq!(
        run(&z.conj()).as_slice::<Complex64>().unwrap(),
        &[Complex64::new(1.0, -2.0), Complex64::new(3.0, 4.0)]
    );
    // |complex| is real
    let m = z.abs();
    assert_eq!(m.dtype().unwrap(), DType::F64);
    close(&f64s(&m), &[5f64.sqrt(), 5.0], 1e-15);
}

#[test]
fn compare_is_bool_and_where_select_picks_branches() {
    let (x, y) = (tv(&[2], &[2.0, 4.0]), tv(&[2], &[1.0, 8.0]));
    let c = x.compare(CmpOp::Gt, &y);
    assert_eq!(c.dtype().unwrap(), DType::Bool);
    assert_eq!(run(&c).as_slice::<bool>().unwrap(), &[true, false]);
    let s = TracedTensor::where_select(&c, &x, &y).unwrap();
    assert_eq!(f64s(&s), [2.0, 8.0]);
    assert_eq!(f64s(&x.maximum(&y)), [2.0, 8.0]);
    assert_eq!(f64s(&x.minimum(&y)), [1.0, 4.0]);
    // clamp with tensor bounds (upstream's clamp(&lo, &hi))
    assert_eq!(f64s(&x.clamp_tensors(&y, &x)), [2.0, 4.0]);
    // a predicate that does not broadcast is an error naming select
    let bad = tv(&[3], &[1.0, 2.0, 3.0]).compare(CmpOp::Gt, &tv(&[3], &[0.0; 3]));
    let e = TracedTensor::where_select(&bad, &x, &y).unwrap_err();
    assert!(e.to_string().contains("select"), "{e}");

    let ctx = eager_ctx();
    let ex = ctx.from_vec_col_major(vec![2], vec![2.0_f64, 4.0]).unwrap();
    let ey = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 8.0]).unwrap();
    let ec = ex.compare(CmpOp::Gt, &ey).unwrap();
    let es = EagerTensor::where_select(&ec, &ex, &ey).unwrap();
    assert_eq!(es.value().unwrap().as_slice::<f64>().unwrap(), &[2.0, 8.0]);
}

#[test]
fn dtype_conversion() {
    let x = tv(&[2], &[1.0, 2.0]);
    let c = x.convert(DType::C64).unwrap();
    assert_eq!(
        run(&c).as_slice::<Complex64>().unwrap(),
        &[Complex64::new(1.0, 0.0), Complex64::new(2.0, 0.0)]
    );
    // upstream's `cast` (any dtype, truncating): our `convert`, as lax.convert_element_type
    let i = tv(&[2], &[1.7, -2.7]).convert(DType::I32).unwrap();
    assert_eq!(run(&i).as_slice::<i32>().unwrap(), &[1, -2]);
    // f32 and f64 stacked promote to f64
    let a = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f32, 2.0]);
    let s = TracedTensor::stack(&[&a, &tv(&[2], &[3.0, 4.0])], 0).unwrap();
    assert_eq!(s.dtype().unwrap(), DType::F64);
    assert_eq!(f64s(&s), [1.0, 3.0, 2.0, 4.0]);
}

#[test]
fn scale_real_and_scale_complex() {
    assert_eq!(
        f64s(&tv(&[3], &[1.0, 2.0, 3.0]).scale_real(2.0).unwrap()),
        [2.0, 4.0, 6.0]
    );
    // integers keep their dtype; the factor is rounded half away from zero
    let i = TracedTensor::from_vec_col_major(vec![3], vec![1_i64, 2, -3]);
    let y = i.scale_real(2.7).unwrap();
    assert_eq!(y.dtype().unwrap(), DType::I64);
    assert_eq!(run(&y).as_slice::<i64>().unwrap(), &[3, 6, -9]);
    let three = TracedTensor::from_vec_col_major(vec![1], vec![3_i64]);
    assert_eq!(
        run(&three.scale_real(2.5).unwrap())
            .as_slice::<i64>()
            .unwrap(),
        &[9]
    );
    let e = three.scale_real(f64::NAN).unwrap_err().to_string();
    assert!(e.contains("scale_real") && e.contains("NaN"), "{e}");
    let e = TracedTensor::from_vec_col_major(vec![1], vec![true])
        .scale_real(2.0)
        .unwrap_err();
    assert!(e.to_string().contains("bool"), "{e}");
    // complex scaling needs a complex operand
    let e = tv(&[1], &[1.0])
        .scale_complex(Complex64::new(0.0, 1.0))
        .unwrap_err();
    assert!(e.to_string().contains("scale_complex"), "{e}");
    let z = TracedTensor::from_vec_col_major(vec![1], vec![Complex64::new(1.0, 2.0)]);
    let zs = z.scale_complex(Complex64::new(0.0, 1.0)).unwrap();
    assert_eq!(
        run(&zs).as_slice::<Complex64>().unwrap(),
        &[Complex64::new(-2.0, 1.0)]
    );
    let z32 = z
        .convert(DType::C32)
        .unwrap()
        .scale_complex(Complex64::new(2.0, 0.0));
    assert_eq!(z32.unwrap().dtype().unwrap(), DType::C32);

    // eager, with its gradient
    let ctx = eager_ctx();
    let x = ctx
        .from_vec_col_major(vec![2], vec![1.0_f64, -2.0])
        .unwrap()
        .requires_grad(true);
    let s = x.scale_real(2.5).unwrap();
    assert_eq!(s.value().unwrap().as_slice::<f64>().unwrap(), &[2.5, -5.0]);
    s.reduce_sum(&[0]).unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().as_slice::<f64>().unwrap(), &[2.5, 2.5]);
    assert!(x.scale_complex(Complex64::new(0.0, 1.0)).is_err());
}

#[test]
fn dot_general_matmul_and_batched_via_stack_and_index_select() {
    let a = tv(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = tv(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(
        f64s(&a.dot_general(&b, matmul_dims()).unwrap()),
        [22.0, 28.0, 49.0, 64.0]
    );
    assert_eq!(f64s(&a.matmul(&b).unwrap()), [22.0, 28.0, 49.0, 64.0]);
    let a0 = tv(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let a1 = tv(&[2, 2], &[5.0, 6.0, 7.0, 8.0]);
    let b0 = tv(&[2, 1], &[2.0, 3.0]);
    let b1 = tv(&[2, 1], &[4.0, 5.0]);
    let a = TracedTensor::stack(&[&a0, &a1], -1).unwrap();
    let b = TracedTensor::stack(&[&b0, &b1], -1)
        .unwrap()
        .index_select(-1, &[1, 0])
        .unwrap();
    let dims = DotDims {
        lhs_contract: vec![1],
        rhs_contract: vec![0],
        lhs_batch: vec![2],
        rhs_batch: vec![2],
    };
    let c = a.dot_general(&b, dims).unwrap();
    // our dot_general puts batch axes first (as XLA): [batch, m, n]; upstream's result is
    // [m, n, batch], one transpose away
    assert_eq!(c.shape().unwrap(), vec![2, 2, 1]);
    let c = c.transpose(&[1, 2, 0]).unwrap();
    assert_eq!(f64s(&c), [19.0, 28.0, 31.0, 36.0]);
}

#[test]
fn structural_primitives_broadcast_reduce_transpose_reshape() {
    let v = tv(&[3], &[1.0, 2.0, 3.0]);
    let b = v.broadcast_in_dim(&[3, 2], &[0]).unwrap();
    assert_eq!(f64s(&b.reduce_sum(&[1])), [2.0, 4.0, 6.0]);
    let a = tv(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(
        f64s(&a.transpose(&[1, 0]).unwrap()),
        [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]
    );
    assert_eq!(
        f64s(&a.reshape(&[6]).unwrap()),
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
}

#[test]
fn index_select_values_errors_and_gradient() {
    let z = TracedTensor::from_vec_col_major(
        vec![3],
        vec![
            Complex64::new(1.0, 1.0),
            Complex64::new(2.0, -1.0),
            Complex64::new(3.0, 0.5),
        ],
    );
    let y = z.index_select(-1, &[2, 0]).unwrap();
    assert_eq!(
        run(&y).as_slice::<Complex64>().unwrap(),
        &[Complex64::new(3.0, 0.5), Complex64::new(1.0, 1.0)]
    );
    // a middle axis: [2, 3] → [2, 2], repeats allowed
    let m = tv(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(
        f64s(&m.index_select(1, &[2, 2]).unwrap()),
        [5.0, 6.0, 5.0, 6.0]
    );
    // no positions: an empty axis
    let none = m.index_select(1, &[]).unwrap();
    assert_eq!(none.shape().unwrap(), vec![2, 0]);
    assert!(f64s(&none).is_empty());
    let x = tv(&[2], &[1.0, 2.0]);
    let e = x.index_select(1, &[0]).unwrap_err().to_string();
    assert!(e.contains("index_select") && e.contains("axis"), "{e}");
    let e = x.index_select(0, &[2]).unwrap_err().to_string();
    assert!(
        e.contains("index_select") && e.contains("position 2 out of bounds"),
        "{e}"
    );

    // traced gradient: repeated positions accumulate
    let w = tv(&[3], &[10.0, 20.0, 30.0]);
    let x = tv(&[3], &[1.0, 2.0, 3.0]);
    let loss = (&x.index_select(0, &[1, 1, 2]).unwrap() * &w).sum();
    assert_eq!(f64s(&ad().grad(&loss, &x).unwrap()), [0.0, 30.0, 30.0]);

    // eager: values after stack, and the same gradient
    let ctx = eager_ctx();
    let x0 = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0]).unwrap();
    let x1 = ctx.from_vec_col_major(vec![2], vec![3.0_f64, 4.0]).unwrap();
    let s = EagerTensor::stack(&[&x0, &x1], -1)
        .unwrap()
        .index_select(-1, &[1, 0, 1])
        .unwrap();
    assert_eq!(s.shape(), &[2, 3]);
    assert_eq!(
        s.value().unwrap().as_slice::<f64>().unwrap(),
        &[3.0, 4.0, 1.0, 2.0, 3.0, 4.0]
    );
    let xe = ctx
        .from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0])
        .unwrap()
        .requires_grad(true);
    let we = ctx
        .from_vec_col_major(vec![3], vec![10.0_f64, 20.0, 30.0])
        .unwrap();
    let l = (&xe.index_select(0, &[1, 1, 2]).unwrap() * &we)
        .reduce_sum(&[0])
        .unwrap();
    l.backward().unwrap();
    assert_eq!(
        xe.grad().unwrap().as_slice::<f64>().unwrap(),
        &[0.0, 30.0, 30.0]
    );
    let e = xe.index_select(0, &[3]).unwrap_err().to_string();
    assert!(e.contains("position 3 out of bounds"), "{e}");
}

#[test]
fn stack_rejects_empty_mismatched_and_bad_axis() {
    let e = TracedTensor::stack(&[], 0).unwrap_err().to_string();
    assert!(e.contains("stack"), "{e}");
    let (a, b) = (tv(&[2], &[1.0, 2.0]), tv(&[3], &[3.0, 4.0, 5.0]));
    let e = TracedTensor::stack(&[&a, &b], -1).unwrap_err().to_string();
    assert!(e.contains("stack"), "{e}");
    let e = TracedTensor::stack(&[&a], 2).unwrap_err().to_string();
    assert!(e.contains("axis"), "{e}");
    let ctx = eager_ctx();
    assert!(EagerTensor::stack(&[], 0).is_err());
    let ea = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0]).unwrap();
    let ec = ctx.from_vec_col_major(vec![2], vec![3.0_f64, 4.0]).unwrap();
    let s = EagerTensor::stack(&[&ea, &ec], 0).unwrap();
    assert_eq!(
        s.value().unwrap().as_slice::<f64>().unwrap(),
        &[1.0, 3.0, 2.0, 4.0]
    );
}

#[test]
fn reduction_derivatives_prod_max_min() {
    let ad = ad();
    let jvp =
        |f: &dyn Fn(&TracedTensor) -> TracedTensor, shape: &[usize], x: &[f64], dx: &[f64]| {
            let xt = TracedTensor::input(DType::F64, shape);
            let y = f(&xt);
            let t = ad.jvp(&y, &xt, &tv(shape, dx)).unwrap();
            let p = GraphCompiler::new().compile(&t).unwrap();
            let mut ex = GraphExecutor::new(CpuBackend::with_threads(1));
            let out = ex
                .run_with_inputs(
                    &p,
                    &[(
                        &xt,
                        Tensor::from_vec_col_major(shape.to_vec(), x.to_vec()).unwrap(),
                    )],
                )
                .unwrap();
            out.as_slice::<f64>().unwrap().to_vec()
        };
    let prod = |t: &TracedTensor| t.reduce_prod(&[0]);
    // JVP of a product with one zero factor, and with two
    close(
        &jvp(&prod, &[3], &[0.0, 2.0, 3.0], &[7.0, 11.0, 13.0]),
        &[42.0],
        1e-12,
    );
    close(
        &jvp(&prod, &[3], &[0.0, 2.0, 0.0], &[7.0, 11.0, 13.0]),
        &[0.0],
        1e-12,
    );
    close(
        &jvp(
            &prod,
            &[4],
            &[1.5, -2.0, 0.75, 4.0],
            &[0.25, -0.5, 1.0, 0.75],
        ),
        &[0.25 * -6.0 + -0.5 * 4.5 + 1.0 * -12.0 + 0.75 * -2.25],
        1e-12,
    );
    // VJP of reduce_prod over axis 0 of [2, 3] with zeros in the reduced columns
    let x = tv(&[2, 3], &[0.0, 2.0, 3.0, 4.0, 0.0, 0.0]);
    let ct = tv(&[3], &[0.5, -1.0, 2.0]);
    let g = ad.vjp(&x.reduce_prod(&[0]), &x, &ct).unwrap();
    close(&f64s(&g), &[1.0, 0.0, -4.0, -3.0, 0.0, 0.0], 1e-12);
    // max / min: ties share the derivative equally (the central difference)
    let maxf = |t: &TracedTensor| t.reduce_max(&[0]);
    let xs = [2.0, 2.0, 4.0, 1.0, -3.0, -3.0];
    let dx = [1.0, -0.5, 0.75, -1.25, 2.0, -1.0];
    close(&jvp(&maxf, &[2, 3], &xs, &dx), &[0.25, 0.75, 0.5], 1e-12);
    let x = tv(&[4], &[1.0, 3.0, 3.0, -2.0]);
    let g = ad.vjp(&x.reduce_max(&[0]), &x, &tv(&[], &[2.5])).unwrap();
    close(&f64s(&g), &[0.0, 1.25, 1.25, 0.0], 1e-12);
    let minf = |t: &TracedTensor| t.reduce_min(&[0]);
    close(
        &jvp(
            &minf,
            &[4],
            &[1.0, -2.0, 4.0, -2.0],
            &[0.5, 1.0, -1.0, -0.5],
        ),
        &[0.25],
        1e-12,
    );
}

#[test]
fn elementwise_and_broadcast_gradients_match_finite_differences() {
    let ad = ad();
    let x0 = [0.2, -0.7, 1.3];
    let pos = [0.8, 1.5, 2.4];
    type F = fn(&TracedTensor) -> TracedTensor;
    let cases: [(&str, F, &[f64]); 6] = [
        ("exp", |t| t.exp(), &x0),
        ("log", |t| t.log(), &pos),
        ("sin", |t| t.sin(), &x0),
        ("cos", |t| t.cos(), &x0),
        ("sqrt", |t| t.sqrt(), &pos),
        ("tanh", |t| t.tanh(), &x0),
    ];
    for (name, f, xs) in cases {
        let x = tv(&[3], xs);
        let g = f64s(&ad.grad(&f(&x).sum(), &x).unwrap());
        let want = fd_grad(|v| f64s(&f(&tv(&[3], v)).sum())[0], xs);
        for (g, w) in g.iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-6,
                "{name}: gradient {g:?}, differences {want:?}"
            );
        }
    }
    // div in both arguments
    let (xd, yd) = ([1.2, -2.4, 3.6], [0.5, -1.5, 2.0]);
    let (x, y) = (tv(&[3], &xd), tv(&[3], &yd));
    let l = (&x / &y).sum();
    let gx = f64s(&ad.grad(&l, &x).unwrap());
    let gy = f64s(&ad.grad(&l, &y).unwrap());
    close(&gx, &yd.map(|v| 1.0 / v), 1e-12);
    close(&gy, &[0, 1, 2].map(|i| -xd[i] / (yd[i] * yd[i])), 1e-12);
    // pow in the base, including a zero base with integer exponents
    let (b, e) = (tv(&[3], &[0.0, 2.0, 3.0]), tv(&[3], &[2.0, 3.0, 4.0]));
    close(
        &f64s(&ad.grad(&b.pow(&e).sum(), &b).unwrap()),
        &[0.0, 12.0, 108.0],
        1e-12,
    );
    // broadcasting transposes to a sum
    let v = tv(&[3], &[1.0, 2.0, 3.0]);
    let l = v.broadcast_in_dim(&[3, 3], &[0]).unwrap().sum();
    assert_eq!(f64s(&ad.grad(&l, &v).unwrap()), [3.0, 3.0, 3.0]);
    let s = tv(&[1], &[1.0]);
    let l = (&s + &v).sum();
    assert_eq!(f64s(&ad.grad(&l, &s).unwrap()), [3.0]);
    // reshape and transpose pass ones through
    let m = tv(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let g = ad.grad(&m.transpose(&[1, 0]).unwrap().sum(), &m).unwrap();
    assert_eq!(g.shape().unwrap(), vec![2, 3]);
    assert_eq!(f64s(&g), [1.0; 6]);
}

#[test]
fn eager_autodiff_bookkeeping() {
    let ctx = eager_ctx();
    let leaf = |d: &[f64]| {
        ctx.from_vec_col_major(vec![d.len()], d.to_vec())
            .unwrap()
            .requires_grad(true)
    };
    let grad = |t: &EagerTensor| t.grad().unwrap().as_slice::<f64>().unwrap().to_vec();
    // repeated backward accumulates
    let x = leaf(&[1.0, 2.0, 3.0]);
    (&x * &x).reduce_sum(&[0]).unwrap().backward().unwrap();
    assert_eq!(grad(&x), [2.0, 4.0, 6.0]);
    (&x * &x).reduce_sum(&[0]).unwrap().backward().unwrap();
    assert_eq!(grad(&x), [4.0, 8.0, 12.0]);
    // zero_grad resets one leaf only (upstream's clear_grad)
    let y = leaf(&[4.0, 5.0, 6.0]);
    x.zero_grad();
    (&x * &y).reduce_sum(&[0]).unwrap().backward().unwrap();
    x.zero_grad();
    assert!(x.grad().is_none());
    assert_eq!(grad(&y), [1.0, 2.0, 3.0]);
    // fan-out accumulates; detach cuts one path
    let z = leaf(&[1.0, 2.0, 3.0]);
    (&z + &z).reduce_sum(&[0]).unwrap().backward().unwrap();
    assert_eq!(grad(&z), [2.0, 2.0, 2.0]);
    let w = leaf(&[1.0, 2.0, 3.0]);
    let d = w.detach();
    (&d * &w).reduce_sum(&[0]).unwrap().backward().unwrap();
    assert_eq!(grad(&w), [1.0, 2.0, 3.0]);
    assert!(d.grad().is_none());
    // an untracked intermediate can feed a tracked computation
    let plain = ctx
        .from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0])
        .unwrap();
    let scale = &plain + &plain;
    let u = leaf(&[4.0, 5.0, 6.0]);
    (&u * &scale).reduce_sum(&[0]).unwrap().backward().unwrap();
    assert_eq!(grad(&u), [2.0, 4.0, 6.0]);
    // matmul gradients against finite differences
    let (ad_, bd) = (
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        [7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
    );
    let a = ctx
        .from_vec_col_major(vec![2, 3], ad_.to_vec())
        .unwrap()
        .requires_grad(true);
    let b = ctx
        .from_vec_col_major(vec![3, 2], bd.to_vec())
        .unwrap()
        .requires_grad(true);
    a.dot_general(&b, matmul_dims())
        .unwrap()
        .reduce_sum(&[0, 1])
        .unwrap()
        .backward()
        .unwrap();
    let f =
        |av: &[f64], bv: &[f64]| f64s(&tv(&[2, 3], av).matmul(&tv(&[3, 2], bv)).unwrap().sum())[0];
    close(&grad(&a), &fd_grad(|v| f(v, &bd), &ad_), 1e-6);
    close(&grad(&b), &fd_grad(|v| f(&ad_, v), &bd), 1e-6);
}

#[test]
fn linalg_decompositions_eager() {
    let ctx = eager_ctx();
    let m =
        |shape: &[usize], d: &[f64]| ctx.from_vec_col_major(shape.to_vec(), d.to_vec()).unwrap();
    let vals = |t: &EagerTensor| t.value().unwrap().as_slice::<f64>().unwrap().to_vec();
    let (u, s, vt) = m(&[2, 2], &[1.0, 0.0, 0.0, 2.0]).svd().unwrap();
    assert_eq!(
        (u.shape(), s.shape(), vt.shape()),
        (&[2usize, 2][..], &[2usize][..], &[2usize, 2][..])
    );
    assert_eq!(vals(&s), [2.0, 1.0]);
    let (q, r) = m(&[2, 2], &[1.0, 0.0, 0.0, 1.0]).qr().unwrap();
    assert_eq!((q.shape(), r.shape()), (&[2usize, 2][..], &[2usize, 2][..]));
    assert_eq!(
        vals(&m(&[2, 2], &[1.0, 0.0, 0.0, 1.0]).cholesky().unwrap()),
        [1.0, 0.0, 0.0, 1.0]
    );
    // LU of the swap matrix: P = swap, L = U = I, parity -1
    let (p, l, u, parity) = m(&[2, 2], &[0.0, 1.0, 1.0, 0.0]).lu_with_parity().unwrap();
    assert_eq!(vals(&p), [0.0, 1.0, 1.0, 0.0]);
    assert_eq!(vals(&l), [1.0, 0.0, 0.0, 1.0]);
    assert_eq!(vals(&u), [1.0, 0.0, 0.0, 1.0]);
    assert_eq!(parity.shape(), &[] as &[usize]);
    assert_eq!(vals(&parity), [-1.0]);
    // LU with complete pivoting: P A Qᵀ = L U, and its solve
    let a = m(&[2, 2], &[1.0, 2.0, 100.0, 3.0]);
    let (p, l, u, q, parity) = a.full_piv_lu().unwrap();
    assert_eq!(vals(&q), [0.0, 1.0, 1.0, 0.0]);
    assert_eq!(vals(&u)[0], 100.0);
    assert_eq!(parity.shape(), &[] as &[usize]);
    let paq = p.matmul(&a).unwrap().matmul(&q.mt().unwrap()).unwrap();
    close(&vals(&paq), &vals(&l.matmul(&u).unwrap()), 1e-14);
    let x = m(&[2, 2], &[0.0, 2.0, 1.0, 3.0])
        .full_piv_lu_solve(&m(&[2, 1], &[-1.0, 5.0]))
        .unwrap();
    close(&vals(&x), &[4.0, -1.0], 1e-14);
    let x = m(&[2, 2], &[2.0, 0.0, 0.0, 4.0])
        .solve(&m(&[2, 1], &[4.0, 8.0]))
        .unwrap();
    assert_eq!(vals(&x), [2.0, 2.0]);
    // eig of a diagonal matrix: complex eigenvalues {1, 3}
    let (w, v) = m(&[2, 2], &[1.0, 0.0, 0.0, 3.0]).eig().unwrap();
    assert_eq!((w.shape(), v.shape()), (&[2usize][..], &[2usize, 2][..]));
    let mut ws = w.value().unwrap().as_slice::<Complex64>().unwrap().to_vec();
    ws.sort_by(|a, b| a.re.total_cmp(&b.re));
    assert_eq!(ws, [Complex64::new(1.0, 0.0), Complex64::new(3.0, 0.0)]);
    // pinv with an explicit tolerance drops the small singular value
    let pi = m(&[2, 2], &[1.0, 0.0, 0.0, 1e-12])
        .pinv_with_rtol(1e-6)
        .unwrap();
    close(&vals(&pi), &[1.0, 0.0, 0.0, 0.0], 1e-15);
    assert!(m(&[2, 2], &[1.0, 0.0, 0.0, 1.0])
        .pinv_with_rtol(-1.0)
        .is_err());
}

#[test]
fn linalg_derivatives_eager_and_traced() {
    let ctx = eager_ctx();
    // d Σ solve(A, b) / dA over a batch of two diagonal systems
    let a = ctx
        .from_vec_col_major(
            vec![2, 2, 2],
            vec![2.0_f64, 0.0, 0.0, 4.0, 3.0, 0.0, 0.0, 5.0],
        )
        .unwrap()
        .requires_grad(true);
    let b = ctx
        .from_vec_col_major(vec![2, 1, 2], vec![4.0_f64, 8.0, 6.0, 10.0])
        .unwrap();
    a.solve(&b)
        .unwrap()
        .reduce_sum(&[0, 1, 2])
        .unwrap()
        .backward()
        .unwrap();
    let g = a.grad().unwrap();
    assert_eq!(g.shape(), &[2, 2, 2]);
    close(
        g.as_slice::<f64>().unwrap(),
        &[-1.0, -0.5, -1.0, -0.5, -2.0 / 3.0, -0.4, -2.0 / 3.0, -0.4],
        1e-12,
    );
    // d Σ svdvals(A) / dA = U Vᵀ, checked by finite differences (f64)
    let a0 = [
        1.05, 0.02, -0.03, 0.01, 0.04, 1.3, 0.02, -0.05, 0.01, 0.03, 1.6, 0.02, -0.02, 0.01, 0.05,
        1.9,
    ];
    let x = tv(&[4, 4], &a0);
    let (_, s, _) = x.svd().unwrap();
    let g = f64s(&ad().grad(&s.sum(), &x).unwrap());
    let want = fd_grad(|v| f64s(&tv(&[4, 4], v).svdvals().unwrap().sum())[0], &a0);
    close(&g, &want, 1e-6);
    // and for c64: the gradient of the real loss Σ s wrt the real part of A
    let z: Vec<Complex64> = a0
        .iter()
        .enumerate()
        .map(|(i, &v)| Complex64::new(v, 0.01 * i as f64))
        .collect();
    let zt = TracedTensor::from_vec_col_major(vec![4, 4], z.clone());
    let gz = run(&ad().grad(&zt.svdvals().unwrap().sum(), &zt).unwrap());
    let re_fd = fd_grad(
        |v| {
            let zz: Vec<Complex64> = v
                .iter()
                .zip(&z)
                .map(|(&r, c)| Complex64::new(r, c.im))
                .collect();
            f64s(
                &TracedTensor::from_vec_col_major(vec![4, 4], zz)
                    .svdvals()
                    .unwrap()
                    .sum(),
            )[0]
        },
        &a0,
    );
    let re: Vec<f64> = gz
        .as_slice::<Complex64>()
        .unwrap()
        .iter()
        .map(|c| c.re)
        .collect();
    close(&re, &re_fd, 1e-6);
}

#[test]
fn linalg_solve_tiny_pivots_and_singular_errors() {
    // scaling is not a rank cutoff: a 2^-600 diagonal solves exactly
    let sc = 2f64.powi(-600);
    let a = tv(&[2, 2], &[sc, 0.0, 0.0, 2.0 * sc]);
    let b = tv(&[2, 1], &[3.0 * sc, 10.0 * sc]);
    close(&f64s(&a.solve(&b).unwrap()), &[3.0, 5.0], 1e-12);
    // a vector right-hand side keeps its rank
    let x = tv(&[2, 2], &[3.0, 1.0, 0.0, 2.0])
        .solve(&tv(&[2], &[7.0, 4.0]))
        .unwrap();
    assert_eq!(x.shape().unwrap(), vec![2]);
    close(&f64s(&x), &[7.0 / 3.0, 5.0 / 6.0], 1e-14);
    // a singular system is a run-time error naming solve
    let s = tv(&[2, 2], &[1.0, 2.0, 2.0, 4.0])
        .solve(&tv(&[2, 1], &[3.0, 6.0]))
        .unwrap();
    let p = GraphCompiler::new().compile(&s).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::with_threads(1));
    ex.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let e = ex.run(&p).unwrap_err().to_string();
    assert!(e.contains("singular"), "{e}");
}

#[test]
fn einsum_forms_paths_and_errors() {
    let a = tv(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = tv(&[3, 4], &(1..=12).map(f64::from).collect::<Vec<_>>());
    let c = tv(&[4, 2], &(1..=8).map(f64::from).collect::<Vec<_>>());
    let auto = f64s(&einsum("ij,jk,kl->il", &[&a, &b, &c]).unwrap());
    let want = f64s(&a.matmul(&b).unwrap().matmul(&c).unwrap());
    close(&auto, &want, 1e-12);
    // upstream's EinsumOptimize::False (left to right) is an empty path; an explicit path
    for path in [vec![], vec![(0, 1), (0, 1)], vec![(1, 2), (0, 1)]] {
        let opts = EinsumOptions {
            optimize: Optimize::Path(path),
            ..EinsumOptions::default()
        };
        close(
            &f64s(&einsum_with("ij,jk,kl->il", &[&a, &b, &c], &opts).unwrap()),
            &want,
            1e-12,
        );
    }
    // upstream's EinsumOptimize::Nested: the order written with parentheses
    for nested in ["(ij,jk),kl->il", "ij,(jk,kl)->il"] {
        let opts = EinsumOptions {
            optimize: Optimize::nested(nested).unwrap(),
            ..EinsumOptions::default()
        };
        close(
            &f64s(&einsum_with("ij,jk,kl->il", &[&a, &b, &c], &opts).unwrap()),
            &want,
            1e-12,
        );
    }
    // repeated indices: traces and diagonals
    let t = tv(&[3, 2, 3], &(1..=18).map(f64::from).collect::<Vec<_>>());
    let at = |i: usize, j: usize, k: usize| (1 + i + 3 * j + 6 * k) as f64;
    let want: Vec<f64> = (0..2).map(|j| (0..3).map(|i| at(i, j, i)).sum()).collect();
    assert_eq!(f64s(&einsum("iji->j", &[&t]).unwrap()), want);
    let q = tv(&[3, 3, 3, 3], &(0..81).map(f64::from).collect::<Vec<_>>());
    let want: f64 = (0..3)
        .flat_map(|i| (0..3).map(move |j| (i + 3 * i + 9 * j + 27 * j) as f64))
        .sum();
    assert_eq!(f64s(&einsum("iijj->", &[&q]).unwrap()), [want]);
    let d = tv(&[2, 3, 3], &(0..18).map(f64::from).collect::<Vec<_>>());
    let at = |i: usize, j: usize, k: usize| (i + 2 * j + 6 * k) as f64;
    let want: Vec<f64> = (0..2).map(|i| (0..3).map(|j| at(i, j, j)).sum()).collect();
    assert_eq!(f64s(&einsum("ijj->i", &[&d]).unwrap()), want);
    let want: Vec<f64> = (0..3)
        .flat_map(|j| (0..2).map(move |i| at(i, j, j)))
        .collect();
    assert_eq!(f64s(&einsum("ijj->ij", &[&d]).unwrap()), want);
    let e = tv(&[3, 2, 2], &(0..12).map(f64::from).collect::<Vec<_>>());
    let at = |j: usize, i: usize, k: usize| (j + 3 * i + 6 * k) as f64;
    let want: Vec<f64> = (0..3).map(|j| at(j, 0, 0) + at(j, 1, 1)).collect();
    assert_eq!(f64s(&einsum("jii->j", &[&e]).unwrap()), want);
    // scalar operands
    let (three, two, seven) = (tv(&[], &[3.0]), tv(&[], &[2.0]), tv(&[], &[7.0]));
    let v4 = tv(&[4], &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        f64s(&einsum(",k->k", &[&three, &v4]).unwrap()),
        [3.0, 6.0, 9.0, 12.0]
    );
    let v3 = tv(&[3], &[10.0, 20.0, 30.0]);
    assert_eq!(
        f64s(&einsum("i,->i", &[&v3, &two]).unwrap()),
        [20.0, 40.0, 60.0]
    );
    assert_eq!(f64s(&einsum(",->", &[&three, &seven]).unwrap()), [21.0]);
    // errors
    let sq = tv(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert!(einsum("ij->i", &[&v3]).is_err(), "rank mismatch");
    assert!(einsum("->", &[]).is_err(), "no operands");
    assert!(einsum("ij,jk->ik", &[&sq]).is_err(), "operand count");
    assert!(einsum("ij,jk->ik", &[&a, &sq]).is_err(), "extent mismatch");
    let e = einsum("ij->ik", &[&sq]).unwrap_err().to_string();
    assert!(e.contains('k'), "{e}");
    assert!(einsum("ii->", &[&a]).is_err(), "non-square trace");
}

#[test]
fn structural_primitive_gradients_and_diag_layout() {
    let ctx = eager_ctx();
    let leaf = |shape: &[usize], d: &[f64]| {
        ctx.from_vec_col_major(shape.to_vec(), d.to_vec())
            .unwrap()
            .requires_grad(true)
    };
    let konst = |d: &[f64]| ctx.from_vec_col_major(vec![d.len()], d.to_vec()).unwrap();
    let grad = |t: &EagerTensor| t.grad().unwrap().as_slice::<f64>().unwrap().to_vec();
    let wsum = |v: &[f64], w: &[f64]| v.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();

    // maximum / minimum (no ties)
    let (xd, yd) = ([3.0, -2.0, 0.5, 4.0], [1.0, 5.0, -1.0, 2.0]);
    let (wmax, wmin) = ([0.5, -1.25, 2.0, -0.75], [1.5, -0.25, 0.75, 2.25]);
    let (x, y) = (leaf(&[4], &xd), leaf(&[4], &yd));
    let l = &(&x.maximum(&y).unwrap() * &konst(&wmax))
        .reduce_sum(&[0])
        .unwrap()
        + &(&x.minimum(&y).unwrap() * &konst(&wmin))
            .reduce_sum(&[0])
            .unwrap();
    l.backward().unwrap();
    let f = |a: &[f64], b: &[f64]| {
        let mx: Vec<f64> = a.iter().zip(b).map(|(p, q)| p.max(*q)).collect();
        let mn: Vec<f64> = a.iter().zip(b).map(|(p, q)| p.min(*q)).collect();
        wsum(&mx, &wmax) + wsum(&mn, &wmin)
    };
    close(&grad(&x), &fd_grad(|v| f(v, &yd), &xd), 1e-6);
    close(&grad(&y), &fd_grad(|v| f(&xd, v), &yd), 1e-6);

    // select: each branch gets the weights where it is chosen
    let c = ctx
        .from_vec_col_major(vec![4], vec![false, true, true, false])
        .unwrap();
    let (t, e) = (
        leaf(&[4], &[10.0, 20.0, 30.0, 40.0]),
        leaf(&[4], &[1.0, 2.0, 3.0, 4.0]),
    );
    let w = [0.5, -1.0, 2.0, 1.25];
    (&EagerTensor::where_select(&c, &t, &e).unwrap() * &konst(&w))
        .reduce_sum(&[0])
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(grad(&t), [0.0, -1.0, 2.0, 0.0]);
    assert_eq!(grad(&e), [0.5, 0.0, 0.0, 1.25]);

    // clamp with tensor bounds: the gradient goes to whichever of x, lo, hi is chosen
    let (xd, lod, hid) = (
        [-2.0, 0.5, 5.0, 2.0],
        [-1.0, 0.0, 1.0, 0.0],
        [1.0, 2.0, 4.0, 3.0],
    );
    let w = [0.5, -1.25, 2.0, 0.75];
    let (x, lo, hi) = (leaf(&[4], &xd), leaf(&[4], &lod), leaf(&[4], &hid));
    (&x.clamp_tensors(&lo, &hi).unwrap() * &konst(&w))
        .reduce_sum(&[0])
        .unwrap()
        .backward()
        .unwrap();
    let f = |x: &[f64], lo: &[f64], hi: &[f64]| {
        let v: Vec<f64> = (0..4).map(|i| lo[i].max(hi[i].min(x[i]))).collect();
        wsum(&v, &w)
    };
    close(&grad(&x), &fd_grad(|v| f(v, &lod, &hid), &xd), 1e-6);
    close(&grad(&lo), &fd_grad(|v| f(&xd, v, &hid), &lod), 1e-6);
    close(&grad(&hi), &fd_grad(|v| f(&xd, &lod, v), &hid), 1e-6);

    // extract_diag of a rectangular matrix: [2, 3] → [2]
    let a = leaf(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let d = a.extract_diag(0, 1).unwrap();
    assert_eq!(d.value().unwrap().as_slice::<f64>().unwrap(), &[1.0, 4.0]);
    (&d * &konst(&[0.5, -1.25]))
        .reduce_sum(&[0])
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(grad(&a), [0.5, 0.0, 0.0, -1.25, 0.0, 0.0]);
    // a batch of matrices keeps the diagonal first: [2, 2, 3] → [2, 3]
    let b = tv(&[2, 2, 3], &(0..12).map(f64::from).collect::<Vec<_>>());
    let bd = b.extract_diag(0, 1).unwrap();
    assert_eq!(bd.shape().unwrap(), vec![2, 3]);
    assert_eq!(f64s(&bd), [0.0, 3.0, 4.0, 7.0, 8.0, 11.0]);

    // embed_diag(1, 0): [2, 3] → [3, 2, 3] with out[j, i, j] = in[i, j]
    let xd = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let w: Vec<f64> = vec![
        0.5, -1.0, 1.5, 2.0, -0.25, 0.75, 1.25, -1.5, 0.25, -0.5, 2.5, -2.0, 0.0, 3.0, -3.5, 4.0,
        -4.5, 5.0,
    ];
    let x = leaf(&[2, 3], &xd);
    let emb = x.embed_diag(1, 0).unwrap();
    assert_eq!(emb.shape(), &[3, 2, 3]);
    let ev = emb.value().unwrap().as_slice::<f64>().unwrap().to_vec();
    for (o, v) in ev.iter().enumerate() {
        let (j0, i, j1) = (o % 3, (o / 3) % 2, o / 6);
        let want = if j0 == j1 { xd[i + 2 * j0] } else { 0.0 };
        assert_eq!(*v, want, "embed_diag[{j0}, {i}, {j1}]");
    }
    let wt = ctx.from_vec_col_major(vec![3, 2, 3], w.clone()).unwrap();
    (&emb * &wt)
        .reduce_sum(&[0, 1, 2])
        .unwrap()
        .backward()
        .unwrap();
    let want: Vec<f64> = (0..6)
        .map(|k| w[k / 2 + 3 * (k % 2 + 2 * (k / 2))])
        .collect();
    assert_eq!(grad(&x), want);
    // embed_diag undoes extract_diag on the diagonal
    let m = tv(&[3, 3, 2], &(0..18).map(f64::from).collect::<Vec<_>>());
    let back = m.extract_diag(0, 1).unwrap().embed_diag(0, 1).unwrap();
    let diag_only = m.extract_diag(0, 1).unwrap();
    assert_eq!(f64s(&back.extract_diag(0, 1).unwrap()), f64s(&diag_only));
    assert!(tv(&[2], &[1.0, 2.0]).embed_diag(0, 2).is_err());

    // concatenate splits the cotangent
    let (l0, l1, l2) = (
        leaf(&[2], &[1.0, 2.0]),
        leaf(&[1], &[3.0]),
        leaf(&[3], &[4.0, 5.0, 6.0]),
    );
    let w = [0.5, -1.0, 2.0, 1.5, -0.25, 0.75];
    (&EagerTensor::concatenate(&[&l0, &l1, &l2], 0).unwrap() * &konst(&w))
        .reduce_sum(&[0])
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        (grad(&l0), grad(&l1), grad(&l2)),
        (w[..2].to_vec(), w[2..3].to_vec(), w[3..].to_vec())
    );
    assert!(EagerTensor::concatenate(&[], 0).is_err());
}

#[test]
fn axis_validation_errors() {
    let ctx = eager_ctx();
    let x = ctx
        .from_vec_col_major(vec![2, 3], vec![1.0_f64; 6])
        .unwrap()
        .requires_grad(true);
    let e = x.reduce_sum(&[2]).unwrap_err().to_string();
    assert!(e.contains("axis") && e.contains('2'), "{e}");
    for e in [
        x.reduce_sum(&[0, 0]).unwrap_err(),
        x.reduce_prod(&[0, 0]).unwrap_err(),
        x.reduce_max(&[0, 0]).unwrap_err(),
        x.reduce_min(&[0, 0]).unwrap_err(),
        x.reverse(&[0, 0]).unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(
            e.contains('0')
                && (e.contains("repeat") || e.contains("duplicate") || e.contains("twice")),
            "{e}"
        );
    }
    let t = tv(&[2, 3], &[1.0; 6]);
    assert!(t.reduce_sum(&[0, 0]).error().is_some());
    assert!(t.transpose(&[0, 0]).is_err());
}

#[test]
fn hessian_vector_products_forward_over_reverse_and_reverse_over_reverse() {
    use tenferro_ad::TracedTensorAdExt;
    // f(x) = x³ → f'' = 6x
    let x = tv(&[], &[2.5]);
    let g = (&(&x * &x) * &x).grad(&x).unwrap();
    close(&f64s(&g.jvp(&x, &tv(&[], &[1.0])).unwrap()), &[15.0], 1e-12);
    // f(x) = exp(sin x)
    let xv = 1.3f64;
    let x = tv(&[], &[xv]);
    let g = x.sin().exp().grad(&x).unwrap();
    let want = (-xv.sin() + xv.cos().powi(2)) * xv.sin().exp();
    close(&f64s(&g.jvp(&x, &tv(&[], &[1.0])).unwrap()), &[want], 1e-12);
    // Σ exp(x): H v = exp(x) ⊙ v
    let (xd, vd) = ([0.5, 1.0, -0.3], [1.0, 2.0, 3.0]);
    let x = tv(&[3], &xd);
    let hv = x
        .exp()
        .sum()
        .grad(&x)
        .unwrap()
        .jvp(&x, &tv(&[3], &vd))
        .unwrap();
    close(&f64s(&hv), &[0, 1, 2].map(|i| xd[i].exp() * vd[i]), 1e-12);
    // xᵀ A x: H v = (A + Aᵀ) v, both forward-over-reverse and reverse-over-reverse
    let a = tv(&[2, 2], &[2.0, 0.5, 1.5, 3.0]);
    let x = tv(&[2], &[1.0, -1.0]);
    let v = tv(&[2], &[0.5, 2.0]);
    let dims = |c: usize| DotDims {
        lhs_contract: vec![c],
        rhs_contract: vec![0],
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    let ax = a.dot_general(&x, dims(1)).unwrap();
    let y = x.dot_general(&ax, dims(0)).unwrap();
    let g = y.grad(&x).unwrap();
    close(&f64s(&g.jvp(&x, &v).unwrap()), &[6.0, 13.0], 1e-12);
    let gv = g.dot_general(&v, dims(0)).unwrap();
    close(&f64s(&gv.grad(&x).unwrap()), &[6.0, 13.0], 1e-12);
}

#[test]
fn slicing_along_one_axis() {
    // upstream's eager slice_axis(0, 1..3) and slice_builder().axis(..).axis_step(..)
    let ctx = eager_ctx();
    let d: Vec<f64> = (1..=12).map(f64::from).collect();
    let x = ctx.from_vec_col_major(vec![3, 4], d.clone()).unwrap();
    let rows = x.slice_in_dim(1, 3, 1, 0).unwrap();
    assert_eq!(rows.shape(), &[2, 4]);
    assert_eq!(
        rows.value().unwrap().as_slice::<f64>().unwrap(),
        &[2.0, 3.0, 5.0, 6.0, 8.0, 9.0, 11.0, 12.0]
    );
    let strided = rows.slice_in_dim(0, 4, 2, 1).unwrap();
    assert_eq!(
        strided.value().unwrap().as_slice::<f64>().unwrap(),
        &[2.0, 3.0, 8.0, 9.0]
    );
    // the builder's take_axis(1, &[3, 1, 3]) is index_select
    let mixed = x
        .slice_in_dim(0, 2, 1, 0)
        .unwrap()
        .index_select(1, &[3, 1, 3])
        .unwrap();
    assert_eq!(
        mixed.value().unwrap().as_slice::<f64>().unwrap(),
        &[10.0, 11.0, 4.0, 5.0, 10.0, 11.0]
    );
    let t = tv(&[3, 4], &d);
    assert_eq!(
        f64s(&t.slice_in_dim(1, 4, 2, -1).unwrap()),
        [4.0, 5.0, 6.0, 10.0, 11.0, 12.0]
    );
    for e in [
        t.slice_in_dim(2, 1, 1, 0).unwrap_err(),
        t.slice_in_dim(0, 5, 1, 0).unwrap_err(),
        t.slice_in_dim(0, 1, 0, 0).unwrap_err(),
        t.slice_in_dim(0, 1, 1, 2).unwrap_err(),
    ] {
        assert!(e.to_string().contains("slice_in_dim"), "{e}");
    }
    // its gradient scatters back
    let x = ctx
        .from_vec_col_major(vec![4], vec![1.0_f64, 2.0, 3.0, 4.0])
        .unwrap()
        .requires_grad(true);
    x.slice_in_dim(1, 4, 2, 0)
        .unwrap()
        .reduce_sum(&[0])
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        x.grad().unwrap().as_slice::<f64>().unwrap(),
        &[0.0, 1.0, 0.0, 1.0]
    );
}
