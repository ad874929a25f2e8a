//! # tenferro-einsum
//!
//! `einsum` for tenferro, traced and eager, with contraction-order planning.
//!
//! ```
//! use tenferro_cpu::CpuBackend;
//! use tenferro_einsum::einsum;
//! use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};
//!
//! // Logical 2×2 matrices (column-major storage: [a00, a10, a01, a11]).
//! let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f64, 3.0, 2.0, 4.0]);
//! let b = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f64, 0.0, 0.0, 1.0]);
//! let c = einsum("ij,jk->ik", &[&a, &b]).unwrap();       // a @ b
//! let t = einsum("ii", &[&a]).unwrap();                  // trace (implicit output: none)
//! let p = GraphCompiler::new().compile(&c).unwrap();
//! let out = GraphExecutor::new(CpuBackend::new()).run(&p).unwrap();
//! assert_eq!(out.as_slice::<f64>().unwrap(), &[1.0, 3.0, 2.0, 4.0]);
//! # let _ = t;
//! ```
//!
//! ## Notation (NumPy / JAX)
//!
//! `einsum(subscripts, operands)`, subscripts first. An index is any character but ASCII
//! punctuation, whitespace and controls (so non-ASCII letters and digits too, as
//! opt_einsum accepts); `,` separates operands, `->` introduces the output. Without `->` the output is implicit, as NumPy: the `...` axes, then the letters
//! appearing exactly once, sorted. Supported: `...` (broadcast: an ellipsis axis of
//! extent 1 broadcasts against a longer one), an index repeated inside one operand
//! (`ii->i` diagonal, `ii` trace), indices found in one operand only (summed), an output
//! index repeated (`i->ii`: diagonal embedding), any number of operands. More indices
//! than letters: [`einsum_labels`] with integer labels. Parentheses among the input terms
//! fix the contraction order, as upstream tenferro-rs writes it: `"ij,(jk,kl)->il"`
//! contracts operands 1 and 2 first (see [`Optimize::nested`]); they override the
//! `optimize` option.
//!
//! **Subscripts refer to logical axes.** Axis `k` of a tensor is its `k`-th subscript,
//! whatever the storage order. tenferro stores tensors column-major (axis 0 fastest), NumPy
//! row-major, but an einsum is a statement about indices: the same subscripts on the same
//! logical tensor (same shape, same `x[i, j, ..]`) give the same result as NumPy. (Only
//! if you reinterpret a NumPy buffer as a column-major tensor do you get the reversed
//! shape, and then the subscripts must be reversed too: `ij,jk->ik` becomes `kj,ji->ki`.)
//!
//! Errors ([`tenferro_runtime::RuntimeError`], op `einsum`) name the operand and the
//! index: wrong rank, mismatched extents, an output index in no operand, bad characters.
//!
//! ## Planning
//!
//! [`plan_einsum`] returns an [`EinsumPlan`] (printable: the steps, flops, largest
//! intermediate, opt_einsum path, transposes). The order comes from the `omeco` crate
//! (a port of OMEinsumContractionOrders.jl, as upstream tenferro-rs uses): greedy,
//! exhaustive (optimal), TreeSA simulated annealing; see [`Optimize`]. Plans are cached
//! by (subscripts resolved against the shapes, options) in a bounded LRU
//! ([`EinsumCache`]); [`einsum`] and [`einsum_with`] use the process-wide
//! [`global_cache`] (a `OnceLock` holding a `Mutex`-guarded map).
//!
//! ## Lowering
//!
//! Every operand is first reduced on its own (`diagonal` for repeated indices,
//! `reduce_sum` of indices no other operand or the output has); each pairwise step is one
//! `dot_general` (shared indices still needed later become batch axes, the others are
//! contracted); a final `transpose` puts the axes in output order, and a repeated output
//! index is a `broadcast_in_dim` times an identity mask. Only ordinary IR ops are emitted,
//! so `grad`, `vjp`, `jvp`, `jvp(grad)`, the e-graph and fusion work through einsum without
//! rules of their own. For each step the planner picks which operand is the left one and
//! the order of the contracted axes so that the CPU GEMM reads both operands in place when
//! it can; the copies it cannot avoid are counted in [`EinsumPlan::transposes`].
//!
//! ## Eager
//!
//! [`einsum_eager`] (and [`EagerEinsumExt`] for the helpers) run the same traced einsum on
//! [`tenferro_ad::EagerTensor`]s through `EagerContext::apply_traced` (one cached program
//! per subscripts and operand types; differentiable with `backward`).

