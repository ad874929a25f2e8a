//! A small hand-written FFI layer over the PJRT C API (`pjrt_c_api.h`, API 0.81, as
//! shipped by PyPI's `xla-cpu-pjrt` 0.0.1), loaded at run time with `libloading`.
//!
//! Only the calls tenferro needs are bound: client create / destroy / devices, compile,
//! buffer from host / to host / dimensions / destroy, execute, events and errors. Each
//! `*_Args` struct is `#[repr(C)]` with the fields of the header in order; its
//! `struct_size` is the header's `PJRT_STRUCT_SIZE(type, last_field)` and is asserted at
//! compile time against the numbers gcc computes from the header. Function pointers are
//! read from the `PJRT_Api` table at the byte offsets of the header (checked against the
//! table's own `struct_size` at load time).
//!
//! Every object is owned by a Rust value whose `Drop` calls the matching `*_Destroy`.
//! A PJRT error becomes a [`RuntimeError::Kernel`] naming the call and carrying XLA's
//! message; it never aborts the process.

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex, OnceLock};
use tenferro_runtime::{Result, RuntimeError};

type Ext = *mut c_void;
#[allow(non_camel_case_types)]
type PJRT_Error = c_void;

macro_rules! args {
    ($name:ident, $size:expr, { $($f:ident : $t:ty),* $(,)? }) => {
        #[repr(C)]
        pub(crate) struct $name {
            struct_size: usize,
            extension_start: Ext,
            $(pub(crate) $f: $t,)*
        }
        const _: () = assert!(std::mem::size_of::<$name>() >= $size);
        impl $name {
            /// Zeroed arguments with `struct_size` set.
            fn new() -> $name {
                // SAFETY: every field is a pointer, an integer or an Option of a function
                // pointer, for all of which all-zero bytes are a valid value.
                let mut a: $name = unsafe { std::mem::zeroed() };
                a.struct_size = $size;
                a
            }
        }
    };
}

// struct_size values: PJRT_STRUCT_SIZE of the 0.81 header, computed by gcc from it.
args!(ErrorDestroyArgs, 24, { error: *mut PJRT_Error });
args!(ErrorMessageArgs, 40, { error: *const PJRT_Error, message: *const u8, message_size: usize });
args!(PluginInitializeArgs, 16, {});
args!(ClientCreateArgs, 88, {
    create_options: *const c_void,
    num_options: usize,
    kv_get_callback: *const c_void,
    kv_get_user_arg: *mut c_void,
    kv_put_callback: *const c_void,
    kv_put_user_arg: *mut c_void,
    client: *mut c_void,
    kv_try_get_callback: *const c_void,
    kv_try_get_user_arg: *mut c_void,
});
args!(ClientDestroyArgs, 24, { client: *mut c_void });
args!(ClientAddressableDevicesArgs, 40, {
    client: *mut c_void,
    addressable_devices: *const *mut c_void,
    num_addressable_devices: usize,
});
args!(Program, 48, {
    code: *const u8,
    code_size: usize,
    format: *const u8,
    format_size: usize,
});
args!(ClientCompileArgs, 56, {
    client: *mut c_void,
    program: *const Program,
    compile_options: *const u8,
    compile_options_size: usize,
    executable: *mut c_void,
});
args!(BufferFromHostBufferArgs, 120, {
    client: *mut c_void,
    data: *const c_void,
    type_: i32,
    dims: *const i64,
    num_dims: usize,
    byte_strides: *const i64,
    num_byte_strides: usize,
    host_buffer_semantics: i32,
    device: *mut c_void,
    memory: *mut c_void,
    device_layout: *mut c_void,
    done_with_host_buffer: *mut c_void,
    buffer: *mut c_void,
});
args!(EventArgs, 24, { event: *mut c_void });
args!(ExecuteOptions, 112, {
    send_callbacks: *mut c_void,
    recv_callbacks: *mut c_void,
    num_send_ops: usize,
    num_recv_ops: usize,
    launch_id: i32,
    non_donatable_input_indices: *const i64,
    num_non_donatable_input_indices: usize,
    context: *mut c_void,
    call_location: *const u8,
    num_tasks: usize,
    task_ids: *mut i32,
    incarnation_ids: *mut i64,
});
args!(ExecuteArgs, 80, {
    executable: *mut c_void,
    options: *mut ExecuteOptions,
    argument_lists: *const *const *mut c_void,
    num_devices: usize,
    num_args: usize,
    output_lists: *const *mut *mut c_void,
    device_complete_events: *mut *mut c_void,
    execute_device: *mut c_void,
});
args!(LoadedExecutableDestroyArgs, 24, { executable: *mut c_void });
args!(GetExecutableArgs, 32, { loaded_executable: *mut c_void, executable: *mut c_void });
args!(NumOutputsArgs, 32, { executable: *mut c_void, num_outputs: usize });
args!(ExecutableDestroyArgs, 24, { executable: *mut c_void });
args!(BufferDestroyArgs, 24, { buffer: *mut c_void });
args!(ToHostBufferArgs, 56, {
    src: *mut c_void,
    host_layout: *mut c_void,
    dst: *mut c_void,
    dst_size: usize,
    event: *mut c_void,
});
args!(BufferDimensionsArgs, 40, { buffer: *mut c_void, dims: *const i64, num_dims: usize });

