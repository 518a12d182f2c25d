//! Email: templates embedded in the binary, the transport built once, and the outbox worker
//! that delivers what the services queued.

pub mod outbox;

use handlebars::Handlebars;
use rust_embed::RustEmbed;
use serde::Serialize;

use crate::domain::EmailTemplate;

#[derive(RustEmbed)]
#[folder = "emails/"]
struct EmailAssets;

/// The email templates, compiled once. Each email is a folder in `emails/` holding
/// `subject.hbs` and `text.hbs`; `partials/` holds pieces they share.
pub struct EmailTemplates {
    registry: Handlebars<'static>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("email template {0} is missing")]
    Missing(String),
    #[error("email template {name} does not compile: {source}")]
    Compile { name: String, source: Box<handlebars::TemplateError> },
}

impl EmailTemplates {
    pub fn load() -> Result<Self, TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        // Plain-text mail: nothing is HTML, so nothing is escaped.
        registry.register_escape_fn(handlebars::no_escape);
        for path in EmailAssets::iter() {
            let Some(name) = path.strip_suffix(".hbs") else {
                continue;
            };
            let file = EmailAssets::get(&path).ok_or_else(|| TemplateError::Missing(path.to_string()))?;
            let source = String::from_utf8_lossy(&file.data).into_owned();
            let result = match name.strip_prefix("partials/") {
                Some(partial) => registry.register_partial(partial, source),
                None => registry.register_template_string(name, source),
            };
            result.map_err(|e| TemplateError::Compile { name: name.to_string(), source: Box::new(e) })?;
        }
        for template in EmailTemplate::ALL {
            for part in ["subject", "text"] {
                let name = format!("{template}/{part}");
                if !registry.has_template(&name) {
                    return Err(TemplateError::Missing(name));
                }
            }
        }
        Ok(EmailTemplates { registry })
    }

    pub fn render<C: Serialize>(
        &self,
        template: EmailTemplate,
        context: &C,
    ) -> Result<RenderedEmail, handlebars::RenderError> {
        let subject = self.registry.render(&format!("{template}/subject"), context)?;
        let text = self.registry.render(&format!("{template}/text"), context)?;
        Ok(RenderedEmail { subject: one_line(&subject), text })
    }
}

/// A subject is one line: any line break a name or a reference brought in is folded into a
/// space, so nothing written by the public can add a header.
pub fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .filter(|p| !p.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_present_and_compiles() {
        EmailTemplates::load().unwrap();
    }

    #[test]
    fn subjects_never_carry_line_breaks() {
        assert_eq!(one_line("Case PEN-1\r\nBcc: x@example.org"), "Case PEN-1 Bcc: x@example.org");
        assert_eq!(one_line("  a \n\n b "), "a b");
    }
}
