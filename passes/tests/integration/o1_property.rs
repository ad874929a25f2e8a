//! Property: on random well-typed functions, the O1 pipeline's output verifies and
//! evaluates (reference evaluator) to results bit-identical to the input function's; the
//! `reorder` pass alone keeps every instruction, never raises the peak of live bytes, and
//! changes no bit.

use proptest::prelude::*;
use tenferro_ir::arbitrary::{arb_function, arb_inputs, ArbConfig};
use tenferro_ir::eval::eval;
use tenferro_ir::{verify, Function, Tensor};
use tenferro_passes::{OptLevel, Pipeline};

fn case() -> impl Strategy<Value = (Function, Vec<Tensor>)> {
    arb_function(ArbConfig::default()).prop_flat_map(|f| {
        let inputs = arb_inputs(&f);
        (Just(f), inputs)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn o1_preserves_results_bitwise((f, inputs) in case()) {
        let want = eval(&f, &inputs).unwrap();
        let mut g = f.clone();
        let mut pipeline = Pipeline::for_level(OptLevel::O1);
        pipeline.verify_each = true;
        pipeline.run(&mut g, &mut |_| {}).unwrap();
        verify(&g).unwrap();
        prop_assert!(g.insts().len() <= f.insts().len());
        prop_assert_eq!(g.param_types(), f.param_types());
        let got = eval(&g, &inputs).unwrap();
        prop_assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            prop_assert!(a.bits_eq(b), "output {} differs:\n{:?}\nvs\n{:?}\n{}", i, a, b, tenferro_ir::print(&g));
        }
    }

    #[test]
    fn reorder_keeps_results_and_never_raises_the_peak((f, inputs) in case()) {
        let want = eval(&f, &inputs).unwrap();
        let mut g = f.clone();
        let mut pipeline = Pipeline::from_names(&["reorder"]).unwrap();
        pipeline.verify_each = true;
        let records = pipeline.run(&mut g, &mut |_| {}).unwrap();
        let stats = &records[0].stats;
        let counter = |name: &str| stats.counters.iter().find(|(k, _)| *k == name).unwrap().1;
        prop_assert!(counter("peak_after") <= counter("peak_before"));
        prop_assert_eq!(g.insts().len(), f.insts().len());
        let got = eval(&g, &inputs).unwrap();
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            prop_assert!(a.bits_eq(b), "output {} differs after reorder:\n{}", i, tenferro_ir::print(&g));
        }
    }
}
