//! Expression checking and lowering.

use crate::ast::{self, BinOp, ExprKind, Ident, UnOp};
use crate::builtins::{self, Builtin, Fn1, Fn2, Reduce, Ty};
use crate::diag::DiagKind;
use crate::ir::{DerivedEx, Ex};

use super::{Checker, VarKind};

/// Unwraps an argument check or returns its error value from the enclosing function.
macro_rules! try_arg {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return e,
        }
    };
}

impl Checker<'_, '_> {
    /// Checks and lowers a scalar expression. Errors give `Ty::Error`.
    pub(super) fn expr(&mut self, e: &ast::Expr) -> (Ex, Ty) {
        match &e.kind {
            ExprKind::Int(v) => (Ex::Const(*v as f64), Ty::Int),
            ExprKind::Real(v) => (Ex::Const(*v), Ty::Real),
            ExprKind::Bool(b) => (Ex::Const(f64::from(u8::from(*b))), Ty::Bool),
            ExprKind::Var(name) => self.var(name),
            ExprKind::Index(name, index) => self.index(name, index),
            ExprKind::Unary(op, a) => {
                let (x, ty) = self.expr(a);
                match op {
                    UnOp::Neg if ty.is_numeric() => (Ex::Call1(Fn1::Neg, Box::new(x)), ty),
                    UnOp::Not if ty.fits(Ty::Bool) => (Ex::Call1(Fn1::Not, Box::new(x)), Ty::Bool),
                    UnOp::Neg => {
                        self.mismatch(a, format!("`-` needs a number, found {}", ty.name()))
                    }
                    UnOp::Not => self.mismatch(a, format!("`!` needs a bool, found {}", ty.name())),
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b),
            ExprKind::Cond(c, a, b) => {
                let (cx, cty) = self.expr(c);
                self.expect_ty(
                    c.span,
                    cty,
                    Ty::Bool,
                    "the condition of `?:` must be a bool",
                );
                let (ax, aty) = self.expr(a);
                let (bx, bty) = self.expr(b);
                let ty = match (aty, bty) {
                    (Ty::Error, t) | (t, Ty::Error) => t,
                    (x, y) if x == y && !x.is_vector() => x,
                    (Ty::Int | Ty::Real, Ty::Int | Ty::Real) => Ty::Real,
                    _ => {
                        return self.mismatch(
                            e,
                            format!(
                                "the branches of `?:` have different types: {} and {}",
                                aty.name(),
                                bty.name()
                            ),
                        );
                    }
                };
                (Ex::Cond(Box::new(cx), Box::new(ax), Box::new(bx)), ty)
            }
            ExprKind::Call(name, args) => self.call(e, name, args),
        }
    }

    fn mismatch(&mut self, e: &ast::Expr, msg: String) -> (Ex, Ty) {
        self.error(DiagKind::TypeMismatch, e.span, msg);
        (Ex::Const(f64::NAN), Ty::Error)
    }

    fn var(&mut self, name: &Ident) -> (Ex, Ty) {
        if let Some(v) = self.lookup(&name.name) {
            let (kind, ty, slot) = (v.kind, v.ty, v.slot);
            if let VarKind::DataVec(_) = kind {
                self.error(
                    DiagKind::TypeMismatch,
                    name.span,
                    format!(
                        "`{}` is a vector; index it (`{0}[i]`) or reduce it (`sum({0})`, `len({0})`)",
                        name.name
                    ),
                );
                return (Ex::Const(f64::NAN), Ty::Error);
            }
            return (Ex::Slot(slot), ty);
        }
        if self.arrays.contains_key(&name.name) {
            self.error(
                DiagKind::TypeMismatch,
                name.span,
                format!(
                    "`{}` is an indexed site; use an element (`{0}[i]`)",
                    name.name
                ),
            );
        } else {
            self.undefined(name);
        }
        (Ex::Const(f64::NAN), Ty::Error)
    }

    fn index(&mut self, name: &Ident, index: &ast::Expr) -> (Ex, Ty) {
        let (ix, ity) = self.expr(index);
        if ity != Ty::Int && ity != Ty::Error {
            self.error(
                DiagKind::TypeMismatch,
                index.span,
                format!("an index must be an int, found {}", ity.name()),
            );
        }
        if let Some(v) = self.lookup(&name.name) {
            let (kind, ty) = (v.kind, v.ty);
            if let VarKind::DataVec(vec) = kind {
                let elem = match ty {
                    Ty::IntVec => Ty::Int,
                    Ty::BoolVec => Ty::Bool,
                    _ => Ty::Real,
                };
                return (Ex::VecElem(vec, Box::new(ix)), elem);
            }
            self.error(
                DiagKind::TypeMismatch,
                name.span,
                format!("`{}` is a {} and cannot be indexed", name.name, ty.name()),
            );
            return (Ex::Const(f64::NAN), Ty::Error);
        }
        if let Some(a) = self.arrays.get(&name.name) {
            return (Ex::ArrElem(a.id, Box::new(ix)), a.ty);
        }
        self.undefined(name);
        (Ex::Const(f64::NAN), Ty::Error)
    }

    fn binary(&mut self, op: BinOp, a: &ast::Expr, b: &ast::Expr) -> (Ex, Ty) {
        let (ax, aty) = self.expr(a);
        let (bx, bty) = self.expr(b);
        let either_err = aty == Ty::Error || bty == Ty::Error;
        let both_int = aty == Ty::Int && bty == Ty::Int;
        let (f, result, ok) = match op {
            BinOp::And | BinOp::Or => {
                let ok = aty.fits(Ty::Bool) && bty.fits(Ty::Bool);
                if ok && !either_err {
                    let ex = if op == BinOp::And {
                        Ex::And(Box::new(ax), Box::new(bx))
                    } else {
                        Ex::Or(Box::new(ax), Box::new(bx))
                    };
                    return (ex, Ty::Bool);
                }
                (Fn2::Eq, Ty::Bool, ok)
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Rem => {
                let f = match op {
                    BinOp::Add => Fn2::Add,
                    BinOp::Sub => Fn2::Sub,
                    BinOp::Mul => Fn2::Mul,
                    _ => Fn2::Rem,
                };
                let ty = if both_int { Ty::Int } else { Ty::Real };
                (f, ty, aty.is_numeric() && bty.is_numeric())
            }
            BinOp::Div => (Fn2::Div, Ty::Real, aty.is_numeric() && bty.is_numeric()),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let f = match op {
                    BinOp::Lt => Fn2::Lt,
                    BinOp::Le => Fn2::Le,
                    BinOp::Gt => Fn2::Gt,
                    _ => Fn2::Ge,
                };
                (f, Ty::Bool, aty.is_numeric() && bty.is_numeric())
            }
            BinOp::Eq | BinOp::Ne => {
                let f = if op == BinOp::Eq { Fn2::Eq } else { Fn2::Ne };
                let ok = (aty.is_numeric() && bty.is_numeric())
                    || (aty.fits(Ty::Bool) && bty.fits(Ty::Bool));
                (f, Ty::Bool, ok)
            }
        };
        if !ok && !either_err {
            let want = match op {
                BinOp::And | BinOp::Or => "bools",
                BinOp::Eq | BinOp::Ne => "two numbers or two bools",
                _ => "numbers",
            };
            self.error(
                DiagKind::TypeMismatch,
                a.span.to(b.span),
                format!(
                    "`{}` needs {want}, found {} and {}",
                    op.symbol(),
                    aty.name(),
                    bty.name()
                ),
            );
            return (Ex::Const(f64::NAN), Ty::Error);
        }
        if either_err {
            return (Ex::Const(f64::NAN), Ty::Error);
        }
        (Ex::Call2(f, Box::new(ax), Box::new(bx)), result)
    }

    fn call(&mut self, e: &ast::Expr, name: &Ident, args: &[ast::Expr]) -> (Ex, Ty) {
        let Some(b) = builtins::function(&name.name) else {
            let hint = if builtins::distribution(&name.name).is_some() {
                format!(
                    "; `{}` is a distribution: use it on the right of `~`",
                    name.name
                )
            } else {
                builtins::suggest(&name.name, builtins::FUNCTION_NAMES.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default()
            };
            self.error(
                DiagKind::UnknownFunction,
                name.span,
                format!("unknown function `{}`{hint}", name.name),
            );
            for a in args {
                self.expr(a);
            }
            return (Ex::Const(f64::NAN), Ty::Error);
        };
        let arity = |n: usize| args.len() == n;
        match b {
            Builtin::Scalar1(f, keep_int) if arity(1) => {
                let (x, ty) = try_arg!(self.scalar_arg(name, &args[0]));
                let out = if keep_int && ty == Ty::Int {
                    Ty::Int
                } else {
                    Ty::Real
                };
                (Ex::Call1(f, Box::new(x)), out)
            }
            Builtin::Scalar2(f, _) | Builtin::MinMax(f, _) if arity(2) => {
                let (x, xt) = try_arg!(self.scalar_arg(name, &args[0]));
                let (y, yt) = try_arg!(self.scalar_arg(name, &args[1]));
                let keep = matches!(b, Builtin::MinMax(..) | Builtin::Scalar2(_, true));
                let out = if keep && xt == Ty::Int && yt == Ty::Int {
                    Ty::Int
                } else {
                    Ty::Real
                };
                (Ex::Call2(f, Box::new(x), Box::new(y)), out)
            }
            Builtin::Reduction(r) | Builtin::MinMax(_, r) if arity(1) => {
                let (v, vty) = try_arg!(self.vector_or_report(name, &args[0]));
                if vty == Ty::BoolVec && r != Reduce::Len {
                    return self.mismatch(
                        &args[0],
                        format!("`{}` needs a numeric vector, found bool[]", name.name),
                    );
                }
                let ty = match r {
                    Reduce::Len => Ty::Int,
                    Reduce::Sum | Reduce::Min | Reduce::Max if vty == Ty::IntVec => Ty::Int,
                    _ => Ty::Real,
                };
                (self.derive(DerivedEx::Reduce(r, v)), ty)
            }
            Builtin::Dot if arity(2) => {
                let (v, vt) = try_arg!(self.vector_or_report(name, &args[0]));
                let (w, wt) = try_arg!(self.vector_or_report(name, &args[1]));
                if vt == Ty::BoolVec || wt == Ty::BoolVec {
                    return self.mismatch(e, "`dot` needs numeric vectors".to_string());
                }
                (self.derive(DerivedEx::Dot(v, w)), Ty::Real)
            }
            _ => {
                let want = match b {
                    Builtin::Scalar1(..) | Builtin::Reduction(_) => "1 argument",
                    Builtin::Scalar2(..) | Builtin::Dot => "2 arguments",
                    Builtin::MinMax(..) => "1 data vector or 2 numbers",
                };
                self.error(
                    DiagKind::Arity,
                    name.span,
                    format!("`{}` takes {want}, found {}", name.name, args.len()),
                );
                for a in args {
                    self.expr(a);
                }
                (Ex::Const(f64::NAN), Ty::Error)
            }
        }
    }

    fn scalar_arg(&mut self, f: &Ident, a: &ast::Expr) -> Result<(Ex, Ty), (Ex, Ty)> {
        let (x, ty) = self.expr(a);
        if ty == Ty::Error {
            return Err((Ex::Const(f64::NAN), Ty::Error));
        }
        if !ty.is_numeric() {
            return Err(self.mismatch(
                a,
                format!("`{}` needs a number, found {}", f.name, ty.name()),
            ));
        }
        Ok((x, ty))
    }

    fn vector_or_report(&mut self, f: &Ident, a: &ast::Expr) -> Result<(u32, Ty), (Ex, Ty)> {
        match self.vector_arg(a) {
            Ok(v) => Ok(v),
            Err(true) => Err((Ex::Const(f64::NAN), Ty::Error)),
            Err(false) => Err(self.mismatch(
                a,
                format!(
                    "`{}` takes the name of a data vector (declared like `data x: real[];`)",
                    f.name
                ),
            )),
        }
    }

    /// A bare name of a data vector, as a function or distribution argument.
    /// `Err(true)` means an error was already reported.
    pub(super) fn vector_arg(&mut self, a: &ast::Expr) -> Result<(u32, Ty), bool> {
        let ExprKind::Var(name) = &a.kind else {
            return Err(false);
        };
        match self.lookup(&name.name) {
            Some(v) => match v.kind {
                VarKind::DataVec(vec) => Ok((vec, v.ty)),
                _ => Err(false),
            },
            None if self.arrays.contains_key(&name.name) => Err(false),
            None => {
                self.undefined(name);
                Err(true)
            }
        }
    }

    fn derive(&mut self, d: DerivedEx) -> Ex {
        let idx = match self.derived.iter().position(|x| *x == d) {
            Some(i) => i,
            None => {
                self.derived.push(d);
                self.derived.len() - 1
            }
        };
        Ex::Derived(u32::try_from(idx).unwrap_or(u32::MAX))
    }
}
