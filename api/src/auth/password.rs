//! Password hashing with argon2id on a small pool of threads of its own.
//!
//! Each hash or check takes 19 MiB (argon2's default memory cost). On tokio's blocking pool a burst
//! of sign-ups ran hundreds at once, and glibc kept what each thread had freed: the process grew by
//! gigabytes and stayed there. Here as many threads as cores take the work in turn from one queue,
//! so at most that many buffers exist at a time and the same few threads' memory is reused; a burst
//! waits its turn instead of growing the process (BENCHMARKS.md has the figures).

use std::sync::{mpsc, Arc, Mutex, OnceLock};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tokio::sync::oneshot;

use crate::error::ApiError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The hashing threads' queue.
fn pool() -> &'static mpsc::Sender<Job> {
    static POOL: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..hashing_threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, "cannot start a password hashing thread");
            }
        }
        tx
    })
}

/// One hashing thread per core: more would only queue on the CPU and hold more memory.
pub fn hashing_threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Runs `work` on a hashing thread and waits for its result.
async fn on_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    let span = tracing::Span::current();
    let job: Job = Box::new(move || {
        let _enter = span.enter();
        let _ = tx.send(work());
    });
    pool()
        .send(job)
        .map_err(|_| ApiError::internal(std::io::Error::other("no password hashing thread")))?;
    rx.await
        .map_err(|_| ApiError::internal(std::io::Error::other("password hashing thread failed")))
}

/// Hashes `password` into a PHC string.
pub async fn hash(password: String) -> Result<String, ApiError> {
    on_pool(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))
    })
    .await?
}

/// A real hash of a random password, verified against when the email is unknown, so both cases
/// take the same time and response timing does not reveal which emails have accounts.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(secret.as_str().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Checks `password` against `phc` (or against a dummy when there is no account).
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, ApiError> {
    on_pool(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| dummy_hash().to_owned());
        let ok = match PasswordHash::new(&phc) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        ok && known
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse".into(), Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn no_more_hashes_run_at_once_than_there_are_threads() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        runtime.block_on(async {
            let jobs = (0..24).map(|_| {
                let running = running.clone();
                let peak = peak.clone();
                on_pool(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, SeqCst);
                })
            });
            for result in futures::future::join_all(jobs).await {
                result.unwrap();
            }
        });
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(peak >= 1 && peak <= hashing_threads(), "peak {peak}");
    }
}
