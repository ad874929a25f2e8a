//! Every JVP rule against central finite differences, and every transpose rule against
//! its JVP through the adjoint identity `⟨ct, J·t⟩ = ⟨Jᵀ·ct, t⟩` under the real inner
//! product `Re(Σ conj(a)·b)`, in f64 and c64, as property tests over shapes and values.

use crate::common;

use common::*;
use proptest::prelude::*;
use tenferro_ad::AdContext;
use tenferro_runtime::ir::{DotDims, Op};
use tenferro_runtime::{DType, Tensor, TracedTensor};

type Build = Box<dyn Fn(&[TracedTensor]) -> TracedTensor>;

/// One differentiable function of some inputs, with the inputs' shapes and value range.
struct Case {
    name: &'static str,
    shapes: Vec<Vec<usize>>,
    lo: f64,
    hi: f64,
    f: Build,
    /// Finite-difference step and tolerance (looser for f32 round trips).
    eps: f64,
    tol: f64,
    /// Relative tolerance of the adjoint identity.
    adjoint_tol: f64,
}

impl Case {
    /// For functions that round through f32: a linear map, so a large step is exact up
    /// to f32 rounding.
    fn through_f32(mut self) -> Case {
        self.eps = 1e-2;
        self.tol = 1e-4;
        self.adjoint_tol = 1e-6;
        self
    }
}

fn case(
    name: &'static str,
    shapes: Vec<Vec<usize>>,
    lo: f64,
    hi: f64,
    f: impl Fn(&[TracedTensor]) -> TracedTensor + 'static,
) -> Case {
    Case {
        name,
        shapes,
        lo,
        hi,
        f: Box::new(f),
        eps: 1e-6,
        tol: 1e-5,
        adjoint_tol: 1e-9,
    }
}

/// Checks the JVP of `c` against finite differences and its VJP against the JVP.
fn check(c: &Case, dtype: DType, g: &mut Gen) -> Result<(), String> {
    let ad = AdContext::new();
    let xs: Vec<TracedTensor> = c
        .shapes
        .iter()
        .map(|s| TracedTensor::input(dtype, s))
        .collect();
    let ts: Vec<TracedTensor> = c
        .shapes
        .iter()
        .map(|s| TracedTensor::input(dtype, s))
        .collect();
    let xv: Vec<Tensor> = c
        .shapes
        .iter()
        .map(|s| g.tensor(dtype, s, c.lo, c.hi))
        .collect();
    let tv: Vec<Tensor> = c
        .shapes
        .iter()
        .map(|s| g.tensor(dtype, s, -1.0, 1.0))
        .collect();
    let y = (c.f)(&xs);
    let yt = y.ty().map_err(|e| format!("{}: {e}", c.name))?;
    let ct = TracedTensor::input(yt.dtype, &yt.shape);
    let ctv = g.tensor(yt.dtype, &yt.shape, -1.0, 1.0);

    let xr: Vec<&TracedTensor> = xs.iter().collect();
    let tr: Vec<&TracedTensor> = ts.iter().collect();
    let dy = ad
        .jvp_many(&y, &xr, &tr)
        .map_err(|e| format!("{}: jvp: {e}", c.name))?;
    let cts = ad
        .vjp_many(&y, &xr, &ct)
        .map_err(|e| format!("{}: vjp: {e}", c.name))?;

    let mut bind: Vec<(&TracedTensor, Tensor)> = Vec::new();
    for i in 0..xs.len() {
        bind.push((&xs[i], xv[i].clone()));
        bind.push((&ts[i], tv[i].clone()));
    }
    bind.push((&ct, ctv.clone()));
    let mut outs: Vec<&TracedTensor> = vec![&dy];
    outs.extend(cts.iter());
    let got = run_many_with(&outs, &bind);
    let jvp_val = &got[0];

    // Central differences of y along t.
    let eps = c.eps;
    let at = |s: f64| -> Tensor {
        let b: Vec<(&TracedTensor, Tensor)> = xs
            .iter()
            .zip(&xv)
            .zip(&tv)
            .map(|((x, v), t)| (x, axpy(v, s, t)))
            .collect();
        run_many_with(&[&y], &b).remove(0)
    };
    let (yp, ym) = (at(eps), at(-eps));
    let fd = axpy(&yp, -1.0, &ym);
    let fd = axpy(&fd, 1.0 / (2.0 * eps) - 1.0, &fd);
    let err = max_rel_err(jvp_val, &fd);
    if err > c.tol {
        return Err(format!(
            "{} ({dtype}, shapes {:?}): jvp {:?} differs from finite differences {:?} (err {err:e})",
            c.name,
            c.shapes,
            as_c64(jvp_val),
            as_c64(&fd)
        ));
    }
    // ⟨ct, J·t⟩ = Σ_i ⟨J_iᵀ·ct, t_i⟩.
    let lhs = inner(&ctv, jvp_val);
    let rhs: f64 = got[1..].iter().zip(&tv).map(|(v, t)| inner(v, t)).sum();
    if (lhs - rhs).abs() > c.adjoint_tol * (1.0 + lhs.abs()) {
        return Err(format!(
            "{} ({dtype}, shapes {:?}): <ct, J t> = {lhs} but <J^T ct, t> = {rhs}",
            c.name, c.shapes
        ));
    }
    Ok(())
}

