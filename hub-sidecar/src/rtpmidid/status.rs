//! rtpmidid `status` reply.
