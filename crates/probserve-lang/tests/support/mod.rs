//! Support code of the differential test (`tests/differential.rs`): what a generated
//! program is made of (its syntax tree, rendered to source text, in [`syntax`], and its
//! data: declarations with request inputs that fit them, in [`data`]), the choice tape
//! that drives generation, and feature counts that show what was generated. The
//! generator that decides the statements and expressions is [`programs`].

pub mod data;
pub mod programs;
pub mod syntax;

use std::collections::BTreeMap;

pub use data::{Data, Kind, Sign, Size, Var};
pub use syntax::{Expr, Stmt, Ty};

/// The decisions of one generation: random numbers that proptest generates and
/// shrinks. Reading past the end gives 0, and 0 is always the simplest option.
pub struct Tape<'a> {
    choices: &'a [u32],
    pos: usize,
}

impl<'a> Tape<'a> {
    pub fn new(choices: &'a [u32]) -> Self {
        Tape { choices, pos: 0 }
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        let v = self.choices.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v.checked_rem(n).unwrap_or(0)
    }

    pub fn below_usize(&mut self, n: usize) -> usize {
        self.below(u32::try_from(n).unwrap_or(u32::MAX)) as usize
    }

    /// True with probability `percent`%; false on an exhausted tape.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) + percent.min(100) >= 100
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[self.below_usize(items.len())]
    }

    /// An index into `weights`, chosen with probability proportional to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let mut r = self.below(weights.iter().sum());
        for (k, &w) in weights.iter().enumerate() {
            if r < w {
                return k;
            }
            r -= w;
        }
        0
    }
}

/// How often each feature of the language was generated (`dist:normal`, `loop:nested`, ...).
#[derive(Debug, Clone, Default)]
pub struct Features(BTreeMap<String, usize>);

impl Features {
    pub fn add(&mut self, key: &str) {
        *self.0.entry(key.to_string()).or_default() += 1;
    }

    pub fn get(&self, key: &str) -> usize {
        self.0.get(key).copied().unwrap_or(0)
    }

    pub fn merge(&mut self, other: &Features) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    pub fn counts(&self) -> &BTreeMap<String, usize> {
        &self.0
    }
}
