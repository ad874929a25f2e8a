//! Subscripts (`"ij,jk->ik"`, `"...ij,...jk"`, non-ASCII letters) and integer labels,
//! resolved against the operands' shapes into one [`Resolved`] contraction.

use crate::err;
use tenferro_runtime::Result;

/// A contraction with compact integer labels `0..sizes.len()`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Resolved {
    /// Labels of each operand's axes after dropping `squeeze` axes (may repeat).
    pub inputs: Vec<Vec<usize>>,
    /// Axes (of the original operand) of extent 1 broadcast against a longer ellipsis axis.
    pub squeeze: Vec<Vec<usize>>,
    /// Output labels (may repeat: diagonal embedding).
    pub output: Vec<usize>,
    /// Extent of each label.
    pub sizes: Vec<usize>,
    /// Printable name of each label, for errors and plans.
    pub names: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Tok {
    Char(char),
    Ell(usize), // ellipsis axis counted from the right: 0 = last
}

fn parse_term(term: &str, what: &str) -> Result<(Vec<char>, Option<usize>)> {
    let mut chars = Vec::new();
    let mut ell = None;
    let mut it = term.char_indices().peekable();
    while let Some((_, c)) = it.next() {
        if c == '.' {
            let ok = matches!(it.next(), Some((_, '.'))) && matches!(it.next(), Some((_, '.')));
            if !ok || ell.is_some() {
                return Err(err(format!(
                    "{what} `{term}`: `.` must appear only as one `...` per term"
                )));
            }
            ell = Some(chars.len());
        } else if c.is_whitespace() {
        } else if !(c.is_ascii_punctuation() || c.is_control()) {
            chars.push(c);
        } else {
            return Err(err(format!(
                "{what} `{term}`: `{c}` is not an index letter (any character but ASCII punctuation, whitespace and controls; `...` for an ellipsis)"
            )));
        }
    }
    Ok((chars, ell))
}

fn tok_name(t: Tok) -> String {
    match t {
        Tok::Char(c) => format!("`{c}`"),
        Tok::Ell(k) => format!("`...`[{k} from the right]"),
    }
}

