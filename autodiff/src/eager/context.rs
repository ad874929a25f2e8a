//! [`EagerContext`]: the backend, extension kernels, AD rules, grad mode and the program
//! caches of a family of eager tensors: ops by [`OpKey`] and operand types, transforms by
//! recorded-graph structure. Knows programs and values, not tensors: it imports `graph`
//! (what it derives transforms from) and no module that imports it back.

use super::fxhash::FxHasher;
use super::graph::{derive, Derived, Walk};
use crate::context::AdContext;
use crate::error::{AdError, Result};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use tenferro_ir::{BinaryOp, CmpOp, Function, Op, Tensor, TensorType};
use tenferro_runtime::{
    lower, Backend, ExtensionRegistry, LowerMode, OptLevel, Pipeline, RuntimeError, TracedTensor,
};

/// A function prepared on some backend (the backend type is erased so that eager tensors
/// are not generic).
trait PreparedProgram {
    fn execute(
        &self,
        inputs: &[Tensor],
        extensions: &ExtensionRegistry,
    ) -> tenferro_runtime::Result<Vec<Tensor>>;
}

/// A backend with its type erased.
trait ErasedBackend {
    fn prepare(&self, f: &Function) -> tenferro_runtime::Result<Box<dyn PreparedProgram>>;
}

struct BackendHandle<B>(Rc<B>);

struct PreparedOn<B: Backend> {
    backend: Rc<B>,
    prepared: B::Prepared,
}

impl<B: Backend> PreparedProgram for PreparedOn<B> {
    fn execute(
        &self,
        inputs: &[Tensor],
        extensions: &ExtensionRegistry,
    ) -> tenferro_runtime::Result<Vec<Tensor>> {
        self.backend.execute(&self.prepared, inputs, extensions)
    }
}

impl<B: Backend + 'static> ErasedBackend for BackendHandle<B>
where
    B::Prepared: 'static,
{
    fn prepare(&self, f: &Function) -> tenferro_runtime::Result<Box<dyn PreparedProgram>> {
        Ok(Box::new(PreparedOn {
            backend: self.0.clone(),
            prepared: self.0.prepare(f)?,
        }))
    }
}

/// What identifies an eager op's program besides its operand types. Two calls with equal
/// keys and equal operand types must trace the same program.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpKey {
    /// Exactly one IR op applied to the operands as they are (`TracedTensor::apply`).
    Ir(Op),
    /// `TracedTensor::binary`: the op with broadcasting and promotion.
    Binary(BinaryOp),
    /// `TracedTensor::compare`: the comparison with broadcasting and promotion.
    Compare(CmpOp),
    /// A method that may broadcast, promote or build several instructions: a name unique
    /// to the method and the integers that parametrise it (axes, flags, scalar bits).
    Named(&'static str, Vec<i64>),
    /// A whole function applied to the operands (its printed text).
    Function(String),
}

impl OpKey {
    /// Shorthand for [`OpKey::Named`].
    pub fn named(name: &'static str, ints: impl Into<Vec<i64>>) -> OpKey {
        OpKey::Named(name, ints.into())
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            OpKey::Ir(op) => op.name(),
            OpKey::Binary(op) => op.name(),
            OpKey::Compare(_) => "compare",
            OpKey::Named(n, _) => n,
            OpKey::Function(_) => "call",
        }
    }
}

/// A prepared eager op.
pub(crate) struct CachedOp {
    key: OpKey,
    types: Vec<TensorType>,
    pub(crate) function: Arc<Function>,
    program: Box<dyn PreparedProgram>,
}

/// A transform of a recorded graph structure, derived and prepared.
pub(crate) struct CachedTransform {
    pub(crate) derived: Derived,
    prepared: Box<dyn PreparedProgram>,
}

/// Counters of the work an [`EagerContext`] did (to check that caching works).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EagerStats {
    /// Ops traced, optimized and prepared (cache misses).
    pub ops_compiled: usize,
    /// Ops run.
    pub ops_run: usize,
    /// IR instructions of the op programs run (each run counts its optimized program's
    /// instructions): the work of the forward computations, in ops.
    pub op_insts_run: usize,
    /// Transformed programs (backward, grad, vjp, jvp) derived and prepared.
    pub transforms_compiled: usize,
    /// Transformed programs run.
    pub transforms_run: usize,
    /// IR instructions of the transformed programs run (each run counts its optimized
    /// program's instructions): the work of backward and the functional transforms.
    pub transform_insts_run: usize,
}

/// Bounds of the caches; a full cache is cleared.
const OP_CACHE_CAPACITY: usize = 4096;
const TRANSFORM_CACHE_CAPACITY: usize = 512;

