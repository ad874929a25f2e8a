//! Eager einsum: the traced einsum run at once through `EagerContext::apply_traced`.

use crate::{EinsumOptions, Optimize};
use std::hash::{DefaultHasher, Hash, Hasher};
use tenferro_ad::{AdError, EagerTensor, OpKey, Result};
use tenferro_runtime::RuntimeError;

fn key(name: &'static str, parts: &[&[i64]], opts: &EinsumOptions) -> OpKey {
    let mut ints = Vec::new();
    for p in parts {
        ints.extend_from_slice(p);
        ints.push(-1);
    }
    if opts != &EinsumOptions::default() {
        let mut h = DefaultHasher::new();
        opts.hash(&mut h);
        ints.push(h.finish() as i64);
    }
    OpKey::named(name, ints)
}

fn run(
    key: OpKey,
    operands: &[&EagerTensor],
    f: impl FnOnce(
        &[tenferro_runtime::TracedTensor],
    ) -> tenferro_runtime::Result<tenferro_runtime::TracedTensor>,
) -> Result<EagerTensor> {
    let first = operands.first().ok_or_else(|| {
        AdError::from(RuntimeError::invalid_op(
            "einsum",
            "einsum needs at least one operand",
        ))
    })?;
    first
        .context()
        .apply_traced1(key, operands, |t| Ok(vec![f(t)?]))
}

/// [`crate::einsum`] on eager tensors (of one `EagerContext`): traces the einsum once per
/// (subscripts, operand types) in the context's op cache and runs it; differentiable
/// (`backward`, functional `grad`) as any eager op.
pub fn einsum_eager(subscripts: &str, operands: &[&EagerTensor]) -> Result<EagerTensor> {
    einsum_eager_with(subscripts, operands, &EinsumOptions::default())
}

/// [`einsum_eager`] with explicit options.
pub fn einsum_eager_with(
    subscripts: &str,
    operands: &[&EagerTensor],
    opts: &EinsumOptions,
) -> Result<EagerTensor> {
    let chars: Vec<i64> = subscripts.chars().map(|c| c as i64).collect();
    let o = opts.clone();
    run(key("einsum", &[&chars], opts), operands, |t| {
        let refs: Vec<&_> = t.iter().collect();
        crate::einsum_with(subscripts, &refs, &o)
    })
}

/// [`crate::einsum_labels`] on eager tensors.
pub fn einsum_labels_eager(
    inputs: &[&[usize]],
    output: &[usize],
    operands: &[&EagerTensor],
) -> Result<EagerTensor> {
    let mut parts: Vec<Vec<i64>> = inputs
        .iter()
        .map(|l| l.iter().map(|&x| x as i64).collect())
        .collect();
    parts.push(output.iter().map(|&x| x as i64).collect());
    let refs: Vec<&[i64]> = parts.iter().map(|p| p.as_slice()).collect();
    run(
        key("einsum_labels", &refs, &EinsumOptions::default()),
        operands,
        |t| {
            let r: Vec<&_> = t.iter().collect();
            crate::einsum_labels(inputs, output, &r)
        },
    )
}

/// The einsum helpers on eager tensors (same semantics as the traced functions
/// [`crate::tensordot`], [`crate::inner`], [`crate::outer`], [`crate::kron`]).
pub trait EagerEinsumExt {
    /// `np.tensordot(self, b, axes=(a_axes, b_axes))`.
    fn tensordot(&self, b: &EagerTensor, a_axes: &[usize], b_axes: &[usize])
        -> Result<EagerTensor>;
    /// `np.inner(self, b)`.
    fn inner(&self, b: &EagerTensor) -> Result<EagerTensor>;
    /// `np.outer(self, b)`.
    fn outer(&self, b: &EagerTensor) -> Result<EagerTensor>;
    /// `np.kron(self, b)`.
    fn kron(&self, b: &EagerTensor) -> Result<EagerTensor>;
}

impl EagerEinsumExt for EagerTensor {
    fn tensordot(
        &self,
        b: &EagerTensor,
        a_axes: &[usize],
        b_axes: &[usize],
    ) -> Result<EagerTensor> {
        let aa: Vec<i64> = a_axes.iter().map(|&x| x as i64).collect();
        let bb: Vec<i64> = b_axes.iter().map(|&x| x as i64).collect();
        run(
            key("einsum.tensordot", &[&aa, &bb], &EinsumOptions::default()),
            &[self, b],
            |t| crate::tensordot(&t[0], &t[1], a_axes, b_axes),
        )
    }
    fn inner(&self, b: &EagerTensor) -> Result<EagerTensor> {
        run(
            key("einsum.inner", &[], &EinsumOptions::default()),
            &[self, b],
            |t| crate::inner(&t[0], &t[1]),
        )
    }
    fn outer(&self, b: &EagerTensor) -> Result<EagerTensor> {
        run(
            key("einsum.outer", &[], &EinsumOptions::default()),
            &[self, b],
            |t| crate::outer(&t[0], &t[1]),
        )
    }
    fn kron(&self, b: &EagerTensor) -> Result<EagerTensor> {
        run(
            key("einsum.kron", &[], &EinsumOptions::default()),
            &[self, b],
            |t| crate::kron(&t[0], &t[1]),
        )
    }
}

#[allow(dead_code)]
fn _assert_hash(o: &Optimize) {
    let mut h = DefaultHasher::new();
    o.hash(&mut h);
}
