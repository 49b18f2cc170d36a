//! Agent WebSockets at `/ws/{agent}`.
//!
//! Unknown agent: refused with a 404 and a JSON detail *before* the upgrade (the original
//! accepted and then closed with 4004, which browsers and most clients reported as a bare
//! failure); a client sees an HTTP 404 handshake failure naming the agent.
//!
//! Each connection runs three tasks: the *reader* (this handler) answers client frames, the
//! *pusher* leases messages from the agent's inbox with `Engine::lease_wait` and pushes them,
//! and the *writer* owns the socket's sending half. Credit: at most `max_in_flight` pushed
//! messages are unacknowledged at once; the pusher leases only as many as there is credit for.
//! When the socket ends, every lease it still holds is given back to the inbox (nack, no delay).

mod connection;
mod frames;
mod sockets;

pub use connection::{__path_handler, handler};
pub use sockets::Sockets;
