//! # tenferro-ad
//!
//! Automatic differentiation as IR → IR transforms (JAX's model): jvp, linearize,
//! transpose, vjp, grad.

pub mod error;
pub mod rules;

pub use error::{AdError, Result};
pub use rules::{ExtensionRule, Rules, TransposeArg};
