//! [`XlaBackend`]: the runtime's [`Backend`] on a PJRT plugin, and sharded execution.

use crate::pjrt::{buffer_type, compile_options, Buffer, Client, Executable, Plugin};
use crate::sharding::Sharding;
use crate::stablehlo::{to_stablehlo, to_stablehlo_sharded};
use std::path::Path;
use std::sync::Arc;
use tenferro_ir::{col_major_strides, DType, Data, Function, Tensor, TensorType};
use tenferro_runtime::{Backend, ExtensionRegistry, Result, RuntimeError};

/// Runs programs on XLA through a PJRT plugin loaded at run time.
///
/// ```no_run
/// use tenferro_runtime::GraphExecutor;
/// use tenferro_xla::XlaBackend;
/// let exec = GraphExecutor::new(XlaBackend::from_env().unwrap()); // TENFERRO_PJRT_PLUGIN
/// ```
#[derive(Clone)]
pub struct XlaBackend {
    client: Arc<Client>,
}

/// A program compiled by XLA: the executable, the exported module and the types.
pub struct XlaPrepared {
    exe: Executable,
    /// The StableHLO module that was compiled.
    pub mlir: String,
    params: Vec<TensorType>,
    outputs: Vec<TensorType>,
}

impl XlaBackend {
    /// A backend on the plugin at `plugin`, or, when `None`, the one named by
    /// `TENFERRO_PJRT_PLUGIN`. An error (naming the variable and how to install a plugin)
    /// when there is none or it cannot be loaded.
    pub fn new(plugin: Option<&Path>) -> Result<XlaBackend> {
        let p = match plugin {
            Some(p) => Plugin::load(p)?,
            None => Plugin::from_env()?,
        };
        Ok(XlaBackend {
            client: Arc::new(Client::new(p)?),
        })
    }

    /// [`XlaBackend::new`]`(None)`: the plugin named by `TENFERRO_PJRT_PLUGIN`.
    pub fn from_env() -> Result<XlaBackend> {
        XlaBackend::new(None)
    }

    /// Number of addressable devices (for the CPU plugin, set with
    /// `XLA_FLAGS=--xla_force_host_platform_device_count=N` before the first client).
    pub fn num_devices(&self) -> usize {
        self.client.num_devices()
    }

    /// Compiles `f` sharded over `sharding.mesh` (the first `mesh.size()` devices).
    pub fn prepare_sharded(&self, f: &Function, sharding: &Sharding) -> Result<ShardedPrepared> {
        let n = sharding.mesh.size();
        if n > self.num_devices() {
            return Err(RuntimeError::Invalid(format!(
                "sharding: the mesh has {n} devices, the client {} (for the CPU plugin set \
                 XLA_FLAGS=--xla_force_host_platform_device_count={n} before creating it)",
                self.num_devices()
            )));
        }
        let mlir = to_stablehlo_sharded(f, sharding)?;
        let exe = self.client.compile(&mlir, &compile_options(n))?;
        Ok(ShardedPrepared {
            exe,
            mlir,
            sharding: sharding.clone(),
            params: f.param_types(),
            outputs: f.output_types(),
        })
    }

    /// Runs a sharded program: splits each input into its per-device blocks, runs on every
    /// device, and returns each device's output blocks with the assembled outputs.
    pub fn execute_sharded(&self, p: &ShardedPrepared, inputs: &[Tensor]) -> Result<ShardedResult> {
        check_inputs(&p.params, inputs)?;
        let n = p.sharding.mesh.size();
        let mut pieces_in = Vec::new();
        let mut bufs: Vec<Vec<Buffer>> = (0..n).map(|_| Vec::new()).collect();
        for (i, t) in inputs.iter().enumerate() {
            let mut per = Vec::new();
            for (d, b) in bufs.iter_mut().enumerate() {
                let blk = p.sharding.block(&p.sharding.inputs[i], &t.ty(), d);
                let piece = extract_block(t, &blk)?;
                b.push(upload(&self.client, &piece, d)?);
                per.push(piece);
            }
            pieces_in.push(per);
        }
        let args: Vec<Vec<&Buffer>> = bufs.iter().map(|b| b.iter().collect()).collect();
        let outs = p.exe.execute(&args)?;
        let mut pieces = Vec::new();
        let mut assembled = Vec::new();
        for (k, ty) in p.outputs.iter().enumerate() {
            let mut full = Tensor::try_zeros(ty)?;
            let mut per = Vec::new();
            for (d, dev_outs) in outs.iter().enumerate() {
                let blk = p.sharding.block(&p.sharding.outputs[k], ty, d);
                let shape: Vec<usize> = blk.iter().map(|b| b.1).collect();
                let piece = download(&dev_outs[k], &TensorType::new(ty.dtype, shape))?;
                insert_block(&mut full, &piece, &blk);
                per.push(piece);
            }
            pieces.push(per);
            assembled.push(full);
        }
        Ok(ShardedResult {
            inputs: pieces_in,
            pieces,
            outputs: assembled,
        })
    }
}

