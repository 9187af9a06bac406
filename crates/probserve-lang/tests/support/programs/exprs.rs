//! Expression generation: constants, scalars, in-range reads of data vectors and of
//! written indexed-site elements, reductions, operators, function calls and
//! conditionals of a requested type, with divisors and function arguments kept in
//! their domains (unless risky); and what an expression reads (latents, or data only).

use super::{CMP, Expr, FN1, Gen, INTS, Kind, REALS, Ty, fits, safe_for};

impl Gen<'_> {
    pub(super) fn op(&mut self, ops: &[&'static str]) -> &'static str {
        let op = *self.tape.pick(ops);
        self.f.add(&format!("op:{op}"));
        op
    }

    /// One of the functions `fs`, counted.
    pub(super) fn func(&mut self, fs: &[&'static str]) -> &'static str {
        let f = *self.tape.pick(fs);
        self.f.add(&format!("fn:{f}"));
        f
    }

    pub(super) fn constant(&mut self, ty: Ty) -> Expr {
        match ty {
            Ty::Real => Expr::Real(*self.tape.pick(REALS)),
            Ty::Int => Expr::Int(*self.tape.pick(INTS)),
            Ty::Bool => Expr::Bool(self.tape.below(2) == 1),
        }
    }

    /// A constant, scalar, data-vector element, site element or reduction.
    fn leaf(&mut self, ty: Ty) -> Expr {
        let e = match self.tape.below(6) {
            0 => None,
            1 | 2 => {
                let names = self.names_where(|v| fits(v.ty, ty));
                self.choose(&names).map(Expr::Name)
            }
            3 => self.vec_elem(ty),
            4 => self.site_read(ty),
            _ => self.reduction(ty),
        };
        e.unwrap_or_else(|| self.constant(ty))
    }

    /// An element of a data vector at an index in range (unless risky).
    fn vec_elem(&mut self, ty: Ty) -> Option<Expr> {
        let fit: Vec<usize> = (0..self.data.vecs.len())
            .filter(|&k| fits(self.data.vecs[k].elem, ty))
            .collect();
        let k = self.choose(&fit)?;
        let (name, len) = (self.data.vecs[k].name.clone(), self.data.vecs[k].len);
        if self.risky() {
            self.f.add("index:risky");
            return Some(Expr::index(&name, self.expr(Ty::Int, 1)));
        }
        let mut idx: Vec<Expr> = (self.loops.iter().filter(|l| safe_for(l, len)))
            .map(|l| Expr::name(&l.var))
            .collect();
        if len > 0 {
            idx.push(Expr::Int(self.tape.below_usize(len) as i64));
        }
        let i = self.choose(&idx)?;
        self.f.add("read:vector");
        Some(Expr::index(&name, i))
    }

    /// An element of an indexed site that is certainly written (unless risky).
    fn site_read(&mut self, ty: Ty) -> Option<Expr> {
        if self.risky() {
            let fit: Vec<usize> = (0..self.sites.len())
                .filter(|&k| fits(self.sites[k].ty, ty))
                .collect();
            let k = self.choose(&fit)?;
            self.f.add("read:site_risky");
            let name = self.sites[k].name.clone();
            return Some(Expr::index(&name, self.expr(Ty::Int, 1)));
        }
        let mut cands: Vec<(usize, Expr)> = (self.scopes.iter().flat_map(|s| s.safe.iter()))
            .filter(|(k, _)| fits(self.sites[*k].ty, ty))
            .cloned()
            .collect();
        for (k, s) in self.sites.iter().enumerate() {
            let Some((lo, hi)) = s.written.filter(|_| fits(s.ty, ty)) else {
                continue;
            };
            cands.extend([(k, Expr::Int(lo)), (k, Expr::Int(hi - 1))]);
            for l in &self.loops {
                if (l.bound.max).is_some_and(|m| m <= l.lo || (l.lo >= lo && m <= hi)) {
                    cands.push((k, Expr::name(&l.var)));
                }
            }
        }
        let (k, i) = self.choose(&cands)?;
        self.f.add("read:site");
        Some(Expr::index(&self.sites[k].name, i))
    }

    /// `len`, `sum`, `mean`, `sd`, `min`, `max` or `dot` of data vectors.
    pub(super) fn reduction(&mut self, ty: Ty) -> Option<Expr> {
        let k = self.tape.below_usize(self.data.vecs.len());
        let v = self.data.vecs.get(k)?.clone();
        let f = match (ty, v.elem) {
            (Ty::Bool, _) | (Ty::Real, Ty::Bool) => return None,
            (Ty::Int, Ty::Int) => *self.tape.pick(&["len", "sum", "min", "max"]),
            (Ty::Int, _) => "len",
            (Ty::Real, _) => *self.tape.pick(&["sum", "mean", "sd", "min", "max", "dot"]),
        };
        let need = match f {
            "sd" => 2,
            "mean" | "min" | "max" => 1,
            _ => 0,
        };
        let f = if v.len < need && !self.risky() {
            "sum"
        } else {
            f
        };
        let mut args = vec![Expr::name(&v.name)];
        if f == "dot" {
            let same: Vec<String> = (self.data.vecs.iter())
                .filter(|w| w.elem != Ty::Bool && w.len == v.len)
                .map(|w| w.name.clone())
                .collect();
            args.extend(self.choose(&same).map(Expr::Name));
        }
        let key = if matches!(f, "min" | "max") {
            "(v)"
        } else {
            ""
        };
        self.f.add(&format!("fn:{f}{key}"));
        Some(Expr::call(f, args))
    }

    /// An expression of type `ty`, nested at most `depth` deep (plus range guards).
    pub(super) fn expr(&mut self, ty: Ty, depth: u32) -> Expr {
        let Some(d) = depth.checked_sub(1) else {
            return self.leaf(ty);
        };
        let num = ty != Ty::Bool;
        match self.tape.below(10) {
            0..=2 => self.leaf(ty),
            3 if num => Expr::bin(
                self.op(&["+", "-", "*"]),
                self.expr(ty, d),
                self.expr(ty, d),
            ),
            4 if num => {
                // A divisor away from 0, unless risky.
                let op = self.op(if ty == Ty::Int { &["%"] } else { &["/", "%"] });
                let a = self.expr(ty, d);
                let b = match ty {
                    _ if self.risky() => self.expr(ty, d),
                    Ty::Int => Expr::Int(1 + i64::from(self.tape.below(4))),
                    _ => Expr::bin("+", Expr::call1("abs", self.expr(ty, d)), Expr::Real(1.0)),
                };
                Expr::bin(op, a, b)
            }
            5 if ty == Ty::Int && self.tape.chance(50) => {
                Expr::call1(self.func(&["abs"]), self.expr(ty, d))
            }
            5 if num => {
                self.f.add("op:neg");
                Expr::unary("-", self.expr(ty, d))
            }
            6 if ty == Ty::Real => self.call1(d),
            6 | 7 if num => {
                let fs: &[&'static str] = if ty == Ty::Int {
                    &["min", "max"]
                } else {
                    &["pow", "min", "max"]
                };
                let f = self.func(fs);
                let (a, b) = (self.expr(ty, d), self.expr(ty, d));
                if f != "pow" || self.risky() {
                    return Expr::call(f, vec![a, b]);
                }
                let base = Expr::bin("+", Expr::call1("abs", a), Expr::Real(0.5));
                Expr::call(
                    f,
                    vec![base, Expr::Real(*self.tape.pick(&[2.0, 0.5, -1.0, 3.0]))],
                )
            }
            8 if ty == Ty::Real => self.expr(Ty::Int, depth),
            3 | 4 => {
                let op = self.op(CMP);
                let (ta, tb) = (
                    *self.tape.pick(&[Ty::Real, Ty::Int]),
                    *self.tape.pick(&[Ty::Real, Ty::Int]),
                );
                Expr::bin(op, self.expr(ta, d), self.expr(tb, d))
            }
            5 | 6 => Expr::bin(
                self.op(&["&&", "||", "==", "!="]),
                self.expr(ty, d),
                self.expr(ty, d),
            ),
            7 => Expr::unary(self.op(&["!"]), self.expr(ty, d)),
            _ => {
                self.f.add("op:?:");
                let c = self.expr(Ty::Bool, d);
                let a = self.expr(ty, d);
                let other = if ty == Ty::Real && self.tape.chance(30) {
                    Ty::Int
                } else {
                    ty
                };
                Expr::cond(c, a, self.expr(other, d))
            }
        }
    }

    /// A one-argument function, its argument kept in the domain unless risky.
    fn call1(&mut self, d: u32) -> Expr {
        let names: Vec<&'static str> = FN1.split_whitespace().collect();
        let f = self.func(&names);
        let a = self.expr(Ty::Real, d);
        let a = match f {
            _ if self.risky() => a,
            "log" | "lgamma" => Expr::bin("+", Expr::call1("abs", a), Expr::Real(0.5)),
            "log1p" | "sqrt" => Expr::call1("abs", a),
            "logit" => Expr::call1("inv_logit", a),
            _ => a,
        };
        Expr::call1(f, a)
    }

    /// Whether `e` reads a latent (scalar or indexed).
    pub(super) fn reads_latent(&self, e: &Expr) -> bool {
        let mut names = Vec::new();
        e.names(&mut names);
        names.iter().any(|n| {
            self.vars().any(|v| v.name == *n && v.kind == Kind::Latent)
                || self.sites.iter().any(|s| s.latent && s.name == *n)
        })
    }

    /// Whether `e` is computed from data only.
    pub(super) fn is_static(&self, e: &Expr) -> bool {
        let mut names = Vec::new();
        e.names(&mut names);
        names.iter().all(|n| {
            self.data.vecs.iter().any(|v| v.name == *n)
                || self.vars().any(|v| v.name == *n && v.stat)
        })
    }
}
