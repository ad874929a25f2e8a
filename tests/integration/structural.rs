//! Structural ops and constructors (`tenferro_runtime::structural`, `::constructors`):
//! values against hand-computed column-major arrays, gradients against central finite
//! differences (f64; JVPs in c64), eager against traced, and the error cases.

use num_complex::Complex64;
use tenferro_ad::{AdContext, EagerContext, EagerTensor};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TensorType, TracedTensor};

fn run(t: &TracedTensor) -> Tensor {
    let p = GraphCompiler::new().compile(t).unwrap();
    GraphExecutor::new(CpuBackend::new()).run(&p).unwrap()
}

fn vals(t: &TracedTensor) -> Vec<f64> {
    run(t).to_vec::<f64>().unwrap()
}

fn ivals(t: &TracedTensor) -> Vec<i64> {
    run(t).to_vec::<i64>().unwrap()
}

fn col(shape: &[usize], data: Vec<f64>) -> TracedTensor {
    TracedTensor::from_vec_col_major(shape.to_vec(), data)
}

fn seq(shape: &[usize]) -> TracedTensor {
    let n: usize = shape.iter().product();
    col(shape, (0..n).map(|i| i as f64).collect())
}

fn idx(shape: &[usize], data: Vec<i64>) -> TracedTensor {
    TracedTensor::from_vec_col_major(shape.to_vec(), data)
}

fn i(v: i64) -> TracedTensor {
    TracedTensor::scalar(v)
}

fn check(t: &TracedTensor, shape: &[usize], want: &[f64]) {
    assert_eq!(t.shape().unwrap(), shape, "shape of {t:?}");
    assert_eq!(vals(t), want, "values of {t:?}");
}

/// Deterministic pseudo-random numbers in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// The gradient of `Σ w·f(x)` (w random) against central finite differences at a random
/// `x` of `shape` (f64): checks every column of the transposed Jacobian.
fn check_grad(shape: &[usize], f: impl Fn(&TracedTensor) -> TracedTensor) {
    let n: usize = shape.iter().product();
    let x = TracedTensor::input(DType::F64, shape);
    let y = f(&x);
    let yshape = y.shape().unwrap();
    let m: usize = yshape.iter().product();
    let w = col(&yshape, noise(m, 7));
    let loss = (&y * &w).sum();
    let g = AdContext::new().grad(&loss, &x).unwrap();
    let pl = GraphCompiler::new().compile(&loss).unwrap();
    let pg = GraphCompiler::new().compile(&g).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let x0 = noise(n, 3);
    let t = |v: Vec<f64>| Tensor::from_vec_col_major(shape.to_vec(), v).unwrap();
    let got = ex
        .run_with_inputs(&pg, &[(&x, t(x0.clone()))])
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let h = 1e-3;
    for k in 0..n {
        let (mut a, mut b) = (x0.clone(), x0.clone());
        a[k] += h;
        b[k] -= h;
        let la = ex
            .run_with_inputs(&pl, &[(&x, t(a))])
            .unwrap()
            .to_vec::<f64>()
            .unwrap()[0];
        let lb = ex
            .run_with_inputs(&pl, &[(&x, t(b))])
            .unwrap()
            .to_vec::<f64>()
            .unwrap()[0];
        let fd = (la - lb) / (2.0 * h);
        assert!(
            (fd - got[k]).abs() < 1e-8 * (1.0 + fd.abs()),
            "grad[{k}] = {} but finite differences give {fd} (shape {shape:?})",
            got[k]
        );
    }
}

/// The JVP of `f` at a random c64 `x` along a random direction, against central finite
/// differences.
fn check_jvp_c64(shape: &[usize], f: impl Fn(&TracedTensor) -> TracedTensor) {
    let n: usize = shape.iter().product();
    let c = |s: u64| -> Vec<Complex64> {
        noise(n, s)
            .into_iter()
            .zip(noise(n, s + 100))
            .map(|(a, b)| Complex64::new(a, b))
            .collect()
    };
    let (x0, v0) = (c(1), c(2));
    let x = TracedTensor::from_vec_col_major(shape.to_vec(), x0.clone());
    let v = TracedTensor::from_vec_col_major(shape.to_vec(), v0.clone());
    let got = run(&AdContext::new().jvp(&f(&x), &x, &v).unwrap())
        .to_vec::<Complex64>()
        .unwrap();
    let h = 1e-3;
    let shifted = |sign: f64| {
        let d: Vec<Complex64> = x0.iter().zip(&v0).map(|(a, b)| a + b * sign * h).collect();
        run(&f(&TracedTensor::from_vec_col_major(shape.to_vec(), d)))
            .to_vec::<Complex64>()
            .unwrap()
    };
    let (a, b) = (shifted(1.0), shifted(-1.0));
    assert_eq!(a.len(), got.len());
    for k in 0..got.len() {
        let fd = (a[k] - b[k]) / (2.0 * h);
        assert!(
            (fd - got[k]).norm() < 1e-8 * (1.0 + fd.norm()),
            "jvp[{k}] = {} but finite differences give {fd}",
            got[k]
        );
    }
}

