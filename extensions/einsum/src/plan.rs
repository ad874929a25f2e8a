//! Contraction-order planning (on [`omeco`]) and the layout of every pairwise step.

use crate::err;
use crate::greedy::{greedy, path_costs, Ssa};
use crate::parse::Resolved;
use omeco::{EinCode, ExhaustiveSearch, Initializer, NestedEinsum, TreeSA};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tenferro_ir::DotDims;
use tenferro_runtime::Result;

/// How to choose the contraction order (spelled as `optimize=` of JAX / opt_einsum).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Optimize {
    /// The cheapest of [`Optimize::Greedy`], the exhaustive search (up to
    /// [`AUTO_OPTIMAL_MAX`] operands) and TreeSA, which runs when the best of those costs
    /// more than [`AUTO_TREE_SA_FLOPS`] multiply-adds ([`auto_tree_sa_effort`], space
    /// target [`AUTO_TREE_SA_SC_TARGET_MIN`]) and, briefly, on any network too large for
    /// the exhaustive search (up to [`AUTO_TREE_SA_CHEAP_MAX`] operands). On upstream's
    /// benchmark networks (26–415 operands) this matches or beats upstream's stored
    /// paths; planning then takes 0.03–0.7 s on 2 cores, paid once per (subscripts,
    /// shapes): plans are cached. Every planner is deterministic: one network always gets
    /// the same plan.
    #[default]
    Auto,
    /// opt_einsum's greedy rule (contract the pair that removes the most memory, ties by
    /// operand order), plus seeded thermal runs as in opt_einsum's `random-greedy` when that
    /// plan costs more than [`GREEDY_THERMAL_FLOPS`]: the cheapest of [`GREEDY_RUNS`] runs
    /// is kept. Fast and deterministic.
    Greedy,
    /// Minimum of the total multiply-adds by omeco's exhaustive search over contraction
    /// trees, which only contracts pairs sharing an index; the greedy plan is kept when
    /// cheaper (an outer product first can be). Exponential, for small networks (≤ 128
    /// operands accepted, ~16 practical).
    Optimal,
    /// Same as [`Optimize::Optimal`]: omeco's exhaustive search is a dynamic program over
    /// subsets (the name is kept for opt_einsum users).
    Dp,
    /// omeco's TreeSA: simulated annealing on contraction trees (the stronger search for
    /// large networks), kept only when cheaper than [`Optimize::Greedy`]'s plan.
    /// `ntrials` independent runs (in parallel on rayon), `niters` moves per temperature;
    /// 100 temperature levels. Each trial starts from a random tree seeded by its index,
    /// so the plan is the same in every run.
    TreeSa {
        /// Independent annealing runs.
        ntrials: usize,
        /// Moves per temperature level.
        niters: usize,
    },
    /// An explicit opt_einsum "linear" path: each pair lists positions in the current
    /// operand list; both are removed and their product appended. Operands left over
    /// at the end are contracted left to right.
    Path(Vec<(usize, usize)>),
}

/// Operand count up to which [`Optimize::Auto`] also searches exhaustively: about 150 ms
/// at 14 operands, 1.2 s at 16 (it grows as 3ⁿ). On random networks of 9–14 operands
/// greedy plans alone cost up to 8.5× the exhaustive search's.
pub const AUTO_OPTIMAL_MAX: usize = 14;

/// Greedy runs per plan: the plain one and `GREEDY_RUNS - 1` seeded thermal ones (the
/// cheapest is kept).
pub const GREEDY_RUNS: usize = 16;

/// Multiply-adds of the plain greedy plan up to which no thermal run is tried (planning
/// would cost more than it could save).
pub const GREEDY_THERMAL_FLOPS: f64 = 1e5;

/// Cost (multiply-adds) of the best plan found so far above which [`Optimize::Auto`]
/// also tries TreeSA.
pub const AUTO_TREE_SA_FLOPS: f64 = 1e6;

/// Operand count up to which [`Optimize::Auto`] runs a short TreeSA (2 trials of 20
/// moves per temperature, 15-50 ms on 40-130 operands) on networks above
/// [`AUTO_OPTIMAL_MAX`] operands whose greedy plan is cheap. Greedy plans of such networks
/// can cost several times the annealed ones: 10^5.05 against 10^4.38 flops on a random
/// 3-regular graph of 60 extent-2 tensors, 10^5.29 against 10^4.85 on a binary tree of
/// 128 tensors of extent 8.
pub const AUTO_TREE_SA_CHEAP_MAX: usize = 512;

/// Multiply-adds of the best plan found so far above which [`Optimize::Auto`]'s TreeSA
/// searches longer (see [`auto_tree_sa_effort`]): such a contraction runs for tens of
/// milliseconds or more, and a plan is made once per (subscripts, shapes).
pub const AUTO_TREE_SA_LONG_FLOPS: f64 = 1e9;

/// Space target (log2 elements) of [`Optimize::Auto`]'s TreeSA (omeco's default) on
/// networks up to [`AUTO_TREE_SA_LONG_FLOPS`], and its floor above, where the target is
/// the best plan's own largest intermediate. On upstream's 316-tensor network of extent-2
/// axes (10^7.6 multiply-adds) a target of 2^23 found 20 % fewer multiply-adds with
/// intermediates twice as large, and ran 2x slower.
pub const AUTO_TREE_SA_SC_TARGET_MIN: f64 = 20.0;

/// TreeSA (trials, moves per temperature level) of [`Optimize::Auto`] on a network of
/// `n` operands whose best plan so far costs `flops` multiply-adds:
/// ([`auto_tree_sa_trials`], 20), or at least 4 trials of 50 moves above
/// [`AUTO_TREE_SA_LONG_FLOPS`]. On upstream's 160-operand graphical model
/// (gm_queen5_5_3) the longer search finds 10^9.25 multiply-adds in 0.35 s where the
/// short one found 10^9.38 and upstream's stored path costs 10^9.47.
pub fn auto_tree_sa_effort(n: usize, flops: f64) -> (usize, usize) {
    let trials = auto_tree_sa_trials(n);
    if flops > AUTO_TREE_SA_LONG_FLOPS {
        (trials.max(4), 50)
    } else {
        (trials, 20)
    }
}

