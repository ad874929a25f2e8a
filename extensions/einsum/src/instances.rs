//! The einsum benchmark instances shipped in `extensions/einsum/instances/` (from
//! tensor4all/tenferro-benchmark): subscripts (NumPy form; einsum subscripts are logical,
//! so they apply unchanged to tenferro's column-major tensors), shapes and upstream's
//! stored paths, and the column-major form of an instance ([`Instance::column_major`]).
//! Used by the `plan_instances` example and the root `bench_suite`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use tenferro_ir::DType;

/// One stored path of upstream (an opt_einsum linear path and its cost as stored).
#[derive(Clone, Debug)]
pub struct StoredPath {
    /// `opt_flops` or `opt_size`.
    pub kind: String,
    /// The linear path.
    pub path: Vec<(usize, usize)>,
    /// Upstream's stored `log10_flops`.
    pub log10_flops: f64,
    /// Upstream's stored `log2_size`.
    pub log2_size: f64,
}

/// An einsum instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Its name (`bin_matmul_256`, ...).
    pub name: String,
    /// Subscripts with `->`.
    pub subscripts: String,
    /// Operand shapes.
    pub shapes: Vec<Vec<usize>>,
    /// The operands' element type (the file's NumPy `dtype`; float64 when absent).
    pub dtype: DType,
    /// Upstream's stored paths.
    pub upstream: Vec<StoredPath>,
}

impl Instance {
    /// The same contraction on the same bytes in column-major order, as upstream's runner
    /// writes it (`format_string_colmajor`, `shapes_colmajor`): every term of the
    /// subscripts and every shape reversed. A row-major array of shape `s` is, byte for
    /// byte, the column-major array of shape `s` reversed with its axes reversed, so this
    /// form reads the operands in the memory order the row-major peers (NumPy, JAX) read
    /// theirs, and writes the result in theirs. Paths name operands, not indices, so they
    /// are unchanged. (`bij,bjk->bik` becomes `jib,kjb->kib`: the batch axis is slowest in
    /// memory in both, where the literal subscripts on column-major data make it the
    /// fastest.) An error for subscripts without `->`: an implicit output (its indices
    /// sorted) does not reverse with the terms.
    pub fn column_major(&self) -> Result<Instance, String> {
        let reversed = |t: &str| t.chars().rev().collect::<String>();
        let terms = |side: &str| side.split(',').map(reversed).collect::<Vec<_>>().join(",");
        let (ins, out) = self.subscripts.split_once("->").ok_or_else(|| {
            format!(
                "{}: subscripts `{}` without `->` have no column-major form",
                self.name, self.subscripts
            )
        })?;
        let subscripts = format!("{}->{}", terms(ins), reversed(out));
        Ok(Instance {
            subscripts,
            shapes: self
                .shapes
                .iter()
                .map(|s| s.iter().rev().copied().collect())
                .collect(),
            ..self.clone()
        })
    }
}

/// The directory of the shipped instances.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("instances")
}

/// Parses one instance file.
pub fn parse(text: &str) -> Result<Instance, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let s = |k: &str| v[k].as_str().map(str::to_string).ok_or(format!("no `{k}`"));
    let shapes = v["shapes"]
        .as_array()
        .ok_or("no `shapes`")?
        .iter()
        .map(|s| {
            s.as_array()
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as usize)
                        .collect()
                })
                .ok_or("bad shape".to_string())
        })
        .collect::<Result<Vec<Vec<usize>>, String>>()?;
    let mut upstream = Vec::new();
    if let Some(m) = v["upstream_paths"].as_object() {
        for (kind, p) in m {
            let path = p["path"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| {
                            let s = s.as_array()?;
                            Some((s.first()?.as_u64()? as usize, s.get(1)?.as_u64()? as usize))
                        })
                        .collect()
                })
                .unwrap_or_default();
            upstream.push(StoredPath {
                kind: kind.clone(),
                path,
                log10_flops: p["log10_flops"].as_f64().unwrap_or(f64::NAN),
                log2_size: p["log2_size"].as_f64().unwrap_or(f64::NAN),
            });
        }
    }
    let dtype = match v["dtype"].as_str() {
        None | Some("float64") => DType::F64,
        Some("float32") => DType::F32,
        Some("complex64") => DType::C32,
        Some("complex128") => DType::C64,
        Some(other) => return Err(format!("unsupported dtype `{other}`")),
    };
    let subscripts = s("subscripts")?;
    if !subscripts.contains("->") {
        return Err(format!("subscripts `{subscripts}` without `->`"));
    }
    Ok(Instance {
        name: s("name")?,
        subscripts,
        shapes,
        dtype,
        upstream,
    })
}

/// Loads `name` from [`dir`].
pub fn load(name: &str) -> Result<Instance, String> {
    let p = dir().join(format!("{name}.json"));
    parse(&std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?)
}

/// Names of the shipped instances, sorted.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir())
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    n.strip_suffix(".json").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