// ---------------------------------------------------------------- values

#[test]
fn reverse_values() {
    let x = seq(&[2, 3]); // x[i,j] = i + 2j
    check(
        &x.reverse(&[1]).unwrap(),
        &[2, 3],
        &[4., 5., 2., 3., 0., 1.],
    );
    check(
        &x.reverse(&[0, 1]).unwrap(),
        &[2, 3],
        &[5., 4., 3., 2., 1., 0.],
    );
    check(&x.reverse(&[]).unwrap(), &[2, 3], &[0., 1., 2., 3., 4., 5.]);
}

#[test]
fn slice_strided_values() {
    let x = seq(&[7]);
    check(&x.slice_strided(&[1], &[7], &[3]).unwrap(), &[2], &[1., 4.]);
    check(
        &x.slice_strided(&[0], &[6], &[2]).unwrap(),
        &[3],
        &[0., 2., 4.],
    );
    check(&x.slice_strided(&[2], &[2], &[2]).unwrap(), &[0], &[]);
    let m = seq(&[4, 3]); // m[i,j] = i + 4j
    check(
        &m.slice_strided(&[1, 0], &[4, 3], &[2, 2]).unwrap(),
        &[2, 2],
        &[1., 3., 9., 11.],
    );
}

#[test]
fn pad_general_values() {
    let x = col(&[3], vec![1., 2., 3.]);
    check(
        &x.pad_general(&[1], &[2], &[1], 0.0).unwrap(),
        &[8],
        &[0., 1., 0., 2., 0., 3., 0., 0.],
    );
    check(
        &x.pad_general(&[-2], &[-1], &[1], 0.0).unwrap(),
        &[2],
        &[2., 0.],
    );
    check(
        &x.pad_general(&[-1], &[1], &[0], 9.0).unwrap(),
        &[3],
        &[2., 3., 9.],
    );
    // negative low reaching into the high padding
    check(&x.pad_general(&[-4], &[2], &[0], 7.0).unwrap(), &[1], &[7.]);
    let m = seq(&[2, 2]);
    check(
        &m.pad_general(&[0, 1], &[0, 0], &[1, 0], -1.0).unwrap(),
        &[3, 3],
        &[-1., -1., -1., 0., -1., 1., 2., -1., 3.],
    );
    // unchanged `pad`
    check(&x.pad(&[1], &[0], 5.0).unwrap(), &[4], &[5., 1., 2., 3.]);
}

#[test]
fn dynamic_slice_clamps_starts() {
    let x = col(&[5], vec![10., 11., 12., 13., 14.]);
    check(
        &x.dynamic_slice(&[&i(1)], &[3]).unwrap(),
        &[3],
        &[11., 12., 13.],
    );
    // start beyond the end: clamped to 5 - 3 = 2
    check(
        &x.dynamic_slice(&[&i(4)], &[3]).unwrap(),
        &[3],
        &[12., 13., 14.],
    );
    check(
        &x.dynamic_slice(&[&i(100)], &[3]).unwrap(),
        &[3],
        &[12., 13., 14.],
    );
    // negative start: clamped to 0
    check(
        &x.dynamic_slice(&[&i(-3)], &[3]).unwrap(),
        &[3],
        &[10., 11., 12.],
    );
    check(&x.dynamic_slice(&[&i(2)], &[0]).unwrap(), &[0], &[]);
    let m = seq(&[3, 4]); // m[i,j] = i + 3j
    check(
        &m.dynamic_slice(&[&i(1), &i(2)], &[2, 2]).unwrap(),
        &[2, 2],
        &[7., 8., 10., 11.],
    );
}

