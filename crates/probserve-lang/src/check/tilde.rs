//! `~` statements: deciding between observation and latent sampling, indexed sites,
//! and distribution calls.

use crate::ast::{self, Ident, Target};
use crate::builtins::{self, Param, Ty};
use crate::diag::DiagKind;
use crate::ir::{Dest, DistEx, Ex, ObsTarget, St};
use crate::model::LatentInfo;

use super::{ArrKind, Array, Checker, VarKind, elem_of};

impl Checker<'_, '_> {
    /// `target ~ dist(args)`: observation when the target is data, latent otherwise.
    pub(super) fn tilde(
        &mut self,
        target: &Target,
        dist: &Ident,
        args: &[ast::Expr],
    ) -> Option<St> {
        let dist_ex = self.dist(dist, args);
        let value_ty = dist_ex.as_ref().map_or(Ty::Error, |(_, t)| *t);
        let existing = self.lookup(&target.name.name).cloned();
        let name = &target.name;
        match (&target.index, existing) {
            (None, Some(v)) if v.kind == VarKind::DataScalar => {
                self.check_observed(name, v.ty, value_ty, dist);
                if !self.loops.is_empty() {
                    self.error(
                        DiagKind::BadTarget,
                        name.span,
                        format!("`{}` is observed inside a `for` loop, so it would be observed once per iteration; observe a vector element instead (`y[i] ~ ...`)", name.name),
                    );
                }
                if let Some(prev) = self.observed_scalars.insert(name.name.clone(), name.span) {
                    let line = self.line_of(prev);
                    self.error(
                        DiagKind::Duplicate,
                        name.span,
                        format!("`{}` is already observed (line {line})", name.name),
                    );
                }
                let site = self.intern(&name.name);
                let (dist, _) = dist_ex?;
                Some(St::Observe {
                    site,
                    target: ObsTarget::Scalar(v.slot),
                    dist,
                })
            }
            (Some(index), Some(v)) if matches!(v.kind, VarKind::DataVec(_)) => {
                let elem = match v.ty {
                    Ty::IntVec => Ty::Int,
                    Ty::BoolVec => Ty::Bool,
                    _ => Ty::Real,
                };
                self.check_observed(name, elem, value_ty, dist);
                let idx = self.index_expr(index);
                let site = self.intern(&name.name);
                let VarKind::DataVec(vec) = v.kind else {
                    return None;
                };
                let (dist, _) = dist_ex?;
                Some(St::Observe {
                    site,
                    target: ObsTarget::Elem(vec, idx),
                    dist,
                })
            }
            (None, Some(v)) => {
                let what = match v.kind {
                    VarKind::DataVec(_) => format!(
                        "`{}` is a data vector: observe its elements in a loop (`for i in 0..len({0}) {{ {0}[i] ~ ... }}`)",
                        name.name
                    ),
                    VarKind::Latent => format!(
                        "`{}` is already sampled (line {}); each latent is sampled once",
                        name.name,
                        self.line_of(v.span)
                    ),
                    VarKind::Let => format!(
                        "cannot observe `{}`: it is a `let` value, not data (declare it with `data`)",
                        name.name
                    ),
                    _ => format!(
                        "cannot observe `{}`: it is a loop variable, not data",
                        name.name
                    ),
                };
                self.error(DiagKind::BadTarget, name.span, what);
                None
            }
            (Some(_), Some(v)) => {
                let what = if v.kind == VarKind::DataScalar {
                    format!("`{}` is scalar data and cannot be indexed", name.name)
                } else {
                    format!(
                        "cannot observe `{}[...]`: `{0}` is not a data vector",
                        name.name
                    )
                };
                self.error(DiagKind::BadTarget, name.span, what);
                None
            }
            (None, None) => {
                if self.arrays.contains_key(&name.name) {
                    self.error(
                        DiagKind::BadTarget,
                        name.span,
                        format!(
                            "`{}` is an indexed site; sample elements as `{0}[i] ~ ...`",
                            name.name
                        ),
                    );
                    return None;
                }
                if !self.loops.is_empty() {
                    self.error(
                        DiagKind::BadTarget,
                        name.span,
                        format!("`{}` is sampled inside a `for` loop, so every iteration would use the same address; index it (`{0}[i] ~ ...`)", name.name),
                    );
                }
                let ty = if value_ty == Ty::Error {
                    Ty::Real
                } else {
                    value_ty
                };
                let slot = self.declare_scalar(name, VarKind::Latent, ty, None);
                let site = self.intern(&name.name);
                self.latents.push(LatentInfo {
                    name: name.name.clone(),
                    ty: elem_of(ty),
                    indexed: false,
                });
                let (dist, _) = dist_ex?;
                Some(St::Sample {
                    site,
                    dest: Dest::Slot(slot),
                    dist,
                })
            }
            (Some(index), None) => {
                let idx = self.index_expr(index);
                let ty = if value_ty == Ty::Error {
                    Ty::Real
                } else {
                    value_ty
                };
                let arr = self.array_write(name, index, ty, ArrKind::Latent)?;
                let site = self.arrays.get(&name.name).and_then(|a| a.site)?;
                let (dist, _) = dist_ex?;
                Some(St::Sample {
                    site,
                    dest: Dest::Arr(arr, idx),
                    dist,
                })
            }
        }
    }