/// Seconds one TreeSA trial of `moves` moves per temperature level takes on a network of
/// `n` operands, as [`Optimize::Auto`] estimates it: `n² · (4.2e-7 + 2e-8 · moves)`, a
/// fixed part (the trial's set-up) and a part per move, both quadratic in `n` (measured
/// on MPS norm networks of 400-2000 operands: one trial of 10 moves on 1000 operands takes
/// 0.62 s, Intel Xeon VM).
pub fn tree_sa_trial_seconds(n: usize, moves: usize) -> f64 {
    (n as f64).powi(2) * (4.2e-7 + 2e-8 * moves as f64)
}

/// Planning time (seconds) [`Optimize::Auto`] gives TreeSA on a network whose best plan
/// so far costs `flops` multiply-adds: ten times the contraction's own time at 10^10
/// multiply-adds a second, and at least [`AUTO_TREE_SA_BUDGET_MIN`].
pub fn auto_tree_sa_budget(flops: f64) -> f64 {
    (10.0 * flops / 1e10).max(AUTO_TREE_SA_BUDGET_MIN)
}

/// The least planning time (seconds) [`Optimize::Auto`] gives TreeSA.
pub const AUTO_TREE_SA_BUDGET_MIN: f64 = 0.5;

/// Fewest moves per temperature level worth a TreeSA run: with fewer, [`Optimize::Auto`]
/// keeps the greedy plan.
pub const AUTO_TREE_SA_MIN_MOVES: usize = 5;

/// [`auto_tree_sa_effort`] cut to the planning budget ([`auto_tree_sa_budget`], trials
/// counted one after another by [`tree_sa_trial_seconds`]): first fewer trials (down to
/// one), then fewer moves; `None` when not even [`AUTO_TREE_SA_MIN_MOVES`] moves fit. On
/// an MPS norm of 1000 sites (2000 operands, 10^7.2 multiply-adds, where greedy is
/// already optimal) TreeSA took 4.7 s of planning; it now takes about the budget.
pub fn auto_tree_sa_within_budget(
    n: usize,
    flops: f64,
    (trials, moves): (usize, usize),
) -> Option<(usize, usize)> {
    let budget = auto_tree_sa_budget(flops);
    let fits = |t: usize, m: usize| t as f64 * tree_sa_trial_seconds(n, m) <= budget;
    if fits(trials, moves) {
        return Some((trials, moves));
    }
    if let Some(t) = (1..trials).rev().find(|&t| fits(t, moves)) {
        return Some((t, moves));
    }
    (AUTO_TREE_SA_MIN_MOVES..moves)
        .rev()
        .find(|&m| fits(1, m))
        .map(|m| (1, m))
}

/// TreeSA trials [`Optimize::Auto`] runs on a network of `n` operands: 8 up to 100
/// operands, fewer above (a trial's time grows with `n`), at least 2 (random starts vary:
/// on a 415-operand network one trial reaches 10^8.22 flops, two 10^7.63).
pub fn auto_tree_sa_trials(n: usize) -> usize {
    (800 / n.max(1)).clamp(2, 8)
}

/// A parenthesised contraction order (upstream tenferro's `NestedEinsum`): a leaf is an
/// operand's subscripts, a group `(..)` is contracted left to right after its members.
enum Nest {
    Leaf(usize),
    Group(Vec<Nest>),
}

/// Parses `items` (comma-separated leaves and groups) from `chars[*at..]`, numbering the
/// leaves in order of appearance; stops at `)` or the end.
fn parse_nest(chars: &[char], at: &mut usize, leaves: &mut usize) -> Result<Vec<Nest>> {
    let mut items = Vec::new();
    let skip_space = |at: &mut usize| {
        while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
            *at += 1;
        }
    };
    loop {
        skip_space(at);
        if chars.get(*at) == Some(&'(') {
            *at += 1;
            let inner = parse_nest(chars, at, leaves)?;
            if chars.get(*at) != Some(&')') {
                return Err(err(format!(
                    "nested contraction order: `(` at or before position {} is not closed",
                    *at
                )));
            }
            *at += 1;
            items.push(Nest::Group(inner));
            skip_space(at);
        } else {
            while *at < chars.len() && !matches!(chars[*at], ',' | '(' | ')') {
                *at += 1;
            }
            items.push(Nest::Leaf(*leaves));
            *leaves += 1;
        }
        match chars.get(*at) {
            Some(',') => *at += 1,
            None | Some(')') => return Ok(items),
            Some(c) => {
                return Err(err(format!(
                    "nested contraction order: `{c}` at position {} must follow a `,` or `(`",
                    *at
                )))
            }
        }
    }
}

impl Optimize {
    /// The contraction order written with parentheses, as upstream tenferro's
    /// `EinsumOptimize::Nested(NestedEinsum::parse(..))`: `"(ij,jk),kl->il"` contracts
    /// operands 0 and 1 first, then the result with operand 2; members of a group (and the
    /// top level) are contracted left to right. Use it with the same subscripts without
    /// parentheses (`"ij,jk,kl->il"`), or pass the parenthesized subscripts to
    /// [`crate::einsum`] directly. Returns the equivalent [`Optimize::Path`]; an
    /// unbalanced or misplaced parenthesis is an error naming einsum.
    pub fn nested(expr: &str) -> Result<Optimize> {
        let lhs = expr.split("->").next().unwrap_or("");
        let chars: Vec<char> = lhs.chars().collect();
        let (mut at, mut leaves) = (0, 0);
        let top = parse_nest(&chars, &mut at, &mut leaves)?;
        if at != chars.len() {
            return Err(err(format!(
                "nested contraction order `{expr}`: unmatched `)` at position {at}"
            )));
        }
        // operands by id (leaves 0..n, products n..) and the current operand list
        let mut cur: Vec<usize> = (0..leaves).collect();
        let mut next = leaves;
        let mut path = Vec::new();
        fn emit(
            n: &Nest,
            cur: &mut Vec<usize>,
            next: &mut usize,
            path: &mut Vec<(usize, usize)>,
        ) -> usize {
            match n {
                Nest::Leaf(i) => *i,
                Nest::Group(items) => {
                    let ids: Vec<usize> = items.iter().map(|m| emit(m, cur, next, path)).collect();
                    ids.into_iter()
                        .reduce(|a, b| {
                            let pos = |id: usize, cur: &[usize]| {
                                cur.iter().position(|&c| c == id).unwrap_or(0)
                            };
                            let (pa, pb) = (pos(a, cur), pos(b, cur));
                            path.push((pa.min(pb), pa.max(pb)));
                            cur.retain(|&c| c != a && c != b);
                            cur.push(*next);
                            *next += 1;
                            *next - 1
                        })
                        .unwrap_or(0)
                }
            }
        }
        emit(&Nest::Group(top), &mut cur, &mut next, &mut path);
        Ok(Optimize::Path(path))
    }

