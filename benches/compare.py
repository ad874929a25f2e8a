#!/usr/bin/env python3
"""Runs tenferro's benchmark suite and JAX on the same workloads and prints the ratio table.

    python3 benches/compare.py --workload W2_grad_1e7,W3_f64 --threads 1,2
    python3 benches/compare.py --workload all --threads 1 --no-jax   # recorded peers only
    python3 benches/compare.py --workload W1,W7 --opt O1             # tenferro at O1 (default O2)
    python3 benches/compare.py --workload einsum_str,einsum_nary --threads 1   # einsum instances

einsum_<instance> workloads (not part of `all`) compare with numpy and JAX run now by
`../shared/peers/einsum/run_peers.py` (opt_einsum greedy paths for numpy). tenferro runs
each instance's column-major form (every term and shape reversed, as upstream's runner
does), so it reads and writes the bytes the row-major peers do; `--einsum-form literal`
runs the NumPy subscripts on column-major data instead (`bij,bjk->bik` with its batch axis
fastest in memory: a different, harder layout than the peers').
L_* workloads (linear algebra, not part of `all`: `--workload L`) compare with JAX run now
by `benches/linalg_jax.py`.

tenferro: `target/release/examples/bench_suite --workload W --threads T` (built once by
cargo first; one process per workload and round; at one thread pinned to one CPU, as the
peers pin themselves). JAX: `python3 ../shared/peers/workloads.py --system jax --threads T
--workload W --json FILE` (a fresh process each time, as its docs require), run now on
this machine. For W and S rows the "best peer" columns are the best recorded peer of
`../shared/peers/results.json` (JAX / torch / torch.compile / numpy, measured earlier on
another machine); for einsum rows, the faster of numpy and JAX run now. Ratios < 1 mean
tenferro is faster.

On a shared VM one program's median moves by 1.3-1.5x between runs minutes apart, so each
workload runs `--rounds` times (default 3), tenferro and its live peers alternating, one
workload after another; a side's time is the median of its round medians, and the last
column gives the range of the per-round ratios (tenferro against the faster live peer of
the same round) beside the ratio of those medians.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers")


BENCH_SUITE = os.path.join(ROOT, "target", "release", "examples", "bench_suite")


def build_bench_suite():
    """Builds the benchmark binary once, so that the timed runs start no cargo."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "bench_suite"],
                   cwd=ROOT, check=True)


def select(spec):
    """The workload ids `spec` names, as bench_suite selects them (`--list --workload`)."""
    return subprocess.run([BENCH_SUITE, "--list", "--workload", spec], capture_output=True,
                          text=True, check=True).stdout.split()


def run_tenferro(workloads, threads, min_time, opt="O2", einsum_path=None,
                 einsum_form="colmajor"):
    cmd = [BENCH_SUITE, "--workload", workloads, "--threads", str(threads),
           "--min-time", str(min_time), "--opt", opt, "--einsum-form", einsum_form]
    if einsum_path:
        cmd += ["--einsum-path", einsum_path]
    env = dict(os.environ)
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                         preexec_fn=pin_to_one_cpu if threads == 1 else None)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
    return records_by_workload(out.stdout)


def pin_to_one_cpu():
    """Pins the calling process (and its children) to the first CPU it may run on, as the
    peers' scripts pin themselves at one thread, so that neither side migrates between
    cores (and their private caches) mid-run."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def records_by_workload(stdout):
    """The JSON lines of a benchmark's output, by workload id (other lines ignored)."""
    res = {}
    for line in stdout.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        res[rec["workload"]] = rec
    return res


