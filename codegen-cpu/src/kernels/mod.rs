//! Kernels. Whole-buffer kernels of single steps match on dtype and op once, then run a
//! tight loop; fused kernels (`fused`, `tile`) do so once per op per tile. Each kernel
//! owns the plan type it runs (`DotPlan`, `GatherPlan`, ...). Kernels import only
//! `buffer`, `error`, `strided`, `schedule`, `math` and `vmath` (and `fused` imports
//! `tile`; `shared_matrix` imports `fused` and `tile`); the program, the planner and the
//! executor import them, never the reverse.

pub(crate) mod dot;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod gemm512;
pub(crate) mod index;
pub(crate) mod lane_dot;
pub(crate) mod packbuf;
pub(crate) mod reduce;
pub(crate) mod scan;
pub(crate) mod shared_matrix;
pub(crate) mod tile;
