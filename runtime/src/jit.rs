//! Compiled functions: [`Jit`] wraps a Rust closure over [`TracedTensor`]s and runs it as
//! a compiled program on host [`Tensor`]s.
//!
//! The first call with a given input signature (the dtype and shape of every input, plus
//! the names of structured parameters) traces the closure on placeholders, compiles the
//! trace and caches the program; later calls with the same signature only bind the inputs
//! and run. A call with a new shape simply traces and compiles again (tracing and
//! compiling a small program takes well under a millisecond), and the cache is a bounded
//! LRU ([`Jit::capacity`]), so a stream of shapes cannot grow memory without bound.
//! [`Jit::stats`] counts hits, misses and traces.
//!
//! ```
//! # use tenferro_runtime::{jit::Jit, Backend, ExtensionRegistry, Result, Tensor, TracedTensor};
//! # fn demo<B: Backend>(backend: B) -> Result<()> {
//! let mut f = Jit::new(backend, |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
//!     Ok(vec![&xs[0] * &xs[1] + 1.0])
//! });
//! let a = Tensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?;
//! let y = f.call(&[a.clone(), a])?; // traces, compiles, runs
//! # Ok(()) }
//! ```
//!
//! The closure may use anything that builds traced values, including autodiff
//! (`AdContext::grad` of a loss with respect to an input placeholder), so a whole training
//! step is one compiled function. Its error type is any `E: From<RuntimeError>` (for
//! instance `AdError` or `Box<dyn Error + Send + Sync>`).
//!
//! [`Params`] is an ordered map from names to values, so a model's weights travel as one
//! argument: [`Jit::call_params`] flattens a `Params<Tensor>` (in name order) into
//! placeholders, hands the closure a `Params<TracedTensor>`, and rebuilds the returned
//! `Params<TracedTensor>` as a `Params<Tensor>`.

use crate::compile::{CompileOptions, GraphCompiler, Program};
use crate::error::{Result, RuntimeError};
use crate::exec::{Backend, GraphExecutor};
use crate::traced::TracedTensor;
use std::collections::BTreeMap;
use tenferro_ir::{Tensor, TensorType};

/// An ordered map from parameter names to values (`Tensor` on the host, `TracedTensor`
/// inside a traced function). Iteration, flattening and the cache signature use name
/// order, so two collections with the same names line up element by element.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<T> {
    map: BTreeMap<String, T>,
}

impl<T> Default for Params<T> {
    fn default() -> Self {
        Params {
            map: BTreeMap::new(),
        }
    }
}

impl<T> Params<T> {
    /// An empty collection.
    pub fn new() -> Self {
        Params::default()
    }

