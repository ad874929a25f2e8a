//! The IR-text mutation fuzzer: printed valid functions, mutated as text ([`mutate`]),
//! are pushed as far as they go through parse → verify → O2 pipeline → CPU prepare → run
//! ([`check_mutant`]). Every stage may return an error; a panic anywhere is a failure.
//!
//! Programs whose declared sizes exceed [`MAX_RUN_ELEMENTS`] (summed over every value)
//! are verified, optimised and prepared but never run, so the fuzzer does not allocate
//! gigabytes.

use super::check::{random_tensor, Backends};
use super::gen::{kind_name, op_kinds};
use super::rng::Rng;
use super::{catch, Outcome};
use tenferro_ir::{checked_numel, eval, parse, verify, DType, Function, Op, Tensor};
use tenferro_passes::{OptLevel, Pipeline};
use tenferro_runtime::{Backend, ExtensionRegistry};

/// Most elements (summed over all values) of a mutant that is run.
pub const MAX_RUN_ELEMENTS: usize = 1_000_000;

/// How far a mutant got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The parser rejected it.
    #[default]
    Parse,
    /// Parsed; the verifier rejected it.
    Verify,
    /// Verified; the O2 pipeline rejected it.
    Compile,
    /// Optimised; the backend's prepare rejected it.
    Prepare,
    /// Prepared, but too large to run.
    TooLarge,
    /// Ran (to an error or to results).
    Ran,
}

/// Numbers a mutation may substitute: edge cases of sizes, axes and indices.
const NUMBERS: [&str; 18] = [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "8",
    "16",
    "64",
    "-1",
    "1000000",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "1e308",
    "nan",
    "-0.0",
    "2147483648",
];

/// Splits text into tokens: runs of identifier characters, and single other characters
/// (whitespace included), so that joining the tokens gives the text back.
fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '%' | '@' | '-');
    for c in text.chars() {
        match out.last_mut() {
            Some(last) if word(c) && last.chars().all(word) => last.push(c),
            _ => out.push(c.to_string()),
        }
    }
    out
}

/// Names a mutation may substitute for a word: every op, dtype and a few keywords.
fn vocabulary() -> Vec<String> {
    let mut v: Vec<String> = op_kinds()
        .into_iter()
        .map(|k| kind_name(k).to_string())
        .collect();
    v.extend(
        [
            "return",
            "func",
            "axes",
            "perm",
            "shape",
            "dims",
            "axis",
            "dir",
            "lt",
            "to",
            "low",
            "high",
            "starts",
            "limits",
            "lhs_contract",
            "rhs_batch",
            "linalg.cholesky",
        ]
        .map(String::from),
    );
    v.extend(DType::ALL.iter().map(|d| d.name().to_string()));
    v
}

