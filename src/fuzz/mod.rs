//! Differential fuzzing of the whole stack (the harness behind `tests/integration/fuzz.rs` and
//! `examples/fuzz.rs`). This module owns the random program generator ([`gen`]), the
//! oracles ([`check`]), the IR-text mutator ([`mutate`]), the shrinker and regression
//! files ([`shrink`]), and the driver [`run`] that ties them together:
//!
//! 1. **forward**: random programs over every core op and dtype, compiled at O0/O1/O2 and
//!    run on the CPU backend (1 and 2 threads, fusion off and on) against the reference
//!    evaluator ([`check::check_forward`]); **large** programs ([`large_config`]) do the
//!    same with extents up to thousands, for the kernels' size-dependent and parallel
//!    paths;
//! 2. **grad**: random smooth f64 programs with a scalar loss; `grad` against central
//!    differences and against `jvp` ([`check::check_grad`]);
//! 3. **mutation**: printed programs mutated as text, then parse → verify → O2 → prepare
//!    → run, where only `Ok` or `Err` is acceptable ([`mutate::check_mutant`]).
//!
//! A failure is shrunk ([`shrink`]) and, when [`FuzzConfig::regressions`] names a
//! directory, written there as a `.tfir` file that [`replay`] checks again. Every random
//! choice comes from one seed ([`rng::Rng`]), so a run is reproducible.

pub mod check;
pub mod gen;
pub mod mutate;
pub mod rng;
pub mod shrink;

use check::{check_forward, check_grad, Backends};
use gen::{generate, GenConfig, GenMode};
use mutate::{check_mutant, mutate, Stage};
use rng::Rng;
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};
use tenferro_ir::{parse_and_verify, print, Function};

/// The result of one check.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<T> {
    /// Checked and correct (with what the check produced).
    Pass(T),
    /// Not checkable (e.g. the reference evaluator rejects the inputs); with why.
    Skip(String),
    /// A bug: its class (`forward-mismatch`, `panic:backend`, ...) and a description.
    Fail {
        /// Short class used to keep a failure's kind while shrinking.
        class: String,
        /// What went wrong.
        message: String,
    },
}

impl<T> Outcome<T> {
    /// The failure class, if this is a failure.
    pub fn fail_class(&self) -> Option<&str> {
        match self {
            Outcome::Fail { class, .. } => Some(class),
            _ => None,
        }
    }
}

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}
static HOOK: Once = Once::new();

/// Runs `f`, turning a panic into `Err(message with location)`. While `f` runs, panics on
/// this thread are recorded instead of printed; other threads keep the previous hook.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                LAST_PANIC.with(|l| *l.borrow_mut() = Some(info.to_string()));
            } else {
                prev(info);
            }
        }));
    });
    let was = CAPTURING.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(was));
    r.map_err(|payload| {
        LAST_PANIC
            .with(|l| l.borrow_mut().take())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string())
    })
}

/// What [`run`] does.
#[derive(Clone, Debug)]
pub struct FuzzConfig {
    /// Forward programs to check.
    pub programs: usize,
    /// Large-shape forward programs to check ([`large_config`]).
    pub large: usize,
    /// Gradient programs to check.
    pub grad: usize,
    /// Text mutations to check.
    pub mutations: usize,
    /// Master seed; program `i` of each fuzzer uses a seed derived from it and `i`.
    pub seed: u64,
    /// Also run every forward program with 2 threads and require 1-thread bits.
    pub threads_check: bool,
    /// Most generation steps per program.
    pub max_steps: usize,
    /// Shrink at most this many failures (later ones are only counted).
    pub max_shrink: usize,
    /// Shrink at most this many failures of one kind and class.
    pub max_shrink_per_class: usize,
    /// Checks one shrink may spend.
    pub shrink_budget: usize,
    /// Write shrunk failures here as regression files.
    pub regressions: Option<PathBuf>,
    /// Stop early after this much time (None: run everything).
    pub time_limit: Option<Duration>,
}

impl Default for FuzzConfig {
    /// 200 forward programs, 100 gradients, 500 mutations, seed 0, thread check on.
    fn default() -> Self {
        FuzzConfig {
            programs: 200,
            large: 0,
            grad: 100,
            mutations: 500,
            seed: 0,
            threads_check: true,
            max_steps: 10,
            max_shrink: 20,
            max_shrink_per_class: 4,
            shrink_budget: 400,
            regressions: None,
            time_limit: None,
        }
    }
}

