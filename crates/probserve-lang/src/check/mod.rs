//! Semantic checks and lowering: syntax tree to the slot-resolved [`ir::Program`].
//!
//! The checker resolves every name to a slot, array or data vector, checks types,
//! arities and parameter types, decides which `~` statements sample latents and which
//! observe data, interns site names, and reports every problem it finds (an
//! expression that failed to check gets the error type, which silences follow-on
//! errors about it).

mod decl;
mod expr;
mod tilde;

use std::collections::HashMap;

use probserve_runtime::SiteId;

use crate::ast::{self, Ident, Stmt, StmtKind, Target};
use crate::builtins::{self, Ty};
use crate::diag::{DiagKind, Sink, Span};
use crate::ir::{self, Dest, Ex, OutputItem, St};
use crate::model::{DataDecl, ElemType, LatentInfo};

/// The result of checking a program.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) program: ir::Program,
    pub(crate) data: Vec<DataDecl>,
    /// For each data declaration: its slot (scalars) or vector index (vectors).
    pub(crate) data_index: Vec<u32>,
    pub(crate) latents: Vec<LatentInfo>,
    pub(crate) output_names: Vec<String>,
    pub(crate) array_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarKind {
    DataScalar,
    DataVec(u32),
    Let,
    Latent,
    LoopVar,
}

#[derive(Debug, Clone)]
pub(crate) struct Var {
    kind: VarKind,
    ty: Ty,
    slot: u32,
    span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrKind {
    Latent,
    Let,
}

#[derive(Debug, Clone)]
pub(crate) struct Array {
    id: u32,
    ty: Ty,
    kind: ArrKind,
    span: Span,
    site: Option<SiteId>,
    /// For each write site, the data-only upper loop bound that sizes it (if any).
    extents: Vec<Option<Ex>>,
}

pub(crate) struct Loop {
    var_slot: u32,
    hi_static: Option<Ex>,
}

pub(crate) struct Checker<'a, 's> {
    sink: &'a mut Sink<'s>,
    scopes: Vec<HashMap<String, Var>>,
    arrays: HashMap<String, Array>,
    n_slots: u32,
    n_arrays: u32,
    sites: Vec<String>,
    site_ids: HashMap<String, SiteId>,
    loops: Vec<Loop>,
    derived: Vec<ir::DerivedEx>,
    observed_scalars: HashMap<String, Span>,
    static_of_slot: HashMap<u32, Ex>,
    latents: Vec<LatentInfo>,
    outputs: Vec<OutputItem>,
    output_names: Vec<String>,
    n_data_slots: u32,
    factor_site: Option<SiteId>,
}

/// Checks and lowers a parsed program.
pub(crate) fn check(program: &ast::Program, sink: &mut Sink<'_>) -> Checked {
    let mut c = Checker {
        sink,
        scopes: vec![HashMap::new()],
        arrays: HashMap::new(),
        n_slots: 0,
        n_arrays: 0,
        sites: Vec::new(),
        site_ids: HashMap::new(),
        loops: Vec::new(),
        derived: Vec::new(),
        observed_scalars: HashMap::new(),
        static_of_slot: HashMap::new(),
        latents: Vec::new(),
        outputs: Vec::new(),
        output_names: Vec::new(),
        n_data_slots: 0,
        factor_site: None,
    };
    let (data, data_index) = c.declare_data(&program.body);
    let body = c.block(&program.body, true);
    let mut array_names = vec![String::new(); c.n_arrays as usize];
    for (name, a) in &c.arrays {
        if let Some(slot) = array_names.get_mut(a.id as usize) {
            slot.clone_from(name);
        }
    }
    Checked {
        array_names,
        program: ir::Program {
            body,
            n_slots: c.n_slots,
            n_data_slots: c.n_data_slots,
            n_arrays: c.n_arrays,
            derived: c.derived,
            outputs: c.outputs,
            sites: c.sites,
        },
        data,
        data_index,
        latents: c.latents,
        output_names: c.output_names,
    }
}

impl Checker<'_, '_> {
    pub(super) fn error(&mut self, kind: DiagKind, span: Span, msg: impl Into<String>) {
        self.sink.error(kind, span, msg);
    }

    fn block(&mut self, body: &[Stmt], top: bool) -> Vec<St> {
        let mut out = Vec::with_capacity(body.len());
        for s in body {
            // Out of budget: stop checking (the caller answers the budget error).
            if self.sink.meter().tick() {
                break;
            }
            if let Some(st) = self.stmt(s, top) {
                out.push(st);
            }
        }
        out
    }

    fn scoped_block(&mut self, body: &[Stmt]) -> Vec<St> {
        self.scopes.push(HashMap::new());
        let out = self.block(body, false);
        self.scopes.pop();
        out
    }