#[test]
fn dynamic_update_slice_clamps_starts() {
    let x = col(&[5], vec![10., 11., 12., 13., 14.]);
    let u = col(&[2], vec![1., 2.]);
    check(
        &x.dynamic_update_slice(&u, &[&i(1)]).unwrap(),
        &[5],
        &[10., 1., 2., 13., 14.],
    );
    check(
        &x.dynamic_update_slice(&u, &[&i(4)]).unwrap(),
        &[5],
        &[10., 11., 12., 1., 2.],
    );
    check(
        &x.dynamic_update_slice(&u, &[&i(-1)]).unwrap(),
        &[5],
        &[1., 2., 12., 13., 14.],
    );
    let z = TracedTensor::zeros(&TensorType::new(DType::F64, vec![3, 3]));
    let u2 = col(&[2, 2], vec![1., 2., 3., 4.]);
    check(
        &z.dynamic_update_slice(&u2, &[&i(1), &i(0)]).unwrap(),
        &[3, 3],
        &[0., 1., 2., 0., 3., 4., 0., 0., 0.],
    );
    // a full-size update replaces everything whatever the start
    let u3 = col(&[5], vec![1., 2., 3., 4., 5.]);
    check(
        &x.dynamic_update_slice(&u3, &[&i(3)]).unwrap(),
        &[5],
        &[1., 2., 3., 4., 5.],
    );
}

#[test]
fn stack_split_squeeze_values() {
    let a = col(&[2], vec![1., 2.]);
    let b = col(&[2], vec![3., 4.]);
    check(
        &TracedTensor::stack(&[&a, &b], 0).unwrap(),
        &[2, 2],
        &[1., 3., 2., 4.],
    );
    check(
        &TracedTensor::stack(&[&a, &b], -1).unwrap(),
        &[2, 2],
        &[1., 2., 3., 4.],
    );
    let x = seq(&[5]);
    let p = x.split(&[2, 3], 0).unwrap();
    assert_eq!(p.len(), 3);
    check(&p[0], &[2], &[0., 1.]);
    check(&p[1], &[1], &[2.]);
    check(&p[2], &[2], &[3., 4.]);
    let p = x.split(&[3, 1, 9], -1).unwrap();
    check(&p[0], &[3], &[0., 1., 2.]);
    check(&p[1], &[0], &[]);
    check(&p[2], &[4], &[1., 2., 3., 4.]);
    check(&p[3], &[0], &[]);
    let p = x.split_into(3, 0).unwrap();
    check(&p[0], &[2], &[0., 1.]);
    check(&p[1], &[2], &[2., 3.]);
    check(&p[2], &[1], &[4.]);
    let m = seq(&[2, 3]);
    check(
        &m.expand_dims(1).unwrap(),
        &[2, 1, 3],
        &[0., 1., 2., 3., 4., 5.],
    );
    check(
        &m.expand_dims(-1).unwrap(),
        &[2, 3, 1],
        &[0., 1., 2., 3., 4., 5.],
    );
    let e = m.expand_dims(0).unwrap();
    check(
        &e.squeeze(&[0]).unwrap(),
        &[2, 3],
        &[0., 1., 2., 3., 4., 5.],
    );
    check(
        &e.squeeze(&[]).unwrap(),
        &[1, 2, 3],
        &[0., 1., 2., 3., 4., 5.],
    );
    check(&m.flatten().unwrap(), &[6], &[0., 1., 2., 3., 4., 5.]);
}

#[test]
fn tile_repeat_take_values() {
    let v = col(&[2], vec![1., 2.]);
    check(&v.tile(&[3]).unwrap(), &[6], &[1., 2., 1., 2., 1., 2.]);
    check(&v.tile(&[1, 2]).unwrap(), &[1, 4], &[1., 2., 1., 2.]);
    let m = col(&[2, 2], vec![1., 2., 3., 4.]); // a b / c d column-major
    check(
        &m.tile(&[2, 1]).unwrap(),
        &[4, 2],
        &[1., 2., 1., 2., 3., 4., 3., 4.],
    );
    check(
        &m.tile(&[2]).unwrap(),
        &[2, 4],
        &[1., 2., 3., 4., 1., 2., 3., 4.],
    );
    check(
        &col(&[3], vec![1., 2., 3.]).repeat(2, 0).unwrap(),
        &[6],
        &[1., 1., 2., 2., 3., 3.],
    );
    check(
        &m.repeat(2, 1).unwrap(),
        &[2, 4],
        &[1., 2., 1., 2., 3., 4., 3., 4.],
    );
    check(
        &m.repeat(2, 0).unwrap(),
        &[4, 2],
        &[1., 1., 2., 2., 3., 3., 4., 4.],
    );
    let x = col(&[4], vec![10., 11., 12., 13.]);
    check(
        &x.take(&idx(&[2, 2], vec![3, 5, -1, 0]), 0).unwrap(),
        &[2, 2],
        &[13., 13., 10., 10.],
    );
    let y = seq(&[2, 3]); // y[i,j] = i + 2j
    check(
        &y.take(&idx(&[2], vec![2, 0]), 1).unwrap(),
        &[2, 2],
        &[4., 5., 0., 1.],
    );
    check(
        &y.take_along_axis(&idx(&[2, 1], vec![2, 0]), 1).unwrap(),
        &[2, 1],
        &[4., 1.],
    );
    check(
        &y.take_along_axis(&idx(&[1, 3], vec![1, 5, -2]), 0).unwrap(),
        &[1, 3],
        &[1., 3., 4.],
    );
    // indices broadcast against a length-1 operand axis
    let c = col(&[1, 3], vec![7., 8., 9.]);
    check(
        &c.take_along_axis(&idx(&[2, 2], vec![0, 2, 1, 1]), 1)
            .unwrap(),
        &[2, 2],
        &[7., 9., 8., 8.],
    );
}

