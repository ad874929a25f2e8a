//! Rule sets for extension ops. Core primitives have built-in rules; an extension op
//! (`linalg.cholesky`, a user's custom op) is differentiable only through the rules an
//! [`crate::AdContext`] was built with. There is no process-global registry.
//!
//! The model is JAX's: every differentiable op has a JVP rule, whose tangent outputs are
//! built from ops that are linear in the input tangents; ops that appear linearly in
//! tangent programs (e.g. `linalg.triangular_solve` in its right-hand side) also have a
//! transpose rule, used by reverse mode.

use crate::error::{AdError, Result};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use tenferro_ir::{ExtensionOp, TensorType};
use tenferro_runtime::TracedTensor;

/// An operand of a linear op as seen by a transpose rule.
#[derive(Clone, Debug)]
pub enum TransposeArg {
    /// The operand is linear (it depends on the tangent); its type is given. The rule
    /// returns this operand's cotangent.
    Linear(TensorType),
    /// The operand is a known (primal) value.
    Primal(TracedTensor),
}

impl TransposeArg {
    /// The primal value, if this operand is not linear.
    pub fn primal(&self) -> Option<&TracedTensor> {
        match self {
            TransposeArg::Primal(t) => Some(t),
            TransposeArg::Linear(_) => None,
        }
    }

    /// `true` for a linear operand.
    pub fn is_linear(&self) -> bool {
        matches!(self, TransposeArg::Linear(_))
    }
}

/// Differentiation rules of one extension op. Rules build traced values, so they compose:
/// the tangent program of a JVP rule is itself differentiated for second order.
pub trait ExtensionRule: Send + Sync {
    /// Forward mode: tangents of the outputs, given the primal inputs, the primal outputs
    /// (already computed) and the input tangents (`None` is a symbolic zero). Returns one
    /// entry per output (`None` for a zero tangent). The outputs must be linear in the
    /// tangents.
    fn jvp(
        &self,
        op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>>;

    /// Reverse mode for an op that is linear in its [`TransposeArg::Linear`] operands:
    /// given the output cotangents (`None` is zero), return one entry per operand, the
    /// cotangent of each linear operand (`None` for zero, and for primal operands).
    /// The default says the op is not linear: an error naming the op and the mode.
    fn transpose(
        &self,
        op: &ExtensionOp,
        args: &[TransposeArg],
        cotangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        let _ = (args, cotangents);
        Err(AdError::MissingRule {
            op: op.name.clone(),
            mode: "transpose",
        })
    }

    /// Batching (`vmap`): the op applied to every example of a batch of `batch_size`.
    /// `inputs[i]` is an operand and whether it is batched; a batched operand carries the
    /// batch axis last, and so must every result. The default says the op has no
    /// batching rule: an error naming the op and the mode.
    fn batch(
        &self,
        op: &ExtensionOp,
        inputs: &[(TracedTensor, bool)],
        batch_size: usize,
    ) -> Result<Vec<TracedTensor>> {
        let _ = (inputs, batch_size);
        Err(AdError::MissingRule {
            op: op.name.clone(),
            mode: "vmap",
        })
    }
}

/// A set of extension rules, keyed by op name. Built by extension crates (e.g.
/// `tenferro_linalg::ad_rules()`) and handed to `AdContext::builder().with_extension_rules`.
#[derive(Clone, Default)]
pub struct Rules {
    rules: HashMap<String, Arc<dyn ExtensionRule>>,
    /// Call sites of custom_jvp / custom_vjp / checkpoint functions (shared by clones).
    pub(crate) regions: crate::custom::Regions,
}

impl Rules {
    /// An empty rule set.
    pub fn new() -> Rules {
        Rules::default()
    }

    /// Adds the rule of op `name`; an error if this set already has one.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        rule: impl ExtensionRule + 'static,
    ) -> Result<()> {
        let name = name.into();
        if self.rules.contains_key(&name) {
            return Err(AdError::DuplicateRule { op: name });
        }
        self.rules.insert(name, Arc::new(rule));
        Ok(())
    }

    /// Adds every rule of `other`; an error if an op is in both.
    pub fn merge(&mut self, other: Rules) -> Result<()> {
        for (name, rule) in other.rules {
            if self.rules.contains_key(&name) {
                return Err(AdError::DuplicateRule { op: name });
            }
            self.rules.insert(name, rule);
        }
        Ok(())
    }

    /// The rule of op `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn ExtensionRule>> {
        self.rules.get(name)
    }

    /// Names of the ops with rules, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.rules.keys().map(|s| s.as_str()).collect();
        v.sort();
        v
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules").field("ops", &self.names()).finish()
    }
}
