//! Persistent state behind a store trait: model registry, rollouts and audit log (embedded redb by default).
