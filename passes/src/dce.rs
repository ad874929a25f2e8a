//! Dead code elimination: drops instructions none of whose results is used by a live
//! instruction or an output. Parameters are kept unchanged and in order.

use crate::pipeline::{PassError, PassStats};
use crate::rebuild::Rebuild;
use tenferro_ir::{Function, Value};

fn malformed(message: String) -> PassError {
    PassError::Failed {
        pass: "dce".to_string(),
        message,
    }
}

/// Removes unused instructions from `f`. Counter: `removed`.
pub fn run(f: &mut Function) -> Result<PassStats, PassError> {
    let n = f.num_values();
    let mut live = vec![false; n];
    let mark = |v: Value, live: &mut Vec<bool>| -> Result<(), PassError> {
        *live
            .get_mut(v.index())
            .ok_or_else(|| malformed(format!("value {v} is not in function `{}`", f.name)))? = true;
        Ok(())
    };
    for &o in f.outputs() {
        mark(o, &mut live)?;
    }
    let mut keep = vec![false; f.insts().len()];
    for (i, inst) in f.insts().iter().enumerate().rev() {
        if inst
            .results
            .iter()
            .any(|r| live.get(r.index()).copied().unwrap_or(false))
        {
            keep[i] = true;
            for &a in &inst.args {
                mark(a, &mut live)?;
            }
        }
    }
    let removed = keep.iter().filter(|k| !**k).count();
    if removed == 0 {
        return Ok(PassStats {
            changed: false,
            counters: vec![("removed", 0)],
        });
    }

    let mut r = Rebuild::new(f, "dce");
    for (inst, _) in f.insts().iter().zip(&keep).filter(|(_, k)| **k) {
        let args = r.args(inst)?;
        r.emit(inst, inst.op.clone(), args);
    }
    let g = r.finish()?;
    *f = g;
    Ok(PassStats {
        changed: true,
        counters: vec![("removed", removed as u64)],
    })
}
