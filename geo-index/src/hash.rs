//! A small, fast hasher for the integer keys the index uses (H3 cells and point ids).
//!
//! The standard SipHash is several times slower than needed here and keys are not attacker-chosen
//! in a way that matters for an in-memory index. A plain multiplicative hash is not enough either:
//! an H3 cell at resolution r has its low `3 * (15 - r)` bits all set, so its low bits carry no
//! information; the folded multiply below mixes high bits into low ones.

use std::hash::{BuildHasherDefault, Hasher};

/// Mixes all 64 bits of `x` into every bit of the result (folded 64x64->128 multiply).
pub(crate) fn mix(x: u64) -> u64 {
    let m = u128::from(x) * 0x9E37_79B9_7F4A_7C15_u128;
    (m as u64) ^ ((m >> 64) as u64)
}

/// [`Hasher`] for integer keys built on [`mix`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = mix(self.0 ^ x);
    }
}

/// Builds [`MixHasher`]s for `hashbrown` maps.
pub(crate) type MixState = BuildHasherDefault<MixHasher>;
