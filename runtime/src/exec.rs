//! Execution: the [`Backend`] trait, extension kernel registries and [`GraphExecutor`].

use crate::compile::Program;
use crate::error::{Result, RuntimeError};
use crate::traced::TracedTensor;
use std::collections::HashMap;
use std::sync::Arc;
use tenferro_ir::{ExtensionOp, Function, Tensor};

/// A kernel of an extension op: takes the op (name, attributes, result types) and the
/// operand values, returns one tensor per result.
pub type ExtensionKernel =
    Arc<dyn Fn(&ExtensionOp, &[&Tensor]) -> Result<Vec<Tensor>> + Send + Sync>;

/// The extension kernels one executor knows. There is no global registry: each executor
/// (and each eager context) has its own.
#[derive(Clone, Default)]
pub struct ExtensionRegistry {
    kernels: HashMap<String, ExtensionKernel>,
}

impl ExtensionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ExtensionRegistry::default()
    }

    /// Registers the kernel of extension op `name`; an error if `name` already has one.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        kernel: impl Fn(&ExtensionOp, &[&Tensor]) -> Result<Vec<Tensor>> + Send + Sync + 'static,
    ) -> Result<()> {
        let name = name.into();
        if self.kernels.contains_key(&name) {
            return Err(RuntimeError::DuplicateKernel { op: name });
        }
        self.kernels.insert(name, Arc::new(kernel));
        Ok(())
    }

    /// The kernel of `name`, if registered.
    pub fn get(&self, name: &str) -> Option<&ExtensionKernel> {
        self.kernels.get(name)
    }

    /// Runs extension op `op` on `args`, checking the results against its declared types.
    pub fn run(&self, op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
        let k = self
            .get(&op.name)
            .ok_or_else(|| RuntimeError::MissingKernel {
                op: op.name.clone(),
            })?;
        let out = k(op, args)?;
        if out.len() != op.results.len() || out.iter().zip(&op.results).any(|(t, ty)| t.ty() != *ty)
        {
            return Err(RuntimeError::kernel(
                &op.name,
                format!(
                    "kernel returned {:?}, declared {:?}",
                    out.iter().map(|t| t.ty().to_string()).collect::<Vec<_>>(),
                    op.results.iter().map(|t| t.to_string()).collect::<Vec<_>>()
                ),
            ));
        }
        Ok(out)
    }

    /// Names of the registered ops.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.kernels.keys().map(|s| s.as_str()).collect();
        v.sort();
        v
    }
}

/// A device that runs functions. `prepare` is called once per program (compile-time work:
/// fusion, schedules, memory plan); `execute` runs a prepared program on input values.
pub trait Backend {
    /// The backend's compiled form of a function.
    type Prepared;

    /// Compiles `f` for this backend. An error for ops the backend cannot run.
    fn prepare(&self, f: &Function) -> Result<Self::Prepared>;

    /// Runs a prepared function; `inputs` are bound to its parameters in order.
    fn execute(
        &self,
        prepared: &Self::Prepared,
        inputs: &[Tensor],
        extensions: &ExtensionRegistry,
    ) -> Result<Vec<Tensor>>;
}

/// How many prepared programs an executor keeps.
const CACHE_CAPACITY: usize = 64;

/// Runs compiled programs on a backend. Each program is prepared once and cached; running
/// it again (also with new placeholder values) costs only execution.
pub struct GraphExecutor<B: Backend> {
    backend: B,
    extensions: ExtensionRegistry,
    cache: Vec<(Arc<Function>, Arc<B::Prepared>)>,
}

