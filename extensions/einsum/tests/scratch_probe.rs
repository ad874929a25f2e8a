mod common;
use common::*;
use num_complex::Complex64;
use tenferro_einsum::*;
use tenferro_runtime::TracedTensor;

#[test]
fn probe() {
    let a32 = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]);
    let b64 = col(&[2, 2], vec![1.0, 0.5, 0.25, 2.0]);
    let ai = TracedTensor::from_vec_col_major(vec![2, 2], vec![1i64, 2, 3, 4]);
    let bi = TracedTensor::from_vec_col_major(vec![2, 2], vec![5i64, 6, 7, 8]);
    let ai32 = TracedTensor::from_vec_col_major(vec![2, 2], vec![1i32, 2, 3, 4]);
    let c = TracedTensor::from_vec_col_major(
        vec![2, 2],
        vec![
            Complex64::new(1.0, 1.0),
            Complex64::new(0.0, 2.0),
            Complex64::new(3.0, 0.0),
            Complex64::new(1.0, -1.0),
        ],
    );
    let bb = TracedTensor::from_vec_col_major(vec![2, 2], vec![true, false, true, true]);
    for (s, ops, what) in [
        ("ij,jk->ik", vec![&a32, &b64], "f32 x f64"),
        ("ij,jk->ik", vec![&ai, &bi], "i64 x i64"),
        ("ij,jk->ik", vec![&ai32, &ai32], "i32 x i32"),
        ("ij,jk->ik", vec![&ai, &b64], "i64 x f64"),
        ("ij,jk->ik", vec![&c, &b64], "c64 x f64"),
        ("ij,jk->ik", vec![&c, &a32], "c64 x f32"),
        ("ii->", vec![&ai], "trace i64"),
        ("ij->", vec![&bb], "sum bool"),
        ("ij,jk->ik", vec![&bb, &bb], "bool x bool"),
        ("i->ii", vec![&col(&[2], vec![1.0, 2.0])], "diag"),
    ] {
        match einsum(s, &ops) {
            Ok(y) => {
                let r = tenferro_cpu_run(&y);
                println!("{what}: {r}");
            }
            Err(e) => println!("{what}: ERR {e}"),
        }
    }
}

fn tenferro_cpu_run(t: &TracedTensor) -> String {
    use tenferro_cpu::CpuBackend;
    use tenferro_runtime::{GraphCompiler, GraphExecutor};
    match GraphCompiler::new().compile(t) {
        Err(e) => format!("COMPILE ERR {e}"),
        Ok(p) => match GraphExecutor::new(CpuBackend::new()).run(&p) {
            Err(e) => format!("RUN ERR {e}"),
            Ok(x) => format!("{:?} {:?}", x.dtype(), x),
        },
    }
}