fn check_all(cases: &[Case], dtype: DType, seed: u64) -> Result<(), String> {
    let mut g = Gen(seed);
    for c in cases {
        check(c, dtype, &mut g)?;
    }
    Ok(())
}

fn unary_cases(s: &[usize], complex: bool) -> Vec<Case> {
    let s = s.to_vec();
    let one = |name, lo, hi, f: fn(&TracedTensor) -> TracedTensor| {
        case(name, vec![s.clone()], lo, hi, move |x| f(&x[0]))
    };
    let mut v = vec![
        one("neg", -2.0, 2.0, |x| -x),
        one("exp", -2.0, 2.0, |x| x.exp()),
        one("log", 0.5, 2.0, |x| x.log()),
        one("sin", -2.0, 2.0, |x| x.sin()),
        one("cos", -2.0, 2.0, |x| x.cos()),
        one("tanh", -1.0, 1.0, |x| x.tanh()),
        one("sqrt", 0.5, 2.0, |x| x.sqrt()),
        one("rsqrt", 0.5, 2.0, |x| x.rsqrt()),
        one("abs", 0.3, 2.0, |x| x.abs()),
        one("abs_neg", -2.0, -0.3, |x| x.abs()),
        one("sign", 0.3, 2.0, |x| x.sign()),
        one("expm1", -1.0, 1.0, |x| x.expm1()),
        one("log1p", 0.0, 1.0, |x| x.log1p()),
        one("conj", -2.0, 2.0, |x| x.conj()),
        one("real", -2.0, 2.0, |x| x.real()),
        one("imag", -2.0, 2.0, |x| x.imag()),
    ];
    if !complex {
        v.push(one("sign_neg", -2.0, -0.3, |x| x.sign()));
    }
    v
}

fn binary_cases(s: &[usize], complex: bool) -> Vec<Case> {
    let s2 = vec![s.to_vec(), s.to_vec()];
    let two = |name, lo, hi, f: fn(&TracedTensor, &TracedTensor) -> TracedTensor| {
        case(name, s2.clone(), lo, hi, move |x| f(&x[0], &x[1]))
    };
    let mut v = vec![
        two("add", -2.0, 2.0, |a, b| a + b),
        two("sub", -2.0, 2.0, |a, b| a - b),
        two("mul", -2.0, 2.0, |a, b| a * b),
        two("div", 0.5, 2.0, |a, b| a / b),
        two("pow", 0.5, 2.0, |a, b| a.pow(b)),
        two("mul_same_operand", -2.0, 2.0, |a, _| a * a),
        two("scalar_ops", -2.0, 2.0, |a, b| {
            &(&(a * 3.0) - 1.0) / 2.0 + &(2.0 - b)
        }),
        // Broadcasting: a row vector against a matrix, undone by reduce_sum in reverse mode.
        case(
            "broadcast_mul",
            vec![s.to_vec(), vec![*s.last().unwrap()]],
            -2.0,
            2.0,
            |x| &x[0] * &x[1],
        ),
        case(
            "broadcast_scalar",
            vec![s.to_vec(), vec![]],
            -2.0,
            2.0,
            |x| &x[0] * &x[1],
        ),
    ];
    if !complex {
        v.push(two("maximum", -2.0, 2.0, |a, b| a.maximum(b)));
        v.push(two("minimum", -2.0, 2.0, |a, b| a.minimum(b)));
        v.push(two("select", -2.0, 2.0, |a, b| {
            TracedTensor::select(&a.greater(b), &(a * a), &b.sin())
        }));
    } else {
        v.push(two("select", -2.0, 2.0, |a, b| {
            TracedTensor::select(&a.real().greater(&b.real()), &(a * a), &b.sin())
        }));
    }
    v
}