pub(crate) struct Shared {
    backend: Box<dyn ErasedBackend>,
    pub(crate) ad: AdContext,
    pub(crate) extensions: RefCell<ExtensionRegistry>,
    ops: RefCell<HashMap<u64, Vec<Rc<CachedOp>>>>,
    op_count: Cell<usize>,
    transforms: RefCell<HashMap<u64, Vec<Rc<CachedTransform>>>>,
    transform_count: Cell<usize>,
    grad_enabled: Cell<bool>,
    stats: Cell<EagerStats>,
}

/// The home of eager tensors: a backend, the extension kernels registered on it, the AD
/// rules, the program caches and the grad mode. Cheap to clone (a shared handle); two
/// contexts made with `new` share nothing. Not `Send`: use one context per thread.
///
/// ```
/// use tenferro_ad::EagerContext;
/// use tenferro_cpu::CpuBackend;
///
/// let ctx = EagerContext::new(CpuBackend::new());
/// let x = ctx.from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0]).unwrap().requires_grad(true);
/// let loss = (&x * &x).reduce_sum(&[0]).unwrap();
/// loss.backward().unwrap();
/// assert_eq!(x.grad().unwrap().as_slice::<f64>().unwrap(), &[2.0, 4.0, 6.0]);
/// ```
#[derive(Clone)]
pub struct EagerContext {
    pub(crate) shared: Rc<Shared>,
}

impl fmt::Debug for EagerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EagerContext")
            .field("rules", self.shared.ad.rules())
            .field("kernels", &self.shared.extensions.borrow().names())
            .field("grad_enabled", &self.is_grad_enabled())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Restores the previous grad mode when dropped (see [`EagerContext::no_grad_guard`]).
pub struct NoGradGuard {
    ctx: EagerContext,
    previous: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        self.ctx.shared.grad_enabled.set(self.previous);
    }
}

impl EagerContext {
    /// A context on `backend` with the core AD rules only.
    pub fn new<B>(backend: B) -> EagerContext
    where
        B: Backend + 'static,
        B::Prepared: 'static,
    {
        EagerContext::with_ad_context(backend, AdContext::new())
    }

    /// A context on `backend` whose backward and transforms use the rules of `ad`
    /// (e.g. built with `tenferro_linalg::ad_rules()`).
    pub fn with_ad_context<B>(backend: B, ad: AdContext) -> EagerContext
    where
        B: Backend + 'static,
        B::Prepared: 'static,
    {
        EagerContext {
            shared: Rc::new(Shared {
                backend: Box::new(BackendHandle(Rc::new(backend))),
                ad,
                extensions: RefCell::new(ExtensionRegistry::new()),
                ops: RefCell::new(HashMap::new()),
                op_count: Cell::new(0),
                transforms: RefCell::new(HashMap::new()),
                transform_count: Cell::new(0),
                grad_enabled: Cell::new(true),
                stats: Cell::new(EagerStats::default()),
            }),
        }
    }

    /// Registers an extension's kernels on this context only
    /// (`ctx.register_extension(tenferro_linalg::register_runtime)?`).
    pub fn register_extension<F>(&self, register: F) -> Result<()>
    where
        F: FnOnce(&mut ExtensionRegistry) -> tenferro_runtime::Result<()>,
    {
        Ok(register(&mut self.shared.extensions.borrow_mut())?)
    }

    /// The AD rules of this context.
    pub fn ad_context(&self) -> &AdContext {
        &self.shared.ad
    }

    /// What this context compiled and ran so far.
    pub fn stats(&self) -> EagerStats {
        self.shared.stats.get()
    }

    fn bump(&self, f: impl FnOnce(&mut EagerStats)) {
        let mut s = self.shared.stats.get();
        f(&mut s);
        self.shared.stats.set(s);
    }

    /// `true` if `other` is a handle of the same context.
    pub fn same_as(&self, other: &EagerContext) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether ops on tracked tensors are recorded (on by default).
    pub fn is_grad_enabled(&self) -> bool {
        self.shared.grad_enabled.get()
    }

    /// Turns recording on or off; returns the previous setting.
    pub fn set_grad_enabled(&self, on: bool) -> bool {
        self.shared.grad_enabled.replace(on)
    }

