//! The long differential fuzzing run (see `tenferro::fuzz`):
//!
//! ```text
//! cargo run --release --example fuzz -- --programs 100000 --grad 100000 \
//!     --mutations 1000000 --seed 7 --threads-check --out target/fuzz-regressions
//! ```
//!
//! Flags: `--programs N` forward programs, `--large N` forward programs with large shapes
//! (extents up to thousands: the kernels' size-dependent and parallel paths), `--grad N`
//! gradient programs, `--mutations N`
//! text mutations, `--seed S` master seed, `--threads-check` also runs 2 threads and
//! requires 1-thread bits, `--max-steps N` generation steps per program, `--shrink N`
//! failures to shrink, `--out DIR` where shrunk failures are written as `.tfir` files
//! (default `target/fuzz-regressions`; copy the ones worth keeping into
//! `tests/fuzz_regressions/`), `--minutes M` stop after M minutes. Prints progress, the
//! counts, and every shrunk failure.

use std::path::PathBuf;
use std::time::Duration;
use tenferro::fuzz::{run_with_progress, FuzzConfig};

fn main() {
    let mut cfg = FuzzConfig {
        programs: 2000,
        grad: 1000,
        mutations: 10000,
        threads_check: false,
        max_shrink: 50,
        max_shrink_per_class: 6,
        regressions: Some(PathBuf::from("target/fuzz-regressions")),
        ..FuzzConfig::default()
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let num = || value.parse::<u64>().unwrap_or_else(|_| usage(&args[i]));
        match args[i].as_str() {
            "--programs" => cfg.programs = num() as usize,
            "--large" => cfg.large = num() as usize,
            "--grad" => cfg.grad = num() as usize,
            "--mutations" => cfg.mutations = num() as usize,
            "--seed" => cfg.seed = num(),
            "--max-steps" => cfg.max_steps = num() as usize,
            "--shrink" => cfg.max_shrink = num() as usize,
            "--minutes" => cfg.time_limit = Some(Duration::from_secs(num() * 60)),
            "--out" => cfg.regressions = Some(PathBuf::from(&value)),
            "--threads-check" => {
                cfg.threads_check = true;
                i += 1;
                continue;
            }
            other => usage(other),
        }
        i += 2;
    }
    println!("fuzzing with {cfg:?}");
    let mut last_failures = 0;
    let report = run_with_progress(&cfg, &mut |r| {
        for f in &r.failures[last_failures..] {
            println!(
                "FAIL [{}] {} seed {}: {}",
                f.kind, f.class, f.seed, f.message
            );
        }
        last_failures = r.failures.len();
        println!(
            "progress: {} forward, {} large, {} grad, {} mutations, {} failures",
            r.programs,
            r.large,
            r.grad,
            r.mutations,
            r.failure_count()
        );
    });
    println!("\n{report}");
    for f in report
        .failures
        .iter()
        .filter(|f| f.size.0 != f.size.1 || f.file.is_some())
    {
        println!(
            "--- {} {} (seed {}, shrunk {} -> {}) {}\n{}\n{}",
            f.kind,
            f.class,
            f.seed,
            f.size.0,
            f.size.1,
            f.file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            f.message,
            f.text
        );
    }
}

fn usage(flag: &str) -> ! {
    eprintln!(
        "bad flag {flag}\nusage: fuzz [--programs N] [--large N] [--grad N] [--mutations N] [--seed S] \
         [--threads-check] [--max-steps N] [--shrink N] [--out DIR] [--minutes M]"
    );
    std::process::exit(2)
}