/// Resolves string subscripts against the operand shapes.
pub(crate) fn resolve_str(subscripts: &str, shapes: &[Vec<usize>]) -> Result<Resolved> {
    let (lhs, rhs) = match subscripts.split_once("->") {
        Some((l, r)) => {
            if r.contains("->") {
                return Err(err(format!("subscripts `{subscripts}` contain `->` twice")));
            }
            (l, Some(r))
        }
        None => (subscripts, None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != shapes.len() {
        return Err(err(format!(
            "subscripts `{subscripts}` have {} input terms but {} operands were given",
            terms.len(),
            shapes.len()
        )));
    }
    let mut ell_rank = 0usize;
    let mut per_op: Vec<Vec<Tok>> = Vec::with_capacity(terms.len());
    for (i, (term, shape)) in terms.iter().zip(shapes).enumerate() {
        let (chars, ell) = parse_term(term, &format!("operand {i} term"))?;
        let rank = shape.len();
        let toks = match ell {
            None => {
                if chars.len() != rank {
                    return Err(err(format!(
                        "operand {i}: term `{}` has {} indices but the operand has rank {rank} (shape {shape:?})",
                        term.trim(),
                        chars.len()
                    )));
                }
                chars.into_iter().map(Tok::Char).collect()
            }
            Some(pos) => {
                if chars.len() > rank {
                    return Err(err(format!(
                        "operand {i}: term `{}` has {} indices besides `...` but the operand has rank {rank} (shape {shape:?})",
                        term.trim(),
                        chars.len()
                    )));
                }
                let e = rank - chars.len();
                ell_rank = ell_rank.max(e);
                let mut t: Vec<Tok> = chars[..pos].iter().map(|&c| Tok::Char(c)).collect();
                t.extend((0..e).rev().map(Tok::Ell));
                t.extend(chars[pos..].iter().map(|&c| Tok::Char(c)));
                t
            }
        };
        per_op.push(toks);
    }
    let ell_toks: Vec<Tok> = (0..ell_rank).rev().map(Tok::Ell).collect();
    let output: Vec<Tok> = match rhs {
        Some(r) => {
            let (chars, ell) = parse_term(r, "output term")?;
            let mut t: Vec<Tok> = Vec::new();
            match ell {
                None => t.extend(chars.iter().map(|&c| Tok::Char(c))),
                Some(pos) => {
                    t.extend(chars[..pos].iter().map(|&c| Tok::Char(c)));
                    t.extend(ell_toks.iter().copied());
                    t.extend(chars[pos..].iter().map(|&c| Tok::Char(c)));
                }
            }
            t
        }
        None => {
            // NumPy: the broadcast `...` axes first, then the letters appearing exactly
            // once over all terms, sorted.
            let mut count: std::collections::BTreeMap<char, usize> = Default::default();
            for t in per_op.iter().flatten() {
                if let Tok::Char(c) = t {
                    *count.entry(*c).or_default() += 1;
                }
            }
            let mut t = ell_toks.clone();
            t.extend(
                count
                    .into_iter()
                    .filter(|&(_, n)| n == 1)
                    .map(|(c, _)| Tok::Char(c)),
            );
            t
        }
    };
    build(per_op, output, shapes, tok_name)
}

/// Resolves integer labels against the operand shapes.
pub(crate) fn resolve_labels(
    inputs: &[&[usize]],
    output: &[usize],
    shapes: &[Vec<usize>],
) -> Result<Resolved> {
    if inputs.len() != shapes.len() {
        return Err(err(format!(
            "{} label lists but {} operands were given",
            inputs.len(),
            shapes.len()
        )));
    }
    for (i, (l, s)) in inputs.iter().zip(shapes).enumerate() {
        if l.len() != s.len() {
            return Err(err(format!(
                "operand {i}: {} labels {l:?} but the operand has rank {} (shape {s:?})",
                l.len(),
                s.len()
            )));
        }
    }
    build(
        inputs.iter().map(|l| l.to_vec()).collect(),
        output.to_vec(),
        shapes,
        |l: usize| format!("label {l}"),
    )
}

fn build<T: Copy + Eq + std::hash::Hash + std::fmt::Debug>(
    per_op: Vec<Vec<T>>,
    output: Vec<T>,
    shapes: &[Vec<usize>],
    name: impl Fn(T) -> String,
) -> Result<Resolved> {
    let mut ids: std::collections::HashMap<T, usize> = Default::default();
    let mut names = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    // (operand, axis) where each label's extent was first seen (extent > 1 preferred).
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for toks in &per_op {
        for &t in toks {
            ids.entry(t).or_insert_with(|| {
                names.push(name(t));
                sizes.push(1);
                seen.push((usize::MAX, 0));
                names.len() - 1
            });
        }
    }
    let is_ell: Vec<bool> = names.iter().map(|n| n.starts_with("`...`")).collect();
    for (i, toks) in per_op.iter().enumerate() {
        for (a, t) in toks.iter().enumerate() {
            let l = ids[t];
            let n = shapes[i][a];
            if seen[l].0 == usize::MAX || (is_ell[l] && sizes[l] == 1) {
                sizes[l] = n;
                seen[l] = (i, a);
            } else if n != sizes[l] && !(is_ell[l] && n == 1) {
                let (j, b) = seen[l];
                return Err(err(format!(
                    "index {} has extent {} in operand {j} (axis {b}) but {n} in operand {i} (axis {a})",
                    names[l], sizes[l]
                )));
            }
        }
    }
    let mut inputs = Vec::new();
    let mut squeeze = Vec::new();
    for toks in &per_op {
        let (i, _) = (inputs.len(), ());
        let mut labels = Vec::new();
        let mut sq = Vec::new();
        for (a, t) in toks.iter().enumerate() {
            let l = ids[t];
            if is_ell[l] && shapes[i][a] == 1 && sizes[l] != 1 {
                sq.push(a);
            } else {
                labels.push(l);
            }
        }
        inputs.push(labels);
        squeeze.push(sq);
    }
    let mut out = Vec::new();
    for t in output {
        match ids.get(&t) {
            Some(&l) => out.push(l),
            None if is_ell_name(&name(t)) => {
                // An ellipsis axis no operand has (cannot happen: rank from operands).
                return Err(err(format!("output index {} is in no operand", name(t))));
            }
            None => {
                return Err(err(format!(
                    "output index {} does not appear in any operand",
                    name(t)
                )))
            }
        }
    }
    Ok(Resolved {
        inputs,
        squeeze,
        output: out,
        sizes,
        names,
    })
}

fn is_ell_name(n: &str) -> bool {
    n.starts_with("`...`")
}
