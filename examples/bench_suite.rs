//! The peer workloads of `../shared/peers/workloads.py` (same shapes and dtypes, own random
//! values) on tenferro: each is traced, differentiated, compiled once with placeholders,
//! then timed in steady state. Prints one JSON line per workload:
//! `{"system": "tenferro", "workload": id, "threads": n, "median_ms": t, ...}`.
//!
//! Run: `cargo run --release --example bench_suite -- --workload W2_grad_1e7,W3_f64 --threads 1`
//! (`--workload` takes ids, prefixes such as `W2`, or `all`; `--min-time` seconds per
//! workload, default 1; `--opt O0|O1|O2` the compiler's optimization level, default O2 (the compiler's default);
//! `--einsum-path opt_flops|opt_size` plans einsum instances along upstream's stored path
//! instead of `Optimize::Auto`; einsum instances run in their column-major form (every
//! term and shape reversed, as upstream's runner does: the operands' bytes are the
//! row-major peers' bytes), `--einsum-form literal` runs the NumPy subscripts themselves
//! on column-major data (`bij,bjk->bik` then has its batch axis fastest in memory);
//! `--show` prints each program and its prepared CPU form to stderr; `--list` prints the
//! ids; `--backend xla` runs on the XLA backend (the PJRT plugin named by
//! `TENFERRO_PJRT_PLUGIN`; XLA picks its own thread count, so `--threads` is only a label
//! there, and lines say `"system": "tenferro-xla"`).

use std::error::Error;
use std::time::Instant;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_linalg::TracedTensorLinalgExt;
use tenferro_runtime::{
    Backend, CompileOptions, DType, Data, GraphCompiler, GraphExecutor, OptLevel, Program, Tensor,
    TracedTensor,
};

type Res<T> = Result<T, Box<dyn Error>>;

/// How einsum instances run: along upstream's stored path `path` (else `Optimize::Auto`),
/// and in the instance's literal NumPy subscripts rather than its column-major form.
#[derive(Default)]
struct EinsumRun {
    path: Option<String>,
    literal: bool,
}

const IDS: [&str; 27] = [
    "W1",
    "W2_fwd_1e6",
    "W2_grad_1e6",
    "W2_fwd_1e7",
    "W2_grad_1e7",
    "W2_fwd_1e7_f32",
    "W2_grad_1e7_f32",
    "W3_f64",
    "W3_f32",
    "W4_mm_f64",
    "W4_mm_f32",
    "W4_vjp_f64",
    "W4_vjp_f32",
    "W5_hvp",
    "W6_chol",
    "W6_chol_grad",
    "W7_complex_grad",
    // Not in the peer table: memory-bound kernels against STREAM.
    "S_triad_1e7",
    "S_stream_triad_1e7",
    "S_sum_1e7",
    // The two products of W4_vjp alone: A·Bᵀ and (Aᵀ·G)ᵀ, 1024² f64 and f32.
    "S_mm_nt_f64",
    "S_mm_tn_t_f64",
    "S_mm_nt_f32",
    "S_mm_tn_t_f32",
    // Matrix-vector products of W5 alone: A·x and xᵀ·A, A f64[1000, 1000] (8 MB).
    "S_mv_f64",
    "S_vm_f64",
    // Backend overhead of one eager op: the prepared `a + b` on f64[4], run directly.
    "S_add_f64x4",
];

/// Linear-algebra workloads (not part of `all`: select them with `--workload L`): small
/// matrices in large batches (`L_<op>_<n>x<n>x<batch>`, batch axis last as tenferro's
/// linalg expects it) and large derivatives (`L_eigh_grad_512`: the gradient of the sum of
/// eigh's eigenvalues; `L_svdvals_jvp_512`: the JVP of the singular values). Their JAX
/// versions are in `benches/linalg_jax.py`.
const LINALG_IDS: [&str; 14] = [
    "L_eigh_2x2x16",
    "L_eigh_4x4x256",
    "L_eigh_8x8x4096",
    "L_svd_2x2x16",
    "L_svd_4x4x256",
    "L_svd_8x8x4096",
    "L_solve_2x2x16",
    "L_solve_4x4x256",
    "L_solve_8x8x4096",
    "L_eigh_grad_512",
    "L_svdvals_jvp_512",
    "L_eigh_grad_128",
    "L_svdvals_jvp_128",
    "L_solve_512",
];

