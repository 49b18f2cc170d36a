//! HTTP handlers, one file per resource, and the wire types they exchange ([`wire`]).

pub mod agents;
pub mod broadcast;
pub mod discovery;
pub mod health;
pub mod leased;
pub mod messages;
pub mod migration;
pub mod openapi;
pub mod queues;
pub mod receipts;
pub mod routing;
pub mod stats;
pub mod wire;
