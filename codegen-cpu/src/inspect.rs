//! Graphviz DOT export of a prepared program: one node per parameter and instruction,
//! operand edges, fusion groups as clusters, views dashed. Imports only `program`.

use crate::program::CpuProgram;
use std::fmt::Write;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl CpuProgram {
    /// The program as a Graphviz DOT graph: fusion groups are clusters labelled with their
    /// schedule's tile and block sizes; views (inlined loads) are dashed; program outputs
    /// are double circles.
    pub fn to_dot(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "digraph \"{}\" {{", escape(&self.name));
        let _ = writeln!(s, "  rankdir=TB;");
        let _ = writeln!(
            s,
            "  node [shape=box, fontname=\"monospace\", fontsize=10];"
        );
        for (slot, ty) in &self.params {
            let _ = writeln!(
                s,
                "  v{slot} [label=\"%{slot} = param\\n{ty}\", shape=ellipse];"
            );
        }
        let node = |s: &mut String, k: usize, indent: &str| {
            let g = &self.graph[k];
            let r = g.results.first().copied().unwrap_or(0);
            let ty = g.types.first().map(|t| t.to_string()).unwrap_or_default();
            let mut attrs = String::new();
            if g.view {
                attrs.push_str(", style=dashed");
            }
            if g.results.iter().any(|r| self.outputs.contains(r)) {
                attrs.push_str(", peripheries=2");
            }
            let _ = writeln!(
                s,
                "{indent}v{r} [label=\"%{r} = {}\\n{ty}\"{attrs}];",
                escape(&g.op)
            );
        };
        let schedules = self.schedules();
        for grp in &self.groups {
            let _ = writeln!(s, "  subgraph cluster_g{} {{", grp.id);
            let label = match schedules.iter().find(|k| k.group == grp.id) {
                Some(k) => format!(
                    "g{}: {} elements, tile {}, {} block(s)",
                    grp.id,
                    grp.numel,
                    k.tile(),
                    k.num_blocks()
                ),
                None => format!("g{}", grp.id),
            };
            let _ = writeln!(s, "    label=\"{label}\"; style=rounded; color=blue;");
            for &k in &grp.insts {
                node(&mut s, k, "    ");
            }
            let _ = writeln!(s, "  }}");
        }
        for (k, g) in self.graph.iter().enumerate() {
            if g.group.is_none() {
                node(&mut s, k, "  ");
            }
        }
        for g in &self.graph {
            for &r in g.results.iter().take(1) {
                for &a in &g.args {
                    let _ = writeln!(s, "  v{a} -> v{r};");
                }
            }
        }
        let _ = writeln!(s, "}}");
        s
    }
}
