//! The loop a thread that owns an ALSA sequencer handle runs: block in `poll()` on the
//! sequencer's descriptors plus the read end of a wake-up socket, then serve the commands the
//! rest of the program queued and read what the kernel delivered. Shared by the wiring client
//! ([`crate::sequencer`]) and the stuck-note guard ([`crate::guard`]), each with its own handle
//! and thread.

use std::ffi::CString;
use std::io::{ErrorKind, Read, Write};
use std::ops::ControlFlow;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

use alsa::PollDescriptors;
use alsa::poll::pollfd;
use alsa::seq::Seq;

use crate::sequencer::SequencerError;

/// Events the kernel keeps for a client of ours before it drops some: 2000, the kernel's
/// maximum (the default is 200). The guard's input carries every note of every room, and must
/// not overflow while its thread sends a release; the wiring client's carries the
/// announcement of every port and subscription (16 participants joining at once make over 250).
pub(crate) const INPUT_POOL: u32 = 2000;

/// Opens a non-blocking sequencer client named `own_name` with the input pool of
/// [`INPUT_POOL`] events: what both of our clients (the wiring's and the guard's) start with.
pub(crate) fn open_client(own_name: &str) -> Result<Seq, SequencerError> {
    let c_name = CString::new(own_name)
        .map_err(|_| SequencerError::InvalidClientName(own_name.to_owned()))?;
    let seq = Seq::open(None, None, true).map_err(|error| SequencerError::Open { error })?;
    let setup = |step: &'static str| move |error| SequencerError::Setup { step, error };
    seq.set_client_name(&c_name)
        .map_err(setup("set the client name"))?;
    seq.set_client_pool_input(INPUT_POOL)
        .map_err(setup("raise the client's input pool"))?;
    Ok(seq)
}

/// The writing end of a thread's wake-up socket: a byte written here wakes it out of `poll()`.
pub(crate) struct Waker(UnixStream);

/// The reading end, polled by the thread.
pub(crate) struct WakeReader(UnixStream);

/// A non-blocking socket pair to wake a sequencer thread with.
pub(crate) fn wake_socket() -> std::io::Result<(Waker, WakeReader)> {
    let (writer, reader) = UnixStream::pair()?;
    for end in [&writer, &reader] {
        end.set_nonblocking(true)?;
    }
    Ok((Waker(writer), WakeReader(reader)))
}

impl Waker {
    pub(crate) fn wake(&self) {
        match (&self.0).write(&[1]) {
            // A full socket buffer means a wake-up is already pending: enough.
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            // The thread has gone; the caller finds out from the closed channels.
            Err(error) => tracing::debug!(%error, "cannot wake the sequencer thread"),
        }
    }
}

/// Whether an ALSA call failed only because nothing is ready (EAGAIN on a non-blocking handle).
pub(crate) fn would_block(error: &alsa::Error) -> bool {
    errno_kind(error) == ErrorKind::WouldBlock
}

/// The kind of an ALSA error's errno (alsa reports some errnos negated).
pub(crate) fn errno_kind(error: &alsa::Error) -> ErrorKind {
    std::io::Error::from_raw_os_error(error.errno().abs()).kind()
}

/// Waits for the kernel or a command, handles them, repeats. `on_command` is called for each
/// queued command and stops the loop by returning `Break`; `on_input` is called whenever the
/// sequencer has input (and after commands) and should read everything pending without
/// blocking. Returns when a command says so, the command channel or the wake-up socket is
/// closed (the handle was dropped), or `poll()` fails fatally (logged, naming `thread`).
pub(crate) fn serve<C>(
    thread: &str,
    seq: &Seq,
    mut wake_reader: WakeReader,
    commands: &mpsc::Receiver<C>,
    mut on_command: impl FnMut(C) -> ControlFlow<()>,
    mut on_input: impl FnMut(),
) {
    let sequencer_fds = match (seq, Some(alsa::Direction::Capture)).get() {
        Ok(fds) => fds,
        Err(error) => {
            tracing::error!(%error, thread, "cannot get the sequencer's poll descriptors; the thread stops");
            return;
        }
    };
    let wake_fd = pollfd {
        fd: wake_reader.0.as_raw_fd(),
        events: alsa::poll::Flags::IN.bits(),
        revents: 0,
    };
    loop {
        let mut fds = sequencer_fds.clone();
        fds.push(wake_fd);
        if let Err(error) = alsa::poll::poll(&mut fds, -1) {
            if errno_kind(&error) == ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(%error, thread, "poll on the sequencer failed; the thread stops");
            return;
        }
        let sequencer_revents = (seq, Some(alsa::Direction::Capture))
            .revents(&fds[..sequencer_fds.len()])
            .unwrap_or(alsa::poll::Flags::ERR);
        if sequencer_revents
            .intersects(alsa::poll::Flags::ERR | alsa::poll::Flags::HUP | alsa::poll::Flags::NVAL)
        {
            // A broken descriptor would wake poll() forever: stopping is the honest outcome.
            tracing::error!(
                ?sequencer_revents,
                thread,
                "the sequencer descriptor failed; the thread stops"
            );
            return;
        }
        if !drain_wake_socket(&mut wake_reader) {
            tracing::debug!(thread, "wake-up socket closed; the thread stops");
            return;
        }
        loop {
            match commands.try_recv() {
                Ok(command) => {
                    if on_command(command).is_break() {
                        tracing::debug!(thread, "the thread stops");
                        return;
                    }
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    tracing::debug!(thread, "the thread stops");
                    return;
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        on_input();
    }
}

/// Empties the wake-up socket; false when its other end has been closed.
fn drain_wake_socket(wake_reader: &mut WakeReader) -> bool {
    let mut buffer = [0_u8; 64];
    loop {
        match wake_reader.0.read(&mut buffer) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::warn!(%error, "cannot read the wake-up socket");
                return true;
            }
        }
    }
}
