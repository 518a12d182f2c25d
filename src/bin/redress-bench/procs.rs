//! Child processes (the real `redress` server, the hello-world server), the SMTP black hole
//! that keeps mail queued, and the RSS sampler.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// The `redress` binary built beside this one.
pub fn redress_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let path = me.with_file_name(format!("redress{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        return Err(format!(
            "{} is missing: build it with `cargo build --release --bins` (cargo run --release --bin redress-bench builds it too)",
            path.display()
        ));
    }
    Ok(path)
}

/// A child process serving HTTP on `port`, killed when dropped.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    log: Option<PathBuf>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET path` answers (any status), or fails if the process died.
    pub fn wait_ready(&mut self, path: &str, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited at start-up ({status}){}", self.name, self.log_tail()));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && super::http::get(self.port, path, &[]).is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!("{} did not answer within {limit:?}{}", self.name, self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails if the process has died.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("{} died ({status}){}", self.name, self.log_tail())),
            _ => Ok(()),
        }
    }

    pub fn log_tail(&self) -> String {
        let Some(path) = &self.log else { return String::new() };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("\n--- last lines of {} ---\n{tail}", path.display())
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the benchmark configures the real server.
pub struct RedressEnv<'a> {
    pub database_url: &'a str,
    pub smtp_port: u16,
    pub work_dir: &'a Path,
}

/// Starts `redress serve` on a free port. The server's own deadline sweep and outbox poll are
/// set to a day: neither config knob can switch them off, and the sweeper still runs once at
/// start-up (tokio's interval ticks at once). Mail goes to an SMTP port that accepts
/// connections and never answers, so it stays queued (see `Blackhole`).
pub fn start_redress(env: &RedressEnv, tag: &str) -> Result<Server, String> {
    let port = free_port()?;
    let log = env.work_dir.join(format!("redress-{tag}.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let child = Command::new(redress_binary()?)
        .arg("serve")
        .env("DATABASE_URL", env.database_url)
        .env("REDRESS_BIND", format!("127.0.0.1:{port}"))
        .env("REDRESS_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}", env.smtp_port))
        .env("REDRESS_MAIL_DIR", env.work_dir.join("mail"))
        .env("REDRESS_SWEEP_SECS", "86400")
        .env("REDRESS_OUTBOX_POLL_SECS", "86400")
        .env("REDRESS_RETRY_BASE_SECS", "86400")
        .env_remove("REDRESS_EMAIL_TEMPLATES")
        .env_remove("REDRESS_TRUST_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start redress: {e}"))?;
    let mut server = Server { name: "redress", port, child, log: Some(log) };
    server.wait_ready("/", Duration::from_secs(120))?;
    Ok(server)
}

/// Starts this binary's hello-world mode on a free port.
pub fn start_hello(
    body_bytes: usize,
    headers: &[(String, String)],
    work_dir: &Path,
) -> Result<Server, String> {
    let port = free_port()?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let headers_file = work_dir.join("hello-headers.json");
    let json = serde_json::to_string(headers).map_err(|e| e.to_string())?;
    std::fs::write(&headers_file, json).map_err(|e| e.to_string())?;
    let child = Command::new(me)
        .arg("--hello-port")
        .arg(port.to_string())
        .arg("--hello-body-bytes")
        .arg(body_bytes.to_string())
        .arg("--hello-headers")
        .arg(&headers_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the hello-world server: {e}"))?;
    let mut server = Server { name: "hello world", port, child, log: None };
    server.wait_ready("/", Duration::from_secs(30))?;
    Ok(server)
}

/// An SMTP server that accepts connections and never says a word: the server's outbox worker
/// waits for a greeting until its 30-second timeout, one message at a time, so mail stays
/// queued and delivery costs the measurements (almost) nothing. A refused connection instead
/// would make every removal cost two more writes (claim, record the failure).
pub struct Blackhole {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Blackhole {
    pub fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
                // Connections the client has given up on are closed after a while.
                if held.len() > 64 {
                    held.drain(..32);
                }
            }
        });
        Ok(Self { port, stop })
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Resident memory of a process, from /proc (Linux only).
pub fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// Samples a process's VmRSS every 100 ms and keeps the largest.
pub struct RssSampler {
    max_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let max_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (max_kib.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid, "VmRSS:") {
                    m.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { max_kib, stop, handle: Some(handle) }
    }

    pub fn max_kib(&self) -> u64 {
        self.max_kib.load(Ordering::Relaxed)
    }

    /// The largest VmRSS seen; stops sampling.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.max_kib()
    }
}
