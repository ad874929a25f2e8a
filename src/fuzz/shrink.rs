//! Shrinking a failure to a small reproducer, and the regression files that keep it.
//!
//! [`shrink_function`] greedily applies the first candidate that still fails, until none
//! does or the budget of checks runs out. Candidates, smallest change first: drop an
//! output; replace every use of an instruction's result by one of its operands, an earlier
//! value or a parameter of the same type, or by a fresh parameter (dead instructions are
//! then removed); drop unused parameters; halve a parameter's extent (types re-inferred).
//! [`shrink_text`] deletes lines, then tokens, of a mutated text.
//!
//! A regression file (`.tfir`) is the reproducer's IR text after a header of `//`
//! comments (which the parser skips): `kind:` (`forward`, `grad` or `mutation`), `seed:`
//! (the input seed) and `failure:` (what failed when it was written).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tenferro_ir::{Function, Op, TensorType, Value};

/// Where a replaced value's uses go.
#[derive(Clone, Copy)]
enum Target {
    /// Another value defined before it.
    Value(Value),
    /// A new parameter of its type.
    Param,
}

/// A copy of `f` with every use of `from` (a single-result instruction's result) replaced
/// by `to`, and that instruction dropped. None if `to` is not defined before `from`.
fn replace(f: &Function, from: Value, to: Target) -> Option<Function> {
    let mut g = Function::new(f.name.clone());
    let mut map: HashMap<Value, Value> = HashMap::new();
    for &p in f.params() {
        map.insert(p, g.add_param(f.ty(p).clone()));
    }
    if let Target::Param = to {
        let np = g.add_param(f.ty(from).clone());
        map.insert(from, np);
    }
    for inst in f.insts() {
        if inst.results.contains(&from) {
            if inst.results.len() != 1 {
                return None;
            }
            if let Target::Value(v) = to {
                let nv = *map.get(&v)?;
                map.insert(from, nv);
            }
            continue;
        }
        let args: Vec<Value> = inst
            .args
            .iter()
            .map(|a| map.get(a).copied())
            .collect::<Option<_>>()?;
        let tys = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
        let res = g.push_unchecked(inst.op.clone(), args, tys);
        for (&o, n) in inst.results.iter().zip(res) {
            map.insert(o, n);
        }
    }
    let outs = f
        .outputs()
        .iter()
        .map(|o| map.get(o).copied())
        .collect::<Option<_>>()?;
    g.set_outputs(outs);
    Some(g)
}

/// A copy of `f` without instructions no output depends on; unused parameters are
/// dropped too when `drop_params`.
fn dce(f: &Function, drop_params: bool) -> Function {
    let mut live: HashSet<Value> = f.outputs().iter().copied().collect();
    let mut keep = vec![false; f.insts().len()];
    for (i, inst) in f.insts().iter().enumerate().rev() {
        if inst.results.iter().any(|r| live.contains(r)) {
            keep[i] = true;
            live.extend(inst.args.iter().copied());
        }
    }
    let mut g = Function::new(f.name.clone());
    let mut map: HashMap<Value, Value> = HashMap::new();
    for &p in f.params() {
        if !drop_params || live.contains(&p) {
            map.insert(p, g.add_param(f.ty(p).clone()));
        }
    }
    for (inst, &k) in f.insts().iter().zip(&keep) {
        if !k {
            continue;
        }
        let args: Vec<Value> = inst
            .args
            .iter()
            .filter_map(|a| map.get(a).copied())
            .collect();
        let tys = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
        let res = g.push_unchecked(inst.op.clone(), args, tys);
        for (&o, n) in inst.results.iter().zip(res) {
            map.insert(o, n);
        }
    }
    g.set_outputs(
        f.outputs()
            .iter()
            .filter_map(|o| map.get(o).copied())
            .collect(),
    );
    g
}

/// A copy of `f` with parameter `p`'s type replaced and every result type re-inferred;
/// None if an instruction no longer type-checks.
fn retype_param(f: &Function, p: usize, ty: TensorType) -> Option<Function> {
    let mut g = Function::new(f.name.clone());
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (i, &q) in f.params().iter().enumerate() {
        let t = if i == p { ty.clone() } else { f.ty(q).clone() };
        map.insert(q, g.add_param(t));
    }
    for inst in f.insts() {
        let args: Vec<Value> = inst
            .args
            .iter()
            .map(|a| map.get(a).copied())
            .collect::<Option<_>>()?;
        let res = g.push(inst.op.clone(), &args).ok()?;
        for (&o, n) in inst.results.iter().zip(res) {
            map.insert(o, n);
        }
    }
    let outs = f
        .outputs()
        .iter()
        .map(|o| map.get(o).copied())
        .collect::<Option<_>>()?;
    g.set_outputs(outs);
    Some(g)
}