#[test]
fn diagonal_and_matrix_values() {
    let x = seq(&[3, 3]); // x[i,j] = i + 3j
    check(&x.diagonal(0, 0, 1).unwrap(), &[3], &[0., 4., 8.]);
    check(&x.diagonal(1, 0, 1).unwrap(), &[2], &[3., 7.]);
    check(&x.diagonal(-1, 0, 1).unwrap(), &[2], &[1., 5.]);
    check(&x.diagonal(5, 0, 1).unwrap(), &[0], &[]);
    check(&x.diagonal(0, 1, 0).unwrap(), &[3], &[0., 4., 8.]);
    check(&x.diagonal(1, 1, 0).unwrap(), &[2], &[1., 5.]);
    let t = seq(&[2, 2, 2]); // t[i,j,k] = i + 2j + 4k
    check(&t.diagonal(0, 1, 2).unwrap(), &[2, 2], &[0., 1., 6., 7.]);
    check(&t.diagonal(0, 0, 2).unwrap(), &[2, 2], &[0., 2., 5., 7.]);
    // upstream's extract_diag: the diagonal in axis 0's place, axis 1 removed
    check(&t.extract_diag(0, 1).unwrap(), &[2, 2], &[0., 3., 4., 7.]);
    let v = col(&[2], vec![1., 2.]);
    check(&v.embed_diag(0, 1).unwrap(), &[2, 2], &[1., 0., 0., 2.]);
    check(
        &v.diag_embed(1).unwrap(),
        &[3, 3],
        &[0., 0., 0., 1., 0., 0., 0., 2., 0.],
    );
    check(
        &v.diag_embed(-1).unwrap(),
        &[3, 3],
        &[0., 1., 0., 0., 0., 2., 0., 0., 0.],
    );
    let vb = col(&[2, 2], vec![1., 2., 3., 4.]);
    check(
        &vb.diag_embed(0).unwrap(),
        &[2, 2, 2],
        &[1., 0., 0., 2., 3., 0., 0., 4.],
    );
    let a = col(&[3, 3], (1..=9).map(|v| v as f64).collect()); // a[i,j] = 1 + i + 3j
    check(
        &a.tril(0).unwrap(),
        &[3, 3],
        &[1., 2., 3., 0., 5., 6., 0., 0., 9.],
    );
    check(
        &a.triu(1).unwrap(),
        &[3, 3],
        &[0., 0., 0., 4., 0., 0., 7., 8., 0.],
    );
    check(
        &a.tril(-1).unwrap(),
        &[3, 3],
        &[0., 2., 3., 0., 0., 6., 0., 0., 0.],
    );
    check(
        &a.triu(0).unwrap(),
        &[3, 3],
        &[1., 0., 0., 4., 5., 0., 7., 8., 9.],
    );
    check(&a.trace().unwrap(), &[], &[15.]);
    check(&t.trace().unwrap(), &[2], &[3., 11.]);
    check(
        &seq(&[2, 3]).mt().unwrap(),
        &[3, 2],
        &[0., 2., 4., 1., 3., 5.],
    );
    // batched triangles act on the first two axes
    check(
        &t.triu(0).unwrap(),
        &[2, 2, 2],
        &[0., 0., 2., 3., 4., 0., 6., 7.],
    );
}

