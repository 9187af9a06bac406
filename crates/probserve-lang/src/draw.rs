//! [`Draw`]: the output values of one run.

use smallvec::SmallVec;

/// The outputs of one run, in `output_labels` order: inline for up to eight values, so
/// small models never allocate. (Inference takes the values without a `Draw`, through
/// the runtime's `Model::run_into`.)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draw {
    pub(crate) vals: SmallVec<[f64; 8]>,
}

impl Draw {
    /// The output values of this draw, in `output_labels` order (bools as 0/1).
    #[inline]
    pub fn values(&self) -> &[f64] {
        &self.vals
    }
}

impl probserve_runtime::Outputs for Draw {
    #[inline]
    fn write_outputs(&self, out: &mut Vec<f64>) {
        out.extend_from_slice(self.values());
    }
}

/// Where a run's output values go.
pub(crate) trait OutputSink {
    /// Appends `values`.
    fn put(&mut self, values: &[f64]);
}

impl OutputSink for Vec<f64> {
    #[inline(always)]
    fn put(&mut self, values: &[f64]) {
        if values.len() <= 4 {
            // A few pushes are cheaper than a call to `memcpy`.
            for &x in values {
                self.push(x);
            }
        } else {
            self.extend_from_slice(values);
        }
    }
}

impl OutputSink for SmallVec<[f64; 8]> {
    #[inline(always)]
    fn put(&mut self, values: &[f64]) {
        self.extend_from_slice(values);
    }
}
