//! Starting the server and the CLI: each failure is one plain sentence on stderr
//! naming the thing and the fix, never Rust debug formatting, and a non-zero exit;
//! a good start says which database it opened and where it serves; each command's
//! `--help` lists its own flags, each described; the owner's password need not
//! sit in shell history.

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

/// `casefile workspace create` of "Acme", owned by `email`, on the database at
/// `url`; the password is for the caller to give.
pub(crate) fn create_workspace(url: &str, email: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casefile"));
    command
        .args([
            "workspace",
            "create",
            "--name",
            "Acme",
            "--admin-email",
            email,
        ])
        .args(["--database-url", url])
        .kill_on_drop(true);
    command
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
    let mut before = Vec::new();
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
            before.push(line);
        }
    })
    .await
    .expect("the start-up line in time");
    // A first start is quiet: the migrations in one line, no line per migration.
    assert!(before.len() <= 5, "{before:#?}");
    let ready = before
        .iter()
        .find_map(|l| l.split_once("database ready: ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no \"database ready\" line in {before:#?}"));
    let applied: usize = ready
        .strip_suffix(" migrations applied")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{ready}"));
    assert!(applied >= 17, "{ready}");
    assert!(
        !before.iter().any(|l| l.contains("Migration '")),
        "{before:#?}"
    );
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

/// Every option line of a `--help` text, with whether a description follows it.
fn options(help: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = help.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if !(trimmed.starts_with("--") || trimmed.starts_with("-h") || trimmed.starts_with("-V")) {
            continue;
        }
        let flag = trimmed
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(',');
        let flag = if flag.starts_with("--") {
            flag.to_owned()
        } else {
            trimmed.split_whitespace().nth(1).unwrap_or(flag).to_owned()
        };
        // A description on the same line (two spaces after the flag) or the next.
        let same = trimmed
            .split("  ")
            .filter(|part| !part.trim().is_empty())
            .count()
            > 1;
        let next = lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with("          ") && !next.trim().is_empty());
        out.push((flag, same || next));
    }
    out
}

#[tokio::test]
async fn each_command_lists_its_own_flags_each_described() {
    let commands: [&[&str]; 8] = [
        &["serve"],
        &["migrate"],
        &["schema"],
        &["workspace", "create"],
        &["articles", "import"],
        &["demo", "seed"],
        &["keys", "rotate"],
        &[],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let output = casefile(&args).await;
        assert!(output.status.success(), "{command:?}");
        let help = String::from_utf8_lossy(&output.stdout).to_string();
        let flags = options(&help);
        for (flag, described) in &flags {
            assert!(described, "{command:?}: {flag} has no description\n{help}");
        }
        let serve_only = flags
            .iter()
            .any(|(flag, _)| flag == "--listen" || flag == "--sweep-every");
        match command {
            ["serve"] => assert!(serve_only, "{help}"),
            // Seeding the demo prints URLs on the address it will serve.
            ["demo", "seed"] => assert!(!flags.iter().any(|(f, _)| f == "--sweep-every"), "{help}"),
            _ => assert!(!serve_only, "{command:?} lists serve's flags:\n{help}"),
        }
    }
    let import = String::from_utf8_lossy(&casefile(&["articles", "import", "--help"]).await.stdout)
        .to_string();
    assert!(
        import.contains("<DIR>") && import.contains("The folder of"),
        "{import}"
    );
}

#[tokio::test]
async fn the_version_is_printed() {
    let output = casefile(&["--version"]).await;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("casefile {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn the_owners_password_comes_from_stdin_or_the_environment_not_only_a_flag() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/casefile.db", dir.path().display());
    let create = |email: &str| {
        let mut command = create_workspace(&url, email);
        command
            .env("CASEFILE_JWT_SECRET", crate::helpers::TEST_SECRET)
            .env_remove("CASEFILE_ADMIN_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    // From standard input.
    let mut piped = create("stdin@acme.test")
        .arg("--admin-password-stdin")
        .spawn()
        .expect("runs");
    let mut stdin = piped.stdin.take().expect("stdin");
    stdin
        .write_all(b"correct horse battery\n")
        .await
        .expect("written");
    drop(stdin);
    let output = piped.wait_with_output().await.expect("exits");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // From the environment.
    let output = create("env@acme.test")
        .env("CASEFILE_ADMIN_PASSWORD", "correct horse battery")
        .output()
        .await
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Neither: a sentence saying how.
    let output = create("none@acme.test").output().await.expect("runs");
    assert_eq!(
        sentence(&output),
        "error: the owner needs a password: pass --admin-password-stdin and pipe it in, set CASEFILE_ADMIN_PASSWORD, or pass --admin-password"
    );
    // Both owners sign in with what they were given.
    let app = crate::helpers::TestApp::spawn_with(crate::helpers::test_config(&url), None).await;
    for email in ["stdin@acme.test", "env@acme.test"] {
        let signed = app
            .data(
                None,
                "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { agent { email } } }",
                serde_json::json!({ "e": email, "p": "correct horse battery" }),
            )
            .await;
        assert_eq!(signed["signIn"]["agent"]["email"], email);
    }
}

#[tokio::test]
async fn cli_input_errors_name_the_flag_and_the_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/casefile.db", dir.path().display());
    let create = |email: &'static str| {
        let url = url.clone();
        async move {
            create_workspace(&url, email)
                .env("CASEFILE_ADMIN_PASSWORD", "correct horse battery")
                .env("RUST_BACKTRACE", "0")
                .output()
                .await
                .expect("runs")
        }
    };
    assert_eq!(
        sentence(&create("not-an-email").await),
        "error: --admin-email: not an email address"
    );
    let created = create("owner@acme.test").await;
    assert!(created.status.success());
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).expect("JSON");
    let missing = dir.path().join("docs");
    let output = casefile(&[
        "articles",
        "import",
        "--workspace",
        created["workspaceId"].as_str().expect("id"),
        "--database-url",
        &url,
        missing.to_str().expect("path"),
    ])
    .await;
    assert_eq!(
        sentence(&output),
        format!(
            "error: cannot read the folder {}: it does not exist: give a folder of .md and .html files",
            missing.display()
        )
    );
}