/// One failure found by [`run`], shrunk when within [`FuzzConfig::max_shrink`].
#[derive(Clone, Debug)]
pub struct Failure {
    /// `forward`, `grad` or `mutation`.
    pub kind: &'static str,
    /// The program / mutation seed.
    pub seed: u64,
    /// The input seed the reproducer runs with.
    pub input_seed: u64,
    /// The failure class.
    pub class: String,
    /// The failure's description (of the shrunk reproducer when shrunk).
    pub message: String,
    /// The reproducer: IR text (forward / grad) or mutated text.
    pub text: String,
    /// Instructions (forward / grad) or bytes (mutation) before and after shrinking.
    pub size: (usize, usize),
    /// The regression file written, if any.
    pub file: Option<PathBuf>,
}

/// Counts of a [`run`].
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Forward programs generated.
    pub programs: usize,
    /// Forward programs fully checked.
    pub programs_passed: usize,
    /// Forward programs skipped (reference evaluator rejected them).
    pub programs_skipped: usize,
    /// Large-shape forward programs generated.
    pub large: usize,
    /// Large-shape forward programs fully checked.
    pub large_passed: usize,
    /// Gradient programs generated.
    pub grad: usize,
    /// Gradient checks passed.
    pub grad_passed: usize,
    /// Gradient checks skipped (non-smooth point, non-finite loss).
    pub grad_skipped: usize,
    /// Mutations tried.
    pub mutations: usize,
    /// Mutants by the stage they reached.
    pub stages: Vec<(Stage, usize)>,
    /// Failures by class, with counts.
    pub classes: Vec<(String, usize)>,
    /// Every failure (shrunk ones first in discovery order).
    pub failures: Vec<Failure>,
    /// Failures that were shrunk.
    pub shrunk: usize,
    /// Shrunk failures per `kind/class`.
    shrunk_by_class: Vec<(String, usize)>,
    /// Whether the time limit cut the run short.
    pub timed_out: bool,
}

impl Report {
    fn count_class(&mut self, class: &str) {
        match self.classes.iter_mut().find(|(c, _)| c == class) {
            Some((_, n)) => *n += 1,
            None => self.classes.push((class.to_string(), 1)),
        }
    }

