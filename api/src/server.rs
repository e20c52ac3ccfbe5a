//! Running the app: the HTTP server, its background tasks, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use std::sync::Arc;

use crate::listener::{self, ConnLimits};
use crate::metrics::Metrics;
use crate::state::AppState;

/// A running server and its background tasks.
pub struct Server {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when it has a listener of its own.
    pub metrics_addr: Option<SocketAddr>,
    state: AppState,
    http: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds `listen` (port 0 picks a free port) and serves the app until [`Server::shutdown`].
pub async fn start(state: AppState, listen: SocketAddr) -> std::io::Result<Server> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let metrics_listener = match state.settings.http.metrics_listen {
        Some(at) => Some(TcpListener::bind(at).await?),
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    // One signal for the whole app: the listener, every background task and every open stream.
    let stop = state.stopping();
    // Subscribe and load before accepting requests, so the first answer is already complete.
    let subscriptions =
        crate::nearby::index::load(&state.nearby, &state.db, state.live.bus.as_ref())
            .await
            .map_err(std::io::Error::other)?;
    let mut first = Some(subscriptions);
    let nearby_state = state.clone();
    let relay_state = state.clone();
    let admitter_state = state.clone();
    let chat_state = state.clone();
    let away_state = state.clone();
    let mut tasks = vec![
        supervise(
            "nearby index",
            stop.clone(),
            state.metrics.clone(),
            move |stop| {
                let state = nearby_state.clone();
                let ready = first.take();
                async move {
                    let subscriptions = match ready {
                        Some(s) => s,
                        None => match crate::nearby::index::load(
                            &state.nearby,
                            &state.db,
                            state.live.bus.as_ref(),
                        )
                        .await
                        {
                            Ok(s) => s,
                            Err(err) => {
                                tracing::warn!(error = %err, "nearby index: reload failed");
                                return;
                            }
                        },
                    };
                    crate::nearby::index::follow(
                        state.nearby.clone(),
                        state.db.clone(),
                        subscriptions,
                        stop,
                    )
                    .await
                }
            },
        ),
        supervise(
            "outbox relay",
            stop.clone(),
            state.metrics.clone(),
            move |stop| {
                store::outbox::run_relay(
                    relay_state.db.clone(),
                    relay_state.live.bus.clone(),
                    relay_state.clock.clone(),
                    Duration::from_millis(500),
                    stop,
                )
            },
        ),
        supervise(
            "waiting-room admitter",
            stop.clone(),
            state.metrics.clone(),
            move |stop| crate::queue::admitter::run(admitter_state.clone(), stop),
        ),
        // On every instance, whatever runs the jobs: the consumer's position makes each event
        // one system message however many run it.
        supervise(
            "chat consumer",
            stop.clone(),
            state.metrics.clone(),
            move |stop| {
                crate::chat::system::run(chat_state.clone(), Duration::from_millis(500), stop)
            },
        ),
        // On every instance too: each notification's dedupe key makes it one however many sweep.
        supervise(
            "chat away notifications",
            stop.clone(),
            state.metrics.clone(),
            move |stop| crate::chat::away::run(away_state.clone(), stop),
        ),
    ];
    if state.settings.jobs.run_workers {
        tasks.extend(start_jobs(&state));
    }
    let limits = ConnLimits {
        max_connections: listener::effective_max_connections(state.settings.http.max_connections),
        header_timeout: state.settings.http.header_timeout,
    };
    if let Some(metrics_listener) = metrics_listener {
        let app = crate::http::metrics_router(state.clone());
        let stop = stop.clone();
        let limits = ConnLimits {
            max_connections: 64,
            ..limits
        };
        tasks.push(tokio::spawn(async move {
            if let Err(err) = listener::serve(metrics_listener, app, limits, stop).await {
                tracing::error!(error = %err, "metrics listener failed");
            }
        }));
    }
    let app = crate::http::router(state.clone());
    let http = tokio::spawn(listener::serve(listener, app, limits, stop));
    Ok(Server {
        addr,
        metrics_addr,
        state,
        http,
        tasks,
    })
}

/// Starts this process's job worker, sweeper, jobs consumer and notifications writer, when a job
/// runtime is attached.
pub fn start_jobs(state: &AppState) -> Vec<JoinHandle<()>> {
    let Some(jobs) = state.jobs.get() else {
        return Vec::new();
    };
    let mut tasks = jobs.start(
        state.job_context(),
        state.live.lease.clone(),
        &state.instance_id,
        state.settings.jobs.sweep_every,
        state.stopping(),
    );
    // The notifications writer runs where the jobs run (`serve`, or `gonggu worker`): the
    // reminder jobs reach the inbox through it.
    tasks.push(tokio::spawn(store::consumers::run(
        state.db.clone(),
        jobs::notifier::Notifier::new(state.live.bus.clone()),
        state.clock.clone(),
        Duration::from_millis(500),
        state.stopping(),
    )));
    tasks
}

/// Runs a long-lived task, and runs it again (after a backoff that grows while it keeps failing)
/// whenever it panics or returns before shutdown: one bad row or a dropped connection must not
/// leave the instance half-alive with a dead index or relay.
pub fn supervise<F, Fut>(
    name: &'static str,
    stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    mut start: F,
) -> JoinHandle<()>
where
    F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    /// A run this long counts as healthy: the next failure starts the backoff over.
    const HEALTHY_RUN: Duration = Duration::from_secs(60);
    let mut stop_rx = stop;
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = tokio::time::Instant::now();
            let outcome = std::panic::AssertUnwindSafe(start(stop_rx.clone()))
                .catch_unwind()
                .await;
            if *stop_rx.borrow() {
                return;
            }
            match outcome {
                Ok(()) => tracing::warn!(task = name, "background task ended; restarting it"),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(task = name, panic = %message, "background task panicked; restarting it");
                }
            }
            metrics.record(|| {
                metrics::counter!("background_task_restarts_total", "task" => name).increment(1)
            });
            if started.elapsed() >= HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop_rx.wait_for(|stop| *stop) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

impl Server {
    /// Stops accepting connections, ends open event streams, lets in-flight requests finish for
    /// up to `grace`, then waits for the background tasks.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.state.shutdown.send(true);
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_or_ends_is_started_again_until_shutdown() {
        let (stop_tx, stop) = watch::channel(false);
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let task = supervise("test", stop, Arc::default(), move |mut stop| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => panic!("a bad row"),
                    1 => {} // ends early, as a follower whose bus closed
                    _ => {
                        let _ = stop.wait_for(|s| *s).await;
                    }
                }
            }
        });
        // The paused clock runs the backoffs through without real waiting.
        while starts.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "started again after each failure, then stopped"
        );
    }
}