    fn stmt(&mut self, s: &Stmt, top: bool) -> Option<St> {
        match &s.kind {
            StmtKind::Error => None,
            StmtKind::Data { .. } => {
                if !top {
                    self.error(
                        DiagKind::Misplaced,
                        s.span,
                        "`data` declarations are only allowed at the top level of the model",
                    );
                }
                None
            }
            StmtKind::Let { target, value } => self.let_stmt(target, value),
            StmtKind::Sample { target, dist, args } => self.tilde(target, dist, args),
            StmtKind::Factor(e) => {
                let (value, ty) = self.expr(e);
                self.expect_ty(e.span, ty, Ty::Real, "`factor` takes a real log-weight");
                let site = *self.factor_site.get_or_insert_with(|| {
                    let id = SiteId(u32::try_from(self.sites.len()).unwrap_or(u32::MAX));
                    self.sites.push("factor".to_string());
                    id
                });
                Some(St::Factor { site, value })
            }
            StmtKind::If {
                cond,
                then_body,
                else_body,
            } => {
                let (c, ty) = self.expr(cond);
                self.expect_ty(cond.span, ty, Ty::Bool, "an `if` condition must be a bool");
                let a = self.scoped_block(then_body);
                let b = self.scoped_block(else_body);
                Some(St::If(c, a, b))
            }
            StmtKind::For { var, lo, hi, body } => {
                let (lo_ex, lty) = self.expr(lo);
                self.expect_ty(lo.span, lty, Ty::Int, "loop bounds must be ints");
                let (hi_ex, hty) = self.expr(hi);
                self.expect_ty(hi.span, hty, Ty::Int, "loop bounds must be ints");
                self.scopes.push(HashMap::new());
                let slot = self.declare_scalar(var, VarKind::LoopVar, Ty::Int, None);
                let hi_static = self.staticize(&hi_ex);
                self.loops.push(Loop {
                    var_slot: slot,
                    hi_static,
                });
                let body = self.block(body, false);
                self.loops.pop();
                self.scopes.pop();
                Some(St::For {
                    var: slot,
                    lo: lo_ex,
                    hi: hi_ex,
                    body,
                })
            }
            StmtKind::Output(names) => {
                if !top {
                    self.error(
                        DiagKind::Misplaced,
                        s.span,
                        "`output` is only allowed at the top level of the model",
                    );
                    return None;
                }
                for n in names {
                    self.output(n);
                }
                None
            }
        }
    }

    fn let_stmt(&mut self, target: &Target, value: &ast::Expr) -> Option<St> {
        let (ex, ty) = self.expr(value);
        if ty.is_vector() {
            self.error(
                DiagKind::TypeMismatch,
                value.span,
                "a `let` value must be a scalar",
            );
        }
        match &target.index {
            None => {
                let stat = self.staticize(&ex);
                let slot = self.declare_scalar(&target.name, VarKind::Let, ty, stat);
                Some(St::Assign(Dest::Slot(slot), ex))
            }
            Some(index) => {
                let idx = self.index_expr(index);
                let arr = self.array_write(&target.name, index, ty, ArrKind::Let)?;
                Some(St::Assign(Dest::Arr(arr, idx), ex))
            }
        }
    }

    pub(super) fn lookup(&self, name: &str) -> Option<&Var> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    pub(super) fn declare_scalar(
        &mut self,
        name: &Ident,
        kind: VarKind,
        ty: Ty,
        static_ex: Option<Ex>,
    ) -> u32 {
        if self.lookup(&name.name).is_some() || self.arrays.contains_key(&name.name) {
            self.duplicate(name);
        }
        let slot = self.n_slots;
        self.n_slots += 1;
        if let Some(e) = &static_ex {
            self.static_of_slot.insert(slot, e.clone());
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(
                name.name.clone(),
                Var {
                    kind,
                    ty,
                    slot,
                    span: name.span,
                },
            );
        }
        slot
    }

    pub(super) fn duplicate(&mut self, name: &Ident) {
        let prev = self
            .lookup(&name.name)
            .map(|v| v.span)
            .or_else(|| self.arrays.get(&name.name).map(|a| a.span));
        let line = prev.map(|s| self.line_of(s)).unwrap_or(0);
        self.error(
            DiagKind::Duplicate,
            name.span,
            format!("`{}` is already declared (line {line})", name.name),
        );
    }