    /// A TreeSA setting that is quick (one trial, 20 moves per level).
    pub fn tree_sa_fast() -> Optimize {
        Optimize::TreeSa {
            ntrials: 1,
            niters: 20,
        }
    }
}

/// Options of [`crate::einsum_with`] and [`crate::plan_einsum`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct EinsumOptions {
    /// The planner.
    pub optimize: Optimize,
    /// Largest intermediate allowed, in elements (as opt_einsum's `memory_limit`). When the
    /// chosen plan exceeds it, TreeSA is asked for a plan under the limit; if there is none,
    /// planning fails with an error giving the smallest size found (no slicing).
    pub memory_limit: Option<usize>,
}

/// The per-operand work before any contraction: drop broadcast size-1 `...` axes, take
/// diagonals of repeated indices, sum indices found in this operand only.
#[derive(Clone, Debug)]
pub(crate) struct Prep {
    /// Axes of extent 1 dropped (a reshape).
    pub squeeze: Vec<usize>,
    /// `diagonal(0, a, b)` applied in turn (each appends the diagonal as the last axis).
    pub diagonals: Vec<(usize, usize)>,
    /// Axes summed after the diagonals.
    pub sum_axes: Vec<usize>,
    /// Labels of the prepared operand (distinct).
    pub labels: Vec<usize>,
}

/// One pairwise contraction.
#[derive(Clone, Debug)]
pub struct Step {
    /// SSA ids of the operands (inputs are `0..n`, step `k` makes `n + k`); `lhs` is the
    /// dot_general's left operand.
    pub lhs: usize,
    /// The right operand.
    pub rhs: usize,
    /// Axes of lhs / rhs summed before the product (indices in neither the other operand
    /// nor anything later).
    pub(crate) lhs_sum: Vec<usize>,
    pub(crate) rhs_sum: Vec<usize>,
    pub(crate) dims: DotDims,
    /// Labels of the result, in its axis order (batch, lhs free, rhs free).
    pub labels: Vec<usize>,
    /// Multiply-adds (product of the extents of all indices of the pair).
    pub flops: f64,
    /// Elements of the result.
    pub size: f64,
    /// Operands (0, 1 or 2) the CPU GEMM packs (copies) because their axis groups are
    /// not single strided runs, and that no explicit transpose ([`Step::lhs_perm`],
    /// [`Step::rhs_perm`]) lays out for it.
    pub packs: usize,
    /// Transpose of lhs (after its sums) before the product, into a layout the GEMM reads
    /// in place; `dims` refers to the transposed operand.
    pub lhs_perm: Option<Vec<usize>>,
    /// The same for rhs.
    pub rhs_perm: Option<Vec<usize>>,
}

/// A planned einsum: the order, the layout of every step and its cost. Printable.
#[derive(Clone, Debug)]
pub struct EinsumPlan {
    pub(crate) resolved: Resolved,
    pub(crate) prep: Vec<Prep>,
    /// The pairwise steps in execution order.
    pub steps: Vec<Step>,
    /// The same order as an opt_einsum linear path.
    pub path: Vec<(usize, usize)>,
    /// Total multiply-adds of the steps (the omeco / OMEinsum convention).
    pub flops: f64,
    /// opt_einsum's count: a step that sums an index costs twice its multiply-adds.
    pub flops_opt_einsum: f64,
    /// The largest intermediate (step result), in elements.
    pub largest_intermediate: f64,
    /// Copies that reorder data: GEMM operand packs plus explicit `transpose`s (the final
    /// one into the output order, when needed). An upper bound for the CPU backend, which
    /// folds a transpose of a product's result into the product (for a batched product,
    /// into the copy out of its `[m, n, batch]` scratch, or removes that copy when the
    /// next product reads the scratch layout in place).
    pub transposes: usize,
    /// Whether a final transpose into the output order is needed.
    pub(crate) final_perm: Option<Vec<usize>>,
    /// The planner that produced the order.
    pub optimizer: String,
    /// Time spent planning.
    pub planning_time: Duration,
}

impl EinsumPlan {
    /// `log10` of [`EinsumPlan::flops`] (0 for no steps).
    pub fn log10_flops(&self) -> f64 {
        self.flops.max(1.0).log10()
    }
    /// `log2` of [`EinsumPlan::largest_intermediate`].
    pub fn log2_size(&self) -> f64 {
        self.largest_intermediate.max(1.0).log2()
    }
    fn label_str(&self, ls: &[usize]) -> String {
        let names = &self.resolved.names;
        let short = ls.iter().all(|&l| names[l].chars().count() == 3);
        if short {
            ls.iter()
                .map(|&l| names[l].chars().nth(1).unwrap())
                .collect()
        } else {
            let v: Vec<&str> = ls.iter().map(|&l| names[l].as_str()).collect();
            format!("[{}]", v.join(", "))
        }
    }
}

impl fmt::Display for EinsumPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.prep.len();
        writeln!(
            f,
            "einsum plan ({}): {} operands, {} steps, flops 10^{:.4} (opt_einsum 10^{:.4}), largest intermediate {} (2^{:.2}), transposes {}, planned in {:.3?}",
            self.optimizer,
            n,
            self.steps.len(),
            self.log10_flops(),
            self.flops_opt_einsum.max(1.0).log10(),
            self.largest_intermediate,
            self.log2_size(),
            self.transposes,
            self.planning_time
        )?;
        for (k, p) in self.prep.iter().enumerate() {
            if !p.diagonals.is_empty() || !p.sum_axes.is_empty() || !p.squeeze.is_empty() {
                writeln!(
                    f,
                    "  prep #{k}: squeeze {:?}, diagonals {:?}, sum axes {:?} -> {}",
                    p.squeeze,
                    p.diagonals,
                    p.sum_axes,
                    self.label_str(&p.labels)
                )?;
            }
        }
        let mut labels: Vec<Vec<usize>> = self.prep.iter().map(|p| p.labels.clone()).collect();
        for (k, s) in self.steps.iter().enumerate() {
            writeln!(
                f,
                "  step {k}: #{} {} x #{} {} -> #{} {}  flops {:.3e} size {:.3e} packs {}",
                s.lhs,
                self.label_str(&labels[s.lhs]),
                s.rhs,
                self.label_str(&labels[s.rhs]),
                n + k,
                self.label_str(&s.labels),
                s.flops,
                s.size,
                s.packs
            )?;
            for (side, perm) in [("lhs", &s.lhs_perm), ("rhs", &s.rhs_perm)] {
                if let Some(p) = perm {
                    writeln!(f, "    {side} transposed by {p:?}")?;
                }
            }
            labels.push(s.labels.clone());
        }
        write!(f, "  path {:?}", self.path)
    }
}

