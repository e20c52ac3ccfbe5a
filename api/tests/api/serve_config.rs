//! `gonggu serve` refusing configuration mistakes before it starts, as an operator meets them:
//! the real binary, its exit code and message.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `gonggu serve` in a fresh folder with `env`, on a free port, and kills it if it is still
/// running after `wait` (it started: the configuration was accepted).
fn serve(env: &[(&str, &str)], wait: Duration) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gonggu"));
    cmd.current_dir(dir.path())
        .args(["--data-dir", "data", "serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("GONGGU_CORS_ORIGINS")
        .env_remove("GONGGU_NO_DEMO")
        .env_remove("GONGGU_JWT_SECRET")
        .env("GONGGU_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("gonggu runs");
    let deadline = std::time::Instant::now() + wait;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out: Output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (code, text)
}

#[test]
fn wildcard_and_null_cors_origins_are_configuration_errors() {
    for origin in ["*", "null", "https://app.example/path"] {
        let (code, text) = serve(&[("GONGGU_CORS_ORIGINS", origin)], Duration::from_secs(30));
        assert_eq!(code, Some(1), "{origin}: {text}");
        assert!(text.contains("GONGGU_CORS_ORIGINS"), "{origin}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[test]
fn boolean_variables_take_one_and_zero() {
    // Accepted: the server starts (and is stopped) instead of refusing the value.
    let (code, text) = serve(
        &[("GONGGU_NO_DEMO", "1"), ("GONGGU_TRUST_FORWARDED_FOR", "0")],
        Duration::from_secs(3),
    );
    assert_eq!(code, None, "still running: {text}");
    let (code, text) = serve(&[("GONGGU_NO_DEMO", "maybe")], Duration::from_secs(30));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("GONGGU_NO_DEMO") || text.contains("no-demo"),
        "{text}"
    );
}

#[test]
fn a_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "  \n").unwrap();
    let (code, text) = serve(
        &[("GONGGU_JWT_SECRET_FILE", empty.to_str().unwrap())],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("GONGGU_JWT_SECRET_FILE"), "{text}");
    let good = dir.path().join("secret");
    std::fs::write(&good, format!("{}\n", "s".repeat(40))).unwrap();
    let (code, text) = serve(
        &[
            ("GONGGU_JWT_SECRET_FILE", good.to_str().unwrap()),
            ("GONGGU_NO_DEMO", "true"),
        ],
        Duration::from_secs(3),
    );
    assert_eq!(code, None, "started: {text}");
}

#[test]
fn an_unreachable_redis_is_reported_not_waited_on_forever() {
    // Nothing listens on port 1: the connection is refused at once.
    let (code, text) = serve(
        &[("REDIS_URL", "redis://127.0.0.1:1")],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("Redis"), "{text}");
}
