//! # tenferro-passes
//!
//! Function → function passes and the [`Pipeline`] that runs them. A pipeline is data: an
//! ordered list of [`PassSpec`]s plus settings, built from an [`OptLevel`] or an explicit
//! list, printable, and observable after every pass.
//!
//! The default pipelines are listed in one place, [`Pipeline::for_level`]:
//! - O0: nothing;
//! - O1: verify, dce, cse, constant folding, dce, memory-aware order ([`reorder`]);
//! - O2: O1's passes with e-graph simplification ([`egraph`]) after cse, then horizontal
//!   fusion of products sharing an operand ([`hdot`]).

pub mod cost;
pub mod cse;
pub mod dce;
pub mod egraph;
pub mod fold;
pub mod hdot;
mod pipeline;
mod rebuild;
pub mod reorder;

pub use cost::{estimate, CostEstimate};
pub use egraph::{EGraphOptions, EGraphReport, StopReason};

pub use pipeline::{OptLevel, PassError, PassEvent, PassRecord, PassSpec, PassStats, Pipeline};
