// Simple linear regression y = alpha + beta * x + noise, with unknown noise scale.
model linear_regression {
  data x: real[];
  data y: real[len(x)];

  alpha ~ normal(0.0, 10.0);
  beta ~ normal(0.0, 10.0);
  sigma ~ half_normal(5.0);

  for i in 0..len(y) {
    y[i] ~ normal(alpha + beta * x[i], sigma);
  }
  output alpha, beta, sigma;
}