/// `(op, n, batch)` of a batched small-matrix workload id `L_<op>_<n>x<n>x<batch>`.
fn linalg_batched(id: &str) -> Option<(&str, usize, usize)> {
    let rest = id.strip_prefix("L_")?;
    let (op, dims) = rest.split_once('_')?;
    let d: Vec<usize> = dims
        .split('x')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    match d.as_slice() {
        [n, m, b] if n == m => Some((op, *n, *b)),
        _ => None,
    }
}

/// Ids of the einsum instances of tensor4all/tenferro-benchmark shipped in
/// `extensions/einsum/instances/`, `einsum_<file name>` (forward einsum, planned with
/// `Optimize::Auto`; not part of `all`: select them with `--workload einsum` or by id).
fn einsum_ids() -> Vec<String> {
    tenferro_einsum::instances::names()
        .into_iter()
        .map(|n| format!("einsum_{n}"))
        .collect()
}

/// Every workload id, in listing order.
fn all_ids() -> Vec<String> {
    let fixed = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    [fixed(&IDS), einsum_ids(), fixed(&LINALG_IDS)].concat()
}

/// xorshift64* numbers: uniform in [lo, hi) or roughly normal.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| lo + (hi - lo) * self.next()).collect()
    }
    fn normal(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n)
            .map(|_| (self.next() + self.next() + self.next() - 1.5) * 2.0 * scale)
            .collect()
    }
}

/// A tensor of `dtype` from the values `v`: real dtypes take one value per element,
/// complex ones two (the real and imaginary parts, interleaved).
fn tensor(shape: &[usize], v: Vec<f64>, dtype: DType) -> Res<Tensor> {
    let data = match dtype {
        DType::F32 => Data::F32(v.iter().map(|&x| x as f32).collect()),
        DType::C32 => Data::C32(
            v.chunks(2)
                .map(|p| num_complex::Complex32::new(p[0] as f32, p[1] as f32))
                .collect(),
        ),
        DType::C64 => Data::C64(
            v.chunks(2)
                .map(|p| num_complex::Complex64::new(p[0], p[1]))
                .collect(),
        ),
        _ => Data::F64(v),
    };
    Ok(Tensor::new(shape.to_vec(), data)?)
}

/// A compiled workload and the values of its placeholders.
struct Built {
    program: Program,
    inputs: Vec<(TracedTensor, Tensor)>,
}

