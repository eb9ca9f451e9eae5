//! A running `stele serve` on a fresh embedded database, for tests that point a client library
//! at it.

use serde_json::Value;
use stele_server::{Application, Config};
use stele_service::access::api_keys;
use stele_store::Scope;
use tokio::sync::oneshot;

use super::node;

/// A running `stele serve` on a fresh embedded database, and a platform key for it.
pub struct Running {
    pub url: String,
    pub port: String,
    pub key: String,
    pub store: std::sync::Arc<dyn stele_store::Store>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    pub async fn start() -> Running {
        Running::start_with(|_| {}).await
    }

    /// The same, with the configuration adjusted first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        adjust(&mut config);
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
        Running {
            url,
            port,
            key: key.secret,
            store,
            stop,
            server,
            _dir: dir,
        }
    }

    /// Runs a script of this directory with the port, the key and `third` (what the script
    /// takes next: an organization, the project id); its JSON report.
    pub async fn node(&self, script: &'static str, third: &str) -> Value {
        // Node runs on a blocking thread, so the server keeps answering it.
        let args = [self.port.clone(), self.key.clone(), third.to_string()];
        let output = tokio::task::spawn_blocking(move || {
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            node(script, &args)
        })
        .await
        .unwrap();
        serde_json::from_str(&output).unwrap()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.server
            .await
            .unwrap()
            .expect("the server stops cleanly");
    }
}