/// Plans a resolved contraction.
pub(crate) fn plan(r: &Resolved, opts: &EinsumOptions) -> Result<EinsumPlan> {
    let t0 = Instant::now();
    let n = r.inputs.len();
    if n == 0 {
        return Err(err("einsum needs at least one operand"));
    }
    let mut out_u: Vec<usize> = Vec::new();
    for &l in &r.output {
        if !out_u.contains(&l) {
            out_u.push(l);
        }
    }
    // Occurrence count of each label over operands (a repeat inside one counts once).
    let mut ops_with: Vec<usize> = vec![0; r.sizes.len()];
    for labels in &r.inputs {
        let set: HashSet<usize> = labels.iter().copied().collect();
        for l in set {
            ops_with[l] += 1;
        }
    }
    let prep: Vec<Prep> = r
        .inputs
        .iter()
        .zip(&r.squeeze)
        .map(|(labels, sq)| {
            let mut ls = labels.clone();
            let mut diagonals = Vec::new();
            'outer: loop {
                for a in 0..ls.len() {
                    for b in a + 1..ls.len() {
                        if ls[a] == ls[b] {
                            diagonals.push((a, b));
                            let l = ls[a];
                            ls.remove(b);
                            ls.remove(a);
                            ls.push(l);
                            continue 'outer;
                        }
                    }
                }
                break;
            }
            let sum_axes: Vec<usize> = (0..ls.len())
                .filter(|&a| ops_with[ls[a]] == 1 && !out_u.contains(&ls[a]))
                .collect();
            let labels: Vec<usize> = (0..ls.len())
                .filter(|a| !sum_axes.contains(a))
                .map(|a| ls[a])
                .collect();
            Prep {
                squeeze: sq.clone(),
                diagonals,
                sum_axes,
                labels,
            }
        })
        .collect();
    let ixs: Vec<Vec<usize>> = prep.iter().map(|p| p.labels.clone()).collect();
    let sizes = &r.sizes;
    let (mut ssa, mut optimizer, tie) = order(&ixs, &out_u, sizes, &opts.optimize)?;
    let mut p = layout(r, prep.clone(), &ssa, &out_u);
    // Of two plans of the same cost, the one with fewer copies (GEMM packs and
    // transposes): an MPS inner product of 200 sites has greedy and TreeSA plans of the
    // same multiply-adds with 194 and 107 copies.
    if let Some(t) = tie {
        let q = layout(r, prep.clone(), &t, &out_u);
        if q.transposes < p.transposes {
            ssa = t;
            optimizer = "auto: treesa (fewer copies at the same cost)".into();
            p = q;
        }
    }
    if let Some(limit) = opts.memory_limit {
        if p.largest_intermediate > limit as f64 {
            let target = (limit.max(1) as f64).log2();
            let sa = seeded_tree_sa(TreeSA::fast().with_ntrials(2).with_sc_target(target));
            if let Some(t) = run_omeco(&ixs, &out_u, sizes, |c, s| omeco::optimize_code(c, s, &sa))
            {
                let q = layout(r, prep.clone(), &t, &out_u);
                if q.largest_intermediate < p.largest_intermediate {
                    ssa = t;
                    optimizer = format!("{optimizer}, then treesa(sc_target=2^{target:.2})");
                    p = q;
                }
            }
            if p.largest_intermediate > limit as f64 {
                return Err(err(format!(
                    "memory_limit {limit} elements exceeded: the smallest largest intermediate found is {} elements (2^{:.2}); slicing is not implemented",
                    p.largest_intermediate,
                    p.log2_size()
                )));
            }
        }
    }
    let _ = ssa;
    p.optimizer = optimizer;
    p.planning_time = t0.elapsed();
    Ok(p)
}

/// `sa` started from random trees (omeco seeds each trial by its index) instead of
/// omeco's greedy trees, whose ties follow hash order: the search is then reproducible.
fn seeded_tree_sa(mut sa: TreeSA) -> TreeSA {
    sa.initializer = Initializer::Random;
    sa
}

fn run_omeco(
    ixs: &[Vec<usize>],
    out: &[usize],
    sizes: &[usize],
    f: impl FnOnce(&EinCode<usize>, &HashMap<usize, usize>) -> Option<NestedEinsum<usize>>,
) -> Option<Ssa> {
    let code = EinCode::new(ixs.to_vec(), out.to_vec());
    let dict: HashMap<usize, usize> = sizes.iter().copied().enumerate().collect();
    // omeco can panic (an `unwrap` on a NaN score in TreeSA on networks of thousands of
    // operands): no order from it then, and the caller keeps its other plans.
    let tree = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&code, &dict)))
        .ok()
        .flatten()?;
    let n = ixs.len();
    let mut steps = Vec::new();
    fn walk(t: &NestedEinsum<usize>, n: usize, steps: &mut Ssa) -> Option<usize> {
        match t {
            NestedEinsum::Leaf { tensor_index } => Some(*tensor_index),
            NestedEinsum::Node { args, .. } => {
                let mut acc: Option<usize> = None;
                for a in args {
                    let id = walk(a, n, steps)?;
                    acc = Some(match acc {
                        None => id,
                        Some(prev) => {
                            steps.push((prev, id));
                            n + steps.len() - 1
                        }
                    });
                }
                acc
            }
        }
    }
    walk(&tree, n, &mut steps)?;
    // Every operand must appear exactly once.
    let mut seen = vec![false; n + steps.len()];
    for &(a, b) in &steps {
        if a >= seen.len() || b >= seen.len() || seen[a] || seen[b] {
            return None;
        }
        seen[a] = true;
        seen[b] = true;
    }
    if n > 1 && seen[..n].iter().any(|s| !s) {
        return None;
    }
    Some(steps)
}

/// Left-to-right chain.
fn chain(n: usize) -> Ssa {
    (1..n)
        .map(|k| (if k == 1 { 0 } else { n + k - 2 }, k))
        .collect()
}

