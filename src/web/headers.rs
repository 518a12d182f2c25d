//! Security headers on every response, errors included.

use actix_web::middleware::DefaultHeaders;

/// Scripts and styles only from this site, nothing framed or embedded, no base or form
/// target elsewhere.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn defaults(https: bool) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        // No camera, microphone, location or payment for any page, and no window opened
        // from another site keeps a handle on ours.
        .add(("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        // Pages and JSON with people's cases on them are never kept by a browser or a proxy;
        // the static assets set their own caching, which this does not replace.
        .add(("Cache-Control", "no-store"));
    if https {
        headers = headers.add(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"));
    }
    headers
}
