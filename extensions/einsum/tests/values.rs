//! einsum values: hand cases, the peer fixtures (rtol 1e-10), helpers, eager = traced,
//! planner options and plan reports.

mod common;
use common::*;
use tenferro_einsum::*;
use tenferro_runtime::TracedTensor;

fn seq(shape: &[usize]) -> (TracedTensor, Vec<f64>) {
    let n: usize = shape.iter().product();
    let d = noise(n, n as u64 + shape.len() as u64);
    (col(shape, d.clone()), d)
}

fn ax(ids: &[usize]) -> Vec<Ax> {
    ids.iter().map(|&id| Ax { id, bcast: false }).collect()
}

#[test]
fn matmul_trace_diagonal_embed() {
    let (a, da) = seq(&[2, 3]);
    let (b, db) = seq(&[3, 4]);
    let c = einsum("ij,jk->ik", &[&a, &b]).unwrap();
    assert_eq!(c.shape().unwrap(), vec![2, 4]);
    let want = naive(
        &[2, 3, 4],
        &[ax(&[0, 1]), ax(&[1, 2])],
        &[da.clone(), db.clone()],
        &[0, 2],
    );
    assert_close(&vals(&c), &want, 1e-12, "matmul");
    // implicit output: ik
    assert_close(
        &vals(&einsum("ij,jk", &[&a, &b]).unwrap()),
        &want,
        1e-12,
        "implicit",
    );
    // transposed output
    let want_t = naive(&[2, 3, 4], &[ax(&[0, 1]), ax(&[1, 2])], &[da, db], &[2, 0]);
    assert_close(
        &vals(&einsum("ij,jk->ki", &[&a, &b]).unwrap()),
        &want_t,
        1e-12,
        "ki",
    );

    let (s, ds) = seq(&[3, 3]);
    let tr: f64 = (0..3).map(|i| ds[i + 3 * i]).sum();
    assert_close(&vals(&einsum("ii", &[&s]).unwrap()), &[tr], 1e-12, "trace");
    let dg: Vec<f64> = (0..3).map(|i| ds[i + 3 * i]).collect();
    assert_close(&vals(&einsum("ii->i", &[&s]).unwrap()), &dg, 1e-12, "diag");
    // i->ii
    let (v, dv) = seq(&[3]);
    let mut e = vec![0.0; 9];
    for i in 0..3 {
        e[i + 3 * i] = dv[i];
    }
    let y = einsum("i->ii", &[&v]).unwrap();
    assert_eq!(y.shape().unwrap(), vec![3, 3]);
    assert_close(&vals(&y), &e, 1e-12, "i->ii");
    // sum of everything, one-operand summed index
    let total: f64 = ds.iter().sum();
    assert_close(
        &vals(&einsum("ij->", &[&s]).unwrap()),
        &[total],
        1e-12,
        "sum",
    );
    // iij with a repeated index and a kept one; and a triple repeat
    let (t, dt) = seq(&[2, 2, 3]);
    let want = naive(&[2, 3], &[ax(&[0, 0, 1])], &[dt], &[1, 0]);
    assert_close(
        &vals(&einsum("iij->ji", &[&t]).unwrap()),
        &want,
        1e-12,
        "iij->ji",
    );
    let (c3, d3) = seq(&[2, 2, 2]);
    assert_close(
        &vals(&einsum("iii->i", &[&c3]).unwrap()),
        &[d3[0], d3[7]],
        1e-12,
        "iii->i",
    );
}