    /// Runs `f` with recording off (PyTorch's `with torch.no_grad()`): results computed
    /// inside are not tracked, so no gradient flows through them.
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.no_grad_guard();
        f()
    }

    /// Turns recording off until the guard is dropped.
    pub fn no_grad_guard(&self) -> NoGradGuard {
        NoGradGuard {
            ctx: self.clone(),
            previous: self.set_grad_enabled(false),
        }
    }

    /// Runs `f` with recording on whatever the current mode (the functional transforms do
    /// this for the function they differentiate).
    pub(crate) fn with_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = NoGradGuard {
            ctx: self.clone(),
            previous: self.set_grad_enabled(true),
        };
        f()
    }

    /// The prepared program of `key` on the operands' types, from the cache or traced now.
    pub(crate) fn cached_op<F>(&self, key: OpKey, args: &[Tensor], trace: F) -> Result<Rc<CachedOp>>
    where
        F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<Vec<TracedTensor>>,
    {
        let mut h = FxHasher::default();
        key.hash(&mut h);
        for a in args {
            a.dtype().hash(&mut h);
            a.shape().hash(&mut h);
        }
        let hash = h.finish();
        if let Some(bucket) = self.shared.ops.borrow().get(&hash) {
            for c in bucket {
                if c.key == key
                    && c.types.len() == args.len()
                    && c.types
                        .iter()
                        .zip(args)
                        .all(|(t, a)| t.dtype == a.dtype() && t.shape.as_slice() == a.shape())
                {
                    return Ok(c.clone());
                }
            }
        }
        let types: Vec<TensorType> = args.iter().map(|a| a.ty()).collect();
        let function = trace_function(key.name(), &types, trace)?;
        let program = self.prepare(&function)?;
        let op = Rc::new(CachedOp {
            key,
            types,
            function: Arc::new(function),
            program,
        });
        let mut ops = self.shared.ops.borrow_mut();
        if self.shared.op_count.get() >= OP_CACHE_CAPACITY {
            ops.clear();
            self.shared.op_count.set(0);
        }
        ops.entry(hash).or_default().push(op.clone());
        self.shared.op_count.set(self.shared.op_count.get() + 1);
        self.bump(|s| s.ops_compiled += 1);
        Ok(op)
    }

    /// Runs a cached op on operand values.
    pub(crate) fn run_op(&self, op: &CachedOp, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let outs = op
            .program
            .execute(inputs, &self.shared.extensions.borrow())?;
        let n = op.function.insts().len();
        self.bump(|s| {
            s.ops_run += 1;
            s.op_insts_run += n;
        });
        Ok(outs)
    }

    /// The transform of `w`'s structure (`w.mode`), from the cache or derived and prepared
    /// now.
    pub(crate) fn transform_for(&self, w: &Walk) -> Result<Rc<CachedTransform>> {
        let mut h = FxHasher::default();
        w.key.hash(&mut h);
        let hash = h.finish();
        if let Some(bucket) = self.shared.transforms.borrow().get(&hash) {
            if let Some(t) = bucket.iter().find(|t| t.derived.key == w.key) {
                return Ok(t.clone());
            }
        }
        let derived = derive(w, self.shared.ad.rules())?;
        let prepared = self.prepare(derived.program.as_ref())?;
        let t = Rc::new(CachedTransform { derived, prepared });
        let mut map = self.shared.transforms.borrow_mut();
        let count = &self.shared.transform_count;
        if count.get() >= TRANSFORM_CACHE_CAPACITY {
            map.clear();
            count.set(0);
        }
        map.entry(hash).or_default().push(t.clone());
        count.set(count.get() + 1);
        self.bump(|s| s.transforms_compiled += 1);
        Ok(t)
    }

    /// Runs a cached transform on the values bound to its parameters.
    pub(crate) fn run_transform(
        &self,
        t: &CachedTransform,
        inputs: &[Tensor],
    ) -> Result<Vec<Tensor>> {
        let out = t
            .prepared
            .execute(inputs, &self.shared.extensions.borrow())?;
        let n = t.derived.program.insts().len();
        self.bump(|s| {
            s.transforms_run += 1;
            s.transform_insts_run += n;
        });
        Ok(out)
    }

    /// Prepares `f` on the backend.
    fn prepare(&self, f: &Function) -> Result<Box<dyn PreparedProgram>> {
        Ok(self.shared.backend.prepare(f)?)
    }
}

/// Traces `trace` on placeholders of `types` and lowers it to an O1-optimized function
/// whose parameters are the operands, in order.
fn trace_function<F>(name: &str, types: &[TensorType], trace: F) -> Result<Function>
where
    F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<Vec<TracedTensor>>,
{
    let placeholders: Vec<TracedTensor> = types
        .iter()
        .map(|t| TracedTensor::input(t.dtype, &t.shape))
        .collect();
    let outs = trace(&placeholders)?;
    if outs.is_empty() {
        return Err(RuntimeError::invalid_op(name, "the op traced no results".to_string()).into());
    }
    let out_refs: Vec<&TracedTensor> = outs.iter().collect();
    let cut: Vec<&TracedTensor> = placeholders.iter().collect();
    let lowered = lower(&out_refs, &cut, LowerMode::Program)?;
    if lowered.params.len() != placeholders.len() {
        return Err(AdError::Internal(format!(
            "eager op `{name}` reads a placeholder that is not one of its operands"
        )));
    }
    let mut function = lowered.function;
    function.name = name.replace('.', "_");
    optimize(&mut function)?;
    Ok(function)
}

/// Runs the O1 pipeline on `f`.
pub(crate) fn optimize(f: &mut Function) -> Result<()> {
    Pipeline::for_level(OptLevel::O1)
        .run(f, &mut |_| {})
        .map_err(|e| RuntimeError::Pass {
            pass: "O1".into(),
            message: e.to_string(),
        })?;
    Ok(())
}
