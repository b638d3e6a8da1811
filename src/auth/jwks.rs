//! A JWKS URL's keys: fetched at start, refreshed periodically, refetched on an unknown `kid`
//! (at most once per `min_refetch_interval`), and never blocking requests whose keys are cached.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::keys::KeyRing;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Timing knobs of a JWKS cache.
#[derive(Debug, Clone, Copy)]
pub struct JwksTiming {
    /// Least time between two fetches triggered by unknown key ids (10 s).
    pub min_refetch_interval: Duration,
    /// Longest a request waits for a refetch of an unknown key (2 s).
    pub unknown_kid_wait: Duration,
    /// Period of the background refresh (5 min).
    pub refresh_interval: Duration,
    /// Refuse to start (or reload) when the first fetch fails (off).
    pub required_at_start: bool,
}

impl Default for JwksTiming {
    fn default() -> Self {
        Self {
            min_refetch_interval: Duration::from_secs(10),
            unknown_kid_wait: Duration::from_secs(2),
            refresh_interval: Duration::from_secs(300),
            required_at_start: false,
        }
    }
}

/// Why a fetch failed (logged; requests with cached keys never see it).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connection or protocol failure.
    #[error("request to `{0}` failed: {1}")]
    Request(String, String),
    /// Non-200 answer.
    #[error("`{0}` answered {1}")]
    Status(String, u16),
    /// Body too big or broken.
    #[error("reading `{0}` failed: {1}")]
    Body(String, String),
    /// Not a JWKS.
    #[error("`{0}` is not a usable JWKS: {1}")]
    Document(String, String),
    /// No answer in time.
    #[error("`{0}` did not answer in time")]
    Timeout(String),
}

/// The cached keys of one JWKS URL.
#[derive(Debug)]
pub struct JwksCache {
    issuer: Arc<str>,
    url: Uri,
    client: Client<HttpConnector, Empty<Bytes>>,
    ring: RwLock<Arc<KeyRing>>,
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    timing: JwksTiming,
}

impl JwksCache {
    /// An empty cache; keys arrive with [`JwksCache::refresh`].
    pub fn new(issuer: Arc<str>, url: Uri, timing: JwksTiming) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timing.unknown_kid_wait));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            issuer,
            url,
            client,
            ring: RwLock::new(Arc::new(KeyRing::default())),
            last_refetch: tokio::sync::Mutex::new(None),
            timing,
        }
    }

    /// The keys currently cached.
    pub fn current(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Timing knobs.
    pub fn timing(&self) -> JwksTiming {
        self.timing
    }

    /// Fetches the document and replaces the cached keys; on failure the old keys stay.
    pub async fn refresh(&self) -> Result<usize, FetchError> {
        let ring = tokio::time::timeout(self.timing.unknown_kid_wait.max(Duration::from_secs(5)), self.fetch())
            .await
            .map_err(|_| FetchError::Timeout(self.url.to_string()))??;
        let count = ring.len();
        match self.ring.write() {
            Ok(mut slot) => *slot = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
        tracing::info!(issuer = &*self.issuer, url = %self.url, keys = count, "JWKS loaded");
        Ok(count)
    }

    /// Called when a token names a key the cache does not hold: refetches unless a refetch
    /// happened within `min_refetch_interval`, waiting at most `unknown_kid_wait`.
    /// Concurrent callers share one fetch.
    pub async fn refetch_for_unknown_key(&self) -> Arc<KeyRing> {
        let wait = self.timing.unknown_kid_wait;
        let attempt = async {
            let mut last = self.last_refetch.lock().await;
            if last.is_some_and(|at| at.elapsed() < self.timing.min_refetch_interval) {
                return;
            }
            *last = Some(Instant::now());
            if let Err(err) = self.refresh().await {
                tracing::warn!(issuer = &*self.issuer, error = %err, "JWKS refetch for an unknown key failed");
            }
        };
        if tokio::time::timeout(wait, attempt).await.is_err() {
            tracing::warn!(issuer = &*self.issuer, "JWKS refetch did not finish in time; answering with cached keys");
        }
        self.current()
    }

    async fn fetch(&self) -> Result<KeyRing, FetchError> {
        let url = self.url.to_string();
        let request = Request::get(self.url.clone())
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| FetchError::Request(url.clone(), e.to_string()))?;
        let response =
            self.client.request(request).await.map_err(|e| FetchError::Request(url.clone(), e.to_string()))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(url, response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| FetchError::Body(url.clone(), e.to_string()))?
            .to_bytes();
        KeyRing::from_jwks(&body, &self.issuer).map_err(|e| FetchError::Document(url, e.to_string()))
    }

    /// Background task: periodic refresh; after a failure (or when the fetch at start
    /// failed), retries with exponential backoff from 0.5 s up to 60 s.
    pub async fn run(self: Arc<Self>, loaded: bool) {
        let mut backoff = Duration::from_millis(500);
        tokio::time::sleep(if loaded { self.timing.refresh_interval } else { backoff }).await;
        loop {
            match self.refresh().await {
                Ok(_) => {
                    backoff = Duration::from_millis(500);
                    tokio::time::sleep(self.timing.refresh_interval).await;
                }
                Err(err) => {
                    tracing::warn!(issuer = &*self.issuer, error = %err, retry_in = ?backoff, "JWKS fetch failed; cached keys stay in use");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}
