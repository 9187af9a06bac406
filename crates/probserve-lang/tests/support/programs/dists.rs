//! Distribution arguments: parameters kept in their ranges (positive scales, rates and
//! shapes, probabilities, trial counts, categorical tables) unless risky, built from
//! constants, scalars and data elements known to be in range, or guarded expressions.

use super::{Expr, Gen, PROBS, REALS, SCALES, Sign, Ty, safe_for};

impl Gen<'_> {
    /// A scalar or data-vector element whose value is in one of the ranges `signs`.
    fn signed_leaf(&mut self, signs: &[Sign]) -> Option<Expr> {
        let mut cands: Vec<Expr> = (self.names_where(|v| signs.contains(&v.sign)).iter())
            .map(|n| Expr::name(n))
            .collect();
        let vecs = self.data.vecs.iter();
        for v in vecs.filter(|v| signs.contains(&v.sign) && v.len > 0) {
            cands.push(Expr::index(&v.name, Expr::Int(0)));
            for l in self.loops.iter().filter(|l| safe_for(l, v.len)) {
                cands.push(Expr::index(&v.name, Expr::name(&l.var)));
            }
        }
        self.choose(&cands)
    }

    /// A real > 0 (unless risky): a scale, rate or shape.
    pub(super) fn pos(&mut self) -> Expr {
        if self.risky() {
            self.f.add("param:invalid");
            return match self.tape.below(3) {
                0 => Expr::Real(0.0),
                1 => Expr::unary("-", Expr::Real(*self.tape.pick(SCALES))),
                _ => self.expr(Ty::Real, 1),
            };
        }
        match self.tape.below(5) {
            0 => Expr::Real(*self.tape.pick(SCALES)),
            1 => (self.signed_leaf(&[Sign::Pos, Sign::Unit])).unwrap_or(Expr::Real(1.5)),
            2 => Expr::call1(self.func(&["exp"]), self.expr(Ty::Real, 1)),
            3 => {
                let a = Expr::call1(self.func(&["abs"]), self.expr(Ty::Real, 1));
                Expr::bin("+", a, Expr::Real(0.5))
            }
            _ => Expr::Name(self.data.new_scalar(&mut self.tape, Ty::Real, Sign::Pos)),
        }
    }

    /// A real in (0, 1) (unless risky): a probability.
    pub(super) fn prob(&mut self) -> Expr {
        if self.risky() {
            self.f.add("param:invalid");
            return match self.tape.below(2) {
                0 => Expr::Real(1.5),
                _ => self.expr(Ty::Real, 1),
            };
        }
        self.valid_prob()
    }

    fn valid_prob(&mut self) -> Expr {
        match self.tape.below(4) {
            0 => Expr::Real(*self.tape.pick(PROBS)),
            1 => self.signed_leaf(&[Sign::Unit]).unwrap_or(Expr::Real(0.5)),
            2 => Expr::call1(self.func(&["inv_logit"]), self.expr(Ty::Real, 1)),
            _ => {
                let p = match self.signed_leaf(&[Sign::Unit]) {
                    Some(p) => p,
                    None => Expr::Name(self.data.new_scalar(&mut self.tape, Ty::Real, Sign::Unit)),
                };
                Expr::bin("-", Expr::Real(1.0), p)
            }
        }
    }

    /// The success probability of a geometric: mostly at least 0.001, so that counts stay
    /// small, sometimes anything in (0, 1] (tiny `p` gives counts near 2^53; the
    /// runtime's sampler once looped forever below p ≈ 1e-16), and when risky clearly
    /// out of range.
    fn geometric_prob(&mut self) -> Expr {
        if self.risky() {
            self.f.add("param:invalid");
            return Expr::Real(*self.tape.pick(&[1.5, 0.0, -0.5]));
        }
        let p = self.valid_prob();
        if self.tape.chance(10) {
            p
        } else {
            Expr::call("max", vec![p, Expr::Real(0.001)])
        }
    }

    /// An int ≥ 0 (unless risky): a binomial trial count.
    pub(super) fn count(&mut self) -> Expr {
        if self.risky() {
            self.f.add("param:invalid");
            return self.expr(Ty::Int, 1);
        }
        match self.tape.below(4) {
            0 => Expr::Int(i64::from(self.tape.below(9))),
            1 => self.signed_leaf(&[Sign::Count]).unwrap_or(Expr::Int(3)),
            2 => Expr::call1(self.func(&["abs"]), self.expr(Ty::Int, 1)),
            _ => match self.reduction(Ty::Int) {
                Some(Expr::Call("len", a)) => Expr::Call("len", a),
                _ => Expr::Int(4),
            },
        }
    }

    /// Arguments for `dist`, and the number of categories of a categorical.
    pub(super) fn dist_args(&mut self, dist: &str) -> (Vec<Expr>, usize) {
        self.f.add(&format!("dist:{dist}"));
        let d = self.tape.below(3);
        let args = match dist {
            "normal" | "lognormal" | "cauchy" => vec![self.expr(Ty::Real, d), self.pos()],
            "half_normal" | "exponential" | "poisson" => vec![self.pos()],
            "student_t" => vec![self.pos(), self.expr(Ty::Real, d), self.pos()],
            "gamma" | "inv_gamma" | "beta" => vec![self.pos(), self.pos()],
            "uniform" if self.risky() => {
                self.f.add("param:invalid");
                vec![self.expr(Ty::Real, d), self.expr(Ty::Real, d)]
            }
            "uniform" if self.tape.chance(50) => {
                let lo = *self.tape.pick(REALS);
                vec![Expr::Real(lo), Expr::Real(lo + *self.tape.pick(SCALES))]
            }
            "uniform" => {
                let lo = self.expr(Ty::Real, d);
                vec![lo.clone(), Expr::bin("+", lo, self.pos())]
            }
            "bernoulli" => vec![self.prob()],
            "geometric" => vec![self.geometric_prob()],
            "binomial" => vec![self.count(), self.prob()],
            "neg_binomial" => vec![self.pos(), self.prob()],
            _ => {
                let k = self.data.weights(&mut self.tape);
                let v = &self.data.vecs[k];
                return (vec![Expr::name(&v.name)], v.len);
            }
        };
        (args, 0)
    }
}