#[test]
fn ellipsis_broadcast_and_unicode() {
    let (a, da) = seq(&[5, 2, 3]);
    let (b, db) = seq(&[3, 4]);
    // ...ij,jk->...ik with ... = axis 0 of a
    let y = einsum("...ij,jk->...ik", &[&a, &b]).unwrap();
    assert_eq!(y.shape().unwrap(), vec![5, 2, 4]);
    let want = naive(
        &[5, 2, 3, 4],
        &[ax(&[0, 1, 2]), ax(&[2, 3])],
        &[da.clone(), db],
        &[0, 1, 3],
    );
    assert_close(&vals(&y), &want, 1e-12, "ellipsis");
    // implicit output with ellipsis: ... then the single letters
    let y2 = einsum("...ij,...jk", &[&a, &col(&[1, 3, 4], noise(12, 9))]).unwrap();
    assert_eq!(y2.shape().unwrap(), vec![5, 2, 4]);
    let want2 = naive(
        &[5, 2, 3, 4],
        &[
            ax(&[0, 1, 2]),
            vec![
                Ax { id: 0, bcast: true },
                Ax {
                    id: 2,
                    bcast: false,
                },
                Ax {
                    id: 3,
                    bcast: false,
                },
            ],
        ],
        &[da.clone(), noise(12, 9)],
        &[0, 1, 3],
    );
    assert_close(&vals(&y2), &want2, 1e-12, "broadcast ellipsis");
    // non-ASCII letters
    let (m, dm) = seq(&[2, 3]);
    let y3 = einsum("αβ,βγ->γα", &[&m, &col(&[3, 2], noise(6, 4))]).unwrap();
    let want3 = naive(
        &[2, 3, 2],
        &[ax(&[0, 1]), ax(&[1, 2])],
        &[dm, noise(6, 4)],
        &[2, 0],
    );
    assert_close(&vals(&y3), &want3, 1e-12, "unicode");
    // integer labels
    let y4 = einsum_labels(&[&[10, 20, 30], &[30, 40]], &[40, 10], &[&a, &b]).unwrap();
    let want4 = naive(
        &[5, 2, 3, 4],
        &[ax(&[0, 1, 2]), ax(&[2, 3])],
        &[da, noise(12, 12 + 2)],
        &[3, 0],
    );
    assert_close(&vals(&y4), &want4, 1e-12, "labels");
}

/// (subscripts, shapes, column-major operands, result shape, column-major result)
type Fixture = (String, Vec<Vec<usize>>, Vec<Vec<f64>>, Vec<usize>, Vec<f64>);

