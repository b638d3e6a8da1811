//! The real `stagedoor` binary: `check`, `serve` (exit codes, SIGHUP reload, SIGTERM), `token`
//! and `demo`, each run as a child process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use support::*;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// The environment variable the serve configs read their HMAC secret from (set on the child
/// only).
const SECRET_VAR: &str = "STAGEDOOR_CLI_TEST_SECRET";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn stagedoor(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stagedoor"));
    command.args(args).current_dir(manifest_dir()).env("NO_COLOR", "1").env_remove("STAGEDOOR_LOG");
    command
}

/// A child process whose output is collected in the background (stdout also line by line on
/// a channel), killed when dropped. Waiting polls, so the test's runtime (which also runs the
/// backends the child talks to) is never blocked.
struct Proc {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    lines: UnboundedReceiver<String>,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    fn spawn(mut command: Command) -> Proc {
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, lines) = unbounded_channel();
        let (stdout, stderr): (Arc<Mutex<String>>, Arc<Mutex<String>>) = Default::default();
        let out_pipe = child.stdout.take().unwrap();
        let err_pipe = child.stderr.take().unwrap();
        let (out_sink, err_sink) = (stdout.clone(), stderr.clone());
        let readers = vec![
            std::thread::spawn(move || {
                for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                    out_sink.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            }),
            std::thread::spawn(move || {
                for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                    err_sink.lock().unwrap().push_str(&format!("{line}\n"));
                }
            }),
        ];
        Proc { child, stdout, stderr, lines, readers }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit (and the end of its output) for at most `within`.
    async fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(Instant::now() < deadline, "stagedoor did not exit in time; stderr:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").arg(format!("-{name}")).arg(&pid).status().unwrap();
        assert!(status.success(), "kill -{name} {pid} failed");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion (at most 30 s): exit status, stdout, stderr.
async fn run(args: &[&str]) -> (ExitStatus, String, String) {
    let mut proc = Proc::spawn(stagedoor(args));
    let status = proc.wait(Duration::from_secs(30)).await;
    (status, proc.stdout(), proc.stderr())
}

/// A port that was free a moment ago.
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Polls `condition` every 50 ms for at most `within`.
async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

// ---------------------------------------------------------------- check

#[tokio::test]
async fn check_accepts_the_example_config_and_prints_its_rules() {
    let config = manifest_dir().join("config/gateway.yaml");
    let (status, stdout, stderr) = run(&["check", "--config", config.to_str().unwrap()]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains(&format!("{}: ok", config.display())), "{stdout}");
    assert!(stdout.contains("listen 127.0.0.1:7000"), "{stdout}");
    let lines: Vec<String> = stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    for expected in [
        "rules (4):",
        "ANY /api/catalog/health → public [catalog]",
        "GET /api/catalog/entities/by-name/{kind}/{namespace}/{name} → catalog.entity.read (catalog-entity) [catalog]",
        "DELETE /api/catalog/entities/by-uid/{uid} → catalog.entity.delete (catalog-entity) [catalog]",
        "GET /api/catalog/{*rest} → authenticated [catalog]",
        "catalog → http://127.0.0.1:7008 (timeout 30s)",
    ] {
        assert!(lines.iter().any(|l| l == expected), "`{expected}` missing from:\n{stdout}");
    }
    assert!(stdout.contains("policy.yaml"), "{stdout}");
}

/// Bad configs, each with what stderr must name besides the file.
fn bad_configs(dir: &Path) -> Vec<(PathBuf, Vec<&'static str>)> {
    let unknown_key = write(
        dir,
        "unknown-key.yaml",
        r#"
server: { listen: 127.0.0.1:7000, lisen: 127.0.0.1:7001 }
upstreams:
  app: { url: "http://127.0.0.1:1" }
routes:
  - { prefix: /api/app, upstream: app, rules: [{ path: /health, public: true }] }
"#,
    );
    let unknown_rule_key = write(
        dir,
        "unknown-rule-key.yaml",
        r#"
upstreams:
  app: { url: "http://127.0.0.1:1" }
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - { path: /health, pubic: true }
"#,
    );
    let unknown_upstream = write(
        dir,
        "unknown-upstream.yaml",
        r#"
upstreams:
  app: { url: "http://127.0.0.1:1" }
  billing: { url: "http://127.0.0.1:2" }
routes:
  - { prefix: /api/app, upstream: app, rules: [{ path: /health, public: true }] }
  - { prefix: /api/cat, upstream: catalog, rules: [{ path: /health, public: true }] }
"#,
    );
    vec![
        (unknown_key, vec!["server", "unknown field `lisen`", "expected one of", "`listen`", "line 2"]),
        (unknown_rule_key, vec!["routes[0].rules[0]", "unknown field `pubic`", "expected one of", "`public`"]),
        (unknown_upstream, vec!["routes[1].upstream", "unknown upstream `catalog`", "expected one of: app, billing"]),
    ]
}