    /// Sets `name` to `value`, returning the previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: T) -> Option<T> {
        self.map.insert(name.into(), value)
    }

    /// Builder form of [`Params::insert`].
    pub fn with(mut self, name: impl Into<String>, value: T) -> Self {
        self.insert(name, value);
        self
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.map.get(name)
    }

    /// The value of `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&T> {
        self.map.get(name).ok_or_else(|| {
            RuntimeError::Invalid(format!(
                "Params: no parameter named `{name}` (have {:?})",
                self.names().collect::<Vec<_>>()
            ))
        })
    }

    /// Mutable access to the value of `name`.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.map.get_mut(name)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// `true` when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(|s| s.as_str())
    }

    /// `(name, value)` pairs, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The values, in name order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.map.values()
    }

    /// A collection with the same names and `f` applied to every value.
    pub fn map<U>(&self, mut f: impl FnMut(&str, &T) -> U) -> Params<U> {
        Params {
            map: self.map.iter().map(|(k, v)| (k.clone(), f(k, v))).collect(),
        }
    }

    /// [`Params::map`] with a fallible `f`.
    pub fn try_map<U, E>(
        &self,
        mut f: impl FnMut(&str, &T) -> std::result::Result<U, E>,
    ) -> std::result::Result<Params<U>, E> {
        let mut map = BTreeMap::new();
        for (k, v) in &self.map {
            map.insert(k.clone(), f(k, v)?);
        }
        Ok(Params { map })
    }

    /// Combines two collections with the same names entry by entry; an error if the names
    /// differ.
    pub fn zip_map<U, V>(
        &self,
        other: &Params<U>,
        mut f: impl FnMut(&str, &T, &U) -> V,
    ) -> Result<Params<V>> {
        self.check_same_names(other)?;
        Ok(Params {
            map: self
                .map
                .iter()
                .zip(other.map.values())
                .map(|((k, a), b)| (k.clone(), f(k, a, b)))
                .collect(),
        })
    }

    /// An error unless `other` has exactly the same names.
    pub fn check_same_names<U>(&self, other: &Params<U>) -> Result<()> {
        if self.map.len() != other.map.len() || self.map.keys().ne(other.map.keys()) {
            return Err(RuntimeError::Invalid(format!(
                "Params: the names differ: {:?} vs {:?}",
                self.names().collect::<Vec<_>>(),
                other.names().collect::<Vec<_>>()
            )));
        }
        Ok(())
    }

    /// The values in name order, consuming the collection.
    pub fn into_values(self) -> Vec<T> {
        self.map.into_values().collect()
    }

    /// A collection from names and values given in the same order.
    pub fn from_names_values(
        names: impl IntoIterator<Item = String>,
        values: impl IntoIterator<Item = T>,
    ) -> Self {
        Params {
            map: names.into_iter().zip(values).collect(),
        }
    }
}

impl<T, S: Into<String>> FromIterator<(S, T)> for Params<T> {
    fn from_iter<I: IntoIterator<Item = (S, T)>>(iter: I) -> Self {
        Params {
            map: iter.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }
}

/// `params["w"]` on traced parameters. A missing name does not panic: it gives a value that
/// carries the error (naming the name, the names there are and the caller's line), reported
/// by the next fallible call as every traced error is. (That value is leaked: a few hundred
/// bytes per failed lookup.) Host-tensor collections have [`Params::get`] and
/// [`Params::require`] instead.
impl std::ops::Index<&str> for Params<TracedTensor> {
    type Output = TracedTensor;
    #[track_caller]
    fn index(&self, name: &str) -> &TracedTensor {
        match self.map.get(name) {
            Some(t) => t,
            None => {
                let at = std::panic::Location::caller();
                let e = RuntimeError::Invalid(format!(
                    "Params: no parameter named `{name}` (names: {:?}) (at {}:{}:{})",
                    self.names().collect::<Vec<_>>(),
                    at.file(),
                    at.line(),
                    at.column()
                ));
                Box::leak(Box::new(TracedTensor::from_error(e)))
            }
        }
    }
}

impl Params<Tensor> {
    /// One placeholder per entry, of the entry's type and named after it.
    pub fn placeholders(&self) -> Params<TracedTensor> {
        self.map(|n, t| TracedTensor::input_named(n, t.dtype(), t.shape()))
    }
}

/// Counters of a [`Jit`]'s program cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitStats {
    /// Calls that found their program in the cache.
    pub hits: u64,
    /// Calls that did not (and so traced).
    pub misses: u64,
    /// Times the closure was traced (a trace or compile error counts too).
    pub traces: u64,
    /// Programs dropped from the cache to make room.
    pub evictions: u64,
}

/// The cache key: every input's type, and the names of the structured parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Signature {
    names: Vec<String>,
    types: Vec<TensorType>,
}

struct Entry {
    /// `None` when the function has no outputs.
    program: Option<Program>,
    placeholders: Vec<TracedTensor>,
    /// Names of the structured outputs (first outputs), for `call_params`.
    out_names: Vec<String>,
}

/// The default number of programs a [`Jit`] keeps.
pub const DEFAULT_JIT_CAPACITY: usize = 32;