fn fixture(name: &str) -> Fixture {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    let subs = meta
        .split("\"subscripts\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let n = subs.split("->").next().unwrap().split(',').count();
    let mut shapes = Vec::new();
    let mut data = Vec::new();
    for k in 0..n {
        let (s, d) = read_npy(&dir.join(format!("op{k}.npy")));
        data.push(c_to_col(&s, &d));
        shapes.push(s);
    }
    let (rs, rd) = read_npy(&dir.join("result.npy"));
    (subs, shapes, data, rs.clone(), c_to_col(&rs, &rd))
}

#[test]
fn peer_fixtures() {
    for name in [
        "bin_omeinsum_batched_matmul_8x8_batch_4",
        "bin_omeinsum_matmul_10x10",
        "nary_matmul_chain_64",
        "sw_abcd_dbef_acef_d4",
    ] {
        let (subs, shapes, data, rshape, want) = fixture(name);
        let ops: Vec<TracedTensor> = shapes
            .iter()
            .zip(&data)
            .map(|(s, d)| col(s, d.clone()))
            .collect();
        let refs: Vec<&TracedTensor> = ops.iter().collect();
        for optimize in [
            Optimize::Auto,
            Optimize::Greedy,
            Optimize::Optimal,
            Optimize::tree_sa_fast(),
        ] {
            let opts = EinsumOptions {
                optimize,
                memory_limit: None,
            };
            let y = einsum_with(&subs, &refs, &opts).unwrap();
            assert_eq!(y.shape().unwrap(), rshape, "{name}");
            assert_close(&vals(&y), &want, 1e-10, name);
        }
        // The column-major reading of the same buffers: reversed shapes and subscripts.
        let rev = |t: &str| t.chars().rev().collect::<String>();
        let (l, r) = subs.split_once("->").unwrap();
        let cm = format!(
            "{}->{}",
            l.split(',').map(rev).collect::<Vec<_>>().join(","),
            rev(r)
        );
        let ops_cm: Vec<TracedTensor> = shapes
            .iter()
            .zip(&data)
            .map(|(s, d)| {
                // the C-order buffer = column-major data of the reversed shape
                let rs: Vec<usize> = s.iter().rev().copied().collect();
                let c = col(s, d.clone());
                let perm: Vec<usize> = (0..s.len()).rev().collect();
                let t = c.transpose(&perm).unwrap();
                assert_eq!(t.shape().unwrap(), rs);
                t
            })
            .collect();
        let refs: Vec<&TracedTensor> = ops_cm.iter().collect();
        let y = einsum(&cm, &refs).unwrap();
        let perm: Vec<usize> = (0..rshape.len()).rev().collect();
        let y = if rshape.len() > 1 {
            y.transpose(&perm).unwrap()
        } else {
            y
        };
        assert_close(
            &vals(&y),
            &want,
            1e-10,
            &format!("{name} column-major form {cm}"),
        );
    }
}

#[test]
fn helpers_match_numpy_semantics() {
    let (a, da) = seq(&[2, 3]);
    let (b, db) = seq(&[3, 2]);
    // tensordot over a's axis 1 and b's axis 0 = matmul
    let want = naive(
        &[2, 3, 2],
        &[ax(&[0, 1]), ax(&[1, 2])],
        &[da.clone(), db.clone()],
        &[0, 2],
    );
    assert_close(
        &vals(&tensordot(&a, &b, &[1], &[0]).unwrap()),
        &want,
        1e-12,
        "tensordot",
    );
    // inner: last axes: a[i,j] b[k,j]
    let (c, dc) = seq(&[4, 3]);
    let want = naive(
        &[2, 3, 4],
        &[ax(&[0, 1]), ax(&[2, 1])],
        &[da.clone(), dc],
        &[0, 2],
    );
    assert_close(&vals(&inner(&a, &c).unwrap()), &want, 1e-12, "inner");
    // outer: ravel row-major
    let (v, dv) = seq(&[3]);
    let y = outer(&a, &v).unwrap();
    assert_eq!(y.shape().unwrap(), vec![6, 3]);
    let got = vals(&y);
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..3 {
                let flat = i * 3 + j; // row-major ravel
                assert!((got[flat + 6 * k] - da[i + 2 * j] * dv[k]).abs() < 1e-12);
            }
        }
    }
    // kron of 2x3 and 3x2 -> 6x6: K[i*3+k, j*2+l] = a[i,j] b[k,l]
    let y = kron(&a, &b).unwrap();
    assert_eq!(y.shape().unwrap(), vec![6, 6]);
    let got = vals(&y);
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..3 {
                for l in 0..2 {
                    let (r, c) = (i * 3 + k, j * 2 + l);
                    assert!((got[r + 6 * c] - da[i + 2 * j] * db[k + 3 * l]).abs() < 1e-12);
                }
            }
        }
    }
}

#[test]
fn eager_equals_traced() {
    use tenferro_ad::EagerContext;
    use tenferro_cpu::CpuBackend;
    let ctx = EagerContext::new(CpuBackend::new());
    let (a, da) = seq(&[2, 3, 4]);
    let (b, db) = seq(&[4, 3]);
    let ea = ctx.from_vec_col_major(vec![2, 3, 4], da).unwrap();
    let eb = ctx.from_vec_col_major(vec![4, 3], db).unwrap();
    let got = einsum_eager("ijk,kj->i", &[&ea, &eb])
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let want = vals(&einsum("ijk,kj->i", &[&a, &b]).unwrap());
    assert_close(&got, &want, 1e-12, "eager einsum");
    let got = ea
        .tensordot(&eb, &[1, 2], &[1, 0])
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_close(&got, &want, 1e-12, "eager tensordot");
    let k1 = eb
        .kron(&eb)
        .unwrap()
        .value()
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let (tb, _) = seq(&[4, 3]);
    assert_close(&k1, &vals(&kron(&tb, &tb).unwrap()), 1e-12, "eager kron");
}

