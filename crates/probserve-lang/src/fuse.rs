//! Compile-time fusion of hot statement patterns into forms the machine runs
//! natively.
//!
//! One pattern, the likelihood loop of a generalized linear model: a `for` loop whose
//! only statement observes a data-vector element at the loop variable,
//! `for i in lo..hi { y[i] ~ normal(mean, scale); }` (a scale the loop does not change),
//! `y[i] ~ bernoulli(inv_logit(a + b * x[i]))` or `y[i] ~ poisson(exp(a + b * x[i]))`,
//! becomes [`St::ObsLoop`]. Predictors of the form `a + b * x[i]` (operands in any
//! order) are recognized so that they cost one multiply-add per element, and for the
//! normal a random intercept `theta[g[i]]` (an indexed site read at a data index). Fusion changes
//! no result: the same floating-point operations run in the same order (IEEE addition
//! and multiplication are commutative), and the original statement is kept for the
//! lowerings that do not run the loop natively.

use crate::builtins::{DistKind, Fn1, Fn2};
use crate::ir::{Ex, Family, Mean, ObsLoop, ObsTarget, St};

/// Rewrites every fusable statement of `body`, depth first.
pub(crate) fn fuse(body: &mut [St]) {
    for st in body.iter_mut() {
        match st {
            St::If(_, a, b) => {
                fuse(a);
                fuse(b);
            }
            St::For { body, .. } => fuse(body),
            _ => {}
        }
        if let Some(l) = obs_loop(st) {
            *st = St::ObsLoop(Box::new(l));
        }
    }
}

fn obs_loop(st: &St) -> Option<ObsLoop> {
    let St::For { var, lo, hi, body } = st else {
        return None;
    };
    let [
        obs @ St::Observe {
            site,
            target: ObsTarget::Elem(y, Ex::Slot(iv)),
            dist,
        },
    ] = body.as_slice()
    else {
        return None;
    };
    if iv != var {
        return None;
    }
    let (mean, family) = match (dist.kind, &*dist.args) {
        (DistKind::Normal, [mean, scale]) if !mentions(scale, *var) => (
            affine(mean, *var)
                .or_else(|| gather(mean, *var))
                .unwrap_or_else(|| Mean::Any(mean.clone())),
            Family::Normal {
                scale: scale.clone(),
            },
        ),
        // The other families only with an affine predictor: anything else gains
        // nothing over the loop.
        (DistKind::Bernoulli, [Ex::Call1(Fn1::InvLogit, eta)]) => {
            (affine(eta, *var)?, Family::BernoulliLogit)
        }
        (DistKind::Poisson, [Ex::Call1(Fn1::Exp, eta)]) => (affine(eta, *var)?, Family::PoissonLog),
        _ => return None,
    };
    Some(ObsLoop {
        var: *var,
        lo: lo.clone(),
        hi: hi.clone(),
        body: obs.clone(),
        site: *site,
        y: *y,
        mean,
        family,
    })
}

/// True when `e` reads slot `var`.
fn mentions(e: &Ex, var: u32) -> bool {
    match e {
        Ex::Slot(s) => *s == var,
        Ex::Const(_) | Ex::Derived(_) => false,
        Ex::VecElem(_, a) | Ex::ArrElem(_, a) | Ex::Call1(_, a) => mentions(a, var),
        Ex::Call2(_, a, b) | Ex::And(a, b) | Ex::Or(a, b) => mentions(a, var) || mentions(b, var),
        Ex::Cond(c, a, b) => mentions(c, var) || mentions(a, var) || mentions(b, var),
    }
}

/// A constant or a slot other than the loop variable.
fn invariant_leaf(e: &Ex, var: u32) -> bool {
    match e {
        Ex::Const(_) => true,
        Ex::Slot(s) => *s != var,
        _ => false,
    }
}

/// `arr[g[var]]`.
fn gather(e: &Ex, var: u32) -> Option<Mean> {
    match e {
        Ex::ArrElem(arr, i) => match &**i {
            Ex::VecElem(g, j) if **j == Ex::Slot(var) => Some(Mean::Gather { arr: *arr, g: *g }),
            _ => None,
        },
        _ => None,
    }
}

/// `a + b * x[var]`, with the operands of `+` and `*` in either order.
fn affine(e: &Ex, var: u32) -> Option<Mean> {
    let Ex::Call2(Fn2::Add, p, q) = e else {
        return None;
    };
    let (a, m) = if invariant_leaf(p, var) {
        (p, q)
    } else if invariant_leaf(q, var) {
        (q, p)
    } else {
        return None;
    };
    let Ex::Call2(Fn2::Mul, r, s) = &**m else {
        return None;
    };
    let elem = |e: &Ex| match e {
        Ex::VecElem(x, i) if **i == Ex::Slot(var) => Some(*x),
        _ => None,
    };
    let (b, x) = match (elem(r), elem(s)) {
        (None, Some(x)) if invariant_leaf(r, var) => (r, x),
        (Some(x), None) if invariant_leaf(s, var) => (s, x),
        _ => return None,
    };
    Some(Mean::Affine {
        a: (**a).clone(),
        b: (**b).clone(),
        x,
    })
}
