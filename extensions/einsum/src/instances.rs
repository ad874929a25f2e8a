//! The einsum benchmark instances shipped in `extensions/einsum/instances/` (from
//! tensor4all/tenferro-benchmark): subscripts (NumPy form; einsum subscripts are logical,
//! so they apply unchanged to tenferro's column-major tensors), shapes and upstream's
//! stored paths. Used by the `plan_instances` example and the root `bench_suite`.

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
    Ok(Instance {
        name: s("name")?,
        subscripts: s("subscripts")?,
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