#[test]
fn plans_paths_cache_memory_limit() {
    let shapes = vec![vec![8, 64], vec![64, 2], vec![2, 64], vec![64, 8]];
    let s = "ab,bc,cd,de->ae";
    let g = plan_einsum(
        s,
        &shapes,
        &EinsumOptions {
            optimize: Optimize::Greedy,
            memory_limit: None,
        },
    )
    .unwrap();
    let o = plan_einsum(
        s,
        &shapes,
        &EinsumOptions {
            optimize: Optimize::Optimal,
            memory_limit: None,
        },
    )
    .unwrap();
    assert!(o.flops <= g.flops + 0.5);
    assert_eq!(o.steps.len(), 3);
    let text = o.to_string();
    assert!(text.contains("step 2") && text.contains("path"), "{text}");
    // An explicit path reproduces itself.
    let p = plan_einsum(
        s,
        &shapes,
        &EinsumOptions {
            optimize: Optimize::Path(o.path.clone()),
            memory_limit: None,
        },
    )
    .unwrap();
    assert_eq!(p.path, o.path);
    assert_eq!(p.flops, o.flops);
    // ... and gives the same values as every planner.
    let ops: Vec<TracedTensor> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| col(s, noise(s.iter().product(), k as u64)))
        .collect();
    let refs: Vec<&TracedTensor> = ops.iter().collect();
    let base = vals(&einsum(s, &refs).unwrap());
    for optimize in [
        Optimize::Greedy,
        Optimize::Dp,
        Optimize::Path(vec![(2, 3), (0, 1), (0, 1)]),
        Optimize::tree_sa_fast(),
    ] {
        let v = vals(
            &einsum_with(
                s,
                &refs,
                &EinsumOptions {
                    optimize,
                    memory_limit: None,
                },
            )
            .unwrap(),
        );
        assert_close(&v, &base, 1e-12, "planners agree");
    }
    // Cache: one entry per (subscripts, shapes, options).
    let cache = EinsumCache::new(2);
    cache.plan(s, &shapes, &EinsumOptions::default()).unwrap();
    cache.plan(s, &shapes, &EinsumOptions::default()).unwrap();
    assert_eq!(cache.len(), 1);
    cache
        .plan("ab,bc->ac", &shapes[..2], &EinsumOptions::default())
        .unwrap();
    cache
        .plan("ab,bc->ca", &shapes[..2], &EinsumOptions::default())
        .unwrap();
    assert_eq!(cache.len(), 2);
    // Memory limit: an outer product of two 64-vectors needs 4096 elements.
    let e = plan_einsum(
        "i,j->ij",
        &[vec![64], vec![64]],
        &EinsumOptions {
            optimize: Optimize::Auto,
            memory_limit: Some(100),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("memory_limit 100"), "{e}");
    let ok = plan_einsum(
        s,
        &shapes,
        &EinsumOptions {
            optimize: Optimize::Auto,
            memory_limit: Some(1000),
        },
    )
    .unwrap();
    assert!(ok.largest_intermediate <= 1000.0);
}

#[test]
fn layout_avoids_transposes_on_chains() {
    // A matrix chain and a batched chain: every GEMM reads its operands in place.
    let p = plan_einsum(
        "ij,jk,kl,lm->im",
        &[vec![5, 6], vec![6, 7], vec![7, 8], vec![8, 9]],
        &EinsumOptions::default(),
    )
    .unwrap();
    assert_eq!(p.transposes, 0, "{p}");
    let p = plan_einsum(
        "ijb,jkb->ikb",
        &[vec![5, 6, 3], vec![6, 7, 3]],
        &EinsumOptions::default(),
    )
    .unwrap();
    println!("{p}");
}

