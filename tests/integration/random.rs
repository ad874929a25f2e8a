//! JAX-style random numbers: threefry known answers, host vs traced bits, thread-count
//! independence, and distribution tests.

use tenferro::cpu::CpuBackend;
use tenferro::random::{self, threefry2x32, Key};
use tenferro::runtime::{Jit, RuntimeError};
use tenferro::{DType, Tensor, TracedTensor};

#[test]
fn threefry_known_answers() {
    // Random123's kat_vectors for threefry2x32_20 (also JAX's testThreefry2x32).
    assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b200159, 0x99ba4efe]);
    assert_eq!(
        threefry2x32([u32::MAX, u32::MAX], [u32::MAX, u32::MAX]),
        [0x1cb996fc, 0xbb002be7]
    );
    assert_eq!(
        threefry2x32([0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3]),
        [0xc4923a9c, 0x483df7a0]
    );
}

#[test]
fn keys_match_jax() {
    assert_eq!(Key::new(0), Key([0, 0]));
    assert_eq!(Key::new(0x1_0000_0002), Key([1, 2]));
    // jax.random.split(jax.random.PRNGKey(0))
    assert_eq!(
        Key::new(0).split(2),
        vec![Key([4146024105, 967050713]), Key([2718843009, 1272950319])]
    );
}

fn jit_key<F>(threads: usize, f: F) -> impl FnMut(Key) -> Tensor
where
    F: Fn(&TracedTensor) -> Result<TracedTensor, RuntimeError>,
{
    let mut j = Jit::new(
        CpuBackend::with_threads(threads),
        move |xs: &[TracedTensor]| Ok::<_, RuntimeError>(vec![f(&xs[0])?]),
    );
    move |k: Key| j.call(&[k.tensor()]).unwrap().remove(0)
}

#[test]
fn traced_threefry_matches_host() {
    // the in-graph threefry (i64 bit ops) against the host u32 implementation
    for n in [1usize, 2, 7, 64, 1001] {
        let mut bits = jit_key(1, move |k| random::random_bits(k, &[n]));
        for key in [Key::new(0), Key::new(42), Key([u32::MAX, 0x13198a2e])] {
            let got = bits(key);
            let want: Vec<i64> = random::random_bits_host(key, n)
                .into_iter()
                .map(|w| w as i64)
                .collect();
            assert_eq!(got.as_slice::<i64>().unwrap(), &want[..], "n = {n}");
        }
    }
    let mut split = jit_key(1, |k| random::split(k, 3));
    let mut fold = Jit::new(CpuBackend::new(), |xs: &[TracedTensor]| {
        Ok::<_, RuntimeError>(vec![random::fold_in(&xs[0], &xs[1])?])
    });
    for key in [Key::new(0), Key::new(7), Key([0xdeadbeef, 0x12345678])] {
        let s = split(key);
        let want = key.split(3);
        for (i, k) in want.iter().enumerate() {
            // row i of the [3, 2] (column-major) result
            let v = s.as_slice::<i64>().unwrap();
            assert_eq!([v[i] as u32, v[i + 3] as u32], k.0);
        }
        for data in [0u32, 1, 12345, u32::MAX] {
            let got = fold
                .call(&[key.tensor(), Tensor::scalar(data as i64)])
                .unwrap()
                .remove(0);
            assert_eq!(Key::from_tensor(&got).unwrap(), key.fold_in(data));
        }
    }
}

#[test]
fn random_bits_are_row_major_like_jax() {
    let key = Key::new(3);
    let flat = random::random_bits_host(key, 6);
    let t = key.sample(|k| random::random_bits(k, &[2, 3])).unwrap();
    let v = t.as_slice::<i64>().unwrap();
    for i in 0..2 {
        for j in 0..3 {
            assert_eq!(v[i + 2 * j], flat[i * 3 + j] as i64);
        }
    }
}

type Sampler = fn(&TracedTensor) -> Result<TracedTensor, RuntimeError>;

fn samplers() -> Vec<(&'static str, Sampler)> {
    vec![
        ("uniform_f32", |k| {
            random::uniform(k, DType::F32, &[300, 7], -1.0, 2.0)
        }),
        ("uniform_f64", |k| {
            random::uniform(k, DType::F64, &[2101], 0.0, 1.0)
        }),
        ("normal_f32", |k| random::normal(k, DType::F32, &[999])),
        ("normal_f64", |k| random::normal(k, DType::F64, &[64, 33])),
        ("truncated_normal", |k| {
            random::truncated_normal(k, DType::F64, &[1500], -2.0, 2.0)
        }),
        ("bernoulli", |k| random::bernoulli(k, 0.3, &[1000])),
        ("categorical", |k| {
            let logits = TracedTensor::from_vec_col_major(vec![3, 1], vec![0.0_f64, 1.0, 2.0])
                .broadcast_to(&[3, 800])?;
            random::categorical(k, &logits, 0)
        }),
        ("permutation", |k| random::permutation(k, 1000)),
    ]
}

