//! Page templates: embedded in the binary, strict, HTML-escaped.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use handlebars::Handlebars;
use rust_embed::RustEmbed;
use serde::Serialize;

#[derive(RustEmbed)]
#[folder = "templates/"]
struct PageAssets;

pub struct Pages {
    registry: Handlebars<'static>,
}

impl Pages {
    pub fn load() -> Result<Self, String> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        for path in PageAssets::iter() {
            let Some(name) = path.strip_suffix(".hbs") else {
                continue;
            };
            let file = PageAssets::get(&path).ok_or_else(|| format!("page template {path} is missing"))?;
            let source = String::from_utf8_lossy(&file.data).into_owned();
            let result = match name.strip_prefix("partials/") {
                Some(partial) => registry.register_partial(partial, source),
                None => registry.register_template_string(name, source),
            };
            result.map_err(|e| format!("page template {name} does not compile: {e}"))?;
        }
        Ok(Pages { registry })
    }

    pub fn render<C: Serialize>(&self, name: &str, context: &C) -> Result<String, handlebars::RenderError> {
        self.registry.render(name, context)
    }

    pub fn render_response<C: Serialize>(&self, status: StatusCode, name: &str, context: &C) -> HttpResponse {
        match self.render(name, context) {
            Ok(html) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html),
            Err(e) => {
                tracing::error!(template = name, error = %e, "page did not render");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("Sorry, this page could not be shown.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_page_template_compiles() {
        super::Pages::load().unwrap();
    }
}
