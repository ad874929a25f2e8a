//! vmap against the loop it replaces: `vmap(f)(xs)` equals `f` applied to every example
//! and stacked, including matrix products, gathers with per-example indices, nested vmap
//! and compositions with grad and jvp.

use tenferro_ad::{vmap, AdContext, Result};
use tenferro_cpu::CpuBackend;
use tenferro_ir::{DType, DotDims, Tensor};
use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

fn run(t: &TracedTensor) -> Vec<f64> {
    let p = GraphCompiler::new().compile(t).unwrap();
    GraphExecutor::new(CpuBackend::new())
        .run(&p)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn seq(shape: &[usize], scale: f64) -> TracedTensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i * 7 + 3) % 11) as f64 * scale - 0.4)
        .collect();
    TracedTensor::from_vec_col_major(shape.to_vec(), v)
}

/// Example `k` of `x` along `axis` (the axis removed).
fn example(x: &TracedTensor, axis: usize, k: usize) -> TracedTensor {
    let s = x.shape().unwrap();
    let mut starts = vec![0; s.len()];
    let mut limits = s.clone();
    starts[axis] = k;
    limits[axis] = k + 1;
    let mut out = s.clone();
    out.remove(axis);
    x.slice(&starts, &limits).unwrap().reshape(&out).unwrap()
}

/// `f` applied to every example and stacked along `out_axis`.
fn looped<F>(
    f: F,
    args: &[&TracedTensor],
    in_axes: &[Option<usize>],
    out_axis: usize,
    b: usize,
) -> TracedTensor
where
    F: Fn(&[TracedTensor]) -> Result<Vec<TracedTensor>>,
{
    let per: Vec<TracedTensor> = (0..b)
        .map(|k| {
            let xs: Vec<TracedTensor> = args
                .iter()
                .zip(in_axes)
                .map(|(a, ax)| match ax {
                    Some(ax) => example(a, *ax, k),
                    None => (*a).clone(),
                })
                .collect();
            f(&xs).unwrap().remove(0)
        })
        .collect();
    let refs: Vec<&TracedTensor> = per.iter().collect();
    TracedTensor::stack(&refs, out_axis as isize).unwrap()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{a:?}\nvs\n{b:?}");
    }
}

fn check<F>(f: F, args: &[&TracedTensor], in_axes: &[Option<usize>], out_axis: usize)
where
    F: Fn(&[TracedTensor]) -> Result<Vec<TracedTensor>> + Copy,
{
    let b = args
        .iter()
        .zip(in_axes)
        .find_map(|(a, ax)| ax.map(|ax| a.shape().unwrap()[ax]))
        .unwrap();
    let got = vmap(f, in_axes, &[out_axis]).call(args).unwrap().remove(0);
    let want = looped(f, args, in_axes, out_axis, b);
    assert_eq!(got.shape().unwrap(), want.shape().unwrap());
    close(&run(&got), &run(&want));
}

#[test]
fn elementwise_reductions_and_shared_operands() {
    let f = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
        let y = (&xs[0].sin() * &xs[1]).sum_axes(&[0], false);
        Ok(vec![y.exp()])
    };
    let x = seq(&[3, 4, 5], 0.3); // batch on axis 2
    let w = seq(&[3, 4], 0.2); // shared
    check(f, &[&x, &w], &[Some(2), None], 0);
    check(f, &[&x, &w], &[Some(2), None], 1);
    let x0 = seq(&[5, 3, 4], 0.3); // batch on axis 0
    check(f, &[&x0, &w], &[Some(0), None], 0);
}

#[test]
fn structural_ops() {
    let f = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
        let x = &xs[0];
        let t = x.transpose(&[1, 0])?; // [4, 3]
        let r = t.reshape(&[2, 6])?;
        let s = r.slice(&[0, 1], &[2, 5])?;
        let p = s.pad(&[1, 0], &[0, 2], 0.5)?;
        let c = TracedTensor::concatenate(&[&p, &p], 1)?;
        let bc = c.broadcast_in_dim(&[3, 12, 2], &[0, 1])?;
        Ok(vec![bc.cumsum(1).reduce_max(&[2])])
    };
    let x = seq(&[3, 4, 6], 0.1);
    check(f, &[&x], &[Some(2)], 0);
    let x = seq(&[6, 3, 4], 0.1);
    check(f, &[&x], &[Some(0)], 2);
}

#[test]
fn matrix_products_with_either_or_both_operands_batched() {
    let f = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> { Ok(vec![xs[0].matmul(&xs[1])?]) };
    let a = seq(&[3, 4], 0.2);
    let ab = seq(&[5, 3, 4], 0.2);
    let x = seq(&[4, 2], 0.3);
    let xb = seq(&[4, 2, 5], 0.3);
    check(f, &[&ab, &x], &[Some(0), None], 0);
    check(f, &[&a, &xb], &[None, Some(2)], 0);
    check(f, &[&ab, &xb], &[Some(0), Some(2)], 2);
    // contraction and batch dimension numbers
    let g = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
        let d = DotDims {
            lhs_contract: vec![0],
            rhs_contract: vec![1],
            lhs_batch: vec![2],
            rhs_batch: vec![0],
        };
        Ok(vec![xs[0].dot_general(&xs[1], d)?])
    };
    let l = seq(&[3, 2, 4, 6], 0.1); // per example [3, 2, 4]
    let r = seq(&[4, 3, 5, 6], 0.1); // per example [4, 3, 5]
    check(g, &[&l, &r], &[Some(3), Some(3)], 0);
    let r1 = seq(&[4, 3, 5], 0.1);
    check(g, &[&l, &r1], &[Some(3), None], 1);
}