/// A program compiled for several devices.
pub struct ShardedPrepared {
    exe: Executable,
    /// The StableHLO module with its Shardy annotations.
    pub mlir: String,
    sharding: Sharding,
    params: Vec<TensorType>,
    outputs: Vec<TensorType>,
}

/// What a sharded run returns.
pub struct ShardedResult {
    /// `inputs[i][d]`: the block of input `i` sent to device `d`.
    pub inputs: Vec<Vec<Tensor>>,
    /// `pieces[k][d]`: the block of output `k` that device `d` computed.
    pub pieces: Vec<Vec<Tensor>>,
    /// The outputs assembled from the blocks.
    pub outputs: Vec<Tensor>,
}

impl Backend for XlaBackend {
    type Prepared = XlaPrepared;

    fn prepare(&self, f: &Function) -> Result<XlaPrepared> {
        let mlir = to_stablehlo(f)?;
        let exe = self.client.compile(&mlir, &compile_options(1))?;
        Ok(XlaPrepared {
            exe,
            mlir,
            params: f.param_types(),
            outputs: f.output_types(),
        })
    }

    fn execute(
        &self,
        p: &XlaPrepared,
        inputs: &[Tensor],
        _extensions: &ExtensionRegistry,
    ) -> Result<Vec<Tensor>> {
        check_inputs(&p.params, inputs)?;
        let bufs = inputs
            .iter()
            .map(|t| upload(&self.client, t, 0))
            .collect::<Result<Vec<_>>>()?;
        let outs = p.exe.execute(&[bufs.iter().collect()])?;
        let dev = outs
            .into_iter()
            .next()
            .ok_or_else(|| RuntimeError::kernel("xla", "execution returned no outputs"))?;
        if dev.len() != p.outputs.len() {
            return Err(RuntimeError::kernel(
                "xla",
                format!("{} outputs, expected {}", dev.len(), p.outputs.len()),
            ));
        }
        dev.iter()
            .zip(&p.outputs)
            .map(|(b, ty)| download(b, ty))
            .collect()
    }
}

fn check_inputs(params: &[TensorType], inputs: &[Tensor]) -> Result<()> {
    if params.len() != inputs.len() {
        return Err(RuntimeError::BadInput(format!(
            "{} inputs for {} parameters",
            inputs.len(),
            params.len()
        )));
    }
    for (i, (p, t)) in params.iter().zip(inputs).enumerate() {
        if *p != t.ty() {
            return Err(RuntimeError::BadInput(format!(
                "input #{i} has type {}, the parameter {p}",
                t.ty()
            )));
        }
    }
    Ok(())
}

fn pjrt_type(d: DType) -> i32 {
    match d {
        DType::F32 => buffer_type::F32,
        DType::F64 => buffer_type::F64,
        DType::C32 => buffer_type::C64,
        DType::C64 => buffer_type::C128,
        DType::I32 => buffer_type::S32,
        DType::I64 => buffer_type::S64,
        DType::Bool => buffer_type::PRED,
    }
}

/// The bytes of a slice of plain numbers (f32, f64, i32, i64, complex, bool).
fn bytes_of<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: only called with element types without padding or invalid byte patterns
    // when read (f32, f64, i32, i64, Complex<f32/f64> (repr(C)), bool (0 or 1)).
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

fn data_bytes(d: &Data) -> &[u8] {
    match d {
        Data::F32(v) => bytes_of(v),
        Data::F64(v) => bytes_of(v),
        Data::C32(v) => bytes_of(v),
        Data::C64(v) => bytes_of(v),
        Data::I32(v) => bytes_of(v),
        Data::I64(v) => bytes_of(v),
        Data::Bool(v) => bytes_of(v),
    }
}

/// Copies `src` into the numbers `dst` (same byte length).
fn fill_from_bytes<T: Copy>(dst: &mut [T], src: &[u8]) {
    assert_eq!(std::mem::size_of_val(dst), src.len());
    // SAFETY: `dst` holds plain numbers (f32, f64, i32, i64, complex) for which every byte
    // pattern is valid; the lengths are equal.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr() as *mut u8, src.len()) }
}

/// Uploads a column-major tensor: the logical dims with column-major byte strides.
fn upload(client: &Arc<Client>, t: &Tensor, device: usize) -> Result<Buffer> {
    let es = t.dtype().size_bytes() as i64;
    let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
    let strides: Vec<i64> = col_major_strides(t.shape())
        .iter()
        .map(|&s| s as i64 * es)
        .collect();
    client.upload(
        data_bytes(t.data()),
        pjrt_type(t.dtype()),
        &dims,
        &strides,
        device,
    )
}

