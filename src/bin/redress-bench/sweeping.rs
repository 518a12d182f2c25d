//! The deadline sweep, timed in a process that only sweeps.

use super::*;

pub(super) struct Swept {
    /// How long it took and how many cases it marked overdue; none if abandoned.
    pub(super) outcome: Option<(Duration, usize)>,
    pub(super) open: i64,
    pub(super) due: i64,
    pub(super) rss_kib: u64,
}

/// Seeds a database of its own, then runs one sweep in a child process, killed after `limit`.
pub(super) fn sweep(
    backend: &Backend,
    name: &str,
    open: i64,
    due: i64,
    limit: Duration,
) -> Result<Swept, String> {
    say(&format!("sweep: {} due among {} open", thousands(due as u64), thousands(open as u64)));
    let url = backend.fresh(name)?;
    let now = Utc::now();
    let (pool, setup) = seed::prepare(&url, now)?;
    // Open cases besides the due ones: the templates' fresh removals and appeal count among them.
    let sizes = Sizes { history: 1, notice: 2, future: (open - due - 2).max(1), past: due };
    seed::grow(&pool, &setup, now, sizes)?;
    let at = Utc::now();
    let (_, open, due) = {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        let counts = seed::counts(&mut conn, at)?;
        seed::settle(&mut conn)?;
        counts
    };
    drop(pool);
    // The sweep runs in a process of its own, as `redress sweep` would: its memory is then the
    // sweep's alone, not the seeding's.
    let mut child = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["--sweep-only", &url, "--sweep-at", &at.to_rfc3339()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the sweep: {e}"))?;
    let started = Instant::now();
    let outcome = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut out = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                std::io::Read::read_to_string(&mut stdout, &mut out).map_err(|e| e.to_string())?;
            }
            if !status.success() {
                return Err(format!("the sweep failed: {status}"));
            }
            let fields: Vec<u64> = out.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            let [ms, marked, hwm] = fields[..] else { return Err(format!("the sweep printed {out:?}")) };
            break Some((Duration::from_millis(ms), marked as usize, hwm));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let rss_kib = outcome.map(|(_, _, hwm)| hwm).unwrap_or(0);
    Ok(Swept { outcome: outcome.map(|(took, marked, _)| (took, marked)), open, due, rss_kib })
}

/// One sweep in this process, timed; with its peak memory.
pub(super) fn sweep_alone(url: &str, at: &str) -> Result<String, String> {
    let at = chrono::DateTime::parse_from_rfc3339(at).map_err(|e| e.to_string())?.with_timezone(&Utc);
    let pool = redress::db::connect(url, 2).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let svc = seed::services()?;
    let start = Instant::now();
    let swept = redress::services::sweep(&mut conn, &svc, at).map_err(|e| format!("sweep: {e}"))?;
    let took = start.elapsed();
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(format!("{} {} {hwm}", took.as_millis(), swept.marked_overdue.len()))
}
