//! Every limit the server enforces at its edge, named with its unit last. Limits that an
//! operator may want to change are also flags (see [`crate::config`]); these are the defaults.

use std::time::Duration;

/// Largest request body accepted, in bytes; larger bodies get a 413 with a JSON detail.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Longest time one HTTP request may take before it is answered with a 503. Long polls wait at
/// most [`WAIT_SECONDS_MAX`], so this leaves them room.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most HTTP requests handled at once; further requests wait for a slot.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 2048;
/// Most open TCP connections (HTTP and WebSocket together); further connections wait in the
/// kernel's accept queue.
pub const CONNECTIONS_MAX: usize = 8192;
/// Longest long poll a consumer may ask for, in seconds.
pub const WAIT_SECONDS_MAX: u64 = 20;
/// Most messages one lease request may return.
pub const LEASE_MESSAGES_MAX: usize = 1000;
/// Lease length used when a consumer does not name one, in seconds (as the engine default).
pub const LEASE_SECONDS_DEFAULT: u64 = 300;
/// Longest lease a consumer may ask for, in seconds (12 hours, the engine's limit).
pub const LEASE_SECONDS_MAX: u64 = 12 * 60 * 60;
/// Longest delivery delay, in seconds (30 days, the engine's limit).
pub const DELAY_SECONDS_MAX: u64 = 30 * 24 * 60 * 60;
/// Longest message lifetime, in hours (one year).
pub const EXPIRES_IN_HOURS_MAX: u64 = 24 * 365;
/// Message lifetime when a sender does not name one, in hours (as the original).
pub const EXPIRES_IN_HOURS_DEFAULT: u64 = 24;
/// Most delivery attempts a sender may ask for.
pub const MAX_ATTEMPTS_MAX: u32 = 1000;
/// Longest agent name, sender name or recipient, in bytes.
pub const NAME_BYTES_MAX: usize = 200;
/// Most agents the registry holds.
pub const AGENTS_MAX: usize = 10_000;
/// Most capabilities one agent may declare.
pub const CAPABILITIES_MAX: usize = 64;
/// Most recipients one broadcast may name.
pub const BROADCAST_RECIPIENTS_MAX: usize = 1000;
/// Most ids one batch ack may carry.
pub const BATCH_ACK_IDS_MAX: usize = 1000;
/// Unacknowledged pushes per WebSocket when the operator does not choose.
pub const WS_IN_FLIGHT_MAX_DEFAULT: usize = 100;
/// Largest WebSocket frame a client may send, in bytes.
pub const WS_FRAME_BYTES_MAX: usize = BODY_BYTES_MAX;
/// Frames buffered towards one WebSocket client before the pusher waits.
pub const WS_OUTBOX_FRAMES_MAX: usize = 256;
/// How long one push-loop long poll waits before looking again whether its socket closed.
pub const WS_POLL_WAIT: Duration = Duration::from_secs(2);
/// Messages per second one sender may send when the operator does not choose.
pub const RATE_PER_SENDER_PER_SECOND_DEFAULT: u32 = 20_000;
/// Burst one sender may send at once when the operator does not choose.
pub const RATE_BURST_PER_SENDER_DEFAULT: u32 = 40_000;
/// An agent with no heartbeat for this long is shown offline (as the original: 5 minutes).
pub const PRESENCE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long shutdown waits for WebSocket handlers to return their leases.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long shutdown waits for the last writes to become durable (storage may be down).
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// The owner lease of a Redis prefix when the operator does not choose, in milliseconds: a
/// killed active server is replaced by its hot standby within about this long (+ one poll).
pub const OWNER_LEASE_MS_DEFAULT: u64 = 3_000;
/// Shortest owner lease `--owner-lease-ms` accepts, in milliseconds: the lease is renewed
/// three times per period, and a shorter one would lapse on an ordinary pause.
pub const OWNER_LEASE_MS_MIN: u64 = 300;
/// Longest owner lease `--owner-lease-ms` accepts, in milliseconds (10 minutes).
pub const OWNER_LEASE_MS_MAX: u64 = 600_000;
/// How often a hot standby tries to take ownership, in milliseconds (sooner when the owner
/// lease is known to end sooner).
pub const STANDBY_POLL_MS: u64 = 200;
/// The `Retry-After` of a standby's 503 answers, in seconds.
pub const STANDBY_RETRY_AFTER_SECONDS: u64 = 1;

/// Bytes a WebSocket read asks the socket for at once. The library's default (128 KiB) is
/// zeroed before every read, which cost more than anything else per frame for the small
/// frames agents send; larger frames just take several reads.
pub const WS_READ_CHUNK_BYTES: usize = 8 * 1024;