// Exact sizes (sizeof in C) of the structs passed by pointer.
const _: () = assert!(std::mem::size_of::<ClientCreateArgs>() == 88);
const _: () = assert!(std::mem::size_of::<BufferFromHostBufferArgs>() == 120);
const _: () = assert!(std::mem::size_of::<ExecuteOptions>() == 112);
const _: () = assert!(std::mem::size_of::<ExecuteArgs>() == 80);
const _: () = assert!(std::mem::size_of::<ToHostBufferArgs>() == 56);
const _: () = assert!(std::mem::size_of::<ClientCompileArgs>() == 56);

/// Byte offsets of the function pointers used, in `PJRT_Api` (0.81 header).
mod off {
    pub const ERROR_DESTROY: usize = 40;
    pub const ERROR_MESSAGE: usize = 48;
    pub const PLUGIN_INITIALIZE: usize = 64;
    pub const EVENT_DESTROY: usize = 80;
    pub const EVENT_AWAIT: usize = 104;
    pub const CLIENT_CREATE: usize = 120;
    pub const CLIENT_DESTROY: usize = 128;
    pub const CLIENT_ADDRESSABLE_DEVICES: usize = 168;
    pub const CLIENT_COMPILE: usize = 200;
    pub const CLIENT_BUFFER_FROM_HOST: usize = 216;
    pub const EXECUTABLE_DESTROY: usize = 360;
    pub const EXECUTABLE_NUM_OUTPUTS: usize = 392;
    pub const LOADED_DESTROY: usize = 440;
    pub const LOADED_GET_EXECUTABLE: usize = 448;
    pub const LOADED_EXECUTE: usize = 480;
    pub const BUFFER_DESTROY: usize = 504;
    pub const BUFFER_DIMENSIONS: usize = 520;
    pub const BUFFER_TO_HOST: usize = 600;
    /// One past the last pointer used.
    pub const END: usize = BUFFER_TO_HOST + 8;
}

/// PJRT_Buffer_Type values.
pub(crate) mod buffer_type {
    pub const PRED: i32 = 1;
    pub const S32: i32 = 4;
    pub const S64: i32 = 5;
    pub const F32: i32 = 11;
    pub const F64: i32 = 12;
    pub const C64: i32 = 14;
    pub const C128: i32 = 15;
}

/// The environment variable naming the plugin.
pub const PLUGIN_ENV: &str = "TENFERRO_PJRT_PLUGIN";

/// A loaded PJRT plugin: the library (never unloaded) and its API table.
pub struct Plugin {
    _lib: libloading::Library,
    api: *const u8,
    path: PathBuf,
    /// `(major, minor)` of the plugin's C API.
    pub version: (i32, i32),
}

// SAFETY: the PJRT API table is immutable and its functions are thread-safe.
unsafe impl Send for Plugin {}
unsafe impl Sync for Plugin {}

fn err(call: &str, msg: impl Into<String>) -> RuntimeError {
    RuntimeError::kernel(format!("xla/pjrt {call}"), msg)
}

fn install_hint() -> String {
    format!(
        "set {PLUGIN_ENV} to the path of a PJRT plugin, e.g. after `pip install --target DIR \
         xla-cpu-pjrt==0.0.1` use DIR/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so"
    )
}