def timed_records(cmd, out_flag):
    """Runs a peer script that writes JSON lines to the file after `out_flag`; its records
    that have a median."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as fh:
        path = fh.name
    out = subprocess.run(cmd + [out_flag, path], capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
    with open(path) as fh:
        recs = [rec for rec in map(json.loads, fh) if "median_ms" in rec]
    os.unlink(path)
    return recs


def run_jax(workloads, threads):
    cmd = [sys.executable, os.path.join(PEERS, "workloads.py"), "--system", "jax",
           "--threads", str(threads), "--workload", workloads]
    return {rec["workload"]: rec for rec in timed_records(cmd, "--json")}


def run_linalg_jax(workloads, threads, min_time):
    """JAX on the L_* workloads (`benches/linalg_jax.py`, live): {workload: rec}."""
    if not workloads:
        return {}
    cmd = [sys.executable, os.path.join(ROOT, "benches", "linalg_jax.py"), "--threads", str(threads),
           "--workload", ",".join(workloads), "--min-time", str(min_time)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
    return records_by_workload(out.stdout)


def run_einsum_peers(instances, threads, einsum_path=None):
    """numpy and JAX on the einsum instances (`../shared/peers/einsum/run_peers.py`, live, on
    the instance files tenferro ships in `extensions/einsum/instances/`):
    {"einsum_<instance>": {"jax": rec, "numpy": rec}}."""
    if not instances:
        return {}
    cmd = [sys.executable, os.path.join(PEERS, "einsum", "run_peers.py"), "--systems", "numpy,jax",
           "--threads", str(threads), "--instances", ",".join(instances),
           "--instances-dir", os.path.join(ROOT, "extensions", "einsum", "instances")]
    if einsum_path:
        cmd += ["--path-source", "upstream_" + einsum_path]
    res = {}
    for rec in timed_records(cmd, "--out"):
        res.setdefault("einsum_" + rec["instance"], {})[rec["system"].split("@")[0]] = rec
    return res


def recorded_best(wid, threads):
    try:
        with open(os.path.join(PEERS, "results.json")) as fh:
            results = json.load(fh)["results"]
    except (OSError, KeyError, ValueError):
        return None, None
    best = (None, None)
    for system, cells in results.get(wid, {}).items():
        cell = cells.get(f"t{threads}")
        if cell and "median_ms" in cell and (best[0] is None or cell["median_ms"] < best[0]):
            best = (cell["median_ms"], system)
    return best


def fmt(x, nd=3):
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{nd}g}"


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def peers_of(wid, t, args):
    """The live peers' medians for one workload: {system: median_ms}."""
    if args.no_jax:
        return {}
    if wid.startswith("einsum_"):
        recs = run_einsum_peers([wid[len("einsum_"):]], t, args.einsum_path).get(wid, {})
        return {name: r["median_ms"] for name, r in recs.items() if r.get("median_ms") is not None}
    if wid.startswith("L_"):
        rec = run_linalg_jax([wid], t, args.min_time).get(wid, {})
    elif wid.startswith(("W", "S")):
        rec = run_jax(wid, t).get(wid, {})
    else:
        rec = {}
    return {"jax": rec["median_ms"]} if rec.get("median_ms") is not None else {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="all")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating runs of tenferro and its peers per workload (median of round medians)")
    ap.add_argument("--no-jax", action="store_true", help="skip the live JAX run")
    ap.add_argument("--opt", default="O2", help="tenferro's optimization level (O0, O1, O2)")
    ap.add_argument("--einsum-form", choices=("colmajor", "literal"), default="colmajor",
                    help="einsum rows: tenferro runs each instance's column-major form (every "
                         "term and shape reversed, as upstream's runner: the same bytes as the "
                         "peers' row-major operands; default) or its literal subscripts on "
                         "column-major data")
    ap.add_argument("--einsum-path", choices=("opt_flops", "opt_size"),
                    help="einsum rows: every system contracts along upstream's stored path")
    args = ap.parse_args()

    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}, host {platform.node()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, tenferro --opt {args.opt}, "
          f"{args.rounds} rounds")
    build_bench_suite()
    workloads = select(args.workload)
    rows = []
    for t in [int(x) for x in args.threads.split(",")]:
        print(f"threads {t}: load average {os.getloadavg()[0]:.2f}")
        for wid in workloads:
            # One (tenferro ms, {peer: ms}) per round.
            rounds, err = [], None
            for _ in range(max(args.rounds, 1)):
                rec = run_tenferro(wid, t, args.min_time, args.opt, args.einsum_path,
                                   args.einsum_form).get(wid, {})
                if "median_us" in rec:
                    rec["median_ms"] = rec["median_us"] / 1000.0
                if "median_ms" not in rec:
                    err = rec.get("error", "no result")
                    break
                rounds.append((rec["median_ms"], peers_of(wid, t, args)))
            if err:
                rows.append((wid, t, None, None, None, None, None, err))
                continue
            mine = [m for m, _ in rounds]
            theirs = {}
            for _, peers in rounds:
                for name, ms in peers.items():
                    theirs.setdefault(name, []).append(ms)
            # Per-round ratios against the faster live peer of the same round.
            spread = [m / min(peers.values()) for m, peers in rounds if peers]
            j = median(theirs["jax"]) if "jax" in theirs else None
            if wid.startswith("einsum_"):
                # einsum instances: the faster of JAX and numpy (opt_einsum greedy path), now.
                cells = [(median(v), name) for name, v in theirs.items()]
                best, who = min(cells) if cells else (None, None)
            else:
                best, who = recorded_best(wid, t)
            rows.append((wid, t, median(mine), j, best, who, spread, None))
    print()
    print("| workload | threads | tenferro ms | JAX ms (now) | tenferro / JAX | best peer ms | tenferro / best | per-round ratio range |")
    print("|---|---|---|---|---|---|---|---|")
    for wid, t, mine, j, best, who, spread, err in rows:
        if err:
            print(f"| {wid} | {t} | error: {err[:60]} | | | | | |")
            continue
        r_j = fmt(mine / j) if j else "—"
        r_b = fmt(mine / best) if best else "—"
        peer = f"{fmt(best)} ({who})" if best else "—"
        rng = f"{fmt(min(spread))}-{fmt(max(spread))}" if spread else "—"
        print(f"| {wid} | {t} | {fmt(mine)} | {fmt(j)} | {r_j} | {peer} | {r_b} | {rng} |")


if __name__ == "__main__":
    main()
