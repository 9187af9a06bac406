// A second version of the temperature sensor with a noisier reading, for tests and
// the README's grpcurl example.
model temperature_sensor {
  data reading: real;
  temp ~ normal(20.0, 5.0);
  reading ~ normal(temp, 2.0);
  output temp;
}
