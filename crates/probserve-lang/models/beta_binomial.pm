// Conversion rate: `successes` out of `trials`, uniform prior on the rate.
// The posterior is Beta(1 + successes, 1 + trials - successes).
model beta_binomial {
  data trials: int;
  data successes: int;

  p ~ beta(1.0, 1.0);
  successes ~ binomial(trials, p);

  output p;
}
