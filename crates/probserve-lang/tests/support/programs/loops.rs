//! Loops and what is written inside them: `for` statements and their upper bounds
//! (constants, data, `len(x)`, `let`s of those, latent counts), indexed sites and the
//! indexes they are written at, observations of data-vector elements, and which site
//! elements are certainly written after a loop.

use super::{
    Bound, DISTS, Expr, Gen, Kind, Loop, Sign, Site, Size, Stmt, Ty, Var, observable, safe_for,
};

impl Gen<'_> {
    pub(super) fn for_stmt(&mut self, out: &mut Vec<Stmt>) {
        let nested = !self.loops.is_empty();
        let lo = if self.risky() {
            self.f.add("loop:negative_start");
            -1
        } else {
            *self.tape.pick(&[0, 0, 0, 0, 1, 2])
        };
        let bound = self.bound(out, nested);
        self.f.add("loop");
        if nested {
            self.f.add("loop:nested");
        }
        let (var, hi) = (self.fresh("i"), bound.hi.clone());
        let top = self.scopes.len() == 1;
        let pending = Vec::new();
        self.loops.push(Loop {
            var: var.clone(),
            lo,
            bound,
            top,
            pending,
        });
        let sign = if lo >= 0 { Sign::Count } else { Sign::Any };
        let body = self.block(Some(Var::new(&var, Ty::Int, Kind::LoopVar, sign)));
        // The sites written at the variable of a top-level loop over a data-fixed range
        // are certainly written from here on.
        let l = self.loops.pop().expect("the loop");
        match l.bound.exact {
            Some(hi) if l.top && l.lo >= 0 && hi > l.lo => {
                for k in l.pending {
                    self.sites[k].written = Some((l.lo, hi));
                }
            }
            _ => {}
        }
        out.push(Stmt::For { var, lo, hi, body });
    }

    /// A loop's upper bound: a constant, data, `len(x)`, `let`s of those, or a latent
    /// count. Bounds of nested loops stay small.
    fn bound(&mut self, out: &mut Vec<Stmt>, nested: bool) -> Bound {
        let k = self.tape.below(if nested { 4 } else { 8 });
        if k == 0 {
            let n = i64::from(self.tape.below(if nested { 4 } else { 6 }));
            return Bound::exact(Expr::Int(n), n, None);
        }
        if k == 3
            && let Some(b) = self.latent_bound(out)
        {
            return b;
        }
        self.f.add("loop:data_bound");
        let base = self.data_bound(if nested { 4 } else { 13 });
        let n = base.exact.unwrap_or(0);
        let (hi, n) = match k {
            4 => (Expr::bin("-", base.hi, Expr::Int(1)), n - 1),
            5 => (Expr::bin("+", base.hi, Expr::Int(1)), n + 1),
            6 => (
                Expr::call(self.func(&["min"]), vec![base.hi, Expr::Int(3)]),
                n.min(3),
            ),
            7 => {
                self.f.add("let:bound");
                let name = self.fresh("m");
                out.push(Stmt::assign(&name, None, base.hi));
                let mut var = Var::new(&name, Ty::Int, Kind::Let, Sign::Count);
                (var.stat, var.known) = (true, Some(n));
                self.declare(var);
                (Expr::Name(name), n)
            }
            _ => return base,
        };
        Bound::exact(hi, n, None)
    }

    /// `len(x)` or `N` for a data vector or int data below `small`.
    fn data_bound(&mut self, small: usize) -> Bound {
        if self.tape.chance(50) {
            let short: Vec<usize> = (0..self.data.vecs.len())
                .filter(|&k| self.data.vecs[k].len < small)
                .collect();
            let k = match self.choose(&short) {
                Some(k) => k,
                None if small > 12 => self.data.generic_vec(&mut self.tape, Ty::Real),
                None => {
                    let len = self.tape.below_usize(small);
                    self.data
                        .vector(&mut self.tape, Ty::Real, Sign::Any, len, Size::Any)
                }
            };
            let (name, len) = (self.data.vecs[k].name.clone(), self.data.vecs[k].len as i64);
            let hi = Expr::call1(self.func(&["len"]), Expr::name(&name));
            return Bound::exact(hi, len, Some(Size::LenOf(name)));
        }
        let sizes: Vec<(String, i64, bool)> = (self.vars())
            .filter_map(|v| Some((v.name.clone(), v.known?, v.kind == Kind::Data)))
            .filter(|&(_, n, _)| (0..small as i64).contains(&n))
            .collect();
        let (name, n, data) = match self.choose(&sizes) {
            Some(s) => s,
            None => {
                let n = self.tape.below_usize(small);
                (
                    self.data
                        .scalar(&mut self.tape, Ty::Int, Sign::Count, n as f64),
                    n as i64,
                    true,
                )
            }
        };
        let size = data.then(|| Size::Named(name.clone()));
        Bound::exact(Expr::Name(name), n, size)
    }

    /// `k`, or `min(k, 3)`, for a latent count `k` (a new one outside loops). Existing
    /// latents may be large, so their bounds are capped.
    fn latent_bound(&mut self, out: &mut Vec<Stmt>) -> Option<Bound> {
        let ints = self.names_where(|v| v.kind == Kind::Latent && v.ty == Ty::Int);
        let fresh = self.loops.is_empty() && (ints.is_empty() || self.tape.chance(50));
        let (name, max) = if fresh {
            let name = self.fresh("k");
            let (dist, args, max) = match self.tape.below(3) {
                0 => (
                    "poisson",
                    vec![Expr::Real(*self.tape.pick(&[2.0, 1.0, 3.0]))],
                    None,
                ),
                1 => {
                    let k = self.data.weights(&mut self.tape);
                    let v = &self.data.vecs[k];
                    (
                        "categorical",
                        vec![Expr::name(&v.name)],
                        Some(v.len as i64 - 1),
                    )
                }
                _ => ("binomial", vec![Expr::Int(4), Expr::Real(0.5)], Some(4)),
            };
            self.f.add(&format!("dist:{dist}"));
            out.push(Stmt::sample(&name, None, dist, args));
            self.declare(Var::new(&name, Ty::Int, Kind::Latent, Sign::Count));
            (name, max)
        } else {
            (self.choose(&ints)?, None)
        };
        self.f.add("loop:latent_bound");
        let (hi, max) = if fresh && self.tape.chance(50) {
            (Expr::Name(name), max)
        } else {
            let cap = 1 + i64::from(self.tape.below(if self.loops.is_empty() { 6 } else { 3 }));
            (
                Expr::call(self.func(&["min"]), vec![Expr::Name(name), Expr::Int(cap)]),
                Some(cap),
            )
        };
        let (exact, stat, size) = (None, false, None);
        Some(Bound {
            hi,
            exact,
            max,
            stat,
            size,
        })
    }

    /// The index of a write in the current loops: the loop variable, or in nested loops
    /// a mixed-radix index of all loop variables, so that no element is written twice
    /// (unless risky). Also: whether the site can be output, and whether the index is
    /// exactly the variable of the only loop.
    fn write_index(&mut self) -> (Expr, bool, bool) {
        let (outer, inner) = (&self.loops[0], self.loops.last().expect("a loop"));
        let (outer_var, outer_stat, inner_var) =
            (outer.var.clone(), outer.bound.stat, inner.var.clone());
        if self.risky() {
            self.f.add("write:risky");
            return match self.tape.below(3) {
                0 => (Expr::Int(0), false, false),
                1 => (
                    Expr::bin("-", Expr::Name(inner_var), Expr::Int(1)),
                    false,
                    false,
                ),
                _ => (Expr::Name(outer_var), outer_stat, false),
            };
        }
        if self.loops.len() == 1 {
            return (Expr::Name(outer_var), outer_stat, true);
        }
        self.f.add("site:nested_index");
        let mut idx = Expr::Name(outer_var);
        for l in &self.loops[1..] {
            let radix = Expr::Int(l.bound.max.unwrap_or(1).max(1));
            idx = Expr::bin("+", Expr::bin("*", idx, radix), Expr::name(&l.var));
        }
        (idx, false, false)
    }

    /// `z[i] ~ dist(...)` or `let t[i] = ...` (at a constant index outside loops).
    pub(super) fn indexed(&mut self, out: &mut Vec<Stmt>, latent: bool) {
        let name = self.fresh(if latent { "z" } else { "t" });
        // The value first: it may read the sites written before, not this one.
        let (mut stmt, ty) = if latent {
            let dist = *self.tape.pick(DISTS);
            let (args, _) = self.dist_args(dist.0);
            (Stmt::sample(&name, None, dist.0, args), dist.1)
        } else {
            let (value, ty, _) = self.value_expr();
            (Stmt::assign(&name, None, value), ty)
        };
        let (index, outputable, plain) = if self.loops.is_empty() {
            self.f.add("site:outside_loop");
            (Expr::Int(i64::from(self.tape.below(4))), false, false)
        } else {
            self.write_index()
        };
        let written = match index {
            Expr::Int(c) if self.scopes.len() == 1 => Some((c, c + 1)),
            _ => None,
        };
        let k = self.sites.len();
        if !self.loops.is_empty() {
            let scope = self.scopes.last_mut().expect("a scope");
            if plain && scope.loop_body {
                self.loops[0].pending.push(k);
            }
            scope.safe.push((k, index.clone()));
        }
        if let Stmt::Sample { index: i, .. } | Stmt::Let { index: i, .. } = &mut stmt {
            *i = Some(index);
        }
        self.f.add(if latent { "site:latent" } else { "site:let" });
        out.push(stmt);
        self.sites.push(Site {
            name,
            ty,
            latent,
            outputable,
            written,
        });
    }

    /// `y[i] ~ dist(...)` for a data vector `y` that the loop stays inside (unless risky).
    pub(super) fn observe_elem(&mut self, out: &mut Vec<Stmt>) {
        let l = self.loops[0].clone();
        let Some(max) = l.bound.max.filter(|_| l.lo >= 0) else {
            return self.let_stmt(out);
        };
        let dist = *self.tape.pick(DISTS);
        let (args, _) = self.dist_args(dist.0);
        let risky = self.risky();
        let fit: Vec<usize> = (0..self.data.vecs.len())
            .filter(|&k| {
                let v = &self.data.vecs[k];
                !v.observed && observable(v.elem, dist.1) && (risky || safe_for(&l, v.len))
            })
            .collect();
        let k = match self.choose(&fit) {
            Some(k) if risky || self.tape.chance(60) => k,
            _ => {
                let len = usize::try_from(l.bound.exact.unwrap_or(max)).unwrap_or(0);
                let size = match l.bound.size {
                    Some(size) => size,
                    None if self.tape.chance(50) => Size::Fixed(len),
                    None => Size::Any,
                };
                self.data.vector(&mut self.tape, dist.1, dist.2, len, size)
            }
        };
        self.data.vecs[k].observed = true;
        self.f.add("observe:vector");
        out.push(Stmt::sample(
            &self.data.vecs[k].name,
            Some(Expr::Name(l.var)),
            dist.0,
            args,
        ));
    }
}
