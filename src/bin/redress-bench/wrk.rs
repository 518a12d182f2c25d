//! Running `wrk` and reading its report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What one wrk run measured.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub requests: u64,
    pub req_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Responses outside 2xx and 3xx.
    pub non_2xx: u64,
    /// Connect, read and write errors and timeouts.
    pub socket_errors: u64,
}

impl Run {
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

pub struct Load<'a> {
    pub url: String,
    pub connections: u32,
    pub duration: Duration,
    pub headers: Vec<String>,
    pub script: Option<&'a Path>,
    /// Requests slower than this count as timeouts (socket errors).
    pub timeout: Duration,
}

pub fn run(load: &Load) -> Result<Run, String> {
    let threads = load.connections.clamp(1, 2);
    let mut cmd = Command::new("wrk");
    cmd.arg("-t")
        .arg(threads.to_string())
        .arg("-c")
        .arg(load.connections.to_string())
        .arg("-d")
        .arg(format!("{}s", load.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg(format!("{}s", load.timeout.as_secs().max(1)))
        .arg("--latency");
    for h in &load.headers {
        cmd.arg("-H").arg(h);
    }
    if let Some(script) = load.script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(&load.url);
    let out = cmd.output().map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {}\n{text}", String::from_utf8_lossy(&out.stderr)));
    }
    parse(&text).ok_or_else(|| format!("cannot read wrk's report:\n{text}"))
}

/// Reads wrk's plain-text report (with `--latency`).
pub fn parse(text: &str) -> Option<Run> {
    let mut run = Run::default();
    let mut saw_rate = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => run.p50 = duration(v)?,
            ["99%", v] => run.p99 = duration(v)?,
            [n, "requests", "in", ..] => run.requests = n.parse().ok()?,
            ["Requests/sec:", v] => {
                run.req_per_sec = v.parse().ok()?;
                saw_rate = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => run.non_2xx = n.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                run.socket_errors =
                    rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum();
            }
            _ => {}
        }
    }
    saw_rate.then_some(run)
}

fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// A wrk script that sends every request as a POST of `body` (JSON) with `headers`.
pub fn post_script(body: &str, headers: &[(&str, &str)]) -> String {
    let mut s = String::from("wrk.method = \"POST\"\n");
    s.push_str(&format!("wrk.body = [==[{body}]==]\n"));
    s.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    for (name, value) in headers {
        s.push_str(&format!("wrk.headers[\"{name}\"] = [==[{value}]==]\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_report() {
        let text = "Running 2s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     2.10ms    1.00ms  30.00ms   90.00%\n    Req/Sec    15.00k     1.00k   17.00k    70.00%\n  Latency Distribution\n     50%    1.90ms\n     75%    2.50ms\n     90%    3.10ms\n     99%   12.50ms\n  60000 requests in 2.00s, 100.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 7\nRequests/sec:  30000.50\nTransfer/sec:     50.00MB\n";
        let run = parse(text).unwrap();
        assert_eq!(run.requests, 60000);
        assert_eq!(run.p99, Duration::from_micros(12500));
        assert_eq!(run.p50, Duration::from_micros(1900));
        assert_eq!(run.non_2xx, 7);
        assert_eq!(run.socket_errors, 5);
        assert!((run.req_per_sec - 30000.5).abs() < 1e-6);
    }
}
