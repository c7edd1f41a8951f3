//! Child processes with a deadline.
//!
//! Every command xtask starts goes through [`Cmd`]: it runs in its own process group, its
//! output is captured (and optionally echoed), and when its timeout passes the whole group is
//! killed and the result says so. [`Background`] is the same for long-running servers, killed
//! when the guard drops.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::sys;

/// The timeout of a child process unless its manifest entry sets `timeout_s`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// How much of a background process's stderr is kept.
const BACKGROUND_STDERR_CAP: usize = 64 * 1024;

/// A command line with its working directory, environment and timeout.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    argv: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    timeout: Duration,
    cpu: Option<usize>,
    echo_stderr: bool,
}

/// What a finished (or killed) command left behind.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// Exit status; `None` when it was killed on timeout.
    pub(crate) status: Option<ExitStatus>,
    /// Captured stdout.
    pub(crate) stdout: String,
    /// Captured stderr.
    pub(crate) stderr: String,
    /// Wall time.
    pub(crate) duration: Duration,
    /// The timeout that passed, if it did.
    pub(crate) timed_out: Option<Duration>,
}

impl Finished {
    /// Exited with status 0.
    pub(crate) fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// `exit status 101`, `timed out after 1200 s (killed)`, or `ok`.
    pub(crate) fn describe_status(&self) -> String {
        match (self.timed_out, self.status) {
            (Some(t), _) => format!("timed out after {} s (killed)", t.as_secs()),
            (None, Some(s)) if s.success() => "ok".into(),
            (None, Some(s)) => s.to_string(),
            (None, None) => "no exit status".into(),
        }
    }

    /// The last `n` non-empty lines of stderr, joined with ` | ` (for one-line reports).
    pub(crate) fn stderr_tail(&self, n: usize) -> String {
        tail_lines(&self.stderr, n).join(" | ")
    }
}

/// The last `n` non-empty lines of `text`.
pub(crate) fn tail_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

impl Cmd {
    /// `argv[0]` with arguments `argv[1..]`, run in `cwd`.
    pub(crate) fn new<I, S>(argv: I, cwd: &Path) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            cwd: cwd.to_path_buf(),
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            cpu: None,
            echo_stderr: false,
        }
    }

    /// Adds an environment variable.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Cmd {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets the timeout.
    pub(crate) fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// Sets the timeout from a manifest's optional `timeout_s`.
    pub(crate) fn timeout_s(self, timeout_s: Option<u64>) -> Cmd {
        self.timeout(timeout_s.map_or(DEFAULT_TIMEOUT, Duration::from_secs))
    }

    /// Pins the child to one CPU.
    pub(crate) fn pin_cpu(mut self, cpu: usize) -> Cmd {
        self.cpu = Some(cpu);
        self
    }

    /// Copies the child's stderr to ours as it arrives (builds, so progress is visible).
    pub(crate) fn echo_stderr(mut self) -> Cmd {
        self.echo_stderr = true;
        self
    }

    /// The arguments.
    pub(crate) fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The command as one would type it: `KEY=value prog arg 'arg with space'`.
    pub(crate) fn display(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .chain(self.argv.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self) -> Result<Command> {
        let (program, args) = self
            .argv
            .split_first()
            .context("empty command line (a manifest `run` list is empty?)")?;
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(&self.cwd).stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // Its own process group, so a timeout kills `cargo run` *and* what it started.
        cmd.process_group(0);
        sys::unblock_signals_in_child(&mut cmd);
        if let Some(cpu) = self.cpu {
            sys::pin_child_to_cpu(&mut cmd, cpu);
        }
        Ok(cmd)
    }

    /// Runs to completion or until the timeout, capturing output. Fails only when the command
    /// cannot be started at all.
    pub(crate) fn run(&self) -> Result<Finished> {
        let start = Instant::now();
        let mut child = self
            .command()?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}`", self.display()))?;
        let pgid = child.id();
        sys::register_group(pgid);
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = mpsc::channel();
        let mut readers = 0;
        if let Some(pipe) = child.stdout.take() {
            spawn_reader(
                pipe,
                Arc::clone(&stdout),
                false,
                usize::MAX,
                done_tx.clone(),
            );
            readers += 1;
        }
        if let Some(pipe) = child.stderr.take() {
            spawn_reader(
                pipe,
                Arc::clone(&stderr),
                self.echo_stderr,
                usize::MAX,
                done_tx.clone(),
            );
            readers += 1;
        }
        drop(done_tx);

        let deadline = start + self.timeout;
        let mut timed_out = None;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                sys::kill_process_group(pgid);
                timed_out = Some(self.timeout);
                let _ = child.wait();
                break None;
            }
            thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        let duration = start.elapsed();
        // Whatever the leader left running still holds the pipes: give it a moment, then end it.
        if !wait_readers(&done_rx, readers, Duration::from_secs(2)) {
            sys::kill_process_group(pgid);
            wait_readers(&done_rx, readers, Duration::from_secs(2));
        }
        sys::unregister_group(pgid);
        Ok(Finished {
            status,
            stdout: take_string(&stdout),
            stderr: take_string(&stderr),
            duration,
            timed_out,
        })
    }

    /// Starts the command in the background (stdout discarded, stderr tail kept); the returned
    /// guard kills its process group when dropped.
    pub(crate) fn spawn_background(&self) -> Result<Background> {
        let mut child = self
            .command()?
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}`", self.display()))?;
        sys::register_group(child.id());
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            let (tx, _rx) = mpsc::channel();
            spawn_reader(pipe, Arc::clone(&stderr), false, BACKGROUND_STDERR_CAP, tx);
        }
        Ok(Background {
            child,
            stderr,
            command: self.display(),
        })
    }
}

