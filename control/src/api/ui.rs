//! `GET /ui`: the status page. Three files embedded in the binary
//! (`ui/index.html`, `ui/app.js`, `ui/app.css`), no external asset; the
//! page renders from this API's own reads and acts through its own
//! mutations with the token typed into it, so it shows what the API shows
//! and can do only what the token allows. Served without a token even with
//! `protect_reads` (it holds no data); a strict Content-Security-Policy
//! keeps it to this origin and out of frames.

use axum::extract::Path;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ApiError;

const INDEX: &str = include_str!("ui/index.html");
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("ui/app.css"),
    ),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    (StatusCode::OK, headers, body).into_response()
}

#[utoipa::path(get, path = "/ui", tag = "status",
    responses((status = 200, description = "the status page", body = String, content_type = "text/html")))]
pub(crate) async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

#[utoipa::path(get, path = "/ui/{asset}", tag = "status",
    params(("asset" = String, Path, description = "`app.js` or `app.css`")),
    responses(
        (status = 200, description = "a file of the status page",
            content((String = "text/javascript"), (String = "text/css"))),
        (status = 404, description = "no such file", body = super::ErrorBody),
    ))]
pub(crate) async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, content_type, body)| page(content_type, body))
        .ok_or_else(|| ApiError::NotFound(format!("no file {name:?} in the status page")))
}
