//! Buffers of a run: fresh allocation of kernel results that the kernel writes in full,
//! and the pool of released buffers that a prepared program keeps across runs.
//!
//! A fresh buffer is zeroed by the allocator (large ones are fresh zero pages, which cost
//! nothing until touched), so no value is ever uninitialised. Intermediate buffers
//! go back to a [`BufferPool`] when released and are taken again by later steps of the
//! same run or of the next run ([`RunCache`] holds the pool between runs), so a
//! steady-state run allocates only the buffers it returns. [`with_slice`] opens a
//! [`Data`] as a typed slice. Imports no module of this crate.

use num_complex::{Complex32, Complex64};
use std::sync::Mutex;
use tenferro_ir::{DType, Data, IrError};
use tenferro_runtime::{Result, RuntimeError};

/// Element types whose all-zero bit pattern is a valid value.
///
/// # Safety
/// Implement only for types for which all-zero bytes are a valid value.
unsafe trait ZeroValid: Copy {}
// SAFETY: zero bits are +0.0, 0 and 0 + 0i.
unsafe impl ZeroValid for f32 {}
unsafe impl ZeroValid for f64 {}
unsafe impl ZeroValid for i32 {}
unsafe impl ZeroValid for i64 {}
unsafe impl ZeroValid for Complex32 {}
unsafe impl ZeroValid for Complex64 {}

/// `n` zeroed elements; `None` when the allocation fails. The allocation is zeroed by the
/// allocator (`calloc`): a large one comes as fresh pages the OS maps as zeros, so it costs
/// no memset, and no element is ever uninitialised.
fn try_zeroed_vec<T: ZeroValid>(n: usize) -> Option<Vec<T>> {
    let layout = std::alloc::Layout::array::<T>(n).ok()?;
    if layout.size() == 0 {
        return Some(Vec::new());
    }
    // SAFETY: the layout has a non-zero size (checked above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return None;
    }
    advise_huge_pages(ptr.cast(), layout.size());
    // SAFETY: `ptr` comes from the global allocator with the layout of `n` `T`s (what a
    // `Vec<T>` of capacity `n` uses), and its `n` elements are zero bits, a valid `T`.
    Some(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// Buffers at least this large ask for transparent huge pages.
const HUGE_MIN_BYTES: usize = 8 << 20;

/// Asks Linux to back the 2 MiB-aligned part of a fresh, untouched allocation with
/// transparent huge pages. glibc serves allocations above its mmap threshold (at most
/// 32 MiB) with a fresh mapping on every call, and faulting it in 4 KiB pages costs about
/// as much as the kernel that fills it; one fault per 2 MiB does not. Only a hint: the
/// result is ignored and nothing changes where THP is off or unavailable.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    extern "C" {
        fn madvise(
            addr: *mut std::ffi::c_void,
            len: usize,
            advice: std::ffi::c_int,
        ) -> std::ffi::c_int;
    }
    const MADV_HUGEPAGE: std::ffi::c_int = 14;
    const HUGE: usize = 2 << 20;
    if bytes < HUGE_MIN_BYTES {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + bytes) / HUGE * HUGE;
    if end > start {
        // SAFETY: the range lies inside an allocation this process owns; MADV_HUGEPAGE
        // changes only how the kernel backs it, never its contents or validity.
        unsafe {
            madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _bytes: usize) {}

/// A fresh buffer of `n` elements of `dtype` for a kernel to overwrite (zeroed, see
/// [`try_zeroed_vec`]); [`IrError::AllocationFailed`] naming `op` and the bytes when the
/// machine cannot provide them.
pub(crate) fn try_fresh(op: &str, dtype: DType, n: usize) -> Result<Data> {
    let failed = || {
        RuntimeError::Ir(IrError::allocation_failed(
            op,
            n.saturating_mul(dtype.size_bytes()),
        ))
    };
    Ok(match dtype {
        DType::F32 => Data::F32(try_zeroed_vec::<f32>(n).ok_or_else(failed)?),
        DType::F64 => Data::F64(try_zeroed_vec::<f64>(n).ok_or_else(failed)?),
        DType::C32 => Data::C32(try_zeroed_vec::<Complex32>(n).ok_or_else(failed)?),
        DType::C64 => Data::C64(try_zeroed_vec::<Complex64>(n).ok_or_else(failed)?),
        DType::I32 => Data::I32(try_zeroed_vec::<i32>(n).ok_or_else(failed)?),
        DType::I64 => Data::I64(try_zeroed_vec::<i64>(n).ok_or_else(failed)?),
        DType::Bool => Data::try_zeros(op, DType::Bool, n)?,
    })
}

/// [`try_fresh`] for scratch buffers whose size the caller has bounded by its operands:
/// aborts the process, like `vec!`, when the allocation fails.
pub(crate) fn fresh_scratch(dtype: DType, n: usize) -> Data {
    match try_fresh("scratch", dtype, n) {
        Ok(d) => d,
        Err(_) => std::alloc::handle_alloc_error(
            std::alloc::Layout::array::<u8>(n.saturating_mul(dtype.size_bytes()))
                .unwrap_or(std::alloc::Layout::new::<u8>()),
        ),
    }
}

/// Released buffers of a run, found by dtype and length (a linear scan: programs hold few
/// distinct buffers, and no hashing is paid on small programs).
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Vec<Data>,
}

