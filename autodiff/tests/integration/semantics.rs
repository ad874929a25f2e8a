//! The semantics users rely on: zero gradients of independent losses, broadcasting undone
//! in reverse mode, tie splitting, JAX's values at non-differentiable points, and the
//! complex convention of the crate docs.

use crate::common;

use common::*;
use num_complex::Complex64;
use tenferro_ad::{AdContext, TracedTensorAdExt};
use tenferro_runtime::{DType, TracedTensor};

fn vec_f64(v: &[f64]) -> TracedTensor {
    TracedTensor::from_vec_col_major(vec![v.len()], v.to_vec())
}

#[test]
fn independent_loss_gives_zeros_of_x_shape() {
    let x = TracedTensor::input(DType::F64, &[2, 3]);
    let w = vec_f64(&[1.0, 2.0]);
    let loss = (&w * &w).sum();
    let g = loss.grad(&x).unwrap();
    assert_eq!(g.ty().unwrap(), x.ty().unwrap());
    let out = run(&g);
    assert_eq!(out.shape(), &[2, 3]);
    assert_eq!(f64s(&out), vec![0.0; 6]);
}

#[test]
fn jvp_and_vjp_of_an_independent_output_are_zeros() {
    let x = vec_f64(&[1.0, 2.0]);
    let y = vec_f64(&[3.0, 4.0, 5.0]).exp();
    let dy = y.jvp(&x, &vec_f64(&[1.0, 1.0])).unwrap();
    assert_eq!(f64s(&run(&dy)), vec![0.0; 3]);
    let ct = y.vjp(&x, &vec_f64(&[1.0, 1.0, 1.0])).unwrap();
    assert_eq!(f64s(&run(&ct)), vec![0.0; 2]);
}

#[test]
fn gradient_of_the_input_itself_and_through_integers() {
    let x = vec_f64(&[1.5]);
    assert_eq!(f64s(&run(&x.grad(&x).unwrap())), vec![1.0]);
    // Rounding through i64 is piecewise constant: no gradient flows through it.
    let r = x.convert(DType::I64).unwrap().convert(DType::F64).unwrap();
    let loss = (&r * &x).sum();
    assert_eq!(f64s(&run(&loss.grad(&x).unwrap())), vec![1.0]);
}

