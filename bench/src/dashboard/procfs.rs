//! The server process's memory and CPU time, read from `/proc` (Linux):
//! the figures the "500 clients under 200 MB" goal is checked against.

use anyhow::Context;

/// Resident memory of a process, in KiB as the kernel reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most it has ever been resident (the high-water mark).
    pub hwm_kib: u64,
    /// `Threads`.
    pub threads: u64,
}

impl Memory {
    /// Reads `/proc/<pid>/status`.
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok(Self {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
            threads: field("Threads:")?,
        })
    }
}

/// MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name may hold spaces; the fields after it start with the
    // state (field 3). utime and stime are fields 14 and 15, in clock ticks.
    let rest = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .with_context(|| format!("malformed {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("malformed {path}"))
    };
    // USER_HZ is 100 on every Linux this runs on.
    Ok((tick(11)? + tick(12)?) / 100.0)
}

/// The kernel's count of connections dropped because a listen queue was
/// full (`TcpExt: ListenOverflows` in `/proc/net/netstat`). System-wide,
/// so other programs' drops count too; a rise while only the benchmark
/// connects means the server's accept backlog was too short for the burst.
pub fn listen_overflows() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").context("reading /proc/net/netstat")?;
    // Pairs of lines: "TcpExt: Name1 Name2 …" then "TcpExt: 1 2 …".
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = lines
        .next()
        .context("no TcpExt names in /proc/net/netstat")?;
    let values = lines
        .next()
        .context("no TcpExt values in /proc/net/netstat")?;
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .context("no ListenOverflows in /proc/net/netstat")
}
