//! A browser-like HTTP client for the staff pages: it keeps cookies, follows nothing by itself,
//! and finds the CSRF token in a page as a browser's form would send it.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// One response: status, where it redirects, and the body.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The page as a browser's HTML parser reads it.
    pub fn document(&self) -> scraper::Html {
        scraper::Html::parse_document(&self.body)
    }

    /// The value of `attr` on each element matching `css`, in document order, as a browser
    /// reads it (character references decoded).
    pub fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        let (document, css) = (self.document(), selector(css));
        let found = document.select(&css).filter_map(|e| e.attr(attr)).map(str::to_string);
        found.collect()
    }

    /// The text of each element matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let (document, css) = (self.document(), selector(css));
        let found = document.select(&css).map(|e| e.text().collect::<String>());
        found.collect()
    }

    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let tokens = self.attrs("form input[name=csrf]", "value");
        tokens.into_iter().next().unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body))
    }

    pub fn title(&self) -> String {
        self.texts("title").into_iter().next().unwrap_or_default()
    }

    pub fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }
}

/// A CSS selector the test itself wrote: one that does not parse is a mistake in the test.
pub fn selector(css: &str) -> scraper::Selector {
    scraper::Selector::parse(css).unwrap_or_else(|e| panic!("bad selector {css:?}: {e}"))
}

pub struct WebClient {
    base: String,
    agent: ureq::Agent,
    cookies: RefCell<BTreeMap<String, String>>,
    /// Sent with every request, e.g. X-Forwarded-For to speak from another client address.
    headers: RefCell<Vec<(String, String)>>,
}

impl WebClient {
    pub fn new(base: &str) -> Self {
        let agent = super::http_agent();
        WebClient {
            base: base.to_string(),
            agent,
            cookies: RefCell::new(BTreeMap::new()),
            headers: RefCell::new(Vec::new()),
        }
    }

    /// Sends `name: value` with every later request.
    pub fn set_header(&self, name: &str, value: &str) {
        let mut headers = self.headers.borrow_mut();
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.to_string(), value.to_string()));
    }

    fn cookie_header(&self) -> Option<String> {
        let c = self.cookies.borrow();
        (!c.is_empty()).then(|| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    fn keep_cookies(&self, response: &ureq::http::Response<ureq::Body>) {
        for value in response.headers().get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else { continue };
            let expired = text.to_ascii_lowercase().contains("max-age=0");
            let mut jar = self.cookies.borrow_mut();
            if expired || value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    fn finish(&self, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Page {
        let mut response = response.unwrap();
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.body_mut().with_config().limit(10 << 20).read_to_string().unwrap_or_default();
        Page { status, location, body }
    }

    pub fn get(&self, path: &str) -> Page {
        let mut req = self.agent.get(format!("{}{}", self.base, path));
        if let Some(c) = self.cookie_header() {
            req = req.header("Cookie", c);
        }
        for (name, value) in self.headers.borrow().iter() {
            req = req.header(name, value);
        }
        self.finish(req.call())
    }

    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut req = self.agent.post(format!("{}{}", self.base, path));
        if let Some(c) = self.cookie_header() {
            req = req.header("Cookie", c);
        }
        for (name, value) in self.headers.borrow().iter() {
            req = req.header(name, value);
        }
        self.finish(req.send_form(fields.iter().copied()))
    }

    /// Sends a JSON body, with these cookies and headers.
    pub fn post_json(&self, path: &str, body: &str) -> Page {
        let mut req =
            self.agent.post(format!("{}{}", self.base, path)).header("Content-Type", "application/json");
        if let Some(c) = self.cookie_header() {
            req = req.header("Cookie", c);
        }
        for (name, value) in self.headers.borrow().iter() {
            req = req.header(name, value);
        }
        self.finish(req.send(body))
    }

    /// Posts a form with the CSRF token of the page at `form_page`.
    pub fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(form_page).csrf();
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all)
    }

    pub fn sign_in(&self, email: &str, password: &str) -> Page {
        let page = self.submit("/sign-in", "/sign-in", &[("email", email), ("password", password)]);
        assert_eq!(page.status, 303, "sign-in of {email} failed: {}", page.body);
        page
    }

    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Sets cookies from a `Cookie:` header value, as a replayed or forged request would.
    pub fn set_cookie_header(&self, header: &str) {
        for pair in header.split(';') {
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.borrow_mut().insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.borrow().contains_key(name)
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.borrow().get(name).cloned()
    }
}
