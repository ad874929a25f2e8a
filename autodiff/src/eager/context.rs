//! [`EagerContext`]: the backend, extension kernels, AD rules, program caches and grad mode
//! of a family of eager tensors; and the op path every eager op takes ([`OpKey`],
//! [`EagerContext::apply_traced`]).

use super::graph::{Node, NodeRef};
use super::tensor::EagerTensor;
use crate::context::AdContext;
use crate::error::{AdError, Result};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use tenferro_ir::{BinaryOp, CmpOp, DType, Element, Function, Op, Tensor, TensorType};
use tenferro_runtime::{
    lower, Backend, ExtensionRegistry, LowerMode, OptLevel, Pipeline, RuntimeError, TracedTensor,
};

/// A function prepared on some backend (the backend type is erased so that eager tensors
/// are not generic).
pub(crate) trait PreparedProgram {
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

    fn name(&self) -> &str {
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

/// Counters of the work an [`EagerContext`] did (to check that caching works).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EagerStats {
    /// Ops traced, optimized and prepared (cache misses).
    pub ops_compiled: usize,
    /// Ops run.
    pub ops_run: usize,
    /// Transformed programs (backward, grad, vjp, jvp) derived and prepared.
    pub transforms_compiled: usize,
    /// Transformed programs run.
    pub transforms_run: usize,
}

/// A fast non-cryptographic hasher for the cache keys (the multiply-rotate scheme of
/// Firefox and rustc); keys are program structure, not adversarial input.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        for &b in chunks.remainder() {
            self.write_u64(b as u64);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Bounds of the caches; a full cache is cleared.
const OP_CACHE_CAPACITY: usize = 4096;
pub(crate) const TRANSFORM_CACHE_CAPACITY: usize = 512;

pub(crate) struct Shared {
    backend: Box<dyn ErasedBackend>,
    pub(crate) ad: AdContext,
    pub(crate) extensions: RefCell<ExtensionRegistry>,
    ops: RefCell<HashMap<u64, Vec<Rc<CachedOp>>>>,
    op_count: Cell<usize>,
    pub(crate) transforms: RefCell<HashMap<u64, Vec<Rc<super::graph::CachedTransform>>>>,
    pub(crate) transform_count: Cell<usize>,
    grad_enabled: Cell<bool>,
    pub(crate) stats: Cell<EagerStats>,
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
/// let loss = (&x * &x).unwrap().reduce_sum(&[0]).unwrap();
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