mod eager;
mod greedy;
mod helpers;
pub mod instances;
mod lower;
mod parse;
mod plan;

pub use eager::{einsum_eager, einsum_eager_with, einsum_labels_eager, EagerEinsumExt};
pub use helpers::{inner, kron, outer, tensordot};
pub use plan::{
    auto_tree_sa_budget, auto_tree_sa_effort, auto_tree_sa_trials, auto_tree_sa_within_budget,
    global_cache, tree_sa_trial_seconds, EinsumCache, EinsumOptions, EinsumPlan, Optimize, Step,
    AUTO_OPTIMAL_MAX, AUTO_TREE_SA_BUDGET_MIN, AUTO_TREE_SA_CHEAP_MAX, AUTO_TREE_SA_FLOPS,
    AUTO_TREE_SA_LONG_FLOPS, AUTO_TREE_SA_MIN_MOVES, AUTO_TREE_SA_SC_TARGET_MIN,
    GLOBAL_CACHE_CAPACITY, GREEDY_RUNS, GREEDY_THERMAL_FLOPS,
};

use std::borrow::Cow;
use std::panic::Location;
use tenferro_runtime::{Result, RuntimeError, TracedTensor};

/// `r` as the caller of a public function of this crate sees it
/// ([`RuntimeError::at_caller`]); a result carrying an error is returned as the error.
pub(crate) fn at_caller(
    r: Result<TracedTensor>,
    at: &'static Location<'static>,
) -> Result<TracedTensor> {
    r.and_then(|y| match y.error() {
        Some(e) => Err(e),
        None => Ok(y),
    })
    .map_err(|e| e.at_caller(file!(), at))
}

pub(crate) fn err(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::invalid_op("einsum", msg)
}

fn shapes(operands: &[&TracedTensor]) -> Result<Vec<Vec<usize>>> {
    operands.iter().map(|x| x.shape()).collect()
}

/// `einsum(subscripts, operands)` as NumPy / JAX, planned with [`Optimize::Auto`] and the
/// global plan cache. Errors name the caller's source line.
#[track_caller]
pub fn einsum(subscripts: &str, operands: &[&TracedTensor]) -> Result<TracedTensor> {
    einsum_with(subscripts, operands, &EinsumOptions::default())
}

/// [`einsum`] with explicit options.
#[track_caller]
pub fn einsum_with(
    subscripts: &str,
    operands: &[&TracedTensor],
    opts: &EinsumOptions,
) -> Result<TracedTensor> {
    at_caller(
        global_cache().einsum(subscripts, operands, opts),
        Location::caller(),
    )
}

/// einsum with integer labels: `inputs[k]` labels the axes of `operands[k]`, `output` the
/// result's axes (labels may repeat as in the string form). For more indices than letters.
#[track_caller]
pub fn einsum_labels(
    inputs: &[&[usize]],
    output: &[usize],
    operands: &[&TracedTensor],
) -> Result<TracedTensor> {
    einsum_labels_with(inputs, output, operands, &EinsumOptions::default())
}

/// [`einsum_labels`] with explicit options.
#[track_caller]
pub fn einsum_labels_with(
    inputs: &[&[usize]],
    output: &[usize],
    operands: &[&TracedTensor],
    opts: &EinsumOptions,
) -> Result<TracedTensor> {
    let traced = || {
        let r = parse::resolve_labels(inputs, output, &shapes(operands)?)?;
        let p = global_cache().get_or_plan(&r, opts)?;
        lower::lower(&p, operands)
    };
    at_caller(traced(), Location::caller())
}

