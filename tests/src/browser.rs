//! The browser tier's harness: `tests/browser/page.mjs` in Debian's headless Chromium, driven by
//! playwright-core from `tests/browser/node_modules` (`npm ci` there; Playwright never downloads
//! a browser), talked to over its standard input and output: it prints `ok …` lines and
//! `ready` when it waits for the test, and takes `joined NAME` on its input.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The environment variable naming the Chromium binary (default `/usr/bin/chromium`).
pub const CHROMIUM_ENV: &str = "MIDIHUB_CHROMIUM";

/// What the browser test needs, found.
#[derive(Debug)]
pub struct Browser {
    chromium: PathBuf,
    folder: PathBuf,
}

impl Browser {
    /// The browser test's tools, or what is missing and how to get it.
    pub fn find() -> Result<Self, String> {
        let chromium = std::env::var_os(CHROMIUM_ENV)
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        if !chromium.exists() {
            return Err(format!(
                "no Chromium at {} (apt-get install chromium, or set {CHROMIUM_ENV})",
                chromium.display()
            ));
        }
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
        let node_ok = std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        if !node_ok {
            return Err("no Node.js (node) on PATH".to_owned());
        }
        if !folder
            .join("node_modules/playwright-core/package.json")
            .exists()
        {
            return Err(format!(
                "playwright-core is not installed (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci in {})",
                folder.display()
            ));
        }
        Ok(Self { chromium, folder })
    }

    /// Starts `script` (in `tests/browser/`) with `args`.
    pub fn start(&self, script: &str, args: &[&str]) -> std::io::Result<BrowserRun> {
        let mut child = Command::new("node")
            .arg(self.folder.join(script))
            .args(args)
            .current_dir(&self.folder)
            .env(CHROMIUM_ENV, &self.chromium)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let missing = || std::io::Error::other("the browser test's pipes are missing");
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(missing)?).lines();
        Ok(BrowserRun {
            child,
            stdin,
            stdout,
            said: Vec::new(),
        })
    }
}

/// A running browser test.
pub struct BrowserRun {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every line it printed so far.
    said: Vec<String>,
}

impl BrowserRun {
    /// Waits up to `limit` for the line `wanted`; an error with what it said otherwise (its
    /// reasons for failing are on the standard error, which is the test's).
    pub async fn wait_for(&mut self, wanted: &str, limit: Duration) -> Result<(), String> {
        let waiting = async {
            while let Some(line) = self.stdout.next_line().await.map_err(|e| e.to_string())? {
                println!("browser: {line}");
                let found = line == wanted;
                self.said.push(line);
                if found {
                    return Ok(());
                }
            }
            Err(format!("it ended without saying {wanted:?}"))
        };
        match tokio::time::timeout(limit, waiting).await {
            Ok(result) => result,
            Err(_) => Err(format!("it did not say {wanted:?} within {limit:?}")),
        }
        .map_err(|why| format!("{why}; it said: {:?}", self.said))
    }

    /// Writes `line` to its input.
    pub async fn say(&mut self, line: &str) -> std::io::Result<()> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await
    }

    /// Waits up to `limit` for it to end; its exit status and every line it printed.
    pub async fn finish(mut self, limit: Duration) -> Result<(ExitStatus, Vec<String>), String> {
        let reading = async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                println!("browser: {line}");
                self.said.push(line);
            }
            self.child.wait().await.map_err(|e| e.to_string())
        };
        let status = tokio::time::timeout(limit, reading)
            .await
            .map_err(|_| format!("it did not end within {limit:?}"))??;
        Ok((status, self.said))
    }
}

/// The folder for a test's output files (screenshots): `test-output/NAME` in the target folder
/// the test binary was built in.
pub fn output_folder(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("test-output")
        .join(name)
}
