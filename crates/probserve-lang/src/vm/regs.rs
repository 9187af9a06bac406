//! Register files: fixed-size ones (on the stack for small plans, in the thread's frame
//! for the others), whose accesses need no bounds check, and a slice for huge plans.

use crate::plan::SMALL_REGS;

/// Registers of the per-thread frame's fixed-size file.
pub(super) const FRAME_REGS: usize = 1024;

/// Where a run keeps its registers.
pub(super) trait RegFile {
    fn load(&self, r: u32) -> f64;
    fn store(&mut self, r: u32, v: f64);
}

/// A register file of [`SMALL_REGS`] stack slots, for plans with at most that many
/// registers: the lowering emits no register index at or above the plan's register
/// count, so masking the index changes nothing and replaces the bounds check.
pub(super) struct SmallFile(pub(super) [f64; SMALL_REGS]);

const MASK: u32 = SMALL_REGS as u32 - 1;
const FRAME_MASK: u32 = FRAME_REGS as u32 - 1;
const _: () = assert!(SMALL_REGS.is_power_of_two() && FRAME_REGS.is_power_of_two());

impl RegFile for SmallFile {
    #[inline(always)]
    fn load(&self, r: u32) -> f64 {
        self.0[(r & MASK) as usize]
    }

    #[inline(always)]
    fn store(&mut self, r: u32, v: f64) {
        self.0[(r & MASK) as usize] = v;
    }
}

/// The frame's file, for plans with at most [`FRAME_REGS`] registers (masked like
/// [`SmallFile`]).
impl RegFile for &mut [f64; FRAME_REGS] {
    #[inline(always)]
    fn load(&self, r: u32) -> f64 {
        self[(r & FRAME_MASK) as usize]
    }

    #[inline(always)]
    fn store(&mut self, r: u32, v: f64) {
        self[(r & FRAME_MASK) as usize] = v;
    }
}

impl RegFile for &mut [f64] {
    #[inline(always)]
    fn load(&self, r: u32) -> f64 {
        (**self).get(r as usize).copied().unwrap_or(f64::NAN)
    }

    #[inline(always)]
    fn store(&mut self, r: u32, v: f64) {
        if let Some(x) = (**self).get_mut(r as usize) {
            *x = v;
        }
    }
}
