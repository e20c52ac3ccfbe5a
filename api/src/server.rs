//! Running the app: the HTTP server, its background tasks, and graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// A running server and its background tasks.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds `listen` (port 0 picks a free port) and serves the app until [`Server::shutdown`].
pub async fn start(state: AppState, listen: SocketAddr) -> std::io::Result<Server> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stop) = watch::channel(false);
    // Subscribe and load before accepting requests, so the first answer is already complete.
    let subscriptions =
        crate::nearby::index::load(&state.nearby, &state.db, state.live.bus.as_ref())
            .await
            .map_err(std::io::Error::other)?;
    let tasks = vec![
        tokio::spawn(crate::nearby::index::follow(
            state.nearby.clone(),
            state.db.clone(),
            subscriptions,
            stop.clone(),
        )),
        tokio::spawn(store::outbox::run_relay(
            state.db.clone(),
            state.live.bus.clone(),
            state.clock.clone(),
            Duration::from_millis(500),
            stop.clone(),
        )),
        tokio::spawn(maintenance(state.clone(), stop.clone())),
        tokio::spawn(crate::queue::admitter::run(state.clone(), stop.clone())),
    ];
    let app = crate::http::router(state);
    let mut stop_http = stop;
    let http = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_http.wait_for(|stop| *stop).await;
        })
        .await
    });
    Ok(Server {
        addr,
        shutdown,
        http,
        tasks,
    })
}

impl Server {
    /// Stops accepting connections, lets in-flight requests finish for up to `grace`, then stops
    /// the background tasks.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        match tokio::time::timeout(grace, self.http).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::error!(error = %err, "server stopped with an error"),
            Ok(Err(err)) => tracing::error!(error = %err, "server task failed"),
            Err(_) => tracing::warn!("shutdown grace period over; dropping remaining connections"),
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Hourly housekeeping: forget expired idempotency keys.
async fn maintenance(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        match store::idempotency::prune(&state.db, state.now()).await {
            Ok(n) if n > 0 => tracing::info!(pruned = n, "expired idempotency keys removed"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "idempotency prune failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