#[test]
fn nested_contraction_order_is_a_linear_path() {
    let p = |e: &str| match Optimize::nested(e).unwrap() {
        Optimize::Path(p) => p,
        o => panic!("{o:?}"),
    };
    assert_eq!(p("(ij,jk),kl->il"), vec![(0, 1), (0, 1)]);
    assert_eq!(p("ij,(jk,kl)->il"), vec![(1, 2), (0, 1)]);
    assert_eq!(p("(ab,bc),(cd,de)->ae"), vec![(0, 1), (0, 1), (0, 1)]);
    assert_eq!(p("ij,jk,kl->il"), vec![(0, 1), (0, 1)]);
    assert_eq!(p("((i,i),i)->"), vec![(0, 1), (0, 1)]);
    // empty terms are scalar operands
    assert_eq!(p("(,k),->k"), vec![(0, 1), (0, 1)]);
    for bad in ["(ij,jk->ik", "ij),jk->ik", "ij(jk)->ik"] {
        let e = Optimize::nested(bad).unwrap_err().to_string();
        assert!(e.contains("einsum") && e.contains("nested"), "{bad}: {e}");
    }
    // the same values as the planner's order
    let (a, _) = seq(&[2, 3]);
    let (b, _) = seq(&[3, 4]);
    let (c, _) = seq(&[4, 5]);
    let want = vals(&einsum("ij,jk,kl->il", &[&a, &b, &c]).unwrap());
    for e in ["(ij,jk),kl->il", "ij,(jk,kl)->il"] {
        let o = EinsumOptions {
            optimize: Optimize::nested(e).unwrap(),
            ..EinsumOptions::default()
        };
        let got = vals(&einsum_with("ij,jk,kl->il", &[&a, &b, &c], &o).unwrap());
        assert_close(&got, &want, 1e-12, e);
    }
}

#[test]
fn parentheses_in_the_subscripts_fix_the_order() {
    let (a, _) = seq(&[2, 3]);
    let (b, _) = seq(&[3, 40]);
    let (c, _) = seq(&[40, 5]);
    let want = vals(&einsum("ij,jk,kl->il", &[&a, &b, &c]).unwrap());
    let shapes = [vec![2, 3], vec![3, 40], vec![40, 5]];
    for (e, path) in [
        ("ij,(jk,kl)->il", vec![(1, 2), (0, 1)]),
        ("(ij,jk),kl->il", vec![(0, 1), (0, 1)]),
        ("(ij,jk),kl", vec![(0, 1), (0, 1)]),
        (" ij , ( jk , kl ) -> il", vec![(1, 2), (0, 1)]),
    ] {
        assert_close(&vals(&einsum(e, &[&a, &b, &c]).unwrap()), &want, 1e-12, e);
        // the parentheses win over the `optimize` option
        let greedy = EinsumOptions {
            optimize: Optimize::Greedy,
            memory_limit: None,
        };
        assert_eq!(plan_einsum(e, &shapes, &greedy).unwrap().path, path, "{e}");
        assert_eq!(global_cache().plan(e, &shapes, &greedy).unwrap().path, path);
        let got = vals(&einsum_with(e, &[&a, &b, &c], &greedy).unwrap());
        assert_close(&got, &want, 1e-12, e);
    }
    // unbalanced or misplaced parentheses, and parentheses in the output, are errors
    for bad in [
        "ij,(jk,kl->il",
        "ij,jk),kl->il",
        "ij,jk,kl->(il)",
        "ij(jk),kl->il",
    ] {
        let m = einsum(bad, &[&a, &b, &c]).unwrap_err().to_string();
        assert!(m.contains("einsum"), "{bad}: {m}");
    }
    // a group must name as many operands as are given
    let m = einsum("(ij,jk)->ik", &[&a, &b, &c])
        .unwrap_err()
        .to_string();
    assert!(m.contains("einsum"), "{m}");
}

