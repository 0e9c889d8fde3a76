//! Starts the real `logbridge` binary for integration tests and waits for its ready line.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub kafka: String,
    pub http: String,
    pub beats: String,
    pub data_dir: PathBuf,
}

impl Server {
    /// Starts `logbridge serve` on ephemeral ports with `data_dir`, plus extra args.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_logbridge"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--kafka-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--beats-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            // The repository's ./pipelines must not run inside every test server.
            .args(if extra.contains(&"--pipelines") {
                vec![]
            } else {
                vec!["--pipelines".into(), data_dir.join("no-pipelines")]
            })
            .env(
                "RUST_LOG",
                std::env::var("LOGBRIDGE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start logbridge");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if line.starts_with("logbridge ready") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("logbridge did not report ready");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")).map(str::to_string))
                .expect("address in ready line")
        };
        Server {
            child,
            kafka: field("kafka"),
            http: field("http"),
            beats: field("beats"),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc_kill(pid, 15) };
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "logbridge exited with {status}");
    }

    /// SIGKILL: an unclean stop.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }

    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.http).expect("connect http");
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let status = buf
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub fn logbridge_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logbridge"))
}
