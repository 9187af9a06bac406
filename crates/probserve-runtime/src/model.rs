//! Models: the [`Model`] trait every inference algorithm accepts, named outputs, and composable
//! model values (`pure`, `sample`, `observe`, `factor`, `bind`, `map`, `plate`).
//!
//! A model is an immutable value; running it under a [`Handler`] performs its effects. Structs
//! (such as a compiled program) implement [`Model`] directly; the combinators build the same
//! trait out of closures, fully monomorphized (no boxing per site).

use crate::address::{Address, SiteId};
use crate::dist::ScalarDist;
use crate::error::ModelError;
use crate::handler::Handler;

/// A probabilistic program.
///
/// Inference needs `M: Model + Sync` with `M::Output: Outputs`.
pub trait Model {
    /// The value one run returns.
    type Output;

    /// Run once under `h`.
    fn run<H: Handler>(&self, h: &mut H) -> Result<Self::Output, ModelError>;

    /// Run once under `h` and append the run's flattened outputs to `out` (what the
    /// inference algorithms keep of a run).
    ///
    /// The default runs [`Model::run`] and flattens its value; a model whose outputs
    /// are flat numbers anyway (such as a compiled program) writes them directly and
    /// skips the intermediate value.
    #[inline]
    fn run_into<H: Handler>(&self, h: &mut H, out: &mut Vec<f64>) -> Result<(), ModelError>
    where
        Self::Output: Outputs,
    {
        self.run(h)?.write_outputs(out);
        Ok(())
    }

    /// Names of the values [`Outputs::write_outputs`] writes (missing names become `output[i]`).
    fn output_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// The name of an interned site (for models that use [`Address::site`]).
    fn site_name(&self, _id: SiteId) -> Option<&str> {
        None
    }

    /// Most sites one run may record (its trace's memory budget); a run that visits
    /// more fails with [`ModelError::SiteLimit`]. Unlimited by default.
    fn max_sites(&self) -> usize {
        usize::MAX
    }
}

impl<M: Model + ?Sized> Model for &M {
    type Output = M::Output;
    fn run<H: Handler>(&self, h: &mut H) -> Result<Self::Output, ModelError> {
        (**self).run(h)
    }
    #[inline]
    fn run_into<H: Handler>(&self, h: &mut H, out: &mut Vec<f64>) -> Result<(), ModelError>
    where
        Self::Output: Outputs,
    {
        (**self).run_into(h, out)
    }
    fn output_names(&self) -> Vec<String> {
        (**self).output_names()
    }
    fn site_name(&self, id: SiteId) -> Option<&str> {
        (**self).site_name(id)
    }
    fn max_sites(&self) -> usize {
        (**self).max_sites()
    }
}

/// Site names of a model, for rendering addresses.
pub(crate) struct ModelNames<'a, M: ?Sized>(pub(crate) &'a M);

impl<M: Model + ?Sized> crate::address::SiteNames for ModelNames<'_, M> {
    fn site_name(&self, id: SiteId) -> Option<&str> {
        self.0.site_name(id)
    }
}

/// A model output that can be flattened into numbers for summaries.
pub trait Outputs {
    /// Append this value's numbers to `out`.
    fn write_outputs(&self, out: &mut Vec<f64>);
}

impl Outputs for () {
    fn write_outputs(&self, _out: &mut Vec<f64>) {}
}
impl Outputs for f64 {
    fn write_outputs(&self, out: &mut Vec<f64>) {
        out.push(*self);
    }
}
impl Outputs for bool {
    fn write_outputs(&self, out: &mut Vec<f64>) {
        out.push(if *self { 1.0 } else { 0.0 });
    }
}
macro_rules! int_outputs {
    ($($t:ty),*) => {$(
        impl Outputs for $t {
            fn write_outputs(&self, out: &mut Vec<f64>) {
                out.push(*self as f64);
            }
        }
    )*};
}
int_outputs!(u32, u64, i32, i64, usize);
impl<T: Outputs> Outputs for Vec<T> {
    fn write_outputs(&self, out: &mut Vec<f64>) {
        self.iter().for_each(|x| x.write_outputs(out));
    }
}
impl<T: Outputs> Outputs for [T] {
    fn write_outputs(&self, out: &mut Vec<f64>) {
        self.iter().for_each(|x| x.write_outputs(out));
    }
}
impl<T: Outputs, const N: usize> Outputs for [T; N] {
    fn write_outputs(&self, out: &mut Vec<f64>) {
        self.iter().for_each(|x| x.write_outputs(out));
    }
}
impl<T: Outputs> Outputs for Option<T> {
    fn write_outputs(&self, out: &mut Vec<f64>) {
        if let Some(x) = self {
            x.write_outputs(out);
        }
    }
}
macro_rules! tuple_outputs {
    ($($n:tt $t:ident),*) => {
        impl<$($t: Outputs),*> Outputs for ($($t,)*) {
            fn write_outputs(&self, out: &mut Vec<f64>) {
                $(self.$n.write_outputs(out);)*
            }
        }
    };
}
tuple_outputs!(0 A);
tuple_outputs!(0 A, 1 B);
tuple_outputs!(0 A, 1 B, 2 C);
tuple_outputs!(0 A, 1 B, 2 C, 3 D);
tuple_outputs!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple_outputs!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);

/// A model that returns a constant.
#[derive(Debug, Clone, Copy)]
pub struct Pure<T>(pub T);

impl<T: Clone> Model for Pure<T> {
    type Output = T;
    fn run<H: Handler>(&self, _h: &mut H) -> Result<T, ModelError> {
        Ok(self.0.clone())
    }
}

/// Lift a value into a model.
pub fn pure<T: Clone>(value: T) -> Pure<T> {
    Pure(value)
}

