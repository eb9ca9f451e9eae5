//! HTTP helpers: the client the scenarios share (the server's URL and the bench's key), and
//! query parameters.

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde_json::Value;

#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) client: reqwest::Client,
    pub(crate) url: String,
    pub(crate) key: String,
    /// The organization `get` names in the `Stele-Organization` header (for a platform key).
    pub(crate) organization: Option<String>,
}

impl Http {
    pub(crate) async fn post(&self, body: String) -> anyhow::Result<Vec<u8>> {
        self.post_as(&self.key, None, body).await
    }

    /// `POST /v1/events` with another key (a platform key), naming the organization it acts for
    /// in the `Stele-Organization` header when given; the answer's body, which must be a `201`.
    pub(crate) async fn post_as(
        &self,
        key: &str,
        organization: Option<&str>,
        body: String,
    ) -> anyhow::Result<Vec<u8>> {
        let mut request = self
            .client
            .post(format!("{}/v1/events", self.url))
            .bearer_auth(key)
            .header("content-type", "application/json");
        if let Some(org) = organization {
            request = request.header("stele-organization", org);
        }
        let response = request.body(body).send().await.context("POST /v1/events")?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the POST answer")?;
        if status != StatusCode::CREATED {
            bail!(
                "POST /v1/events answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(bytes.to_vec())
    }

    /// The same server with another key, naming `organization` on every `get` when given.
    pub(crate) fn acting_as(&self, key: &str, organization: Option<&str>) -> Http {
        Http {
            key: key.to_string(),
            organization: organization.map(str::to_string),
            ..self.clone()
        }
    }

    /// `GET /metrics`: the value of each metric without labels (the gauges the store sets), by
    /// name. Empty from a server that serves no `/metrics` (one older than it).
    pub(crate) async fn unlabeled_metrics(
        &self,
    ) -> anyhow::Result<std::collections::HashMap<String, f64>> {
        let response = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .context("GET /metrics")?;
        if response.status() != StatusCode::OK {
            return Ok(Default::default());
        }
        let text = response.text().await.context("reading /metrics")?;
        Ok(text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.contains('{'))
            .filter_map(|line| {
                let (name, value) = line.split_once(' ')?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect())
    }

    /// GET /v1/events; returns the raw body (timed by callers without the JSON parse).
    pub(crate) async fn get(&self, params: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
        let mut request = self
            .client
            .get(format!("{}/v1/events", self.url))
            .bearer_auth(&self.key)
            .query(params);
        if let Some(org) = &self.organization {
            request = request.header("stele-organization", org);
        }
        let response = request.send().await.context("GET /v1/events")?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the GET answer")?;
        if status != StatusCode::OK {
            bail!(
                "GET /v1/events?{} answered {status}: {}",
                query_string(params),
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(bytes.to_vec())
    }

    pub(crate) async fn get_json(&self, params: &[(String, String)]) -> anyhow::Result<Value> {
        let body = self.get(params).await?;
        serde_json::from_slice(&body).context("parsing the GET answer")
    }

    /// How many events the organization holds before the run, if the count is exact.
    pub(crate) async fn total_events(&self) -> anyhow::Result<Option<u64>> {
        let page = self
            .get_json(&params(&[("actor_type", "all"), ("limit", "1")]))
            .await?;
        Ok(page["total_exact"]
            .as_bool()
            .unwrap_or(false)
            .then(|| page["total"].as_u64().unwrap_or(0)))
    }
}

pub(crate) fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn query_string(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}
