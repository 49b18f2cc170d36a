//! Storage backends for the switchboard engine (see the storage issue).