#[tokio::test]
async fn check_refuses_a_bad_config_naming_file_key_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    for (path, expected) in bad_configs(dir.path()) {
        let (status, stdout, stderr) = run(&["check", "--config", path.to_str().unwrap()]).await;
        assert_eq!(status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(stderr.contains(&path.display().to_string()), "the file is not named: {stderr}");
        for fragment in expected {
            assert!(stderr.contains(fragment), "`{fragment}` missing from: {stderr}");
        }
        assert!(!stdout.contains(": ok"), "{stdout}");
    }
}

#[tokio::test]
async fn check_loads_the_rbac_example_and_refuses_a_bad_rbac_line_naming_file_and_line() {
    let config = manifest_dir().join("config/rbac.yaml");
    let (status, stdout, stderr) = run(&["check", "--config", config.to_str().unwrap()]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("rbac_rules=9 conditional_policies=2"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let gateway = std::fs::read_to_string(&config).unwrap();
    let gateway = write(dir.path(), "rbac.yaml", &gateway);
    std::fs::create_dir(dir.path().join("rbac")).unwrap();
    write(dir.path(), "rbac/policy.yaml", "rbac_csv_file: rbac-policy.csv\n");
    let csv = write(
        dir.path(),
        "rbac/rbac-policy.csv",
        "g, group:default/a, role:default/a\np, role:default/a, catalog.entity.read, read, alow\n",
    );
    let (status, _, stderr) = run(&["check", "--config", gateway.to_str().unwrap()]).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    let expected = format!("{}: line 2: unknown effect `alow` (expected `allow` or `deny`)", csv.display());
    assert!(stderr.contains(&expected), "`{expected}` missing from: {stderr}");
}

// ---------------------------------------------------------------- serve

fn serve_yaml(listen: SocketAddr, backend: &Backend, things: &str) -> String {
    format!(
        r#"
server: {{ listen: "{listen}", shutdown_grace: 2s, worker_threads: 1 }}
identity:
  issuers:
    - {{ name: local, secret_env: {SECRET_VAR}, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{backend}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: /health, public: true }}
      - {{ methods: [GET], path: /things, {things} }}
policy: allow-all
"#,
        backend = backend.url()
    )
}

/// `stagedoor serve`, with the secret in the child's environment only.
fn serve_command(config: &Path) -> Command {
    let mut command = stagedoor(&["serve", "--config", config.to_str().unwrap()]);
    command.env(SECRET_VAR, SECRET);
    command
}

#[tokio::test]
async fn serve_refuses_a_bad_config_with_exit_2_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::spawn(Behaviour::Echo).await;
    let mut configs = bad_configs(dir.path());
    // A problem found after parsing (a key source) must also be found before binding.
    let listen = free_addr();
    let missing_env =
        serve_yaml(listen, &backend, "authenticated: true").replace(SECRET_VAR, "STAGEDOOR_CLI_UNSET_VAR");
    configs.push((write(dir.path(), "missing-env.yaml", &missing_env), vec!["STAGEDOOR_CLI_UNSET_VAR", "not set"]));

    for (path, expected) in configs {
        // Point every config at a port we hold, so a gateway that bound before validating
        // would fail with "cannot listen" (exit 1) instead.
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let held_addr = held.local_addr().unwrap().to_string();
        let yaml = std::fs::read_to_string(&path).unwrap();
        let yaml = if yaml.contains("server:") {
            yaml.replace("127.0.0.1:7000", &held_addr).replace(&listen.to_string(), &held_addr)
        } else {
            format!("server: {{ listen: \"{held_addr}\" }}\n{yaml}")
        };
        std::fs::write(&path, yaml).unwrap();
        let mut proc = Proc::spawn(serve_command(&path));
        let status = proc.wait(Duration::from_secs(20)).await;
        let stderr = proc.stderr();
        assert_eq!(status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(stderr.contains("invalid configuration"), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        for fragment in expected {
            assert!(stderr.contains(fragment), "`{fragment}` missing from: {stderr}");
        }
        assert!(!stderr.contains("cannot listen"), "bound before validating: {stderr}");
        drop(held);
        // With the port free: exit 2 again, and nothing is left listening on it.
        let mut proc = Proc::spawn(serve_command(&path));
        assert_eq!(proc.wait(Duration::from_secs(20)).await.code(), Some(2), "{}", proc.stderr());
        std::net::TcpListener::bind(&held_addr).expect("the listen port was taken");
    }

    // Control: a good config on a held port does fail to listen (exit 1), so the absence of
    // "cannot listen" above means the port was never tried.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let good = write(dir.path(), "good.yaml", &serve_yaml(held.local_addr().unwrap(), &backend, "public: true"));
    let mut proc = Proc::spawn(serve_command(&good));
    assert_eq!(proc.wait(Duration::from_secs(20)).await.code(), Some(1), "{}", proc.stderr());
    assert!(proc.stderr().contains("cannot listen"), "{}", proc.stderr());
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn serve_reloads_on_sighup_keeps_the_old_config_on_errors_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::spawn(Behaviour::Echo).await;
    let listen = free_addr();
    let config = write(dir.path(), "gateway.yaml", &serve_yaml(listen, &backend, "authenticated: true"));
    let mut proc = Proc::spawn(serve_command(&config));
    let url = format!("http://{listen}/api/app/things");
    let token = Signer::hs256(SECRET).sign(&claims("user:default/jane", &[]));

    let up =
        eventually(Duration::from_secs(20), || async { tokio::net::TcpStream::connect(listen).await.is_ok() }).await;
    assert!(up, "the gateway never listened on {listen}; stderr:\n{}", proc.stderr());

    // The first config: `/things` needs a token.
    let client = client();
    envelope(client.get(&url).send().await.unwrap(), 401, "AuthenticationError").await;
    assert_eq!(backend.hits(), 0);
    assert_eq!(client.get(&url).bearer_auth(&token).send().await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 1);
    assert_eq!(backend.last().headers["x-stagedoor-user"], "user:default/jane");

    // A broken file and SIGHUP: refused, the old config keeps serving.
    std::fs::write(&config, serve_yaml(listen, &backend, "public: true, pubic: true")).unwrap();
    proc.signal("HUP").await;
    let refused = eventually(Duration::from_secs(10), || async { proc.stderr().contains("reload refused") }).await;
    assert!(refused, "no refused reload logged:\n{}", proc.stderr());
    assert!(proc.stderr().contains("pubic"), "the log does not say why:\n{}", proc.stderr());
    assert!(proc.running(), "the gateway exited after a bad reload:\n{}", proc.stderr());
    envelope(client.get(&url).send().await.unwrap(), 401, "AuthenticationError").await;
    assert_eq!(backend.hits(), 1);
    assert_eq!(client.get(&url).bearer_auth(&token).send().await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 2);

    // A valid changed file and SIGHUP: `/things` becomes public.
    std::fs::write(&config, serve_yaml(listen, &backend, "public: true")).unwrap();
    proc.signal("HUP").await;
    let reloaded = eventually(Duration::from_secs(10), || async {
        client.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(reloaded, "the new config never took effect:\n{}", proc.stderr());
    assert_eq!(backend.hits(), 3);
    assert!(!backend.last().headers.contains_key("x-stagedoor-user"), "a public request has no user");
    // The log line follows the swap, so it may come a moment after the first new answer.
    let logged =
        eventually(Duration::from_secs(5), || async { proc.stderr().contains("configuration reloaded") }).await;
    assert!(logged, "{}", proc.stderr());
    drop(client);

    // SIGTERM: drains and exits 0.
    proc.signal("TERM").await;
    let status = proc.wait(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", proc.stderr());
    assert!(tokio::net::TcpStream::connect(listen).await.is_err(), "still listening after exit");
}

#[tokio::test]
async fn sighup_reads_the_included_files_again() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::spawn(Behaviour::Echo).await;
    let listen = free_addr();
    let included = |things: &str| {
        format!(
            "routes:\n  - prefix: /api/app\n    upstream: app\n    rules:\n      - {{ methods: [GET], path: /things, {things} }}\n"
        )
    };
    let yaml = serve_yaml(listen, &backend, "authenticated: true");
    // The config file keeps its own `/health`; `/things` moves to the included file.
    let (own, _) = yaml.split_once("      - { methods: [GET], path: /things").unwrap();
    write(dir.path(), "gateway.yaml", &format!("{own}include: [presets/app.yaml]\npolicy: allow-all\n"));
    std::fs::create_dir(dir.path().join("presets")).unwrap();
    // The same prefix in two files is fine while no rule is decided twice.
    let preset = write(dir.path(), "presets/app.yaml", &included("authenticated: true"));
    let mut proc = Proc::spawn(serve_command(&dir.path().join("gateway.yaml")));
    let url = format!("http://{listen}/api/app/things");
    let up =
        eventually(Duration::from_secs(20), || async { tokio::net::TcpStream::connect(listen).await.is_ok() }).await;
    assert!(up, "the gateway never listened on {listen}; stderr:\n{}", proc.stderr());
    let client = client();
    envelope(client.get(&url).send().await.unwrap(), 401, "AuthenticationError").await;
    assert_eq!(backend.hits(), 0);

    // Only the included file changes; SIGHUP: `/things` becomes public.
    std::fs::write(&preset, included("public: true")).unwrap();
    proc.signal("HUP").await;
    let reloaded = eventually(Duration::from_secs(10), || async {
        client.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(reloaded, "the edited included file never took effect:\n{}", proc.stderr());
    assert_eq!(backend.hits(), 1);

    // A broken included file: refused, naming it; the previous config keeps serving.
    std::fs::write(&preset, included("public: true, pubic: true")).unwrap();
    proc.signal("HUP").await;
    let refused = eventually(Duration::from_secs(10), || async { proc.stderr().contains("reload refused") }).await;
    assert!(refused, "no refused reload logged:\n{}", proc.stderr());
    assert!(proc.stderr().contains("presets/app.yaml"), "the log does not name the file:\n{}", proc.stderr());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    assert!(proc.running(), "{}", proc.stderr());
}

// ---------------------------------------------------------------- token

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("not a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn mint(args: &[&str]) -> String {
    let mut all = vec!["token", "--key", "tests/fixtures/ec-private.pem"];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run(&all).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let token = stdout.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");
    token
}

fn pem_gateway_yaml(backend: &Backend, public_key: &str) -> String {
    format!(
        r#"
identity:
  issuers:
    - {{ name: pem, keys: [{{ pem_file: "{key}" }}], algorithms: [ES256] }}
upstreams:
  app: {{ url: "{backend}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: "/{{*rest}}", authenticated: true }}
"#,
        key = fixture(public_key).display(),
        backend = backend.url()
    )
}

#[tokio::test]
async fn token_mints_a_token_the_gateway_accepts_with_the_matching_public_key() {
    let token = mint(&["--sub", "user:default/jane", "--ent", "group:default/a"]).await;
    let claims = payload(&token);
    assert_eq!(claims["sub"], "user:default/jane");
    assert_eq!(claims["ent"], serde_json::json!(["user:default/jane", "group:default/a"]));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600, "default ttl is 1h");
    assert!((claims["iat"].as_i64().unwrap() - now()).abs() < 60);

    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&pem_gateway_yaml(&backend, "ec-public.pem")).await;
    let response = client().get(gw.url("/api/app/things")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let seen = backend.last();
    assert_eq!(seen.headers["x-stagedoor-user"], "user:default/jane");
    assert_eq!(seen.headers["x-stagedoor-ownership"], "user:default/jane,group:default/a");

    // Control: a gateway trusting another key refuses it.
    let other = Gateway::start(&pem_gateway_yaml(&backend, "ec2-public.pem")).await;
    let response = client().get(other.url("/api/app/things")).bearer_auth(&token).send().await.unwrap();
    envelope(response, 401, "AuthenticationError").await;
    assert_eq!(backend.hits(), 1);

    // `--ttl` and several groups.
    let token = mint(&["--sub", "user:default/jane", "--ent", "group:default/a,group:default/b", "--ttl", "10m"]).await;
    let claims = payload(&token);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
    let response = client().get(gw.url("/api/app/things")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(backend.last().headers["x-stagedoor-ownership"], "user:default/jane,group:default/a,group:default/b");
}

#[tokio::test]
async fn token_with_an_unusable_key_exits_2() {
    let (status, stdout, stderr) =
        run(&["token", "--key", "tests/fixtures/no-such-key.pem", "--sub", "user:default/jane"]).await;
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("no-such-key.pem"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    // A public key is not a signing key.
    let (status, stdout, stderr) =
        run(&["token", "--key", "tests/fixtures/ec-public.pem", "--sub", "user:default/jane"]).await;
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("ec-public.pem"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}

// ---------------------------------------------------------------- demo

/// One printed example: what it shows, the status it promises, the command.
#[derive(Debug)]
struct Example {
    what: String,
    status: String,
    command: String,
}

fn parse_demo(lines: &[String]) -> (Vec<String>, Vec<Example>) {
    let exports: Vec<String> = lines.iter().filter(|l| l.starts_with("export ")).cloned().collect();
    let mut examples = Vec::new();
    let mut iter = lines.iter();
    while let Some(line) = iter.next() {
        let Some(comment) = line.strip_prefix("# ") else { continue };
        let (what, status) = comment.rsplit_once(" → ").unwrap_or_else(|| panic!("no status in `{line}`"));
        let command = iter.next().unwrap_or_else(|| panic!("no command after `{line}`"));
        assert!(command.starts_with("curl "), "`{command}` after `{line}` is not a curl line");
        examples.push(Example { what: what.to_owned(), status: status.trim().to_owned(), command: command.clone() });
    }
    (exports, examples)
}

/// Runs `command` with bash after the `export` lines; returns its stdout.
async fn bash(exports: &[String], command: &str) -> String {
    let script = format!("{}\n{command}", exports.join("\n"));
    let mut proc = Proc::spawn({
        let mut bash = Command::new("bash");
        bash.arg("-c").arg(&script);
        bash
    });
    let status = proc.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "`{command}` failed: {}", proc.stderr());
    proc.stdout()
}

#[tokio::test]
async fn demo_prints_curl_lines_that_answer_the_statuses_they_promise() {
    let config = manifest_dir().join("config/demo.yaml");
    let mut demo = Proc::spawn(stagedoor(&["demo", "--config", config.to_str().unwrap()]));
    let mut lines = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = demo.lines.recv().await {
            let done = line.starts_with("The backend echoes");
            lines.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(read, Ok(true)),
        "the demo did not print its instructions (ports 7000, 7007 and 7008 must be free)\nstdout:\n{}\nstderr:\n{}",
        lines.join("\n"),
        demo.stderr()
    );

    let (exports, examples) = parse_demo(&lines);
    assert_eq!(exports.len(), 3, "{lines:#?}");
    assert!(examples.len() >= 4, "{lines:#?}");
    for status in ["200", "401", "403", "404"] {
        assert!(examples.iter().any(|e| e.status == status), "no example answers {status}: {examples:#?}");
    }
    for example in &examples {
        let command = example.command.replacen("curl ", "curl -s -o /dev/null -w '%{http_code}' ", 1);
        let got = bash(&exports, &command).await;
        assert_eq!(got.trim(), example.status, "{} (`{}`)", example.what, example.command);
    }

    // A 200 example really went through the gateway to the sample backend, with an identity.
    let mallory = examples.iter().find(|e| e.what.starts_with("mallory reads an entity")).expect("mallory example");
    let body = bash(&exports, &mallory.command.replacen("curl -i ", "curl -s ", 1)).await;
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["x-stagedoor-user"], "user:default/mallory", "{body}");
    assert_eq!(body["path"], "/api/catalog/entities/by-name/component/default/payments", "{body}");
    assert!(demo.running(), "{}", demo.stderr());
}
