//! Bound data, per-run frames, and the bind-time work on them (output extents and
//! prebuilt distributions).

use std::cell::RefCell;

use probserve_runtime::{
    Bernoulli, Beta, Binomial, CancelToken, Cauchy, Dist, Exponential, Gamma, Geometric,
    HalfNormal, InverseGamma, LogNormal, NegativeBinomial, Normal, Poisson, StudentT, Uniform,
};

use crate::builtins::DistKind;
use crate::ir::{Ex, for_each_dist};
use crate::model::Compiled;

use super::{Run, count};

/// Data bound for one request, converted to `f64`.
#[derive(Debug)]
pub(crate) struct BoundData {
    /// Values of the scalar data slots.
    pub(crate) scalars: Vec<f64>,
    /// Data vectors by vector index.
    pub(crate) vecs: Vec<Vec<f64>>,
    /// Bind-time reductions by derived index.
    pub(crate) derived: Vec<f64>,
    /// Bind-time work on each distribution, by `DistEx::id`.
    pub(crate) prebuilt: Vec<Prebuilt>,
}

/// What bind time could precompute for one distribution expression.
#[derive(Debug, Clone)]
pub(crate) enum Prebuilt {
    /// Parameters depend on latents: build at run time.
    Nothing,
    /// Every parameter is known from the data: the distribution itself.
    Full(Dist),
    /// A normal whose scale is known from the data (the mean varies).
    NormalScale(Normal),
    /// A fully known normal (kept concrete so that handlers need no dispatch).
    Normal(Normal),
    /// A normal whose scale is an element of a data vector, `normal(mean, s[i])`: one
    /// normalizer per element (`None` where the element is not a valid scale).
    NormalScales(Box<[Option<Normal>]>),
}

/// Per-run scratch memory, reused across runs on the same thread.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    pub(crate) slots: Vec<f64>,
    pub(crate) arrays: Vec<ArrayBuf>,
}

/// Values of one indexed site array during a run; elements not yet written hold
/// [`UNSET`].
#[derive(Debug, Default)]
pub(crate) struct ArrayBuf {
    pub(crate) vals: Vec<f64>,
}

/// Bit pattern of an element not yet written: a NaN with a payload no computation
/// produces (stored values are canonicalized, and faults read as the plain NaN).
pub(crate) const UNSET: u64 = 0x7ff8_dead_beef_0001;

impl ArrayBuf {
    /// Element `i`, if written in this run.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        self.vals.get(i).copied().filter(|v| v.to_bits() != UNSET)
    }
}

thread_local! {
    static FRAME: RefCell<Frame> = RefCell::new(Frame::default());
}

/// Runs `f` with this thread's frame prepared for `c` and `data` (or with a fresh
/// frame if the thread's frame is in use, which only a run nested in another sees).
pub(crate) fn with_frame<T>(c: &Compiled, data: &BoundData, f: impl FnOnce(&mut Frame) -> T) -> T {
    FRAME.with(|cell| match cell.try_borrow_mut() {
        Ok(mut frame) => {
            prepare(&mut frame, c, data);
            f(&mut frame)
        }
        Err(_) => {
            let mut frame = Frame::default();
            prepare(&mut frame, c, data);
            f(&mut frame)
        }
    })
}

fn prepare(frame: &mut Frame, c: &Compiled, data: &BoundData) {
    let p = &c.program;
    frame.slots.clear();
    frame.slots.extend_from_slice(&data.scalars);
    frame.slots.resize(p.n_slots as usize, f64::NAN);
    frame
        .arrays
        .resize_with(p.n_arrays as usize, ArrayBuf::default);
    for a in &mut frame.arrays {
        a.vals.clear();
    }
}

/// Evaluates the data-only extent expressions of an indexed output (their maximum).
pub(crate) fn eval_extent(c: &Compiled, data: &BoundData, extents: &[Ex]) -> Result<usize, String> {
    with_frame(c, data, |frame| {
        let cancel = CancelToken::never();
        let mut no_handler = ();
        let run = Run::new(
            c,
            data,
            &mut frame.slots,
            &mut frame.arrays,
            &mut no_handler,
            &cancel,
            0,
        );
        let mut n = 0usize;
        for e in extents {
            let v = run.eval_checked(e).map_err(|e| e.to_string())?;
            if v.is_finite() && v > 0.0 {
                n = n.max(v as usize);
            }
        }
        Ok(n)
    })
}

/// Precomputes what the data determines for every distribution of the program.
pub(crate) fn prebuild(c: &Compiled, data: &BoundData) -> Vec<Prebuilt> {
    let p = &c.program;
    let mut out = vec![Prebuilt::Nothing; p.n_dists as usize];
    with_frame(c, data, |frame| {
        let cancel = CancelToken::never();
        let mut no_handler = ();
        let run = Run::new(
            c,
            data,
            &mut frame.slots,
            &mut frame.arrays,
            &mut no_handler,
            &cancel,
            0,
        );
        for_each_dist(&p.body, &mut |d| {
            let known = |k: usize| {
                d.args
                    .get(k)
                    .is_some_and(|a| a.is_data_only(p.n_data_slots))
            };
            let value = |k: usize| {
                d.args
                    .get(k)
                    .and_then(|a| run.eval_checked(a).ok())
                    .unwrap_or(f64::NAN)
            };
            let pre = if d.kind == DistKind::Categorical {
                // Built (and validated) by `bind`, which reports bad tables.
                Prebuilt::Nothing
            } else if (0..d.args.len()).all(known) {
                macro_rules! go {
                    ($dist:expr) => {
                        $dist.map(Dist::from)
                    };
                }
                let normal = |mu: f64, sigma: f64| Normal::new(mu, sigma);
                let built: Result<Dist, probserve_runtime::DistError> =
                    dispatch!(d, value, normal, go);
                match built {
                    Ok(Dist::Normal(n)) => Prebuilt::Normal(n),
                    Ok(dist) => Prebuilt::Full(dist),
                    Err(_) => Prebuilt::Nothing,
                }
            } else if d.kind == DistKind::Normal && known(1) {
                Normal::new(0.0, value(1)).map_or(Prebuilt::Nothing, Prebuilt::NormalScale)
            } else if d.kind == DistKind::Normal
                && let Some(Ex::VecElem(v, _)) = d.args.get(1)
                && let Some(scales) = data.vecs.get(*v as usize)
            {
                Prebuilt::NormalScales(scales.iter().map(|&s| Normal::new(0.0, s).ok()).collect())
            } else {
                Prebuilt::Nothing
            };
            if let Some(slot) = out.get_mut(d.id as usize) {
                *slot = pre;
            }
        });
    });
    out
}
