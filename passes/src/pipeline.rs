//! The pass pipeline: which passes run, in which order, with which settings.

use std::fmt;
use tenferro_ir::{Function, IrError};
use thiserror::Error;

/// An error raised by a pass.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PassError {
    /// The verifier rejected the function (after the named pass, or on input).
    #[error("verification failed after `{after}`: {error}")]
    Verify {
        /// The pass after which it failed (`input` before any).
        after: String,
        /// The broken invariant.
        error: IrError,
    },
    /// A pass could not process the function.
    #[error("pass `{pass}`: {message}")]
    Failed {
        /// The pass.
        pass: String,
        /// Why.
        message: String,
    },
    /// An unknown pass name in an explicit list.
    #[error("unknown pass `{0}` (known: verify, dce, cse, fold, egraph, hdot, reorder)")]
    UnknownPass(String),
}

/// Optimization level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum OptLevel {
    /// No passes.
    O0,
    /// verify, dce, cse, constant folding, memory-aware order.
    O1,
    /// O1 plus e-graph simplification (bit-exact rules only) and horizontal fusion of
    /// products that share an operand. The default: it costs well under a millisecond on
    /// typical derivative programs and removes what AD leaves behind (multiplications by
    /// ones, transposes of transposes, ...).
    #[default]
    O2,
}

/// One pass of a pipeline, with its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum PassSpec {
    /// Check every IR invariant; changes nothing.
    Verify,
    /// Dead code elimination.
    Dce,
    /// Common subexpression elimination.
    Cse,
    /// Constant folding (evaluates instructions whose operands are all constants, up to a size limit).
    Fold,
    /// E-graph simplification with its limits and rule sets (see [`crate::egraph`]).
    EGraph(crate::egraph::EGraphOptions),
    /// Memory-aware instruction order (see [`crate::reorder`]).
    Reorder,
    /// Horizontal fusion of products sharing an operand (see [`crate::hdot`]).
    HDot,
}

impl PassSpec {
    /// The pass name, as printed and as accepted by [`PassSpec::from_name`].
    pub fn name(&self) -> &'static str {
        match self {
            PassSpec::Verify => "verify",
            PassSpec::Dce => "dce",
            PassSpec::Cse => "cse",
            PassSpec::Fold => "fold",
            PassSpec::EGraph(_) => "egraph",
            PassSpec::Reorder => "reorder",
            PassSpec::HDot => "hdot",
        }
    }

    /// A pass with default settings by name.
    pub fn from_name(name: &str) -> Result<PassSpec, PassError> {
        match name {
            "verify" => Ok(PassSpec::Verify),
            "dce" => Ok(PassSpec::Dce),
            "cse" => Ok(PassSpec::Cse),
            "fold" => Ok(PassSpec::Fold),
            "egraph" => Ok(PassSpec::EGraph(Default::default())),
            "reorder" => Ok(PassSpec::Reorder),
            "hdot" => Ok(PassSpec::HDot),
            other => Err(PassError::UnknownPass(other.to_string())),
        }
    }
}

/// What a pass reports: named counters (e.g. `removed: 3`) and whether it changed anything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassStats {
    /// Whether the pass changed the function.
    pub changed: bool,
    /// Named counters (`removed`, `merged`, ...).
    pub counters: Vec<(&'static str, u64)>,
}

impl fmt::Display for PassStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "changed={}", self.changed)?;
        for (k, v) in &self.counters {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// Handed to the pipeline's observer after every pass.
pub struct PassEvent<'a> {
    /// Name of the pass that ran.
    pub pass: &'a str,
    /// What it reported.
    pub stats: &'a PassStats,
    /// The function after the pass.
    pub function: &'a Function,
}

/// A record of one pass run: its name, statistics and instruction counts.
#[derive(Clone, Debug, PartialEq)]
pub struct PassRecord {
    /// Pass name.
    pub pass: String,
    /// What it reported.
    pub stats: PassStats,
    /// Instructions before it ran.
    pub insts_before: usize,
    /// Instructions after it ran.
    pub insts_after: usize,
}

/// An ordered list of passes plus settings.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Pipeline {
    /// Passes, in order.
    pub passes: Vec<PassSpec>,
    /// Run the verifier after every pass.
    pub verify_each: bool,
}

impl Pipeline {
    /// The default pipeline of an optimization level.
    pub fn for_level(level: OptLevel) -> Pipeline {
        use PassSpec::*;
        let passes = match level {
            OptLevel::O0 => vec![],
            OptLevel::O1 => vec![Verify, Dce, Cse, Fold, Dce, Reorder],
            OptLevel::O2 => vec![
                Verify,
                Dce,
                Cse,
                EGraph(Default::default()),
                HDot,
                Fold,
                Dce,
                Reorder,
            ],
        };
        Pipeline {
            passes,
            verify_each: false,
        }
    }

    /// A pipeline from pass names (`["dce", "cse"]`).
    pub fn from_names(names: &[&str]) -> Result<Pipeline, PassError> {
        Ok(Pipeline {
            passes: names
                .iter()
                .map(|n| PassSpec::from_name(n))
                .collect::<Result<_, _>>()?,
            verify_each: false,
        })
    }

    /// Runs every pass on `f` in order, calling `observer` after each.
    pub fn run(
        &self,
        f: &mut Function,
        observer: &mut dyn FnMut(&PassEvent<'_>),
    ) -> Result<Vec<PassRecord>, PassError> {
        let mut records = Vec::with_capacity(self.passes.len());
        for spec in &self.passes {
            let before = f.insts().len();
            let stats = run_pass(spec, f)?;
            if self.verify_each {
                tenferro_ir::verify::verify(f).map_err(|error| PassError::Verify {
                    after: spec.name().to_string(),
                    error,
                })?;
            }
            observer(&PassEvent {
                pass: spec.name(),
                stats: &stats,
                function: f,
            });
            records.push(PassRecord {
                pass: spec.name().to_string(),
                stats,
                insts_before: before,
                insts_after: f.insts().len(),
            });
        }
        Ok(records)
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.passes.iter().map(|p| p.name()).collect();
        write!(f, "[{}]", names.join(", "))?;
        if self.verify_each {
            f.write_str(" (verify each)")?;
        }
        Ok(())
    }
}

/// Runs one pass.
fn run_pass(spec: &PassSpec, f: &mut Function) -> Result<PassStats, PassError> {
    match spec {
        PassSpec::Verify => {
            tenferro_ir::verify::verify(f).map_err(|error| PassError::Verify {
                after: "input".to_string(),
                error,
            })?;
            Ok(PassStats::default())
        }
        PassSpec::Dce => crate::dce::run(f),
        PassSpec::Cse => crate::cse::run(f),
        PassSpec::Fold => crate::fold::run(f),
        PassSpec::EGraph(opts) => Ok(crate::egraph::run(f, opts)),
        PassSpec::Reorder => crate::reorder::run(f),
        PassSpec::HDot => crate::hdot::run(f),
    }
}