impl Plugin {
    /// Loads (once per process and path) the plugin at `path` and initializes it.
    pub fn load(path: &Path) -> Result<Arc<Plugin>> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Plugin>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = c.get(path) {
            return Ok(p.clone());
        }
        let p = Arc::new(Plugin::open(path)?);
        c.insert(path.to_path_buf(), p.clone());
        Ok(p)
    }

    /// The plugin named by `TENFERRO_PJRT_PLUGIN`.
    pub fn from_env() -> Result<Arc<Plugin>> {
        match std::env::var_os(PLUGIN_ENV) {
            Some(p) if !p.is_empty() => Plugin::load(Path::new(&p)),
            _ => Err(err(
                "plugin",
                format!(
                    "no PJRT plugin: {PLUGIN_ENV} is not set; {}",
                    install_hint()
                ),
            )),
        }
    }

    fn open(path: &Path) -> Result<Plugin> {
        if !path.is_file() {
            return Err(err(
                "plugin",
                format!("{} is not a file; {}", path.display(), install_hint()),
            ));
        }
        // SAFETY: loading a shared library runs its initializers; the user named it as a
        // PJRT plugin.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
            err(
                "plugin",
                format!(
                    "cannot load {} as a shared library: {e}; {}",
                    path.display(),
                    install_hint()
                ),
            )
        })?;
        type GetApi = unsafe extern "C" fn() -> *const u8;
        // SAFETY: `GetPjrtApi` has this signature in every PJRT plugin.
        let get: libloading::Symbol<GetApi> = unsafe { lib.get(b"GetPjrtApi\0") }.map_err(|e| {
            err(
                "plugin",
                format!(
                    "{} is not a PJRT plugin (no GetPjrtApi: {e})",
                    path.display()
                ),
            )
        })?;
        // SAFETY: as above.
        let api = unsafe { get() };
        if api.is_null() {
            return Err(err("plugin", "GetPjrtApi returned null"));
        }
        // SAFETY: PJRT_Api starts with struct_size, extension_start, then PJRT_Api_Version
        // {struct_size, extension_start, int major, int minor}.
        let (size, major, minor) = unsafe {
            (
                *(api as *const usize),
                *(api.add(32) as *const i32),
                *(api.add(36) as *const i32),
            )
        };
        if major != 0 || minor < 60 || size < off::END {
            return Err(err(
                "plugin",
                format!(
                    "{} has PJRT C API {major}.{minor} (table of {size} bytes); tenferro-xla \
                     binds API 0.81 (works with 0.60 and later minor versions of major 0)",
                    path.display()
                ),
            ));
        }
        let p = Plugin {
            _lib: lib,
            api,
            path: path.to_path_buf(),
            version: (major, minor),
        };
        let mut a = PluginInitializeArgs::new();
        p.check("PJRT_Plugin_Initialize", unsafe {
            p.call(off::PLUGIN_INITIALIZE, &mut a)
        })?;
        Ok(p)
    }

    /// The plugin's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls the API function at `offset` with `args`.
    ///
    /// # Safety
    /// `offset` must be the offset of a function taking `*mut A` and returning
    /// `PJRT_Error*`, and `args` must be filled as that function requires.
    unsafe fn call<A>(&self, offset: usize, args: &mut A) -> *mut PJRT_Error {
        let f = *(self.api.add(offset)
            as *const Option<unsafe extern "C" fn(*mut A) -> *mut PJRT_Error>);
        match f {
            Some(f) => f(args),
            None => null_mut(),
        }
    }

    /// Turns a returned `PJRT_Error*` into a Rust error (destroying it).
    fn check(&self, call: &str, e: *mut PJRT_Error) -> Result<()> {
        if e.is_null() {
            return Ok(());
        }
        let mut m = ErrorMessageArgs::new();
        m.error = e;
        let mut d = ErrorDestroyArgs::new();
        d.error = e;
        // SAFETY: both functions take their args struct and return void; a void return
        // read as a pointer is never looked at.
        let msg = unsafe {
            type F<A> = unsafe extern "C" fn(*mut A);
            let fm = *(self.api.add(off::ERROR_MESSAGE) as *const F<ErrorMessageArgs>);
            fm(&mut m);
            let s = if m.message.is_null() {
                String::from("(no message)")
            } else {
                String::from_utf8_lossy(std::slice::from_raw_parts(m.message, m.message_size))
                    .into_owned()
            };
            let fd = *(self.api.add(off::ERROR_DESTROY) as *const F<ErrorDestroyArgs>);
            fd(&mut d);
            s
        };
        Err(err(call, msg))
    }

    fn await_event(&self, event: *mut c_void) -> Result<()> {
        if event.is_null() {
            return Ok(());
        }
        let mut a = EventArgs::new();
        a.event = event;
        let r = self.check("PJRT_Event_Await", unsafe {
            self.call(off::EVENT_AWAIT, &mut a)
        });
        let mut d = EventArgs::new();
        d.event = event;
        let _ = unsafe { self.call(off::EVENT_DESTROY, &mut d) };
        r
    }
}