/// A running background process, killed (with its process group) on drop.
#[derive(Debug)]
pub(crate) struct Background {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    command: String,
}

impl Background {
    /// The command line it was started with.
    pub(crate) fn command(&self) -> &str {
        &self.command
    }

    /// `Some(status)` once it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines it wrote to stderr, joined for a one-line message.
    pub(crate) fn stderr_tail(&self, n: usize) -> String {
        let text = self
            .stderr
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        tail_lines(&text, n).join(" | ")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            sys::kill_process_group(self.child.id());
        }
        let _ = self.child.wait();
        sys::unregister_group(self.child.id());
    }
}

fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<u8>>>,
    echo: bool,
    cap: usize,
    done: mpsc::Sender<()>,
) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if echo {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                    }
                    if let Ok(mut sink) = sink.lock() {
                        sink.extend_from_slice(&buf[..n]);
                        if sink.len() > cap {
                            let excess = sink.len() - cap;
                            sink.drain(..excess);
                        }
                    }
                }
            }
        }
        let _ = done.send(());
    });
}

fn wait_readers(done: &mpsc::Receiver<()>, readers: usize, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    let mut finished = 0;
    while finished < readers {
        match done.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) => finished += 1,
            Err(mpsc::RecvTimeoutError::Disconnected) => return true,
            Err(mpsc::RecvTimeoutError::Timeout) => return false,
        }
    }
    true
}

fn take_string(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    buf.lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Quotes `s` for a POSIX shell when it needs it.
pub(crate) fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%{}".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let root = std::env::temp_dir();
        let out = Cmd::new(["sh", "-c", "echo out; echo err >&2; exit 3"], &root)
            .run()
            .expect("sh runs");
        assert_eq!(out.stdout.trim(), "out");
        assert_eq!(out.stderr.trim(), "err");
        assert!(!out.success());
        assert_eq!(out.status.and_then(|s| s.code()), Some(3));
        assert!(out.timed_out.is_none());
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let root = std::env::temp_dir();
        let start = Instant::now();
        // The grandchild `sleep` keeps stdout open; killing only `sh` would hang the reader.
        let out = Cmd::new(["sh", "-c", "sleep 30 & sleep 30; echo never"], &root)
            .timeout(Duration::from_millis(300))
            .run()
            .expect("sh runs");
        assert!(start.elapsed() < Duration::from_secs(10), "killed promptly");
        assert_eq!(out.timed_out, Some(Duration::from_millis(300)));
        assert!(!out.success());
        assert!(out.describe_status().contains("timed out"));
        assert!(!out.stdout.contains("never"));
    }

    #[test]
    fn missing_program_is_an_error_naming_it() {
        let err = Cmd::new(["definitely-not-a-program-zyphos"], &std::env::temp_dir())
            .run()
            .expect_err("cannot start");
        assert!(
            err.to_string().contains("definitely-not-a-program-zyphos"),
            "{err}"
        );
    }

    #[test]
    fn display_quotes_what_needs_quoting() {
        let cmd = Cmd::new(["cargo", "test", "--", "a b", "it's"], Path::new("/"))
            .env("ZYPHOS_QUICK", "1");
        assert_eq!(
            cmd.display(),
            r"ZYPHOS_QUICK=1 cargo test -- 'a b' 'it'\''s'"
        );
    }
}