/// A compiled function: a closure over traced values, traced and compiled once per input
/// signature and run on a [`Backend`] (see the [module documentation](self)).
pub struct Jit<B: Backend, F> {
    f: F,
    executor: GraphExecutor<B>,
    compiler: GraphCompiler,
    /// Least recently used first.
    cache: Vec<(Signature, Entry)>,
    capacity: usize,
    stats: JitStats,
}

impl<B: Backend, F> Jit<B, F> {
    /// Compiles `f` for `backend` with default options (O2) and a cache of
    /// [`DEFAULT_JIT_CAPACITY`] programs.
    pub fn new(backend: B, f: F) -> Self {
        Jit::with_executor(GraphExecutor::new(backend), f)
    }

    /// As [`Jit::new`] on an existing executor (with its extension kernels registered).
    pub fn with_executor(executor: GraphExecutor<B>, f: F) -> Self {
        Jit {
            f,
            executor,
            compiler: GraphCompiler::new(),
            cache: Vec::new(),
            capacity: DEFAULT_JIT_CAPACITY,
            stats: JitStats::default(),
        }
    }

    /// Sets the compile options (clears the cache).
    pub fn compile_options(mut self, options: CompileOptions) -> Self {
        self.compiler = GraphCompiler::with_options(options);
        self.cache.clear();
        self
    }

    /// Sets how many programs the cache keeps (at least one).
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        while self.cache.len() > self.capacity {
            self.cache.remove(0);
        }
        self
    }

    /// The cache counters.
    pub fn stats(&self) -> JitStats {
        self.stats
    }

    /// Number of programs in the cache.
    pub fn cached_programs(&self) -> usize {
        self.cache.len()
    }

    /// The executor (to register extensions: `jit.executor_mut().register_extension(..)`).
    pub fn executor_mut(&mut self) -> &mut GraphExecutor<B> {
        &mut self.executor
    }

    /// The most recently used program, for inspection (`None` before the first call or
    /// when the function has no outputs).
    pub fn last_program(&self) -> Option<&Program> {
        self.cache.last().and_then(|(_, e)| e.program.as_ref())
    }

    /// Finds or builds the entry of `sig` (moving it to the back of the LRU order) and
    /// runs it on `inputs`.
    fn run_cached<E: From<RuntimeError>>(
        &mut self,
        sig: Signature,
        inputs: &[Tensor],
        trace: impl FnOnce(
            &mut F,
            &[TracedTensor],
        ) -> std::result::Result<(Vec<TracedTensor>, Vec<String>), E>,
    ) -> std::result::Result<(Vec<Tensor>, Vec<String>), E> {
        if let Some(pos) = self.cache.iter().position(|(s, _)| *s == sig) {
            self.stats.hits += 1;
            let item = self.cache.remove(pos);
            self.cache.push(item);
        } else {
            self.stats.misses += 1;
            self.stats.traces += 1;
            // named after the parameters (`Params` entries) or the position (`arg{i}`)
            let n = sig.names.len();
            let placeholders: Vec<TracedTensor> = sig
                .types
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let name = match sig.names.get(i) {
                        Some(s) => s.clone(),
                        None => format!("arg{}", i - n),
                    };
                    TracedTensor::input_named(name, t.dtype, &t.shape)
                })
                .collect();
            let (outputs, out_names) = trace(&mut self.f, &placeholders)?;
            let program = if outputs.is_empty() {
                None
            } else {
                let refs: Vec<&TracedTensor> = outputs.iter().collect();
                Some(self.compiler.compile_many(&refs)?)
            };
            if self.cache.len() >= self.capacity {
                self.cache.remove(0);
                self.stats.evictions += 1;
            }
            self.cache.push((
                sig,
                Entry {
                    program,
                    placeholders,
                    out_names,
                },
            ));
        }
        let entry = &self.cache.last().expect("just inserted").1;
        let out_names = entry.out_names.clone();
        let Some(program) = &entry.program else {
            return Ok((Vec::new(), out_names));
        };
        let bindings: Vec<(&TracedTensor, Tensor)> = entry
            .placeholders
            .iter()
            .zip(inputs)
            .map(|(p, v)| (p, v.clone()))
            .collect();
        let out = self.executor.run_many_with_inputs(program, &bindings)?;
        Ok((out, out_names))
    }
}