#[test]
fn constructor_values() {
    check(
        &TracedTensor::eye(DType::F64, 3, None, 0).unwrap(),
        &[3, 3],
        &[1., 0., 0., 0., 1., 0., 0., 0., 1.],
    );
    check(
        &TracedTensor::eye(DType::F64, 2, Some(3), 1).unwrap(),
        &[2, 3],
        &[0., 0., 1., 0., 0., 1.],
    );
    check(
        &TracedTensor::eye(DType::F64, 3, Some(2), -1).unwrap(),
        &[3, 2],
        &[0., 1., 0., 0., 0., 1.],
    );
    check(
        &TracedTensor::arange(DType::F64, 0., 5., 2.).unwrap(),
        &[3],
        &[0., 2., 4.],
    );
    check(
        &TracedTensor::arange(DType::F64, 0., 1., 0.25).unwrap(),
        &[4],
        &[0., 0.25, 0.5, 0.75],
    );
    check(
        &TracedTensor::arange(DType::F64, 3., 1., 1.).unwrap(),
        &[0],
        &[],
    );
    let ia = TracedTensor::arange(DType::I64, 5., 0., -2.).unwrap();
    assert_eq!(ia.dtype().unwrap(), DType::I64);
    assert_eq!(ivals(&ia), vec![5, 3, 1]);
    check(
        &TracedTensor::linspace(DType::F64, 0., 1., 5, true).unwrap(),
        &[5],
        &[0., 0.25, 0.5, 0.75, 1.],
    );
    let l = vals(&TracedTensor::linspace(DType::F64, 0., 1., 5, false).unwrap());
    for (a, b) in l.iter().zip([0., 0.2, 0.4, 0.6, 0.8]) {
        assert!((a - b).abs() < 1e-15, "{l:?}");
    }
    check(
        &TracedTensor::linspace(DType::F64, 2., 3., 1, true).unwrap(),
        &[1],
        &[2.],
    );
    check(
        &TracedTensor::linspace(DType::F64, 2., 3., 0, true).unwrap(),
        &[0],
        &[],
    );
    let l3 = vals(&TracedTensor::linspace(DType::F64, -1., 0.3, 7, true).unwrap());
    assert_eq!(*l3.last().unwrap(), 0.3);
    let oh = idx(&[4], vec![0, 2, 5, -1]).one_hot(3, DType::F64).unwrap();
    check(
        &oh,
        &[4, 3],
        &[1., 0., 0., 0., 0., 0., 0., 0., 0., 1., 0., 0.],
    );
    let x = seq(&[2, 2]);
    check(&x.ones_like().unwrap(), &[2, 2], &[1.; 4]);
    check(&x.zeros_like().unwrap(), &[2, 2], &[0.; 4]);
    check(&x.full_like(2.5).unwrap(), &[2, 2], &[2.5; 4]);
    check(
        &TracedTensor::ones(&TensorType::new(DType::F64, vec![3])),
        &[3],
        &[1.; 3],
    );
}

// ---------------------------------------------------------------- gradients

#[test]
fn gradients_match_finite_differences() {
    check_grad(&[3, 4], |x| x.reverse(&[0, 1]).unwrap());
    check_grad(&[7, 3], |x| {
        x.slice_strided(&[1, 0], &[7, 3], &[3, 2]).unwrap()
    });
    check_grad(&[3, 2], |x| {
        x.pad_general(&[-1, 2], &[2, -1], &[2, 1], 0.5).unwrap()
    });
    check_grad(&[5, 3], |x| {
        x.dynamic_slice(&[&i(4), &i(-2)], &[2, 2]).unwrap()
    });
    check_grad(&[5, 3], |x| {
        let u = col(&[2, 2], vec![1., 2., 3., 4.]);
        x.dynamic_update_slice(&u, &[&i(2), &i(7)]).unwrap()
    });
    check_grad(&[2, 2], |u| {
        let x = seq(&[5, 3]);
        x.dynamic_update_slice(u, &[&i(-1), &i(1)]).unwrap()
    });
    check_grad(&[3], |x| {
        let y = x * -2.0;
        TracedTensor::stack(&[x, &y, x], 1).unwrap()
    });
    check_grad(&[5, 2], |x| {
        let p = x.split(&[1, 4], 0).unwrap();
        let q: Vec<TracedTensor> = p.iter().map(|t| t.flatten().unwrap()).collect();
        let r: Vec<&TracedTensor> = q.iter().collect();
        TracedTensor::concatenate(&[r[2], r[0], r[1]], 0).unwrap()
    });
    check_grad(&[3, 1, 2], |x| {
        x.squeeze(&[1]).unwrap().expand_dims(0).unwrap()
    });
    check_grad(&[2, 3], |x| x.tile(&[2, 1, 2]).unwrap());
    check_grad(&[2, 3], |x| x.repeat(3, 1).unwrap());
    check_grad(&[4, 2], |x| x.take(&idx(&[3], vec![3, 0, 3]), 0).unwrap());
    check_grad(&[3, 4], |x| {
        x.take_along_axis(&idx(&[3, 2], vec![0, 3, 9, 1, 1, -1]), 1)
            .unwrap()
    });
    check_grad(&[3, 4, 2], |x| x.diagonal(1, 1, 0).unwrap());
    check_grad(&[3, 2], |x| x.diag_embed(-1).unwrap());
    check_grad(&[3, 3, 2], |x| x.tril(0).unwrap());
    check_grad(&[3, 4], |x| x.triu(-1).unwrap());
    check_grad(&[3, 3, 2], |x| x.trace().unwrap());
    check_grad(&[2, 3, 2], |x| x.mt().unwrap());
}

