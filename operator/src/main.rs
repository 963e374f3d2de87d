//! The operator binary: configuration, logs, the health and metrics endpoint, the public page,
//! leader election and the controller, with a graceful shutdown on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use midihub_operator::children::{ChildrenConfig, DeviceAccess};
use midihub_operator::clock::SystemClock;
use midihub_operator::controller::{self, Backoff, Context};
use midihub_operator::error::OperatorError;
use midihub_operator::health::{self, WatchHealth};
use midihub_operator::leader::{self, LeaderElection};
use midihub_operator::metrics::Metrics;
use midihub_operator::{client, http, page};
use midihub_runtime::{LogFormat, LogOutput, endpoint, wait_for};

/// How hub containers reach the host's ALSA sequencer.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceAccessMode {
    /// Privileged containers (works everywhere; the default).
    Privileged,
    /// A device plugin grants /dev/snd as an extended resource; containers drop privilege.
    DevicePlugin,
}

/// The MidiHub operator: runs scheduled, scale-to-zero RTP-MIDI hubs.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Default image of the rtpmidid container (a hub may override it).
    #[arg(
        long,
        env = "MIDIHUB_RTPMIDID_IMAGE",
        default_value = "midihub/rtpmidid:26.01"
    )]
    rtpmidid_image: String,

    /// Default image of the hub-sidecar container (a hub may override it).
    #[arg(long, env = "MIDIHUB_SIDECAR_IMAGE", default_value = concat!("midihub/hub-sidecar:", env!("CARGO_PKG_VERSION")))]
    sidecar_image: String,

    /// How hub containers reach /dev/snd.
    #[arg(
        long,
        env = "MIDIHUB_DEVICE_ACCESS",
        value_enum,
        default_value = "privileged"
    )]
    device_access: DeviceAccessMode,

    /// With device-plugin access: the extended resource that grants /dev/snd.
    #[arg(long, env = "MIDIHUB_DEVICE_RESOURCE", default_value = "squat.ai/snd")]
    device_resource: String,

    /// With device-plugin access: the group that owns /dev/snd on the nodes (audio).
    #[arg(long, env = "MIDIHUB_AUDIO_GROUP", default_value_t = 29)]
    audio_group: i64,

    /// Address of the /healthz and /metrics endpoint.
    #[arg(long, env = "MIDIHUB_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,

    /// Address of the public page of the listed hubs and its JSON API, or `off` for none.
    /// Every replica serves it, from a watch of its own.
    #[arg(long, env = "MIDIHUB_PAGE_LISTEN", default_value = "0.0.0.0:8081")]
    page_listen: page::Listen,

    /// Elect a leader through a Lease, so that several replicas are safe.
    #[arg(long, env = "MIDIHUB_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "MIDIHUB_LEASE_NAME", default_value = "midihub-operator")]
    lease_name: String,

    /// Namespace of the leader-election Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    namespace: String,

    /// This replica's identity in leader election and Events (its pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,

    /// How long, in seconds, a watch of the API may fail before /healthz reports the operator
    /// unhealthy (so that its liveness probe restarts it); shorter outages, such as an API
    /// server restart, are ridden out.
    #[arg(long, env = "MIDIHUB_WATCH_GRACE_SECONDS", default_value_t = health::DEFAULT_GRACE.as_secs())]
    watch_grace_seconds: u64,

    /// How many hubs are reconciled at once (at least 1). More helps a large installation
    /// converge faster after many hubs change at once, within the API server's limits.
    #[arg(long, env = "MIDIHUB_RECONCILE_CONCURRENCY", default_value_t = controller::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,

    /// Log format (text is coloured only on a terminal, and never with NO_COLOR set).
    #[arg(long, env = "MIDIHUB_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    midihub_runtime::init_logs(args.log_format, LogOutput::Stdout);
    midihub_runtime::exit_code(run(args).await, "operator")
}

async fn run(args: Args) -> Result<(), OperatorError> {
    let client = client::infer().await.map_err(OperatorError::Client)?;
    let (_stop, stop) = midihub_runtime::stop_on_signal();

    let health = Arc::new(WatchHealth::new(Duration::from_secs(
        args.watch_grace_seconds,
    )));
    let (controller, stores) = controller::controller(&client, &health, args.concurrency);
    let metrics = Arc::new(Metrics::default().with_hubs(controller.store()));
    let listener = endpoint::bind(args.listen).await?;
    tracing::info!(address = %args.listen, "serving /healthz and /metrics");
    let server = tokio::spawn(endpoint::serve(
        listener,
        http::router(metrics.clone(), health.clone()),
        "health and metrics endpoint",
        wait_for(stop.clone(), true),
    ));

    let page_server = match args.page_listen {
        page::Listen::Off => {
            tracing::info!("the public page is off");
            None
        }
        page::Listen::On(address) => {
            let listener = endpoint::bind(address).await?;
            tracing::info!(%address, "serving the public page of the listed hubs");
            let (page, writer) = page::page(stop.clone());
            tokio::spawn(page::follow(
                client.clone(),
                health.clone(),
                writer,
                page.clone(),
            ));
            Some(tokio::spawn(endpoint::serve(
                listener,
                page::router(page),
                "public page",
                wait_for(stop.clone(), true),
            )))
        }
    };

    let device_access = match args.device_access {
        DeviceAccessMode::Privileged => DeviceAccess::Privileged,
        DeviceAccessMode::DevicePlugin => DeviceAccess::DevicePlugin {
            resource: args.device_resource,
            audio_group: args.audio_group,
        },
    };
    let context = Arc::new(Context::new(
        client.clone(),
        Arc::new(SystemClock),
        ChildrenConfig {
            rtpmidid_image: args.rtpmidid_image,
            sidecar_image: args.sidecar_image,
            device_access,
        },
        metrics,
        args.identity.clone(),
        Backoff::default(),
        stores,
    ));

    let result = if args.leader_election {
        let election = LeaderElection {
            lease_name: args.lease_name,
            namespace: args.namespace,
            identity: args.identity,
            lease_seconds: 15,
            renew_before_seconds: 5,
        };
        leader::run_as_leader(client, &election, stop.clone(), |lost_or_stopped| {
            controller::run(controller, context, lost_or_stopped)
        })
        .await
    } else {
        controller::run(controller, context, wait_for(stop.clone(), true)).await;
        Ok(())
    };
    let _ = server.await;
    if let Some(page_server) = page_server {
        let _ = page_server.await;
    }
    result
}
