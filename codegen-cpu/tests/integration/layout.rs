//! Hand-written column-major checks, dot_general's degenerate shapes and kernel choices,
//! and the plan's buffer frees.

use crate::common;

use common::*;
use num_complex::Complex64;
use tenferro_cpu::CpuBackend;
use tenferro_ir::{BinaryOp, DType, DotDims, Function, Op, ReduceOp, Tensor, TensorType, UnaryOp};
use tenferro_runtime::Backend;

fn f64s(shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_vec_col_major(shape.to_vec(), v.to_vec()).unwrap()
}

fn run1(op: Op, args: &[&Tensor]) -> Tensor {
    let f = single_op_function(&op, args);
    let inputs: Vec<Tensor> = args.iter().map(|&t| t.clone()).collect();
    run_cpu(&f, &inputs, 1).remove(0)
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>().unwrap()
}

fn dot(lc: &[usize], rc: &[usize], lb: &[usize], rb: &[usize]) -> Op {
    Op::DotGeneral(DotDims {
        lhs_contract: lc.to_vec(),
        rhs_contract: rc.to_vec(),
        lhs_batch: lb.to_vec(),
        rhs_batch: rb.to_vec(),
    })
}

#[test]
fn column_major_layout_ops() {
    // x = [[1,3,5],[2,4,6]] stored column-major.
    let x = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let t = run1(Op::Transpose { perm: vec![1, 0] }, &[&x]);
    assert_eq!(t.shape(), &[3, 2]);
    assert_eq!(v64(&t), [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    let s = run1(
        Op::Reduce {
            kind: ReduceOp::Sum,
            axes: vec![0],
        },
        &[&x],
    );
    assert_eq!(v64(&s), [3.0, 7.0, 11.0]);
    let s = run1(
        Op::Reduce {
            kind: ReduceOp::Max,
            axes: vec![1],
        },
        &[&x],
    );
    assert_eq!(v64(&s), [5.0, 6.0]);
    let row = f64s(&[3], &[10.0, 20.0, 30.0]);
    let b = run1(
        Op::BroadcastInDim {
            shape: vec![2, 3],
            dims: vec![1],
        },
        &[&row],
    );
    assert_eq!(v64(&b), [10.0, 10.0, 20.0, 20.0, 30.0, 30.0]);
    let sl = run1(
        Op::Slice {
            starts: vec![1, 1],
            limits: vec![2, 3],
        },
        &[&x],
    );
    assert_eq!(v64(&sl), [4.0, 6.0]);
    let r = run1(Op::Reshape { shape: vec![3, 2] }, &[&x]);
    assert_eq!(v64(&r), v64(&x));
    let io = run1(
        Op::Iota {
            ty: TensorType::new(DType::I64, vec![2, 3]),
            dim: 1,
        },
        &[],
    );
    assert_eq!(io.to_vec::<i64>().unwrap(), [0, 0, 1, 1, 2, 2]);
}

#[test]
fn matmul_is_column_major() {
    // A = [[1,3,5],[2,4,6]], B = [[1,4],[2,5],[3,6]]; A·B = [[22,49],[28,64]].
    let a = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = f64s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let c = run1(Op::DotGeneral(DotDims::matmul()), &[&a, &b]);
    assert_eq!(c.shape(), &[2, 2]);
    assert_eq!(v64(&c), [22.0, 28.0, 49.0, 64.0]);
    // Aᵀ·A via contracting axis 0 of both: [[5,11,17],[11,25,39],[17,39,61]].
    let g = run1(dot(&[0], &[0], &[], &[]), &[&a, &a]);
    assert_eq!(
        v64(&g),
        [5.0, 11.0, 17.0, 11.0, 25.0, 39.0, 17.0, 39.0, 61.0]
    );
    // Batched: lhs [b=2, m=1, k=2], rhs [k=2, b=2]; out [b, m] = per-batch dot products.
    let l = f64s(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    let r = f64s(&[2, 2], &[5.0, 6.0, 7.0, 8.0]);
    let o = run1(dot(&[2], &[0], &[0], &[1]), &[&l, &r]);
    assert_eq!(o.shape(), &[2, 1]);
    // batch 0: l = [1, 3], r = [5, 6] -> 23; batch 1: l = [2, 4], r = [7, 8] -> 46.
    assert_eq!(v64(&o), [23.0, 46.0]);
    // Complex: (i)(i) = -1.
    let z = Tensor::from_vec_col_major(vec![1, 1], vec![Complex64::new(0.0, 1.0)]).unwrap();
    let zz = run1(Op::DotGeneral(DotDims::matmul()), &[&z, &z]);
    assert_eq!(
        zz.to_vec::<Complex64>().unwrap(),
        [Complex64::new(-1.0, 0.0)]
    );
}

#[test]
fn dot_general_degenerate_shapes() {
    // k = 0: zeros.
    let e = f64s(&[2, 0], &[]);
    let er = f64s(&[0, 3], &[]);
    let o = run1(Op::DotGeneral(DotDims::matmul()), &[&e, &er]);
    assert_eq!(o.shape(), &[2, 3]);
    assert_eq!(v64(&o), [0.0; 6]);
    // m = 0: empty result.
    let m0 = f64s(&[0, 2], &[]);
    let r = f64s(&[2, 3], &[1.0; 6]);
    let o = run1(Op::DotGeneral(DotDims::matmul()), &[&m0, &r]);
    assert_eq!(o.shape(), &[0, 3]);
    // Scalars: a plain product.
    let s = run1(
        dot(&[], &[], &[], &[]),
        &[&f64s(&[], &[3.0]), &f64s(&[], &[-2.0])],
    );
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(v64(&s), [-6.0]);
    // Pure outer product: r[i,j] = u[i] v[j].
    let u = f64s(&[2], &[1.0, 2.0]);
    let v = f64s(&[3], &[10.0, 20.0, 30.0]);
    let o = run1(dot(&[], &[], &[], &[]), &[&u, &v]);
    assert_eq!(v64(&o), [10.0, 20.0, 20.0, 40.0, 30.0, 60.0]);
    // Pure batch product: elementwise.
    let o = run1(dot(&[], &[], &[0], &[0]), &[&u, &u]);
    assert_eq!(v64(&o), [1.0, 4.0]);
    // Full contraction of vectors.
    let o = run1(dot(&[0], &[0], &[], &[]), &[&v, &v]);
    assert_eq!(v64(&o), [1400.0]);
    // i64 with a transposed operand.
    let a = Tensor::from_vec_col_major(vec![2, 2], vec![1i64, 2, 3, 4]).unwrap();
    let o = run1(dot(&[0], &[0], &[], &[]), &[&a, &a]);
    // AᵀA with A = [[1,3],[2,4]]: [[5,11],[11,25]].
    assert_eq!(o.to_vec::<i64>().unwrap(), [5, 11, 11, 25]);
}

fn kernel_of(op: Op, shapes: &[&[usize]]) -> &'static str {
    let mut f = Function::new("k");
    let ps: Vec<_> = shapes
        .iter()
        .map(|s| f.add_param(TensorType::new(DType::F64, s.to_vec())))
        .collect();
    let r = f.push1(op, &ps).unwrap();
    f.set_outputs(vec![r]);
    let p = CpuBackend::with_threads(1).prepare(&f).unwrap();
    p.steps()[0].kernel_name()
}

#[test]
fn dot_general_views_transposed_operands_in_place() {
    // A·B, Aᵀ·B, A·Bᵀ read in place.
    assert_eq!(
        kernel_of(Op::DotGeneral(DotDims::matmul()), &[&[2, 3], &[3, 4]]),
        "gemm"
    );
    assert_eq!(
        kernel_of(dot(&[0], &[0], &[], &[]), &[&[3, 2], &[3, 4]]),
        "gemm"
    );
    assert_eq!(
        kernel_of(dot(&[1], &[1], &[], &[]), &[&[2, 3], &[4, 3]]),
        "gemm"
    );
    // Batch in the last axis: strided batches, still in place.
    assert_eq!(
        kernel_of(dot(&[1], &[0], &[2], &[2]), &[&[2, 3, 5], &[3, 4, 5]]),
        "gemm"
    );
    // Batch on the contiguous axis of lhs: neither matrix stride is 1, so lhs is packed.
    assert_eq!(
        kernel_of(dot(&[2], &[0], &[0], &[2]), &[&[5, 2, 3], &[3, 4, 5]]),
        "pack_gemm"
    );
}

#[test]
fn large_products_pack_a_strided_streamed_operand() {
    // (dims, lhs shape, rhs shape, kernel): the GEMM streams rhs in place, so with enough
    // output rows (m >= 128) an rhs whose contracting axis is strided is packed first.
    let cases: [(Op, &[usize], &[usize], &str); 7] = [
        (
            dot(&[1], &[1], &[], &[]),
            &[130, 20],
            &[24, 20],
            "pack_gemm",
        ),
        (dot(&[1], &[1], &[], &[]), &[100, 20], &[24, 20], "gemm"),
        (dot(&[1], &[0], &[], &[]), &[130, 20], &[20, 24], "gemm"),
        (dot(&[0], &[0], &[], &[]), &[20, 130], &[20, 24], "gemm"),
        (
            dot(&[0], &[1], &[], &[]),
            &[20, 130],
            &[24, 20],
            "pack_gemm",
        ),
        // Batch on the last axis: strided batches, rhs packed per its layout.
        (
            dot(&[1], &[1], &[2], &[2]),
            &[130, 20, 3],
            &[24, 20, 3],
            "pack_gemm",
        ),
        (
            dot(&[1], &[0], &[2], &[2]),
            &[130, 20, 3],
            &[20, 24, 3],
            "gemm",
        ),
    ];
    let mut r = SeedRng::new(11);
    for (op, ls, rs, kernel) in cases {
        assert_eq!(
            kernel_of(op.clone(), &[ls, rs]),
            kernel,
            "{op:?} {ls:?} {rs:?}"
        );
        for dt in [DType::F32, DType::F64, DType::C32, DType::C64] {
            let l = r.tensor(&TensorType::new(dt, ls.to_vec()), false);
            let rt = r.tensor(&TensorType::new(dt, rs.to_vec()), false);
            let f = single_op_function(&op, &[&l, &rt]);
            let inputs = [l, rt];
            let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
            let one = run_cpu(&f, &inputs, 1);
            let two = run_cpu(&f, &inputs, 2);
            let what = format!("{op:?} {ls:?} {rs:?} {dt}");
            assert_close(&one[0], &want[0], &what);
            assert_close(&two[0], &want[0], &what);
        }
    }
}

#[test]
fn transposing_copies_match_the_reference() {
    // Tiled transposes: square and ragged tiles, a batch axis after the two swapped ones,
    // and a transpose of the middle axes (the swapped pair not first).
    let mut r = SeedRng::new(5);
    for (shape, perm) in [
        (vec![16, 16], vec![1, 0]),
        (vec![37, 50], vec![1, 0]),
        (vec![33, 17, 3], vec![1, 0, 2]),
        (vec![3, 40, 20], vec![0, 2, 1]),
        (vec![20, 3, 40], vec![2, 1, 0]),
    ] {
        for dt in [DType::F32, DType::F64, DType::C64, DType::I64] {
            let x = r.tensor(&TensorType::new(dt, shape.clone()), false);
            let op = Op::Transpose { perm: perm.clone() };
            let f = single_op_function(&op, &[&x]);
            let inputs = [x];
            let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
            let got = run_cpu(&f, &inputs, 1);
            assert!(got[0].bits_eq(&want[0]), "{shape:?} {perm:?} {dt}");
        }
    }
}

#[test]
fn intermediates_are_freed_after_their_last_use() {
    let mut f = Function::new("chain");
    let x = f.add_param(TensorType::new(DType::F64, vec![3]));
    let a = f.push1(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let b = f.push1(Op::Binary(BinaryOp::Mul), &[a, a]).unwrap();
    let dead = f.push1(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    let c = f.push1(Op::Binary(BinaryOp::Add), &[b, x]).unwrap();
    f.set_outputs(vec![c, b]);
    // One step per instruction (fusion would run the chain as one group).
    let p = CpuBackend::with_threads(1)
        .with_fusion(false)
        .prepare(&f)
        .unwrap();
    let frees: Vec<Vec<usize>> = p.steps().iter().map(|s| s.frees().to_vec()).collect();
    // exp: nothing; mul: a; neg: its own unused result; add: x (b is an output).
    assert_eq!(
        frees,
        vec![vec![], vec![a.index()], vec![dead.index()], vec![x.index()]]
    );
    let text = p.to_string();
    assert!(text.contains("free %1"), "{text}");
    let xv = f64s(&[3], &[0.0, 1.0, -1.0]);
    let out = run_cpu_with(&f, std::slice::from_ref(&xv), 1, false);
    let want = tenferro_ir::eval::eval(&f, &[xv]).unwrap();
    assert!(out[0].bits_eq(&want[0]) && out[1].bits_eq(&want[1]));
}

#[test]
fn medium_batched_gemm_matches_reference() {
    // Sizes past faer's small-matrix kernels, a transposed lhs and batch on the last axis.
    let op = dot(&[0], &[0], &[2], &[2]);
    let mut r = SeedRng::new(7);
    for (dt, threads) in [(DType::F32, 2), (DType::F64, 1), (DType::C64, 2)] {
        let l = r.tensor(&TensorType::new(dt, vec![37, 45, 2]), false);
        let rt = r.tensor(&TensorType::new(dt, vec![37, 29, 2]), false);
        let f = single_op_function(&op, &[&l, &rt]);
        let inputs = [l, rt];
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        let got = run_cpu(&f, &inputs, threads);
        assert_eq!(got[0].shape(), &[2, 45, 29]);
        assert_close(&got[0], &want[0], &format!("{dt}"));
    }
}