/// Multiply-adds of an SSA order (for choosing between planners).
fn cost(ixs: &[Vec<usize>], out: &[usize], sizes: &[usize], ssa: &Ssa) -> f64 {
    let (flops, _) = path_costs(ixs, out, sizes, ssa);
    flops
}

fn linear_to_ssa(n: usize, path: &[(usize, usize)]) -> Result<Ssa> {
    let mut cur: Vec<usize> = (0..n).collect();
    let mut ssa = Vec::new();
    for (k, &(i, j)) in path.iter().enumerate() {
        if i == j || i >= cur.len() || j >= cur.len() {
            return Err(err(format!(
                "path step {k} ({i}, {j}) is invalid: {} operands are left at that point",
                cur.len()
            )));
        }
        let (a, b) = (cur[i], cur[j]);
        let (hi, lo) = (i.max(j), i.min(j));
        cur.remove(hi);
        cur.remove(lo);
        ssa.push((a, b));
        cur.push(n + ssa.len() - 1);
    }
    while cur.len() > 1 {
        let a = cur.remove(0);
        let b = cur.remove(0);
        ssa.push((a, b));
        cur.insert(0, n + ssa.len() - 1);
    }
    Ok(ssa)
}

pub(crate) fn ssa_to_linear(n: usize, ssa: &Ssa) -> Vec<(usize, usize)> {
    let mut cur: Vec<usize> = (0..n).collect();
    let mut out = Vec::new();
    for (k, &(a, b)) in ssa.iter().enumerate() {
        let i = cur.iter().position(|&x| x == a).unwrap_or(0);
        let j = cur.iter().position(|&x| x == b).unwrap_or(0);
        out.push((i.min(j), i.max(j)));
        let (hi, lo) = (i.max(j), i.min(j));
        cur.remove(hi);
        cur.remove(lo);
        cur.push(n + k);
    }
    out
}

/// The contraction order `o` asks for, its planner's name, and (Auto only) a plan of the
/// same cost that TreeSA found beside the one kept, for the caller to choose between by
/// their copies.
fn order(
    ixs: &[Vec<usize>],
    out: &[usize],
    sizes: &[usize],
    o: &Optimize,
) -> Result<(Ssa, String, Option<Ssa>)> {
    let n = ixs.len();
    if let Optimize::Path(p) = o {
        return Ok((linear_to_ssa(n, p)?, "path".into(), None));
    }
    if n <= 2 {
        return Ok((chain(n), "trivial".into(), None));
    }
    let mut tie = None;
    // Each plan with its cost (multiply-adds) and name; the cheapest is kept, the first on
    // ties, so the plan depends only on the network.
    type Found = (f64, Ssa, &'static str);
    let costed = |s: Ssa, name: &'static str| -> Found { (cost(ixs, out, sizes, &s), s, name) };
    let cheaper = |best: Found, x: Found| if x.0 < best.0 { x } else { best };
    // The plain greedy run, then (for costly plans) seeded thermal runs.
    let greedy = |name: &'static str| -> Found {
        let plain = costed(greedy(ixs, out, sizes, None), name);
        if plain.0 <= GREEDY_THERMAL_FLOPS {
            return plain;
        }
        (1..GREEDY_RUNS as u64)
            .map(|k| costed(greedy(ixs, out, sizes, Some(k)), name))
            .fold(plain, cheaper)
    };
    let optimal = || {
        run_omeco(ixs, out, sizes, |c, s| {
            omeco::optimize_code(c, s, &ExhaustiveSearch::default())
        })
    };
    let tree_sa = |ntrials: usize, niters: usize, sc_target: Option<f64>| {
        let mut sa = TreeSA::fast()
            .with_ntrials(ntrials.max(1))
            .with_niters(niters.max(1));
        if let Some(t) = sc_target {
            sa = sa.with_sc_target(t);
        }
        let sa = seeded_tree_sa(sa);
        run_omeco(ixs, out, sizes, |c, s| omeco::optimize_code(c, s, &sa))
    };
    let (_, ssa, name) = match o {
        Optimize::Greedy => greedy("greedy"),
        Optimize::Optimal | Optimize::Dp => match optimal() {
            Some(s) => cheaper(costed(s, "optimal"), greedy("greedy")),
            None => greedy("greedy (exhaustive search declined)"),
        },
        Optimize::TreeSa { ntrials, niters } => {
            let g = greedy("greedy (treesa found nothing cheaper)");
            match tree_sa(*ntrials, *niters, None) {
                // TreeSA on ties.
                Some(s) => cheaper(costed(s, "treesa"), g),
                None => g,
            }
        }
        Optimize::Path(_) => unreachable!("handled above"),
        Optimize::Auto => {
            let mut best = greedy("auto: greedy");
            if n <= AUTO_OPTIMAL_MAX {
                if let Some(s) = optimal() {
                    best = cheaper(best, costed(s, "auto: optimal"));
                }
            }
            let too_large = n > AUTO_OPTIMAL_MAX && n <= AUTO_TREE_SA_CHEAP_MAX;
            if best.0 > AUTO_TREE_SA_FLOPS || too_large {
                let wanted = if best.0 > AUTO_TREE_SA_FLOPS {
                    auto_tree_sa_effort(n, best.0)
                } else {
                    (auto_tree_sa_trials(n).min(2), 20)
                };
                let effort = auto_tree_sa_within_budget(n, best.0, wanted);
                // On costly networks space is penalised only beyond the best plan's
                // largest intermediate: the search minimises multiply-adds without growing
                // the memory the plan needs. On cheaper ones, whose time goes to moving
                // data more than to multiply-adds, intermediates above 2^20 elements are.
                let sc_target = if best.0 > AUTO_TREE_SA_LONG_FLOPS {
                    let (_, big) = path_costs(ixs, out, sizes, &best.1);
                    big.max(1.0).log2().max(AUTO_TREE_SA_SC_TARGET_MIN)
                } else {
                    AUTO_TREE_SA_SC_TARGET_MIN
                };
                if let Some((trials, iters)) = effort {
                    if let Some(s) = tree_sa(trials, iters, Some(sc_target)) {
                        let x = costed(s, "auto: treesa");
                        if x.0 == best.0 && x.1 != best.1 {
                            tie = Some(x.1);
                        } else {
                            best = cheaper(best, x);
                        }
                    }
                }
            }
            best
        }
    };
    Ok((ssa, name.into(), tie))
}

