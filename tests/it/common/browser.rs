//! A real browser for the integration tests: Debian's headless Chromium driven through
//! chromedriver over the W3C WebDriver protocol (plain HTTP and JSON with ureq), and two
//! independent accessibility engines, axe-core and HTML_CodeSniffer, for WCAG 2.1 AA checks of
//! the page it shows. One engine misses what the other catches, so `assert_accessible` runs both,
//! and a few structural checks of its own (heading levels, form names).
//!
//! ```ignore
//! let Some(browser) = Browser::start() else { return };   // skipped when nothing to run it with
//! browser.goto(&app.url("/o/penrith/report"));
//! browser.assert_accessible("the empty complaint form");
//! browser.fill("#reason", "It insults a member.");
//! browser.submit("form button[type=submit]");
//! assert_eq!(browser.text("h1"), "Complaint received");
//! ```
//!
//! What it needs: `chromium`, `chromedriver` (Debian's `chromium` and `chromium-driver`),
//! `tests/browser/node_modules/axe-core/axe.min.js` and
//! `tests/browser/node_modules/html_codesniffer/build/HTMLCS.js` (`npm ci --prefix tests/browser`).
//! When one is missing, `Browser::start` prints `SKIPPED browser test: …` and returns `None`,
//! unless `CI=true`, where it panics: CI must really run the browser tests. `REDRESS_CHROMIUM`,
//! `REDRESS_CHROMEDRIVER`, `REDRESS_AXE_JS` and `REDRESS_HTMLCS_JS` override where each is looked
//! for.

#![allow(dead_code)]

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The W3C WebDriver key under which an element reference travels (the "web element
/// identifier" of the WebDriver specification).
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The axe-core rule tags that make up WCAG 2.1 level AA.
pub const WCAG21AA_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

const CHROMIUM_ARGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1280,1024",
];

/// The HTML_CodeSniffer standard run on every page: WCAG 2.x level AA, as axe's tags above.
pub const HTMLCS_STANDARD: &str = "WCAG2AA";

/// HTML_CodeSniffer errors not counted as failures: (code, words the message contains, why).
/// One list, so that a false positive silences that one message and never the engine.
pub const HTMLCS_IGNORED: &[(&str, &str, &str)] = &[(
    "WCAG2AA.Principle1.Guideline1_3.1_3_5.H98",
    "Invalid autocomplete value: username.",
    // HTML_CodeSniffer follows HTML 5.2's table, where `username` belongs to text inputs only.
    // The HTML standard since added an e-mail input to its control group, so that a sign-in
    // field can be both `type="email"` (the right keyboard) and `autocomplete="username"` (what
    // password managers look for); axe-core agrees (its autocomplete-appropriate rule).
    "username on an email input is valid HTML",
)];

/// How long `submit` and `wait_until` wait for the page by default.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// An error answer from chromedriver: `{"value": {"error", "message"}}`, or a transport failure.
#[derive(Debug, Clone)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first line only: chromedriver appends a long native stack trace.
        let first = self.message.lines().next().unwrap_or("");
        write!(f, "{}: {}", self.error, first)
    }
}

/// One axe-core rule that failed on the page, with every element it failed on.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The rule, e.g. `color-contrast`, `label`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    pub help: String,
    pub help_url: String,
    pub tags: Vec<String>,
    pub nodes: Vec<ViolationNode>,
}

#[derive(Debug, Clone)]
pub struct ViolationNode {
    /// CSS selectors of the element (more than one when it is inside a frame or shadow root).
    pub target: Vec<String>,
    pub html: String,
    pub failure_summary: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[{}] {} ({}) {}",
            self.impact.as_deref().unwrap_or("?"),
            self.id,
            self.help,
            self.help_url
        )?;
        for node in &self.nodes {
            writeln!(f, "    at {}", node.target.join(" >>> "))?;
            writeln!(f, "       {}", node.html)?;
            for line in node.failure_summary.lines() {
                writeln!(f, "       | {line}")?;
            }
        }
        Ok(())
    }
}

/// One error HTML_CodeSniffer reported on the page (its warnings and notices are advice that
/// needs a person's judgement, so they are not collected).
#[derive(Debug, Clone)]
pub struct HtmlcsError {
    /// The sniff's code, e.g. `WCAG2AA.Principle1.Guideline1_3.1_3_1.F68`.
    pub code: String,
    pub message: String,
    /// A CSS path to the element, for finding it.
    pub target: String,
    /// The element's HTML, cut short.
    pub html: String,
}

