//! The local control plane of `scripts/control-plane` (a real etcd, kube-apiserver,
//! kube-controller-manager and kube-scheduler, with kwok simulating nodes), as the tests of the
//! control-plane tier use it: clients with the admin's or a ServiceAccount's credentials, the
//! operator process, component restarts, `kubectl`, and who wrote what (the audit log).
//!
//! The tier starts the plane and the operator (`scripts/control-plane up`, then
//! `scripts/control-plane operator BINARY`) and names the plane's folder in
//! `MIDIHUB_CONTROL_PLANE`; [`Plane::from_env`] is `None` without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// The environment variable naming the running plane's folder.
pub const PLANE_ENV: &str = "MIDIHUB_CONTROL_PLANE";

/// Errors of the harness; tests turn them into failures with the message.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error("cannot read the plane's kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("cannot make an API client: {0}")]
    Client(#[from] kube::Error),
    #[error("cannot use the kubeconfig: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("cannot write the kubeconfig {path}: {source}")]
    WriteKubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the audit log {path} (was the plane started with --audit?): {source}")]
    Audit {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running local control plane.
#[derive(Clone, Debug)]
pub struct Plane {
    dir: PathBuf,
    port: u16,
    repo: PathBuf,
}

impl Plane {
    /// The plane named by `MIDIHUB_CONTROL_PLANE`, if any.
    pub fn from_env() -> Option<Self> {
        let dir = PathBuf::from(std::env::var_os(PLANE_ENV)?);
        let kubeconfig = std::fs::read_to_string(dir.join("kubeconfig")).ok()?;
        let port = kubeconfig
            .lines()
            .find_map(|line| line.trim().strip_prefix("server: https://127.0.0.1:"))?
            .trim()
            .parse()
            .ok()?;
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()?
            .to_path_buf();
        Some(Self { dir, port, repo })
    }

    /// The plane in `dir` whose API server listens on `port`, run by `repo`'s
    /// `scripts/control-plane` (a benchmark starts planes of its own, for other checkouts too).
    pub fn at(dir: PathBuf, port: u16, repo: PathBuf) -> Self {
        Self { dir, port, repo }
    }

    /// The API server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The operator's /healthz and /metrics endpoint (see `scripts/control-plane`).
    pub fn operator_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port + 6)
    }

    /// The operator's public page of the listed hubs (see `scripts/control-plane`).
    pub fn page_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port + 7)
    }

    /// The admin's kubeconfig (system:masters).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The repository's root.
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// A file in the plane's folder (logs, credentials).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A client with the admin's credentials.
    pub async fn admin(&self) -> Result<Client, PlaneError> {
        let path = self.kubeconfig();
        let kubeconfig = Kubeconfig::read_from(&path)
            .map_err(|source| PlaneError::Kubeconfig { path, source })?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// A client whose only credential is `token` (e.g. a ServiceAccount's).
    pub async fn client_with_token(&self, token: &str) -> Result<Client, PlaneError> {
        let kubeconfig = self.admin_kubeconfig_with_token(token)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// Writes to `path` a kubeconfig for this plane whose only credential is `token`, for a
    /// process of its own (e.g. the sidecar with its ServiceAccount's token). It is written as
    /// JSON, which every YAML reader takes.
    pub fn kubeconfig_with_token(&self, token: &str, path: &Path) -> Result<(), PlaneError> {
        let kubeconfig = self.admin_kubeconfig_with_token(token)?;
        let text = serde_json::to_string_pretty(&kubeconfig).map_err(|error| {
            PlaneError::WriteKubeconfig {
                path: path.to_path_buf(),
                source: error.into(),
            }
        })?;
        std::fs::write(path, text).map_err(|source| PlaneError::WriteKubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The admin's kubeconfig with `token` in place of the admin's credential.
    fn admin_kubeconfig_with_token(&self, token: &str) -> Result<Kubeconfig, PlaneError> {
        let path = self.kubeconfig();
        let mut kubeconfig = Kubeconfig::read_from(&path)
            .map_err(|source| PlaneError::Kubeconfig { path, source })?;
        for user in &mut kubeconfig.auth_infos {
            if let Some(auth) = user.auth_info.as_mut() {
                auth.token = Some(token.to_string().into());
            }
        }
        Ok(kubeconfig)
    }

    /// A token of ServiceAccount `name` in `namespace`, by TokenRequest, valid for an hour.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, PlaneError> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin().await?, namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let answer = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await?;
        Ok(answer.status.map(|status| status.token).unwrap_or_default())
    }

    /// Runs `scripts/control-plane` for this plane with `args`.
    pub fn script(&self, args: &[&str]) -> Result<String, PlaneError> {
        let mut command = Command::new(self.repo.join("scripts/control-plane"));
        command
            .arg("--dir")
            .arg(&self.dir)
            .arg("--port")
            .arg(self.port.to_string())
            .args(args);
        run(command)
    }

    /// Stops `component` (e.g. `kube-apiserver`), waits `pause`, starts it again and returns
    /// once it is ready.
    pub fn restart(&self, component: &str, pause: Duration) -> Result<(), PlaneError> {
        self.script(&["restart", component, &pause.as_secs().to_string()])
            .map(drop)
    }

    /// The operator binary of this checkout: `MIDIHUB_OPERATOR_BIN`, else the one cargo built
    /// beside the running test binary.
    pub fn operator_binary() -> PathBuf {
        if let Some(binary) = std::env::var_os("MIDIHUB_OPERATOR_BIN") {
            return binary.into();
        }
        std::env::current_exe()
            .ok()
            .and_then(|test| Some(test.parent()?.parent()?.join("midihub-operator")))
            .unwrap_or_else(|| PathBuf::from("midihub-operator"))
    }

    /// (Re)starts the operator as a process with the chart's ServiceAccount's credentials.
    pub fn start_operator(&self, extra_args: &[&str]) -> Result<(), PlaneError> {
        let binary = Self::operator_binary();
        let mut args = vec!["operator", binary.to_str().unwrap_or_default()];
        args.extend_from_slice(extra_args);
        self.script(&args).map(drop)
    }

    /// The operator process's pid, while it runs.
    pub fn operator_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir.join("pids/midihub-operator.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// Kills the operator with SIGKILL: no graceful shutdown, no lease handed back.
    pub fn kill_operator(&self) -> Result<(), PlaneError> {
        if let Some(pid) = self.operator_pid() {
            let mut command = Command::new("kill");
            command.args(["-KILL", &pid.to_string()]);
            run(command)?;
            // Gone, or a zombie its parent has not reaped yet: either way it no longer runs.
            while std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|status| !status.contains("State:\tZ"))
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Runs `kubectl` (`MIDIHUB_KUBECTL`, else the one on PATH) with the admin's kubeconfig;
    /// its standard output.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, PlaneError> {
        let kubectl = std::env::var_os("MIDIHUB_KUBECTL").unwrap_or_else(|| "kubectl".into());
        let mut command = Command::new(kubectl);
        command
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args);
        run(command)
    }
}

/// The operator's identity on the plane: the chart's ServiceAccount (see
/// `scripts/control-plane operator`).
pub const OPERATOR_USER: &str = "system:serviceaccount:midihub-system:midihub";

impl Plane {
    /// Where the plane's audit log (`up --audit`) ends now: count requests from there on.
    pub fn audit_mark(&self) -> u64 {
        std::fs::metadata(self.dir.join("audit.log")).map_or(0, |meta| meta.len())
    }

    /// The writes (create, update, patch, delete) that `user` made in `namespace` since `mark`,
    /// by resource (`deployments`, `midihubs/status`, …), read from the audit log: unlike the
    /// API server's counters, it says who made each request.
    pub fn writes_since(
        &self,
        mark: u64,
        user: &str,
        namespace: &str,
    ) -> Result<BTreeMap<String, u64>, PlaneError> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.dir.join("audit.log");
        let mut file = std::fs::File::open(&path).map_err(|source| PlaneError::Audit {
            path: path.clone(),
            source,
        })?;
        let mut text = String::new();
        file.seek(SeekFrom::Start(mark))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(|source| PlaneError::Audit { path, source })?;
        Ok(count_writes(&text, user, namespace))
    }
}

/// Whether an audit event's verb changes what the API server holds.
pub fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// Writes by `user` in `namespace` in audit log lines (JSON, one event per line), by resource
/// and subresource; each request once (its `ResponseComplete` stage).
pub fn count_writes(audit_lines: &str, user: &str, namespace: &str) -> BTreeMap<String, u64> {
    let mut writes = BTreeMap::new();
    for line in audit_lines.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_write = event["verb"].as_str().is_some_and(is_write);
        let object = &event["objectRef"];
        if !is_write
            || event["stage"] != "ResponseComplete"
            || event["user"]["username"] != user
            || object["namespace"] != namespace
        {
            continue;
        }
        let mut resource = object["resource"].as_str().unwrap_or_default().to_string();
        if let Some(subresource) = object["subresource"].as_str() {
            resource = format!("{resource}/{subresource}");
        }
        *writes.entry(resource).or_insert(0) += 1;
    }
    writes
}