#[test]
fn batched_matmul_with_the_batch_axis_first() {
    // Column-major `bij`: the batch axis is the fastest, so each batch's matrix is strided;
    // the product transposes both operands (large enough for it) into in-place layouts.
    let (b, i, j, k) = (8, 24, 32, 16);
    let (x, dx) = seq(&[b, i, j]);
    let (y, dy) = seq(&[b, j, k]);
    let p = plan_einsum(
        "bij,bjk->bik",
        &[vec![b, i, j], vec![b, j, k]],
        &EinsumOptions::default(),
    )
    .unwrap();
    let s = &p.steps[0];
    assert!(s.lhs_perm.is_some() && s.rhs_perm.is_some(), "{p}");
    let got = vals(&einsum("bij,bjk->bik", &[&x, &y]).unwrap());
    let want = naive(
        &[b, i, j, k],
        &[ax(&[0, 1, 2]), ax(&[0, 2, 3])],
        &[dx.clone(), dy.clone()],
        &[0, 1, 3],
    );
    assert_close(&got, &want, 1e-12, "bij,bjk->bik");
    // the same with the output in another order, and with the operands swapped
    let want = naive(
        &[b, i, j, k],
        &[ax(&[0, 1, 2]), ax(&[0, 2, 3])],
        &[dx, dy],
        &[3, 0, 1],
    );
    let got = vals(&einsum("bij,bjk->kbi", &[&x, &y]).unwrap());
    assert_close(&got, &want, 1e-12, "bij,bjk->kbi");
    let got = vals(&einsum("bjk,bij->kbi", &[&y, &x]).unwrap());
    assert_close(&got, &want, 1e-12, "bjk,bij->kbi");
}

#[test]
fn small_operands_keep_the_gemm_pack() {
    let p = plan_einsum(
        "bij,bjk->bik",
        &[vec![4, 5, 6], vec![4, 6, 7]],
        &EinsumOptions::default(),
    )
    .unwrap();
    let s = &p.steps[0];
    assert!(s.lhs_perm.is_none() && s.rhs_perm.is_none(), "{p}");
    assert_eq!(s.packs, 2, "{p}");
}

/// Batched outer products whose output order differs from dot_general's (batch axes, then
/// the lhs's free axes, then the rhs's): the multiply writes the output order directly.
/// Every order of `t, j, k, o` in `tjk,to->…`, and a two-axis batch with a repeated
/// output index after the product, against the naive contraction.
#[test]
fn batched_outer_products_in_every_output_order() {
    let ax = |ids: &[usize]| -> Vec<Ax> { ids.iter().map(|&id| Ax { id, bcast: false }).collect() };
    let sizes = [3, 4, 2, 5]; // t j k o
    let letters = ['t', 'j', 'k', 'o'];
    let a = noise(3 * 4 * 2, 1);
    let b = noise(3 * 5, 2);
    let (x, y) = (col(&[3, 4, 2], a.clone()), col(&[3, 5], b.clone()));
    let mut perms = Vec::new();
    for p in 0..4usize.pow(4) {
        let q: Vec<usize> = (0..4).map(|k| p / 4usize.pow(k) % 4).collect();
        let mut seen = [false; 4];
        if q.iter().all(|&d| !std::mem::replace(&mut seen[d], true)) {
            perms.push(q);
        }
    }
    assert_eq!(perms.len(), 24);
    for q in perms {
        let out: String = q.iter().map(|&d| letters[d]).collect();
        let subs = format!("tjk,to->{out}");
        let got = vals(&einsum(&subs, &[&x, &y]).unwrap());
        let want = naive(
            &sizes,
            &[ax(&[0, 1, 2]), ax(&[0, 3])],
            &[a.clone(), b.clone()],
            &q,
        );
        assert_close(&got, &want, 1e-15, &subs);
    }
    // Batch axes t and s, the lhs's free axis repeated in the output.
    let sizes = [2, 3, 4, 5]; // t s j o
    let a = noise(2 * 4 * 3, 3);
    let b = noise(3 * 5 * 2, 4);
    let (x, y) = (col(&[2, 4, 3], a.clone()), col(&[3, 5, 2], b.clone()));
    let got = vals(&einsum("tjs,sot->jostj", &[&x, &y]).unwrap());
    let want = naive(
        &sizes,
        &[ax(&[0, 2, 1]), ax(&[1, 3, 0])],
        &[a, b],
        &[2, 3, 1, 0, 2],
    );
    assert_close(&got, &want, 1e-15, "tjs,sot->jostj");
}