/// A latent draw at an address.
#[derive(Debug, Clone)]
pub struct Sample<D> {
    /// The site.
    pub addr: Address,
    /// Its distribution.
    pub dist: D,
}

impl<D: ScalarDist> Model for Sample<D> {
    type Output = f64;
    #[inline]
    fn run<H: Handler>(&self, h: &mut H) -> Result<f64, ModelError> {
        h.sample(self.addr, &self.dist)
    }
}

/// Draw a latent value at `addr`.
pub fn sample<D: ScalarDist>(addr: Address, dist: D) -> Sample<D> {
    Sample { addr, dist }
}

/// An observation at an address.
#[derive(Debug, Clone)]
pub struct Observe<D> {
    /// The site.
    pub addr: Address,
    /// Its distribution.
    pub dist: D,
    /// The observed value.
    pub value: f64,
}

impl<D: ScalarDist> Model for Observe<D> {
    type Output = ();
    #[inline]
    fn run<H: Handler>(&self, h: &mut H) -> Result<(), ModelError> {
        h.observe(self.addr, &self.dist, self.value)
    }
}

/// Observe `value` from `dist` at `addr`.
pub fn observe<D: ScalarDist>(addr: Address, dist: D, value: f64) -> Observe<D> {
    Observe { addr, dist, value }
}

/// A log-weight term.
#[derive(Debug, Clone, Copy)]
pub struct Factor {
    /// The site (named in errors).
    pub addr: Address,
    /// The log weight.
    pub log_weight: f64,
}

impl Model for Factor {
    type Output = ();
    fn run<H: Handler>(&self, h: &mut H) -> Result<(), ModelError> {
        h.factor(self.addr, self.log_weight)
    }
}

/// Add `log_weight` to the run's weight.
pub fn factor(addr: Address, log_weight: f64) -> Factor {
    Factor { addr, log_weight }
}

/// Sequencing: run `m`, feed its output to `f`, run the model `f` returns.
#[derive(Debug, Clone)]
pub struct Bind<M, F> {
    m: M,
    f: F,
}

impl<M, F, N> Model for Bind<M, F>
where
    M: Model,
    F: Fn(M::Output) -> N,
    N: Model,
{
    type Output = N::Output;
    #[inline]
    fn run<H: Handler>(&self, h: &mut H) -> Result<N::Output, ModelError> {
        let a = self.m.run(h)?;
        (self.f)(a).run(h)
    }
}

/// Transform a model's output.
#[derive(Debug, Clone)]
pub struct Map<M, F> {
    m: M,
    f: F,
}

impl<M, F, T> Model for Map<M, F>
where
    M: Model,
    F: Fn(M::Output) -> T,
{
    type Output = T;
    #[inline]
    fn run<H: Handler>(&self, h: &mut H) -> Result<T, ModelError> {
        self.m.run(h).map(&self.f)
    }
}

/// Attach output names to a model.
#[derive(Debug, Clone)]
pub struct Named<M> {
    m: M,
    names: Vec<String>,
}

impl<M: Model> Model for Named<M> {
    type Output = M::Output;
    fn run<H: Handler>(&self, h: &mut H) -> Result<M::Output, ModelError> {
        self.m.run(h)
    }
    fn run_into<H: Handler>(&self, h: &mut H, out: &mut Vec<f64>) -> Result<(), ModelError>
    where
        Self::Output: Outputs,
    {
        self.m.run_into(h, out)
    }
    fn output_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn site_name(&self, id: SiteId) -> Option<&str> {
        self.m.site_name(id)
    }
}

/// Combinator methods for every model.
pub trait ModelExt: Model + Sized {
    /// Monadic bind.
    fn bind<F, N>(self, f: F) -> Bind<Self, F>
    where
        F: Fn(Self::Output) -> N,
        N: Model,
    {
        Bind { m: self, f }
    }
    /// Functor map.
    fn map<F, T>(self, f: F) -> Map<Self, F>
    where
        F: Fn(Self::Output) -> T,
    {
        Map { m: self, f }
    }
    /// Name the outputs.
    fn named<S: Into<String>>(self, names: impl IntoIterator<Item = S>) -> Named<Self> {
        Named {
            m: self,
            names: names.into_iter().map(Into::into).collect(),
        }
    }
}

impl<M: Model> ModelExt for M {}

/// `n` repetitions of a model built per index (a plate over data); outputs are collected.
#[derive(Debug, Clone)]
pub struct Plate<F> {
    n: usize,
    f: F,
}

impl<F, N> Model for Plate<F>
where
    F: Fn(usize) -> N,
    N: Model,
{
    type Output = Vec<N::Output>;
    fn run<H: Handler>(&self, h: &mut H) -> Result<Self::Output, ModelError> {
        let mut out = Vec::with_capacity(self.n);
        for i in 0..self.n {
            out.push((self.f)(i).run(h)?);
        }
        Ok(out)
    }
}

/// A plate of `n` sub-models; use `Address::new("x").at_usize(i)` inside for distinct sites.
pub fn plate<F, N>(n: usize, f: F) -> Plate<F>
where
    F: Fn(usize) -> N,
    N: Model,
{
    Plate { n, f }
}

/// Observe every element of `data` from the distribution `f(i)` at `base[i]`, without collecting
/// outputs (the loop helper for likelihoods over data).
pub fn observe_all<H, D, F>(h: &mut H, base: Address, data: &[f64], f: F) -> Result<(), ModelError>
where
    H: Handler,
    D: ScalarDist,
    F: Fn(usize) -> Result<D, ModelError>,
{
    for (i, &y) in data.iter().enumerate() {
        let d = f(i)?;
        h.observe(base.at_usize(i), &d, y)?;
    }
    Ok(())
}
