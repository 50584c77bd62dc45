//! The machine around a load test: server processes that never outlive the test, free
//! ports, and CPU time from `/proc` (of one process, and of the whole machine).
//!
//! Shared, as source, by raft-kv's load bench and by `compare/server` (see
//! `generator.rs`); it needs only the standard library.

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long servers may take to start or to elect a leader.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// How many lines of a server's log are printed when a test fails.
const LOG_TAIL_LINES: usize = 40;

/// One server process, killed when this is dropped; its standard error goes to a log
/// file, whose end is printed if the test panics.
pub(crate) struct ServerProcess {
    /// How reports and errors name it (`raft-kv 2`, `etcd 3`).
    pub(crate) name: String,
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `command` with its standard output discarded and its standard error
    /// written to `log`. Standard input is as `command` sets it (null by default).
    pub(crate) fn spawn(name: String, command: &mut Command, log: PathBuf) -> ServerProcess {
        let log_file = File::create(&log)
            .unwrap_or_else(|error| panic!("{name}: cannot create {}: {error}", log.display()));
        let child = command
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("{name} does not start: {error}"));
        ServerProcess { name, child, log }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited, and how.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// User plus system CPU seconds the process has used so far.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid().to_string())
    }

    /// The last lines of its log.
    pub(crate) fn log_tail(&self) -> String {
        let mut log = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut log);
        }
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} (end of its log) ---\n{}",
                self.name,
                self.log_tail()
            );
        }
    }
}

/// Retries `attempt` every 50 ms for at most [`PATIENCE`]; panics (which kills the
/// servers and prints the end of their logs) if one of `servers` exits or time runs
/// out.
pub(crate) fn wait_until<T>(
    what: &str,
    servers: &mut [ServerProcess],
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        for server in servers.iter_mut() {
            if let Some(status) = server.exited() {
                panic!("{what}: {} exited with {status}", server.name);
            }
        }
        match attempt() {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {PATIENCE:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Free ports on 127.0.0.1, held by the listeners returned until they are dropped: drop
/// them just before the servers bind the ports.
///
/// Drawn below the kernel's ephemeral range when it can be read: the kernel hands ports
/// of that range to every outgoing connection (the servers' peer connections included),
/// so a port taken from it could be reused by one before its server binds it.
pub(crate) fn reserve_ports(count: usize) -> Vec<TcpListener> {
    const LOWEST: u32 = 10_000;
    let mut listeners = Vec::new();
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|low| *low > LOWEST + 1000);
    if let Some(ephemeral_low) = ephemeral_low {
        let mut attempts = 0;
        while listeners.len() < count && attempts < 1000 {
            attempts += 1;
            let port = LOWEST + (random() % u64::from(ephemeral_low - LOWEST)) as u32;
            let Ok(port) = u16::try_from(port) else {
                break;
            };
            let taken = listeners.iter().any(|listener| port_of(listener) == port);
            if !taken && let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
                listeners.push(listener);
            }
        }
    }
    while listeners.len() < count {
        listeners.push(TcpListener::bind("127.0.0.1:0").expect("a free port"));
    }
    listeners
}

/// The port a listener is bound to.
pub(crate) fn port_of(listener: &TcpListener) -> u16 {
    listener.local_addr().expect("bound").port()
}

/// A random number from the standard library's per-process hash keys and the clock.
pub(crate) fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish()
}

/// Sleeps until `deadline`, if it is still ahead.
pub(crate) fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// Busy and total clock ticks of all processors since boot, from the first line of
/// `/proc/stat` (user nice system idle iowait irq softirq steal ...): idle and iowait
/// count as not busy. It shows whether the processors were saturated, other jobs on the
/// machine included; (0, 0) where unreadable.
pub(crate) fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|field| field.parse().ok())
        .collect();
    if ticks.len() < 5 {
        return (0, 0);
    }
    let total: u64 = ticks.iter().sum();
    (total - ticks[3] - ticks[4], total)
}

/// The share of processor time that was busy between two [`machine_ticks`] readings.
pub(crate) fn machine_busy(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        0.0
    } else {
        after.0.saturating_sub(before.0) as f64 / total as f64
    }
}

/// User plus system CPU time of a process (a pid, or `self`), from
/// `/proc/<process>/stat`; 0 where that is not readable (not Linux).
pub(crate) fn cpu_seconds(process: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{process}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; the fields after its closing
    // parenthesis start at field 3 (state), so utime (14) and stime (15) are the 12th
    // and 13th of them.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / clock_ticks_per_second()
}

/// `getconf CLK_TCK` (the unit of `/proc/<pid>/stat` times), read once; 100 by default,
/// which is what Linux reports on every common architecture.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        command_output("getconf", &["CLK_TCK"])
            .and_then(|text| text.trim().parse().ok())
            .filter(|ticks: &f64| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// The standard output of a command that succeeded.
pub(crate) fn command_output(program: &str, arguments: &[&str]) -> Option<String> {
    let output = Command::new(program).args(arguments).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The number of processors this process may use.
pub(crate) fn processors() -> usize {
    std::thread::available_parallelism().map_or(0, |count| count.get())
}

/// The CPU model as `/proc/cpuinfo` names it.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|cpuinfo| {
            cpuinfo
                .lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|load| {
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The value of an unlabelled sample `name` in a Prometheus text exposition.
pub(crate) fn prometheus_value(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (line_name, value) = line.split_once(' ')?;
        (line_name == name).then(|| value.trim().parse().ok())?
    })
}
