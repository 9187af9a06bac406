// Eight schools (Rubin 1981), hierarchical, non-centered parameterization.
model eight_schools {
  data y: real[8];
  data sigma: real[8];

  mu ~ normal(0.0, 5.0);
  tau ~ half_normal(5.0);
  for j in 0..len(y) {
    theta_raw[j] ~ normal(0.0, 1.0);
    let theta[j] = mu + tau * theta_raw[j];
    y[j] ~ normal(theta[j], sigma[j]);
  }
  output mu, tau, theta;
}
