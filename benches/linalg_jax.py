#!/usr/bin/env python3
"""JAX versions of bench_suite's linear-algebra workloads (`L_*`), one JSON line each.

    python3 benches/linalg_jax.py --threads 1 --workload L_eigh_8x8x4096,L_eigh_grad_512

Same inputs' structure as `examples/bench_suite.rs` (not the same random numbers):
- `L_<op>_<n>x<n>x<batch>`: eigh (values and vectors), svd (u, s, vh) or solve (one right-hand
  side) on a batch of small f64 matrices, batch axis first as JAX expects it;
- `L_eigh_grad_<n>`: grad of sum(eigvalsh(A)) for a symmetric A;
- `L_svdvals_jvp_<n>`: the singular values and their JVP;
- `L_solve_<n>`: one n x n solve.
Threads as `../shared/peers/workloads.py`: 1 thread pins the process to CPU 0 and sets
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"; 2 threads
uses JAX's defaults. Timing: jit, one warm-up call, then calls until `--min-time` seconds
(at least 10), each blocked with `jax.block_until_ready`; the median in ms.
"""
import argparse
import json
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1, choices=(1, 2))
ap.add_argument("--workload", default="L")
ap.add_argument("--min-time", type=float, default=1.0)
args = ap.parse_args()

if args.threads == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    try:
        os.sched_setaffinity(0, {0})
    except (AttributeError, OSError):
        pass

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

IDS = ["L_eigh_2x2x16", "L_eigh_4x4x256", "L_eigh_8x8x4096", "L_svd_2x2x16", "L_svd_4x4x256",
       "L_svd_8x8x4096", "L_solve_2x2x16", "L_solve_4x4x256", "L_solve_8x8x4096",
       "L_eigh_grad_512", "L_svdvals_jvp_512", "L_eigh_grad_128", "L_svdvals_jvp_128",
       "L_solve_512"]


def build(wid, key):
    parts = wid.split("_")
    k1, k2 = jax.random.split(key)
    if "x" in parts[-1]:
        op = parts[1]
        n, _, batch = (int(x) for x in parts[-1].split("x"))
        m = jax.random.normal(k1, (batch, n, n), dtype=jnp.float64)
        if op == "eigh":
            a = 0.5 * (m + jnp.swapaxes(m, -1, -2))
            return jax.jit(jnp.linalg.eigh), (a,)
        if op == "svd":
            return jax.jit(lambda a: jnp.linalg.svd(a, full_matrices=False)), (m,)
        if op == "solve":
            a = m + 2.0 * n * jnp.eye(n)
            b = jax.random.normal(k2, (batch, n, 1), dtype=jnp.float64)
            return jax.jit(jnp.linalg.solve), (a, b)
    n = int(parts[-1])
    m = jax.random.normal(k1, (n, n), dtype=jnp.float64)
    if wid.startswith("L_eigh_grad"):
        a = 0.5 * (m + m.T)
        return jax.jit(jax.grad(lambda a: jnp.sum(jnp.linalg.eigvalsh(a)))), (a,)
    if wid.startswith("L_svdvals_jvp"):
        t = jax.random.normal(k2, (n, n), dtype=jnp.float64)
        svdvals = lambda a: jnp.linalg.svd(a, compute_uv=False)  # noqa: E731
        return jax.jit(lambda a, t: jax.jvp(svdvals, (a,), (t,))), (m, t)
    if wid.startswith("L_solve"):
        a = m + 2.0 * jnp.sqrt(n) * jnp.eye(n)
        b = jax.random.normal(k2, (n, 1), dtype=jnp.float64)
        return jax.jit(jnp.linalg.solve), (a, b)
    raise SystemExit(f"unknown workload {wid}")


def main():
    wanted = [w for w in IDS if any(w == p or w.startswith(p) for p in args.workload.split(","))]
    for wid in wanted:
        f, xs = build(wid, jax.random.PRNGKey(0))
        t = time.perf_counter()
        jax.block_until_ready(f(*xs))
        first = time.perf_counter() - t
        times = []
        start = time.perf_counter()
        while len(times) < 10 or time.perf_counter() - start < args.min_time:
            t = time.perf_counter()
            jax.block_until_ready(f(*xs))
            times.append(time.perf_counter() - t)
            if len(times) >= 2000:
                break
        print(json.dumps({"system": "jax", "workload": wid, "threads": args.threads,
                          "median_ms": 1e3 * statistics.median(times),
                          "min_ms": 1e3 * min(times), "n": len(times),
                          "first_call_ms": 1e3 * first, "jax": jax.__version__}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
