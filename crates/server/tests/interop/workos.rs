//! `@workos-inc/node` 8.13, the last WorkOS SDK that runs on Node 20, against a running Stele
//! server on the embedded database, through `workos_sdk.js`: an export created, polled and
//! downloaded through its url, a schema, an Admin Portal link, and the SDK's own exceptions
//! from Stele's errors. (8.13 has no `listSchemas` or retention methods: the HTTP tests cover
//! those routes.)

use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_server::{Application, Config};
use stele_service::access::api_keys;
use stele_store::Scope;
use tokio::sync::oneshot;

use super::node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workos_sdk_exports_defines_schemas_and_links_to_the_portal() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("app builds");
    let url = app.url();
    let port = url.rsplit(':').next().unwrap().to_string();
    app.bootstrap().expect("fresh directory bootstraps");
    let store = app.store();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    // The key an application moving from WorkOS puts where its WorkOS key was.
    let platform = store.platform_org().await.unwrap();
    let key = api_keys::generate("workos", vec![Scope::Admin]);
    store
        .create_api_key(platform.key, key.record)
        .await
        .unwrap();
    let key = key.secret;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{url}/v1/organizations"))
        .bearer_auth(&key)
        .json(&json!({"name": "Acme", "external_id": "org_acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let events = json!({"events": [{
        "action": "login", "detailed_action": "user.signed_in",
        "occurred_at": "2024-01-15T10:00:00.000Z",
        "actor": {"type": "user", "id": "user_1", "name": "Jon"},
        "entity": {"type": "team", "id": "team_1"}
    }]});
    let recorded = client
        .post(format!("{url}/v1/events"))
        .bearer_auth(&key)
        .header("Stele-Organization", "org_acme")
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status(), StatusCode::CREATED);

    // Node runs on a blocking thread, so the server keeps answering it.
    let args = [port, key.clone(), "org_acme".to_string()];
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        node("workos_sdk.js", &args)
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_str(&output).unwrap();

    let created = &report["created"];
    assert_eq!(created["object"], "audit_log_export");
    assert_eq!(created["state"], "pending");
    assert!(created["createdAt"].is_string(), "{created}");
    let polled = &report["polled"];
    assert_eq!(polled["state"], "ready", "{polled}");
    assert_eq!(polled["id"], created["id"]);
    let download = &report["download"];
    assert_eq!(download["status"], 200, "{download}");
    let csv = download["body"].as_str().unwrap();
    assert_eq!(
        csv.lines().count(),
        2,
        "the header and the one sign-in: {csv}"
    );
    assert!(
        csv.contains("user.signed_in") && csv.contains("user_1"),
        "{csv}"
    );

    // The SDK's own reading of the schema it defined.
    let schema = &report["schema"];
    assert_eq!(schema["object"], "audit_log_schema");
    assert_eq!(schema["version"], 1);
    assert_eq!(schema["actor"], json!({"metadata": {"role": "string"}}));
    assert_eq!(
        schema["targets"],
        json!([{"type": "team", "metadata": {"size": "number"}}, {"type": "doc"}])
    );
    assert_eq!(schema["metadata"], json!({"extra": "boolean"}));

    let link = report["link"]["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{url}/embed/log?token=svt_")),
        "{link}"
    );
    let page = client.get(link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Jon"));

    // Stele's errors become the SDK's exceptions with Stele's words (never `[object Object]`).
    let thrown = |case: &str| report[case]["thrown"].clone();
    let unknown = thrown("unknownExport");
    assert_eq!(unknown["name"], "NotFoundException", "{unknown}");
    assert_eq!(
        unknown["message"],
        "Audit Log Export not found: 'audit_log_export_01GBZK5MP7TD1YCFQHFR22180V'."
    );
    // (8.13 reads `X-Request-ID` into an exception only when the body does not parse: it looks
    // the header up by key on a fetch `Headers` object. The HTTP tests check the header is sent.)
    let nobody = thrown("unknownOrganization");
    assert_eq!(nobody["name"], "NotFoundException", "{nobody}");
    assert_eq!(nobody["message"], "Organization not found: 'nobody'.");
    let intent = thrown("otherIntent");
    assert_eq!(intent["name"], "UnprocessableEntityException", "{intent}");
    let bad_schema = thrown("badSchema");
    assert_eq!(bad_schema["name"], "BadRequestException", "{bad_schema}");
    assert_eq!(bad_schema["code"], "invalid_audit_log_action");
    assert_eq!(bad_schema["errors"][0]["field"], "action");
    assert_eq!(thrown("wrongKey")["name"], "UnauthorizedException");
    for case in [
        "unknownExport",
        "unknownOrganization",
        "otherIntent",
        "badSchema",
    ] {
        let message = thrown(case)["message"].to_string();
        assert!(!message.contains("[object Object]"), "{case}: {message}");
    }

    let _ = stop.send(());
    server.await.unwrap().expect("the server stops cleanly");
}
