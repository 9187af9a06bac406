//! Conjugate test models with analytic posteriors, shared by the integration tests.
#![allow(dead_code)]

use probserve_runtime::*;

/// mu ~ N(m0, s0); y_i ~ N(mu, sigma).
pub struct NormalNormal {
    pub m0: f64,
    pub s0: f64,
    pub sigma: f64,
    pub y: Vec<f64>,
}

impl NormalNormal {
    pub fn example() -> Self {
        NormalNormal {
            m0: 0.0,
            s0: 2.0,
            sigma: 1.0,
            y: vec![1.2, 0.8, 1.9, 1.4, 0.3, 1.1, 1.6, 0.9, 1.3, 1.0],
        }
    }
    pub fn posterior(&self) -> (f64, f64) {
        let n = self.y.len() as f64;
        let prec = 1.0 / (self.s0 * self.s0) + n / (self.sigma * self.sigma);
        let mean = (self.m0 / (self.s0 * self.s0)
            + self.y.iter().sum::<f64>() / (self.sigma * self.sigma))
            / prec;
        (mean, (1.0 / prec).sqrt())
    }
    pub fn log_marginal(&self) -> f64 {
        let n = self.y.len() as f64;
        let (s2, t2) = (self.sigma * self.sigma, self.s0 * self.s0);
        let d: Vec<f64> = self.y.iter().map(|y| y - self.m0).collect();
        let ss: f64 = d.iter().map(|x| x * x).sum();
        let sum: f64 = d.iter().sum();
        -0.5 * n * (2.0 * std::f64::consts::PI * s2).ln()
            - 0.5 * (1.0 + n * t2 / s2).ln()
            - 0.5 / s2 * (ss - t2 * sum * sum / (s2 + n * t2))
    }
}

impl Model for NormalNormal {
    type Output = f64;
    fn run<H: Handler>(&self, h: &mut H) -> Result<f64, ModelError> {
        let mu = h.sample(Address::new("mu"), &Normal::new(self.m0, self.s0)?)?;
        let d = Normal::new(mu, self.sigma)?;
        for (i, &y) in self.y.iter().enumerate() {
            h.observe(Address::new("y").at_usize(i), &d, y)?;
        }
        Ok(mu)
    }
    fn output_names(&self) -> Vec<String> {
        vec!["mu".into()]
    }
}

/// p ~ Beta(a, b); y_i ~ Bernoulli(p).
pub struct BetaBernoulli {
    pub a: f64,
    pub b: f64,
    pub y: Vec<f64>,
}

impl BetaBernoulli {
    pub fn example() -> Self {
        let y = [1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1];
        BetaBernoulli {
            a: 2.0,
            b: 2.0,
            y: y.iter().map(|&v| f64::from(v)).collect(),
        }
    }
    pub fn posterior(&self) -> (f64, f64) {
        let k: f64 = self.y.iter().sum();
        let (a, b) = (self.a + k, self.b + self.y.len() as f64 - k);
        (
            a / (a + b),
            (a * b / ((a + b) * (a + b) * (a + b + 1.0))).sqrt(),
        )
    }
    pub fn log_marginal(&self) -> f64 {
        let k: f64 = self.y.iter().sum();
        let n = self.y.len() as f64;
        probserve_runtime::math::ln_beta(self.a + k, self.b + n - k)
            - probserve_runtime::math::ln_beta(self.a, self.b)
    }
}

impl Model for BetaBernoulli {
    type Output = f64;
    fn run<H: Handler>(&self, h: &mut H) -> Result<f64, ModelError> {
        let p = h.sample(Address::new("p"), &Beta::new(self.a, self.b)?)?;
        let d = Bernoulli::new(p)?;
        for (i, &y) in self.y.iter().enumerate() {
            h.observe(Address::new("y").at_usize(i), &d, y)?;
        }
        Ok(p)
    }
    fn output_names(&self) -> Vec<String> {
        vec!["p".into()]
    }
}

/// lambda ~ Gamma(alpha, beta); y_i ~ Poisson(lambda).
pub struct GammaPoisson {
    pub alpha: f64,
    pub beta: f64,
    pub y: Vec<f64>,
}

