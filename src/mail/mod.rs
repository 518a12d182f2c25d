//! Email: templates embedded in the binary (which a folder given by configuration may
//! override), the transport built once, and the outbox worker that delivers what the services
//! queued.

pub mod outbox;

use std::collections::BTreeMap;
use std::path::Path;

use handlebars::{handlebars_helper, Handlebars};
use rust_embed::RustEmbed;
use serde::Serialize;

use crate::domain::EmailTemplate;

#[derive(RustEmbed)]
#[folder = "emails/"]
struct EmailAssets;

/// The email templates, compiled once. Each email is a folder in `emails/` holding
/// `subject.hbs`, `text.hbs` and `html.hbs`; `partials/` holds the pieces they share (the
/// footer, the HTML layout). A folder of overrides replaces any of them: `<dir>/<email>/<part>.hbs`
/// for every organisation, `<dir>/orgs/<slug>/<email>/<part>.hbs` for one.
pub struct EmailTemplates {
    /// Subjects and text bodies: nothing is escaped.
    text: Handlebars<'static>,
    /// HTML bodies: everything is escaped.
    html: Handlebars<'static>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("email template {0} is missing")]
    Missing(String),
    #[error("email template {name} does not compile: {source}")]
    Compile { name: String, source: Box<handlebars::TemplateError> },
    #[error("cannot read the email template folder {0}: {1}")]
    Folder(String, std::io::Error),
}

handlebars_helper!(paragraphs: |text: str| {
    // Blank lines part paragraphs; single line breaks stay line breaks; each line is cut into
    // its words and its web addresses, so that the HTML part can make the addresses links.
    text.split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.lines().map(pieces).collect::<Vec<_>>())
        .collect::<Vec<_>>()
});

handlebars_helper!(blocks: |text: str, part: str| {
    // The text body as the HTML part sets it out: `part` is "body" (before the signature's
    // "--" line) or "signature" (after it).
    let (body, signature) = match text.split_once("\n--\n") {
        Some((b, s)) => (b, s),
        None => (text, ""),
    };
    let chosen = if part == "signature" { signature } else { body };
    chosen
        .split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.trim().is_empty())
        .flat_map(split_after_list)
        .map(|p| block(&p))
        .collect::<Vec<_>>()
});

/// A paragraph cut where a list inside it ends and a new heading ("Reasons:") begins.
fn split_after_list(paragraph: &str) -> Vec<String> {
    let mut out: Vec<Vec<&str>> = vec![vec![]];
    let mut in_list = false;
    for line in paragraph.lines() {
        let marked = line.trim_start().starts_with("- ") || line.trim_start().starts_with("* ");
        if in_list && !marked && line.ends_with(':') {
            out.push(vec![]);
            in_list = false;
        }
        in_list |= marked;
        if let Some(current) = out.last_mut() {
            current.push(line);
        }
    }
    out.into_iter().filter(|b| !b.is_empty()).map(|b| b.join("\n")).collect()
}

/// One paragraph of a text body, as a block of the HTML part: a first line that ends with a
/// colon and has lines after it is the block's heading; lines that start with "- " or "* " are
/// a list's items (a line without the mark continues the item before it); other lines are a
/// paragraph's, each kept on its own line.
fn block(paragraph: &str) -> serde_json::Value {
    let mut lines: Vec<&str> = paragraph.lines().collect();
    let heading = match lines.first() {
        Some(first) if lines.len() > 1 && first.ends_with(':') && first.len() <= 80 => {
            let h = first.trim_end_matches(':').to_string();
            lines.remove(0);
            Some(h)
        }
        _ => None,
    };
    let mark = |l: &str| {
        l.trim_start().strip_prefix("- ").or_else(|| l.trim_start().strip_prefix("* ")).map(str::to_string)
    };
    let is_list = lines.first().is_some_and(|l| mark(l).is_some());
    let mut items: Vec<Vec<Vec<serde_json::Value>>> = vec![];
    if is_list {
        for line in &lines {
            match mark(line) {
                Some(item) => items.push(vec![pieces(&item)]),
                None => {
                    if let Some(last) = items.last_mut() {
                        last.push(pieces(line));
                    }
                }
            }
        }
    }
    serde_json::json!({
        "heading": heading,
        "items": items,
        "lines": if is_list { vec![] } else { lines.iter().map(|l| pieces(l)).collect::<Vec<_>>() },
    })
}

