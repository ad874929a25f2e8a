//! Sharding across devices: a [`Mesh`] of named axes over the devices and a
//! [`PartitionSpec`] per parameter and output, exported as Shardy annotations
//! (`sdy.mesh`, `sdy.sharding`). XLA's SPMD partitioner then inserts the communication.
//!
//! Devices are numbered row-major over the mesh axes: in a mesh `[("x", 2), ("y", 3)]`,
//! device `d` has coordinates `(d / 3, d % 3)`. A tensor axis sharded over a mesh axis of
//! size `k` is cut into `k` equal blocks (its extent must be divisible by `k`); device `d`
//! holds the block of its coordinate on that mesh axis. Unnamed axes are replicated.

use tenferro_ir::{Function, TensorType};
use tenferro_runtime::{Result, RuntimeError};

/// A logical device mesh: named axes with sizes; their product is the device count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mesh {
    /// `(name, size)` per mesh axis, major to minor.
    pub axes: Vec<(String, usize)>,
}

impl Mesh {
    /// A mesh from `(name, size)` pairs.
    pub fn new(axes: &[(&str, usize)]) -> Mesh {
        Mesh {
            axes: axes.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
        }
    }

    /// Number of devices.
    pub fn size(&self) -> usize {
        self.axes.iter().map(|a| a.1).product()
    }

    /// Coordinates of device `d` (row-major over the axes).
    pub fn coords(&self, d: usize) -> Vec<usize> {
        let mut c = vec![0; self.axes.len()];
        let mut r = d;
        for (k, (_, s)) in self.axes.iter().enumerate().rev() {
            c[k] = r % s;
            r /= s;
        }
        c
    }

    /// Index of a mesh axis by name.
    pub fn axis(&self, name: &str) -> Option<usize> {
        self.axes.iter().position(|a| a.0 == name)
    }

    /// `sdy.mesh @mesh = <["x"=2, "y"=3]>`.
    pub fn decl(&self) -> String {
        let a: Vec<String> = self
            .axes
            .iter()
            .map(|(n, s)| format!("\"{n}\"={s}"))
            .collect();
        format!("sdy.mesh @mesh = <[{}]>", a.join(", "))
    }
}

/// For each axis of a tensor, the mesh axis it is split over, or `None` (replicated).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PartitionSpec(pub Vec<Option<String>>);

impl PartitionSpec {
    /// Fully replicated (every axis `None`; any rank).
    pub fn replicated() -> PartitionSpec {
        PartitionSpec(Vec::new())
    }

    /// From one entry per tensor axis: `PartitionSpec::new(&[None, Some("x")])`.
    pub fn new(axes: &[Option<&str>]) -> PartitionSpec {
        PartitionSpec(axes.iter().map(|a| a.map(|s| s.to_string())).collect())
    }

    /// The mesh axis of tensor axis `k` (None past the end).
    pub fn get(&self, k: usize) -> Option<&str> {
        self.0.get(k).and_then(|a| a.as_deref())
    }
}

/// A mesh and the partition spec of each parameter and each output of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sharding {
    /// The device mesh.
    pub mesh: Mesh,
    /// One spec per parameter.
    pub inputs: Vec<PartitionSpec>,
    /// One spec per output.
    pub outputs: Vec<PartitionSpec>,
}

impl Sharding {
    /// A sharding of a function's parameters and outputs over `mesh`.
    pub fn new(mesh: Mesh, inputs: Vec<PartitionSpec>, outputs: Vec<PartitionSpec>) -> Sharding {
        Sharding {
            mesh,
            inputs,
            outputs,
        }
    }

    /// `#sdy.sharding<@mesh, [{"x"}, {}]>` for a tensor of type `ty`.
    pub(crate) fn attr(&self, spec: &PartitionSpec, ty: &TensorType) -> String {
        let dims: Vec<String> = Self::padded(spec, ty)
            .0
            .iter()
            .map(|a| match a {
                Some(n) => format!("{{\"{n}\"}}"),
                None => "{}".into(),
            })
            .collect();
        format!("#sdy.sharding<@mesh, [{}]>", dims.join(", "))
    }

    /// The spec padded with `None` to the rank of `ty`.
    fn padded(spec: &PartitionSpec, ty: &TensorType) -> PartitionSpec {
        let mut s = spec.clone();
        s.0.resize(ty.rank(), None);
        s
    }

    /// Checks counts, ranks, axis names and divisibility against `f`; pads specs to rank.
    pub(crate) fn check(&self, f: &Function) -> Result<()> {
        let bad = |m: String| Err(RuntimeError::Invalid(format!("sharding: {m}")));
        if self.mesh.size() == 0 {
            return bad("the mesh has no devices".into());
        }
        let sides = [
            ("parameter", &self.inputs, f.param_types()),
            ("output", &self.outputs, f.output_types()),
        ];
        for (what, specs, tys) in sides {
            if specs.len() != tys.len() {
                return bad(format!(
                    "{} {what} specs for {} {what}s",
                    specs.len(),
                    tys.len()
                ));
            }
            for (i, (s, ty)) in specs.iter().zip(&tys).enumerate() {
                if s.0.len() > ty.rank() {
                    return bad(format!(
                        "{what} #{i} ({ty}): spec {:?} longer than its rank",
                        s.0
                    ));
                }
                let mut used = Vec::new();
                for (k, a) in s.0.iter().enumerate() {
                    let Some(a) = a else { continue };
                    let Some(m) = self.mesh.axis(a) else {
                        return bad(format!("{what} #{i}: no mesh axis named {a:?}"));
                    };
                    if used.contains(&m) {
                        return bad(format!("{what} #{i}: mesh axis {a:?} used twice"));
                    }
                    used.push(m);
                    let n = self.mesh.axes[m].1;
                    if ty.shape[k] % n != 0 {
                        return bad(format!(
                            "{what} #{i} ({ty}): axis {k} of extent {} is not divisible by mesh axis {a:?} of size {n}",
                            ty.shape[k]
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The block of a tensor of type `ty` held by device `d`: per axis `(start, len)`.
    pub fn block(&self, spec: &PartitionSpec, ty: &TensorType, d: usize) -> Vec<(usize, usize)> {
        let spec = Self::padded(spec, ty);
        let c = self.mesh.coords(d);
        (0..ty.rank())
            .map(|k| match spec.get(k).and_then(|a| self.mesh.axis(a)) {
                Some(m) => {
                    let len = ty.shape[k] / self.mesh.axes[m].1;
                    (c[m] * len, len)
                }
                None => (0, ty.shape[k]),
            })
            .collect()
    }
}
