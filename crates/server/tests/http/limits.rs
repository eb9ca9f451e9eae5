//! The limits and error answers that keep one client from getting past the API's contract
//! (issue 17, item 6): a path that is not UTF-8 gets the API's JSON error.

use reqwest::StatusCode;

use super::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn a_path_that_is_not_utf8_gets_400_in_json() {
    let app = spawn_app().await;
    for path in ["/v1/events/%FF", "/v1/events/%C3%28/proof", "/audit_logs/%FE"] {
        let response = app.get(path).await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_path").await;
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
}
