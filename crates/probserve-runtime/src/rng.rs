//! Seeding: every algorithm derives its random streams from one root seed.

use crate::math::splitmix64;
use rand::SeedableRng;

/// The generator used by every algorithm (fast, small state, reproducible).
pub type Rng = rand_xoshiro::Xoshiro256PlusPlus;

/// The generator for stream `stream` (e.g. chain index) of root seed `seed`.
///
/// Streams depend only on `(seed, stream)`, never on thread scheduling.
pub fn stream_rng(seed: u64, stream: u64) -> Rng {
    Rng::seed_from_u64(splitmix64(seed ^ splitmix64(stream.wrapping_add(0x5EED))))
}