fn build(id: &str, ad: &AdContext, opt: OptLevel, einsum: &EinsumRun) -> Res<Built> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let dt = if id.ends_with("f32") {
        DType::F32
    } else {
        DType::F64
    };
    let input = |shape: &[usize], v: Vec<f64>| -> Res<(TracedTensor, Tensor)> {
        Ok((TracedTensor::input(dt, shape), tensor(shape, v, dt)?))
    };
    let compile = |outs: &[&TracedTensor]| -> Res<Program> {
        let options = CompileOptions::default().opt_level(opt);
        Ok(GraphCompiler::with_options(options).compile_many(outs)?)
    };
    Ok(match id {
        "W1" => {
            let (x, xv) = input(&[1_000_000], rng.uniform(1_000_000, -1.0, 1.0))?;
            let g = ad.grad(&(&x * &x).sum(), &x)?;
            Built {
                program: compile(&[&g])?,
                inputs: vec![(x, xv)],
            }
        }
        w if w.starts_with("W2") => {
            let n = if w.contains("1e7") {
                10_000_000
            } else {
                1_000_000
            };
            let (x, xv) = input(&[n], rng.uniform(n, -2.0, 2.0))?;
            let (y0, yv) = input(&[n], rng.uniform(n, 0.0, 1.0))?;
            let f = ((x.sin() * &y0 + x.cos()).exp() * 0.5 - x.tanh()).sum();
            let out = if w.contains("fwd") {
                f
            } else {
                ad.grad(&f, &x)?
            };
            Built {
                program: compile(&[&out])?,
                inputs: vec![(x, xv), (y0, yv)],
            }
        }
        w if w.starts_with("W3") => {
            let (b, d) = (256, 512);
            let s = 1.0 / (d as f64).sqrt();
            let (xx, xv) = input(&[b, d], rng.normal(b * d, 1.0))?;
            let (yy, yv) = input(&[b, d], rng.normal(b * d, 1.0))?;
            let mut params = Vec::new();
            for _ in 0..3 {
                params.push(input(&[d, d], rng.normal(d * d, s))?);
                params.push(input(&[d], rng.normal(d, 0.1))?);
            }
            let p: Vec<&TracedTensor> = params.iter().map(|(t, _)| t).collect();
            let h1 = (xx.matmul(p[0])? + p[1]).tanh();
            let h2 = (h1.matmul(p[2])? + p[3]).tanh();
            let out = h2.matmul(p[4])? + p[5];
            let diff = &out - &yy;
            let loss = (&diff * &diff).reduce_mean(&[0, 1]);
            let grads = ad.grad_many(&loss, &p)?;
            let refs: Vec<&TracedTensor> = grads.iter().collect();
            let mut inputs = vec![(xx, xv), (yy, yv)];
            inputs.extend(params);
            Built {
                program: compile(&refs)?,
                inputs,
            }
        }
        w if w.starts_with("W4_mm") => {
            let n = 1024;
            let (a, av) = input(&[n, n], rng.normal(n * n, 1.0))?;
            let (b, bv) = input(&[n, n], rng.normal(n * n, 1.0))?;
            let c = a.matmul(&b)?;
            Built {
                program: compile(&[&c])?,
                inputs: vec![(a, av), (b, bv)],
            }
        }
        w if w.starts_with("W4_vjp") => {
            let n = 1024;
            let (a, av) = input(&[n, n], rng.normal(n * n, 1.0))?;
            let (b, bv) = input(&[n, n], rng.normal(n * n, 1.0))?;
            let (g, gv) = input(&[n, n], rng.normal(n * n, 1.0))?;
            let c = a.matmul(&b)?;
            let grads = ad.vjp_many(&c, &[&a, &b], &g)?;
            let refs: Vec<&TracedTensor> = grads.iter().collect();
            Built {
                program: compile(&refs)?,
                inputs: vec![(a, av), (b, bv), (g, gv)],
            }
        }
        "W5_hvp" => {
            let n = 1000;
            let (a, av) = input(&[n, n], rng.normal(n * n, 1.0 / (n as f64).sqrt()))?;
            let (x, xv) = input(&[n], rng.normal(n, 1.0))?;
            let (v, vv) = input(&[n], rng.normal(n, 1.0))?;
            let t = a.matmul(&x)?.tanh();
            let f = (&t * &t).sum();
            let g = ad.grad(&f, &x)?;
            let h = ad.jvp(&g, &x, &v)?;
            Built {
                program: compile(&[&h])?,
                inputs: vec![(a, av), (x, xv), (v, vv)],
            }
        }
        w if w.starts_with("W6") => {
            let n = 512;
            let m = rng.normal(n * n, 1.0);
            // A = M Mᵀ / n + I (symmetric positive definite), computed with tenferro's GEMM.
            let mt = TracedTensor::from_vec_col_major(vec![n, n], m);
            let eye = TracedTensor::iota(DType::I64, &[n, n], 0)?
                .equal(&TracedTensor::iota(DType::I64, &[n, n], 1)?)
                .convert(DType::F64)?;
            let spd_t = &(&mt.matmul(&mt.t()?)? / n as f64) + &eye;
            let spd = GraphExecutor::new(CpuBackend::new())
                .run(&GraphCompiler::new().compile(&spd_t)?)?
                .to_vec::<f64>()?;
            let (a, av) = input(&[n, n], spd)?;
            let l = a.cholesky()?;
            let out = if w == "W6_chol" {
                l
            } else {
                ad.grad(&l.sum(), &a)?
            };
            Built {
                program: compile(&[&out])?,
                inputs: vec![(a, av)],
            }
        }
        "W7_complex_grad" => {
            let n = 100_000;
            let re = rng.normal(n, 1.0);
            let im = rng.normal(n, 1.0);
            let zv = Tensor::new(
                vec![n],
                Data::C64(
                    re.iter()
                        .zip(&im)
                        .map(|(&r, &i)| num_complex::Complex64::new(r, i))
                        .collect(),
                ),
            )?;
            let z = TracedTensor::input(DType::C64, &[n]);
            let a = (&z * &z).abs();
            let g = ad.grad(&(&a * &a).sum(), &z)?;
            Built {
                program: compile(&[&g])?,
                inputs: vec![(z, zv)],
            }
        }
        "S_mm_nt_f64" | "S_mm_tn_t_f64" | "S_mm_nt_f32" | "S_mm_tn_t_f32" => {
            let n = 1024;
            let (a, av) = input(&[n, n], rng.normal(n * n, 1.0))?;
            let (b, bv) = input(&[n, n], rng.normal(n * n, 1.0))?;
            let c = if id.starts_with("S_mm_nt") {
                a.matmul(&b.transpose(&[1, 0])?)?
            } else {
                a.transpose(&[1, 0])?.matmul(&b)?.transpose(&[1, 0])?
            };
            Built {
                program: compile(&[&c])?,
                inputs: vec![(a, av), (b, bv)],
            }
        }
        "S_triad_1e7" => {
            let n = 10_000_000;
            let (b, bv) = input(&[n], rng.uniform(n, -1.0, 1.0))?;
            let (c, cv) = input(&[n], rng.uniform(n, -1.0, 1.0))?;
            let a = &b + &(&c * 3.0);
            Built {
                program: compile(&[&a])?,
                inputs: vec![(b, bv), (c, cv)],
            }
        }
        "S_mv_f64" | "S_vm_f64" => {
            let n = 1000;
            let (a, av) = input(&[n, n], rng.normal(n * n, 1.0))?;
            let (x, xv) = input(&[n], rng.normal(n, 1.0))?;
            let c = if id == "S_mv_f64" {
                a.matmul(&x)?
            } else {
                x.matmul(&a)?
            };
            Built {
                program: compile(&[&c])?,
                inputs: vec![(a, av), (x, xv)],
            }
        }
        "S_sum_1e7" => {
            let n = 10_000_000;
            let (x, xv) = input(&[n], rng.uniform(n, -1.0, 1.0))?;
            Built {
                program: compile(&[&x.sum()])?,
                inputs: vec![(x, xv)],
            }
        }
        w if linalg_batched(w).is_some() => {
            let (op, n, batch) = linalg_batched(w).ok_or("bad linalg id")?;
            // Symmetric (for eigh) or diagonally dominant (for solve) random matrices.
            let m = rng.normal(n * n * batch, 1.0);
            let mut v = m.clone();
            for b in 0..batch {
                for i in 0..n {
                    for j in 0..n {
                        let k = b * n * n;
                        v[k + i + j * n] = match op {
                            "eigh" => 0.5 * (m[k + i + j * n] + m[k + j + i * n]),
                            "solve" if i == j => m[k + i + j * n] + 2.0 * n as f64,
                            _ => m[k + i + j * n],
                        };
                    }
                }
            }
            let (a, av) = input(&[n, n, batch], v)?;
            match op {
                "eigh" => {
                    let (w, q) = a.eigh()?;
                    Built {
                        program: compile(&[&w, &q])?,
                        inputs: vec![(a, av)],
                    }
                }
                "svd" => {
                    let (u, s, vt) = a.svd()?;
                    Built {
                        program: compile(&[&u, &s, &vt])?,
                        inputs: vec![(a, av)],
                    }
                }
                "solve" => {
                    let (b, bv) = input(&[n, 1, batch], rng.normal(n * batch, 1.0))?;
                    Built {
                        program: compile(&[&a.solve(&b)?])?,
                        inputs: vec![(a, av), (b, bv)],
                    }
                }
                other => return Err(format!("unknown linalg op `{other}`").into()),
            }
        }
        w if w.starts_with("L_") => {
            let n: usize = w.rsplit('_').next().unwrap_or("").parse()?;
            let m = rng.normal(n * n, 1.0);
            let mut sym = m.clone();
            for i in 0..n {
                for j in 0..n {
                    sym[i + j * n] = 0.5 * (m[i + j * n] + m[j + i * n]);
                }
            }
            if w.starts_with("L_eigh_grad") {
                let (a, av) = input(&[n, n], sym)?;
                let g = ad.grad(&a.eigvalsh()?.sum(), &a)?;
                Built {
                    program: compile(&[&g])?,
                    inputs: vec![(a, av)],
                }
            } else if w.starts_with("L_svdvals_jvp") {
                let (a, av) = input(&[n, n], m)?;
                let (t, tv) = input(&[n, n], rng.normal(n * n, 1.0))?;
                let s = a.svdvals()?;
                let ds = ad.jvp(&s, &a, &t)?;
                Built {
                    program: compile(&[&s, &ds])?,
                    inputs: vec![(a, av), (t, tv)],
                }
            } else if w.starts_with("L_solve") {
                let mut d = m;
                for i in 0..n {
                    d[i + i * n] += 2.0 * (n as f64).sqrt();
                }
                let (a, av) = input(&[n, n], d)?;
                let (b, bv) = input(&[n, 1], rng.normal(n, 1.0))?;
                Built {
                    program: compile(&[&a.solve(&b)?])?,
                    inputs: vec![(a, av), (b, bv)],
                }
            } else {
                return Err(format!("unknown workload `{w}` (see --list)").into());
            }
        }
        w if w.starts_with("einsum_") => {
            let inst = tenferro_einsum::instances::load(&w["einsum_".len()..])?;
            let inst = if einsum.literal {
                inst
            } else {
                inst.column_major()?
            };
            let mut ops = Vec::new();
            // The instance's dtype (complex: two values per element).
            let parts = if inst.dtype.is_complex() { 2 } else { 1 };
            for shape in &inst.shapes {
                let n: usize = shape.iter().product();
                // Values near ±1/√(largest extent) keep long chains of products finite.
                let m = shape.iter().copied().max().unwrap_or(1).max(1) as f64;
                let v = rng.uniform(parts * n, -1.0, 1.0);
                let v = v.iter().map(|v| v / m.sqrt()).collect();
                let x = (
                    TracedTensor::input(inst.dtype, shape),
                    tensor(shape, v, inst.dtype)?,
                );
                ops.push(x);
            }
            let refs: Vec<&TracedTensor> = ops.iter().map(|(t, _)| t).collect();
            let y = match einsum.path.as_deref() {
                None => tenferro_einsum::einsum(&inst.subscripts, &refs)?,
                Some(kind) => {
                    let stored = inst
                        .upstream
                        .iter()
                        .find(|p| p.kind == kind)
                        .ok_or_else(|| format!("{w}: no stored upstream path `{kind}`"))?;
                    let opts = tenferro_einsum::EinsumOptions {
                        optimize: tenferro_einsum::Optimize::Path(stored.path.clone()),
                        ..Default::default()
                    };
                    tenferro_einsum::einsum_with(&inst.subscripts, &refs, &opts)?
                }
            };
            Built {
                program: compile(&[&y])?,
                inputs: ops,
            }
        }
        other => return Err(format!("unknown workload `{other}` (see --list)").into()),
    })
}