fn run(mut command: Command) -> Result<String, PlaneError> {
    let display = format!("{command:?}");
    let output = command.output().map_err(|source| PlaneError::Spawn {
        command: display.clone(),
        source,
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(PlaneError::Command {
            command: display,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_counted_per_resource_for_one_user_and_namespace_once_per_request() {
        let user = OPERATOR_USER;
        let lines = [
            format!(r#"{{"stage":"ResponseComplete","verb":"patch","user":{{"username":"{user}"}},"objectRef":{{"resource":"deployments","namespace":"hubs"}}}}"#),
            format!(r#"{{"stage":"ResponseComplete","verb":"patch","user":{{"username":"{user}"}},"objectRef":{{"resource":"roles","namespace":"elsewhere"}}}}"#),
            format!(r#"{{"stage":"ResponseStarted","verb":"watch","user":{{"username":"{user}"}},"objectRef":{{"resource":"deployments"}}}}"#),
            format!(r#"{{"stage":"ResponseComplete","verb":"get","user":{{"username":"{user}"}},"objectRef":{{"resource":"deployments"}}}}"#),
            format!(r#"{{"stage":"ResponseComplete","verb":"patch","user":{{"username":"{user}"}},"objectRef":{{"resource":"midihubs","subresource":"status","namespace":"hubs"}}}}"#),
            r#"{"stage":"ResponseComplete","verb":"delete","user":{"username":"system:kube-controller-manager"},"objectRef":{"resource":"deployments","namespace":"hubs"}}"#.to_string(),
            "not json".to_string(),
        ]
        .join("\n");
        let writes = count_writes(&lines, user, "hubs");
        assert_eq!(
            writes,
            BTreeMap::from([
                ("deployments".to_string(), 1),
                ("midihubs/status".to_string(), 1)
            ])
        );
    }
}
