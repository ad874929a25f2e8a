//! The compiler driver: lowers traced values to a function and runs the pass pipeline.

use crate::error::{Result, RuntimeError};
use crate::traced::{lower, LowerMode, TracedTensor};
use std::fmt;
use std::sync::Arc;
use tenferro_ir::{Function, TensorType};
use tenferro_passes::{OptLevel, PassEvent, PassRecord, PassSpec, Pipeline};

/// Observer called after every pass with the pass name, its statistics and the IR.
pub type PassObserver = Arc<dyn Fn(&PassEvent<'_>) + Send + Sync>;

/// Settings of [`GraphCompiler`]: the optimization level or an explicit pass list, whether
/// to verify after each pass, and an observer.
#[derive(Clone, Default)]
pub struct CompileOptions {
    /// Optimization level (default O2).
    pub opt_level: OptLevel,
    /// When set, replaces the passes of `opt_level`.
    pub passes: Option<Vec<PassSpec>>,
    /// Verify after every pass.
    pub verify_each: bool,
    /// Called after every pass.
    pub observer: Option<PassObserver>,
}

impl CompileOptions {
    /// Default options (O2).
    pub fn new() -> Self {
        CompileOptions::default()
    }

    /// Sets the optimization level.
    pub fn opt_level(mut self, level: OptLevel) -> Self {
        self.opt_level = level;
        self
    }

    /// Replaces the level's passes with an explicit list.
    pub fn passes(mut self, passes: Vec<PassSpec>) -> Self {
        self.passes = Some(passes);
        self
    }

    /// Verify after every pass.
    pub fn verify_each(mut self, on: bool) -> Self {
        self.verify_each = on;
        self
    }

    /// Sets the observer called after every pass.
    pub fn observer(mut self, f: impl Fn(&PassEvent<'_>) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(f));
        self
    }

    /// The pipeline these options describe.
    pub fn pipeline(&self) -> Pipeline {
        let mut p = match &self.passes {
            Some(list) => Pipeline {
                passes: list.clone(),
                verify_each: false,
            },
            None => Pipeline::for_level(self.opt_level),
        };
        p.verify_each = self.verify_each;
        p
    }
}

impl fmt::Debug for CompileOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompileOptions")
            .field("pipeline", &self.pipeline().to_string())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// A compiled program: an optimized function plus the placeholders it reads, in
/// parameter order. Backend-independent; executors prepare it once and cache that.
#[derive(Clone)]
pub struct Program {
    pub(crate) function: Arc<Function>,
    pub(crate) inputs: Vec<TracedTensor>,
    pub(crate) records: Vec<PassRecord>,
}

impl Program {
    /// The optimized function.
    pub fn function(&self) -> &Function {
        &self.function
    }

    /// The shared function (its address identifies the program in executor caches).
    pub fn function_arc(&self) -> &Arc<Function> {
        &self.function
    }

    /// Placeholders bound to the function's parameters, in order.
    pub fn inputs(&self) -> &[TracedTensor] {
        &self.inputs
    }

    /// What each pass did.
    pub fn pass_records(&self) -> &[PassRecord] {
        &self.records
    }

    /// Types of the outputs.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.function.output_types()
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", tenferro_ir::print::print(&self.function))
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Lowers traced values to IR and runs the pipeline of its [`CompileOptions`].
#[derive(Clone, Debug, Default)]
pub struct GraphCompiler {
    options: CompileOptions,
}

impl GraphCompiler {
    /// A compiler with default options (O2).
    pub fn new() -> Self {
        GraphCompiler::default()
    }

    /// A compiler with the given options.
    pub fn with_options(options: CompileOptions) -> Self {
        GraphCompiler { options }
    }

    /// Its options.
    pub fn options(&self) -> &CompileOptions {
        &self.options
    }

    /// Compiles one traced value into a program with one output.
    pub fn compile(&mut self, t: &TracedTensor) -> Result<Program> {
        self.compile_many(&[t])
    }

    /// Compiles several traced values into one program with one output each; shared work
    /// is computed once.
    pub fn compile_many(&mut self, outputs: &[&TracedTensor]) -> Result<Program> {
        if outputs.is_empty() {
            return Err(RuntimeError::Invalid(
                "compile_many: no outputs given".into(),
            ));
        }
        let lowered = lower(outputs, &[], LowerMode::Program)?;
        let mut function = lowered.function;
        let pipeline = self.options.pipeline();
        let observer = self.options.observer.clone();
        let mut notify = |e: &PassEvent<'_>| {
            if let Some(o) = &observer {
                o(e)
            }
        };
        let records = pipeline
            .run(&mut function, &mut notify)
            .map_err(|e| RuntimeError::Pass {
                pass: match &e {
                    tenferro_passes::PassError::Verify { after, .. } => after.clone(),
                    tenferro_passes::PassError::Failed { pass, .. } => pass.clone(),
                    tenferro_passes::PassError::UnknownPass(p) => p.clone(),
                },
                message: e.to_string(),
            })?;
        Ok(Program {
            function: Arc::new(function),
            inputs: lowered.params,
            records,
        })
    }
}
