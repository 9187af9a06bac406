// A temperature sensor reads the true temperature with unit Gaussian noise.
// Prior N(20, 5^2), one reading: the posterior of `temp` is normal with
// mean 20 + 25/26 * (reading - 20) (21.923 for a reading of 22.0).
model temperature_sensor {
  data reading: real;

  temp ~ normal(20.0, 5.0);
  reading ~ normal(temp, 1.0);

  let fahrenheit = temp * 1.8 + 32.0;
  output temp, fahrenheit;
}