/// A PJRT client with its addressable devices.
pub struct Client {
    plugin: Arc<Plugin>,
    raw: *mut c_void,
    devices: Vec<*mut c_void>,
}

// SAFETY: PJRT clients are thread-safe.
unsafe impl Send for Client {}
unsafe impl Sync for Client {}

impl Client {
    /// Creates a client of `plugin` (no options; the CPU plugin reads the device count
    /// from `XLA_FLAGS=--xla_force_host_platform_device_count=N`).
    pub fn new(plugin: Arc<Plugin>) -> Result<Client> {
        let mut a = ClientCreateArgs::new();
        plugin.check("PJRT_Client_Create", unsafe {
            plugin.call(off::CLIENT_CREATE, &mut a)
        })?;
        let mut c = Client {
            plugin,
            raw: a.client,
            devices: Vec::new(),
        };
        let mut d = ClientAddressableDevicesArgs::new();
        d.client = c.raw;
        c.plugin.check("PJRT_Client_AddressableDevices", unsafe {
            c.plugin.call(off::CLIENT_ADDRESSABLE_DEVICES, &mut d)
        })?;
        if d.num_addressable_devices > 0 && !d.addressable_devices.is_null() {
            // SAFETY: the plugin returns an array of that length, alive with the client.
            c.devices = unsafe {
                std::slice::from_raw_parts(d.addressable_devices, d.num_addressable_devices)
            }
            .to_vec();
        }
        if c.devices.is_empty() {
            return Err(err(
                "PJRT_Client_AddressableDevices",
                "the client has no devices",
            ));
        }
        Ok(c)
    }

    /// The plugin.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Number of addressable devices.
    pub fn num_devices(&self) -> usize {
        self.devices.len()
    }

    /// Compiles an MLIR (StableHLO) module with serialized `CompileOptionsProto` bytes.
    pub fn compile(self: &Arc<Self>, mlir: &str, options: &[u8]) -> Result<Executable> {
        let fmt = b"mlir";
        let mut prog = Program::new();
        prog.code = mlir.as_ptr();
        prog.code_size = mlir.len();
        prog.format = fmt.as_ptr();
        prog.format_size = fmt.len();
        let mut a = ClientCompileArgs::new();
        a.client = self.raw;
        a.program = &prog;
        a.compile_options = options.as_ptr();
        a.compile_options_size = options.len();
        self.plugin.check("PJRT_Client_Compile", unsafe {
            self.plugin.call(off::CLIENT_COMPILE, &mut a)
        })?;
        let mut exe = Executable {
            client: self.clone(),
            raw: a.executable,
            num_outputs: 0,
        };
        let mut g = GetExecutableArgs::new();
        g.loaded_executable = exe.raw;
        self.plugin
            .check("PJRT_LoadedExecutable_GetExecutable", unsafe {
                self.plugin.call(off::LOADED_GET_EXECUTABLE, &mut g)
            })?;
        let mut n = NumOutputsArgs::new();
        n.executable = g.executable;
        let r = self.plugin.check("PJRT_Executable_NumOutputs", unsafe {
            self.plugin.call(off::EXECUTABLE_NUM_OUTPUTS, &mut n)
        });
        let mut d = ExecutableDestroyArgs::new();
        d.executable = g.executable;
        let _ = unsafe { self.plugin.call(off::EXECUTABLE_DESTROY, &mut d) };
        r?;
        exe.num_outputs = n.num_outputs;
        Ok(exe)
    }

