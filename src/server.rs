//! Serving: bind, accept, hand each connection to hyper (HTTP/1.1 and HTTP/2), hot-swap the
//! service on reload, run the JWKS refreshers, and drain in-flight requests at shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use crate::auth::KeySource;
use crate::body::Body;
use crate::config::Config;
use crate::connection::{Limits, PeerAddr};

/// The assembled middleware stack, as handed to hyper.
pub type App = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

/// A running configuration: the service plus its background tasks (JWKS refreshers).
struct Generation {
    app: App,
    tasks: JoinSet<()>,
}

/// Swappable state shared by all connections.
#[derive(Clone)]
pub struct Gateway {
    current: Arc<ArcSwap<App>>,
    tasks: Arc<std::sync::Mutex<JoinSet<()>>>,
    limits: Limits,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

/// Why a configuration could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An issuer with `jwks_required_at_start: true` could not fetch its keys.
    #[error("issuer `{issuer}`: JWKS required at start but not available: {source}")]
    JwksRequired {
        /// The issuer.
        issuer: String,
        /// Why the fetch failed.
        source: crate::auth::jwks::FetchError,
    },
}

async fn start(config: &Config) -> Result<Generation, StartError> {
    let mut tasks = JoinSet::new();
    for issuer in config.authenticator.issuers() {
        if let KeySource::Jwks(cache) = &issuer.keys {
            // Fetch once before serving so the first requests find keys; a failure is logged
            // and retried in the background (the gateway starts anyway unless told not to).
            let loaded = cache.refresh().await;
            if let Err(err) = loaded {
                if cache.timing().required_at_start {
                    return Err(StartError::JwksRequired { issuer: issuer.name().to_string(), source: err });
                }
                tracing::warn!(issuer = &**issuer.name(), error = %err, "JWKS not available at start; retrying in the background");
                tasks.spawn(cache.clone().run(false));
            } else {
                tasks.spawn(cache.clone().run(true));
            }
        }
    }
    Ok(Generation { app: crate::app(config), tasks })
}

impl Gateway {
    /// Prepares a gateway for `config` (fetches JWKS keys, starts refreshers).
    pub async fn new(config: &Config) -> Result<Self, StartError> {
        let generation = start(config).await?;
        Ok(Self {
            current: Arc::new(ArcSwap::from_pointee(generation.app)),
            tasks: Arc::new(std::sync::Mutex::new(generation.tasks)),
            limits: config.limits,
        })
    }

    /// Replaces the running configuration; requests already in flight finish on the old one.
    /// The caller loads and validates the new config first, so a bad file never gets here; a
    /// config whose required JWKS is unavailable is refused and the old one keeps running.
    /// Listener and connection limits (`server.*`) need a restart to change.
    pub async fn reload(&self, config: &Config) -> Result<(), StartError> {
        let generation = start(config).await?;
        self.current.store(Arc::new(generation.app));
        let old = match self.tasks.lock() {
            Ok(mut tasks) => std::mem::replace(&mut *tasks, generation.tasks),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), generation.tasks),
        };
        drop(old); // aborts the old refreshers
        tracing::info!(config = %config.source.display(), "configuration reloaded");
        Ok(())
    }

    /// Serves connections from `listener` until `shutdown` completes, then drains for at most
    /// `grace`.
    pub async fn serve(self, listener: TcpListener, grace: Duration, shutdown: impl Future<Output = ()>) {
        let protocols = Arc::new(Protocols::new(self.limits));
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(self.limits.max_connections));
        tokio::pin!(shutdown);
        loop {
            // At the connection limit, stop accepting: new clients wait in the listen backlog.
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and similar: back off briefly, keep serving.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let service = ConnectionService::new(self.current.clone(), PeerAddr::new(peer));
            let protocols = protocols.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                if let Some(connection) = protocols.serve(stream, service, watcher).await {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                }
                drop(permit);
            });
        }
        tracing::info!("shutting down: draining in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(grace) => tracing::warn!(?grace, "grace period over; closing remaining connections"),
        }
    }
}

/// The first bytes of an HTTP/2 connection with prior knowledge (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A served connection, boxed at its own size.
type ServedConnection = Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>>;