/// The stride of `axes` (in order) flattened column-major in a dense tensor of `shape`, if
/// they form one strided run (axes of extent 1 skipped); `Some(0)` when they hold at most
/// one element.
fn run_stride(shape: &[usize], axes: &[usize]) -> Option<usize> {
    let mut strides = vec![1usize; shape.len()];
    for a in 1..shape.len() {
        strides[a] = strides[a - 1] * shape[a - 1];
    }
    let big: Vec<usize> = axes.iter().copied().filter(|&a| shape[a] != 1).collect();
    if big.is_empty() {
        return Some(0);
    }
    for w in big.windows(2) {
        if strides[w[1]] != strides[w[0]] * shape[w[0]] {
            return None;
        }
    }
    Some(strides[big[0]])
}

/// Whether the CPU GEMM reads an operand in place: its `rows` axes and its `cols` axes
/// (each in the given order) are single strided runs, one of stride 1 (mirrors
/// `tenferro-cpu`'s dot kernel).
fn in_place(shape: &[usize], rows: &[usize], cols: &[usize]) -> bool {
    let size = |axes: &[usize]| axes.iter().map(|&a| shape[a]).product::<usize>();
    match (run_stride(shape, rows), run_stride(shape, cols)) {
        (Some(rs), Some(cs)) => {
            let rs = if size(rows) <= 1 { 1 } else { rs };
            let cs = if size(cols) <= 1 { 1 } else { cs };
            rs == 1 || cs == 1
        }
        _ => false,
    }
}

/// Smallest batch for which a product whose batch axes are both operands' fastest axes
/// is left in that layout: `tenferro-cpu` runs such products on batch lanes (one 512-bit
/// vector of 16 f32 or 8 f64 batch elements) with no copy at all. Other dtypes, and CPUs
/// without AVX-512, pack the operands inside the GEMM instead.
pub const LANE_BATCH_MIN: usize = 16;

/// Largest ratio of multiply-adds to matrix elements, `m·n·k / (m·k + k·n + m·n)` per
/// batch element, for which such a product is left for the lanes (mirrors
/// `tenferro-cpu`): larger matrices run faster as GEMMs on transposed operands.
pub const LANE_MAX_FLOPS_PER_ELEMENT: f64 = 96.0;

/// Whether batch lanes pay for an `m × k` by `k × n` product per batch element.
fn lanes_pay(m: usize, n: usize, k: usize) -> bool {
    let (m, n, k) = (m as f64, n as f64, k as f64);
    m * n * k <= LANE_MAX_FLOPS_PER_ELEMENT * (m * k + k * n + m * n)
}

/// Whether `batch` (in order) are the fastest axes of an operand of `shape`, holding at
/// least [`LANE_BATCH_MIN`] elements.
fn lane_batched(shape: &[usize], batch: &[usize]) -> bool {
    run_stride(shape, batch) == Some(1)
        && batch.iter().map(|&a| shape[a]).product::<usize>() >= LANE_BATCH_MIN
}

/// Operands smaller than this many elements keep the GEMM's own pack: an explicit
/// transpose costs an instruction and a buffer of the program, which only pays off once
/// the copy itself dominates.
pub const EXPLICIT_TRANSPOSE_MIN_ELEMENTS: usize = 4096;

/// Elements in the leading block that a copy into axis order `perm` reorders: the axes up
/// to the last one that moves. A copy whose block fits in cache reads every cache line
/// once; the same copy over a larger block re-reads lines from further away.
fn reordered_block(shape: &[usize], perm: &[usize]) -> usize {
    let last = (0..perm.len()).rev().find(|&k| perm[k] != k);
    last.map_or(0, |l| perm[..=l].iter().map(|&a| shape[a]).product())
}

/// The transpose of a batched operand of `shape` (read by the GEMM as `rows × cols`
/// matrices, one per index of `batch`) that replaces the GEMM's pack, or `None` to keep
/// the pack. The pack copies the operand into `[rows, cols, batch]` order: a batch axis
/// interleaved with the matrix axes moves behind all of them, which reorders the whole
/// operand at once. The layouts tried put the row axes, the column axes and the batch
/// axes each in one block (the groups keep their order), rows before or after columns,
/// batch axes between them or last, and must be read in place; the one with the smallest
/// [`reordered_block`] is taken when that block is smaller than the pack's. `None` for
/// operands without batch axes (both copies are then the same gather, and the pack costs
/// no instruction), operands read in place, and operands of fewer than
/// [`EXPLICIT_TRANSPOSE_MIN_ELEMENTS`] elements.
fn unpacked_layout(
    shape: &[usize],
    rows: &[usize],
    cols: &[usize],
    batch: &[usize],
) -> Option<Vec<usize>> {
    if batch.iter().all(|&a| shape[a] == 1)
        || in_place(shape, rows, cols)
        || shape.iter().product::<usize>() < EXPLICIT_TRANSPOSE_MIN_ELEMENTS
    {
        return None;
    }
    let cat = |g: [&[usize]; 3]| -> Vec<usize> { g.concat() };
    let orders = [
        cat([rows, batch, cols]),
        cat([cols, batch, rows]),
        cat([rows, cols, batch]),
        cat([cols, rows, batch]),
    ];
    let pack = reordered_block(shape, &cat([rows, cols, batch]));
    orders
        .into_iter()
        .filter(|p| reordered_block(shape, p) < pack)
        .filter(|p| {
            let moved: Vec<usize> = p.iter().map(|&a| shape[a]).collect();
            in_place(&moved, &positions(p, rows), &positions(p, cols))
        })
        .min_by_key(|p| reordered_block(shape, p))
}

/// Where each of `axes` sits in the axis order `perm` (every axis is in `perm`).
fn positions(perm: &[usize], axes: &[usize]) -> Vec<usize> {
    axes.iter()
        .map(|a| perm.iter().position(|b| b == a).unwrap_or(0))
        .collect()
}