#[test]
fn bits_identical_host_traced_and_across_threads() {
    for (name, f) in samplers() {
        let key = Key::new(2024).fold_in(17);
        let host = key.sample(f).unwrap();
        let mut one = jit_key(1, f);
        let mut two = jit_key(2, f);
        assert!(one(key).bits_eq(&host), "{name}: 1 thread vs host");
        assert!(two(key).bits_eq(&host), "{name}: 2 threads vs host");
        // inside a bigger compiled program (fused with other work) too
        let mut bigger = Jit::new(CpuBackend::with_threads(2), move |xs: &[TracedTensor]| {
            let s = f(&xs[0])?;
            let other = (&xs[1] * 3.0).exp().sum();
            Ok::<_, RuntimeError>(vec![other, s])
        });
        let out = bigger
            .call(&[
                key.tensor(),
                Tensor::from_vec_col_major(vec![4], vec![0.1_f64; 4]).unwrap(),
            ])
            .unwrap();
        assert!(out[1].bits_eq(&host), "{name}: inside a bigger program");
        // another key gives other numbers
        assert!(!one(Key::new(2025)).bits_eq(&host), "{name}");
    }
}

#[test]
fn compiled_step_draws_fresh_numbers_from_a_key_input() {
    let mut step = Jit::new(CpuBackend::new(), |xs: &[TracedTensor]| {
        let k = random::fold_in(&xs[0], &xs[1])?;
        Ok::<_, RuntimeError>(vec![random::normal(&k, DType::F64, &[4])?])
    });
    let key = Key::new(1);
    let a = step.call(&[key.tensor(), Tensor::scalar(0_i64)]).unwrap();
    let b = step.call(&[key.tensor(), Tensor::scalar(1_i64)]).unwrap();
    let c = step.call(&[key.tensor(), Tensor::scalar(0_i64)]).unwrap();
    assert!(!a[0].bits_eq(&b[0]));
    assert!(a[0].bits_eq(&c[0]));
    assert_eq!(step.stats().traces, 1);
    assert!(a[0].bits_eq(&key.fold_in(0).normal(DType::F64, &[4]).unwrap()));
}

/// Φ with erf from Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7, far below KS noise).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + if x < 0.0 { -erf } else { erf })
}

fn ks(mut xs: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = xs.len() as f64;
    xs.iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = cdf(x);
            (c - i as f64 / n).abs().max(((i + 1) as f64 / n - c).abs())
        })
        .fold(0.0, f64::max)
}

fn moments(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    (m, xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n)
}

const N: usize = 100_000;
// KS critical value at the 0.1% level: 1.95 / sqrt(n).
fn ks_limit(n: usize) -> f64 {
    1.95 / (n as f64).sqrt()
}

#[test]
fn uniform_distribution() {
    let key = Key::new(11);
    let u = key
        .uniform(DType::F64, &[N], 0.0, 1.0)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
    let (m, v) = moments(&u);
    assert!(
        (m - 0.5).abs() < 0.005 && (v - 1.0 / 12.0).abs() < 0.002,
        "{m} {v}"
    );
    assert!(ks(u, |x| x) < ks_limit(N));
    let u32s = key.uniform(DType::F32, &[N], -3.0, 5.0).unwrap();
    let u: Vec<f64> = u32s
        .as_slice::<f32>()
        .unwrap()
        .iter()
        .map(|&x| x as f64)
        .collect();
    assert!(u.iter().all(|&x| (-3.0..5.0).contains(&x)));
    assert!(ks(u, |x| (x + 3.0) / 8.0) < ks_limit(N));
}

