//! Shared helpers for switchboard benches and load tools.
