//! Well-formedness of a plan: every register, table index and jump target an op names
//! exists. The machine relies on it (small plans index their register file with a
//! mask instead of a bounds check), so debug builds check every plan they lower.

use super::{AddrSpec, LoopFamily, Op, Plan, Predictor};

impl Plan {
    /// The first problem found, if any.
    pub(crate) fn check(&self) -> Result<(), String> {
        let n_regs = self.n_regs();
        let reg = |r: u32, what: &str| -> Result<(), String> {
            if (r as usize) < n_regs {
                Ok(())
            } else {
                Err(format!("{what}: register {r} of {n_regs}"))
            }
        };
        let index = |i: u32, len: usize, what: &str| -> Result<(), String> {
            if (i as usize) < len {
                Ok(())
            } else {
                Err(format!("{what}: index {i} of {len}"))
            }
        };
        let target = |t: u32| index(t, self.ops.len() + 1, "jump target");
        if self.width > n_regs {
            return Err(format!("width {} over {n_regs} registers", self.width));
        }
        for a in &self.addrs {
            if let AddrSpec::Indexed { idx, .. } = a {
                reg(*idx, "address index")?;
            }
        }
        for d in &self.dyn_dists {
            for &r in &d.args {
                reg(r, "distribution argument")?;
            }
        }
        for l in &self.obs_loops {
            for r in [l.lo, l.hi] {
                reg(r, "observation loop")?;
            }
            match l.predictor {
                Predictor::Affine { a, b, .. } => {
                    reg(a, "observation loop")?;
                    reg(b, "observation loop")?;
                }
                Predictor::Gather { arr, .. } => index(arr, self.arrays.len(), "array")?,
            }
            if let LoopFamily::Normal { scale, .. } = l.family {
                reg(scale, "observation loop")?;
            }
        }
        let (n_addrs, n_normals, n_dists) =
            (self.addrs.len(), self.normals.len(), self.dists.len());
        let n_arrays = self.arrays.len();
        for op in &self.ops {
            match *op {
                Op::Tick(_) => {}
                Op::Copy { dst, src } => {
                    reg(dst, "copy")?;
                    reg(src, "copy")?;
                }
                Op::Add { dst, a, b }
                | Op::Sub { dst, a, b }
                | Op::Mul { dst, a, b }
                | Op::Div { dst, a, b }
                | Op::Bin { dst, a, b, .. } => {
                    for r in [dst, a, b] {
                        reg(r, "arithmetic")?;
                    }
                }
                Op::AddMul { dst, a, b, c }
                | Op::MulAdd { dst, a, b, c }
                | Op::Select { dst, c, a, b } => {
                    for r in [dst, a, b, c] {
                        reg(r, "arithmetic")?;
                    }
                }
                Op::Un { dst, a, .. } => {
                    reg(dst, "arithmetic")?;
                    reg(a, "arithmetic")?;
                }
                Op::VecElem { dst, idx, .. } => {
                    reg(dst, "vector element")?;
                    reg(idx, "vector element")?;
                }
                Op::ArrLoad { dst, arr, idx } | Op::ArrSlot { dst, arr, idx } => {
                    reg(dst, "array access")?;
                    reg(idx, "array access")?;
                    index(arr, n_arrays, "array")?;
                }
                Op::ArrPut { arr, idx, src } => {
                    reg(idx, "array store")?;
                    reg(src, "array store")?;
                    index(arr, n_arrays, "array")?;
                }
                Op::ArrOut { arr, dst, n } => {
                    index(arr, n_arrays, "array")?;
                    if n > 0 {
                        reg(dst + n - 1, "array output")?;
                    }
                }
                Op::Jump { to } => target(to)?,
                Op::JumpIfZero { c, to } => {
                    reg(c, "condition")?;
                    target(to)?;
                }
                Op::LoopInit { var, lo, hi, exit } => {
                    for r in [var, lo, hi] {
                        reg(r, "loop")?;
                    }
                    target(exit)?;
                }
                Op::LoopNext { var, hi, body } => {
                    reg(var, "loop")?;
                    reg(hi, "loop")?;
                    target(body)?;
                }
                Op::SampleNormal { dst, addr, n } => {
                    reg(dst, "sample")?;
                    index(addr, n_addrs, "address")?;
                    index(n, n_normals, "normal")?;
                }
                Op::SampleNormalMean { dst, addr, n, mu } => {
                    reg(dst, "sample")?;
                    reg(mu, "sample")?;
                    index(addr, n_addrs, "address")?;
                    index(n, n_normals, "normal")?;
                }
                Op::SampleDist { dst, addr, d } => {
                    reg(dst, "sample")?;
                    index(addr, n_addrs, "address")?;
                    index(d, n_dists, "distribution")?;
                }
                Op::SampleNormalDyn {
                    dst,
                    addr,
                    mu,
                    sigma,
                } => {
                    for r in [dst, mu, sigma] {
                        reg(r, "sample")?;
                    }
                    index(addr, n_addrs, "address")?;
                }
                Op::ObserveNormalDyn {
                    addr,
                    value,
                    mu,
                    sigma,
                } => {
                    for r in [value, mu, sigma] {
                        reg(r, "observe")?;
                    }
                    index(addr, n_addrs, "address")?;
                }
                Op::SampleBernoulliDyn { dst, addr, p } => {
                    reg(dst, "sample")?;
                    reg(p, "sample")?;
                    index(addr, n_addrs, "address")?;
                }
                Op::ObserveBernoulliDyn { addr, value, p } => {
                    reg(value, "observe")?;
                    reg(p, "observe")?;
                    index(addr, n_addrs, "address")?;
                }
                Op::SampleDyn { dst, addr, x } => {
                    reg(dst, "sample")?;
                    index(addr, n_addrs, "address")?;
                    index(x, self.dyn_dists.len(), "distribution")?;
                }
                Op::ObserveNormal { addr, value, n } => {
                    reg(value, "observe")?;
                    index(addr, n_addrs, "address")?;
                    index(n, n_normals, "normal")?;
                }
                Op::ObserveNormalMean { addr, value, n, mu } => {
                    reg(value, "observe")?;
                    reg(mu, "observe")?;
                    index(addr, n_addrs, "address")?;
                    index(n, n_normals, "normal")?;
                }
                Op::ObserveDist { addr, value, d } => {
                    reg(value, "observe")?;
                    index(addr, n_addrs, "address")?;
                    index(d, n_dists, "distribution")?;
                }
                Op::ObserveDyn { addr, value, x } => {
                    reg(value, "observe")?;
                    index(addr, n_addrs, "address")?;
                    index(x, self.dyn_dists.len(), "distribution")?;
                }
                Op::Factor { value, .. } => reg(value, "factor")?,
                Op::ObsLoop { l } => index(l, self.obs_loops.len(), "observation loop")?,
                Op::Fail { err } => index(err, self.failures.len(), "failure")?,
            }
        }
        Ok(())
    }
}
