//! Resource limits and verifier-accepted IR: a tensor the machine cannot hold is an error
//! that names the op and the bytes, an element count that overflows is an error, and
//! every function the verifier accepts is run or rejected by every backend and pass
//! level without a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use tenferro_ad::eager::EagerContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::ir::{parse, verify};
use tenferro_runtime::{
    Backend, DType, ExtensionRegistry, GraphCompiler, GraphExecutor, OptLevel, Pipeline, Tensor,
    TensorType, TracedTensor,
};

/// 2^40 elements: 8 TiB of f64, which no test machine can allocate.
const HUGE: usize = 1 << 40;

/// Compiles and runs `t` on the CPU backend; the error message, or a failure if it ran
/// or panicked.
fn run_err(what: &str, t: &TracedTensor) -> String {
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<Tensor, String> {
        let p = GraphCompiler::new().compile(t).map_err(|e| e.to_string())?;
        GraphExecutor::new(CpuBackend::with_threads(1))
            .run(&p)
            .map_err(|e| e.to_string())
    }));
    match r {
        Ok(Ok(v)) => panic!("{what}: ran and produced {:?}", v.shape()),
        Ok(Err(e)) => e,
        Err(_) => panic!("{what}: panicked"),
    }
}

fn assert_names_size(what: &str, msg: &str) {
    assert!(
        msg.contains("bytes") || msg.contains("elements"),
        "{what}: message does not name the size: {msg}"
    );
}

#[test]
fn huge_zeros_is_an_allocation_error() {
    let t = TracedTensor::zeros(&TensorType::new(DType::F64, vec![HUGE]));
    let msg = run_err("zeros", &t);
    assert!(msg.contains("8796093022208 bytes"), "{msg}");
}

#[test]
fn huge_broadcast_plus_one_is_an_allocation_error() {
    let s = TracedTensor::scalar(1.0f64);
    let b = s.broadcast_in_dim(&[HUGE], &[]).unwrap();
    let msg = run_err("broadcast + 1", &(&b + 1.0));
    assert_names_size("broadcast + 1", &msg);
}

#[test]
fn huge_iota_times_two_is_an_allocation_error() {
    let i = TracedTensor::iota(DType::F64, &[HUGE], 0).unwrap();
    let msg = run_err("iota * 2", &(&i * 2.0));
    assert_names_size("iota * 2", &msg);
}