fn reduction_cases(s: &[usize], complex: bool) -> Vec<Case> {
    let s1 = vec![s.to_vec()];
    let one = |name, f: fn(&TracedTensor) -> TracedTensor| {
        case(name, s1.clone(), -2.0, 2.0, move |x| f(&x[0]))
    };
    let mut v = vec![
        one("reduce_sum_0", |x| x.reduce_sum(&[0])),
        one("reduce_sum_1", |x| x.reduce_sum(&[1])),
        one("reduce_sum_all", |x| x.sum()),
        one("reduce_prod_0", |x| x.reduce_prod(&[0])),
        one("reduce_prod_all", |x| x.reduce_prod(&[0, 1])),
        one("reduce_mean", |x| x.reduce_mean(&[1])),
    ];
    if !complex {
        // Away from ties, where the extremum is not differentiable and finite differences
        // straddle the kink: see `apart`.
        v.push(one("reduce_max_0", |x| apart(x).reduce_max(&[0])));
        v.push(one("reduce_min_1", |x| apart(x).reduce_min(&[1])));
        v.push(one("reduce_max_all", |x| apart(x).reduce_max(&[0, 1])));
    }
    v
}

/// `0.2·x` plus distinct integers spread over the elements: any two elements differ by at
/// least 0.2 for `x` in [-2, 2], far more than the finite-difference step, while which
/// element is the extremum still varies with the position.
fn apart(x: &TracedTensor) -> TracedTensor {
    let shape = x.shape().unwrap();
    let n: usize = shape.iter().product();
    // 5 is coprime with every element count here (1, 2, 3, 4, 6, 9).
    let spread: Vec<f64> = (0..n).map(|i| ((i * 5) % n) as f64).collect();
    let spread = TracedTensor::from_vec_col_major(shape, spread);
    if x.dtype().unwrap() == DType::F64 {
        &(x * 0.2) + &spread
    } else {
        &(x * 0.2) + &spread.convert(x.dtype().unwrap()).unwrap()
    }
}

fn contraction_cases(s: &[usize]) -> Vec<Case> {
    let (m, k) = (s[0], s[1]);
    let n = m % 3 + 1;
    vec![
        case("matmul", vec![vec![m, k], vec![k, n]], -2.0, 2.0, |x| {
            x[0].matmul(&x[1]).unwrap()
        }),
        case("matvec", vec![vec![m, k], vec![k]], -2.0, 2.0, |x| {
            x[0].matmul(&x[1]).unwrap()
        }),
        case("vecdot", vec![vec![k], vec![k]], -2.0, 2.0, |x| {
            x[0].matmul(&x[1]).unwrap()
        }),
        case(
            "batched_matmul",
            vec![vec![m, k, 2], vec![k, n, 2]],
            -2.0,
            2.0,
            |x| x[0].matmul(&x[1]).unwrap(),
        ),
        // Contract two axes in swapped order, batch over another: lhs [k, 2, m, n],
        // rhs [n, 2, k] with batch (1, 1) and contractions (0, 2) and (3, 0).
        case(
            "dot_general_general",
            vec![vec![k, 2, m, n], vec![n, 2, k]],
            -2.0,
            2.0,
            |x| {
                x[0].dot_general(
                    &x[1],
                    DotDims {
                        lhs_contract: vec![3, 0],
                        rhs_contract: vec![0, 2],
                        lhs_batch: vec![1],
                        rhs_batch: vec![1],
                    },
                )
                .unwrap()
            },
        ),
        case("outer", vec![vec![m], vec![k]], -2.0, 2.0, |x| {
            x[0].dot_general(&x[1], DotDims::default()).unwrap()
        }),
    ]
}

