//! Drives the Node scripts of `tests/compat/` from Rust integration tests.
//!
//! Not compiled on its own (it is not a top-level `tests/*.rs` file). A test target uses it with
//!
//! ```ignore
//! #[path = "compat/node_harness.rs"]
//! mod node_harness;
//! use node_harness::{NodeEnv, NodeServer};
//!
//! #[test]
//! fn permission_client_against_gateway() {
//!     let Some(node) = NodeEnv::detect() else { return }; // prints "SKIP …" when Node is missing
//!     let mint = node.start("mint.js", &[]).unwrap();
//!     let token = mint.info["tokens"]["userJane"].as_str().unwrap();
//!     let out = node.run_json("client-smoke.js", &[], &[("STAGEDOOR_URL", gateway_url), ("STAGEDOOR_TOKEN", token)]).unwrap();
//!     assert_eq!(out["authorize"]["ok"], true);
//! }
//! ```
//!
//! Conventions of the scripts (see NOTES.md): 127.0.0.1 only, `PORT=0` → ephemeral port, ONE JSON
//! line `{"ready":true,"port":…,"url":…}` on stdout once listening (other non-JSON lines may come
//! first), logs on stderr, exit on SIGTERM or when stdin reaches EOF. One-shot scripts print one
//! JSON line and exit 0.
//!
//! Skipping: when `node` (>= 20) or `tests/compat/node_modules` is missing, `NodeEnv::detect()`
//! prints a SKIP line and returns `None`, unless `STAGEDOOR_REQUIRE_NODE=1`, in which case it
//! panics (use that in CI so a broken setup cannot pass silently). `STAGEDOOR_COMPAT_NPM_CI=1`
//! runs `npm ci` once per test process when node_modules is missing. `STAGEDOOR_NODE` overrides
//! the node binary.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where the compat scripts live.
pub fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

/// A usable Node installation plus an installed `tests/compat/node_modules`.
#[derive(Debug, Clone)]
pub struct NodeEnv {
    pub node: PathBuf,
    pub dir: PathBuf,
    pub version: String,
}

fn require() -> bool {
    std::env::var("STAGEDOOR_REQUIRE_NODE").is_ok_and(|v| v == "1" || v == "true")
}

fn skip(reason: &str) -> Option<NodeEnv> {
    assert!(!require(), "STAGEDOOR_REQUIRE_NODE=1 but {reason}");
    eprintln!("SKIP (node compat): {reason}");
    None
}

impl NodeEnv {
    /// `None` (after printing why) when the Node tier cannot run here.
    pub fn detect() -> Option<Self> {
        static DETECTED: OnceLock<Result<NodeEnv, String>> = OnceLock::new();
        match DETECTED.get_or_init(Self::detect_uncached) {
            Ok(env) => Some(env.clone()),
            Err(reason) => skip(reason),
        }
    }

    fn detect_uncached() -> Result<Self, String> {
        let node = PathBuf::from(std::env::var("STAGEDOOR_NODE").unwrap_or_else(|_| "node".into()));
        let out =
            Command::new(&node).arg("--version").output().map_err(|e| format!("cannot run {}: {e}", node.display()))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| format!("unparsable node version {version:?}"))?;
        if major < 20 {
            return Err(format!("node {version} is older than 20"));
        }
        let dir = compat_dir();
        if !dir.join("node_modules").is_dir() {
            let npm_ci = std::env::var("STAGEDOOR_COMPAT_NPM_CI").is_ok_and(|v| v == "1");
            if !npm_ci {
                return Err(format!(
                    "{} has no node_modules (run `npm ci` there, or set STAGEDOOR_COMPAT_NPM_CI=1)",
                    dir.display()
                ));
            }
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .map_err(|e| format!("cannot run npm: {e}"))?;
            if !status.success() {
                return Err(format!("npm ci failed in {}: {status}", dir.display()));
            }
        }
        Ok(Self { node, dir, version })
    }

    /// Start a long-running script (relative to `tests/compat/`) with `PORT=0` and wait for its ready line.
    pub fn start(&self, script: &str, env: &[(&str, &str)]) -> Result<NodeServer, String> {
        self.start_in(&self.dir, script, env)
    }

    /// Like `start`, with another working directory (e.g. `compat_dir().join("real-backend")`).
    pub fn start_in(&self, cwd: &Path, script: &str, env: &[(&str, &str)]) -> Result<NodeServer, String> {
        let mut cmd = Command::new(&self.node);
        cmd.arg(script)
            .current_dir(cwd)
            .env("PORT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn {script}: {e}"))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().expect("piped stderr"), Arc::clone(&stderr));

        // Read stdout on a thread: the ready line goes through the channel, the rest is drained.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<Value>();
        thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v.get("ready") == Some(&Value::Bool(true))
                {
                    let _ = tx.send(v);
                    sent = true;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut server = NodeServer { child, stdin, info: Value::Null, stderr, script: script.to_string() };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(info) => {
                    server.info = info;
                    return Ok(server);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        return Err(format!("{script} exited before ready ({status}): {}", server.stderr()));
                    }
                    if Instant::now() > deadline {
                        return Err(format!("{script}: no ready line within 60 s: {}", server.stderr()));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = server.child.wait();
                    return Err(format!("{script} closed stdout before ready: {}", server.stderr()));
                }
            }
        }
    }

    /// Run a one-shot script (e.g. `client-smoke.js`) and parse the last stdout line as JSON.
    pub fn run_json(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Value, String> {
        let mut cmd = Command::new(&self.node);
        cmd.arg(script).args(args).current_dir(&self.dir).stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().map_err(|e| format!("spawn {script}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{script} failed ({}): {}\n{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        serde_json::from_str(last).map_err(|e| format!("{script}: bad JSON output ({e}): {stdout}"))
    }
}

fn drain(mut r: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut s = into.lock().unwrap();
            s.push_str(&String::from_utf8_lossy(&buf[..n]));
            // keep the tail only
            if s.len() > 64 * 1024 {
                let cut = s.len() - 32 * 1024;
                let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
                s.drain(..cut);
            }
        }
    });
}

/// A running helper server; stopped (stdin closed, then killed) on drop.
#[derive(Debug)]
pub struct NodeServer {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The parsed ready line: `port`, `url`, plus script-specific fields (`tokens`, `baseUrl`, …).
    pub info: Value,
    stderr: Arc<Mutex<String>>,
    script: String,
}

impl NodeServer {
    pub fn url(&self) -> &str {
        self.info["url"].as_str().unwrap_or_default()
    }
    pub fn port(&self) -> u16 {
        self.info["port"].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or_default()
    }
    /// What the script logged so far (tail), for assertion messages.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF on stdin → the script closes its server and exits
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