/// f32 and c64 operands take the same contraction as the f64 reference: f32 within its
/// rounding (a batch-first product of 32 batch elements runs on f32 lanes), c64 from the
/// four real contractions of the parts.
#[test]
fn f32_and_c64_operands() {
    use num_complex::Complex64;
    let cases: [(&str, &[usize], &[&[usize]], &[usize]); 3] = [
        (
            "bij,bjk->bik",
            &[32, 5, 6, 7],
            &[&[0, 1, 2], &[0, 2, 3]],
            &[0, 1, 3],
        ),
        ("ij,jk->ik", &[40, 50, 30], &[&[0, 1], &[1, 2]], &[0, 2]),
        ("abc,cb->a", &[9, 4, 5], &[&[0, 1, 2], &[2, 1]], &[0]),
    ];
    for (subs, sizes, ids, out) in cases {
        let shapes: Vec<Vec<usize>> = ids
            .iter()
            .map(|a| a.iter().map(|&i| sizes[i]).collect())
            .collect();
        let axes: Vec<Vec<Ax>> = ids.iter().map(|a| ax(a)).collect();
        let n = |s: &[usize]| s.iter().product::<usize>();
        let re: Vec<Vec<f64>> = (0..2).map(|o| noise(n(&shapes[o]), 7 + o as u64)).collect();
        let im: Vec<Vec<f64>> = (0..2)
            .map(|o| noise(n(&shapes[o]), 17 + o as u64))
            .collect();
        let rr = naive(sizes, &axes, &[re[0].clone(), re[1].clone()], out);

        let f32s: Vec<TracedTensor> = (0..2)
            .map(|o| {
                let v = re[o].iter().map(|&x| x as f32).collect();
                TracedTensor::from_vec_col_major(shapes[o].clone(), v)
            })
            .collect();
        let got = run(&einsum(subs, &[&f32s[0], &f32s[1]]).unwrap())
            .to_vec::<f32>()
            .unwrap();
        let got: Vec<f64> = got.into_iter().map(f64::from).collect();
        assert_close(&got, &rr, 1e-5, subs);

        let c64s: Vec<TracedTensor> = (0..2)
            .map(|o| {
                let v = re[o]
                    .iter()
                    .zip(&im[o])
                    .map(|(&r, &i)| Complex64::new(r, i))
                    .collect();
                TracedTensor::from_vec_col_major(shapes[o].clone(), v)
            })
            .collect();
        let got = run(&einsum(subs, &[&c64s[0], &c64s[1]]).unwrap())
            .to_vec::<Complex64>()
            .unwrap();
        let ii = naive(sizes, &axes, &[im[0].clone(), im[1].clone()], out);
        let ri = naive(sizes, &axes, &[re[0].clone(), im[1].clone()], out);
        let ir = naive(sizes, &axes, &[im[0].clone(), re[1].clone()], out);
        let want_re: Vec<f64> = rr.iter().zip(&ii).map(|(a, b)| a - b).collect();
        let want_im: Vec<f64> = ri.iter().zip(&ir).map(|(a, b)| a + b).collect();
        let got_re: Vec<f64> = got.iter().map(|z| z.re).collect();
        let got_im: Vec<f64> = got.iter().map(|z| z.im).collect();
        assert_close(&got_re, &want_re, 1e-12, subs);
        assert_close(&got_im, &want_im, 1e-12, subs);
    }
}