impl GammaPoisson {
    pub fn example() -> Self {
        GammaPoisson {
            alpha: 2.0,
            beta: 1.0,
            y: vec![3.0, 5.0, 2.0, 4.0, 6.0, 3.0, 4.0, 5.0],
        }
    }
    pub fn posterior(&self) -> (f64, f64) {
        let a = self.alpha + self.y.iter().sum::<f64>();
        let b = self.beta + self.y.len() as f64;
        (a / b, a.sqrt() / b)
    }
}

impl Model for GammaPoisson {
    type Output = f64;
    fn run<H: Handler>(&self, h: &mut H) -> Result<f64, ModelError> {
        let lambda = h.sample(Address::new("lambda"), &Gamma::new(self.alpha, self.beta)?)?;
        let d = Poisson::new(lambda)?;
        for (i, &y) in self.y.iter().enumerate() {
            h.observe(Address::new("y").at_usize(i), &d, y)?;
        }
        Ok(lambda)
    }
    fn output_names(&self) -> Vec<String> {
        vec!["lambda".into()]
    }
}

/// a, b ~ N(0, tau); y_i ~ N(a + b x_i, sigma) with known sigma.
pub struct LinReg {
    pub tau: f64,
    pub sigma: f64,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

impl LinReg {
    pub fn example() -> Self {
        let x: Vec<f64> = (0..9).map(|i| -2.0 + 0.5 * f64::from(i)).collect();
        let noise = [0.3, -0.2, 0.1, 0.4, -0.5, 0.2, -0.1, 0.0, 0.35];
        let y = x
            .iter()
            .zip(noise)
            .map(|(x, e)| 1.0 + 0.5 * x + e)
            .collect();
        LinReg {
            tau: 2.0,
            sigma: 0.5,
            x,
            y,
        }
    }
    /// Posterior means and sds of (a, b).
    pub fn posterior(&self) -> ([f64; 2], [f64; 2]) {
        let s2 = self.sigma * self.sigma;
        let t2 = self.tau * self.tau;
        let n = self.x.len() as f64;
        let sx: f64 = self.x.iter().sum();
        let sxx: f64 = self.x.iter().map(|x| x * x).sum();
        let sy: f64 = self.y.iter().sum();
        let sxy: f64 = self.x.iter().zip(&self.y).map(|(x, y)| x * y).sum();
        let (l00, l01, l11) = (1.0 / t2 + n / s2, sx / s2, 1.0 / t2 + sxx / s2);
        let det = l00 * l11 - l01 * l01;
        let (c00, c01, c11) = (l11 / det, -l01 / det, l00 / det);
        let (r0, r1) = (sy / s2, sxy / s2);
        (
            [c00 * r0 + c01 * r1, c01 * r0 + c11 * r1],
            [c00.sqrt(), c11.sqrt()],
        )
    }
}

impl Model for LinReg {
    type Output = (f64, f64);
    fn run<H: Handler>(&self, h: &mut H) -> Result<(f64, f64), ModelError> {
        let prior = Normal::new(0.0, self.tau)?;
        let a = h.sample(Address::new("a"), &prior)?;
        let b = h.sample(Address::new("b"), &prior)?;
        let d = Normal::new(0.0, self.sigma)?;
        for (i, (&x, &y)) in self.x.iter().zip(&self.y).enumerate() {
            h.observe(Address::new("y").at_usize(i), &d.with_mean(a + b * x)?, y)?;
        }
        Ok((a, b))
    }
    fn output_names(&self) -> Vec<String> {
        vec!["a".into(), "b".into()]
    }
}

/// |estimate − truth| < 4·mcse + tiny.
pub fn assert_close(what: &str, est: f64, truth: f64, mcse: f64) {
    let tol = 4.0 * mcse + 1e-9;
    assert!(mcse.is_finite() && mcse > 0.0, "{what}: bad mcse {mcse}");
    assert!(
        (est - truth).abs() < tol,
        "{what}: estimate {est} vs truth {truth} (mcse {mcse}, tol {tol})"
    );
}