    pub(super) fn undefined(&mut self, name: &Ident) {
        // The "did you mean" search looks at every name in scope, so it runs only for
        // a diagnostic that is kept: a source full of undefined names costs time
        // linear in its length, not in names × errors.
        let hint = if self.sink.is_full() {
            String::new()
        } else {
            let known = self
                .scopes
                .iter()
                .flat_map(|s| s.keys().map(String::as_str))
                .chain(self.arrays.keys().map(String::as_str));
            builtins::suggest(&name.name, known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default()
        };
        self.error(
            DiagKind::UndefinedName,
            name.span,
            format!("undefined name `{}`{hint}", name.name),
        );
    }

    /// The 1-based line of `span`'s start (a binary search in the sink's line index).
    pub(super) fn line_of(&self, span: Span) -> usize {
        self.sink.line_at(span.start).0
    }

    pub(super) fn intern(&mut self, name: &str) -> SiteId {
        if let Some(id) = self.site_ids.get(name) {
            return *id;
        }
        let id = SiteId(u32::try_from(self.sites.len()).unwrap_or(u32::MAX));
        self.sites.push(name.to_string());
        self.site_ids.insert(name.to_string(), id);
        id
    }

    /// The expression with `let` slots replaced by their data-only definitions, if it
    /// depends on the data only and its expansion stays within
    /// [`MAX_STATIC_NODES`] (each `let a2 = a1 + a1;` doubles the expansion: without
    /// the cap forty such lines would need 2^40 nodes).
    pub(super) fn staticize(&self, ex: &Ex) -> Option<Ex> {
        let e = self.expand_static(ex)?;
        (nodes(&e, MAX_STATIC_NODES + 1) <= MAX_STATIC_NODES).then_some(e)
    }

    fn expand_static(&self, ex: &Ex) -> Option<Ex> {
        let n = self.n_data_slots;
        let sub = |e: &Ex| self.expand_static(e).map(Box::new);
        Some(match ex {
            Ex::Slot(s) if *s >= n => self.static_of_slot.get(s)?.clone(),
            Ex::Const(_) | Ex::Derived(_) | Ex::Slot(_) => ex.clone(),
            Ex::ArrElem(..) => return None,
            Ex::VecElem(v, a) => Ex::VecElem(*v, sub(a)?),
            Ex::Call1(f, a) => Ex::Call1(*f, sub(a)?),
            Ex::Call2(f, a, b) => Ex::Call2(*f, sub(a)?, sub(b)?),
            Ex::And(a, b) => Ex::And(sub(a)?, sub(b)?),
            Ex::Or(a, b) => Ex::Or(sub(a)?, sub(b)?),
            Ex::Cond(c, a, b) => Ex::Cond(sub(c)?, sub(a)?, sub(b)?),
        })
    }

    pub(super) fn expect_ty(&mut self, span: Span, got: Ty, want: Ty, what: &str) {
        if !got.fits(want) {
            self.error(
                DiagKind::TypeMismatch,
                span,
                format!("{what}; found {}", got.name()),
            );
        }
    }

    pub(super) fn index_expr(&mut self, index: &ast::Expr) -> Ex {
        let (ex, ty) = self.expr(index);
        if ty != Ty::Int && ty != Ty::Error {
            self.error(
                DiagKind::TypeMismatch,
                index.span,
                format!("an index must be an int, found {}", ty.name()),
            );
        }
        ex
    }
}

/// The most nodes a data-only definition is expanded to (see `staticize`).
const MAX_STATIC_NODES: usize = 4096;

/// Nodes of `ex`, counting at most to `limit`.
fn nodes(ex: &Ex, limit: usize) -> usize {
    let mut count = 0;
    let mut stack = vec![ex];
    while let Some(e) = stack.pop() {
        count += 1;
        if count >= limit {
            return count;
        }
        match e {
            Ex::Const(_) | Ex::Derived(_) | Ex::Slot(_) | Ex::ArrElem(..) => {}
            Ex::VecElem(_, a) | Ex::Call1(_, a) => stack.push(a),
            Ex::Call2(_, a, b) | Ex::And(a, b) | Ex::Or(a, b) => stack.extend([&**a, &**b]),
            Ex::Cond(c, a, b) => stack.extend([&**c, &**a, &**b]),
        }
    }
    count
}

pub(crate) fn elem_of(ty: Ty) -> ElemType {
    match ty {
        Ty::Int | Ty::IntVec => ElemType::Int,
        Ty::Bool | Ty::BoolVec => ElemType::Bool,
        _ => ElemType::Real,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn doubling_data_only_definitions_compile_in_bounded_space() {
        // `let a{i} = a{i-1} + a{i-1};` forty times: the expansion of `a39` as a loop
        // bound would have 2^40 nodes.
        let mut s = String::from("model m {\n  data n: int;\n  let a0 = n;\n");
        for i in 1..40 {
            s.push_str(&format!("  let a{i} = a{} + a{};\n", i - 1, i - 1));
        }
        s.push_str("  for i in 0..a39 { z[i] ~ normal(0, 1); }\n  output z;\n}\n");
        let _ = crate::compile(&s);
        // A small data-only bound is still static.
        let small = "model m {\n  data n: int;\n  let k = n + n;\n  for i in 0..k { z[i] ~ normal(0, 1); }\n  output z;\n}\n";
        assert!(crate::compile(small).is_ok());
    }
}