impl<B: Backend> GraphExecutor<B> {
    /// An executor on `backend` with no extension kernels.
    pub fn new(backend: B) -> Self {
        GraphExecutor {
            backend,
            extensions: ExtensionRegistry::new(),
            cache: Vec::new(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The extension kernels registered on this executor.
    pub fn extensions(&self) -> &ExtensionRegistry {
        &self.extensions
    }

    /// Registers an extension's kernels on this executor only
    /// (e.g. `executor.register_extension(tenferro_linalg::register_runtime)`).
    pub fn register_extension<F>(&mut self, register: F) -> Result<()>
    where
        F: FnOnce(&mut ExtensionRegistry) -> Result<()>,
    {
        register(&mut self.extensions)
    }

    /// The backend's prepared form of `program`, from the cache or freshly prepared.
    pub fn prepare(&mut self, program: &Program) -> Result<Arc<B::Prepared>> {
        if let Some((_, p)) = self
            .cache
            .iter()
            .find(|(f, _)| Arc::ptr_eq(f, &program.function))
        {
            return Ok(p.clone());
        }
        let p = Arc::new(self.backend.prepare(&program.function)?);
        if self.cache.len() >= CACHE_CAPACITY {
            self.cache.remove(0);
        }
        self.cache.push((program.function.clone(), p.clone()));
        Ok(p)
    }

    /// Runs a program with one output and no placeholders.
    pub fn run(&mut self, program: &Program) -> Result<Tensor> {
        self.run_with_inputs(program, &[])
    }

    /// Runs a program and returns every output.
    pub fn run_many(&mut self, program: &Program) -> Result<Vec<Tensor>> {
        self.run_many_with_inputs(program, &[])
    }

    /// Runs a program with one output, binding placeholders to values.
    pub fn run_with_inputs(
        &mut self,
        program: &Program,
        inputs: &[(&TracedTensor, Tensor)],
    ) -> Result<Tensor> {
        let n = program.function.outputs().len();
        if n != 1 {
            return Err(RuntimeError::Invalid(format!(
                "run: the program has {n} outputs; use run_many / run_many_with_inputs"
            )));
        }
        Ok(self.run_many_with_inputs(program, inputs)?.remove(0))
    }

    /// Runs a program, binding placeholders to values, and returns every output.
    pub fn run_many_with_inputs(
        &mut self,
        program: &Program,
        inputs: &[(&TracedTensor, Tensor)],
    ) -> Result<Vec<Tensor>> {
        let args = bind_inputs(program, inputs)?;
        let prepared = self.prepare(program)?;
        self.backend.execute(&prepared, &args, &self.extensions)
    }
}

/// Orders the given placeholder values by the program's parameters, checking types.
fn bind_inputs(program: &Program, inputs: &[(&TracedTensor, Tensor)]) -> Result<Vec<Tensor>> {
    // A placeholder the program does not read (say `x` for a gradient that is constant in
    // `x`) may be bound: its value is ignored. A value that is not a placeholder at all, or
    // a placeholder bound twice, is a mistake.
    for (k, (t, v)) in inputs.iter().enumerate() {
        if !t.is_input() {
            return Err(RuntimeError::BadInput(format!(
                "{t:?} is not a placeholder (made by TracedTensor::input), so it cannot be bound"
            )));
        }
        let declared = t.ty()?;
        if v.ty() != declared {
            return Err(RuntimeError::BadInput(format!(
                "placeholder {t:?} has type {declared} but was given a value of type {}",
                v.ty()
            )));
        }
        if inputs[..k].iter().any(|(u, _)| u.same_as(t)) {
            return Err(RuntimeError::BadInput(format!(
                "placeholder {t:?} was given more than once"
            )));
        }
    }
    let params = program.function.params();
    program
        .inputs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ty = program.function.ty(params[i]);
            let given: Vec<&Tensor> = inputs
                .iter()
                .filter(|(t, _)| t.same_as(p))
                .map(|(_, v)| v)
                .collect();
            match given.as_slice() {
                [] => Err(RuntimeError::UnboundInput {
                    index: i,
                    ty: p.described(ty),
                }),
                [v] if v.ty() == *ty => Ok((*v).clone()),
                [v] => Err(RuntimeError::BadInput(format!(
                    "placeholder #{i} ({}) was given a value of type {}",
                    p.described(ty),
                    v.ty()
                ))),
                _ => Err(RuntimeError::BadInput(format!(
                    "placeholder #{i} ({}) was given more than once",
                    p.described(ty)
                ))),
            }
        })
        .collect()
}
