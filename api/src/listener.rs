//! The HTTP/1.1 accept loop: a cap on open connections and a deadline for request headers.
//!
//! `axum::serve` has neither: a client that opens connections and sends nothing (or a byte now and
//! then) holds a file descriptor each for as long as it likes, until `accept` fails with "too many
//! open files" and the instance stops answering. Here every connection holds a permit of a
//! semaphore (no permit, no `accept`: the rest wait in the kernel's backlog), and hyper closes a
//! connection whose request head, or next request on a kept-alive connection, does not arrive in
//! time. The body's deadline is a middleware's (`limits::read_body`), which answers 408.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// File descriptors kept back from the connection cap for the database pool, Redis, logs and files.
const RESERVED_FDS: u64 = 128;

/// The connection cap in force: the configured one, lowered to what the open-file limit allows.
pub fn effective_max_connections(configured: usize) -> usize {
    match open_file_limit() {
        Some(limit) => {
            let allowed = limit.saturating_sub(RESERVED_FDS).max(1);
            let allowed = usize::try_from(allowed).unwrap_or(usize::MAX);
            if allowed < configured {
                tracing::warn!(
                    configured,
                    open_file_limit = limit,
                    allowed,
                    "GONGGU_MAX_CONNECTIONS lowered to fit the open-file limit (raise `ulimit -n` to allow more)"
                );
            }
            configured.min(allowed)
        }
        None => configured,
    }
}

/// The soft open-file limit, after raising it to the hard limit where the system allows.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
    }
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// Limits of one listener.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` turns true, then lets each connection finish its
/// in-flight request and returns once all are closed (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                // Out of descriptors or memory: wait for connections to close instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                }
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a permit until it closes: having them all back means all are closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// Resolves once `stop` is true (without holding its lock across the caller's awaits).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Errors of one incoming connection (it went away before we took it), not of the listener.
fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
