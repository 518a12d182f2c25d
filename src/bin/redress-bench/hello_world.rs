//! The ceiling for the reads: an actix-web hello world serving a body the size of the case
//! page, with its headers.

use super::*;

/// The hello-world server: actix-web with the crate's features and its default worker count,
/// answering every request with a body of the case page's size and its headers.
pub(super) fn hello(port: u16, body_bytes: usize, headers_file: Option<&Path>) -> Result<(), String> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let headers: Vec<(String, String)> = match headers_file {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?,
        None => vec![],
    };
    let body = web::Bytes::from("Hello, world!\n".repeat(body_bytes / 14 + 1)[..body_bytes].to_string());
    actix_web::rt::System::new()
        .block_on(async move {
            HttpServer::new(move || {
                let (body, headers) = (body.clone(), headers.clone());
                App::new().default_service(web::to(move || {
                    let mut response = HttpResponse::Ok();
                    for (name, value) in &headers {
                        response.insert_header((name.as_str(), value.as_str()));
                    }
                    let response = response.body(body.clone());
                    async move { response }
                }))
            })
            .bind(("127.0.0.1", port))?
            .run()
            .await
        })
        .map_err(|e| e.to_string())
}
