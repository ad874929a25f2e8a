//! IR-in / IR-out tests of the passes, one case per file in `tests/o1/*.ir`:
//!
//! ```text
//! // passes: fold, dce
//! func @f(...) { ... }          (the input function)
//! // ---- expected ----
//! // fold: changed=true folded=2 (one line per pass: its statistics)
//! func @f(...) { ... }          (the printed output)
//! ```
//!
//! The passes run with `verify_each`. Run with `TENFERRO_BLESS=1` to rewrite the expected
//! part of every file from the actual output (then review the diff).

use std::path::Path;
use tenferro_ir::{parse_and_verify, print};
use tenferro_passes::Pipeline;

const SEPARATOR: &str = "// ---- expected ----";

/// The actual expected-section text for one case file.
fn run_case(path: &Path, input: &str) -> String {
    let header = input
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// passes:"))
        .unwrap_or_else(|| panic!("{}: first line must be `// passes: a, b`", path.display()));
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut pipeline = Pipeline::from_names(&names).unwrap();
    pipeline.verify_each = true;
    let mut f = parse_and_verify(input).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let records = pipeline
        .run(&mut f, &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    for r in &records {
        out.push_str(&format!("// {}: {}\n", r.pass, r.stats));
    }
    out.push_str(&print(&f));
    out
}

#[test]
fn ir_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/o1");
    let bless = std::env::var_os("TENFERRO_BLESS").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ir"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no test files in {}", dir.display());
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let (input, expected) = match text.split_once(SEPARATOR) {
            Some((i, e)) => (i, Some(e)),
            None => (text.as_str(), None),
        };
        let actual = run_case(path, input);
        if bless {
            let new = format!(
                "{}{SEPARATOR}\n{}\n",
                input.trim_end_matches('\n').to_string() + "\n",
                actual.trim_end()
            );
            std::fs::write(path, new).unwrap();
        } else if expected.map(str::trim) != Some(actual.trim()) {
            failures.push(format!(
                "{}:\n--- expected\n{}\n--- actual\n{}",
                path.display(),
                expected.unwrap_or("(missing)").trim(),
                actual.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ (TENFERRO_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
