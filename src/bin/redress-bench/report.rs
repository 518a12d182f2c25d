//! The one table the benchmark prints.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Measured, with no target (or a target that applies to another backend).
    Info,
}

pub struct Row {
    pub what: String,
    pub redress: String,
    pub ceiling: String,
    pub ratio: String,
    pub target: String,
    pub verdict: Verdict,
}

#[derive(Default)]
pub struct Report {
    pub heading: Vec<String>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn info(&mut self, what: impl Into<String>, redress: impl Into<String>) {
        self.rows.push(Row {
            what: what.into(),
            redress: redress.into(),
            ceiling: String::new(),
            ratio: String::new(),
            target: String::new(),
            verdict: Verdict::Info,
        });
    }

    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.verdict == Verdict::Fail).count()
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for line in &self.heading {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out.push_str("| what | Redress | ceiling | ratio | target | result |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- |\n");
        for r in &self.rows {
            let verdict = match r.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "**FAIL**",
                Verdict::Info => "",
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.what, r.redress, r.ceiling, r.ratio, r.target, verdict
            ));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

pub fn rate(x: f64) -> String {
    thousands(x.round() as u64)
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}