    pub(super) fn check_observed(&mut self, name: &Ident, data_ty: Ty, value_ty: Ty, dist: &Ident) {
        let ok = match value_ty {
            Ty::Real => data_ty.fits(Ty::Real),
            Ty::Int => data_ty == Ty::Int,
            Ty::Bool => matches!(data_ty, Ty::Bool | Ty::Int),
            _ => true,
        };
        if !ok {
            self.error(
                DiagKind::TypeMismatch,
                name.span,
                format!(
                    "`{}` is {} data but `{}` produces {} values",
                    name.name,
                    data_ty.name(),
                    dist.name,
                    value_ty.name()
                ),
            );
        }
    }

    /// Registers a write to array `name` (creating it on first write).
    pub(super) fn array_write(
        &mut self,
        name: &Ident,
        index: &ast::Expr,
        ty: Ty,
        kind: ArrKind,
    ) -> Option<u32> {
        if let Some(v) = self.lookup(&name.name) {
            let line = self.line_of(v.span);
            self.error(
                DiagKind::BadTarget,
                name.span,
                format!(
                    "`{}` is already declared (line {line}) and is not an indexed site",
                    name.name
                ),
            );
            return None;
        }
        let extent = self.extent_of(index);
        if let Some(a) = self.arrays.get_mut(&name.name) {
            let (a_kind, a_ty, a_id, a_span) = (a.kind, a.ty, a.id, a.span);
            a.extents.push(extent);
            if a_kind != kind {
                let line = self.line_of(a_span);
                self.error(
                    DiagKind::BadTarget,
                    name.span,
                    format!(
                        "`{}` is {} at line {line}; an indexed site is either sampled or assigned with `let`, not both",
                        name.name,
                        if a_kind == ArrKind::Latent { "sampled" } else { "assigned" }
                    ),
                );
            } else if !(ty.fits(a_ty) && a_ty.fits(ty)) && ty != Ty::Error && a_ty != Ty::Error {
                self.error(
                    DiagKind::TypeMismatch,
                    name.span,
                    format!(
                        "`{}` holds {} values, not {}",
                        name.name,
                        a_ty.name(),
                        ty.name()
                    ),
                );
            }
            return Some(a_id);
        }
        let id = self.n_arrays;
        self.n_arrays += 1;
        let site = (kind == ArrKind::Latent).then(|| self.intern(&name.name));
        if kind == ArrKind::Latent {
            self.latents.push(LatentInfo {
                name: name.name.clone(),
                ty: elem_of(ty),
                indexed: true,
            });
        }
        self.arrays.insert(
            name.name.clone(),
            Array {
                id,
                ty,
                kind,
                span: name.span,
                site,
                extents: vec![extent],
            },
        );
        Some(id)
    }

    /// The data-only size implied by writing at `index`: the upper bound of the innermost
    /// loop, when the index is exactly that loop's variable.
    pub(super) fn extent_of(&self, index: &ast::Expr) -> Option<Ex> {
        let ast::ExprKind::Var(v) = &index.kind else {
            return None;
        };
        let var = self.lookup(&v.name)?;
        let lp = self.loops.iter().rev().find(|l| l.var_slot == var.slot)?;
        if var.kind != VarKind::LoopVar {
            return None;
        }
        lp.hi_static.clone()
    }

    /// Checks a distribution call; returns the compiled distribution and its value type.
    pub(super) fn dist(&mut self, name: &Ident, args: &[ast::Expr]) -> Option<(DistEx, Ty)> {
        let Some(sig) = builtins::distribution(&name.name) else {
            let hint =
                builtins::suggest(&name.name, builtins::DISTRIBUTIONS.iter().map(|d| d.name))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
            self.error(
                DiagKind::UnknownFunction,
                name.span,
                format!("unknown distribution `{}`{hint}", name.name),
            );
            for a in args {
                self.expr(a);
            }
            return None;
        };
        if args.len() != sig.params.len() {
            let names: Vec<&str> = sig
                .params
                .iter()
                .map(|p| match p {
                    Param::Real(n) | Param::Int(n) | Param::Vector(n) => *n,
                })
                .collect();
            self.error(
                DiagKind::Arity,
                name.span,
                format!(
                    "`{}` takes {} argument{} ({}), found {}",
                    sig.name,
                    sig.params.len(),
                    if sig.params.len() == 1 { "" } else { "s" },
                    names.join(", "),
                    args.len()
                ),
            );
            for a in args {
                self.expr(a);
            }
            return None;
        }
        let mut exs = Vec::with_capacity(args.len());
        let mut vec_arg = None;
        let mut ok = true;
        for (a, p) in args.iter().zip(sig.params) {
            match p {
                Param::Real(pn) | Param::Int(pn) => {
                    let want = if matches!(p, Param::Int(_)) {
                        Ty::Int
                    } else {
                        Ty::Real
                    };
                    let (ex, ty) = self.expr(a);
                    if !ty.fits(want) {
                        ok = false;
                        self.error(
                            DiagKind::TypeMismatch,
                            a.span,
                            format!(
                                "parameter `{pn}` of `{}` must be {}, found {}",
                                sig.name,
                                want.name(),
                                ty.name()
                            ),
                        );
                    }
                    exs.push(ex);
                }
                Param::Vector(pn) => match self.vector_arg(a) {
                    Ok((v, Ty::RealVec | Ty::IntVec)) => vec_arg = Some(v),
                    Err(true) => ok = false,
                    _ => {
                        ok = false;
                        self.error(
                            DiagKind::TypeMismatch,
                            a.span,
                            format!(
                                "parameter `{pn}` of `{}` must be a real data vector",
                                sig.name
                            ),
                        );
                    }
                },
            }
        }
        ok.then(|| {
            (
                DistEx {
                    kind: sig.kind,
                    args: exs.into_boxed_slice(),
                    vec_arg,
                },
                sig.value,
            )
        })
    }
}
