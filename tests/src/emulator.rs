//! The function binaries as real Lambda processes: `cargo lambda watch --only-lambda-apis`
//! serves the Runtime and Invoke APIs, and the binary (built by cargo like any other) runs
//! against them as it would on AWS.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::stack::repo_root;

/// Name the emulator gives the function it serves in `--only-lambda-apis` mode.
pub const FUNCTION_NAME: &str = "_";

/// The directory holding the workspace's dev binaries: this binary's own, or for a test binary
/// (in `deps/`) its parent.
pub fn bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("binary has no directory")?;
    Ok(if dir.ends_with("deps") {
        dir.parent().context("deps/ has no parent")?.to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

/// The function binaries and `dj`. Tests and the demo always build them as one set: cargo
/// unifies features over the packages it is asked for, so a different set would compile the
/// AWS SDK crates again.
const BINARIES: [&str; 5] = ["ingest", "compact", "retention", "replay", "dj"];

/// Builds the binaries (dev profile, same target directory as the caller) and returns the paths
/// of the named ones.
pub fn build_binaries(packages: &[&str]) -> Result<Vec<PathBuf>> {
    if let Some(p) = packages.iter().find(|p| !BINARIES.contains(p)) {
        bail!("{p} is not one of the binaries {BINARIES:?}");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root()).args(["build", "--locked"]);
    for p in BINARIES {
        cmd.args(["-p", p]);
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of {BINARIES:?} failed: {status}");
    }
    let dir = bin_dir()?;
    Ok(packages.iter().map(|p| dir.join(p)).collect())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running runtime emulator and one function process attached to it. Both are killed on
/// drop.
pub struct Emulated {
    emulator: Child,
    function: Option<Child>,
    pub port: u16,
}

impl Emulated {
    /// Starts the emulator (cargo-lambda from the pinned venv) on a free port.
    pub fn start() -> Result<Self> {
        let venv = std::env::var_os("DJ_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv"));
        let cargo_lambda = venv.join("bin/cargo-lambda");
        if !cargo_lambda.exists() {
            bail!(
                "no cargo-lambda at {} — scripts/test.sh installs it into the venv",
                cargo_lambda.display()
            );
        }
        let port = free_port()?;
        let emulator = Command::new(&cargo_lambda)
            .current_dir(repo_root())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", cargo_lambda.display()))?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("runtime emulator did not listen on port {port} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(Self {
            emulator,
            function: None,
            port,
        })
    }

    /// The Invoke API endpoint (what `dj --endpoint-url` takes).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `binary` as the function, with `env` on top of this process's environment.
    pub fn run_function(&mut self, binary: &Path, env: &[(String, String)]) -> Result<()> {
        let child = Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.function = Some(child);
        Ok(())
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        if let Some(f) = &mut self.function {
            let _ = f.kill();
            let _ = f.wait();
        }
        let _ = self.emulator.kill();
        let _ = self.emulator.wait();
    }
}

/// A function process on its own emulator, and a Lambda client pointed at it.
pub struct Function {
    emulator: Emulated,
    pub lambda: aws_sdk_lambda::Client,
}

impl Function {
    pub fn start(
        binary: &Path,
        env: HashMap<String, String>,
        sdk_config: &aws_config::SdkConfig,
    ) -> Result<Self> {
        let mut emulator = Emulated::start()?;
        let env: Vec<(String, String)> = env.into_iter().collect();
        emulator.run_function(binary, &env)?;
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(sdk_config)
                .endpoint_url(emulator.endpoint())
                .build(),
        );
        Ok(Self { emulator, lambda })
    }

    /// The Invoke API endpoint (what `dj --endpoint-url` takes).
    pub fn endpoint(&self) -> String {
        self.emulator.endpoint()
    }

    /// Invokes with `payload`; `Ok(Err(message))` is a function error (which the emulator
    /// reports as an SDK error, and AWS as `FunctionError` with the message as payload).
    pub async fn invoke(&self, payload: &Value) -> Result<std::result::Result<Value, String>> {
        let sent = self
            .lambda
            .invoke()
            .function_name(FUNCTION_NAME)
            .payload(aws_smithy_types::Blob::new(serde_json::to_vec(payload)?))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                return Ok(Err(format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )))
            }
        };
        let body = out.payload().map(|p| p.as_ref()).unwrap_or_default();
        if out.function_error().is_some() {
            return Ok(Err(String::from_utf8_lossy(body).into_owned()));
        }
        Ok(Ok(serde_json::from_slice(body).with_context(|| {
            format!("answer {}", String::from_utf8_lossy(body))
        })?))
    }
}