/// Replaces the GEMM packs of `step` (on operands of shapes `lhs`, `rhs` as the product
/// sees them) by explicit transposes, rewriting its dimension numbers for the transposed
/// operands. The product's result is unchanged: each operand's free axes keep their order.
fn unpack(step: &mut Step, lhs: &[usize], rhs: &[usize]) {
    let free = |rank: usize, batch: &[usize], contract: &[usize]| -> Vec<usize> {
        (0..rank)
            .filter(|a| !batch.contains(a) && !contract.contains(a))
            .collect()
    };
    let d = &step.dims;
    let lf = free(lhs.len(), &d.lhs_batch, &d.lhs_contract);
    let rf = free(rhs.len(), &d.rhs_batch, &d.rhs_contract);
    let lp = unpacked_layout(lhs, &lf, &d.lhs_contract, &d.lhs_batch);
    let rp = unpacked_layout(rhs, &d.rhs_contract, &rf, &d.rhs_batch);
    if let Some(p) = &lp {
        step.dims.lhs_contract = positions(p, &step.dims.lhs_contract);
        step.dims.lhs_batch = positions(p, &step.dims.lhs_batch);
    }
    if let Some(p) = &rp {
        step.dims.rhs_contract = positions(p, &step.dims.rhs_contract);
        step.dims.rhs_batch = positions(p, &step.dims.rhs_batch);
    }
    step.packs -= usize::from(lp.is_some()) + usize::from(rp.is_some());
    step.lhs_perm = lp;
    step.rhs_perm = rp;
}

/// The candidate layouts of one pairwise step on operands with label orders `la`, `lb`
/// (ids `a`, `b`), given the labels needed after it: which side is the dot_general's lhs,
/// the contracted axes in lhs or rhs order, the batch axes in lhs or rhs order.
fn candidates(
    (a, la): (usize, &[usize]),
    (b, lb): (usize, &[usize]),
    later: &dyn Fn(usize) -> bool,
    sizes: &[usize],
) -> Vec<Step> {
    let mut all = la.to_vec();
    all.extend(lb.iter().filter(|l| !la.contains(l)));
    let step_flops: f64 = all.iter().map(|&l| sizes[l] as f64).product();
    // Sum what only one side has and nothing later needs.
    let sum_of = |x: &[usize], y: &[usize]| -> Vec<usize> {
        (0..x.len())
            .filter(|&i| !y.contains(&x[i]) && !later(x[i]))
            .collect()
    };
    let (sa, sb) = (sum_of(la, lb), sum_of(lb, la));
    let ka: Vec<usize> = (0..la.len())
        .filter(|i| !sa.contains(i))
        .map(|i| la[i])
        .collect();
    let kb: Vec<usize> = (0..lb.len())
        .filter(|i| !sb.contains(i))
        .map(|i| lb[i])
        .collect();
    let contract: Vec<usize> = ka
        .iter()
        .copied()
        .filter(|&l| kb.contains(&l) && !later(l))
        .collect();
    let mut out = Vec::new();
    for swap in [false, true] {
        let (x, y, xs, ys, xid, yid) = if swap {
            (&kb, &ka, &sb, &sa, b, a)
        } else {
            (&ka, &kb, &sa, &sb, a, b)
        };
        let pick = |v: &[usize], keep: &dyn Fn(usize) -> bool| -> Vec<usize> {
            v.iter().copied().filter(|&l| keep(l)).collect()
        };
        let is_c = |l: usize| contract.contains(&l);
        let is_b = |l: usize| !contract.contains(&l) && x.contains(&l) && y.contains(&l);
        let orders_c = [pick(x, &is_c), pick(y, &is_c)];
        let orders_b = [pick(x, &is_b), pick(y, &is_b)];
        for (ci, c) in orders_c.iter().enumerate() {
            for (bi, batch) in orders_b.iter().enumerate() {
                if (ci == 1 && orders_c[0] == orders_c[1])
                    || (bi == 1 && orders_b[0] == orders_b[1])
                {
                    continue;
                }
                let pos = |v: &[usize], l: usize| v.iter().position(|&m| m == l).unwrap();
                let shape = |v: &[usize]| v.iter().map(|&l| sizes[l]).collect::<Vec<_>>();
                let xfree: Vec<usize> = (0..x.len()).filter(|&i| !y.contains(&x[i])).collect();
                let yfree: Vec<usize> = (0..y.len()).filter(|&i| !x.contains(&y[i])).collect();
                let xc: Vec<usize> = c.iter().map(|&l| pos(x, l)).collect();
                let yc: Vec<usize> = c.iter().map(|&l| pos(y, l)).collect();
                let xb: Vec<usize> = batch.iter().map(|&l| pos(x, l)).collect();
                let yb: Vec<usize> = batch.iter().map(|&l| pos(y, l)).collect();
                let size = |v: &[usize], at: &[usize]| at.iter().map(|&i| sizes[v[i]]).product();
                let lanes = lane_batched(&shape(x), &xb)
                    && lane_batched(&shape(y), &yb)
                    && lanes_pay(size(x, &xfree), size(y, &yfree), size(x, &xc));
                let packs = if lanes {
                    0
                } else {
                    usize::from(!in_place(&shape(x), &xfree, &xc))
                        + usize::from(!in_place(&shape(y), &yc, &yfree))
                };
                let mut res = batch.clone();
                res.extend(xfree.iter().map(|&i| x[i]));
                res.extend(yfree.iter().map(|&i| y[i]));
                out.push(Step {
                    lhs: xid,
                    rhs: yid,
                    lhs_sum: xs.clone(),
                    rhs_sum: ys.clone(),
                    dims: DotDims {
                        lhs_contract: xc,
                        rhs_contract: yc,
                        lhs_batch: xb,
                        rhs_batch: yb,
                    },
                    size: res.iter().map(|&l| sizes[l] as f64).product(),
                    labels: res,
                    flops: step_flops,
                    packs,
                    lhs_perm: None,
                    rhs_perm: None,
                });
            }
        }
    }
    out
}