#[test]
fn gathers_with_shared_or_per_example_indices() {
    let f =
        |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> { Ok(vec![xs[0].gather(&xs[1], 1)?]) };
    let x = seq(&[3, 5, 4], 0.1); // per example [3, 5], batch on axis 2
    let idx = TracedTensor::from_vec_col_major(vec![2], vec![4i64, 1]);
    check(f, &[&x, &idx], &[Some(2), None], 0);
    // per-example indices, with clamping (7 and -1 are out of range)
    let idxb = TracedTensor::from_vec_col_major(vec![2, 4], vec![4i64, 1, 0, 7, -1, 2, 3, 3]);
    check(f, &[&x, &idxb], &[Some(2), Some(1)], 0);
    let x1 = seq(&[3, 5], 0.1);
    check(f, &[&x1, &idxb], &[None, Some(1)], 1);
}

#[test]
fn per_example_gradients_and_gradients_of_a_vmapped_sum() {
    let ad = AdContext::new();
    let w = seq(&[3], 0.5);
    // vmap(grad f): per-example gradients of Σ tanh(w·x)²
    let per_example_grad = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
        let l = (&xs[0] * &xs[1]).tanh();
        let loss = (&l * &l).sum();
        Ok(vec![AdContext::new().grad(&loss, &xs[0])?])
    };
    let x = seq(&[4, 3], 0.3); // 4 examples of [3]
    check(per_example_grad, &[&x, &w], &[Some(0), None], 0);
    // grad of a vmapped sum = vmap of the grads
    let xin = TracedTensor::input(DType::F64, &[4, 3]);
    let f = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
        let l = (&xs[0] * &xs[1]).tanh();
        Ok(vec![(&l * &l).sum()])
    };
    let per = vmap(f, &[Some(0), None], &[0])
        .call(&[&xin, &w])
        .unwrap()
        .remove(0);
    let g = ad.grad(&per.sum(), &xin).unwrap();
    let gp = vmap(per_example_grad, &[Some(0), None], &[0])
        .call(&[&xin, &w])
        .unwrap()
        .remove(0);
    let p = GraphCompiler::new().compile_many(&[&g, &gp]).unwrap();
    let xv = Tensor::from_vec_col_major(
        vec![4, 3],
        (0..12).map(|i| i as f64 * 0.1 - 0.5).collect::<Vec<_>>(),
    )
    .unwrap();
    let out = GraphExecutor::new(CpuBackend::new())
        .run_many_with_inputs(&p, &[(&xin, xv)])
        .unwrap();
    close(
        &out[0].to_vec::<f64>().unwrap(),
        &out[1].to_vec::<f64>().unwrap(),
    );
    // jvp of a vmapped function
    let t = seq(&[4, 3], 0.1);
    let x = seq(&[4, 3], 0.2);
    let y = vmap(f, &[Some(0), None], &[0])
        .call(&[&x, &w])
        .unwrap()
        .remove(0);
    let dy = ad.jvp(&y, &x, &t).unwrap();
    let dy_loop = looped(
        |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
            let l = (&xs[0] * &xs[1]).tanh();
            let loss = (&l * &l).sum();
            Ok(vec![AdContext::new().jvp(&loss, &xs[0], &xs[2])?])
        },
        &[&x, &w, &t],
        &[Some(0), None, Some(0)],
        0,
        4,
    );
    close(&run(&dy), &run(&dy_loop));
}

#[test]
fn nested_vmap_is_a_double_loop() {
    let inner = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
        Ok(vec![(&xs[0] * &xs[1]).sum().sin()])
    };
    let outer = move |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
        vmap(inner, &[Some(0), None], &[0]).call(&[&xs[0], &xs[1]])
    };
    let x = seq(&[2, 3, 4], 0.1); // outer batch on axis 2, inner on axis 0
    let w = seq(&[3], 0.4);
    let got = vmap(outer, &[Some(2), None], &[0])
        .call(&[&x, &w])
        .unwrap()
        .remove(0);
    assert_eq!(got.shape().unwrap(), vec![4, 2]);
    let want = looped(outer, &[&x, &w], &[Some(2), None], 0, 4);
    close(&run(&got), &run(&want));
}

#[test]
fn errors_name_vmap_and_the_argument() {
    let f = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> { Ok(vec![xs[0].clone()]) };
    let x = seq(&[3, 4], 0.1);
    let y = seq(&[5, 4], 0.1);
    let e = vmap(f, &[Some(0), Some(0)], &[0])
        .call(&[&x, &y])
        .unwrap_err()
        .to_string();
    assert!(e.contains("vmap") && e.contains("batch size"), "{e}");
    let e = vmap(f, &[Some(2)], &[0])
        .call(&[&x])
        .unwrap_err()
        .to_string();
    assert!(e.contains("in_axes[0] = 2"), "{e}");
    let e = vmap(f, &[None], &[0]).call(&[&x]).unwrap_err().to_string();
    assert!(e.contains("no argument is batched"), "{e}");
}
