//! Which browser origins may read the API's answers from their own script (CORS): the origins the
//! server allows for every organization (`--embed-origins`), and, for a viewer token, the origins
//! its organization allows in its settings (`embed_origins`, the same list that may frame its
//! embedded log). Only the read methods (`GET`, `HEAD`) with the `Authorization` and
//! `Stele-Organization` headers are ever allowed; no credentials (cookies), so a console session
//! never reaches the API from another origin.
//!
//! What protects the data is the actual response's `Access-Control-Allow-Origin`: a browser hands
//! a response to a script of another origin only when it names that origin. That header is given
//! to an organization's origin only when the request carries a viewer token of that organization
//! (signed by this server). An API key from such an origin gets none: keys are for servers, and
//! only the server-wide list lets a browser use one.
//!
//! A preflight (`OPTIONS`) carries no `Authorization` header, so it cannot say which organization
//! is asking. Its answer reveals nothing and only lets the browser send the actual request, which
//! the browser could not read without the actual response's allowance. So a preflight from an
//! origin outside the server's list is allowed exactly when it asks for what a viewer token's
//! read needs (`GET` or `HEAD`, with no header but `Authorization`): the actual request then goes
//! out, and its answer is readable only if the token's organization lists the origin. Anything
//! else (another method, the `Stele-Organization` header a key would send) is allowed only for
//! the server's own list.

use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, header};
use stele_core::time::Millis;
use stele_service::access::viewer::{self, Kind};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::state::AppState;

/// The CORS layer of the API routes (see the module docs).
pub fn layer(state: AppState) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(
            move |origin: HeaderValue, parts: &Parts| {
                let state = state.clone();
                let ask = Ask::of(parts);
                async move { allowed(&state, origin.as_bytes(), ask).await }
            },
        ))
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([
            header::AUTHORIZATION,
            HeaderName::from_static(crate::api::auth::ORGANIZATION_HEADER),
        ])
}

/// What a request asks for, taken from its parts before the check runs (the check is a future
/// that cannot borrow them).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ask {
    /// A preflight that asks only for what a viewer token's read needs.
    ViewerPreflight,
    /// Any other preflight.
    OtherPreflight,
    /// The actual request, with its viewer token if it carries one.
    Actual { viewer_token: Option<String> },
}

impl Ask {
    fn of(parts: &Parts) -> Ask {
        if parts.method == Method::OPTIONS {
            let method = parts
                .headers
                .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .and_then(|v| v.to_str().ok());
            // Absent, or each one `authorization` (browsers send names lowercased, but a header
            // name is case-insensitive).
            let headers_ok = parts
                .headers
                .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .iter()
                .all(|v| {
                    v.to_str().is_ok_and(|list| {
                        list.split(',')
                            .map(str::trim)
                            .filter(|h| !h.is_empty())
                            .all(|h| h.eq_ignore_ascii_case("authorization"))
                    })
                });
            return match method {
                Some("GET" | "HEAD") if headers_ok => Ask::ViewerPreflight,
                _ => Ask::OtherPreflight,
            };
        }
        // Read as the API reads it (`Reader`), so both see the same token.
        let viewer_token = crate::api::auth::bearer(parts)
            .filter(|t| t.starts_with(viewer::TOKEN_PREFIX))
            .map(str::to_string);
        Ask::Actual { viewer_token }
    }
}

async fn allowed(state: &AppState, origin: &[u8], ask: Ask) -> bool {
    let Ok(origin) = std::str::from_utf8(origin) else {
        return false;
    };
    if state.embed_origins.iter().any(|o| o == origin) {
        return true;
    }
    match ask {
        Ask::ViewerPreflight => true,
        Ask::OtherPreflight | Ask::Actual { viewer_token: None } => false,
        Ask::Actual {
            viewer_token: Some(token),
        } => organization_allows(state, &token, origin).await,
    }
}

/// Whether the organization of viewer token `token` lists `origin` in its settings. The token's
/// signature must hold; its time need not: an expired token's 401 is then readable by the page
/// that sent it, so that its script can ask its backend for a new token instead of seeing a
/// network error (the 401 shows nothing of the trail).
async fn organization_allows(state: &AppState, token: &str, origin: &str) -> bool {
    let claims = viewer::verify(&state.viewer_tokens, token, Kind::Open, Millis::MIN)
        .or_else(|_| viewer::verify(&state.viewer_tokens, token, Kind::Session, Millis::MIN));
    let Ok(claims) = claims else {
        return false;
    };
    let Ok(Some(org)) = state
        .directory
        .resolve(state.store.as_ref(), &claims.org)
        .await
    else {
        return false;
    };
    // The settings cache ingest and the allowlist read: no database read per request.
    match state.policies.get(org.key).await {
        Ok(policy) => policy.settings.embed_origins.iter().any(|o| o == origin),
        Err(e) => {
            tracing::warn!(error = %e, "CORS: the organization's settings could not be read");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn ask(method: Method, headers: &[(&str, &str)]) -> Ask {
        let mut request = Request::builder().method(method).uri("/v1/events");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Ask::of(&request.body(()).unwrap().into_parts().0)
    }

    #[test]
    fn a_preflight_is_a_viewers_only_for_a_read_with_no_header_but_authorization() {
        let preflight = |method: &str, headers: Option<&str>| {
            let mut list = vec![("access-control-request-method", method)];
            list.extend(headers.map(|h| ("access-control-request-headers", h)));
            ask(Method::OPTIONS, &list)
        };
        assert_eq!(
            preflight("GET", Some("authorization")),
            Ask::ViewerPreflight
        );
        assert_eq!(
            preflight("GET", Some("Authorization")),
            Ask::ViewerPreflight
        );
        assert_eq!(preflight("HEAD", None), Ask::ViewerPreflight);
        assert_eq!(
            preflight("GET", Some("authorization, stele-organization")),
            Ask::OtherPreflight
        );
        assert_eq!(
            preflight("POST", Some("authorization")),
            Ask::OtherPreflight
        );
        assert_eq!(
            ask(Method::GET, &[("authorization", "Bearer svt_abc.def")]),
            Ask::Actual {
                viewer_token: Some("svt_abc.def".into())
            }
        );
        assert_eq!(
            ask(Method::GET, &[("authorization", "Bearer stele_key")]),
            Ask::Actual { viewer_token: None }
        );
    }
}
