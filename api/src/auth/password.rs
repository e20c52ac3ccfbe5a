//! Password hashing with argon2id on a small pool of threads of its own.
//!
//! Each hash or check needs 19 MiB of working memory (argon2's default memory cost). On tokio's
//! blocking pool a burst of sign-ups ran hundreds at once, and glibc kept the freed buffers in its
//! heaps: the process grew by gigabytes and stayed there. Here as many threads as cores take the
//! work in turn from one queue, and each thread keeps one working buffer for all its hashes, so
//! the memory is a fixed few buffers however many requests arrive; a burst waits its turn instead
//! of growing the process (BENCHMARKS.md has the figures).

use std::cell::RefCell;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use argon2::password_hash::{
    rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::error::ApiError;

thread_local! {
    /// This hashing thread's argon2 working memory, reused by every hash it computes.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The largest working memory kept between hashes: more (a stored hash with a higher cost than
/// ours) is allocated for that one hash and freed.
const MAX_KEPT_BLOCKS: usize = 4 * Params::DEFAULT_M_COST as usize;

/// Runs argon2 in this thread's reusable memory.
fn compute(
    argon: &Argon2<'_>,
    blocks: usize,
    password: &[u8],
    salt: &Salt<'_>,
    out: &mut [u8],
) -> Result<(), String> {
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(|e| e.to_string())?;
    if blocks > MAX_KEPT_BLOCKS {
        let mut memory = vec![Block::default(); blocks];
        return argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..])
            .map_err(|e| e.to_string());
    }
    BLOCKS.with(|cell| {
        let mut memory = cell.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(|e| e.to_string())
    })
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password` with a new salt.
fn hash_blocking(password: &str) -> Result<String, String> {
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(
        &argon,
        params.block_count(),
        password.as_bytes(),
        &salt.as_salt(),
        &mut out,
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (any argon2 variant, version and cost).
fn verify_blocking(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    if compute(
        &argon,
        params.block_count(),
        password.as_bytes(),
        &salt,
        &mut out,
    )
    .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|got| got == expected)
}

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
    on_pool(move || hash_blocking(&password))
        .await?
        .map_err(|e| ApiError::internal(std::io::Error::other(e)))
}

/// A real hash of a random password, verified against when the email is unknown, so both cases
/// take the same time and response timing does not reveal which emails have accounts.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret = SaltString::generate(&mut OsRng);
        hash_blocking(secret.as_str()).unwrap_or_default()
    })
}

/// Checks `password` against `phc` (or against a dummy when there is no account).
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, ApiError> {
    on_pool(move || {
        let known = phc.is_some();
        let phc = phc.as_deref().unwrap_or_else(|| dummy_hash());
        verify_blocking(&password, phc) && known
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

    #[test]
    fn hashes_made_by_the_argon2_defaults_still_verify() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking("correct horse", &stored));
        assert!(!verify_blocking("correct horsf", &stored));
        // And ours are what the defaults write, so they verify with the crate's own checker.
        use argon2::password_hash::PasswordVerifier;
        let ours = hash_blocking("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(!verify_blocking("anything", "not a phc string"));
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