/// The HTTP/1.1 and HTTP/2 server settings, from `server.limits`.
///
/// Each connection is served by hyper's HTTP/1.1 or HTTP/2 connection alone, chosen from its
/// first bytes, rather than by hyper-util's `auto` connection, which holds room for both: that
/// is 3.6 KiB per connection, against ~1 KiB for an HTTP/1.1 one, on top of hyper's 16 KiB of
/// buffers (2,000 idle keep-alive connections: `bench/load.sh`'s memory check).
struct Protocols {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    header_read_timeout: Duration,
}

impl Protocols {
    fn new(limits: Limits) -> Self {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers)
            .keep_alive(true);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.http2_max_concurrent_streams)
            .max_pending_accept_reset_streams(limits.http2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(limits.http2_max_local_error_reset_streams)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        Self { http1, http2, header_read_timeout: limits.header_read_timeout }
    }

    /// The connection served in the protocol its first bytes announce; `None` when the client
    /// sent neither a request nor the whole HTTP/2 preface within the header read timeout.
    async fn serve(
        &self,
        stream: TcpStream,
        service: ConnectionService,
        watcher: hyper_util::server::graceful::Watcher,
    ) -> Option<ServedConnection> {
        let http2 = tokio::time::timeout(self.header_read_timeout, starts_with_http2_preface(&stream)).await.ok()?;
        let io = TokioIo::new(stream);
        Some(if http2 {
            Box::pin(watcher.watch(self.http2.serve_connection(io, service)))
        } else {
            Box::pin(watcher.watch(self.http1.serve_connection(io, service)))
        })
    }
}

/// Whether the client's first bytes are the HTTP/2 preface. Reads nothing (peeks), so hyper
/// sees every byte; an HTTP/1.1 request differs from the preface at its first byte or so.
async fn starts_with_http2_preface(stream: &TcpStream) -> bool {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    loop {
        let peeked = match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return false, // closed: hyper's HTTP/1.1 side ends it cleanly
            Ok(n) => n,
        };
        if first[..peeked] != HTTP2_PREFACE[..peeked] {
            return false;
        }
        if peeked == HTTP2_PREFACE.len() {
            return true;
        }
        // Part of the preface so far; peeking again at once would return the same bytes.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The service of one client connection: inserts the peer address into each request and calls
/// the current configuration's stack.
///
/// The stack is cloned once per connection and again only after a reload (a clone copies
/// every stage), not per request; each request still runs on the configuration current when
/// it arrives.
struct ConnectionService {
    current: Arc<ArcSwap<App>>,
    peer: PeerAddr,
    /// The configuration the cached stack was cloned from, and the clone.
    cached: std::sync::Mutex<(Arc<App>, App)>,
}

impl ConnectionService {
    fn new(current: Arc<ArcSwap<App>>, peer: PeerAddr) -> Self {
        let generation = current.load_full();
        let app = App::clone(&generation);
        Self { current, peer, cached: std::sync::Mutex::new((generation, app)) }
    }
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = <App as tower::Service<Request<Incoming>>>::Future;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.peer.clone());
        let generation = self.current.load();
        let mut cached = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !Arc::ptr_eq(&cached.0, &*generation) {
            *cached = (Arc::clone(&generation), App::clone(&generation));
        }
        // No stage applies backpressure, so the stack is ready at once; should one ever not
        // be, the request waits on its own clone rather than being called unready.
        let mut context = Context::from_waker(Waker::noop());
        match tower::Service::poll_ready(&mut cached.1, &mut context) {
            Poll::Ready(Ok(())) => tower::Service::call(&mut cached.1, request),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Box::pin(App::clone(&cached.1).oneshot(request)),
        }
    }
}

/// A gateway running in the background on its own listener (tests, `demo`).
#[derive(Debug)]
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The gateway, for reloads.
    pub gateway: Gateway,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds `addr` (use port 0 for an ephemeral port) and serves `config` in a task.
    pub async fn spawn(config: &Config, addr: SocketAddr) -> std::io::Result<Running> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let gateway = Gateway::new(config).await.map_err(std::io::Error::other)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let grace = config.shutdown_grace;
        let task = tokio::spawn(gateway.clone().serve(listener, grace, async move {
            let _ = rx.await;
        }));
        Ok(Running { addr, gateway, shutdown: Some(tx), task })
    }

    /// Stops accepting, drains, and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.shutdown.is_some() {
            self.task.abort();
        }
    }
}