/// A line of text as pieces: plain text, or an `http(s)://` address (`href` set).
fn pieces(line: &str) -> Vec<serde_json::Value> {
    let mut out = vec![];
    let mut rest = line;
    while let Some(at) = ["https://", "http://"].iter().filter_map(|s| rest.find(s)).min() {
        let (before, from) = rest.split_at(at);
        // An address ends at a space, or before the punctuation that ends a sentence.
        let end = from.find(char::is_whitespace).unwrap_or(from.len());
        let url = from[..end].trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
        if !before.is_empty() {
            out.push(serde_json::json!({ "text": before }));
        }
        out.push(serde_json::json!({ "text": url, "href": url }));
        rest = &from[url.len()..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(serde_json::json!({ "text": rest }));
    }
    out
}

/// Reads every `*.hbs` below `dir`, keyed by its path without the extension.
fn read_folder(dir: &Path) -> Result<BTreeMap<String, String>, TemplateError> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(base, &path, out)?;
            } else if path.extension().is_some_and(|e| e == "hbs") {
                let rel = path.strip_prefix(base).unwrap_or(&path).with_extension("");
                let name =
                    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                out.insert(name, std::fs::read_to_string(&path)?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out).map_err(|e| TemplateError::Folder(dir.display().to_string(), e))?;
    Ok(out)
}

impl EmailTemplates {
    /// The embedded templates, with the overrides in `override_dir` on top.
    pub fn load(override_dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut sources: BTreeMap<String, String> = BTreeMap::new();
        for path in EmailAssets::iter() {
            let Some(name) = path.strip_suffix(".hbs") else { continue };
            let file = EmailAssets::get(&path).ok_or_else(|| TemplateError::Missing(path.to_string()))?;
            sources.insert(name.to_string(), String::from_utf8_lossy(&file.data).into_owned());
        }
        if let Some(dir) = override_dir {
            sources.extend(read_folder(dir)?);
        }
        // An email with no HTML template of its own is its text body in the shared layout.
        for template in EmailTemplate::ALL {
            sources.entry(format!("{template}/html")).or_insert_with(|| "{{> html_layout}}".to_string());
        }
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_helper("paragraphs", Box::new(paragraphs));
        html.register_helper("blocks", Box::new(blocks));
        for (name, source) in &sources {
            let compile = |e: handlebars::TemplateError| TemplateError::Compile {
                name: name.clone(),
                source: Box::new(e),
            };
            match name.strip_prefix("partials/") {
                Some(partial) => {
                    text.register_partial(partial, source).map_err(compile)?;
                    html.register_partial(partial, source).map_err(compile)?;
                }
                None if name.ends_with("/html") => {
                    html.register_template_string(name, source).map_err(compile)?
                }
                None => text.register_template_string(name, source).map_err(compile)?,
            }
        }
        for template in EmailTemplate::ALL {
            for (part, registry) in [("subject", &text), ("text", &text), ("html", &html)] {
                let name = format!("{template}/{part}");
                if !registry.has_template(&name) {
                    return Err(TemplateError::Missing(name));
                }
            }
        }
        Ok(EmailTemplates { text, html })
    }

    /// The organisations (by slug) that have templates of their own.
    pub fn organisations_with_own_templates(&self) -> Vec<String> {
        let mut slugs: Vec<String> = [&self.text, &self.html]
            .iter()
            .flat_map(|r| r.get_templates().keys())
            .filter_map(|name| name.strip_prefix("orgs/")?.split('/').next().map(str::to_string))
            .collect();
        slugs.sort();
        slugs.dedup();
        slugs
    }

    fn name(registry: &Handlebars<'static>, org_slug: &str, template: EmailTemplate, part: &str) -> String {
        let own = format!("orgs/{org_slug}/{template}/{part}");
        if registry.has_template(&own) {
            own
        } else {
            format!("{template}/{part}")
        }
    }

    /// Renders one email for an organisation (using its own templates where it has them).
    pub fn render<C: Serialize>(
        &self,
        template: EmailTemplate,
        org_slug: &str,
        context: &C,
    ) -> Result<RenderedEmail, handlebars::RenderError> {
        let subject = self.text.render(&Self::name(&self.text, org_slug, template, "subject"), context)?;
        let subject = one_line(&subject);
        let text = self.text.render(&Self::name(&self.text, org_slug, template, "text"), context)?;
        #[derive(Serialize)]
        struct Html<'a, C> {
            #[serde(flatten)]
            context: &'a C,
            subject: &'a str,
            text: &'a str,
        }
        let html = self.html.render(
            &Self::name(&self.html, org_slug, template, "html"),
            &Html { context, subject: &subject, text: &text },
        )?;
        Ok(RenderedEmail { subject, text, html })
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
        EmailTemplates::load(None).unwrap();
    }

    #[test]
    fn subjects_never_carry_line_breaks() {
        assert_eq!(one_line("Case PEN-1\r\nBcc: x@example.org"), "Case PEN-1 Bcc: x@example.org");
        assert_eq!(one_line("  a \n\n b "), "a b");
    }
}
