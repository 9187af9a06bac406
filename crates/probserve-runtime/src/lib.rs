//! Fugue-style probabilistic runtime: distributions, models, handlers, traces and inference with diagnostics.