/// Plans `subscripts` on operands of these shapes (not cached).
pub fn plan_einsum(
    subscripts: &str,
    shapes: &[Vec<usize>],
    opts: &EinsumOptions,
) -> Result<EinsumPlan> {
    let (subscripts, opts) = unnest(subscripts, opts)?;
    plan::plan(&parse::resolve_str(&subscripts, shapes)?, &opts)
}

/// Plans an integer-label einsum on operands of these shapes (not cached).
pub fn plan_einsum_labels(
    inputs: &[&[usize]],
    output: &[usize],
    shapes: &[Vec<usize>],
    opts: &EinsumOptions,
) -> Result<EinsumPlan> {
    plan::plan(&parse::resolve_labels(inputs, output, shapes)?, opts)
}

/// Traces `plan` (from [`plan_einsum`]) on operands of the shapes it was planned for.
#[track_caller]
pub fn einsum_with_plan(plan: &EinsumPlan, operands: &[&TracedTensor]) -> Result<TracedTensor> {
    at_caller(with_plan(plan, operands), Location::caller())
}

fn with_plan(plan: &EinsumPlan, operands: &[&TracedTensor]) -> Result<TracedTensor> {
    let got = shapes(operands)?;
    if got.len() != plan.prep.len() {
        return Err(err(format!(
            "the plan is for {} operands, {} were given",
            plan.prep.len(),
            got.len()
        )));
    }
    let r = &plan.resolved;
    for (i, s) in got.iter().enumerate() {
        let rank = r.inputs[i].len() + r.squeeze[i].len();
        if s.len() != rank {
            return Err(err(format!(
                "operand {i} has shape {s:?}, the plan is for rank {rank}"
            )));
        }
    }
    lower::lower(plan, operands)
}

/// Subscripts with parentheses among the input terms (`"ij,(jk,kl)->il"`): the same
/// subscripts without them, and `opts` with the order they write ([`Optimize::nested`]).
/// Other subscripts come back unchanged. A parenthesis in the output stays, for the parser
/// to reject.
fn unnest<'a>(
    subscripts: &'a str,
    opts: &'a EinsumOptions,
) -> Result<(Cow<'a, str>, Cow<'a, EinsumOptions>)> {
    let (lhs, rhs) = match subscripts.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (subscripts, None),
    };
    if !lhs.contains(['(', ')']) {
        return Ok((Cow::Borrowed(subscripts), Cow::Borrowed(opts)));
    }
    let optimize = Optimize::nested(subscripts)?;
    let mut flat: String = lhs.chars().filter(|c| !matches!(c, '(' | ')')).collect();
    if let Some(r) = rhs {
        flat.push_str("->");
        flat.push_str(r);
    }
    let opts = EinsumOptions {
        optimize,
        ..opts.clone()
    };
    Ok((Cow::Owned(flat), Cow::Owned(opts)))
}

impl EinsumCache {
    /// [`einsum_with`] through this cache.
    pub fn einsum(
        &self,
        subscripts: &str,
        operands: &[&TracedTensor],
        opts: &EinsumOptions,
    ) -> Result<TracedTensor> {
        let (subscripts, opts) = unnest(subscripts, opts)?;
        let r = parse::resolve_str(&subscripts, &shapes(operands)?)?;
        let p = self.get_or_plan(&r, &opts)?;
        lower::lower(&p, operands)
    }

    /// The plan of `subscripts` on these shapes, from the cache or planned now.
    pub fn plan(
        &self,
        subscripts: &str,
        shapes: &[Vec<usize>],
        opts: &EinsumOptions,
    ) -> Result<std::sync::Arc<EinsumPlan>> {
        let (subscripts, opts) = unnest(subscripts, opts)?;
        self.get_or_plan(&parse::resolve_str(&subscripts, shapes)?, &opts)
    }
}