impl fmt::Display for HtmlcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[error] {}", self.code)?;
        writeln!(f, "    at {}", self.target)?;
        writeln!(f, "       {}", self.html)?;
        for line in self.message.lines() {
            writeln!(f, "       | {line}")?;
        }
        Ok(())
    }
}

/// A running chromedriver with one Chromium session. Dropping it ends both.
pub struct Browser {
    http: ureq::Agent,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: Child,
    /// The Chromium profile and chromedriver's log; removed on drop.
    dir: tempfile::TempDir,
    axe_js: PathBuf,
    htmlcs_js: PathBuf,
}

/// An element of the current page, as WebDriver refers to it.
pub struct Element<'b> {
    browser: &'b Browser,
    pub id: String,
    /// The selector it was found with, for messages.
    pub css: String,
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// A program named by `env_var`, or else the first of `names` on PATH, or else `fallback`.
fn locate(env_var: &str, names: &[&str], fallback: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{} (from {env_var}) does not exist", p.display()))
        };
    }
    names
        .iter()
        .find_map(|n| find_in_path(n))
        .or_else(|| Some(PathBuf::from(fallback)).filter(|p| p.is_file()))
        .ok_or_else(|| format!("{} not found on PATH (or {fallback})", names.join(" or ")))
}

/// Missing tools: a skip outside CI, a failure in CI.
fn unavailable(missing: &[String]) -> Option<Browser> {
    let what = missing.join("; ");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true, so this browser test may not be skipped: {what} \
             (.ci/run installs chromium, chromium-driver, axe-core and html_codesniffer)"
        );
    }
    // In one write straight to the process's stderr, past the test harness's capture, so that
    // a skip shows without --nocapture.
    let line = format!("SKIPPED browser test: {what}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends one WebDriver command; `Ok(value)` or the driver's error.
fn send(http: &ureq::Agent, method: &str, url: &str, body: Option<&Value>) -> Result<Value, WebDriverError> {
    let transport = |e: ureq::Error| WebDriverError { error: "transport".into(), message: e.to_string() };
    let mut response = match method {
        "GET" => http.get(url).call(),
        "DELETE" => http.delete(url).call(),
        _ => http.post(url).send_json(body.cloned().unwrap_or_else(|| json!({}))),
    }
    .map_err(transport)?;
    let ok = response.status().is_success();
    let text = response.body_mut().with_config().limit(256 << 20).read_to_string().map_err(transport)?;
    let parsed: Value = serde_json::from_str(&text).map_err(|e| WebDriverError {
        error: "bad response".into(),
        message: format!("{e}: {}", text.chars().take(500).collect::<String>()),
    })?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if ok {
        Ok(value)
    } else {
        Err(WebDriverError {
            error: value["error"].as_str().unwrap_or("unknown error").to_string(),
            message: value["message"].as_str().unwrap_or("").to_string(),
        })
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or returns `None` (after printing
    /// `SKIPPED browser test: …`) when Chromium, chromedriver, axe-core or HTML_CodeSniffer is
    /// not installed.
    /// With `CI=true` a missing piece is a panic instead. A failure to start what is installed
    /// is always a panic.
    pub fn start() -> Option<Browser> {
        let chromium = locate("REDRESS_CHROMIUM", &["chromium", "chromium-browser"], "/usr/bin/chromium");
        let driver = locate("REDRESS_CHROMEDRIVER", &["chromedriver"], "/usr/bin/chromedriver");
        let axe_js = match std::env::var_os("REDRESS_AXE_JS") {
            Some(p) => PathBuf::from(p),
            None => {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/axe-core/axe.min.js")
            }
        };
        let htmlcs_js = match std::env::var_os("REDRESS_HTMLCS_JS") {
            Some(p) => PathBuf::from(p),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser/node_modules/html_codesniffer/build/HTMLCS.js"),
        };
        let mut missing = Vec::new();
        if let Err(e) = &chromium {
            missing.push(format!("Chromium: {e} (Debian package chromium)"));
        }
        if let Err(e) = &driver {
            missing.push(format!("chromedriver: {e} (Debian package chromium-driver)"));
        }
        if !axe_js.is_file() {
            missing
                .push(format!("axe-core: {} is missing (npm ci --prefix tests/browser)", axe_js.display()));
        }
        if !htmlcs_js.is_file() {
            missing.push(format!(
                "HTML_CodeSniffer: {} is missing (npm ci --prefix tests/browser)",
                htmlcs_js.display()
            ));
        }
        let (Ok(chromium), Ok(driver)) = (chromium, driver) else { return unavailable(&missing) };
        if !missing.is_empty() {
            return unavailable(&missing);
        }
        Some(Self::launch(&chromium, &driver, axe_js, htmlcs_js))
    }

    fn launch(chromium: &Path, driver_bin: &Path, axe_js: PathBuf, htmlcs_js: PathBuf) -> Browser {
        let dir = tempfile::Builder::new().prefix("redress-browser-").tempdir().unwrap();
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).unwrap();
        // chromedriver's output, and Chromium's, which it passes on: shown when either fails.
        let log = dir.path().join("chromedriver.log");
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();

        // The free port can be taken between finding it and chromedriver binding it: try again.
        let mut attempt = 0;
        let (mut driver, base) = loop {
            attempt += 1;
            let port = free_port();
            let out = File::create(&log).unwrap();
            let mut child = Command::new(driver_bin)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {}: {e}", driver_bin.display()));
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            let ready = loop {
                if let Ok(Some(status)) = child.try_wait() {
                    break Err(format!("chromedriver exited with {status}"));
                }
                if let Ok(v) = send(&http, "GET", &format!("{base}/status"), None) {
                    if v["ready"] == true {
                        break Ok(());
                    }
                }
                if Instant::now() > deadline {
                    break Err("chromedriver did not become ready within 20 s".to_string());
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            match ready {
                Ok(()) => break (child, base),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if attempt >= 3 {
                        panic!("{e}; its log ends:\n{}", tail(&log, 30));
                    }
                }
            }
        };

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "script": 60_000, "pageLoad": 30_000, "implicit": 0 },
                    "goog:chromeOptions": {
                        "binary": chromium.display().to_string(),
                        "args": args,
                    },
                }
            }
        });
        let session = match send(&http, "POST", &format!("{base}/session"), Some(&capabilities)) {
            Ok(v) => v["sessionId"].as_str().expect("a sessionId").to_string(),
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!(
                    "chromedriver could not start {}: {}\nchromedriver's log ends:\n{}",
                    chromium.display(),
                    e.message,
                    tail(&log, 30)
                );
            }
        };
        Browser { http, session: format!("{base}/session/{session}"), driver, dir, axe_js, htmlcs_js }
    }

    /// One WebDriver command on this session, e.g. `("GET", "/title", None)`.
    pub fn try_command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        send(&self.http, method, &format!("{}{path}", self.session), body.as_ref())
    }

    /// A WebDriver command that must succeed.
    pub fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_command(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed on {}: {e}", self.try_url()))
    }

    fn try_url(&self) -> String {
        self.try_command("GET", "/url", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Loads `url` and waits for it to finish loading.
    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// The document's title.
    pub fn title(&self) -> String {
        self.command("GET", "/title", None).as_str().unwrap_or_default().to_string()
    }

    /// The address of the current page.
    pub fn url(&self) -> String {
        self.command("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    /// The current DOM serialised as HTML.
    pub fn source(&self) -> String {
        self.command("GET", "/source", None).as_str().unwrap_or_default().to_string()
    }

    /// The first element matching `css`, or `None`.
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        match self.try_command("POST", "/element", Some(json!({ "using": "css selector", "value": css }))) {
            Ok(v) => Some(self.element(&v, css)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("finding {css:?} on {} failed: {e}", self.try_url()),
        }
    }

    /// The first element matching `css`; panics, naming the page, when there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css).unwrap_or_else(|| {
            let h1 = self.try_find("h1").map(|h| h.text()).unwrap_or_default();
            panic!("no element matches {css:?} on {} (title {:?}, h1 {:?})", self.url(), self.title(), h1)
        })
    }

    /// Every element matching `css`, in document order.
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self.command("POST", "/elements", Some(json!({ "using": "css selector", "value": css })));
        v.as_array().map(|a| a.iter().map(|e| self.element(e, css)).collect()).unwrap_or_default()
    }

    fn element(&self, reference: &Value, css: &str) -> Element<'_> {
        let id = reference[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("not an element: {reference}"));
        Element { browser: self, id: id.to_string(), css: css.to_string() }
    }

    /// Clears the field matching `css` and types `text` into it.
    pub fn fill(&self, css: &str, text: &str) {
        self.find(css).fill(text);
    }

    /// Clicks the element matching `css` (scrolling it into view, as a person would).
    pub fn click(&self, css: &str) {
        self.find(css).click();
    }

    /// Clicks the element matching `css` and waits until the next page has replaced this one
    /// and finished loading: for submit buttons and links.
    pub fn submit(&self, css: &str) {
        let old = self.find("html");
        self.find(css).click();
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let gone = matches!(
                self.try_command("GET", &format!("/element/{}/name", old.id), None),
                Err(e) if e.error == "stale element reference" || e.error == "no such element"
            );
            if gone && self.execute("return document.readyState", &[]) == "complete" {
                return;
            }
            if Instant::now() > deadline {
                // The usual cause: the browser's own validation refused the form.
                let invalid = self.execute(
                    "const f = document.querySelector(':invalid:not(form):not(fieldset)');
                     return f ? (f.id || f.name) + ': ' + f.validationMessage : null",
                    &[],
                );
                panic!(
                    "clicking {css:?} on {} did not load a new page within {PAGE_WAIT:?}{}",
                    self.url(),
                    if invalid.is_null() {
                        String::new()
                    } else {
                        format!(" (the browser refused an invalid field: {})", invalid.as_str().unwrap_or(""))
                    }
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Chooses the option whose value is `value` in the `<select>` matching `css`, firing
    /// `input` and `change` as a person's choice would. Panics when there is no such option.
    pub fn select(&self, css: &str, value: &str) {
        let select = self.find(css);
        let ok = self.execute(
            "const [s, v] = arguments;
             const o = Array.from(s.options || []).find(o => o.value === v);
             if (!o) return Array.from(s.options || []).map(o => o.value);
             s.value = v;
             s.dispatchEvent(new Event('input', { bubbles: true }));
             s.dispatchEvent(new Event('change', { bubbles: true }));
             return true;",
            &[select.reference(), json!(value)],
        );
        assert!(ok == true, "{css:?} has no option with value {value:?}; its options: {ok}");
    }

    /// Ticks the checkbox or chooses the radio button matching `css` (no change if it already is).
    pub fn check(&self, css: &str) {
        let e = self.find(css);
        if !e.selected() {
            e.click();
        }
        assert!(e.selected(), "{css:?} is still not checked after clicking it");
    }

    /// The visible text of the element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.find(css).text()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its
    /// result. Element arguments are `Element::reference()`.
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.command("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Runs `script` asynchronously: it must call `arguments[arguments.length - 1](result)`.
    pub fn execute_async(&self, script: &str, args: &[Value]) -> Value {
        self.command("POST", "/execute/async", Some(json!({ "script": script, "args": args })))
    }

    /// Polls `pred` until it holds, for up to 20 s; panics naming `what` otherwise.
    pub fn wait_until(&self, what: &str, pred: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + PAGE_WAIT;
        while !pred(self) {
            assert!(Instant::now() < deadline, "waited {PAGE_WAIT:?} for {what} on {}", self.url());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `id` of the focused element (`document.activeElement`); empty when it has none.
    pub fn active_element_id(&self) -> String {
        self.execute("const a = document.activeElement; return a ? a.id : ''", &[])
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Whether the focused element (`document.activeElement`) matches `css`: for elements
    /// without an id, such as an error summary that takes the focus when the page loads.
    pub fn focused_matches(&self, css: &str) -> bool {
        self.execute("const a = document.activeElement; return !!a && a.matches(arguments[0])", &[json!(css)])
            == true
    }

    /// The page as a PNG picture, written to `path`.
    pub fn screenshot_png(&self, path: impl AsRef<Path>) {
        let encoded = self.command("GET", "/screenshot", None);
        let png = base64_decode(encoded.as_str().expect("a base64 screenshot"))
            .unwrap_or_else(|e| panic!("the screenshot is not valid base64: {e}"));
        std::fs::write(path.as_ref(), png)
            .unwrap_or_else(|e| panic!("could not write {}: {e}", path.as_ref().display()));
    }

    /// Runs axe-core's WCAG 2.0/2.1 A and AA rules on the current page.
    pub fn axe(&self) -> Vec<Violation> {
        let loaded = self.execute("return typeof window.axe === 'object'", &[]);
        if loaded != true {
            let source = std::fs::read_to_string(&self.axe_js)
                .unwrap_or_else(|e| panic!("could not read {}: {e}", self.axe_js.display()));
            // axe.min.js is a UMD bundle: run in a function body it sets window.axe.
            let script = format!("{source}\n;return typeof window.axe === 'object';");
            let ok = self.execute(&script, &[]);
            assert!(ok == true, "injecting axe-core into {} did not define window.axe", self.url());
        }
        let result = self.execute_async(
            "const done = arguments[arguments.length - 1];
             const tags = arguments[0];
             window.axe
               .run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
               .then(r => done({ violations: r.violations.map(v => ({
                   id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl, tags: v.tags,
                   nodes: v.nodes.map(n => ({
                     target: n.target.map(t => Array.isArray(t) ? t.join(' ') : String(t)),
                     html: n.html,
                     failureSummary: n.failureSummary || '',
                   })),
                 })) }))
               .catch(e => done({ error: String((e && e.stack) || e) }));",
            &[json!(WCAG21AA_TAGS)],
        );
        if let Some(e) = result.get("error") {
            panic!("axe-core failed on {}: {}", self.url(), e.as_str().unwrap_or_default());
        }
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        result["violations"]
            .as_array()
            .expect("axe's violations")
            .iter()
            .map(|v| Violation {
                id: text(&v["id"]),
                impact: v["impact"].as_str().map(str::to_string),
                help: text(&v["help"]),
                help_url: text(&v["helpUrl"]),
                tags: strings(&v["tags"]),
                nodes: v["nodes"]
                    .as_array()
                    .map(|nodes| {
                        nodes
                            .iter()
                            .map(|n| ViolationNode {
                                target: strings(&n["target"]),
                                html: text(&n["html"]),
                                failure_summary: text(&n["failureSummary"]),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Runs HTML_CodeSniffer's WCAG2AA standard on the current page and returns its errors,
    /// less those in `HTMLCS_IGNORED`.
    pub fn htmlcs(&self) -> Vec<HtmlcsError> {
        let loaded = self.execute("return typeof window.HTMLCS === 'object'", &[]);
        if loaded != true {
            let source = std::fs::read_to_string(&self.htmlcs_js)
                .unwrap_or_else(|e| panic!("could not read {}: {e}", self.htmlcs_js.display()));
            // HTMLCS.js is a UMD bundle that copies its globals onto `this`: called with the
            // window as `this` it sets window.HTMLCS and the standards beside it.
            // Its 1.3.5 sniff asks for "1_3_5_H98.InvalidAutoComplete_…" messages, but its
            // English words are spelled "InvalidAutocomplete_…": without the copies below, an
            // autocomplete error stops the whole run with a TypeError instead of being reported.
            let script = format!(
                "(function () {{\n{source}\n}}).call(window);
                 const en = window.translation && window.translation.en;
                 for (const key of Object.keys(en || {{}})) {{
                   const spelled = key.replace('H98.InvalidAutocomplete_', 'H98.InvalidAutoComplete_');
                   if (!(spelled in en)) en[spelled] = en[key];
                 }}
                 return typeof window.HTMLCS === 'object';"
            );
            let ok = self.execute(&script, &[]);
            assert!(
                ok == true,
                "injecting HTML_CodeSniffer into {} did not define window.HTMLCS",
                self.url()
            );
        }
        let result = self.execute_async(
            "const done = arguments[arguments.length - 1];
             const [standard, ignored] = arguments;
             const path = el => {
               const parts = [];
               for (let e = el; e && e.nodeType === 1 && parts.length < 5; e = e.parentElement) {
                 let part = e.localName;
                 if (e.id) { parts.unshift(part + '#' + e.id); break; }
                 if (e.classList.length) part += '.' + Array.from(e.classList).join('.');
                 const same = e.parentElement
                   ? Array.from(e.parentElement.children).filter(c => c.localName === e.localName)
                   : [];
                 if (same.length > 1) part += ':nth-of-type(' + (same.indexOf(e) + 1) + ')';
                 parts.unshift(part);
               }
               return parts.join(' > ') || (el && el.nodeName) || '?';
             };
             const html = el => {
               const h = el && el.nodeType === 1 ? el.outerHTML
                 : el && el.documentElement ? '<html lang=\"' + el.documentElement.lang + '\"> (the document)'
                 : String(el && el.nodeName);
               return h.length > 300 ? h.slice(0, 300) + '…' : h;
             };
             try {
               window.HTMLCS.process(standard, document, () => {
                 try {
                   done({ errors: window.HTMLCS.getMessages()
                     .filter(m => m.type === window.HTMLCS.ERROR)
                     .filter(m => !ignored.some(([code, words]) => m.code === code && m.msg.includes(words)))
                     .map(m => ({ code: m.code, message: m.msg, target: path(m.element), html: html(m.element) })) });
                 } catch (e) { done({ error: String((e && e.stack) || e) }); }
               }, () => done({ error: 'the standard ' + standard + ' did not load' }), 'en');
             } catch (e) { done({ error: String((e && e.stack) || e) }); }",
            &[json!(HTMLCS_STANDARD), json!(HTMLCS_IGNORED.iter().map(|(code, words, _)| [*code, *words]).collect::<Vec<_>>())],
        );
        if let Some(e) = result.get("error") {
            panic!("HTML_CodeSniffer failed on {}: {}", self.url(), e.as_str().unwrap_or_default());
        }
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        result["errors"]
            .as_array()
            .expect("HTML_CodeSniffer's errors")
            .iter()
            .map(|m| HtmlcsError {
                code: text(&m["code"]),
                message: text(&m["message"]),
                target: text(&m["target"]),
                html: text(&m["html"]),
            })
            .collect()
    }

    /// What neither engine checks: headings that skip a level (an h3 straight after an h1, or
    /// a page whose first heading is not an h1), and two forms with the same accessible name,
    /// which a screen reader's list of forms cannot tell apart. The name is the aria-label, the
    /// text aria-labelledby points to, or else the submit button's words.
    pub fn structure_faults(&self) -> Vec<String> {
        let found = self.execute(
            "const faults = [];
             const describe = e => e.outerHTML.length > 160 ? e.outerHTML.slice(0, 160) + '…' : e.outerHTML;
             let previous = 0;
             for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
               const level = Number(h.localName.slice(1));
               if (level > previous + 1) {
                 faults.push(`heading level skipped: h${level} after ${previous ? 'h' + previous : 'the start of the page'}: ${describe(h)}`);
               }
               previous = level;
             }
             const words = s => (s || '').replace(/\\s+/g, ' ').trim();
             const formName = f => {
               if (f.getAttribute('aria-labelledby')) {
                 return words(f.getAttribute('aria-labelledby').split(/\\s+/)
                   .map(id => { const e = document.getElementById(id); return e ? e.textContent : ''; }).join(' '));
               }
               if (f.getAttribute('aria-label')) return words(f.getAttribute('aria-label'));
               const submit = f.querySelector('button:not([type]), button[type=submit], input[type=submit]');
               return submit ? words(submit.localName === 'input' ? submit.value : submit.textContent) : '';
             };
             const seen = new Map();
             for (const f of document.querySelectorAll('form')) {
               const name = formName(f);
               if (seen.has(name)) {
                 faults.push(`two forms share the accessible name ${JSON.stringify(name)}: ${describe(seen.get(name))} and ${describe(f)}`);
               } else {
                 seen.set(name, f);
               }
             }
             return faults;",
            &[],
        );
        found.as_array().into_iter().flatten().map(|f| f.as_str().unwrap_or_default().to_string()).collect()
    }

    /// Every accessibility fault of the current page, from both engines and the structural
    /// checks, as readable paragraphs; empty when there is none.
    pub fn accessibility_faults(&self, label: &str) -> Vec<String> {
        let url = self.url();
        let mut faults = Vec::new();
        let violations = self.axe();
        if !violations.is_empty() {
            faults.push(accessibility_report(label, &url, &violations));
        }
        let errors = self.htmlcs();
        if !errors.is_empty() {
            faults.push(htmlcs_report(label, &url, &errors));
        }
        let structure = self.structure_faults();
        if !structure.is_empty() {
            faults.push(structure_report(label, &url, &structure));
        }
        faults
    }

    /// Runs axe (WCAG 2.1 AA), HTML_CodeSniffer (WCAG2AA) and the structural checks, and
    /// panics, listing every fault, if there is any. `label` says which page or state this is.
    pub fn assert_accessible(&self, label: &str) {
        let faults = self.accessibility_faults(label);
        if !faults.is_empty() {
            panic!("{}", faults.join("\n"));
        }
    }
}

/// A readable list of HTML_CodeSniffer's errors, as `assert_accessible` panics with.
pub fn htmlcs_report(label: &str, url: &str, errors: &[HtmlcsError]) -> String {
    let mut report =
        format!("{label}: {} WCAG2AA error(s) found by HTML_CodeSniffer on {url}\n", errors.len());
    for e in errors {
        report.push_str(&e.to_string());
    }
    report
}

/// A readable list of the structural faults, as `assert_accessible` panics with.
pub fn structure_report(label: &str, url: &str, faults: &[String]) -> String {
    let mut report = format!("{label}: {} structural fault(s) on {url}\n", faults.len());
    for f in faults {
        report.push_str(&format!("[structure] {f}\n"));
    }
    report
}

/// A readable list of violations, as `assert_accessible` panics with.
pub fn accessibility_report(label: &str, url: &str, violations: &[Violation]) -> String {
    let mut report =
        format!("{label}: {} WCAG 2.1 AA violation(s) found by axe-core on {url}\n", violations.len());
    for v in violations {
        report.push_str(&v.to_string());
    }
    report
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failing test leaves a screenshot and the page's HTML behind to look at.
        if std::thread::panicking() {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-failures");
            let name = std::thread::current().name().unwrap_or("test").replace("::", "-");
            if std::fs::create_dir_all(&dir).is_ok() {
                let png = dir.join(format!("{name}.png"));
                if let Ok(Value::String(b64)) = self.try_command("GET", "/screenshot", None) {
                    if let Ok(bytes) = base64_decode(&b64) {
                        if std::fs::write(&png, bytes).is_ok() {
                            eprintln!("browser: screenshot of the failing page: {}", png.display());
                        }
                    }
                }
                if let Ok(Value::String(html)) = self.try_command("GET", "/source", None) {
                    let _ = std::fs::write(dir.join(format!("{name}.html")), html);
                }
            }
        }
        // Ending the session quits Chromium; then chromedriver itself.
        let _ = send(&self.http, "DELETE", &self.session, None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // self.dir (the profile) is removed after this, as the fields drop.
    }
}

impl Element<'_> {
    /// The reference to pass to `Browser::execute` as an argument.
    pub fn reference(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    fn cmd(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let path = format!("/element/{}{what}", self.id);
        self.browser.try_command(method, &path, body).unwrap_or_else(|e| {
            panic!("{method} {what} on {:?} failed on {}: {e}", self.css, self.browser.try_url())
        })
    }

    pub fn click(&self) {
        self.cmd("POST", "/click", None);
    }

    /// Clears the field, then types `text` into it.
    pub fn fill(&self, text: &str) {
        self.cmd("POST", "/clear", None);
        self.cmd("POST", "/value", Some(json!({ "text": text })));
    }

    /// The rendered text, as a person sees it.
    pub fn text(&self) -> String {
        self.cmd("GET", "/text", None).as_str().unwrap_or_default().to_string()
    }

    /// An HTML attribute as written in the page, or `None`.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/attribute/{name}"), None).as_str().map(str::to_string)
    }

    /// A DOM property, e.g. `value` of a field as it is now.
    pub fn property(&self, name: &str) -> Value {
        self.cmd("GET", &format!("/property/{name}"), None)
    }

    /// The current value of a form field.
    pub fn value(&self) -> String {
        self.property("value").as_str().unwrap_or_default().to_string()
    }

    pub fn selected(&self) -> bool {
        self.cmd("GET", "/selected", None) == true
    }

    pub fn displayed(&self) -> bool {
        self.cmd("GET", "/displayed", None) == true
    }

    pub fn tag_name(&self) -> String {
        self.cmd("GET", "/name", None).as_str().unwrap_or_default().to_string()
    }
}

/// Decodes standard base64 (RFC 4648, with or without padding; whitespace ignored).
pub fn base64_decode(input: &str) -> Result<Vec<u8>, String> {
    fn sextet(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes: Vec<u8> = input.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let data = bytes.strip_suffix(b"==").or_else(|| bytes.strip_suffix(b"=")).unwrap_or(&bytes);
    if data.len() % 4 == 1 {
        return Err(format!("a length of {} is not base64", data.len()));
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = sextet(c).ok_or_else(|| format!("{:?} is not a base64 character", c as char))?;
            n |= v << (18 - 6 * i);
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..chunk.len() - 1]);
    }
    Ok(out)
}
