//! The client of rtpmidid control socket.
