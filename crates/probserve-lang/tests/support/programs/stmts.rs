//! Statement generation: statement sequences and blocks, the choice of the next
//! statement, and the statements other than loops and indexed sites: `let`s, scalar
//! latents and observations, `factor`s, `if`/`else if`/`else` and `output`.

use super::{DISTS, Expr, Gen, Kind, Scope, Sign, Stmt, Ty, Var, observable};

impl Gen<'_> {
    /// Up to `max` statements (at least `min`), each further one with `more`% chance.
    pub(super) fn stmts(&mut self, out: &mut Vec<Stmt>, min: usize, max: usize, more: u32) {
        let mut n = 0;
        while self.budget > 0 && n < max && (n < min || self.tape.chance(more)) {
            self.stmt(out);
            n += 1;
        }
    }

    /// A block in a new scope; a loop body declares the loop variable first.
    pub(super) fn block(&mut self, loop_var: Option<Var>) -> Vec<Stmt> {
        let loop_body = loop_var.is_some();
        self.scopes.push(Scope {
            vars: loop_var.into_iter().collect(),
            safe: Vec::new(),
            loop_body,
        });
        let mut body = Vec::new();
        self.stmts(&mut body, 1, if loop_body { 4 } else { 3 }, 50);
        self.scopes.pop();
        body
    }

    fn stmt(&mut self, out: &mut Vec<Stmt>) {
        self.budget -= 1;
        let d = self.loops.len();
        let nest = self.scopes.len() < 5;
        let (outside, inside) = (u32::from(d == 0), u32::from(d > 0));
        let weights = [
            3,                                 // let
            4 * outside,                       // latent
            2 * outside,                       // observed scalar
            1,                                 // factor
            2 * u32::from(nest),               // if
            3 * u32::from(nest && d < 2),      // for
            1 + 3 * inside,                    // indexed latent
            1 + 2 * inside,                    // indexed let
            4 * u32::from(d == 1),             // observed vector element
            u32::from(self.scopes.len() == 1), // output
        ];
        match self.tape.weighted(&weights) {
            0 => self.let_stmt(out),
            1 => {
                let dist = *self.tape.pick(DISTS);
                let (args, _) = self.dist_args(dist.0);
                let name = self.fresh("a");
                out.push(Stmt::sample(&name, None, dist.0, args));
                self.declare(Var::new(&name, dist.1, Kind::Latent, dist.2));
            }
            2 => self.observe(out),
            3 => self.factor(out),
            4 => {
                let s = self.if_stmt(0);
                out.push(s);
            }
            5 => self.for_stmt(out),
            6 => self.indexed(out, true),
            7 => self.indexed(out, false),
            8 => self.observe_elem(out),
            _ => self.output(out, false),
        }
    }

    /// A value for a `let`: its expression, type and range.
    pub(super) fn value_expr(&mut self) -> (Expr, Ty, Sign) {
        let depth = 1 + self.tape.below(3);
        match self.tape.below(7) {
            0 | 1 => (self.expr(Ty::Real, depth), Ty::Real, Sign::Any),
            2 => (self.expr(Ty::Int, depth), Ty::Int, Sign::Any),
            3 => (self.expr(Ty::Bool, depth), Ty::Bool, Sign::Any),
            4 => (self.pos(), Ty::Real, Sign::Pos),
            5 => (self.prob(), Ty::Real, Sign::Unit),
            _ => (self.count(), Ty::Int, Sign::Count),
        }
    }

    pub(super) fn let_stmt(&mut self, out: &mut Vec<Stmt>) {
        let (value, ty, sign) = self.value_expr();
        self.f.add("let");
        let name = self.fresh("v");
        let mut var = Var::new(&name, ty, Kind::Let, sign);
        var.stat = self.is_static(&value);
        out.push(Stmt::assign(&name, None, value));
        self.declare(var);
    }

    /// Observes a scalar data: an existing one, or a new one with a value in the support.
    fn observe(&mut self, out: &mut Vec<Stmt>) {
        let dist = *self.tape.pick(DISTS);
        let (args, cats) = self.dist_args(dist.0);
        let reuse = self.names_where(|v| {
            v.kind == Kind::Data && observable(v.ty, dist.1) && !self.observed.contains(&v.name)
        });
        let target = match self.choose(&reuse) {
            Some(n) if self.tape.chance(30) => n,
            _ if dist.1 == Ty::Bool && self.tape.chance(30) => {
                let x = f64::from(self.tape.below(2));
                self.data.scalar(&mut self.tape, Ty::Int, Sign::Count, x)
            }
            _ if cats > 0 => {
                let x = self.tape.below_usize(cats) as f64;
                self.data.scalar(&mut self.tape, Ty::Int, Sign::Count, x)
            }
            _ => self.data.new_scalar(&mut self.tape, dist.1, dist.2),
        };
        self.f.add("observe:scalar");
        out.push(Stmt::sample(&target, None, dist.0, args));
        self.observed.push(target);
    }

    fn factor(&mut self, out: &mut Vec<Stmt>) {
        self.f.add("factor");
        let d = self.tape.below(3);
        let e = match self.tape.below(4) {
            0 | 1 => Expr::unary("-", Expr::call1("abs", self.expr(Ty::Real, d))),
            2 => self.expr(Ty::Real, d),
            _ => {
                self.f.add("factor:reject");
                let minus_inf = Expr::bin("/", Expr::Real(-1.0), Expr::Real(0.0));
                Expr::cond(self.expr(Ty::Bool, 1), Expr::Real(0.0), minus_inf)
            }
        };
        out.push(Stmt::Factor(e));
    }

    fn if_stmt(&mut self, chain: u32) -> Stmt {
        self.f.add("if");
        let on_latent = if self.tape.chance(35) {
            self.latent_cond()
        } else {
            None
        };
        let cond = match on_latent {
            Some(c) => c,
            None => {
                let depth = 1 + self.tape.below(2);
                self.expr(Ty::Bool, depth)
            }
        };
        if self.reads_latent(&cond) {
            self.f.add("if:latent_cond");
        }
        let then = self.block(None);
        let otherwise = match self.tape.below(3) {
            1 => {
                self.f.add("if:else");
                self.block(None)
            }
            2 if chain < 2 => {
                self.f.add("if:else_if");
                vec![self.if_stmt(chain + 1)]
            }
            _ => Vec::new(),
        };
        Stmt::If {
            cond,
            then,
            otherwise,
        }
    }

    /// `mu > 0.0`-style conditions on a scalar latent.
    fn latent_cond(&mut self) -> Option<Expr> {
        let latents: Vec<(String, Ty)> = (self.vars().filter(|v| v.kind == Kind::Latent))
            .map(|v| (v.name.clone(), v.ty))
            .collect();
        let (name, ty) = self.choose(&latents)?;
        let x = Expr::Name(name);
        Some(match ty {
            Ty::Bool => x,
            Ty::Int => Expr::bin(self.op(&[">", "<", "=="]), x, self.constant(Ty::Int)),
            Ty::Real => Expr::bin(self.op(&[">", "<"]), x, self.constant(Ty::Real)),
        })
    }

    /// `output ...;` of some top-level scalars and outputable sites (at the end of the
    /// model, most of those not output yet).
    pub(super) fn output(&mut self, out: &mut Vec<Stmt>, last: bool) {
        let top = self.data.scalars.iter().chain(&self.scopes[0].vars);
        let scalars = top.map(|v| (v.name.clone(), "scalar"));
        let sites =
            (self.sites.iter().filter(|s| s.outputable)).map(|s| (s.name.clone(), "indexed"));
        let candidates: Vec<(String, &str)> = scalars.chain(sites).collect();
        let mut names = Vec::new();
        for (name, what) in candidates {
            let chosen = if last {
                !self.tape.chance(15)
            } else {
                self.tape.chance(50)
            };
            if chosen && !self.outputs.contains(&name) {
                self.f.add(&format!("output:{what}"));
                names.push(name);
            }
        }
        if !names.is_empty() {
            self.outputs.extend(names.iter().cloned());
            out.push(Stmt::Output(names));
        }
    }
}
