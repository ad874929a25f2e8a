//! What the machine can still give this process, and the check that a run's memory plan
//! fits in it: a run that cannot fit fails with an error before it starts, instead of
//! being killed by the OS when it touches pages it was promised (Linux overcommits, so a
//! large allocation can succeed and the process still die). Imports no module of this
//! crate.

use tenferro_runtime::{Result, RuntimeError};

/// Runs needing fewer new bytes than this start without asking the OS.
const CHECK_FROM_BYTES: usize = 1 << 30;

/// The value of `key` (in kB) in a `/proc/meminfo` text, in bytes.
fn meminfo_bytes(text: &str, key: &str) -> Option<u128> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u128 = line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Bytes left under a cgroup limit (`limit` and `usage` file contents; `max` = none).
fn cgroup_left(limit: &str, usage: &str) -> Option<u128> {
    let limit: u128 = limit.trim().parse().ok()?;
    let usage: u128 = usage.trim().parse().ok()?;
    Some(limit.saturating_sub(usage))
}

/// Bytes this process can still obtain: `MemAvailable + SwapFree`, capped by the
/// cgroup's limit (v2, else v1) less its usage. `None` when the OS does not say (not
/// Linux, or the files are unreadable).
pub(crate) fn available_bytes() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let mut avail =
        meminfo_bytes(&text, "MemAvailable")? + meminfo_bytes(&text, "SwapFree").unwrap_or(0);
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let cg = match (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        (Some(l), Some(u)) => cgroup_left(&l, &u),
        _ => match (
            read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
            read("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        ) {
            (Some(l), Some(u)) => cgroup_left(&l, &u),
            _ => None,
        },
    };
    if let Some(c) = cg {
        avail = avail.min(c);
    }
    Some(avail)
}

/// Err when program `name` needs `need` new bytes (its memory plan's peak less the
/// buffers it already holds) and the machine has less than that `available` (asked only
/// from [`CHECK_FROM_BYTES`] on; [`available_bytes`] in the executor). `largest`
/// describes the program's largest value (its op and type), for the message.
pub(crate) fn check_fits(
    name: &str,
    need: usize,
    available: impl FnOnce() -> Option<u128>,
    largest: impl FnOnce() -> String,
) -> Result<()> {
    match short_of(need, available) {
        Some(a) => Err(RuntimeError::Kernel {
            op: format!("program `{name}`"),
            message: format!(
                "its memory plan needs {need} bytes more at its peak (intermediates and \
                 results) than the {a} bytes the machine has available (MemAvailable + \
                 SwapFree, within any cgroup limit); its largest value: {}. Use smaller \
                 inputs, or for einsum a contraction order with smaller intermediates \
                 (EinsumOptions::memory_limit)",
                largest()
            ),
        }),
        None => Ok(()),
    }
}

/// The bytes available, when `need` (asked only from [`CHECK_FROM_BYTES`] on) exceeds
/// them.
fn short_of(need: usize, available: impl FnOnce() -> Option<u128>) -> Option<u128> {
    if need < CHECK_FROM_BYTES {
        return None;
    }
    available().filter(|&a| need as u128 > a)
}

/// Err when a kernel plan of `op` needs `need` bytes for its own tables (`what`) and the
/// machine has less than that available: planning happens before the executor's check
/// of the program's peak, and a table sized by a huge axis must not abort the process.
pub(crate) fn check_plan_fits(op: &str, what: &str, need: usize) -> Result<()> {
    match short_of(need, available_bytes) {
        Some(a) => Err(RuntimeError::Kernel {
            op: op.to_string(),
            message: format!(
                "planning it needs {need} bytes for {what}, more than the {a} bytes the \
                 machine has available (MemAvailable + SwapFree, within any cgroup limit)"
            ),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_fields_parse_in_bytes() {
        let t = "MemTotal:       24683656 kB\nMemAvailable:   1000 kB\nSwapFree:  0 kB\n";
        assert_eq!(meminfo_bytes(t, "MemAvailable"), Some(1_024_000));
        assert_eq!(meminfo_bytes(t, "SwapFree"), Some(0));
        assert_eq!(meminfo_bytes(t, "Missing"), None);
    }

    #[test]
    fn cgroup_limit_left() {
        assert_eq!(cgroup_left("1000\n", "400\n"), Some(600));
        assert_eq!(cgroup_left("max\n", "400\n"), None);
    }

    #[test]
    fn small_needs_pass_and_large_ones_need_the_memory() {
        let big = || "`zeros` f64[1073741824] (8589934592 bytes)".to_string();
        let unasked = || -> Option<u128> { unreachable!("a small need asks the OS") };
        assert!(check_fits("f", 1 << 20, unasked, big).is_ok());
        assert!(check_fits("f", 2 << 30, || Some(4 << 30), big).is_ok());
        assert!(check_fits("f", 2 << 30, || None, big).is_ok());
        let e = check_fits("f", 8 << 30, || Some(4 << 30), big)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("program `f`") && e.contains("8589934592 bytes more"),
            "{e}"
        );
        assert!(
            e.contains("`zeros` f64[1073741824] (8589934592 bytes)"),
            "{e}"
        );
    }

    #[test]
    fn this_machine_reports_memory() {
        if cfg!(target_os = "linux") {
            assert!(available_bytes().is_some_and(|a| a > 0));
        }
    }
}
