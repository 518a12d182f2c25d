//! Checking what people send: every field has a type, a length limit and a clear message.

use crate::error::{AppError, FieldErrors};

pub const NAME_MAX: usize = 200;
pub const SHORT_MAX: usize = 100;
pub const URL_MAX: usize = 2048;
pub const EMAIL_MAX: usize = 254;
pub const TEXT_MAX: usize = 20_000;
pub const WORDS_MAX: usize = 10_000;

/// Collects every problem with an input before answering, so a person fixes them all at once.
#[derive(Default)]
pub struct Checker {
    errors: FieldErrors,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.entry(field.to_string()).or_insert_with(|| message.into());
    }

    pub fn finish(self) -> Result<(), AppError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self.errors))
        }
    }

    /// Text that must be given, trimmed, at most `max` characters.
    pub fn required(&mut self, field: &str, value: Option<&str>, max: usize) -> String {
        match self.optional(field, value, max) {
            Some(v) => v,
            None => {
                self.fail(field, "is required");
                String::new()
            }
        }
    }

    /// Text that may be left out; blank counts as left out.
    pub fn optional(&mut self, field: &str, value: Option<&str>, max: usize) -> Option<String> {
        let v = value.map(str::trim).filter(|v| !v.is_empty())?;
        let len = v.chars().count();
        if len > max {
            self.fail(field, format!("is too long: at most {max} characters, got {len}"));
        } else if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            self.fail(field, "contains control characters");
        }
        Some(v.replace("\r\n", "\n"))
    }

    /// A single line: names, platforms, codes.
    pub fn line(&mut self, field: &str, value: Option<&str>, max: usize, required: bool) -> Option<String> {
        let v =
            if required { Some(self.required(field, value, max)) } else { self.optional(field, value, max) };
        if let Some(text) = &v {
            if text.contains(['\n', '\r', '\t']) {
                self.fail(field, "must be on one line");
            }
        }
        v.filter(|t| !t.is_empty())
    }

    pub fn email(&mut self, field: &str, value: Option<&str>, required: bool) -> Option<String> {
        let v = self.line(field, value, EMAIL_MAX, required)?;
        if !is_email(&v) {
            self.fail(field, "is not an email address (like name@example.org)");
        }
        Some(v)
    }

    pub fn url(&mut self, field: &str, value: Option<&str>, required: bool) -> Option<String> {
        let v = self.line(field, value, URL_MAX, required)?;
        let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') && !v.contains(char::is_whitespace) => {}
            _ => self.fail(field, "must be a web address starting with http:// or https://"),
        }
        Some(v)
    }
}

pub fn is_email(v: &str) -> bool {
    v.len() <= EMAIL_MAX
        && !v.chars().any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>' || c == ',')
        && v.parse::<lettre::Address>().is_ok()
        && v.split_once('@').is_some_and(|(_, d)| d.contains('.') || d == "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_email("sam@example.org"));
        assert!(!is_email("sam"));
        assert!(!is_email("sam@example.org\r\nBcc: x@y.z"));
        assert!(!is_email("Sam <sam@example.org>"));
        assert!(!is_email(&format!("{}@example.org", "a".repeat(250))));
    }

    #[test]
    fn lengths_and_urls() {
        let mut c = Checker::new();
        c.required("a", Some(&"x".repeat(11)), 10);
        c.url("u", Some("javascript:alert(1)"), true);
        c.url("ok", Some("https://example.org/p/1"), true);
        c.required("missing", None, 10);
        let AppError::Validation(f) = c.finish().unwrap_err() else { panic!() };
        assert_eq!(f.keys().collect::<Vec<_>>(), ["a", "missing", "u"]);
    }
}
