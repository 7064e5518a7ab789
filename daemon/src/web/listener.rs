//! The web view's accept loop, bounded: at most [`super::MAX_CONNECTIONS`] connections are
//! open at once, and one accepted beyond that is closed at once (and counted). Each connection
//! is served by hyper's HTTP/1 with a timer: a client must send a request's headers within
//! [`HEADER_TIMEOUT`] (a slow-headers client holds a slot that long at most), and an idle
//! keep-alive connection is closed when its next request does not come in that time either.
//! An upgraded WebSocket lives on under `ws.rs`'s own liveness checks. At shutdown the loop
//! stops accepting and every connection is dropped (pages reconnect to the next chatd).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::debug;

use crate::shutdown::Shutdown;

/// Longest wait for a request's headers (the first, or the next on a kept-alive connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The client's address, as handlers see it (`ConnectInfo<Client>`).
#[derive(Clone, Copy, Debug)]
pub struct Client(pub SocketAddr);

/// Serves `app` on `listener` until `shutdown` fires, with at most `max` connections open.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max: usize,
    refused: Arc<AtomicU64>,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(max));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.recv() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                debug!(error = %e, "web: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused.fetch_add(1, Ordering::Relaxed);
            debug!(%addr, "web: too many connections; closing a new one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(Client(addr)));
                let mut app = app.clone();
                async move { tower::Service::call(&mut app, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                debug!(%addr, error = %e, "web: connection ended");
            }
            drop(permit);
        });
    }
    conns.shutdown().await;
}
