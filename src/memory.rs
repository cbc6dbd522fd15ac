//! Refusing, before any work, requests that cannot fit in memory: one clear error rather than
//! an abort or the system's out-of-memory killer.

use crate::error::{Error, Result};

/// Memory the system says is available to a new allocation (Linux's MemAvailable), or None
/// where it cannot tell.
pub(crate) fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

const GIB: f64 = (1u64 << 30) as f64;

/// Refuses `what` when `count` items of `bytes_each` bytes (a product that may overflow)
/// exceed the memory available.
pub(crate) fn check(what: &str, count: u128, bytes_each: u128) -> Result<()> {
    let needed = count.saturating_mul(bytes_each);
    let available = available_bytes().map_or(u128::MAX, u128::from);
    if needed > available {
        return Err(Error::TooLarge {
            what: what.to_string(),
            needed_gib: needed as f64 / GIB,
            available_gib: available as f64 / GIB,
        });
    }
    Ok(())
}