#[test]
fn broadcasting_is_undone_by_summing_cotangents() {
    // loss = Σ_ij x_ij · b_j; ∂/∂b_j = Σ_i x_ij, shape [3].
    let x = TracedTensor::from_vec_col_major(vec![2, 3], vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = vec_f64(&[1.0, 1.0, 1.0]);
    let s = TracedTensor::scalar(2.0_f64);
    let loss = (&(&x * &b) * &s).sum();
    let ad = AdContext::new();
    let g = ad.grad_many(&loss, &[&b, &s]).unwrap();
    assert_eq!(g[0].shape().unwrap(), vec![3]);
    assert_eq!(f64s(&run(&g[0])), vec![6.0, 14.0, 22.0]);
    assert_eq!(g[1].shape().unwrap(), Vec::<usize>::new());
    assert_eq!(f64s(&run(&g[1])), vec![21.0]);
}

#[test]
fn maximum_and_minimum_split_ties_evenly() {
    let x = vec_f64(&[1.0, 2.0, 3.0]);
    let y = vec_f64(&[1.0, 5.0, 0.0]);
    let ad = AdContext::new();
    let g = ad.grad_many(&x.maximum(&y).sum(), &[&x, &y]).unwrap();
    assert_eq!(f64s(&run(&g[0])), vec![0.5, 0.0, 1.0]);
    assert_eq!(f64s(&run(&g[1])), vec![0.5, 1.0, 0.0]);
    let g = ad.grad_many(&x.minimum(&y).sum(), &[&x, &y]).unwrap();
    assert_eq!(f64s(&run(&g[0])), vec![0.5, 1.0, 0.0]);
    assert_eq!(f64s(&run(&g[1])), vec![0.5, 0.0, 1.0]);
    // maximum(x, x) has derivative 1.
    assert_eq!(
        f64s(&run(&x.maximum(&x).sum().grad(&x).unwrap())),
        vec![1.0, 1.0, 1.0]
    );
}

#[test]
fn reduce_max_and_min_split_ties_among_all_extrema() {
    let x = vec_f64(&[1.0, 3.0, 3.0, -2.0, 3.0]);
    let g = x.reduce_max(&[0]).grad(&x).unwrap();
    let third = 1.0 / 3.0;
    assert_eq!(f64s(&run(&g)), vec![0.0, third, third, 0.0, third]);
    let y = vec_f64(&[0.0, -1.0, 4.0, -1.0]);
    let g = y.reduce_min(&[0]).grad(&y).unwrap();
    assert_eq!(f64s(&run(&g)), vec![0.0, 0.5, 0.0, 0.5]);
}

#[test]
fn values_at_non_differentiable_points_follow_jax() {
    let x = vec_f64(&[0.0, -2.0, 3.0]);
    // d|x|/dx = sign(x): 0 at 0.
    assert_eq!(
        f64s(&run(&x.abs().sum().grad(&x).unwrap())),
        vec![0.0, -1.0, 1.0]
    );
    // sign' = 0 everywhere.
    assert_eq!(f64s(&run(&x.sign().sum().grad(&x).unwrap())), vec![0.0; 3]);
    // sqrt'(0) = +inf.
    let z = vec_f64(&[0.0, 4.0]);
    assert_eq!(
        f64s(&run(&z.sqrt().sum().grad(&z).unwrap())),
        vec![f64::INFINITY, 0.25]
    );
    // d|z|/dz at complex 0 is 0.
    let c = TracedTensor::from_vec_col_major(vec![1], vec![Complex64::new(0.0, 0.0)]);
    assert_eq!(
        as_c64(&run(&c.abs().sum().grad(&c).unwrap())),
        vec![Complex64::new(0.0, 0.0)]
    );
}

#[test]
fn reduce_prod_gradient_with_zeros() {
    // ∂/∂x_i Π x = Π_{j≠i} x_j, exact with a zero present.
    let x = vec_f64(&[2.0, 0.0, 3.0]);
    assert_eq!(
        f64s(&run(&x.reduce_prod(&[0]).grad(&x).unwrap())),
        vec![0.0, 6.0, 0.0]
    );
    let two_zeros = vec_f64(&[0.0, 5.0, 0.0]);
    assert_eq!(
        f64s(&run(&two_zeros.reduce_prod(&[0]).grad(&two_zeros).unwrap())),
        vec![0.0, 0.0, 0.0]
    );
    let no_zero = vec_f64(&[2.0, 4.0, 3.0]);
    assert_eq!(
        f64s(&run(&no_zero.reduce_prod(&[0]).grad(&no_zero).unwrap())),
        vec![12.0, 6.0, 8.0]
    );
    // Second order at a zero: ∂²(x0·x1·x2)/∂x1∂x0 = x2 = 3, via grad of one gradient entry.
    let g = x.reduce_prod(&[0]).grad(&x).unwrap();
    let g1 = g.slice(&[1], &[2]).unwrap().sum();
    assert_eq!(f64s(&run(&g1.grad(&x).unwrap())), vec![3.0, 0.0, 2.0]);
}

#[test]
fn complex_gradient_convention_worked_example() {
    // L(z) = |z|² = x² + y²: grad = ∂L/∂x + i·∂L/∂y = 2z; at 3 + 4i that is 6 + 8i.
    let z = TracedTensor::from_vec_col_major(vec![1], vec![Complex64::new(3.0, 4.0)]);
    let loss = (&z * &z.conj()).real().sum();
    assert_eq!(
        as_c64(&run(&loss.grad(&z).unwrap())),
        vec![Complex64::new(6.0, 8.0)]
    );
    // L = |z|: grad = z/|z|.
    let g = z.abs().sum().grad(&z).unwrap();
    let got = as_c64(&run(&g))[0];
    assert!((got - Complex64::new(0.6, 0.8)).norm() < 1e-15, "{got}");
    // L = Im(z): grad = i.
    let g = z.imag().sum().grad(&z).unwrap();
    assert_eq!(as_c64(&run(&g)), vec![Complex64::new(0.0, 1.0)]);
}

#[test]
fn vjp_of_holomorphic_function_is_cotangent_times_conjugate_derivative() {
    // f(z) = z²·exp(z), f'(z) = (2z + z²)·exp(z); vjp with c is c·conj(f'(z)).
    let z0 = Complex64::new(0.3, -0.8);
    let c0 = Complex64::new(-1.2, 0.5);
    let z = TracedTensor::from_vec_col_major(vec![1], vec![z0]);
    let c = TracedTensor::from_vec_col_major(vec![1], vec![c0]);
    let y = &(&z * &z) * &z.exp();
    let got = as_c64(&run(&y.vjp(&z, &c).unwrap()))[0];
    let fp = (z0 * 2.0 + z0 * z0) * z0.exp();
    assert!((got - c0 * fp.conj()).norm() < 1e-14, "{got}");
    // The jvp is f'(z)·dz.
    let dz0 = Complex64::new(0.25, 1.0);
    let dz = TracedTensor::from_vec_col_major(vec![1], vec![dz0]);
    let got = as_c64(&run(&y.jvp(&z, &dz).unwrap()))[0];
    assert!((got - fp * dz0).norm() < 1e-14, "{got}");
}

#[test]
fn value_and_grad_and_many_inputs() {
    let x = vec_f64(&[1.0, 2.0]);
    let y = vec_f64(&[3.0, -1.0]);
    let loss = (&x * &y).sum();
    let ad = AdContext::new();
    let (v, g) = ad.value_and_grad(&loss, &x).unwrap();
    assert_eq!(f64s(&run(&v)), vec![1.0]);
    assert_eq!(f64s(&run(&g)), vec![3.0, -1.0]);
    let gs = ad.grad_many(&loss, &[&x, &y]).unwrap();
    assert_eq!(f64s(&run(&gs[1])), vec![1.0, 2.0]);
    let cts = ad
        .vjp_many(&(&x * &y), &[&x, &y], &vec_f64(&[1.0, 10.0]))
        .unwrap();
    assert_eq!(f64s(&run(&cts[0])), vec![3.0, -10.0]);
    assert_eq!(f64s(&run(&cts[1])), vec![1.0, 20.0]);
    let dy = ad
        .jvp_many(
            &(&x * &y),
            &[&x, &y],
            &[&vec_f64(&[1.0, 0.0]), &vec_f64(&[0.0, 1.0])],
        )
        .unwrap();
    assert_eq!(f64s(&run(&dy)), vec![3.0, 2.0]);
}

#[test]
fn one_element_loss_of_rank_one_is_a_scalar_loss() {
    let x = vec_f64(&[1.0, 2.0]);
    let loss = (&x * &x).reduce_sum(&[0]).reshape(&[1, 1]).unwrap();
    assert_eq!(f64s(&run(&loss.grad(&x).unwrap())), vec![2.0, 4.0]);
}

#[test]
fn linear_program_holds_only_tangent_dependent_instructions() {
    use tenferro_runtime::ir::Op;
    use tenferro_runtime::{lower, LowerMode};
    // y = exp(sin(x)) · w: the tangent program is dx·cos(x)·exp(sin x)·w; everything
    // built from x alone (sin, cos, exp) must be a residual parameter, not an instruction.
    let x = TracedTensor::input(DType::F64, &[3]);
    let w = vec_f64(&[1.0, 2.0, 3.0]);
    let y = &x.sin().exp() * &w;
    let l = lower(&[&y], &[&x], LowerMode::Dependent).unwrap();
    let lin =
        tenferro_ad::linearize(&l.function, &tenferro_ad::Rules::new(), &l.params, 1).unwrap();
    assert_eq!(lin.linear.params().len(), 1 + lin.residuals.len());
    for inst in lin.linear.insts() {
        assert!(
            matches!(inst.op, Op::Binary(_) | Op::Unary(_)),
            "unexpected op {} in the linear program",
            inst.op.name()
        );
        assert!(
            !matches!(
                inst.op,
                Op::Unary(tenferro_runtime::ir::UnaryOp::Sin)
                    | Op::Unary(tenferro_runtime::ir::UnaryOp::Cos)
                    | Op::Unary(tenferro_runtime::ir::UnaryOp::Exp)
            ),
            "primal op {} left in the linear program",
            inst.op.name()
        );
    }
    assert_eq!(
        lin.linear.insts().len(),
        3,
        "{}",
        tenferro_runtime::ir::print::print(&lin.linear)
    );
}

#[test]
fn vjp_functions_split_reverse_mode_into_cacheable_functions() {
    use tenferro_runtime::ir::eval::eval;
    use tenferro_runtime::{lower, LowerMode, Tensor};
    // f(x, w) = (sin(x)·w, Σ x²); cotangents of x from the forward residuals.
    let x = TracedTensor::input(DType::F64, &[3]);
    let w = TracedTensor::input(DType::F64, &[3]);
    let y1 = &x.sin() * &w;
    let y2 = (&x * &x).sum();
    let f = lower(&[&y1, &y2], &[&x, &w], LowerMode::Program)
        .unwrap()
        .function;
    let split = tenferro_ad::vjp_functions(&f, &tenferro_ad::Rules::new(), 1).unwrap();
    let xv = [0.3, -1.0, 2.0];
    let wv = [1.5, 2.0, -0.5];
    let t = |v: &[f64]| Tensor::from_vec_col_major(vec![v.len()], v.to_vec()).unwrap();
    let fwd = eval(&split.forward, &[t(&xv), t(&wv)]).unwrap();
    assert_eq!(fwd.len(), 2 + split.num_residuals);
    let mut bwd_in: Vec<Tensor> = fwd[2..].to_vec();
    bwd_in.push(t(&[1.0, -1.0, 0.5]));
    bwd_in.push(Tensor::scalar(2.0_f64));
    let g = eval(&split.backward, &bwd_in).unwrap();
    let want: Vec<f64> = (0..3)
        .map(|i| [1.0, -1.0, 0.5][i] * wv[i] * xv[i].cos() + 2.0 * 2.0 * xv[i])
        .collect();
    let got = f64s(&g[0]);
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-14, "{got:?} vs {want:?}");
    }
}
