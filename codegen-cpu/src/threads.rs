//! The threads a backend's kernels may use: a count and the work-stealing rayon pool of
//! that size. Imports no module of this crate; [`crate::CpuBackend`] owns one and the
//! executor reads it.

use std::sync::Arc;

/// `count` workers and, with more than one, the rayon pool they run in.
#[derive(Clone)]
pub(crate) struct Threads {
    count: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Threads {
    /// `count` threads (0 is treated as 1). With more than one thread a rayon pool of that
    /// size is built; if it cannot be, kernels run on the calling thread.
    pub(crate) fn new(count: usize) -> Threads {
        let count = count.max(1);
        let pool = if count > 1 {
            rayon::ThreadPoolBuilder::new()
                .num_threads(count)
                .thread_name(|i| format!("tenferro-cpu-{i}"))
                .build()
                .ok()
                .map(Arc::new)
        } else {
            None
        };
        Threads { count, pool }
    }

    /// The number of threads kernels may use.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The pool, when there is one.
    pub(crate) fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool.as_deref()
    }

    /// Runs `f` inside the pool (so faer's rayon parallelism uses it).
    pub(crate) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }

    /// faer's parallelism setting for these threads.
    pub(crate) fn par(&self) -> faer::Par {
        if self.count <= 1 || self.pool.is_none() {
            faer::Par::Seq
        } else {
            faer::Par::rayon(self.count)
        }
    }
}