/// Bytes a memory-bound workload must move at least (for GB/s).
fn min_bytes(id: &str) -> Option<f64> {
    match id {
        "S_triad_1e7" | "S_stream_triad_1e7" => Some(3.0 * 8e7),
        "S_sum_1e7" => Some(8e7),
        "S_mv_f64" | "S_vm_f64" => Some(8e6),
        "W2_fwd_1e7" => Some(1.6e8),
        "W2_grad_1e7" => Some(2.4e8),
        _ => None,
    }
}

/// Times `CpuBackend::execute` of the prepared `a + b` on f64[4] (what every eager op pays
/// in the backend): median over 20 batches of 20 000 runs, in microseconds.
fn tiny_add(threads: usize) -> Res<()> {
    use tenferro_runtime::{Backend, ExtensionRegistry};
    let mut f = tenferro_ir::Function::new("add");
    let ty = tenferro_ir::TensorType::new(DType::F64, vec![4]);
    let (p, q) = (f.add_param(ty.clone()), f.add_param(ty));
    let r = f.push1(tenferro_ir::Op::Binary(tenferro_ir::BinaryOp::Add), &[p, q])?;
    f.set_outputs(vec![r]);
    let backend = CpuBackend::with_threads(threads);
    let prepared = backend.prepare(&f)?;
    let registry = ExtensionRegistry::new();
    let inputs = [
        tensor(&[4], vec![1.0, 2.0, 3.0, 4.0], DType::F64)?,
        tensor(&[4], vec![0.5, 1.5, 2.5, 3.5], DType::F64)?,
    ];
    let batch = 20_000;
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(backend.execute(
                &prepared,
                std::hint::black_box(&inputs),
                &registry,
            )?);
        }
        times.push(t.elapsed().as_secs_f64() * 1e6 / batch as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{{\"system\": \"tenferro\", \"workload\": \"S_add_f64x4\", \"threads\": {threads}, \"median_us\": {:.4}, \"min_us\": {:.4}}}",
        times[times.len() / 2],
        times[0]
    );
    Ok(())
}

/// The machine's STREAM triad, the reference for `S_triad_1e7`: `a = b + 3·c` on f64[1e7]
/// with `a` allocated once and written in place, split over `threads` scoped threads
/// (what STREAM's OpenMP loop does). Prints its median and GB/s like the other rows.
fn stream_triad(threads: usize, min_time: f64) {
    let n = 10_000_000;
    let b: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    let c: Vec<f64> = (0..n).map(|i| (i % 5) as f64).collect();
    let mut a = vec![0.0f64; n];
    let chunk = n.div_ceil(threads.max(1));
    let mut run = || {
        std::thread::scope(|s| {
            for ((a, b), c) in a
                .chunks_mut(chunk)
                .zip(b.chunks(chunk))
                .zip(c.chunks(chunk))
            {
                s.spawn(move || {
                    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
                        *a = b + 3.0 * c;
                    }
                });
            }
        });
    };
    for _ in 0..3 {
        run();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 10 || start.elapsed().as_secs_f64() < min_time {
        let t = Instant::now();
        run();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    std::hint::black_box(&a);
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"system\": \"stream\", \"workload\": \"S_stream_triad_1e7\", \"threads\": {threads}, \"median_ms\": {median:.4}, \"min_ms\": {:.4}, \"n\": {}, \"min_bytes_GBps\": {:.2}}}",
        times[0],
        times.len(),
        3.0 * 8e7 / (median * 1e-3) / 1e9
    );
}

/// Runs `built` once (the first call, timed), three warm-up runs, then timed runs until
/// `min_time` seconds and at least 10 runs (at most 2000, or 3 after 60 s): the sorted run
/// times in ms and the first call's, or the first call's error.
#[allow(clippy::type_complexity)]
fn time_runs<B: Backend>(
    exec: &mut GraphExecutor<B>,
    built: &Built,
    min_time: f64,
) -> Res<Result<(Vec<f64>, f64), String>> {
    let inputs: Vec<(&TracedTensor, Tensor)> =
        built.inputs.iter().map(|(t, v)| (t, v.clone())).collect();
    let t1 = Instant::now();
    if let Err(e) = exec.run_many_with_inputs(&built.program, &inputs) {
        return Ok(Err(e.to_string()));
    }
    let first_ms = t1.elapsed().as_secs_f64() * 1e3;
    for _ in 0..3 {
        exec.run_many_with_inputs(&built.program, &inputs)?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let out = exec.run_many_with_inputs(&built.program, &inputs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        drop(out);
        let el = start.elapsed().as_secs_f64();
        if (times.len() >= 10 && (el >= min_time || times.len() >= 2000))
            || (el >= 60.0 && times.len() >= 3)
        {
            break;
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(Ok((times, first_ms)))
}

fn select(spec: &str) -> Vec<String> {
    let ids = all_ids();
    let mut out: Vec<String> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        for id in &ids {
            let all = part == "all" && id.starts_with('W');
            let hit = all || id == part || id.starts_with(part);
            if hit && !out.contains(id) {
                out.push(id.clone());
            }
        }
    }
    out
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut workloads = "all".to_string();
    let mut threads = 1usize;
    let mut min_time = 1.0f64;
    let mut show = false;
    let mut opt = OptLevel::default();
    let mut einsum = EinsumRun::default();
    let mut xla = false;
    let mut list = false;
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--workload" => workloads = val,
            "--threads" => threads = val.parse()?,
            "--min-time" => min_time = val.parse()?,
            "--einsum-path" => einsum.path = Some(val.clone()),
            "--einsum-form" => {
                einsum.literal = match val.as_str() {
                    "colmajor" => false,
                    "literal" => true,
                    other => {
                        return Err(
                            format!("unknown --einsum-form `{other}` (colmajor, literal)").into(),
                        )
                    }
                }
            }
            "--opt" => {
                opt = match val.as_str() {
                    "O0" => OptLevel::O0,
                    "O1" => OptLevel::O1,
                    "O2" => OptLevel::O2,
                    other => return Err(format!("unknown --opt `{other}` (O0, O1, O2)").into()),
                }
            }
            "--backend" => {
                xla = match val.as_str() {
                    "cpu" => false,
                    "xla" => true,
                    other => return Err(format!("unknown --backend `{other}` (cpu, xla)").into()),
                }
            }
            "--show" => {
                show = true;
                i += 1;
                continue;
            }
            "--list" => {
                list = true;
                i += 1;
                continue;
            }
            other => return Err(format!("unknown argument `{other}`").into()),
        }
        i += 2;
    }
    if list {
        // The ids `--workload` selects (every id when it is not given).
        let given = args.iter().any(|a| a == "--workload");
        for id in if given { select(&workloads) } else { all_ids() } {
            println!("{id}");
        }
        return Ok(());
    }
    let ad = AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules()?)
        .build()?;
    for id in select(&workloads) {
        let id = id.as_str();
        if id == "S_add_f64x4" {
            tiny_add(threads)?;
            continue;
        }
        if id == "S_stream_triad_1e7" {
            stream_triad(threads, min_time);
            continue;
        }
        let t0 = Instant::now();
        let built = match build(id, &ad, opt, &einsum) {
            Ok(b) => b,
            Err(e) => {
                println!(
                    "{{\"system\": \"tenferro\", \"workload\": \"{id}\", \"threads\": {threads}, \"error\": {:?}}}",
                    e.to_string()
                );
                continue;
            }
        };
        let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
        // The run times, and the CPU memory plan's peak (the XLA backend reports none).
        let (timing, peak) = if xla {
            let mut exec = GraphExecutor::new(tenferro_xla::XlaBackend::from_env()?);
            (time_runs(&mut exec, &built, min_time)?, String::new())
        } else {
            let mut exec = GraphExecutor::new(CpuBackend::with_threads(threads));
            exec.register_extension(tenferro_linalg::register_runtime)?;
            let t = time_runs(&mut exec, &built, min_time)?;
            let prepared = exec.prepare(&built.program)?;
            if show {
                eprintln!("{}\n{prepared}", built.program);
            }
            (t, format!(", \"peak_bytes\": {}", prepared.peak_bytes()))
        };
        let system = if xla { "tenferro-xla" } else { "tenferro" };
        let (times, first_ms) = match timing {
            Ok(t) => t,
            Err(e) => {
                println!(
                    "{{\"system\": \"{system}\", \"workload\": \"{id}\", \"threads\": {threads}, \"error\": {:?}}}",
                    e
                );
                continue;
            }
        };
        let median = times[times.len() / 2];
        let gbps = min_bytes(id)
            .map(|b| format!(", \"min_bytes_GBps\": {:.2}", b / (median * 1e-3) / 1e9))
            .unwrap_or_default();
        println!(
            "{{\"system\": \"{system}\", \"workload\": \"{id}\", \"threads\": {threads}, \"median_ms\": {median:.4}, \"min_ms\": {:.4}, \"n\": {}, \"first_call_ms\": {first_ms:.2}, \"trace_compile_ms\": {compile_ms:.2}{peak}{gbps}}}",
            times[0],
            times.len()
        );
    }
    Ok(())
}