impl<B, F, E> Jit<B, F>
where
    B: Backend,
    F: FnMut(&[TracedTensor]) -> std::result::Result<Vec<TracedTensor>, E>,
    E: From<RuntimeError>,
{
    /// Runs the function on `inputs`: traces and compiles on the first call with these
    /// input types, then only runs.
    pub fn call(&mut self, inputs: &[Tensor]) -> std::result::Result<Vec<Tensor>, E> {
        let sig = Signature {
            names: Vec::new(),
            types: inputs.iter().map(|t| t.ty()).collect(),
        };
        let (out, _) = self.run_cached::<E>(sig, inputs, |f, ph| Ok((f(ph)?, Vec::new())))?;
        Ok(out)
    }

    /// [`Jit::call`] for a function with exactly `N` outputs, returned as an array so
    /// they unpack like a JAX tuple: `let [v, e] = step.call_array(&[v])?;`. An error
    /// naming `Jit::call_array` and both counts when the function returns another number
    /// of outputs.
    ///
    /// ```
    /// # use tenferro_runtime::{jit::Jit, Backend, Result, Tensor, TracedTensor};
    /// # fn demo<B: Backend>(backend: B) -> Result<()> {
    /// let mut f = Jit::new(backend, |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>> {
    ///     Ok(vec![&xs[0] + 1.0, &xs[0] * 2.0])
    /// });
    /// let [a, b] = f.call_array(&[Tensor::scalar(1.0_f64)])?;
    /// # Ok(()) }
    /// ```
    pub fn call_array<const N: usize>(
        &mut self,
        inputs: &[Tensor],
    ) -> std::result::Result<[Tensor; N], E> {
        let out = self.call(inputs)?;
        let got = out.len();
        out.try_into().map_err(|_| {
            E::from(RuntimeError::invalid_op(
                "Jit::call_array",
                format!("expected {N} outputs, the function returned {got}"),
            ))
        })
    }
}

/// The closure type of a structured [`Jit`]: parameters and further inputs in, updated
/// parameters and further outputs out.
pub type ParamsResult<E> = std::result::Result<(Params<TracedTensor>, Vec<TracedTensor>), E>;

impl<B, F, E> Jit<B, F>
where
    B: Backend,
    F: FnMut(&Params<TracedTensor>, &[TracedTensor]) -> ParamsResult<E>,
    E: From<RuntimeError>,
{
    /// Runs a function of a named parameter collection and further inputs, returning a
    /// parameter collection (for instance the updated weights of a training step) and
    /// further outputs. The names are part of the signature.
    pub fn call_params(
        &mut self,
        params: &Params<Tensor>,
        inputs: &[Tensor],
    ) -> std::result::Result<(Params<Tensor>, Vec<Tensor>), E> {
        let names: Vec<String> = params.names().map(str::to_string).collect();
        let n = names.len();
        let mut flat: Vec<Tensor> = params.values().cloned().collect();
        flat.extend(inputs.iter().cloned());
        let sig = Signature {
            names: names.clone(),
            types: flat.iter().map(|t| t.ty()).collect(),
        };
        let (mut out, out_names) = self.run_cached::<E>(sig, &flat, |f, ph| {
            let p = Params::from_names_values(names.iter().cloned(), ph[..n].iter().cloned());
            let (po, rest) = f(&p, &ph[n..])?;
            let out_names: Vec<String> = po.names().map(str::to_string).collect();
            let mut outs = po.into_values();
            outs.extend(rest);
            Ok((outs, out_names))
        })?;
        let rest = out.split_off(out_names.len());
        Ok((Params::from_names_values(out_names, out), rest))
    }
}