#[test]
fn complex_jvps_match_finite_differences() {
    check_jvp_c64(&[3, 4], |x| x.reverse(&[1]).unwrap());
    check_jvp_c64(&[3, 3], |x| x.diagonal(-1, 0, 1).unwrap());
    check_jvp_c64(&[3], |x| x.pad_general(&[1], &[-1], &[1], 0.0).unwrap());
    check_jvp_c64(&[4, 2], |x| {
        let u = TracedTensor::from_vec_col_major(vec![2, 1], vec![Complex64::new(1.0, 2.0); 2]);
        x.dynamic_update_slice(&u, &[&i(3), &i(1)]).unwrap()
    });
    check_jvp_c64(&[2, 3], |x| {
        x.take_along_axis(&idx(&[2, 1], vec![2, 0]), 1).unwrap()
    });
    check_jvp_c64(&[2, 2], |x| &x.tril(0).unwrap() * &x.mt().unwrap());
}

// ---------------------------------------------------------------- eager

fn same(e: &EagerTensor, t: &TracedTensor) {
    let tv = run(t);
    assert_eq!(e.ty(), tv.ty());
    assert!(
        e.value().unwrap().bits_eq(&tv),
        "eager {e:?} vs traced {tv:?}"
    );
}

#[test]
fn eager_equals_traced() {
    let ctx = EagerContext::new(CpuBackend::new());
    let data: Vec<f64> = noise(24, 5);
    let t = col(&[2, 3, 4], data.clone());
    let e = ctx.from_vec_col_major(vec![2, 3, 4], data).unwrap();
    let ei = |v: i64| ctx.scalar(v);
    same(&e.reverse(&[0, 2]).unwrap(), &t.reverse(&[0, 2]).unwrap());
    same(
        &e.slice_strided(&[0, 1, 0], &[2, 3, 4], &[1, 1, 3]).unwrap(),
        &t.slice_strided(&[0, 1, 0], &[2, 3, 4], &[1, 1, 3]).unwrap(),
    );
    same(
        &e.pad_general(&[1, -1, 0], &[0, 2, -2], &[1, 0, 2], 3.0)
            .unwrap(),
        &t.pad_general(&[1, -1, 0], &[0, 2, -2], &[1, 0, 2], 3.0)
            .unwrap(),
    );
    same(
        &e.dynamic_slice(&[&ei(1), &ei(5), &ei(-1)], &[1, 2, 2])
            .unwrap(),
        &t.dynamic_slice(&[&i(1), &i(5), &i(-1)], &[1, 2, 2])
            .unwrap(),
    );
    let eu = e.slice(&[0, 0, 0], &[1, 2, 2]).unwrap();
    let tu = t.slice(&[0, 0, 0], &[1, 2, 2]).unwrap();
    same(
        &e.dynamic_update_slice(&eu, &[&ei(1), &ei(1), &ei(9)])
            .unwrap(),
        &t.dynamic_update_slice(&tu, &[&i(1), &i(1), &i(9)]).unwrap(),
    );
    same(
        &EagerTensor::stack(&[&e, &e], 1).unwrap(),
        &TracedTensor::stack(&[&t, &t], 1).unwrap(),
    );
    let (es, ts) = (e.split(&[1, 3], 2).unwrap(), t.split(&[1, 3], 2).unwrap());
    assert_eq!(es.len(), ts.len());
    for (a, b) in es.iter().zip(&ts) {
        same(a, b);
    }
    let (es, ts) = (e.split_into(2, 1).unwrap(), t.split_into(2, 1).unwrap());
    for (a, b) in es.iter().zip(&ts) {
        same(a, b);
    }
    same(&e.expand_dims(-2).unwrap(), &t.expand_dims(-2).unwrap());
    same(
        &e.expand_dims(0).unwrap().squeeze(&[0]).unwrap(),
        &t.expand_dims(0).unwrap().squeeze(&[0]).unwrap(),
    );
    same(&e.flatten().unwrap(), &t.flatten().unwrap());
    same(&e.tile(&[1, 2]).unwrap(), &t.tile(&[1, 2]).unwrap());
    same(&e.repeat(2, -1).unwrap(), &t.repeat(2, -1).unwrap());
    let ti = idx(&[2], vec![2, 0]);
    let eidx = ctx.from_vec_col_major(vec![2], vec![2_i64, 0]).unwrap();
    same(&e.take(&eidx, 1).unwrap(), &t.take(&ti, 1).unwrap());
    let tai = idx(&[2, 3, 1], vec![0, 1, 2, 3, 4, 5]);
    let eai = ctx
        .from_vec_col_major(vec![2, 3, 1], vec![0_i64, 1, 2, 3, 4, 5])
        .unwrap();
    same(
        &e.take_along_axis(&eai, 2).unwrap(),
        &t.take_along_axis(&tai, 2).unwrap(),
    );
    same(&e.diagonal(1, 2, 1).unwrap(), &t.diagonal(1, 2, 1).unwrap());
    same(
        &e.extract_diag(0, 2).unwrap(),
        &t.extract_diag(0, 2).unwrap(),
    );
    same(&e.diag_embed(2).unwrap(), &t.diag_embed(2).unwrap());
    same(&e.embed_diag(2, 0).unwrap(), &t.embed_diag(2, 0).unwrap());
    same(&e.tril(1).unwrap(), &t.tril(1).unwrap());
    same(&e.triu(-1).unwrap(), &t.triu(-1).unwrap());
    same(&e.trace().unwrap(), &t.trace().unwrap());
    same(&e.mt().unwrap(), &t.mt().unwrap());
    same(&e.zeros_like().unwrap(), &t.zeros_like().unwrap());
    same(&e.ones_like().unwrap(), &t.ones_like().unwrap());
    same(&e.full_like(-2.0).unwrap(), &t.full_like(-2.0).unwrap());
    same(
        &eidx.one_hot(3, DType::F32).unwrap(),
        &ti.one_hot(3, DType::F32).unwrap(),
    );
    same(
        &ctx.eye(DType::C64, 3, Some(4), -1).unwrap(),
        &TracedTensor::eye(DType::C64, 3, Some(4), -1).unwrap(),
    );
    same(
        &ctx.arange(DType::F32, 1.0, 2.0, 0.1).unwrap(),
        &TracedTensor::arange(DType::F32, 1.0, 2.0, 0.1).unwrap(),
    );
    same(
        &ctx.linspace(DType::F64, -3.0, 2.0, 11, false).unwrap(),
        &TracedTensor::linspace(DType::F64, -3.0, 2.0, 11, false).unwrap(),
    );
    same(
        &ctx.ones(&TensorType::new(DType::I64, vec![2])).unwrap(),
        &TracedTensor::ones(&TensorType::new(DType::I64, vec![2])),
    );
}