#[test]
fn normal_distribution() {
    for dtype in [DType::F64, DType::F32] {
        let t = Key::new(5).normal(dtype, &[N]).unwrap();
        let z: Vec<f64> = match dtype {
            DType::F32 => t
                .as_slice::<f32>()
                .unwrap()
                .iter()
                .map(|&x| x as f64)
                .collect(),
            _ => t.to_vec::<f64>().unwrap(),
        };
        assert!(z.iter().all(|x| x.is_finite()));
        let (m, v) = moments(&z);
        assert!(
            m.abs() < 0.015 && (v - 1.0).abs() < 0.02,
            "{dtype}: {m} {v}"
        );
        let k = ks(z, normal_cdf);
        assert!(k < ks_limit(N), "{dtype}: KS {k}");
    }
}

#[test]
fn truncated_normal_distribution() {
    let (lo, hi) = (-2.0, 1.0);
    let z = Key::new(8)
        .truncated_normal(DType::F64, &[N], lo, hi)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(z.iter().all(|&x| (lo..=hi).contains(&x)));
    let (a, b) = (normal_cdf(lo), normal_cdf(hi));
    let k = ks(z, |x| (normal_cdf(x) - a) / (b - a));
    assert!(k < ks_limit(N), "KS {k}");
    // erfinv itself: erf(erfinv(y)) = y
    let y = Tensor::from_vec_col_major(vec![5], vec![-0.999_f64, -0.5, 0.0, 0.3, 0.99]).unwrap();
    let mut f = Jit::new(CpuBackend::new(), |xs: &[TracedTensor]| {
        Ok::<_, RuntimeError>(vec![random::erfinv(&xs[0]).erf()])
    });
    let back = f.call(&[y.clone()]).unwrap().remove(0);
    for (p, q) in back
        .as_slice::<f64>()
        .unwrap()
        .iter()
        .zip(y.as_slice::<f64>().unwrap())
    {
        assert!((p - q).abs() < 1e-14, "{p} {q}");
    }
}

#[test]
fn bernoulli_categorical_permutation() {
    let b = Key::new(9).bernoulli(0.3, &[N]).unwrap();
    let frac = b.as_slice::<bool>().unwrap().iter().filter(|&&x| x).count() as f64 / N as f64;
    assert!((frac - 0.3).abs() < 0.005, "{frac}");

    let logits = [0.0_f64, 1.0, 2.0];
    let c = Key::new(10)
        .sample(|k| {
            let l = TracedTensor::from_vec_col_major(vec![1, 3], logits.to_vec())
                .broadcast_to(&[N, 3])?;
            random::categorical(k, &l, 1)
        })
        .unwrap();
    let z: f64 = logits.iter().map(|l| l.exp()).sum();
    let mut counts = [0usize; 3];
    for &i in c.as_slice::<i64>().unwrap() {
        counts[i as usize] += 1;
    }
    for (i, &cnt) in counts.iter().enumerate() {
        let p = logits[i].exp() / z;
        assert!((cnt as f64 / N as f64 - p).abs() < 0.006, "{counts:?}");
    }

    let n = 50;
    let mut first_pos = vec![0usize; n];
    let mut perm = Jit::new(CpuBackend::new(), |xs: &[TracedTensor]| {
        let k = random::fold_in(&xs[0], &xs[1])?;
        Ok::<_, RuntimeError>(vec![random::permutation(&k, 50)?])
    });
    for s in 0..2000i64 {
        let p = perm
            .call(&[Key::new(3).tensor(), Tensor::scalar(s)])
            .unwrap()
            .remove(0);
        if s == 5 {
            assert!(p.bits_eq(&Key::new(3).fold_in(5).permutation(n).unwrap()));
        }
        let mut v = p.to_vec::<i64>().unwrap();
        first_pos[v[0] as usize] += 1;
        v.sort();
        assert_eq!(v, (0..n as i64).collect::<Vec<_>>());
    }
    // each element lands first about 2000/50 = 40 times
    assert!(
        first_pos.iter().all(|&c| (15..=70).contains(&c)),
        "{first_pos:?}"
    );

    let x = TracedTensor::from_vec_col_major(vec![4], vec![1.0_f64, 2.0, 3.0, 4.0]);
    let s = Key::new(4).sample(|k| random::shuffle(k, &x, 0)).unwrap();
    let mut v = s.to_vec::<f64>().unwrap();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn bad_keys_are_errors() {
    let k = TracedTensor::input(DType::F64, &[2]);
    assert!(random::uniform(&k, DType::F64, &[3], 0.0, 1.0).is_err());
    assert!(random::uniform(&Key::new(0).traced(), DType::I64, &[3], 0.0, 1.0).is_err());
    let bad = Tensor::from_vec_col_major(vec![2], vec![-1_i64, 0]).unwrap();
    assert!(Key::from_tensor(&bad).is_err());
}
