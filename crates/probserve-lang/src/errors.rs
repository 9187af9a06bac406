//! The run-time errors of the language (bad indices, unassigned or twice-assigned
//! elements), worded once for the lowering, which finds some of them at bind time, and
//! for the machine, which finds the rest while running.

use probserve_runtime::ModelError;

use crate::bind::BoundData;
use crate::model::Compiled;
use crate::plan::MAX_ARRAY_INDEX;

fn name(names: &[String], i: u32) -> &str {
    names.get(i as usize).map_or("?", String::as_str)
}

/// Element `index` of data vector `vec` does not exist.
pub(crate) fn vec_index(c: &Compiled, data: &BoundData, vec: u32, index: f64) -> ModelError {
    let len = data.vecs.get(vec as usize).map_or(0, Vec::len);
    ModelError::Other(format!(
        "index {index} is out of range for `{}` (length {len})",
        name(&c.vec_names, vec)
    ))
}

/// Element `index` of indexed site `arr` is read before it is written.
pub(crate) fn unassigned(c: &Compiled, arr: u32, index: f64) -> ModelError {
    ModelError::Other(format!(
        "`{}[{index}]` is read before it is assigned",
        name(&c.array_names, arr)
    ))
}

/// Indexed site `arr` is written at an index outside `0..MAX_ARRAY_INDEX`.
pub(crate) fn bad_array_index(c: &Compiled, arr: u32, index: f64) -> ModelError {
    ModelError::Other(format!(
        "index {index} of `{}` is out of range (0 to {})",
        name(&c.array_names, arr),
        MAX_ARRAY_INDEX - 1
    ))
}

/// Element `i` of indexed site `arr` is written a second time.
pub(crate) fn assigned_twice(c: &Compiled, arr: u32, i: usize) -> ModelError {
    ModelError::Other(format!(
        "`{}[{i}]` is assigned twice in one run",
        name(&c.array_names, arr)
    ))
}

/// A `for` loop's bounds are not both finite (an int computed as `min` of an empty
/// vector, say): an error rather than a loop that never ends or silently never runs.
pub(crate) fn loop_bounds(lo: f64, hi: f64) -> ModelError {
    ModelError::Other(format!(
        "the bounds of a `for` loop must be finite, got {lo}..{hi}"
    ))
}

/// `i` as a slice index: exact for valid indices, `usize::MAX` for negatives and NaN
/// (so `get` fails).
#[inline(always)]
pub(crate) fn index(i: f64) -> usize {
    if i >= 0.0 {
        i as i64 as usize
    } else {
        usize::MAX
    }
}

/// `x` as the index of an indexed-site write, if it is in range.
#[inline(always)]
pub(crate) fn write_index(x: f64) -> Option<usize> {
    (x >= 0.0 && x < MAX_ARRAY_INDEX as f64).then_some(x as i64 as usize)
}