    /// Copies host data to device `device`: `dims` in the StableHLO (logical) axis order,
    /// `byte_strides` per axis (so column-major data uploads without a host copy).
    pub fn upload(
        self: &Arc<Self>,
        bytes: &[u8],
        ty: i32,
        dims: &[i64],
        byte_strides: &[i64],
        device: usize,
    ) -> Result<Buffer> {
        let dev = *self.devices.get(device).ok_or_else(|| {
            err(
                "PJRT_Client_BufferFromHostBuffer",
                format!("no device {device} (the client has {})", self.devices.len()),
            )
        })?;
        let mut a = BufferFromHostBufferArgs::new();
        a.client = self.raw;
        a.data = if bytes.is_empty() {
            // A valid, aligned pointer for empty tensors.
            [0u64; 2].as_ptr() as *const c_void
        } else {
            bytes.as_ptr() as *const c_void
        };
        a.type_ = ty;
        a.dims = dims.as_ptr();
        a.num_dims = dims.len();
        a.byte_strides = byte_strides.as_ptr();
        a.num_byte_strides = byte_strides.len();
        a.host_buffer_semantics = 0; // kImmutableOnlyDuringCall: copied before returning.
        a.device = dev;
        self.plugin
            .check("PJRT_Client_BufferFromHostBuffer", unsafe {
                self.plugin.call(off::CLIENT_BUFFER_FROM_HOST, &mut a)
            })?;
        let b = Buffer {
            client: self.clone(),
            raw: a.buffer,
        };
        self.plugin.await_event(a.done_with_host_buffer)?;
        Ok(b)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut a = ClientDestroyArgs::new();
        a.client = self.raw;
        let e = unsafe { self.plugin.call(off::CLIENT_DESTROY, &mut a) };
        let _ = self.plugin.check("PJRT_Client_Destroy", e);
    }
}

/// A compiled, loaded executable.
pub struct Executable {
    client: Arc<Client>,
    raw: *mut c_void,
    num_outputs: usize,
}

// SAFETY: PJRT executables may be executed from any thread.
unsafe impl Send for Executable {}
unsafe impl Sync for Executable {}

impl Executable {
    /// Outputs per device.
    pub fn num_outputs(&self) -> usize {
        self.num_outputs
    }

    /// Runs on `args.len()` devices (`args[d]` are device `d`'s arguments, on that
    /// device); returns each device's outputs once execution completed.
    pub fn execute(&self, args: &[Vec<&Buffer>]) -> Result<Vec<Vec<Buffer>>> {
        let plugin = &self.client.plugin;
        let n_dev = args.len();
        let n_args = args.first().map_or(0, |a| a.len());
        let lists: Vec<Vec<*mut c_void>> = args
            .iter()
            .map(|a| a.iter().map(|b| b.raw).collect())
            .collect();
        let list_ptrs: Vec<*const *mut c_void> = lists.iter().map(|l| l.as_ptr()).collect();
        let mut outs: Vec<Vec<*mut c_void>> = (0..n_dev)
            .map(|_| vec![null_mut(); self.num_outputs])
            .collect();
        let out_ptrs: Vec<*mut *mut c_void> = outs.iter_mut().map(|o| o.as_mut_ptr()).collect();
        let mut events: Vec<*mut c_void> = vec![null_mut(); n_dev];
        let mut opts = ExecuteOptions::new();
        let mut a = ExecuteArgs::new();
        a.executable = self.raw;
        a.options = &mut opts;
        a.argument_lists = list_ptrs.as_ptr();
        a.num_devices = n_dev;
        a.num_args = n_args;
        a.output_lists = out_ptrs.as_ptr();
        a.device_complete_events = events.as_mut_ptr();
        plugin.check("PJRT_LoadedExecutable_Execute", unsafe {
            plugin.call(off::LOADED_EXECUTE, &mut a)
        })?;
        // Own the outputs first, so they are freed even if an event reports an error.
        let result: Vec<Vec<Buffer>> = outs
            .iter()
            .map(|o| {
                o.iter()
                    .map(|&raw| Buffer {
                        client: self.client.clone(),
                        raw,
                    })
                    .collect()
            })
            .collect();
        let mut first_err = Ok(());
        for e in events {
            let r = plugin.await_event(e);
            if first_err.is_ok() {
                first_err = r;
            }
        }
        first_err?;
        Ok(result)
    }
}

impl Drop for Executable {
    fn drop(&mut self) {
        let mut a = LoadedExecutableDestroyArgs::new();
        a.executable = self.raw;
        let p = &self.client.plugin;
        let e = unsafe { p.call(off::LOADED_DESTROY, &mut a) };
        let _ = p.check("PJRT_LoadedExecutable_Destroy", e);
    }
}

/// A device buffer.
pub struct Buffer {
    client: Arc<Client>,
    raw: *mut c_void,
}

