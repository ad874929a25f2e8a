//! A program sharded over two XLA CPU devices equals the one-device result. Skips when
//! TENFERRO_PJRT_PLUGIN is unset. (Its own test binary: XLA_FLAGS must be set before the
//! first client of the process.)

use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};
use tenferro_xla::{Mesh, PartitionSpec, Sharding, XlaBackend, PLUGIN_ENV};

#[test]
fn data_and_model_parallel_match_one_device() {
    if std::env::var_os(PLUGIN_ENV).is_none() {
        eprintln!("SKIP: {PLUGIN_ENV} is not set (pip install xla-cpu-pjrt; see README ## XLA)");
        return;
    }
    std::env::set_var("XLA_FLAGS", "--xla_force_host_platform_device_count=2");
    let xla = XlaBackend::from_env().unwrap();
    assert!(xla.num_devices() >= 2, "{} devices", xla.num_devices());
    let a = TracedTensor::input(DType::F64, &[4, 6]);
    let b = TracedTensor::input(DType::F64, &[6, 8]);
    let y = a.matmul(&b).unwrap().tanh();
    let p = GraphCompiler::new().compile(&y).unwrap();
    let av = Tensor::from_vec_col_major(
        vec![4, 6],
        (0..24).map(|i| (i as f64 * 0.37).sin()).collect(),
    )
    .unwrap();
    let bv = Tensor::from_vec_col_major(
        vec![6, 8],
        (0..48).map(|i| (i as f64 * 0.11).cos()).collect(),
    )
    .unwrap();
    let bind = |t: &TracedTensor| {
        if t.same_as(&a) {
            av.clone()
        } else {
            bv.clone()
        }
    };
    let inputs: Vec<Tensor> = p.inputs().iter().map(bind).collect();
    let want = GraphExecutor::new(tenferro_cpu::CpuBackend::new())
        .run_with_inputs(&p, &[(&a, av.clone()), (&b, bv.clone())])
        .unwrap();
    let spec = |t: &TracedTensor, s_a: PartitionSpec, s_b: PartitionSpec| {
        if t.same_as(&a) {
            s_a
        } else {
            s_b
        }
    };
    let mesh = Mesh::new(&[("x", 2)]);
    // Data parallel over b's columns; model parallel over the contraction axis.
    for (sa, sb, out) in [
        (
            PartitionSpec::replicated(),
            PartitionSpec::new(&[None, Some("x")]),
            PartitionSpec::new(&[None, Some("x")]),
        ),
        (
            PartitionSpec::new(&[None, Some("x")]),
            PartitionSpec::new(&[Some("x")]),
            PartitionSpec::replicated(),
        ),
    ] {
        let specs = p
            .inputs()
            .iter()
            .map(|t| spec(t, sa.clone(), sb.clone()))
            .collect();
        let sh = Sharding::new(mesh.clone(), specs, vec![out]);
        let prepared = xla.prepare_sharded(p.function(), &sh).unwrap();
        let r = xla.execute_sharded(&prepared, &inputs).unwrap();
        assert_eq!(r.pieces[0].len(), 2);
        let (g, w) = (
            r.outputs[0].to_vec::<f64>().unwrap(),
            want.to_vec::<f64>().unwrap(),
        );
        for (x, y) in g.iter().zip(&w) {
            assert!((x - y).abs() < 1e-12, "{g:?} vs {w:?}");
        }
    }
    // A spec that does not divide is an error, not a crash.
    let bad = Sharding::new(
        mesh,
        vec![
            PartitionSpec::new(&[Some("x")]),
            PartitionSpec::new(&[None, Some("y")]),
        ],
        vec![PartitionSpec::replicated()],
    );
    assert!(xla.prepare_sharded(p.function(), &bad).is_err());
}
