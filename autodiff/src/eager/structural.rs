//! The structural ops and constructors of `tenferro_runtime::structural` /
//! `tenferro_runtime::constructors` on [`EagerTensor`] and [`EagerContext`]: the same
//! names and semantics, each the traced composite run through
//! [`EagerContext::apply_traced`] (so results, errors and gradients are those of traced
//! mode), returning `Result` at once.

use super::context::{EagerContext, OpKey};
use super::tensor::EagerTensor;
use crate::error::Result;
use tenferro_ir::{DType, TensorType};
use tenferro_runtime::{RuntimeError, TracedTensor};

fn u(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

fn dt(d: DType) -> i64 {
    match d {
        DType::F32 => 0,
        DType::F64 => 1,
        DType::C32 => 2,
        DType::C64 => 3,
        DType::I64 => 4,
        DType::Bool => 5,
        DType::I32 => 6,
    }
}

fn bits(v: f64) -> i64 {
    v.to_bits() as i64
}

/// Several lists as one key: each list prefixed by its length.
fn key(parts: &[&[i64]]) -> Vec<i64> {
    let mut k = Vec::new();
    for p in parts {
        k.push(p.len() as i64);
        k.extend_from_slice(p);
    }
    k
}

impl EagerTensor {
    fn s1<F>(
        &self,
        name: &'static str,
        ints: Vec<i64>,
        others: &[&EagerTensor],
        f: F,
    ) -> Result<EagerTensor>
    where
        F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<TracedTensor>,
    {
        let mut args: Vec<&EagerTensor> = vec![self];
        args.extend_from_slice(others);
        self.ctx
            .apply_traced1(OpKey::named(name, ints), &args, |t| Ok(vec![f(t)?]))
    }

    /// [`TracedTensor::reverse`] eagerly.
    pub fn reverse(&self, axes: &[usize]) -> Result<EagerTensor> {
        self.s1("reverse", u(axes), &[], |t| t[0].reverse(axes))
    }

    /// [`TracedTensor::slice_strided`] eagerly.
    pub fn slice_strided(
        &self,
        starts: &[usize],
        limits: &[usize],
        strides: &[usize],
    ) -> Result<EagerTensor> {
        let k = key(&[&u(starts), &u(limits), &u(strides)]);
        self.s1("slice_strided", k, &[], |t| {
            t[0].slice_strided(starts, limits, strides)
        })
    }

    /// [`TracedTensor::pad_general`] eagerly.
    pub fn pad_general(
        &self,
        low: &[i64],
        high: &[i64],
        interior: &[usize],
        value: f64,
    ) -> Result<EagerTensor> {
        let k = key(&[low, high, &u(interior), &[bits(value)]]);
        self.s1("pad_general", k, &[], |t| {
            t[0].pad_general(low, high, interior, value)
        })
    }

    /// [`TracedTensor::dynamic_slice`] eagerly (the starts are i64 scalar tensors).
    pub fn dynamic_slice(&self, starts: &[&EagerTensor], sizes: &[usize]) -> Result<EagerTensor> {
        self.s1("dynamic_slice", u(sizes), starts, |t| {
            let s: Vec<&TracedTensor> = t[1..].iter().collect();
            t[0].dynamic_slice(&s, sizes)
        })
    }

    /// [`TracedTensor::dynamic_update_slice`] eagerly.
    pub fn dynamic_update_slice(
        &self,
        update: &EagerTensor,
        starts: &[&EagerTensor],
    ) -> Result<EagerTensor> {
        let mut others = vec![update];
        others.extend_from_slice(starts);
        self.s1("dynamic_update_slice", vec![], &others, |t| {
            let s: Vec<&TracedTensor> = t[2..].iter().collect();
            t[0].dynamic_update_slice(&t[1], &s)
        })
    }

    /// [`TracedTensor::stack`] eagerly.
    pub fn stack(parts: &[&EagerTensor], axis: isize) -> Result<EagerTensor> {
        let Some(first) = parts.first() else {
            return Err(RuntimeError::invalid_op(
                "stack",
                "no operands given, expected at least one".to_string(),
            )
            .into());
        };
        first
            .ctx
            .apply_traced1(OpKey::named("stack", vec![axis as i64]), parts, |t| {
                let r: Vec<&TracedTensor> = t.iter().collect();
                Ok(vec![TracedTensor::stack(&r, axis)?])
            })
    }

    /// [`TracedTensor::split`] eagerly.
    pub fn split(&self, indices: &[usize], axis: isize) -> Result<Vec<EagerTensor>> {
        let k = key(&[&u(indices), &[axis as i64]]);
        self.ctx
            .apply_traced(OpKey::named("split", k), &[self], |t| {
                t[0].split(indices, axis)
            })
    }

    /// [`TracedTensor::split_into`] eagerly.
    pub fn split_into(&self, n: usize, axis: isize) -> Result<Vec<EagerTensor>> {
        self.ctx.apply_traced(
            OpKey::named("split_into", vec![n as i64, axis as i64]),
            &[self],
            |t| t[0].split_into(n, axis),
        )
    }

    /// [`TracedTensor::expand_dims`] eagerly.
    pub fn expand_dims(&self, axis: isize) -> Result<EagerTensor> {
        self.s1("expand_dims", vec![axis as i64], &[], |t| {
            t[0].expand_dims(axis)
        })
    }

    /// [`TracedTensor::squeeze`] eagerly.
    pub fn squeeze(&self, axes: &[isize]) -> Result<EagerTensor> {
        let k: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        self.s1("squeeze", k, &[], |t| t[0].squeeze(axes))
    }

    /// [`TracedTensor::flatten`] eagerly (column-major order).
    pub fn flatten(&self) -> Result<EagerTensor> {
        self.s1("flatten", vec![], &[], |t| t[0].flatten())
    }

    /// [`TracedTensor::tile`] eagerly.
    pub fn tile(&self, reps: &[usize]) -> Result<EagerTensor> {
        self.s1("tile", u(reps), &[], |t| t[0].tile(reps))
    }

    /// [`TracedTensor::repeat`] eagerly.
    pub fn repeat(&self, repeats: usize, axis: isize) -> Result<EagerTensor> {
        self.s1("repeat", vec![repeats as i64, axis as i64], &[], |t| {
            t[0].repeat(repeats, axis)
        })
    }

    /// [`TracedTensor::take`] eagerly.
    pub fn take(&self, indices: &EagerTensor, axis: isize) -> Result<EagerTensor> {
        self.s1("take", vec![axis as i64], &[indices], |t| {
            t[0].take(&t[1], axis)
        })
    }

    /// [`TracedTensor::slice_in_dim`] eagerly.
    pub fn slice_in_dim(
        &self,
        start: usize,
        limit: usize,
        stride: usize,
        axis: isize,
    ) -> Result<EagerTensor> {
        self.s1(
            "slice_in_dim",
            vec![start as i64, limit as i64, stride as i64, axis as i64],
            &[],
            |t| t[0].slice_in_dim(start, limit, stride, axis),
        )
    }

    /// [`TracedTensor::index_select`] eagerly.
    pub fn index_select(&self, axis: isize, positions: &[usize]) -> Result<EagerTensor> {
        let mut ints = vec![axis as i64];
        ints.extend(u(positions));
        self.s1("index_select", ints, &[], |t| {
            t[0].index_select(axis, positions)
        })
    }

    /// [`TracedTensor::take_along_axis`] eagerly.
    pub fn take_along_axis(&self, indices: &EagerTensor, axis: isize) -> Result<EagerTensor> {
        self.s1("take_along_axis", vec![axis as i64], &[indices], |t| {
            t[0].take_along_axis(&t[1], axis)
        })
    }

    /// [`TracedTensor::diagonal`] eagerly.
    pub fn diagonal(&self, offset: i64, axis1: isize, axis2: isize) -> Result<EagerTensor> {
        self.s1(
            "diagonal",
            vec![offset, axis1 as i64, axis2 as i64],
            &[],
            |t| t[0].diagonal(offset, axis1, axis2),
        )
    }

    /// [`TracedTensor::extract_diag`] eagerly.
    pub fn extract_diag(&self, axis_a: isize, axis_b: isize) -> Result<EagerTensor> {
        self.s1(
            "extract_diag",
            vec![axis_a as i64, axis_b as i64],
            &[],
            |t| t[0].extract_diag(axis_a, axis_b),
        )
    }

    /// [`TracedTensor::diag_embed`] eagerly.
    pub fn diag_embed(&self, offset: i64) -> Result<EagerTensor> {
        self.s1("diag_embed", vec![offset], &[], |t| t[0].diag_embed(offset))
    }

    /// [`TracedTensor::embed_diag`] eagerly.
    pub fn embed_diag(&self, axis_a: isize, axis_b: isize) -> Result<EagerTensor> {
        self.s1("embed_diag", vec![axis_a as i64, axis_b as i64], &[], |t| {
            t[0].embed_diag(axis_a, axis_b)
        })
    }

    /// [`TracedTensor::tril`] eagerly.
    pub fn tril(&self, k: i64) -> Result<EagerTensor> {
        self.s1("tril", vec![k], &[], |t| t[0].tril(k))
    }

    /// [`TracedTensor::triu`] eagerly.
    pub fn triu(&self, k: i64) -> Result<EagerTensor> {
        self.s1("triu", vec![k], &[], |t| t[0].triu(k))
    }

    /// [`TracedTensor::trace`] eagerly.
    pub fn trace(&self) -> Result<EagerTensor> {
        self.s1("trace", vec![], &[], |t| t[0].trace())
    }

    /// [`TracedTensor::mt`] eagerly.
    pub fn mt(&self) -> Result<EagerTensor> {
        self.s1("mt", vec![], &[], |t| t[0].mt())
    }

    /// [`TracedTensor::zeros_like`] eagerly (an untracked constant).
    pub fn zeros_like(&self) -> Result<EagerTensor> {
        self.check()?;
        self.ctx.zeros(&self.ty())
    }

    /// [`TracedTensor::ones_like`] eagerly (an untracked constant).
    pub fn ones_like(&self) -> Result<EagerTensor> {
        self.check()?;
        self.ctx.ones(&self.ty())
    }

    /// [`TracedTensor::full_like`] eagerly (an untracked constant).
    pub fn full_like(&self, v: f64) -> Result<EagerTensor> {
        self.check()?;
        self.ctx.full(&self.ty(), v)
    }

    /// [`TracedTensor::one_hot`] eagerly.
    pub fn one_hot(&self, num_classes: usize, dtype: DType) -> Result<EagerTensor> {
        self.s1("one_hot", vec![num_classes as i64, dt(dtype)], &[], |t| {
            t[0].one_hot(num_classes, dtype)
        })
    }
}

impl EagerContext {
    /// Ones of type `ty`; errors as [`EagerContext::full`], naming `ones`.
    pub fn ones(&self, ty: &TensorType) -> Result<EagerTensor> {
        let t = tenferro_ir::Tensor::try_full_for("ones", ty, 1.0).map_err(RuntimeError::Ir)?;
        Ok(self.from_tensor(t))
    }

    /// [`TracedTensor::eye`] eagerly.
    pub fn eye(&self, dtype: DType, n: usize, m: Option<usize>, k: i64) -> Result<EagerTensor> {
        let mm = m.map_or(-1, |m| m as i64);
        self.apply_traced1(
            OpKey::named("eye", vec![dt(dtype), n as i64, mm, k]),
            &[],
            |_| Ok(vec![TracedTensor::eye(dtype, n, m, k)?]),
        )
    }

    /// [`TracedTensor::arange`] eagerly.
    pub fn arange(&self, dtype: DType, start: f64, stop: f64, step: f64) -> Result<EagerTensor> {
        let k = vec![dt(dtype), bits(start), bits(stop), bits(step)];
        self.apply_traced1(OpKey::named("arange", k), &[], |_| {
            Ok(vec![TracedTensor::arange(dtype, start, stop, step)?])
        })
    }

    /// [`TracedTensor::linspace`] eagerly.
    pub fn linspace(
        &self,
        dtype: DType,
        start: f64,
        stop: f64,
        num: usize,
        endpoint: bool,
    ) -> Result<EagerTensor> {
        let k = vec![
            dt(dtype),
            bits(start),
            bits(stop),
            num as i64,
            endpoint as i64,
        ];
        self.apply_traced1(OpKey::named("linspace", k), &[], |_| {
            Ok(vec![TracedTensor::linspace(
                dtype, start, stop, num, endpoint,
            )?])
        })
    }
}
