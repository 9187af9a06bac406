//! Reliability building blocks: circuit breakers, load shedding, validation, health scoring and SLO tracking.