/// Every one-step reduction of `f`, smallest change first.
fn candidates(f: &Function) -> Vec<Function> {
    let mut out = Vec::new();
    let outs = f.outputs();
    if outs.len() > 1 {
        for k in 0..outs.len() {
            let mut g = f.clone();
            let mut o = outs.to_vec();
            o.remove(k);
            g.set_outputs(o);
            out.push(dce(&g, false));
        }
    }
    // Later instructions first: removing them shortens the program fastest.
    for (i, inst) in f.insts().iter().enumerate().rev() {
        if inst.results.len() != 1 {
            continue;
        }
        let v = inst.results[0];
        let ty = f.ty(v);
        let mut targets: Vec<Value> = inst
            .args
            .iter()
            .copied()
            .filter(|a| f.ty(*a) == ty)
            .collect();
        targets.extend(f.params().iter().copied().filter(|p| f.ty(*p) == ty));
        targets.extend(
            f.insts()[..i]
                .iter()
                .flat_map(|j| j.results.iter().copied())
                .filter(|w| f.ty(*w) == ty && !matches!(inst.op, Op::Constant(_)))
                .take(4),
        );
        let mut seen = HashSet::new();
        for t in targets {
            if seen.insert(t) {
                if let Some(g) = replace(f, v, Target::Value(t)) {
                    out.push(dce(&g, false));
                }
            }
        }
        if !matches!(inst.op, Op::Constant(_)) {
            if let Some(g) = replace(f, v, Target::Param) {
                out.push(dce(&g, false));
            }
        }
    }
    let trimmed = dce(f, true);
    if trimmed.params().len() < f.params().len() {
        out.push(trimmed);
    }
    for (p, ty) in f.param_types().into_iter().enumerate() {
        for (a, &n) in ty.shape.iter().enumerate() {
            if n > 1 {
                let mut shape = ty.shape.clone();
                shape[a] = n / 2;
                if let Some(g) = retype_param(f, p, TensorType::new(ty.dtype, shape)) {
                    out.push(g);
                }
            }
        }
    }
    out
}

/// Size of a function for shrinking: instructions, then parameter elements.
fn size(f: &Function) -> (usize, usize, usize) {
    let elems = f.param_types().iter().map(|t| t.numel()).sum();
    (f.insts().len(), f.params().len(), elems)
}

/// Greedily reduces `f` while `fails` holds (see the module documentation), calling
/// `fails` at most `budget` times.
pub fn shrink_function(
    f: &Function,
    fails: &mut dyn FnMut(&Function) -> bool,
    budget: usize,
) -> Function {
    let mut cur = f.clone();
    let mut calls = 0;
    'outer: loop {
        for c in candidates(&cur) {
            if size(&c) >= size(&cur) || tenferro_ir::verify(&c).is_err() {
                continue;
            }
            if calls >= budget {
                break 'outer;
            }
            calls += 1;
            if fails(&c) {
                cur = c;
                continue 'outer;
            }
        }
        break;
    }
    cur
}

/// Greedily deletes lines, then tokens (whitespace-separated words), of `text` while
/// `fails` holds, calling it at most `budget` times.
pub fn shrink_text(text: &str, fails: &mut dyn FnMut(&str) -> bool, budget: usize) -> String {
    let mut cur = text.to_string();
    let mut calls = 0;
    for by_line in [true, false] {
        let mut i = 0;
        loop {
            let parts: Vec<&str> = if by_line {
                cur.split('\n').collect()
            } else {
                cur.split(' ').collect()
            };
            if i >= parts.len() || calls >= budget {
                break;
            }
            let mut rest = parts.clone();
            rest.remove(i);
            let cand = rest.join(if by_line { "\n" } else { " " });
            calls += 1;
            if fails(&cand) {
                cur = cand;
            } else {
                i += 1;
            }
        }
    }
    cur
}

/// A regression file's content: the header, then the reproducer.
pub fn regression_text(kind: &str, seed: u64, failure: &str, body: &str) -> String {
    let failure = failure.replace('\n', " ");
    format!("// tenferro fuzz regression\n// kind: {kind}\n// seed: {seed}\n// failure: {failure}\n{body}")
}

/// A regression file's header: `(kind, seed)`.
pub fn parse_header(text: &str) -> Option<(String, u64)> {
    let mut kind = None;
    let mut seed = None;
    for line in text.lines().take(8) {
        if let Some(k) = line.strip_prefix("// kind: ") {
            kind = Some(k.trim().to_string());
        } else if let Some(s) = line.strip_prefix("// seed: ") {
            seed = s.trim().parse().ok();
        }
    }
    Some((kind?, seed?))
}

/// The file name of a reproducer: kind, failure class and a hash of the body.
pub fn regression_name(kind: &str, class: &str, body: &str) -> String {
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let class: String = class
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{kind}-{class}-{:08x}.tfir", h as u32)
}

/// Writes a regression file into `dir` (created if needed); returns its path.
pub fn write_regression(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Every `.tfir` file in `dir`, sorted by name (empty if the directory is missing).
pub fn regression_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "tfir"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
