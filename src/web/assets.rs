//! The stylesheet and the small script of progressive enhancements, embedded in the binary.

use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

routes! {
    get "/assets/{file}" => asset,
}

async fn asset(path: web::Path<String>) -> HttpResponse {
    let name = path.into_inner();
    let Some(file) = Assets::get(&name) else {
        return HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("Not found");
    };
    let content_type = match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(file.data.into_owned())
}
