//! Axis arguments of the NumPy-style methods: signed axes (negative counts from the end)
//! normalised against a rank, with errors that name the op.

use crate::error::{Result, RuntimeError};

/// `axis` as an index into a shape of rank `rank`: `-1` is the last axis. An axis outside
/// `-rank..rank` is an error naming `op`.
pub fn normalize_axis(op: &str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(RuntimeError::invalid_op(
            op,
            format!("axis {axis} is out of range for an operand of rank {rank} (expected -{rank}..{rank})"),
        ));
    }
    Ok(a as usize)
}

/// Several signed axes, normalised, sorted and checked distinct.
pub fn normalize_axes(op: &str, axes: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = normalize_axis(op, a, rank)?;
        if out.contains(&n) {
            return Err(RuntimeError::invalid_op(
                op,
                format!("axis {a} is listed twice (as axis {n})"),
            ));
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_axes_count_from_the_end() {
        assert_eq!(normalize_axis("f", -1, 3).unwrap(), 2);
        assert_eq!(normalize_axis("f", 0, 3).unwrap(), 0);
        assert!(normalize_axis("f", 3, 3)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(normalize_axis("f", -4, 3).is_err());
        assert!(normalize_axis("f", 0, 0).is_err());
        assert_eq!(normalize_axes("f", &[-1, 0], 3).unwrap(), vec![0, 2]);
        assert!(normalize_axes("f", &[-1, 2], 3)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}
