//! Turning an `InferRequest` into checked parts: typed inputs, the method with its
//! options (defaults and limits), and the deadline from `grpc-timeout`. Every
//! problem becomes one field violation; nothing here panics on any input.

use std::collections::BTreeMap;
use std::time::Duration;

use probserve_lang::{InputError, InputValue, Inputs};
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::*;
use tonic::Request;

use crate::infer::Method;

/// Limits on options (documented in inference.proto).
const MAX_SAMPLES: u32 = 1_000_000;
const MAX_CHAINS: u32 = 16;
const MAX_THIN: u32 = 1000;
const MAX_DRAWS_RETURNED: u32 = 100_000;

pub(super) type Violations = Vec<(String, String)>;

pub(super) fn input_value(name: &str, v: &Value, out: &mut Violations) -> Option<InputValue> {
    Some(match &v.kind {
        Some(Kind::Real(x)) => InputValue::Real(*x),
        Some(Kind::Int(x)) => InputValue::Int(*x),
        Some(Kind::Bool(x)) => InputValue::Bool(*x),
        Some(Kind::Reals(x)) => InputValue::RealVec(x.values.clone()),
        Some(Kind::Ints(x)) => InputValue::IntVec(x.values.clone()),
        Some(Kind::Bools(x)) => InputValue::BoolVec(x.values.clone()),
        None => {
            out.push((
                format!("inputs.{name}"),
                "no value set (set one of real, int, bool, reals, ints, bools)".into(),
            ));
            return None;
        }
    })
}

pub(super) fn input_violation(e: &InputError) -> (String, String) {
    (format!("inputs.{}", e.field()), e.to_string())
}

/// Checks method and options, applying defaults.
pub(super) fn method(r: &InferRequest, v: &mut Violations) -> Method {
    let o = r.options.unwrap_or_default();
    let mut limit = |field: &str, value: u32, max: u32| {
        if value > max {
            v.push((
                format!("options.{field}"),
                format!("{value} is above the limit {max}"),
            ));
        }
    };
    limit("num_samples", o.num_samples, MAX_SAMPLES);
    limit("num_chains", o.num_chains, MAX_CHAINS);
    limit("num_warmup", o.num_warmup, MAX_SAMPLES);
    limit("thin", o.thin, MAX_THIN);
    limit("max_draws", r.max_draws, MAX_DRAWS_RETURNED);
    let samples = if o.num_samples == 0 {
        1000
    } else {
        o.num_samples.min(MAX_SAMPLES)
    } as usize;
    match InferenceMethod::try_from(r.method) {
        Ok(InferenceMethod::Prior) => Method::Prior { draws: samples },
        Ok(InferenceMethod::Unspecified | InferenceMethod::Importance) => {
            Method::Importance { particles: samples }
        }
        Ok(InferenceMethod::Smc) => {
            let t = if o.ess_threshold == 0.0 {
                0.5
            } else {
                o.ess_threshold
            };
            if !(t > 0.0 && t <= 1.0) {
                v.push((
                    "options.ess_threshold".into(),
                    format!("{t} is not in (0, 1]"),
                ));
            }
            Method::Smc {
                particles: samples,
                ess_threshold: t,
            }
        }
        Ok(InferenceMethod::Mcmc) => Method::Mcmc {
            chains: if o.num_chains == 0 {
                4
            } else {
                o.num_chains.min(MAX_CHAINS)
            } as usize,
            warmup: if o.num_warmup == 0 {
                samples
            } else {
                o.num_warmup.min(MAX_SAMPLES) as usize
            },
            draws: samples,
            thin: o.thin.clamp(1, MAX_THIN) as usize,
        },
        Err(_) => {
            v.push(("method".into(), format!("unknown method {}", r.method)));
            Method::Importance { particles: samples }
        }
    }
}

/// The client's `grpc-timeout` (e.g. `100m`, `5S`), parsed as the gRPC spec says
/// (at most 8 digits; anything else is as if absent). The server's deadline layer
/// has already clamped it to `max_deadline_ms`.
pub(super) fn grpc_timeout<T>(req: &Request<T>) -> Option<Duration> {
    let v = req.metadata().get("grpc-timeout")?;
    probserve_reliability::deadline::parse_grpc_timeout(v.as_bytes())
}

/// Converts proto inputs for tests and tools.
pub fn inputs_from_proto(map: &BTreeMap<String, Value>) -> Result<Inputs, Violations> {
    let mut v = Vec::new();
    let mut out = Inputs::new();
    for (k, val) in map {
        if let Some(iv) = input_value(k, val, &mut v) {
            out.insert(k.clone(), iv);
        }
    }
    if v.is_empty() { Ok(out) } else { Err(v) }
}
