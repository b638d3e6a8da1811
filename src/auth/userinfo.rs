//! Group membership from Backstage's userinfo endpoint (`/api/auth/v1/userinfo`), for user
//! tokens that carry no groups claim (the default since auth-backend 0.28).
//!
//! Called with the user's own token; the answer `{"claims":{"sub":…,"ent":[…]}}` is read with
//! the issuer's groups claim path. The result is cached with the verified token (until its
//! `exp`, bounded, concurrent first uses coalesced), so the endpoint is asked once per token.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::AuthError;
use super::claims::{self, ClaimPath};

const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// A userinfo endpoint.
#[derive(Debug)]
pub struct Userinfo {
    url: Uri,
    timeout: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Userinfo {
    /// A client for `url`; answers slower than `timeout` count as unavailable.
    pub fn new(url: Uri, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        Self { url, timeout, client: Client::builder(TokioExecutor::new()).build(connector) }
    }

    /// The groups of the token's user.
    pub async fn groups(&self, token: &str, path: &ClaimPath, max: usize) -> Result<Vec<String>, AuthError> {
        let unavailable = |reason: String| AuthError::UserinfoUnavailable(reason);
        let authorization = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| AuthError::NotBearer)?;
        let request = Request::get(self.url.clone())
            .header(header::AUTHORIZATION, authorization)
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| unavailable(e.to_string()))?;
        let call = async {
            let response = self.client.request(request).await.map_err(|e| unavailable(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .to_bytes();
            Ok::<_, AuthError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| unavailable(format!("no answer within {:?}", self.timeout)))??;
        if !status.is_success() {
            return Err(unavailable(format!("`{}` answered {status}", self.url)));
        }
        let answer: Value = serde_json::from_slice(&body).map_err(|e| unavailable(format!("not JSON: {e}")))?;
        let Some(found) = answer.get("claims") else {
            return Err(unavailable("the answer has no `claims`".into()));
        };
        claims::groups(found, path, max)
    }
}
