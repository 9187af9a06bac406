//! Experiment engine: sticky routing, rollout plans, statistics, guardrails, drift and shadow comparison.
