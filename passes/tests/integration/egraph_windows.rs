//! The e-graph pass on functions larger than its node budget: it simplifies them window
//! by window, with the same outcome whatever the machine's load.

use proptest::prelude::*;
use tenferro_ir::arbitrary::{arb_function, arb_inputs, ArbConfig};
use tenferro_ir::eval::eval;
use tenferro_ir::verify::verify;
use tenferro_ir::{parse_and_verify, print, Function};
use tenferro_passes::cost::score;
use tenferro_passes::egraph::{self, simplify, EGraphOptions};
use tenferro_passes::PassStats;

/// `n` steps of `v = v * 1 + (-0)` on `%x`, as IR text:
///
/// ```text
/// func @f(%x: f64[3]) -> (f64[3]) {
///   %one = constant f64[3] [1.0, 1.0, 1.0]
///   %nz = constant f64[3] [-0.0, -0.0, -0.0]
///   %m0 = mul %x, %one
///   %a0 = add %m0, %nz
///   %m1 = mul %a0, %one
///   %a1 = add %m1, %nz
///   ...
///   return %a{n-1}
/// }
/// ```
fn chain(n: usize) -> Function {
    let mut text = String::from(
        "func @f(%x: f64[3]) -> (f64[3]) {\n  %one = constant f64[3] [1.0, 1.0, 1.0]\n  %nz = constant f64[3] [-0.0, -0.0, -0.0]\n",
    );
    let mut prev = "%x".to_string();
    for i in 0..n {
        text.push_str(&format!(
            "  %m{i} = mul {prev}, %one\n  %a{i} = add %m{i}, %nz\n"
        ));
        prev = format!("%a{i}");
    }
    text.push_str(&format!("  return {prev}\n}}\n"));
    parse_and_verify(&text).unwrap()
}

const JUST_THE_INPUT: &str = "func @f(%0: f64[3]) -> (f64[3]) {\n  return %0\n}\n";

#[test]
fn a_chain_within_the_node_budget_simplifies_to_its_input() {
    let mut f = chain(1_900);
    assert_eq!(f.insts().len(), 3_802);
    let r = simplify(&mut f, &EGraphOptions::default());
    assert_eq!(f.insts().len(), 0, "{r:?}");
    assert_eq!(print(&f), JUST_THE_INPUT);
}

#[test]
fn a_chain_beyond_the_node_budget_simplifies_to_its_input() {
    for n in [2_000, 10_000] {
        let mut f = chain(n);
        assert_eq!(f.insts().len(), 2 * n + 2);
        let stats = egraph::run(&mut f, &EGraphOptions::default());
        assert_eq!(f.insts().len(), 0, "n = {n}: {stats}");
        assert_eq!(print(&f), JUST_THE_INPUT);
        // Every window saturated: neither the time limit nor another budget cut it short.
        let windows = counter(&stats, "windows");
        assert!(windows > 1, "n = {n}: {stats}");
        assert_eq!(counter(&stats, "saturated"), windows, "n = {n}: {stats}");
        assert_eq!(counter(&stats, "time_limit"), 0, "n = {n}: {stats}");
    }
}

fn counter(stats: &PassStats, name: &str) -> u64 {
    stats
        .counters
        .iter()
        .find(|(k, _)| *k == name)
        .map_or(0, |c| c.1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// With a node budget of a few instructions, random functions are simplified in
    /// many windows; the results stay bit-identical and the function never gets more
    /// expensive.
    #[test]
    fn windows_keep_results_bit_identical(
        (f, inputs) in arb_function(ArbConfig::default()).prop_flat_map(|f| {
            let inputs = arb_inputs(&f);
            (Just(f), inputs)
        })
    ) {
        let mut g = f.clone();
        let opts = EGraphOptions { node_limit: 12, ..EGraphOptions::default() };
        let r = simplify(&mut g, &opts);
        prop_assert_eq!(r.saturation.ill_typed, 0);
        verify(&g).unwrap();
        prop_assert!(score(&g) <= score(&f));
        prop_assert_eq!(g.output_types(), f.output_types());
        let (x, y) = (eval(&f, &inputs).unwrap(), eval(&g, &inputs).unwrap());
        for (a, b) in x.iter().zip(&y) {
            prop_assert!(a.bits_eq(b), "{:?}\nbefore: {:?}\nafter: {:?}", r, f, g);
        }
    }
}