#[test]
fn eager_backward_reaches_operand_and_update() {
    let ctx = EagerContext::new(CpuBackend::new());
    let x = ctx
        .from_vec_col_major(vec![4], vec![1.0_f64, 2.0, 3.0, 4.0])
        .unwrap()
        .requires_grad(true);
    let u = ctx
        .from_vec_col_major(vec![2], vec![5.0_f64, 6.0])
        .unwrap()
        .requires_grad(true);
    let w = ctx
        .from_vec_col_major(vec![4], vec![1.0_f64, 10.0, 100.0, 1000.0])
        .unwrap();
    let y = x.dynamic_update_slice(&u, &[&ctx.scalar(7_i64)]).unwrap(); // start clamps to 2
    let loss = (&y * &w).reduce_sum(&[0]).unwrap();
    loss.backward().unwrap();
    assert_eq!(
        x.grad().unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, 10.0, 0.0, 0.0]
    );
    assert_eq!(
        u.grad().unwrap().to_vec::<f64>().unwrap(),
        vec![100.0, 1000.0]
    );
    let d = x
        .reverse(&[0])
        .unwrap()
        .diag_embed(0)
        .unwrap()
        .trace()
        .unwrap();
    x.zero_grad();
    d.backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![1.0; 4]);
}

// ---------------------------------------------------------------- errors

