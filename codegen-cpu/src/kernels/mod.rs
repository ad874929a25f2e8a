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

/// Bytes ahead of a stream that [`prefetch_ahead`] asks for: two 4 KiB pages. The
/// hardware prefetchers stop at page boundaries, and input buffers the caller allocated
/// come in 4 KiB pages, so a kernel reading one stream stalls at every page: the whole
/// sum of a 4096² f64 input took 0.78x the time with this hint on the Xeon VM (one and two
/// threads). Kernels reading two or more streams (an inner product, an elementwise
/// product) measured no gain or a loss, and do not use it.
const PREFETCH_BYTES: usize = 8 << 10;

/// Asks the CPU to bring the cache line [`PREFETCH_BYTES`] past `p` into L1. A hint
/// only: no memory is accessed architecturally, so any address is sound, in or out of
/// the allocation.
#[inline(always)]
pub(crate) fn prefetch_ahead<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        let ahead = p.cast::<i8>().wrapping_add(PREFETCH_BYTES);
        // SAFETY: `prefetcht0` never faults and changes no architectural state, whatever
        // the address; SSE is part of the x86_64 baseline.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ahead) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Elements of `x`'s type in one 64-byte cache line (at least 1): the stride of
/// [`prefetch_ahead`] calls over a stream.
#[inline(always)]
pub(crate) fn line_of<T>(_x: &[T]) -> usize {
    (64 / std::mem::size_of::<T>().max(1)).max(1)
}
