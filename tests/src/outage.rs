//! A TCP proxy in front of the fake API server that plays an API server restart for the client
//! behind it:
//!
//! - [`OutageProxy::stop`]: the server is gone. Every open connection is closed, watches
//!   included, and every new one is closed at once.
//! - [`OutageProxy::start_without_answering`]: the server is starting. It accepts connections
//!   and reads nothing and answers nothing, as a starting kube-apiserver was seen to do; such a
//!   connection stays silent even after the server is back (until the next stop).
//! - [`OutageProxy::serve`]: the server is back. New connections reach the fake again.
//!
//! The fake's store lives on through the outage, as etcd does through an API server restart.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Serving,
    Stopped,
    Silent,
}

/// A proxy to the fake API server that can stop and restart: see the [module documentation](self).
///
/// Dropping it closes every connection through it.
pub struct OutageProxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl OutageProxy {
    /// Starts a serving proxy on 127.0.0.1 with a free port, forwarding to `upstream` (the fake
    /// API server's [`address`](crate::FakeApiServer::address)).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Serving);
        let task = tokio::spawn(accept(listener, upstream, mode.clone()));
        Ok(Self {
            address,
            mode,
            task,
        })
    }

    /// The URL a client should use, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The server goes away: every connection is closed, and new ones are closed at once.
    pub fn stop(&self) {
        self.mode.send_replace(Mode::Stopped);
    }

    /// The server is starting: new connections are accepted and never answered.
    pub fn start_without_answering(&self) {
        self.mode.send_replace(Mode::Silent);
    }

    /// The server is ready: new connections reach the fake API server.
    pub fn serve(&self) {
        self.mode.send_replace(Mode::Serving);
    }
}

impl Drop for OutageProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; the connections live in a `JoinSet` owned by this task,
/// so aborting it closes them all.
async fn accept(listener: TcpListener, upstream: SocketAddr, mode: watch::Sender<Mode>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((inbound, _)) = accepted {
                    connections.spawn(relay(inbound, upstream, mode.subscribe()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn relay(mut inbound: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let stopped = |mode: &Mode| *mode == Mode::Stopped;
    let current = *mode.borrow_and_update();
    match current {
        Mode::Stopped => {}
        Mode::Silent => {
            let _ = mode.wait_for(stopped).await;
        }
        Mode::Serving => {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = mode.wait_for(stopped) => {}
            }
        }
    }
    // Dropping the streams closes the connection.
}
