//! Weight initialisers: scale and distribution, and orthogonality.

use tenferro::cpu::CpuBackend;
use tenferro::nn;
use tenferro::random::Key;
use tenferro::runtime::{GraphCompiler, GraphExecutor};
use tenferro::{DType, TracedTensor};

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, var, v.iter().fold(0.0_f64, |a, x| a.max(x.abs())))
}

#[test]
fn variance_scaling_family() {
    let shape = [400, 300];
    let key = Key::new(0);
    type Init = fn(&TracedTensor, DType, &[usize]) -> tenferro::runtime::Result<TracedTensor>;
    let cases: [(&str, Init, f64, f64); 4] = [
        (
            "glorot_uniform",
            nn::glorot_uniform,
            2.0 / 700.0,
            (6.0_f64 / 700.0).sqrt(),
        ),
        (
            "glorot_normal",
            nn::glorot_normal,
            2.0 / 700.0,
            2.0 * (2.0_f64 / 700.0).sqrt() / 0.8796,
        ),
        (
            "he_uniform",
            nn::he_uniform,
            2.0 / 400.0,
            (6.0_f64 / 400.0).sqrt(),
        ),
        (
            "he_normal",
            nn::he_normal,
            2.0 / 400.0,
            2.0 * (2.0_f64 / 400.0).sqrt() / 0.8796,
        ),
    ];
    for (name, f, var, bound) in cases {
        let w = key.sample(|k| f(k, DType::F64, &shape)).unwrap();
        assert_eq!(w.shape(), &shape);
        let (m, v, mx) = stats(w.as_slice::<f64>().unwrap());
        assert!(m.abs() < 0.01 * var.sqrt() * 10.0, "{name}: mean {m}");
        assert!((v / var - 1.0).abs() < 0.02, "{name}: var {v} vs {var}");
        assert!(mx <= bound * (1.0 + 1e-12), "{name}: max {mx} > {bound}");
    }
    assert_eq!(nn::fans(&[3, 3, 16, 32]), (144.0, 288.0));
}

#[test]
fn orthogonal_has_orthonormal_columns_or_rows() {
    for (m, n) in [(6, 4), (3, 5), (4, 4)] {
        let k = Key::new(1).traced();
        let q = nn::orthogonal(&k, DType::F64, m, n, 2.0).unwrap();
        let gram = if m >= n {
            q.t().unwrap().matmul(&q)
        } else {
            q.matmul(&q.t().unwrap())
        }
        .unwrap();
        let mut ex = GraphExecutor::new(CpuBackend::new());
        ex.register_extension(tenferro::linalg::register_runtime)
            .unwrap();
        let g = ex
            .run(&GraphCompiler::new().compile(&gram).unwrap())
            .unwrap();
        let s = m.min(n);
        let v = g.as_slice::<f64>().unwrap();
        for i in 0..s {
            for j in 0..s {
                let want = if i == j { 4.0 } else { 0.0 };
                assert!((v[i + s * j] - want).abs() < 1e-12, "{m}x{n}: {v:?}");
            }
        }
    }
}
