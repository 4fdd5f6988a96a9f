//! The embedded backend: one durable SQLite file with a change log that watches tail.
