//! Starting the server and the CLI the wrong way: each failure is one plain
//! sentence on stderr naming the thing and the fix, never Rust debug formatting,
//! and a non-zero exit; a good start says which database it opened and where it
//! serves.

use std::process::Output;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Run `casefile ARGS` with a clean environment for what it reads, until it exits.
async fn casefile(args: &[&str]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(env!("CARGO_BIN_EXE_casefile"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("CASEFILE_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("RUST_BACKTRACE", "0")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("casefile exits in time")
    .expect("casefile runs")
}

/// The failure's one line, checked to be a sentence and not debug output.
fn sentence(output: &Output) -> String {
    assert!(!output.status.success(), "a failure exits non-zero");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line in {stderr}"))
        .to_owned();
    for debug in ["Unavailable(", "Internal(", "Error {", "\\\"", "backtrace"] {
        assert!(!stderr.contains(debug), "debug formatting in {stderr}");
    }
    assert!(!stderr.contains('\u{1b}'), "colours in a pipe: {stderr}");
    line
}

#[tokio::test]
async fn an_unreachable_database_is_named_with_its_reason_within_five_seconds() {
    // Nothing listens on port 1.
    let started = Instant::now();
    let output = casefile(&[
        "migrate",
        "--database-url",
        "postgres://postgres@127.0.0.1:1/casefile",
    ])
    .await;
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(
        sentence(&output),
        "error: cannot reach PostgreSQL on 127.0.0.1:1: connection refused"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn a_missing_postgres_database_says_how_to_create_it() {
    crate::helpers::require_postgres();
    let base = std::env::var("CASEFILE_TEST_DATABASE_URL").expect("a PostgreSQL URL");
    let server = base
        .rsplit_once('/')
        .map_or(base.as_str(), |(server, _)| server);
    let url = format!("{server}/casefile_nowhere_{}", std::process::id());
    let output = casefile(&["migrate", "--database-url", &url]).await;
    let line = sentence(&output);
    assert!(
        line.starts_with(&format!(
            "error: database \"casefile_nowhere_{}\" does not exist on ",
            std::process::id()
        )),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(
            ": create it with `createdb casefile_nowhere_{}`",
            std::process::id()
        )),
        "{line}"
    );
}

#[tokio::test]
async fn an_unsupported_url_scheme_names_the_ones_that_work() {
    let output = casefile(&[
        "migrate",
        "--database-url",
        "mysql://root@localhost/casefile",
    ])
    .await;
    assert_eq!(
        sentence(&output),
        "error: the database URL scheme \"mysql\" is not supported: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
    );
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_folder_names_the_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nowhere");
    let url = format!("sqlite://{}/casefile.db", missing.display());
    let output = casefile(&["migrate", "--database-url", &url]).await;
    assert_eq!(
        sentence(&output),
        format!(
            "error: the folder {} for the SQLite database {}/casefile.db does not exist: create it, or point --database-url elsewhere",
            missing.display(),
            missing.display()
        )
    );
}

#[tokio::test]
async fn a_port_in_use_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/casefile.db", dir.path().display());
    let output = casefile(&["serve", "--listen", &addr, "--database-url", &url]).await;
    assert_eq!(
        sentence(&output),
        format!(
            "error: the address {addr} is already in use: stop what listens there, or pass --listen with another address"
        )
    );
}

#[tokio::test]
async fn start_up_names_the_database_and_the_address_without_colours() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/casefile.db", dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_casefile"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("casefile starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("stderr")
                .expect("a line before exiting");
            assert!(!line.contains('\u{1b}'), "colours in a pipe: {line}");
            if line.contains("serving on") {
                return line;
            }
        }
    })
    .await
    .expect("the start-up line in time");
    let path = std::fs::canonicalize(dir.path().join("casefile.db")).expect("the file");
    assert!(
        line.ends_with(&format!("; database sqlite://{}", path.display())),
        "{line}"
    );
    assert!(
        line.contains("casefile serving on http://127.0.0.1:"),
        "{line}"
    );
    child.kill().await.expect("stops");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn migrating_again_prints_no_notices() {
    crate::helpers::require_postgres();
    let (url, _) = crate::helpers::fresh_database().await;
    for _ in 0..2 {
        let output = casefile(&["migrate", "--database-url", &url]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(!stderr.contains("already exists"), "{stderr}");
    }
}
