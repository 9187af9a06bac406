//! Versioned sticky hashing.
//!
//! Hash version 1 (the only one): `h = u64_be(sha256(salt ‖ 0x00 ‖ key)[0..8])`,
//! `bucket = (h × space) >> 64`, so a bucket is uniform on `0..space`. The 0x00 byte
//! separates salt and key, so `("ab","c")` and `("a","bc")` hash differently (the
//! deployment guide's `sha256(user_id + seed)` does not). Frozen vectors (from
//! experiments.md H17, asserted in `tests/routing.rs`): with space 10 000,
//! `("exp-2024-01","user-1") → 267`, `("exp-2024-01","user-2") → 9733`,
//! `("exp-2024-01","user-3") → 6177`, `("canary-v2","user-1") → 681`.
//!
//! The rollout seed is turned into separate salts for exposure (`seed/exposure`),
//! arm choice (`seed/arm`) and shadow mirroring (`seed/shadow`), so raising the
//! exposure never changes which arm an exposed key lands in.

use sha2::{Digest, Sha256};

/// The current hash version; stored in every rollout spec.
pub const HASH_VERSION: u32 = 1;

/// Number of buckets used for basis-point weights (10 000 = 100 %).
pub const BPS_SPACE: u64 = 10_000;

/// The 64-bit hash of `(salt, key)` under hash version 1.
pub fn hash64(salt: &str, key: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Map a uniform 64-bit value onto `0..space` without modulo bias: `(h × space) >> 64`.
pub fn scale(h: u64, space: u64) -> u64 {
    // (h * space) >> 64 < space because h < 2^64; the cast cannot truncate.
    ((u128::from(h) * u128::from(space)) >> 64) as u64
}

/// Bucket of `(salt, key)` in `0..space`.
pub fn bucket(salt: &str, key: &str, space: u64) -> u64 {
    scale(hash64(salt, key), space)
}

/// The three salts derived from a rollout seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salts {
    /// Decides whether a key is exposed to the experiment at all.
    pub exposure: String,
    /// Decides which arm an exposed key gets.
    pub arm: String,
    /// Decides whether a call is mirrored to the shadow version.
    pub shadow: String,
}

impl Salts {
    /// Salts for `seed`.
    pub fn new(seed: &str) -> Self {
        Self {
            exposure: format!("{seed}/exposure"),
            arm: format!("{seed}/arm"),
            shadow: format!("{seed}/shadow"),
        }
    }
}