// SAFETY: PJRT buffers may be used from any thread.
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    /// The buffer's dimensions.
    pub fn dims(&self) -> Result<Vec<i64>> {
        let p = &self.client.plugin;
        let mut a = BufferDimensionsArgs::new();
        a.buffer = self.raw;
        p.check("PJRT_Buffer_Dimensions", unsafe {
            p.call(off::BUFFER_DIMENSIONS, &mut a)
        })?;
        if a.num_dims == 0 || a.dims.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: an array of `num_dims` alive with the buffer.
        Ok(unsafe { std::slice::from_raw_parts(a.dims, a.num_dims) }.to_vec())
    }

    /// Copies the buffer to `dst` (dense, row-major: the last axis fastest).
    pub fn download(&self, dst: &mut [u8]) -> Result<()> {
        let p = &self.client.plugin;
        let mut q = ToHostBufferArgs::new();
        q.src = self.raw;
        p.check("PJRT_Buffer_ToHostBuffer", unsafe {
            p.call(off::BUFFER_TO_HOST, &mut q)
        })?;
        if q.dst_size != dst.len() {
            return Err(err(
                "PJRT_Buffer_ToHostBuffer",
                format!(
                    "device buffer has {} bytes, expected {}",
                    q.dst_size,
                    dst.len()
                ),
            ));
        }
        if dst.is_empty() {
            return Ok(());
        }
        let mut a = ToHostBufferArgs::new();
        a.src = self.raw;
        a.dst = dst.as_mut_ptr() as *mut c_void;
        a.dst_size = dst.len();
        p.check("PJRT_Buffer_ToHostBuffer", unsafe {
            p.call(off::BUFFER_TO_HOST, &mut a)
        })?;
        p.await_event(a.event)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.raw.is_null() {
            return;
        }
        let mut a = BufferDestroyArgs::new();
        a.buffer = self.raw;
        let p = &self.client.plugin;
        let e = unsafe { p.call(off::BUFFER_DESTROY, &mut a) };
        let _ = p.check("PJRT_Buffer_Destroy", e);
    }
}

/// A hand-encoded `xla.CompileOptionsProto` (protobuf wire format): only
/// `executable_build_options` (field 3) with `device_ordinal` (1) = -1, `num_replicas` (4)
/// = 1, `num_partitions` (5), and for more than one partition `use_spmd_partitioning` (6),
/// `device_assignment` (9: replica_count 1, computation_count n, one
/// `computation_devices` entry per partition) and `use_shardy_partitioner` (19).
pub fn compile_options(num_partitions: usize) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn int_field(out: &mut Vec<u8>, field: u64, v: i64) {
        varint(out, field << 3);
        varint(out, v as u64);
    }
    fn msg_field(out: &mut Vec<u8>, field: u64, body: &[u8]) {
        varint(out, (field << 3) | 2);
        varint(out, body.len() as u64);
        out.extend_from_slice(body);
    }
    let n = num_partitions.max(1);
    let mut eb = Vec::new();
    int_field(&mut eb, 1, -1);
    int_field(&mut eb, 4, 1);
    int_field(&mut eb, 5, n as i64);
    if n > 1 {
        int_field(&mut eb, 6, 1);
        let mut da = Vec::new();
        int_field(&mut da, 1, 1);
        int_field(&mut da, 2, n as i64);
        for d in 0..n {
            // replica_device_ids (1), packed: one id per computation.
            let mut ids = Vec::new();
            varint(&mut ids, d as u64);
            let mut cd = Vec::new();
            msg_field(&mut cd, 1, &ids);
            msg_field(&mut da, 3, &cd);
        }
        msg_field(&mut eb, 9, &da);
        int_field(&mut eb, 19, 1);
    }
    let mut out = Vec::new();
    msg_field(&mut out, 3, &eb);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_options_encoding() {
        // The bytes jaxlib's CompileOptions serializes for these fields (checked by hand).
        let mut want = vec![0x1a, 0x0f, 0x08];
        want.extend([0xff; 9]);
        want.extend([0x01, 0x20, 0x01, 0x28, 0x01]);
        assert_eq!(compile_options(1), want);
        let two = compile_options(2);
        let tail = [
            0x20, 0x01, 0x28, 0x02, 0x30, 0x01, 0x4a, 0x0e, 0x08, 0x01, 0x10, 0x02, 0x1a, 0x03,
            0x0a, 0x01, 0x00, 0x1a, 0x03, 0x0a, 0x01, 0x01,
        ];
        assert!(two.windows(tail.len()).any(|w| w == tail));
        assert_eq!(&two[two.len() - 3..], &[0x98, 0x01, 0x01]);
    }

    #[test]
    fn missing_plugin_is_an_error() {
        let e = Plugin::load(Path::new("/nonexistent/pjrt.so"))
            .err()
            .unwrap();
        assert!(e.to_string().contains(PLUGIN_ENV), "{e}");
    }
}
