//! vmap over linalg ops: the batch axis becomes one more trailing batch axis of the
//! primitive, and the result equals the per-example loop (values and gradients).

use tenferro_ad::{vmap, AdContext, Result};
use tenferro_cpu::CpuBackend;
use tenferro_linalg::TracedTensorLinalgExt;
use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

fn run(t: &TracedTensor) -> Vec<f64> {
    let p = GraphCompiler::new().compile(t).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    ex.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    ex.run(&p).unwrap().to_vec::<f64>().unwrap()
}

/// Three SPD 3x3 matrices, batched on axis 0 (`[3, 3, 3]`).
fn spd_batch() -> TracedTensor {
    let mut v = Vec::new();
    for k in 0..3 {
        for j in 0..3 {
            for i in 0..3 {
                let base = if i == j {
                    4.0 + k as f64
                } else {
                    0.5 / (1.0 + (i + j + k) as f64)
                };
                v.push(base);
            }
        }
    }
    // v is [3 (i), 3 (j), 3 (k)] column-major: move k to the front
    TracedTensor::from_vec_col_major(vec![3, 3, 3], v)
        .transpose(&[2, 0, 1])
        .unwrap()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[test]
fn vmap_of_linalg_ops_equals_the_loop() {
    let rules = tenferro_linalg::ad_rules().unwrap();
    let a = spd_batch();
    let b = TracedTensor::from_vec_col_major(vec![3, 2], vec![1.0, -2.0, 0.5, 3.0, 0.25, -1.0]);
    let f = |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
        let l = xs[0].cholesky()?;
        let x = xs[0].solve(&xs[1])?;
        Ok(vec![(&l.sum() + &x.sum()).reshape(&[])?])
    };
    let got = vmap(f, &[Some(0), None], &[0])
        .with_rules(rules.clone())
        .call(&[&a, &b])
        .unwrap()
        .remove(0);
    let per: Vec<TracedTensor> = (0..3)
        .map(|k| {
            let ak = a
                .slice(&[k, 0, 0], &[k + 1, 3, 3])
                .unwrap()
                .reshape(&[3, 3])
                .unwrap();
            f(&[ak, b.clone()]).unwrap().remove(0)
        })
        .collect();
    let want = TracedTensor::stack(&per.iter().collect::<Vec<_>>(), 0).unwrap();
    close(&run(&got), &run(&want));
    // and its gradient
    let ad = AdContext::builder()
        .with_extension_rules(rules)
        .build()
        .unwrap();
    let g = ad.grad(&got.sum(), &a).unwrap();
    let gw = ad.grad(&want.sum(), &a).unwrap();
    close(&run(&g), &run(&gw));
}