fn err_of<T: std::fmt::Debug>(r: Result<T, tenferro_runtime::RuntimeError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn errors_name_the_op() {
    let x = seq(&[2, 3]);
    let cases: Vec<(String, &str)> = vec![
        (err_of(x.reverse(&[2])), "reverse"),
        (err_of(x.reverse(&[0, 0])), "reverse"),
        (
            err_of(x.slice_strided(&[0, 0], &[2, 3], &[1, 0])),
            "slice_strided",
        ),
        (
            err_of(x.slice_strided(&[0, 2], &[2, 1], &[1, 1])),
            "slice_strided",
        ),
        (err_of(x.slice_strided(&[0], &[2], &[1])), "slice_strided"),
        (
            err_of(x.pad_general(&[-2, 0], &[-1, 0], &[0, 0], 0.0)),
            "pad_general",
        ),
        (err_of(x.pad_general(&[0], &[0], &[0], 0.0)), "pad_general"),
        (
            err_of(x.dynamic_slice(&[&i(0), &i(0)], &[3, 1])),
            "dynamic_slice",
        ),
        (err_of(x.dynamic_slice(&[&i(0)], &[1, 1])), "dynamic_slice"),
        (
            err_of(x.dynamic_slice(&[&i(0), &TracedTensor::scalar(1.0_f64)], &[1, 1])),
            "dynamic_slice",
        ),
        (
            err_of(x.dynamic_update_slice(&seq(&[3, 1]), &[&i(0), &i(0)])),
            "dynamic_update_slice",
        ),
        (
            err_of(x.dynamic_update_slice(&seq(&[1]), &[&i(0), &i(0)])),
            "dynamic_update_slice",
        ),
        (
            err_of(TracedTensor::stack(&[&x, &seq(&[3, 2])], 0)),
            "stack",
        ),
        (err_of(TracedTensor::stack(&[], 0)), "stack"),
        (err_of(TracedTensor::stack(&[&x], 3)), "stack"),
        (err_of(x.split(&[1], 2)), "split"),
        (err_of(x.split_into(0, 0)), "split_into"),
        (err_of(x.expand_dims(-4)), "expand_dims"),
        (err_of(x.squeeze(&[1])), "squeeze"),
        (err_of(x.squeeze(&[5])), "squeeze"),
        (err_of(x.repeat(2, 2)), "repeat"),
        (err_of(x.take(&idx(&[1], vec![0]), -3)), "take"),
        (err_of(x.take(&seq(&[1]), 0)), "take"),
        (
            err_of(x.take_along_axis(&idx(&[2], vec![0, 0]), 0)),
            "take_along_axis",
        ),
        (
            err_of(x.take_along_axis(&idx(&[2, 2], vec![0; 4]), 0)),
            "take_along_axis",
        ),
        (err_of(x.diagonal(0, 1, 1)), "diagonal"),
        (err_of(x.diagonal(0, 0, 2)), "diagonal"),
        (err_of(seq(&[3]).tril(0)), "tril"),
        (err_of(seq(&[3]).triu(0)), "triu"),
        (err_of(seq(&[3]).trace()), "trace"),
        (err_of(seq(&[3]).mt()), "mt"),
        (
            err_of(TracedTensor::scalar(1.0).diag_embed(0)),
            "diag_embed",
        ),
        (
            err_of(TracedTensor::arange(DType::F64, 0., 1., 0.)),
            "arange",
        ),
        (
            err_of(TracedTensor::arange(DType::I64, 0., 1., 0.5)),
            "arange",
        ),
        (
            err_of(TracedTensor::linspace(DType::Bool, 0., 1., 3, true)),
            "linspace",
        ),
        (err_of(x.one_hot(3, DType::F64)), "one_hot"),
    ];
    for (msg, op) in cases {
        assert!(msg.contains(op), "error {msg:?} should name `{op}`");
    }
    let m = err_of(x.squeeze(&[0]));
    assert!(m.contains("length 2") && m.contains("expected 1"), "{m}");
    let ctx = EagerContext::new(CpuBackend::new());
    let e = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0]).unwrap();
    let m = e.squeeze(&[0]).unwrap_err().to_string();
    assert!(m.contains("squeeze"), "{m}");
}
