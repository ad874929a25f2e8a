//! Text form printer.

use crate::function::Function;

/// Prints `f` in the text form that [`crate::parse`] reads back.
pub fn print(f: &Function) -> String {
    format!("{f:?}")
}
