//! Register files and run-time arrays for plans too large for the stack: one frame
//! per thread, reused across runs and models, so steady-state runs allocate nothing.

use std::cell::RefCell;

use crate::plan::Plan;

use super::regs::FRAME_REGS;

/// Values of one run-time array during a run (`None` where not yet written).
#[derive(Debug, Default)]
pub(crate) struct ArrayBuf {
    vals: Vec<Option<f64>>,
}

impl ArrayBuf {
    /// Element `i`, if written in this run.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        self.vals.get(i).copied().flatten()
    }

    /// Writes element `i` (an index checked by `ArrSlot`, below `MAX_ARRAY_INDEX`).
    #[inline]
    pub(crate) fn put(&mut self, i: usize, v: f64) {
        if self.vals.len() <= i {
            self.vals.resize(i + 1, None);
        }
        if let Some(x) = self.vals.get_mut(i) {
            *x = Some(v);
        }
    }
}

/// A thread's scratch memory: the fixed-size register file (plans with at most
/// [`FRAME_REGS`] registers), a growable one (larger plans) and the run-time arrays.
#[derive(Debug)]
struct Frame {
    file: Box<[f64; FRAME_REGS]>,
    regs: Vec<f64>,
    arrays: Vec<ArrayBuf>,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            file: Box::new([0.0; FRAME_REGS]),
            regs: Vec::new(),
            arrays: Vec::new(),
        }
    }
}

/// The register file a run uses.
pub(super) enum Regs<'f> {
    Fixed(&'f mut [f64; FRAME_REGS]),
    Grown(&'f mut [f64]),
}

impl Frame {
    fn prepare(&mut self, plan: &Plan) -> (Regs<'_>, &mut [ArrayBuf]) {
        self.arrays
            .resize_with(plan.arrays.len(), ArrayBuf::default);
        for a in &mut self.arrays {
            a.vals.clear();
        }
        let arrays = self.arrays.get_mut(..plan.arrays.len()).unwrap_or(&mut []);
        let init = &plan.init;
        if let Some(head) = self.file.get_mut(..init.len()) {
            head.copy_from_slice(init);
            return (Regs::Fixed(&mut self.file), arrays);
        }
        self.regs.clear();
        self.regs.extend_from_slice(init);
        (Regs::Grown(&mut self.regs), arrays)
    }
}

thread_local! {
    static FRAME: RefCell<Frame> = RefCell::new(Frame::default());
}

/// Run-time array capacity (elements) a thread keeps between runs; a run that grew
/// one beyond it gives the memory back when it ends, so one large request does not
/// leave every pool thread holding its peak.
const KEEP_ARRAY_CAPACITY: usize = 1 << 16;

impl Frame {
    fn trim(&mut self) {
        for a in &mut self.arrays {
            if a.vals.capacity() > KEEP_ARRAY_CAPACITY {
                a.vals = Vec::new();
            }
        }
    }
}

/// Runs `f` on this thread's frame prepared for `plan` (or on a fresh frame if the
/// thread's frame is in use, which only a run nested in another sees).
pub(super) fn with_frame<T>(plan: &Plan, f: impl FnOnce(Regs<'_>, &mut [ArrayBuf]) -> T) -> T {
    FRAME.with(|cell| match cell.try_borrow_mut() {
        Ok(mut frame) => {
            let (regs, arrays) = frame.prepare(plan);
            let out = f(regs, arrays);
            frame.trim();
            out
        }
        Err(_) => {
            let mut frame = Frame::default();
            let (regs, arrays) = frame.prepare(plan);
            f(regs, arrays)
        }
    })
}