/// Every shipped instance small enough for the nested-loop reference (at most 2^22 index
/// combinations, operands built from deterministic noise) matches it, under each planner,
/// in its literal subscripts and in its column-major form (every term and shape reversed).
#[test]
fn small_shipped_instances_match_the_naive_reference() {
    let mut checked = 0;
    for name in instances::names() {
        let inst = instances::load(&name).unwrap();
        for form in [inst.clone(), inst.column_major().unwrap()] {
            if matches_naive(&form) {
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 12,
        "only {checked} instance forms were small enough"
    );
}

/// Whether the instance is small enough for the nested-loop reference; if so, asserts that
/// einsum matches it under Auto and greedy planning.
fn matches_naive(inst: &instances::Instance) -> bool {
    let name = format!("{} ({})", inst.name, inst.subscripts);
    let (lhs, out) = inst.subscripts.split_once("->").unwrap();
    let terms: Vec<&str> = lhs.split(',').collect();
    let mut letters: Vec<char> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    for (t, shape) in terms.iter().zip(&inst.shapes) {
        for (c, &n) in t.chars().zip(shape) {
            if !letters.contains(&c) {
                letters.push(c);
                sizes.push(n);
            }
        }
    }
    let loops = sizes.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
    if loops.is_none_or(|l| l > 1 << 22) {
        return false;
    }
    let id = |c: char| letters.iter().position(|&l| l == c).unwrap();
    let inputs: Vec<Vec<Ax>> = terms
        .iter()
        .map(|t| ax(&t.chars().map(id).collect::<Vec<_>>()))
        .collect();
    let data: Vec<Vec<f64>> = inst
        .shapes
        .iter()
        .enumerate()
        .map(|(k, s)| noise(s.iter().product(), 7 + k as u64))
        .collect();
    let output: Vec<usize> = out.chars().map(id).collect();
    let want = naive(&sizes, &inputs, &data, &output);
    let ops = operands(&inst.shapes, &data);
    let refs: Vec<&TracedTensor> = ops.iter().collect();
    for optimize in [Optimize::Auto, Optimize::Greedy] {
        let opts = EinsumOptions {
            optimize,
            memory_limit: None,
        };
        let y = einsum_with(&inst.subscripts, &refs, &opts).unwrap();
        assert_close(&vals(&y), &want, 1e-10, &name);
    }
    true
}

/// The column-major form of an instance reverses every term and every shape, and keeps
/// the stored paths (they name operands, not indices); an instance file without `->` is
/// refused, and so is the column-major form of one built without it (an implicit output
/// would not reverse with its terms).
#[test]
fn column_major_form_reverses_terms_and_shapes() {
    let inst = instances::load("bin_batched_matmul_b32_m64_n64_k64").unwrap();
    let cm = inst.column_major().unwrap();
    assert_eq!(cm.subscripts, "jib,kjb->kib");
    assert_eq!(cm.shapes, vec![vec![64, 64, 32], vec![64, 64, 32]]);
    assert_eq!(cm.upstream.len(), inst.upstream.len());
    assert_eq!(cm.column_major().unwrap().subscripts, inst.subscripts);
    let implicit = r#"{"name":"x","subscripts":"ij,jk","shapes":[[2,3],[3,4]]}"#;
    let err = instances::parse(implicit).unwrap_err();
    assert!(err.contains("->"), "{err}");
    let built = instances::Instance {
        subscripts: "ij,jk".into(),
        ..inst
    };
    let err = built.column_major().unwrap_err();
    assert!(err.contains("->"), "{err}");
}

/// A repeated output index embeds a diagonal with exact zeros elsewhere, whatever the
/// values on it: no NaN from `inf · 0`, no negative zeros.
#[test]
fn diagonal_embedding_keeps_exact_zeros_beside_inf_and_nan() {
    let v = col(&[3], vec![f64::INFINITY, -2.0, f64::NAN]);
    let got = vals(&einsum("i->ii", &[&v]).unwrap());
    let want = [f64::INFINITY, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, f64::NAN];
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let same =
            (g.is_nan() && w.is_nan()) || (g == w && g.is_sign_negative() == w.is_sign_negative());
        assert!(same, "entry {k}: {g} against {w} ({got:?})");
    }
    let m = col(&[2, 3], vec![1.0, f64::INFINITY, -2.0, 3.0, f64::NAN, 4.0]);
    let got = vals(&einsum("ij->jii", &[&m]).unwrap());
    // out[j, i, i] = m[i, j]; the off-diagonal blocks out[:, 1, 0] and out[:, 0, 1] are 0
    assert!(
        got[3..9].iter().all(|&x| x == 0.0 && x.is_sign_positive()),
        "{got:?}"
    );
    assert_eq!(got[0..2], [1.0, -2.0]);
    assert!(got[2].is_nan());
    assert_eq!(got[9..12], [f64::INFINITY, 3.0, 4.0]);
}
