//! The floor of a hyper proxy, for `bench/load.sh` case (h): the least a reverse proxy built on
//! hyper can do per request. A hyper HTTP/1.1 server whose every client connection gets its own
//! keep-alive hyper connection to the upstream; no routing, no authentication, no header
//! rewriting, no timeouts, no pool. stagedoor is built on the same hyper, so (c) and (d) against
//! (h) show what stagedoor's own work costs, and (h) against nginx (b) what hyper costs.
//!
//!     cargo run --release --example hyper_floor -- 127.0.0.1:LISTEN 127.0.0.1:UPSTREAM

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{Either, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Answer = Response<Either<Incoming, Empty<Bytes>>>;

fn bad_gateway() -> Answer {
    let mut response = Response::new(Either::Right(Empty::new()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

async fn serve(client: TcpStream, upstream: String) {
    let Ok(to_upstream) = TcpStream::connect(&upstream).await else { return };
    let _ = to_upstream.set_nodelay(true);
    let Ok((sender, connection)) = hyper::client::conn::http1::handshake(TokioIo::new(to_upstream)).await else {
        return;
    };
    tokio::spawn(connection);
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let sender = sender.clone();
        async move {
            let mut sender = sender.lock().await;
            if sender.ready().await.is_err() {
                return Ok::<_, Infallible>(bad_gateway());
            }
            Ok(match sender.send_request(request).await {
                Ok(response) => response.map(Either::Left),
                Err(_) => bad_gateway(),
            })
        }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(client), service).await;
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: hyper_floor LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (client, _) = listener.accept().await?;
            let _ = client.set_nodelay(true);
            tokio::spawn(serve(client, upstream.clone()));
        }
    })
}