#[test]
fn huge_eager_zeros_is_an_allocation_error() {
    let r = catch_unwind(|| {
        let ctx = EagerContext::new(CpuBackend::with_threads(1));
        ctx.zeros(&TensorType::new(DType::F64, vec![HUGE]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    match r {
        Ok(Ok(())) => panic!("EagerContext::zeros of 8 TiB succeeded"),
        Ok(Err(msg)) => assert!(msg.contains("8796093022208 bytes"), "{msg}"),
        Err(_) => panic!("EagerContext::zeros panicked"),
    }
}

#[test]
fn tensor_try_zeros_rejects_overflow_and_huge() {
    let e = Tensor::try_zeros(&TensorType::new(DType::F64, vec![1 << 32, 1 << 32])).unwrap_err();
    assert!(e.to_string().contains("[4294967296, 4294967296]"), "{e}");
    let e = Tensor::try_zeros(&TensorType::new(DType::F64, vec![HUGE])).unwrap_err();
    assert!(e.to_string().contains("8796093022208 bytes"), "{e}");
    let e = Tensor::try_full(&TensorType::new(DType::F32, vec![HUGE]), 1.0).unwrap_err();
    assert!(e.to_string().contains("4398046511104 bytes"), "{e}");
}

/// Functions the verifier must accept or reject; each accepted one must also run or be
/// rejected with an error through the passes and the CPU backend.
const PROGRAMS: &[&str] = &[
    // An extension op with no results, and no kernel for it.
    "func @f(%0: f64[3]) -> () {\n  a.b %0\n  return\n}\n",
    // A gather from a zero-element tensor whose gathered axis has usize::MAX entries.
    "func @f(%0: f64[0,18446744073709551615], %1: i64[2]) -> (f64[0,2]) {\n  %2 = gather {axis = 1} %0, %1 : f64[0,2]\n  return %2\n}\n",
    // A parameter whose element count overflows usize.
    "func @f(%0: i64[4,4611686018427387904,3,3]) -> (i64[4,4611686018427387904,3,3]) {\n  return %0\n}\n",
    // A concatenation whose summed axis overflows (wrapping would give 2^59-33).
    concat_overflow(),
    // A pad of an empty tensor whose padded axis overflows (saturating would give usize::MAX).
    "func @f(%0: f64[0,4611686018427387904], %1: f64[]) -> (f64[0,4611686018427387904]) {\n  %2 = pad {low = [0, 9223372036854775807], high = [0, 9223372036854775807]} %0, %1 : f64[0,4611686018427387904]\n  return %2\n}\n",
    // A skinny product on batch lanes with 2^32 rows: its plan must not build a table per row.
    "func @f(%a: f64[8,4294967296,1], %b: f64[8,1,1]) -> (f64[8,4294967296,1]) {\n  %c = dot_general {lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]} %a, %b\n  return %c\n}\n",
    // An empty product with 2^32 batches: nothing to compute, no table per batch.
    "func @f(%a: f64[4294967296,0,2], %b: f64[4294967296,2,3]) -> (f64[4294967296,0,3]) {\n  %c = dot_general {lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]} %a, %b\n  return %c\n}\n",
    // Empty tensors with one huge axis through every structural and scan op: no plan may
    // build a table per element of the huge axis.
    "func @f(%a: f64[0,4611686018427387904]) -> (f64[4611686018427387904,0]) {\n  %b = transpose {perm = [1, 0]} %a : f64[4611686018427387904,0]\n  return %b\n}\n",
    "func @f(%a: f64[0,4611686018427387904]) -> (f64[0]) {\n  %b = reduce_sum {axes = [1]} %a : f64[0]\n  return %b\n}\n",
    "func @f(%a: f64[4611686018427387904,0]) -> (f64[0]) {\n  %b = reduce_max {axes = [0]} %a : f64[0]\n  return %b\n}\n",
    "func @f(%a: f64[4611686018427387904,0]) -> (f64[4611686018427387904,0]) {\n  %b = cumsum {axis = 0, reverse = true} %a : f64[4611686018427387904,0]\n  return %b\n}\n",
    "func @f(%a: f64[0,4611686018427387904]) -> (i64[0,4611686018427387904]) {\n  %b = argsort {axis = 1, descending = false} %a : i64[0,4611686018427387904]\n  return %b\n}\n",
    "func @f(%a: f64[0]) -> (f64[0,4611686018427387904]) {\n  %b = broadcast_in_dim {shape = [0, 4611686018427387904], dims = [0]} %a : f64[0,4611686018427387904]\n  return %b\n}\n",
    "func @f(%a: f64[0,4294967296], %b: f64[4294967296,3]) -> (f64[0,3]) {\n  %c = dot_general {lhs_contract = [1], rhs_contract = [0]} %a, %b\n  return %c\n}\n",
    "func @f(%a: f64[3,0], %b: f64[0,4294967296]) -> (f64[3,4294967296]) {\n  %c = dot_general {lhs_contract = [1], rhs_contract = [0]} %a, %b\n  return %c\n}\n",
];

const fn concat_overflow() -> &'static str {
    "func @f(%0: f32[576460752303423487]) -> (f32[576460752303423455]) {\n  %1 = concatenate {axis = 0} %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0, %0 : f32[576460752303423455]\n  return %1\n}\n"
}

/// Runs `text` through parse, verify, every pass level and the CPU backend (fused and
/// unfused); returns whether the verifier accepted it. A panic anywhere is a failure.
fn exercise(text: &str) -> bool {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let Ok(f) = parse(text) else { return false };
        if verify(&f).is_err() {
            return false;
        }
        for level in [OptLevel::O0, OptLevel::O1, OptLevel::O2] {
            let mut g = f.clone();
            if Pipeline::for_level(level).run(&mut g, &mut |_| {}).is_err() {
                continue;
            }
            for fusion in [true, false] {
                let be = CpuBackend::with_threads(1).with_fusion(fusion);
                let Ok(p) = be.prepare(&g) else { continue };
                let inputs: Result<Vec<Tensor>, _> = g
                    .params()
                    .iter()
                    .map(|&v| Tensor::try_zeros(g.ty(v)))
                    .collect();
                if let Ok(inputs) = inputs {
                    let _ = be.execute(&p, &inputs, &ExtensionRegistry::new());
                }
            }
        }
        true
    }));
    match r {
        Ok(accepted) => accepted,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("panic on\n{text}\n{msg}")
        }
    }
}

