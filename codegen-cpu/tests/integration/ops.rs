//! Every core op × every dtype it accepts, on random inputs, against the reference
//! evaluator `tenferro_ir::eval` (bit-identical except dot_general on floats).

use crate::common;

use common::*;
use proptest::prelude::*;
use tenferro_ir::{
    eval, BinaryOp, CmpOp, DType, DotDims, Op, ReduceOp, Tensor, TensorType, UnaryOp,
};

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    }
}

/// The number of ordered dtypes (real floats, integers, bool).
fn ordered_dtypes() -> usize {
    DType::ALL.iter().filter(|d| !d.is_complex()).count()
}

/// A random shape of rank 0..=3 with extents 0..=4 (zero rarely).
fn rand_shape(r: &mut SeedRng) -> Vec<usize> {
    let rank = r.below(4);
    let lo = if r.below(6) == 0 { 0 } else { 1 };
    r.shape(rank, lo, 4)
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn unary_ops(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let shape = rand_shape(&mut r);
        let mut ran = 0;
        for dt in DType::ALL {
            let x = r.tensor(&TensorType::new(dt, shape.clone()), true);
            for u in UnaryOp::ALL {
                ran += check_bits(&Op::Unary(u), &[&x]) as usize;
            }
        }
        // every (op, dtype) pair the op table gives a semantics for
        let want: usize = UnaryOp::ALL
            .iter()
            .map(|u| DType::ALL.iter().filter(|&&d| u.accepts(d)).count())
            .sum();
        prop_assert_eq!(ran, want);
    }

    #[test]
    fn binary_ops(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let shape = rand_shape(&mut r);
        let mut ran = 0;
        for dt in DType::ALL {
            let ty = TensorType::new(dt, shape.clone());
            let (x, y) = (r.tensor(&ty, true), r.tensor(&ty, true));
            for b in BinaryOp::ALL {
                ran += check_bits(&Op::Binary(b), &[&x, &y]) as usize;
            }
        }
        let want: usize = BinaryOp::ALL
            .iter()
            .map(|b| DType::ALL.iter().filter(|&&d| b.accepts(d)).count())
            .sum();
        prop_assert_eq!(ran, want);
    }

    #[test]
    fn compare_and_select(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let shape = rand_shape(&mut r);
        let mut ran = 0;
        for dt in DType::ALL {
            let ty = TensorType::new(dt, shape.clone());
            let (x, y) = (r.tensor(&ty, true), r.tensor(&ty, true));
            for c in CmpOp::ALL {
                ran += check_bits(&Op::Compare(c), &[&x, &x]) as usize;
                check_bits(&Op::Compare(c), &[&x, &y]);
            }
            let p = r.tensor(&TensorType::new(DType::Bool, shape.clone()), false);
            prop_assert!(check_bits(&Op::Select, &[&p, &x, &y]), "op was rejected");
        }
        // six comparisons on the ordered dtypes, eq / ne on the complex ones
        prop_assert_eq!(ran, 6 * ordered_dtypes() + 2 * 2);
    }

    #[test]
    fn convert_every_pair(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let shape = rand_shape(&mut r);
        for from in DType::ALL {
            let x = r.tensor(&TensorType::new(from, shape.clone()), true);
            for to in DType::ALL {
                prop_assert!(check_bits(&Op::Convert { to }, &[&x]), "op was rejected");
            }
        }
    }

    #[test]
    fn reductions(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let rank = r.below(5);
        let lo = if r.below(6) == 0 { 0 } else { 1 };
        let shape = r.shape(rank, lo, 3);
        let mut axes: Vec<usize> = (0..rank).filter(|_| r.below(2) == 1).collect();
        axes.sort();
        let mut ran = 0;
        for dt in DType::ALL {
            let x = r.tensor(&TensorType::new(dt, shape.clone()), true);
            for kind in ReduceOp::ALL {
                ran += check_bits(&Op::Reduce { kind, axes: axes.clone() }, &[&x]) as usize;
            }
        }
        // four kinds on the numeric real dtypes, sum / prod on the complex ones
        prop_assert_eq!(ran, 4 * (ordered_dtypes() - 1) + 2 * 2);
    }

    #[test]
    fn transpose_and_reshape(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let rank = r.below(5);
        let shape = r.shape(rank, 1, 4);
        let perm = r.perm(rank);
        let mut reshaped = shape.clone();
        reshaped.reverse();
        reshaped.push(1);
        for dt in DType::ALL {
            let x = r.tensor(&TensorType::new(dt, shape.clone()), true);
            prop_assert!(check_bits(&Op::Transpose { perm: perm.clone() }, &[&x]), "op was rejected");
            prop_assert!(check_bits(&Op::Reshape { shape: reshaped.clone() }, &[&x]), "op was rejected");
        }
    }

    #[test]
    fn broadcast_in_dim(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let out_rank = r.below(5);
        let out = r.shape(out_rank, 1, 3);
        let dims: Vec<usize> = (0..out_rank).filter(|_| r.below(2) == 1).collect();
        let xshape: Vec<usize> =
            dims.iter().map(|&d| if r.below(3) == 0 { 1 } else { out[d] }).collect();
        for dt in DType::ALL {
            let x = r.tensor(&TensorType::new(dt, xshape.clone()), true);
            let op = Op::BroadcastInDim { shape: out.clone(), dims: dims.clone() };
            prop_assert!(check_bits(&op, &[&x]), "op was rejected");
        }
    }

    #[test]
    fn slice_pad_concatenate(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let rank = 1 + r.below(3);
        let shape = r.shape(rank, 0, 4);
        let starts: Vec<usize> = shape.iter().map(|&n| r.below(n + 1)).collect();
        let limits: Vec<usize> =
            shape.iter().zip(&starts).map(|(&n, &s)| s + r.below(n - s + 1)).collect();
        let low: Vec<usize> = (0..rank).map(|_| r.below(3)).collect();
        let high: Vec<usize> = (0..rank).map(|_| r.below(3)).collect();
        let axis = r.below(rank);
        for dt in DType::ALL {
            let ty = TensorType::new(dt, shape.clone());
            let x = r.tensor(&ty, true);
            let op = Op::Slice { starts: starts.clone(), limits: limits.clone() };
            prop_assert!(check_bits(&op, &[&x]), "op was rejected");
            let v = r.tensor(&TensorType::scalar(dt), true);
            let op = Op::Pad { low: low.clone(), high: high.clone() };
            prop_assert!(check_bits(&op, &[&x, &v]), "op was rejected");
            let mut other = shape.clone();
            other[axis] = r.below(3);
            let y = r.tensor(&TensorType::new(dt, other), true);
            prop_assert!(check_bits(&Op::Concatenate { axis }, &[&x, &y, &x]), "op was rejected");
            prop_assert!(check_bits(&Op::Concatenate { axis }, &[&y]), "op was rejected");
        }
    }

    #[test]
    fn gather_scatter_add(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let rank = 1 + r.below(3);
        let shape = r.shape(rank, 1, 3);
        let axis = r.below(rank);
        let irank = r.below(3);
        let ishape = r.shape(irank, 0, 3);
        let n = shape[axis] as i64;
        let m: usize = ishape.iter().product();
        let idx: Vec<i64> = (0..m).map(|_| r.below(n as usize + 4) as i64 - 2).collect();
        let idx = Tensor::from_vec_col_major(ishape.clone(), idx).unwrap();
        let gshape = tenferro_ir::gather_shape(&shape, &ishape, axis);
        let mut ran = 0;
        for dt in DType::ALL {
            let x = r.tensor(&TensorType::new(dt, shape.clone()), false);
            prop_assert!(check_bits(&Op::Gather { axis }, &[&x, &idx]), "op was rejected");
            let u = r.tensor(&TensorType::new(dt, gshape.clone()), false);
            ran += check_bits(&Op::ScatterAdd { axis }, &[&x, &idx, &u]) as usize;
        }
        // every dtype but bool
        prop_assert_eq!(ran, DType::ALL.len() - 1);
    }

    #[test]
    fn iota_and_constant(seed in any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let rank = 1 + r.below(3);
        let shape = r.shape(rank, 0, 4);
        let dim = r.below(rank);
        let mut ran = 0;
        for dt in DType::ALL {
            let ty = TensorType::new(dt, shape.clone());
            ran += check_bits(&Op::Iota { ty: ty.clone(), dim }, &[]) as usize;
            let c = r.tensor(&ty, true);
            prop_assert!(check_bits(&Op::Constant(c), &[]), "op was rejected");
        }
        // every dtype but bool
        prop_assert_eq!(ran, DType::ALL.len() - 1);
    }

    #[test]
    fn dot_general_random(seed in any::<u64>(), threads in 1usize..3) {
        let mut r = SeedRng::new(seed);
        // Axis counts of each role; sizes 0..=3 (0 rarely).
        let (nb, nc, nl, nr) = (r.below(3), r.below(3), r.below(3), r.below(3));
        let lo = if r.below(8) == 0 { 0 } else { 1 };
        let bs = r.shape(nb, lo, 3);
        let cs = r.shape(nc, lo, 3);
        let ls = r.shape(nl, 1, 3);
        let rs = r.shape(nr, 1, 3);
        // Axis roles in a random order per operand.
        let lperm = r.perm(nb + nc + nl);
        let rperm = r.perm(nb + nc + nr);
        // Role j of lhs sits at axis lperm[j]; roles are batch, contract, free in order.
        let place = |perm: &[usize], sizes: Vec<usize>| {
            let mut shape = vec![0; perm.len()];
            for (j, &a) in perm.iter().enumerate() {
                shape[a] = sizes[j];
            }
            shape
        };
        let lshape = place(&lperm, [bs.clone(), cs.clone(), ls].concat());
        let rshape = place(&rperm, [bs, cs, rs].concat());
        let dims = DotDims {
            lhs_batch: lperm[..nb].to_vec(),
            lhs_contract: lperm[nb..nb + nc].to_vec(),
            rhs_batch: rperm[..nb].to_vec(),
            rhs_contract: rperm[nb..nb + nc].to_vec(),
        };
        let op = Op::DotGeneral(dims);
        for dt in [DType::F32, DType::F64, DType::C32, DType::C64, DType::I64] {
            let l = r.tensor(&TensorType::new(dt, lshape.clone()), false);
            let rt = r.tensor(&TensorType::new(dt, rshape.clone()), false);
            let f = single_op_function(&op, &[&l, &rt]);
            let inputs = [l, rt];
            let want = eval::eval(&f, &inputs).unwrap();
            let got = run_cpu(&f, &inputs, threads);
            assert_close(&got[0], &want[0], &format!("{op:?} {lshape:?} x {rshape:?} {dt}"));
        }
    }
}
