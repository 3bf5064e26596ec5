//! The control panel's static files, with single-page-app routing: a path
//! that names no file (`/nodes`, `/tasks/42`) gets `index.html` and the
//! panel's router takes over; a missing asset (`/assets/x.js`) is a 404.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request, StatusCode, header};
use std::path::{Path, PathBuf};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Serves one built panel directory.
#[derive(Clone)]
pub struct Panel {
    files: ServeDir,
    index: ServeFile,
}

impl Panel {
    pub fn new(dir: &Path) -> Panel {
        let index: PathBuf = dir.join("index.html");
        Panel { files: ServeDir::new(dir).append_index_html_on_directories(true), index: ServeFile::new(index) }
    }

    /// Answers a GET or HEAD for `req`'s path.
    pub async fn serve(&self, req: Request<Body>) -> Response {
        let path = req.uri().path().to_owned();
        let res = match self.files.clone().oneshot(req).await {
            Ok(res) => res.map(Body::new),
            Err(never) => match never {},
        };
        let mut res = if res.status() == StatusCode::NOT_FOUND && is_route(&path) {
            match self.index.clone().oneshot(Request::new(Body::empty())).await {
                Ok(res) => res.map(Body::new),
                Err(never) => match never {},
            }
        } else if res.status() == StatusCode::NOT_FOUND {
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        } else {
            res
        };
        // Vite names built assets by content hash: cache them for good, and
        // revalidate everything else (index.html names the current hashes).
        let cache = if path.starts_with("/assets/") && res.status().is_success() {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        res
    }
}

/// A client-side route rather than a file: its last segment has no extension.
fn is_route(path: &str) -> bool {
    !path.rsplit('/').next().unwrap_or("").contains('.')
}

#[cfg(test)]
mod tests {
    use super::is_route;

    #[test]
    fn routes_are_paths_without_an_extension() {
        for p in ["/", "/nodes", "/tasks/abc-1", "/control-panel/"] {
            assert!(is_route(p), "{p}");
        }
        for p in ["/assets/index-3f2a.js", "/favicon.ico", "/nodes/x.json"] {
            assert!(!is_route(p), "{p}");
        }
    }
}