#[test]
fn verifier_accepted_programs_never_panic() {
    for text in PROGRAMS {
        exercise(text);
    }
}

#[test]
fn extension_op_without_kernel_is_missing_kernel() {
    let f = parse(PROGRAMS[0]).unwrap();
    verify(&f).unwrap();
    for fusion in [true, false] {
        let be = CpuBackend::with_threads(1).with_fusion(fusion);
        let r = catch_unwind(AssertUnwindSafe(|| {
            let p = be.prepare(&f)?;
            let x = Tensor::from_vec_col_major(vec![3], vec![0.0f64; 3]).unwrap();
            be.execute(&p, &[x], &ExtensionRegistry::new())
        }))
        .unwrap_or_else(|_| panic!("a.b with no results panicked (fusion {fusion})"));
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("a.b"), "{msg}");
    }
}

#[test]
fn gather_from_empty_tensor_with_huge_axis_runs() {
    let f = parse(PROGRAMS[1]).unwrap();
    verify(&f).unwrap();
    let x = Tensor::from_vec_col_major(vec![0, usize::MAX], Vec::<f64>::new()).unwrap();
    let i = Tensor::from_vec_col_major(vec![2], vec![0i64, 5]).unwrap();
    let want = tenferro_runtime::ir::eval::eval(&f, &[x.clone(), i.clone()]).unwrap();
    for fusion in [true, false] {
        let be = CpuBackend::with_threads(1).with_fusion(fusion);
        let got = catch_unwind(AssertUnwindSafe(|| {
            let p = be.prepare(&f)?;
            be.execute(&p, &[x.clone(), i.clone()], &ExtensionRegistry::new())
        }))
        .unwrap_or_else(|_| panic!("gather panicked (fusion {fusion})"))
        .unwrap();
        assert_eq!(got, want);
    }
}

#[test]
fn verifier_rejects_overflowing_parameter() {
    let e = parse(PROGRAMS[2]).unwrap_err().to_string();
    assert!(e.contains("i64[4,4611686018427387904,3,3]"), "{e}");
    let mut f = tenferro_runtime::ir::Function::new("f");
    let p = f.add_param(TensorType::new(
        DType::I64,
        vec![4, 4611686018427387904, 3, 3],
    ));
    f.set_outputs(vec![p]);
    let e = verify(&f).unwrap_err().to_string();
    assert!(e.contains("i64[4,4611686018427387904,3,3]"), "{e}");
}

#[test]
fn verifier_rejects_overflowing_concatenate() {
    let f = parse(PROGRAMS[3]).unwrap();
    let e = verify(&f).unwrap_err().to_string();
    assert!(e.contains("concatenate") && e.contains("overflow"), "{e}");
}

#[test]
fn verifier_rejects_overflowing_pad() {
    let f = parse(PROGRAMS[4]).unwrap();
    let e = verify(&f).unwrap_err().to_string();
    assert!(e.contains("pad") && e.contains("overflow"), "{e}");
}

/// Bytes this machine has available (`MemAvailable + SwapFree`), if it says.
fn available_bytes() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |key: &str| -> Option<usize> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some(field("MemAvailable:")? + field("SwapFree:").unwrap_or(0))
}

#[test]
fn a_peak_beyond_the_machine_is_an_error_before_any_page_is_touched() {
    // Two results of 3/4 of the available memory each: every single allocation succeeds
    // under Linux overcommit, so without the memory-plan check the run would be killed by
    // the OS while writing them.
    let Some(avail) = available_bytes() else {
        return;
    };
    let n = avail / 8 / 4 * 3;
    let i = TracedTensor::iota(DType::F64, &[n], 0).unwrap();
    let (a, b) = (&i * 2.0, &i * 3.0);
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let p = GraphCompiler::new()
            .compile_many(&[&a, &b])
            .map_err(|e| e.to_string())?;
        GraphExecutor::new(CpuBackend::with_threads(1))
            .run_many(&p)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }));
    match r {
        Ok(Ok(())) => panic!("a run needing 1.5x the available memory succeeded"),
        Ok(Err(msg)) => {
            assert!(msg.contains("memory plan needs"), "{msg}");
            assert!(msg.contains(&format!("f64[{n}]")), "{msg}");
        }
        Err(_) => panic!("the run panicked"),
    }
}