/// Applies 1–3 random text mutations: a byte changed, a token deleted, duplicated or
/// swapped with another, a number replaced by an edge case, a word replaced by an op or
/// dtype name, a line deleted or duplicated.
pub fn mutate(text: &str, r: &mut Rng) -> String {
    let mut toks = tokens(text);
    let vocab = vocabulary();
    for _ in 0..1 + r.below(3) {
        if toks.is_empty() {
            break;
        }
        let i = r.below(toks.len());
        match r.below(12) {
            0 => {
                // One byte of one token changed to a random printable character.
                let mut bytes = toks[i].clone().into_bytes();
                let k = r.below(bytes.len());
                if let Some(b) = bytes.get_mut(k) {
                    *b = 0x20 + r.below(0x5f) as u8;
                }
                toks[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
            1 => {
                toks.remove(i);
            }
            2 => {
                let t = toks[i].clone();
                toks.insert(i, t);
            }
            3 => {
                let j = r.below(toks.len());
                toks.swap(i, j);
            }
            4..=7 => {
                // A number (the first numeric token from i on) replaced by an edge case.
                let pos = (i..toks.len())
                    .chain(0..i)
                    .find(|&k| toks[k].chars().next().is_some_and(|c| c.is_ascii_digit()));
                if let (Some(k), Some(n)) = (pos, r.pick(&NUMBERS)) {
                    toks[k] = n.to_string();
                }
            }
            8..=10 => {
                let pos = (i..toks.len()).chain(0..i).find(|&k| {
                    toks[k]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic())
                });
                if let (Some(k), Some(w)) = (pos, r.pick(&vocab)) {
                    toks[k] = w;
                }
            }
            _ => {
                // A whole line deleted or duplicated.
                let text: String = toks.concat();
                let mut lines: Vec<&str> = text.lines().collect();
                let l = r.below(lines.len());
                if r.coin() && lines.len() > 1 {
                    lines.remove(l);
                } else if let Some(line) = lines.get(l).copied() {
                    lines.insert(l, line);
                }
                toks = tokens(&lines.join("\n"));
            }
        }
    }
    toks.concat()
}

/// Total declared elements of `f`'s values (saturating; None on overflow).
pub fn declared_elements(f: &Function) -> Option<usize> {
    let mut total: usize = 0;
    for i in 0..f.num_values() {
        let ty = f.try_ty(tenferro_ir::Value::from_index(i))?;
        total = total.checked_add(checked_numel(&ty.shape)?)?;
    }
    for inst in f.insts() {
        if let Op::Constant(t) = &inst.op {
            total = total.checked_add(t.numel())?;
        }
    }
    Some(total)
}

/// Pushes one text through every stage (see the module documentation). Returns the stage
/// reached, or a failure for a panic.
pub fn check_mutant(text: &str, seed: u64, backends: &Backends) -> Outcome<Stage> {
    let fail = |stage: &str, panic: String| Outcome::Fail {
        class: format!("panic:{stage}"),
        message: panic,
    };
    let f = match catch(|| parse(text)) {
        Err(p) => return fail("parse", p),
        Ok(Err(_)) => return Outcome::Pass(Stage::Parse),
        Ok(Ok(f)) => f,
    };
    let b = backends.get(1, true);
    let registry = ExtensionRegistry::new();
    match catch(|| verify(&f)) {
        Err(p) => return fail("verify", p),
        Ok(Err(_)) => {
            // Unverified IR must be rejected by the backend too (or at least not crash it).
            if let Err(p) = catch(|| b.prepare(&f).map(|_| ())) {
                return fail("prepare-unverified", p);
            }
            return Outcome::Pass(Stage::Verify);
        }
        Ok(Ok(())) => {}
    }
    let mut g = f.clone();
    let pipeline = Pipeline::for_level(OptLevel::O2);
    match catch(|| pipeline.run(&mut g, &mut |_| {})) {
        Err(p) => return fail("passes", p),
        Ok(Err(_)) => return Outcome::Pass(Stage::Compile),
        Ok(Ok(_)) => {}
    }
    let prepared = match catch(|| b.prepare(&g)) {
        Err(p) => return fail("prepare", p),
        Ok(Err(_)) => return Outcome::Pass(Stage::Prepare),
        Ok(Ok(p)) => p,
    };
    let small = |h: &Function| declared_elements(h).is_some_and(|n| n <= MAX_RUN_ELEMENTS);
    if !(small(&f) && small(&g)) {
        return Outcome::Pass(Stage::TooLarge);
    }
    let mut r = Rng::new(seed);
    let inputs: Vec<Tensor> = g
        .param_types()
        .iter()
        .map(|t| random_tensor(&mut r, t, true))
        .collect();
    if let Err(p) = catch(|| b.execute(&prepared, &inputs, &registry).map(|_| ())) {
        return fail("run", p);
    }
    if let Err(p) = catch(|| eval::eval(&f, &inputs).map(|_| ())) {
        return fail("eval", p);
    }
    Outcome::Pass(Stage::Ran)
}
