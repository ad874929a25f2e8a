//! tenferro facade