    pub(crate) fn bump(&self, f: impl FnOnce(&mut EagerStats)) {
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

    /// An untracked tensor holding `value`.
    pub fn from_tensor(&self, value: Tensor) -> EagerTensor {
        EagerTensor::new(self.clone(), value, None)
    }

    /// A tensor from column-major data; an error if the length does not match `shape`.
    pub fn from_vec_col_major<T: Element>(
        &self,
        shape: Vec<usize>,
        data: Vec<T>,
    ) -> Result<EagerTensor> {
        let t = Tensor::from_vec_col_major(shape, data)
            .map_err(|e| RuntimeError::invalid_op("from_vec_col_major", e.to_string()))?;
        Ok(self.from_tensor(t))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(&self, v: T) -> EagerTensor {
        self.from_tensor(Tensor::scalar(v))
    }

    /// A tensor of type `ty` with every element `v` (converted to the dtype); an error
    /// naming `full` when the element count overflows or the machine cannot provide the
    /// bytes.
    pub fn full(&self, ty: &TensorType, v: f64) -> Result<EagerTensor> {
        self.full_for("full", ty, v)
    }

    /// Zeros of type `ty`; errors as [`EagerContext::full`], naming `zeros`.
    pub fn zeros(&self, ty: &TensorType) -> Result<EagerTensor> {
        self.full_for("zeros", ty, 0.0)
    }

    fn full_for(&self, op: &str, ty: &TensorType, v: f64) -> Result<EagerTensor> {
        let t = Tensor::try_full_for(op, ty, v).map_err(RuntimeError::Ir)?;
        Ok(self.from_tensor(t))
    }

    /// Indices along axis `dim` of a tensor of type `dtype[shape]`.
    pub fn iota(&self, dtype: DType, shape: &[usize], dim: usize) -> Result<EagerTensor> {
        let op = Op::Iota {
            ty: TensorType::new(dtype, shape.to_vec()),
            dim,
        };
        self.apply_traced1(OpKey::Ir(op), &[], |_| {
            Ok(vec![TracedTensor::iota(dtype, shape, dim)?])
        })
    }

    /// Runs an op eagerly: `trace` builds the op on placeholders of the operands' types
    /// (it is called only when `key` and those types are not in the cache yet); the
    /// program it traces is lowered, optimized, prepared, cached and run on the operands'
    /// values. Results are recorded on the tape when grad mode is on and an operand is
    /// tracked. This is how every eager method is built, and how extension crates add
    /// their own (`tenferro_linalg::EagerTensorLinalgExt`).
    pub fn apply_traced<F>(
        &self,
        key: OpKey,
        args: &[&EagerTensor],
        trace: F,
    ) -> Result<Vec<EagerTensor>>
    where
        F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<Vec<TracedTensor>>,
    {
        for (i, a) in args.iter().enumerate() {
            if !Rc::ptr_eq(&a.ctx.shared, &self.shared) {
                return Err(RuntimeError::invalid_op(
                    key.name(),
                    format!("operand #{i} ({}) belongs to another EagerContext", a.ty()),
                )
                .into());
            }
        }
        // Eager ops report a tracing error at once, at the user's call: the location the
        // traced op recorded is this crate's, so it is dropped.
        let op = self.cached_op(key, args, trace).map_err(|e| match e {
            AdError::Runtime(r) => AdError::Runtime(r.unlocated()),
            other => other,
        })?;
        let inputs: Vec<Tensor> = args.iter().map(|a| a.value.clone()).collect();
        let outs = op
            .program
            .execute(&inputs, &self.shared.extensions.borrow())?;
        self.bump(|s| s.ops_run += 1);
        let node = if self.is_grad_enabled() && args.iter().any(|a| a.node.is_some()) {
            Some(Rc::new(Node::Apply {
                func: op.function.clone(),
                values: inputs,
                args: args.iter().map(|a| a.node.clone()).collect(),
            }))
        } else {
            None
        };
        Ok(outs
            .into_iter()
            .enumerate()
            .map(|(index, v)| {
                let r = node.as_ref().map(|n| NodeRef {
                    node: n.clone(),
                    index,
                });
                EagerTensor::new(self.clone(), v, r)
            })
            .collect())
    }

    /// [`EagerContext::apply_traced`] for ops with one result.
    pub fn apply_traced1<F>(
        &self,
        key: OpKey,
        args: &[&EagerTensor],
        trace: F,
    ) -> Result<EagerTensor>
    where
        F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<Vec<TracedTensor>>,
    {
        let mut v = self.apply_traced(key, args, trace)?;
        if v.len() != 1 {
            return Err(AdError::BadArgument {
                transform: "apply_traced1",
                message: format!("the op has {} results; use apply_traced", v.len()),
            });
        }
        Ok(v.remove(0))
    }

    /// The prepared program of `key` on the operands' types, from the cache or traced now.
    fn cached_op<F>(&self, key: OpKey, args: &[&EagerTensor], trace: F) -> Result<Rc<CachedOp>>
    where
        F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<Vec<TracedTensor>>,
    {
        let mut h = FxHasher::default();
        key.hash(&mut h);
        for a in args {
            a.value.dtype().hash(&mut h);
            a.value.shape().hash(&mut h);
        }
        let hash = h.finish();
        if let Some(bucket) = self.shared.ops.borrow().get(&hash) {
            for c in bucket {
                if c.key == key
                    && c.types.len() == args.len()
                    && c.types.iter().zip(args).all(|(t, a)| {
                        t.dtype == a.value.dtype() && t.shape.as_slice() == a.value.shape()
                    })
                {
                    return Ok(c.clone());
                }
            }
        }
        let types: Vec<TensorType> = args.iter().map(|a| a.value.ty()).collect();
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

    /// Prepares `f` on the backend.
    pub(crate) fn prepare(&self, f: &Function) -> Result<Box<dyn PreparedProgram>> {
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