/// Chooses every step's operand roles and axis orders, and costs the plan. Each step takes
/// the candidate layout with the fewest GEMM packs, counting also the packs of the step
/// that consumes its result (when that step's other operand is already laid out) or, for
/// the last step, the final transpose into the output order.
fn layout(r: &Resolved, prep: Vec<Prep>, ssa: &Ssa, out_u: &[usize]) -> EinsumPlan {
    let n = prep.len();
    let sizes = &r.sizes;
    // Label sets (layout-independent): a step keeps the labels of its operands that the
    // output or a live operand still holds (`holders` counts the live operands per label,
    // so this is linear in the network). Of the labels of a step's operands, those needed
    // after it are exactly those of its result.
    let mut sets: Vec<Vec<usize>> = prep.iter().map(|p| p.labels.clone()).collect();
    let mut in_out = vec![false; sizes.len()];
    for &l in out_u {
        in_out[l] = true;
    }
    let mut holders = vec![0usize; sizes.len()];
    for p in &prep {
        for &l in &p.labels {
            holders[l] += 1;
        }
    }
    let mut consumer: Vec<Option<usize>> = vec![None; n + ssa.len()];
    for (k, &(a, b)) in ssa.iter().enumerate() {
        consumer[a] = Some(k);
        consumer[b] = Some(k);
        for &l in sets[a].iter().chain(&sets[b]) {
            holders[l] -= 1;
        }
        let mut res: Vec<usize> = sets[a].clone();
        res.extend(sets[b].iter().filter(|l| !sets[a].contains(l)));
        res.retain(|&l| in_out[l] || holders[l] > 0);
        for &l in &res {
            holders[l] += 1;
        }
        sets.push(res);
    }
    let mut orders: Vec<Option<Vec<usize>>> = prep.iter().map(|p| Some(p.labels.clone())).collect();
    orders.resize(n + ssa.len(), None);
    let mut steps: Vec<Step> = Vec::new();
    let (mut flops, mut flops_oe, mut big) = (0.0, 0.0, 0.0f64);
    let mut packs_total = 0;
    for (k, &(a, b)) in ssa.iter().enumerate() {
        let la = orders[a].clone().unwrap_or_default();
        let lb = orders[b].clone().unwrap_or_default();
        let keep = &sets[n + k];
        let cands = candidates((a, &la), (b, &lb), &|l| keep.contains(&l), sizes);
        let me = n + k;
        let score = |c: &Step| -> usize {
            let ahead = match consumer[me] {
                None => usize::from(c.labels.as_slice() != out_u),
                Some(p) => {
                    let (pa, pb) = ssa[p];
                    let other = if pa == me { pb } else { pa };
                    match &orders[other] {
                        Some(lo) => {
                            let kp = &sets[n + p];
                            candidates((me, &c.labels), (other, lo), &|l| kp.contains(&l), sizes)
                                .iter()
                                .map(|s| s.packs)
                                .min()
                                .unwrap_or(0)
                        }
                        None => 0,
                    }
                }
            };
            c.packs + ahead
        };
        let mut best = cands
            .into_iter()
            .min_by_key(|c| score(c))
            .expect("at least one candidate");
        // A step without contracted axes but with batch axes is lowered to a broadcast
        // multiply, which reads strided operands directly.
        let broadcast = best.dims.lhs_contract.is_empty() && !best.dims.lhs_batch.is_empty();
        if best.packs > 0 && !broadcast {
            let summed = |id: usize, sum: &[usize]| -> Vec<usize> {
                let o = orders[id].as_deref().unwrap_or_default();
                (0..o.len())
                    .filter(|i| !sum.contains(i))
                    .map(|i| sizes[o[i]])
                    .collect()
            };
            let (sl, sr) = (
                summed(best.lhs, &best.lhs_sum),
                summed(best.rhs, &best.rhs_sum),
            );
            unpack(&mut best, &sl, &sr);
        }
        let inner = !best.dims.lhs_contract.is_empty()
            || !best.lhs_sum.is_empty()
            || !best.rhs_sum.is_empty();
        packs_total += best.packs
            + usize::from(best.lhs_perm.is_some())
            + usize::from(best.rhs_perm.is_some());
        flops += best.flops;
        flops_oe += if inner { 2.0 * best.flops } else { best.flops };
        big = big.max(best.size);
        orders[me] = Some(best.labels.clone());
        steps.push(best);
    }
    let last = if ssa.is_empty() {
        orders[0].clone().unwrap_or_default()
    } else {
        orders[n + ssa.len() - 1].clone().unwrap_or_default()
    };
    // The remaining value has exactly the labels of out_u (as a set).
    let perm: Vec<usize> = out_u
        .iter()
        .map(|l| last.iter().position(|m| m == l).unwrap_or(0))
        .collect();
    let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
    let final_perm = (!identity).then_some(perm);
    let transposes = packs_total + usize::from(final_perm.is_some());
    EinsumPlan {
        resolved: r.clone(),
        path: ssa_to_linear(n, ssa),
        prep,
        steps,
        flops,
        flops_opt_einsum: flops_oe,
        largest_intermediate: big,
        transposes,
        final_perm,
        optimizer: String::new(),
        planning_time: Duration::ZERO,
    }
}

type Key = (Resolved, EinsumOptions);
/// The plans and their keys, least recently used first.
type Lru = (HashMap<Key, Arc<EinsumPlan>>, VecDeque<Key>);

/// A bounded cache of plans keyed by (subscripts resolved against the shapes, options);
/// evicts the least recently used plan. Thread-safe (a `Mutex` inside).
pub struct EinsumCache {
    capacity: usize,
    inner: Mutex<Lru>,
}

impl EinsumCache {
    /// A cache holding at most `capacity` plans.
    pub fn new(capacity: usize) -> EinsumCache {
        EinsumCache {
            capacity: capacity.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// Number of plans held.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn get_or_plan(
        &self,
        r: &Resolved,
        opts: &EinsumOptions,
    ) -> Result<Arc<EinsumPlan>> {
        let key = (r.clone(), opts.clone());
        if let Ok(mut g) = self.inner.lock() {
            if let Some(p) = g.0.get(&key).cloned() {
                if let Some(i) = g.1.iter().position(|k| k == &key) {
                    let k = g.1.remove(i).expect("present");
                    g.1.push_back(k);
                }
                return Ok(p);
            }
        }
        let p = Arc::new(plan(r, opts)?);
        if let Ok(mut g) = self.inner.lock() {
            while g.0.len() >= self.capacity {
                match g.1.pop_front() {
                    Some(k) => {
                        g.0.remove(&k);
                    }
                    None => break,
                }
            }
            g.0.insert(key.clone(), p.clone());
            g.1.push_back(key);
        }
        Ok(p)
    }
}

/// The process-wide plan cache used by [`crate::einsum`] / [`crate::einsum_with`]: a
/// `OnceLock<EinsumCache>` (a `Mutex`-guarded LRU of [`GLOBAL_CACHE_CAPACITY`] plans).
pub fn global_cache() -> &'static EinsumCache {
    static CACHE: OnceLock<EinsumCache> = OnceLock::new();
    CACHE.get_or_init(|| EinsumCache::new(GLOBAL_CACHE_CAPACITY))
}

/// Capacity of [`global_cache`].
pub const GLOBAL_CACHE_CAPACITY: usize = 128;
