//! The etcd v3 backend: transactions on mod_revision, watches from a start revision.
