//! Declarations: hoisted `data` declarations and `output` statements.

use crate::ast::{self, ElemTy, Ident, SizeSpec, Stmt, StmtKind};
use crate::builtins::Ty;
use crate::diag::DiagKind;
use crate::ir::{Ex, OutputItem};
use crate::model::{DataDecl, DataType, ElemType, Shape, VecSize};

use super::{Checker, Var, VarKind};

impl Checker<'_, '_> {
    /// Data declarations are hoisted: they get the first slots and are visible everywhere.
    pub(super) fn declare_data(&mut self, body: &[Stmt]) -> (Vec<DataDecl>, Vec<u32>) {
        let mut decls = Vec::new();
        let mut index = Vec::new();
        let mut n_vecs = 0u32;
        for s in body {
            let StmtKind::Data { name, ty } = &s.kind else {
                continue;
            };
            if self.lookup(&name.name).is_some() {
                self.duplicate(name);
                continue;
            }
            let elem = match ty.elem {
                ElemTy::Real => ElemType::Real,
                ElemTy::Int => ElemType::Int,
                ElemTy::Bool => ElemType::Bool,
            };
            let (kind, vty, shape) = match &ty.size {
                None => {
                    let slot = self.n_slots;
                    self.n_slots += 1;
                    let vty = match ty.elem {
                        ElemTy::Real => Ty::Real,
                        ElemTy::Int => Ty::Int,
                        ElemTy::Bool => Ty::Bool,
                    };
                    (VarKind::DataScalar, vty, (Shape::Scalar, slot))
                }
                Some(size) => {
                    let v = n_vecs;
                    n_vecs += 1;
                    let vty = match ty.elem {
                        ElemTy::Real => Ty::RealVec,
                        ElemTy::Int => Ty::IntVec,
                        ElemTy::Bool => Ty::BoolVec,
                    };
                    let size = match size {
                        SizeSpec::Any => VecSize::Any,
                        SizeSpec::Fixed(n) => VecSize::Fixed(usize::try_from(*n).unwrap_or(0)),
                        SizeSpec::Named(n) => VecSize::Named(n.name.clone()),
                        SizeSpec::LenOf(n) => VecSize::SameAs(n.name.clone()),
                    };
                    (VarKind::DataVec(v), vty, (Shape::Vector(size), v))
                }
            };
            let slot = shape.1;
            self.scopes[0].insert(
                name.name.clone(),
                Var {
                    kind,
                    ty: vty,
                    slot,
                    span: name.span,
                },
            );
            decls.push(DataDecl {
                name: name.name.clone(),
                ty: DataType {
                    elem,
                    shape: shape.0,
                },
            });
            index.push(slot);
        }
        self.n_data_slots = self.n_slots;
        // Named sizes must be scalar int data; `len(x)` sizes must name a data vector.
        for s in body {
            let StmtKind::Data {
                ty: ast::TypeSpec {
                    size: Some(size), ..
                },
                ..
            } = &s.kind
            else {
                continue;
            };
            if let SizeSpec::LenOf(n) = size {
                match self.lookup(&n.name).map(|v| v.kind) {
                    Some(VarKind::DataVec(_)) => {}
                    Some(_) => self.error(
                        DiagKind::TypeMismatch,
                        n.span,
                        format!("`len({})` needs a data vector", n.name),
                    ),
                    None => self.undefined(n),
                }
            }
            if let SizeSpec::Named(n) = size {
                match self.lookup(&n.name).map(|v| (v.kind, v.ty)) {
                    Some((VarKind::DataScalar, Ty::Int)) => {}
                    Some(_) => self.error(
                        DiagKind::TypeMismatch,
                        n.span,
                        format!("vector size `{}` must be an `int` data declaration", n.name),
                    ),
                    None => self.error(
                        DiagKind::UndefinedName,
                        n.span,
                        format!(
                            "undefined size `{}`: declare it as `data {}: int;`",
                            n.name, n.name
                        ),
                    ),
                }
            }
        }
        (decls, index)
    }

    pub(super) fn output(&mut self, n: &Ident) {
        if self.output_names.contains(&n.name) {
            self.error(
                DiagKind::Duplicate,
                n.span,
                format!("`{}` is already an output", n.name),
            );
            return;
        }
        if let Some(v) = self.lookup(&n.name).cloned() {
            if matches!(v.kind, VarKind::DataVec(_)) {
                self.error(
                    DiagKind::TypeMismatch,
                    n.span,
                    format!(
                        "cannot output data vector `{}`; outputs are scalars or indexed sites",
                        n.name
                    ),
                );
                return;
            }
            self.outputs.push(OutputItem::Scalar {
                name: n.name.clone(),
                slot: v.slot,
            });
        } else if let Some(a) = self.arrays.get(&n.name).cloned() {
            let extents: Option<Vec<Ex>> = a.extents.into_iter().collect();
            let Some(extents) = extents else {
                self.error(
                    DiagKind::Invalid,
                    n.span,
                    format!(
                        "cannot output `{}`: its length must follow from the data; write it as `{0}[i]` inside `for i in lo..hi` with `hi` computed from data only",
                        n.name
                    ),
                );
                return;
            };
            self.outputs.push(OutputItem::Array {
                name: n.name.clone(),
                arr: a.id,
                extents,
            });
        } else {
            self.undefined(n);
            return;
        }
        self.output_names.push(n.name.clone());
    }
}
