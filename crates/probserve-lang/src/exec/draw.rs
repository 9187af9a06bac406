//! [`Draw`]: the output values of one run.

/// Values kept inline in a [`Draw`] before it spills to the heap.
pub(crate) const INLINE: usize = 10;

/// The outputs of one run: inline for up to six values, so small models never allocate.
#[derive(Debug, Clone, PartialEq)]
pub struct Draw {
    pub(crate) len: usize,
    pub(crate) vals: [f64; INLINE],
    pub(crate) heap: Vec<f64>,
}

impl Draw {
    pub(crate) fn empty() -> Self {
        Draw {
            len: 0,
            vals: [0.0; INLINE],
            heap: Vec::new(),
        }
    }

    /// The output values of this draw, in `output_labels` order (bools as 0/1).
    pub fn values(&self) -> &[f64] {
        if self.heap.is_empty() {
            &self.vals[..self.len.min(INLINE)]
        } else {
            &self.heap
        }
    }
}

impl probserve_runtime::Outputs for Draw {
    fn write_outputs(&self, out: &mut Vec<f64>) {
        out.extend_from_slice(self.values());
    }
}
