//! rtpmidid's control socket: the client and the `status` reply.

pub mod control;
pub mod status;