    /// Whether a failure of this kind and class may still be shrunk; counts it if so.
    fn take_shrink(&mut self, cfg: &FuzzConfig, kind: &str, class: &str) -> bool {
        let key = format!("{kind}/{class}");
        let n = match self.shrunk_by_class.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => n,
            None => {
                self.shrunk_by_class.push((key, 0));
                match self.shrunk_by_class.last_mut() {
                    Some((_, n)) => n,
                    None => return false,
                }
            }
        };
        if self.shrunk >= cfg.max_shrink || *n >= cfg.max_shrink_per_class {
            return false;
        }
        *n += 1;
        self.shrunk += 1;
        true
    }

    fn count_stage(&mut self, s: Stage) {
        match self.stages.iter_mut().find(|(t, _)| *t == s) {
            Some((_, n)) => *n += 1,
            None => self.stages.push((s, 1)),
        }
        self.stages.sort();
    }

    /// Mismatches (forward, threads, gradient and jvp) found.
    pub fn mismatches(&self) -> usize {
        self.classes
            .iter()
            .filter(|(c, _)| c.ends_with("mismatch"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Failures found (all classes).
    pub fn failure_count(&self) -> usize {
        self.classes.iter().map(|(_, n)| n).sum()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "forward:   {} programs, {} passed, {} skipped",
            self.programs, self.programs_passed, self.programs_skipped
        )?;
        if self.large > 0 {
            writeln!(
                f,
                "large:     {} programs, {} passed",
                self.large, self.large_passed
            )?;
        }
        writeln!(
            f,
            "grad:      {} programs, {} passed, {} skipped (non-smooth / non-finite)",
            self.grad, self.grad_passed, self.grad_skipped
        )?;
        let stages: Vec<String> = self
            .stages
            .iter()
            .map(|(s, n)| format!("{s:?} {n}"))
            .collect();
        writeln!(f, "mutations: {} ({})", self.mutations, stages.join(", "))?;
        writeln!(
            f,
            "failures:  {} ({} mismatches), {} shrunk{}",
            self.failure_count(),
            self.mismatches(),
            self.shrunk,
            if self.timed_out {
                " [time limit hit]"
            } else {
                ""
            }
        )?;
        for (c, n) in &self.classes {
            writeln!(f, "  {c}: {n}")?;
        }
        Ok(())
    }
}

/// The seed of item `i` of fuzzer `which` under master seed `seed`.
pub fn item_seed(seed: u64, which: u64, i: usize) -> u64 {
    let mut r = Rng::new(seed ^ which.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let base = r.next_u64();
    Rng::new(base.wrapping_add(i as u64)).next_u64()
}

/// Generator settings of the forward fuzzer.
pub fn forward_config(max_steps: usize) -> GenConfig {
    GenConfig {
        mode: GenMode::Forward,
        max_steps,
        large: false,
    }
}

/// Generator settings of the large-shape forward fuzzer ([`GenConfig::large`]).
pub fn large_config(max_steps: usize) -> GenConfig {
    GenConfig {
        large: true,
        ..forward_config(max_steps)
    }
}

/// Generator settings of the gradient fuzzer.
pub fn grad_config(max_steps: usize) -> GenConfig {
    GenConfig {
        mode: GenMode::Smooth,
        max_steps,
        large: false,
    }
}

/// Runs the three fuzzers as configured (see the module documentation).
pub fn run(cfg: &FuzzConfig) -> Report {
    run_with_progress(cfg, &mut |_| {})
}

/// [`run`], calling `progress` after every failure and every 1000 items.
pub fn run_with_progress(cfg: &FuzzConfig, progress: &mut dyn FnMut(&Report)) -> Report {
    let backends = Backends::new();
    let mut rep = Report::default();
    let start = Instant::now();
    let out_of_time = |rep: &mut Report| {
        let over = cfg.time_limit.is_some_and(|t| start.elapsed() > t);
        rep.timed_out |= over;
        over
    };
    let fwd = forward_config(cfg.max_steps);
    let mut forward = |rep: &mut Report, gen: &GenConfig, which: u64, count: usize| {
        for i in 0..count {
            if out_of_time(rep) {
                break;
            }
            let seed = item_seed(cfg.seed, which, i);
            let f = generate(seed, gen);
            let outcome = check_forward(&f, seed, &backends, cfg.threads_check);
            let passed = matches!(outcome, Outcome::Pass(()));
            if gen.large {
                rep.large += 1;
                rep.large_passed += usize::from(passed);
            } else {
                rep.programs += 1;
                rep.programs_passed += usize::from(passed);
                rep.programs_skipped += usize::from(matches!(outcome, Outcome::Skip(_)));
            }
            if let Outcome::Fail { class, message } = outcome {
                let fail = |g: &Function| {
                    check_forward(g, seed, &backends, cfg.threads_check).fail_class()
                        == Some(class.as_str())
                };
                let kind = if gen.large { "large" } else { "forward" };
                record_function_failure(
                    cfg,
                    rep,
                    kind,
                    seed,
                    &f,
                    class.clone(),
                    message,
                    fail,
                    &|g| check_forward(g, seed, &backends, cfg.threads_check),
                );
                progress(rep);
            }
            if i % 1000 == 999 {
                progress(rep);
            }
        }
    };
    forward(&mut rep, &fwd, 1, cfg.programs);
    forward(&mut rep, &large_config(cfg.max_steps), 4, cfg.large);
    let grad = grad_config(cfg.max_steps);
    for i in 0..cfg.grad {
        if out_of_time(&mut rep) {
            break;
        }
        let seed = item_seed(cfg.seed, 2, i);
        let f = generate(seed, &grad);
        rep.grad += 1;
        match check_grad(&f, seed, &backends) {
            Outcome::Pass(()) => rep.grad_passed += 1,
            Outcome::Skip(_) => rep.grad_skipped += 1,
            Outcome::Fail { class, message } => {
                let fail = |g: &Function| {
                    check_grad(g, seed, &backends).fail_class() == Some(class.as_str())
                };
                record_function_failure(
                    cfg,
                    &mut rep,
                    "grad",
                    seed,
                    &f,
                    class.clone(),
                    message,
                    fail,
                    &|g| check_grad(g, seed, &backends),
                );
                progress(&rep);
            }
        }
        if i % 1000 == 999 {
            progress(&rep);
        }
    }
    for i in 0..cfg.mutations {
        if out_of_time(&mut rep) {
            break;
        }
        let seed = item_seed(cfg.seed, 3, i);
        // The source: a random valid program (forward or smooth), printed.
        let gcfg = if i % 2 == 0 { &fwd } else { &grad };
        let text = print(&generate(seed, gcfg));
        let mut r = Rng::new(seed);
        let mutant = mutate(&text, &mut r);
        rep.mutations += 1;
        match check_mutant(&mutant, seed, &backends) {
            Outcome::Pass(stage) => rep.count_stage(stage),
            Outcome::Skip(_) => {}
            Outcome::Fail { class, message } => {
                rep.count_class(&class);
                let mut failure = Failure {
                    kind: "mutation",
                    seed,
                    input_seed: seed,
                    class: class.clone(),
                    message,
                    text: mutant.clone(),
                    size: (mutant.len(), mutant.len()),
                    file: None,
                };
                if rep.take_shrink(cfg, "mutation", &class) {
                    let mut fails = |t: &str| {
                        check_mutant(t, seed, &backends).fail_class() == Some(class.as_str())
                    };
                    let small = shrink::shrink_text(&mutant, &mut fails, cfg.shrink_budget);
                    if let Outcome::Fail { message, .. } = check_mutant(&small, seed, &backends) {
                        failure.message = message;
                    }
                    failure.size.1 = small.len();
                    failure.text = small;
                    write_file(cfg, &mut failure);
                }
                rep.failures.push(failure);
                progress(&rep);
            }
        }
        if i % 1000 == 999 {
            progress(&rep);
        }
    }
    rep
}

/// Counts, shrinks (within the limits) and records a forward or gradient failure.
#[allow(clippy::too_many_arguments)]
fn record_function_failure(
    cfg: &FuzzConfig,
    rep: &mut Report,
    kind: &'static str,
    seed: u64,
    f: &Function,
    class: String,
    message: String,
    mut fails: impl FnMut(&Function) -> bool,
    recheck: &dyn Fn(&Function) -> Outcome<()>,
) {
    rep.count_class(&class);
    let mut failure = Failure {
        kind,
        seed,
        input_seed: seed,
        class,
        message,
        text: print(f),
        size: (f.insts().len(), f.insts().len()),
        file: None,
    };
    if rep.take_shrink(cfg, kind, &failure.class) {
        let small = shrink::shrink_function(f, &mut fails, cfg.shrink_budget);
        if let Outcome::Fail { message, .. } = recheck(&small) {
            failure.message = message;
        }
        failure.size.1 = small.insts().len();
        failure.text = print(&small);
        write_file(cfg, &mut failure);
    }
    rep.failures.push(failure);
}

fn write_file(cfg: &FuzzConfig, failure: &mut Failure) {
    let Some(dir) = &cfg.regressions else { return };
    let name = shrink::regression_name(failure.kind, &failure.class, &failure.text);
    let text = shrink::regression_text(
        failure.kind,
        failure.input_seed,
        &format!("{}: {}", failure.class, failure.message),
        &failure.text,
    );
    failure.file = shrink::write_regression(dir, &name, &text).ok();
}

/// Re-checks one regression file (see [`shrink`] for the format) with the check of its
/// kind; `Err` for an unreadable or malformed file.
pub fn replay(path: &Path, backends: &Backends) -> Result<Outcome<()>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (kind, seed) = shrink::parse_header(&text)
        .ok_or_else(|| format!("{}: no `// kind:` / `// seed:` header", path.display()))?;
    let parsed = || parse_and_verify(&text).map_err(|e| format!("{}: {e}", path.display()));
    Ok(match kind.as_str() {
        "forward" | "large" => check_forward(&parsed()?, seed, backends, true),
        "grad" => check_grad(&parsed()?, seed, backends),
        "mutation" => match check_mutant(&text, seed, backends) {
            Outcome::Pass(_) => Outcome::Pass(()),
            Outcome::Skip(s) => Outcome::Skip(s),
            Outcome::Fail { class, message } => Outcome::Fail { class, message },
        },
        other => return Err(format!("{}: unknown kind `{other}`", path.display())),
    })
}