fn structural_cases(s: &[usize], complex: bool) -> Vec<Case> {
    let (a, b) = (s[0], s[1]);
    let idx_vals: Vec<i64> = (0..4).map(|i| ((i * 7 + a + b) % (a + 1)) as i64).collect();
    let idx = Tensor::from_vec_col_major(vec![2, 2], idx_vals).unwrap();
    let idx2 = idx.clone();
    let mut v = vec![
        case("transpose", vec![vec![a, b, 2]], -2.0, 2.0, |x| {
            x[0].transpose(&[2, 0, 1]).unwrap()
        }),
        case("reshape", vec![vec![a, b, 2]], -2.0, 2.0, move |x| {
            x[0].reshape(&[b, 2 * a]).unwrap()
        }),
        case("broadcast_in_dim", vec![vec![a, 1]], -2.0, 2.0, move |x| {
            x[0].broadcast_in_dim(&[3, a, b], &[1, 2]).unwrap()
        }),
        case("slice", vec![vec![a + 2, b + 1]], -2.0, 2.0, move |x| {
            x[0].slice(&[1, 0], &[a + 1, b + 1]).unwrap()
        }),
        case("pad", vec![vec![a, b]], -2.0, 2.0, |x| {
            x[0].pad(&[1, 0], &[2, 1], 0.5).unwrap().exp()
        }),
        case("pad_value", vec![vec![a, b], vec![]], -2.0, 2.0, |x| {
            TracedTensor::apply1(
                Op::Pad {
                    low: vec![0, 2],
                    high: vec![1, 0],
                },
                &[&x[0], &x[1]],
            )
        }),
        case(
            "concatenate",
            vec![vec![a, b], vec![a, 2]],
            -2.0,
            2.0,
            |x| TracedTensor::concatenate(&[&x[0], &x[1], &x[0]], 1).unwrap(),
        ),
        case("gather", vec![vec![a + 1, b]], -2.0, 2.0, move |x| {
            x[0].gather(&TracedTensor::from_tensor(idx.clone()), 0)
                .unwrap()
        }),
        case(
            "scatter_add",
            vec![vec![a + 1, b], vec![2, 2, b]],
            -2.0,
            2.0,
            move |x| {
                x[0].scatter_add(&TracedTensor::from_tensor(idx2.clone()), &x[1], 0)
                    .unwrap()
            },
        ),
        case("iota_times_x", vec![vec![a, b]], -2.0, 2.0, move |x| {
            let d = x[0].dtype().unwrap();
            &x[0] * &TracedTensor::iota(d, &[a, b], 1).unwrap()
        }),
    ];
    if complex {
        v.push(case(
            "convert_c64_to_f64",
            vec![vec![a, b]],
            -2.0,
            2.0,
            |x| x[0].convert(DType::F64).unwrap().exp(),
        ));
        v.push(
            case("convert_c64_to_c32", vec![vec![a, b]], -2.0, 2.0, |x| {
                x[0].convert(DType::C32)
                    .unwrap()
                    .convert(DType::C64)
                    .unwrap()
            })
            .through_f32(),
        );
    } else {
        v.push(case(
            "convert_f64_to_c64",
            vec![vec![a, b]],
            -2.0,
            2.0,
            |x| {
                let z = x[0].convert(DType::C64).unwrap();
                (&z * &z.exp()).imag()
            },
        ));
        v.push(
            case("convert_f64_to_f32", vec![vec![a, b]], -2.0, 2.0, |x| {
                x[0].convert(DType::F32)
                    .unwrap()
                    .convert(DType::F64)
                    .unwrap()
            })
            .through_f32(),
        );
        v.push(case(
            "to_int_is_constant",
            vec![vec![a, b]],
            -2.0,
            2.0,
            |x| {
                &x[0]
                    * &x[0]
                        .convert(DType::I64)
                        .unwrap()
                        .convert(DType::F64)
                        .unwrap()
            },
        ));
    }
    v
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    (1usize..=3, 1usize..=3).prop_map(|(a, b)| vec![a, b])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn unary_f64(s in shape(), seed in any::<u64>()) {
        check_all(&unary_cases(&s, false), DType::F64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn unary_c64(s in shape(), seed in any::<u64>()) {
        check_all(&unary_cases(&s, true), DType::C64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn binary_f64(s in shape(), seed in any::<u64>()) {
        check_all(&binary_cases(&s, false), DType::F64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn binary_c64(s in shape(), seed in any::<u64>()) {
        check_all(&binary_cases(&s, true), DType::C64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn reductions_f64(s in shape(), seed in any::<u64>()) {
        check_all(&reduction_cases(&s, false), DType::F64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn reductions_c64(s in shape(), seed in any::<u64>()) {
        check_all(&reduction_cases(&s, true), DType::C64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn contractions_f64(s in shape(), seed in any::<u64>()) {
        check_all(&contraction_cases(&s), DType::F64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn contractions_c64(s in shape(), seed in any::<u64>()) {
        check_all(&contraction_cases(&s), DType::C64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn structural_f64(s in shape(), seed in any::<u64>()) {
        check_all(&structural_cases(&s, false), DType::F64, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn structural_c64(s in shape(), seed in any::<u64>()) {
        check_all(&structural_cases(&s, true), DType::C64, seed).map_err(TestCaseError::fail)?;
    }
}