impl BufferPool {
    /// A released buffer of `dtype` and length `n`, if any. Its contents are stale values
    /// (initialised), to be overwritten.
    pub(crate) fn take(&mut self, dtype: DType, n: usize) -> Option<Data> {
        let i = self
            .free
            .iter()
            .rposition(|d| d.len() == n && d.dtype() == dtype)?;
        Some(self.free.swap_remove(i))
    }

    /// Returns a buffer to the pool (empty buffers are dropped).
    pub(crate) fn put(&mut self, d: Data) {
        if !d.is_empty() {
            self.free.push(d);
        }
    }

    /// Drops the oldest buffers beyond the newest `max`. A run releases into the pool the
    /// results of kernels that allocate their own (a gather, a scan, ...), and a later run
    /// may never take them back: without a bound a program run in a loop would grow its
    /// pool by a buffer per run.
    pub(crate) fn trim(&mut self, max: usize) {
        let extra = self.free.len().saturating_sub(max);
        self.free.drain(..extra);
    }

    /// Number of buffers held.
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.free
            .iter()
            .map(|d| d.len() * d.dtype().size_bytes())
            .sum()
    }
}

/// What a prepared program keeps between runs (the released buffers and the executor's
/// slot table). A run takes it whole (so concurrent runs of one program never share a
/// buffer: a second run finds the cache empty and allocates) and gives it back at the end.
#[derive(Debug, Default)]
pub(crate) struct RunCache<T>(Mutex<T>);

impl<T: Default> RunCache<T> {
    /// Takes the cached state (the default, empty state if another run holds it).
    pub(crate) fn take(&self) -> T {
        match self.0.try_lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => T::default(),
        }
    }

    /// Stores a run's state for the next run (keeps the one already there when `keep`
    /// says it is better: another run returned first).
    pub(crate) fn give(&self, state: T, keep: impl FnOnce(&T, &T) -> bool) {
        if let Ok(mut p) = self.0.try_lock() {
            if !keep(&p, &state) {
                *p = state;
            }
        }
    }

    /// Reads the cached state.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.0.lock().ok().map(|p| f(&p))
    }
}

impl<T: Default> Clone for RunCache<T> {
    /// A clone starts with an empty cache.
    fn clone(&self) -> Self {
        RunCache(Mutex::new(T::default()))
    }
}

/// Runs `$body` with `$v` bound to the slice inside `$data` and `$T` to its element type.
macro_rules! with_slice {
    ($data:expr, $v:ident: $T:ident => $body:expr) => {
        match $data {
            tenferro_ir::Data::F32($v) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            tenferro_ir::Data::F64($v) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            tenferro_ir::Data::C32($v) => {
                #[allow(dead_code)]
                type $T = num_complex::Complex32;
                $body
            }
            tenferro_ir::Data::C64($v) => {
                #[allow(dead_code)]
                type $T = num_complex::Complex64;
                $body
            }
            tenferro_ir::Data::I32($v) => {
                #[allow(dead_code)]
                type $T = i32;
                $body
            }
            tenferro_ir::Data::I64($v) => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            tenferro_ir::Data::Bool($v) => {
                #[allow(dead_code)]
                type $T = bool;
                $body
            }
        }
    };
}
pub(crate) use with_slice;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_returns_buffers_by_dtype_and_length() {
        let mut p = BufferPool::default();
        p.put(Data::F64(vec![1.0; 4]));
        p.put(Data::F32(vec![2.0; 4]));
        p.put(Data::F64(vec![3.0; 5]));
        assert!(p.take(DType::C64, 4).is_none());
        assert!(p
            .take(DType::F64, 4)
            .unwrap()
            .bits_eq(&Data::F64(vec![1.0; 4])));
        assert!(p.take(DType::F64, 4).is_none());
        assert!(p
            .take(DType::F32, 4)
            .unwrap()
            .bits_eq(&Data::F32(vec![2.0; 4])));
        assert_eq!(p.len(), 1);
        assert_eq!(p.bytes(), 40);
    }

    #[test]
    fn trim_keeps_the_newest_buffers() {
        let mut p = BufferPool::default();
        for n in 1..=5 {
            p.put(Data::F64(vec![0.0; n]));
        }
        p.trim(2);
        assert_eq!(p.len(), 2);
        assert!(p.take(DType::F64, 5).is_some() && p.take(DType::F64, 4).is_some());
        p.trim(0);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn cache_hands_the_pool_to_one_run_at_a_time() {
        let c: RunCache<BufferPool> = RunCache::default();
        let mut p = c.take();
        p.put(Data::I64(vec![7; 3]));
        c.give(p, |_, _| false);
        assert_eq!(c.with(|p| p.bytes()), Some(24));
        let mut first = c.take();
        let second = c.take();
        assert_eq!(second.len(), 0);
        assert!(first
            .take(DType::I64, 3)
            .unwrap()
            .bits_eq(&Data::I64(vec![7; 3])));
    }

    #[test]
    fn fresh_buffers_have_the_requested_type_and_are_zero() {
        for dt in DType::ALL {
            for n in [0, 5, 1 << 20] {
                let d = fresh_scratch(dt, n);
                assert_eq!((d.dtype(), d.len()), (dt, n));
                assert!(d.bits_eq(&Data::zeros(dt, n)));
            }
        }
        let huge = try_fresh("zeros", DType::F64, usize::MAX / 4);
        assert!(huge.unwrap_err().to_string().contains("zeros"));
    }
}
