//! Speed of the vmath kernels: ns/element of exp/sin/cos/tanh/log/erf/erfc/logistic (f64
//! and f32) against the scalar loop ([`Isa::Std`]: std's function, or the op table's
//! semantics for erf/erfc/logistic; f64 erfc has no kernel, so its rows are the same loop)
//! on 10^6-element slices, and the W2 forward expression
//! `sum(exp(sin(x)*y0 + cos(x))*0.5 - tanh(x))` over 10^7 f64 evaluated tile by tile
//! with the vmath slice kernels (an estimate of what a fused schedule achieves on one core).
//!
//! Times are the benchmark thread's on-CPU time (`/proc/thread-self/schedstat` on Linux,
//! wall time elsewhere), so other load on a shared machine does not inflate them.
//!
//! `cargo bench -p tenferro-cpu --bench vmath`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tenferro_cpu::vmath::{self, Isa};
use tenferro_ir::UnaryOp;

const N: usize = 1_000_000;

/// Nanoseconds this thread has run on a CPU, if the OS tells.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` `iters` times and returns its on-CPU time (wall time if unavailable).
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    let (c0, w0) = (thread_cpu_ns(), Instant::now());
    for _ in 0..iters {
        f();
    }
    match (c0, thread_cpu_ns()) {
        // schedstat advances at scheduler ticks: trust it only for long batches.
        (Some(a), Some(b)) if b - a > 50_000_000 => Duration::from_nanos(b - a),
        _ => w0.elapsed(),
    }
}

fn inputs(n: usize, lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

fn unary(c: &mut Criterion) {
    let ops = [
        UnaryOp::Exp,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tanh,
        UnaryOp::Log,
        UnaryOp::Erf,
        UnaryOp::Erfc,
        UnaryOp::Logistic,
    ];
    let mut g = c.benchmark_group("unary_1e6");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    for op in ops {
        let x = match op {
            UnaryOp::Log => inputs(N, 1e-3, 1e3, 1),
            // GELU's erf(x/√2) and a classifier's logits: both tiers and the tails.
            UnaryOp::Erf | UnaryOp::Erfc => inputs(N, -4.0, 4.0, 1),
            UnaryOp::Logistic => inputs(N, -20.0, 20.0, 1),
            _ => inputs(N, -2.0, 2.0, 1),
        };
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut y = vec![0.0; N];
        let mut y32 = vec![0.0f32; N];
        g.bench_function(format!("{op:?}/f64/std"), |b| {
            b.iter_custom(|it| {
                cpu_time(it, || {
                    vmath::unary_f64_on(Isa::Std, op, black_box(&x), &mut y)
                })
            })
        });
        g.bench_function(format!("{op:?}/f64/vmath"), |b| {
            b.iter_custom(|it| cpu_time(it, || vmath::unary_f64(op, black_box(&x), &mut y)))
        });
        g.bench_function(format!("{op:?}/f64/vmath_portable"), |b| {
            b.iter_custom(|it| {
                cpu_time(it, || {
                    vmath::unary_f64_on(Isa::Portable, op, black_box(&x), &mut y)
                })
            })
        });
        g.bench_function(format!("{op:?}/f32/std"), |b| {
            b.iter_custom(|it| {
                cpu_time(it, || {
                    vmath::unary_f32_on(Isa::Std, op, black_box(&x32), &mut y32)
                })
            })
        });
        g.bench_function(format!("{op:?}/f32/vmath"), |b| {
            b.iter_custom(|it| cpu_time(it, || vmath::unary_f32(op, black_box(&x32), &mut y32)))
        });
    }
    g.finish();
}

/// Per-element compute cost on an L1-resident tile (what a fused schedule pays per op).
fn unary_tile(c: &mut Criterion) {
    const T: usize = 1024;
    let x = inputs(T, -2.0, 2.0, 4);
    let (mut y, mut z) = (vec![0.0; T], vec![0.0; T]);
    let mut g = c.benchmark_group("tile_1024_f64");
    g.throughput(Throughput::Elements(T as u64));
    let isas = [Isa::Avx512, Isa::Avx2Fma]
        .into_iter()
        .filter(|i| i.is_available());
    for isa in isas {
        for op in [
            UnaryOp::Exp,
            UnaryOp::Sin,
            UnaryOp::Cos,
            UnaryOp::Tanh,
            UnaryOp::Log,
            UnaryOp::Erf,
            UnaryOp::Logistic,
        ] {
            g.bench_function(format!("{op:?}/{isa:?}"), |b| {
                b.iter_custom(|it| {
                    cpu_time(it, || vmath::unary_f64_on(isa, op, black_box(&x), &mut y))
                })
            });
        }
        g.bench_function(format!("sincos/{isa:?}"), |b| {
            b.iter_custom(|it| {
                cpu_time(it, || {
                    vmath::sincos_f64_on(isa, black_box(&x), &mut y, &mut z)
                })
            })
        });
    }
    g.finish();
}

/// `sum(exp(sin(x)*y0 + cos(x))*0.5 - tanh(x))`, one pass over memory in tiles of `TILE`.
fn w2_tiled(x: &[f64], y0: &[f64]) -> f64 {
    const TILE: usize = 1024;
    let mut a = [0.0; TILE];
    let mut b = [0.0; TILE];
    let mut total = 0.0;
    for (xt, yt) in x.chunks(TILE).zip(y0.chunks(TILE)) {
        let n = xt.len();
        let (a, b) = (&mut a[..n], &mut b[..n]);
        vmath::sincos_f64(xt, a, b);
        for ((a, &b), &y) in a.iter_mut().zip(b.iter()).zip(yt) {
            *a = a.mul_add(y, b);
        }
        vmath::unary_f64_inplace(UnaryOp::Exp, a);
        vmath::unary_f64(UnaryOp::Tanh, xt, b);
        let mut s = [0.0; 4];
        for (a, b) in a.chunks(4).zip(b.chunks(4)) {
            for j in 0..a.len() {
                s[j] += a[j] * 0.5 - b[j];
            }
        }
        total += (s[0] + s[1]) + (s[2] + s[3]);
    }
    total
}

/// The same expression with std's scalar functions.
fn w2_std(x: &[f64], y0: &[f64]) -> f64 {
    x.iter()
        .zip(y0)
        .map(|(&x, &y)| (x.sin() * y + x.cos()).exp() * 0.5 - x.tanh())
        .sum()
}

fn w2(c: &mut Criterion) {
    let n = 10_000_000;
    let x = inputs(n, -2.0, 2.0, 2);
    let y0 = inputs(n, 0.0, 1.0, 3);
    let (fast, reference) = (w2_tiled(&x, &y0), w2_std(&x, &y0));
    assert!(
        (fast - reference).abs() <= 1e-9 * reference.abs(),
        "W2 tiled {fast} vs std {reference}"
    );
    let mut g = c.benchmark_group("w2_fwd_1e7_f64");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("vmath_tiled", |b| {
        b.iter_custom(|it| {
            cpu_time(it, || {
                black_box(w2_tiled(black_box(&x), black_box(&y0)));
            })
        })
    });
    g.bench_function("std_scalar", |b| {
        b.iter_custom(|it| {
            cpu_time(it, || {
                black_box(w2_std(black_box(&x), black_box(&y0)));
            })
        })
    });
    g.finish();
}

criterion_group!(benches, unary, unary_tile, w2);
criterion_main!(benches);