/// Downloads a buffer (row-major on the host) into a column-major tensor of type `ty`.
fn download(b: &Buffer, ty: &TensorType) -> Result<Tensor> {
    let dims = b.dims()?;
    if dims.len() != ty.rank() || dims.iter().zip(&ty.shape).any(|(&a, &b)| a as usize != b) {
        return Err(RuntimeError::kernel(
            "xla",
            format!("device buffer has dims {dims:?}, expected {ty}"),
        ));
    }
    let n = ty.try_numel("xla download")?;
    let es = ty.dtype.size_bytes();
    let mut row = vec![0u8; n * es];
    b.download(&mut row)?;
    // Row-major → column-major: element with multi-index i sits at Σ i_k r_k in `row`.
    let mut col = vec![0u8; n * es];
    let r = ty.rank();
    let mut rstr = vec![0usize; r];
    let mut s = 1;
    for k in (0..r).rev() {
        rstr[k] = s;
        s *= ty.shape[k];
    }
    let mut idx = vec![0usize; r];
    for c in 0..n {
        let off: usize = idx.iter().zip(&rstr).map(|(i, s)| i * s).sum();
        col[c * es..(c + 1) * es].copy_from_slice(&row[off * es..(off + 1) * es]);
        for k in 0..r {
            idx[k] += 1;
            if idx[k] < ty.shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    let mut data = Data::try_zeros("xla download", ty.dtype, n)?;
    match &mut data {
        Data::F32(v) => fill_from_bytes(v, &col),
        Data::F64(v) => fill_from_bytes(v, &col),
        Data::C32(v) => fill_from_bytes(v, &col),
        Data::C64(v) => fill_from_bytes(v, &col),
        Data::I32(v) => fill_from_bytes(v, &col),
        Data::I64(v) => fill_from_bytes(v, &col),
        Data::Bool(v) => v.iter_mut().zip(&col).for_each(|(x, &b)| *x = b != 0),
    }
    Ok(Tensor::new(ty.shape.clone(), data)?)
}

/// Calls `f(src_offset, dst_offset)` (element offsets, column-major) for every element
/// of the block `blk` of a tensor of shape `shape`.
fn for_block(shape: &[usize], blk: &[(usize, usize)], mut f: impl FnMut(usize, usize)) {
    let strides = col_major_strides(shape);
    let n: usize = blk.iter().map(|b| b.1).product();
    let mut idx = vec![0usize; blk.len()];
    for j in 0..n {
        let off: usize = idx
            .iter()
            .zip(blk)
            .zip(&strides)
            .map(|((i, b), s)| (i + b.0) * s)
            .sum();
        f(off, j);
        for k in 0..blk.len() {
            idx[k] += 1;
            if idx[k] < blk[k].1 {
                break;
            }
            idx[k] = 0;
        }
    }
}

fn extract_block(t: &Tensor, blk: &[(usize, usize)]) -> Result<Tensor> {
    let shape: Vec<usize> = blk.iter().map(|b| b.1).collect();
    let es = t.dtype().size_bytes();
    let src = data_bytes(t.data());
    let n: usize = shape.iter().product();
    let mut bytes = vec![0u8; n * es];
    for_block(t.shape(), blk, |s, d| {
        bytes[d * es..(d + 1) * es].copy_from_slice(&src[s * es..(s + 1) * es])
    });
    let mut data = Data::try_zeros("xla shard", t.dtype(), n)?;
    match &mut data {
        Data::F32(v) => fill_from_bytes(v, &bytes),
        Data::F64(v) => fill_from_bytes(v, &bytes),
        Data::C32(v) => fill_from_bytes(v, &bytes),
        Data::C64(v) => fill_from_bytes(v, &bytes),
        Data::I32(v) => fill_from_bytes(v, &bytes),
        Data::I64(v) => fill_from_bytes(v, &bytes),
        Data::Bool(v) => v.iter_mut().zip(&bytes).for_each(|(x, &b)| *x = b != 0),
    }
    Ok(Tensor::new(shape, data)?)
}

fn insert_block(full: &mut Tensor, piece: &Tensor, blk: &[(usize, usize)]) {
    let shape = full.shape().to_vec();
    let pd = piece.data().clone();
    macro_rules! copy {
        ($dst:expr, $src:expr) => {
            for_block(&shape, blk, |s, d| $dst[s] = $src[d])
        };
    }
    match (full.data_mut(), &pd) {
        (Data::F32(a), Data::F32(b)) => copy!(a, b),
        (Data::F64(a), Data::F64(b)) => copy!(a, b),
        (Data::C32(a), Data::C32(b)) => copy!(a, b),
        (Data::C64(a), Data::C64(b)) => copy!(a, b),
        (Data::I64(a), Data::I64(b)) => copy!(a, b),
        (Data::Bool(a), Data::Bool(b)) => copy!(a, b),
        _ => unreachable!("piece and whole have one dtype"),
    }
}
