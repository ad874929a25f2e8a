//! The bounded, deterministic run of the differential fuzzer (`tenferro::fuzz`) in the
//! default test suite, the replay of every shrunk reproducer in
//! `tests/fuzz_regressions/`, and checks that the generator reaches every op.
//! The long run is `cargo run --release --example fuzz -- --help`-style flags (see
//! `examples/fuzz.rs`).

use std::collections::HashSet;
use std::path::Path;
use tenferro::fuzz::check::Backends;
use tenferro::fuzz::gen::{generate, kind_of, op_kinds};
use tenferro::fuzz::{
    forward_config, grad_config, item_seed, replay, run, shrink, FuzzConfig, Outcome,
};

/// Bugs the fuzzer has found that are being fixed elsewhere. A failure whose shrunk
/// program matches an entry is reported but does not fail the default run, and a
/// regression file named here may still fail on replay. Delete an entry once its bug is
/// fixed (the test then insists on it).
///
/// Each entry: (regression file stem or failure-class tag, why it is open).
const KNOWN_OPEN: &[(&str, &str)] = &[];

fn is_known_open(name: &str) -> Option<&'static str> {
    KNOWN_OPEN
        .iter()
        .find(|(k, _)| name.contains(k))
        .map(|(_, why)| *why)
}

/// ~200 forward programs, ~100 gradient checks and ~500 mutations with a fixed seed:
/// deterministic, a few seconds in a debug build.
#[test]
fn bounded_fuzz_run_finds_no_failures() {
    let cfg = FuzzConfig {
        programs: 200,
        grad: 100,
        mutations: 500,
        seed: 0x7e4f_e770,
        threads_check: true,
        max_shrink: 3,
        shrink_budget: 200,
        ..FuzzConfig::default()
    };
    let report = run(&cfg);
    println!("{report}");
    let mut unexpected = Vec::new();
    for f in &report.failures {
        let tag = format!("{}-{}", f.kind, f.class);
        match is_known_open(&tag) {
            Some(why) => println!("known open ({why}): {tag} seed {}", f.seed),
            None => unexpected.push(format!(
                "[{}] {} seed {}: {}\n{}",
                f.kind, f.class, f.seed, f.message, f.text
            )),
        }
    }
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n\n"));
    // The run must actually check things.
    assert!(report.programs_passed >= 150, "{report}");
    assert!(report.grad_passed >= 70, "{report}");
}

/// A few large-shape programs (extents up to thousands, 1 and 2 threads): the kernels'
/// size-dependent and parallel paths, which the small programs above never reach.
#[test]
fn bounded_large_shape_fuzz_run_finds_no_failures() {
    let cfg = FuzzConfig {
        programs: 0,
        large: 40,
        grad: 0,
        mutations: 0,
        seed: 0x1a46_e5ba,
        threads_check: true,
        max_shrink: 1,
        shrink_budget: 100,
        ..FuzzConfig::default()
    };
    let report = run(&cfg);
    println!("{report}");
    let failures: Vec<String> = report
        .failures
        .iter()
        .map(|f| {
            format!(
                "[{}] {} seed {}: {}\n{}",
                f.kind, f.class, f.seed, f.message, f.text
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(report.large_passed >= 30, "{report}");
}

/// Every file in tests/fuzz_regressions/ passes its check again (files named in
/// KNOWN_OPEN are replayed and reported only).
#[test]
fn regression_files_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let backends = Backends::new();
    let mut failed = Vec::new();
    for path in shrink::regression_files(&dir) {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let outcome = replay(&path, &backends).unwrap_or_else(|e| panic!("{e}"));
        match (&outcome, is_known_open(&stem)) {
            (Outcome::Fail { class, message }, None) => {
                failed.push(format!("{}: {class}: {message}", path.display()))
            }
            (Outcome::Fail { class, .. }, Some(why)) => {
                println!("{stem}: still failing ({class}), known open: {why}")
            }
            (_, Some(why)) => println!("{stem}: passes now; remove it from KNOWN_OPEN ({why})"),
            _ => {}
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The forward generator emits every kind of op within a few hundred programs, so a bug
/// in any op can be found (and a new op kind that is never emitted is noticed).
#[test]
fn generator_reaches_every_op_kind() {
    let mut seen = HashSet::new();
    let cfg = forward_config(10);
    for i in 0..400 {
        let f = generate(item_seed(1, 1, i), &cfg);
        tenferro::ir::verify(&f).unwrap_or_else(|e| panic!("{e}\n{}", tenferro::ir::print(&f)));
        seen.extend(f.insts().iter().filter_map(|inst| kind_of(&inst.op)));
    }
    let missing: Vec<_> = op_kinds()
        .into_iter()
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

/// Smooth programs verify and end in an f64 scalar loss.
#[test]
fn smooth_programs_have_a_scalar_loss() {
    let cfg = grad_config(10);
    for i in 0..200 {
        let f = generate(item_seed(1, 2, i), &cfg);
        tenferro::ir::verify(&f).unwrap_or_else(|e| panic!("{e}\n{}", tenferro::ir::print(&f)));
        assert_eq!(
            f.output_types(),
            vec![tenferro::ir::TensorType::scalar(tenferro::DType::F64)]
        );
    }
}

/// The shrinker keeps a failure while reducing the program: a planted "bug" (any
/// `sin`) shrinks to the `sin` and at most the converts that keep an output's type.
#[test]
fn shrinker_reduces_to_the_failing_instruction() {
    let cfg = forward_config(10);
    let f = (0..)
        .map(|i| generate(item_seed(5, 1, i), &cfg))
        .find(|f| f.insts().len() > 6 && tenferro::ir::print(f).contains(" sin "))
        .unwrap_or_else(|| unreachable!());
    let mut fails = |g: &tenferro::ir::Function| tenferro::ir::print(g).contains(" sin ");
    let small = shrink::shrink_function(&f, &mut fails, 1000);
    assert!(small.insts().len() <= 3, "{}", tenferro::ir::print(&small));
}
