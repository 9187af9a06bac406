//! A fuzz test at the RPC boundary of the real binary: random requests of every
//! method of every probserve service (enumerated from the descriptor set compiled
//! into the server, so a new RPC is fuzzed without touching this file), built
//! from the message descriptors with values drawn from a dictionary of meaningful
//! and hostile ones, plus byte-level mutations of their encodings, sent as raw
//! bytes. While it runs a prober checks `grpc.health.v1` with a 1 s deadline.
//!
//! It asserts: no call is answered INTERNAL, UNKNOWN or DATA_LOSS except INTERNAL
//! with a reason that means a model or store fault; every health probe is answered
//! SERVING within its deadline; the server never panics; the process is alive at
//! the end. Bounded: `FUZZ_CALLS` calls (default 5000) or `FUZZ_SECS` seconds
//! (default 25), whichever comes first, from seed `FUZZ_SEED` (default 12; printed).

#[path = "support/raw_grpc.rs"]
mod raw_grpc;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use probserve_e2e::{Options, Server};
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::Code;
use tonic_types::StatusExt as _;

/// INTERNAL reasons that mean the model or the store failed, not the caller.
const MODEL_OR_STORE_FAULTS: &[&str] = &["MODEL_NAN", "STORE"];

/// splitmix64: small, seedable, good enough to pick test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Strings that mean something to the server, and some that should not.
const STRINGS: &[&str] = &[
    "",
    "temperature_sensor",
    "linear_regression",
    "beta_binomial",
    "eight_schools",
    "fz",
    "1.0.0",
    "2.0.0",
    "99.0.0",
    "stable",
    "reading",
    "x",
    "y",
    "trials",
    "successes",
    "r1",
    "ana",
    "Model",
    "a..b",
    "1abc",
    "../../etc/passwd",
    "\u{0}",
    "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 1.0);\n  output temp;\n}\n",
    "model m {\n  data n: int;\n  for i in 0..n {\n    z[i] ~ normal(0.0, 1.0);\n  }\n  output z;\n}\n",
    "model m { data n: int; for i in 0..n { let z = i; } output n; }",
    "model m { t ~ normal(0.0, 1.0); let y = log(-1.0 - t * t); output y; }",
    "model m { k ~ poisson(3.0); let y = 7 % (k - k); output y; }",
    "model {",
];

fn random_string(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        0 => (0..rng.below(300))
            .map(|_| b"abcXYZ09_.-/ @"[rng.below(14)])
            .collect(),
        1 => "é✓".repeat(rng.below(50)).into_bytes(),
        2 => "x".repeat(rng.below(5000)).into_bytes(),
        _ => rng.pick(STRINGS).as_bytes().to_vec(),
    }
}

fn random_varint(rng: &mut Rng) -> u64 {
    let choices: [u64; 14] = [
        0,
        1,
        2,
        3,
        4,
        10,
        99,
        1000,
        1_000_000,
        u32::MAX as u64,
        i64::MAX as u64,
        i64::MIN as u64,
        u64::MAX,
        (-1i64) as u64,
    ];
    if rng.chance(70) {
        *rng.pick(&choices)
    } else {
        rng.next() >> rng.below(64)
    }
}

fn random_double(rng: &mut Rng) -> f64 {
    let choices = [
        0.0,
        1.0,
        -1.0,
        22.0,
        0.5,
        1e-300,
        1e308,
        -1e308,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        9.007_199_254_740_993e15,
    ];
    if rng.chance(80) {
        *rng.pick(&choices)
    } else {
        f64::from_bits(rng.next())
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: i32, wire: u64) {
    put_varint(out, ((field as u64) << 3) | wire);
}

/// Every message type of the descriptor set by full name (`.pkg.Msg`, nested too).
fn index(fds: &FileDescriptorSet) -> HashMap<String, DescriptorProto> {
    fn walk(prefix: &str, m: &DescriptorProto, out: &mut HashMap<String, DescriptorProto>) {
        let name = format!("{prefix}.{}", m.name());
        for n in &m.nested_type {
            walk(&name, n, out);
        }
        out.insert(name, m.clone());
    }
    let mut out = HashMap::new();
    for f in &fds.file {
        let prefix = format!(".{}", f.package());
        for m in &f.message_type {
            walk(&prefix, m, &mut out);
        }
    }
    out
}

/// A random message of type `name`, encoded; every field maybe set, values from
/// the dictionaries.
fn random_message(
    rng: &mut Rng,
    types: &HashMap<String, DescriptorProto>,
    name: &str,
    depth: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(m) = types.get(name) else {
        return out;
    };
    let is_map_entry = m.options.as_ref().is_some_and(|o| o.map_entry());
    for f in &m.field {
        let repeated = f.label() == Label::Repeated;
        if !is_map_entry && !rng.chance(if repeated { 40 } else { 60 }) {
            continue;
        }
        let n = if repeated { 1 + rng.below(3) } else { 1 };
        for _ in 0..n {
            let num = f.number();
            match f.r#type() {
                Type::Double => {
                    put_tag(&mut out, num, 1);
                    out.extend_from_slice(&random_double(rng).to_le_bytes());
                }
                Type::Float => {
                    put_tag(&mut out, num, 5);
                    out.extend_from_slice(&(random_double(rng) as f32).to_le_bytes());
                }
                Type::Fixed64 | Type::Sfixed64 => {
                    put_tag(&mut out, num, 1);
                    out.extend_from_slice(&random_varint(rng).to_le_bytes());
                }
                Type::Fixed32 | Type::Sfixed32 => {
                    put_tag(&mut out, num, 5);
                    out.extend_from_slice(&(random_varint(rng) as u32).to_le_bytes());
                }
                Type::Sint32 | Type::Sint64 => {
                    put_tag(&mut out, num, 0);
                    let v = random_varint(rng) as i64;
                    put_varint(&mut out, ((v << 1) ^ (v >> 63)) as u64);
                }
                Type::Bool => {
                    put_tag(&mut out, num, 0);
                    put_varint(&mut out, rng.below(2) as u64);
                }
                Type::String | Type::Bytes => {
                    put_tag(&mut out, num, 2);
                    let s = random_string(rng);
                    put_varint(&mut out, s.len() as u64);
                    out.extend_from_slice(&s);
                }
                Type::Message | Type::Group => {
                    if depth >= 4 {
                        continue;
                    }
                    put_tag(&mut out, num, 2);
                    let inner = random_message(rng, types, f.type_name(), depth + 1);
                    put_varint(&mut out, inner.len() as u64);
                    out.extend_from_slice(&inner);
                }
                // Int32/64, Uint32/64, Enum: varints.
                _ => {
                    put_tag(&mut out, num, 0);
                    put_varint(&mut out, random_varint(rng));
                }
            }
        }
    }
    out
}

/// Byte-level mutations of an encoded message.
fn mutate(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next() as u8;
            }
            2 if len > 0 => b.truncate(rng.below(len)),
            3 => {
                let i = rng.below(len + 1);
                let extra: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                b.splice(i..i, extra);
            }
            4 if len > 1 => {
                let i = rng.below(len);
                let j = i + rng.below(len - i);
                let chunk = b[i..j].to_vec();
                b.extend_from_slice(&chunk);
            }
            5 if len > 1 => {
                let i = rng.below(len);
                let j = i + rng.below(len - i);
                b.drain(i..j);
            }
            _ => {
                // An invalid UTF-8 string or an overlong varint in a random field.
                put_tag(&mut b, 1 + rng.below(12) as i32, 2);
                b.extend_from_slice(&[0x02, 0xc3, 0x28]);
            }
        }
    }
    b
}

/// A well-formed request with hostile values, for the methods whose interesting
/// paths need one (random messages rarely name a model and its inputs right).
fn structured(rng: &mut Rng) -> (&'static str, Vec<u8>, bool) {
    use probserve_proto::v1::value::Kind;
    use probserve_proto::v1::*;
    let small = |rng: &mut Rng| -> u32 {
        *rng.pick(&[0, 1, 2, 10, 100, 1000, 10_000, 1_000_000, u32::MAX])
    };
    let value = |rng: &mut Rng| -> Value {
        let kind = match rng.below(6) {
            0 => Kind::Real(random_double(rng)),
            1 => Kind::Int(random_varint(rng) as i64),
            2 => Kind::Bool(rng.chance(50)),
            3 => Kind::Reals(RealVector {
                values: (0..rng.below(20)).map(|_| random_double(rng)).collect(),
            }),
            4 => Kind::Ints(IntVector {
                values: (0..rng.below(20))
                    .map(|_| random_varint(rng) as i64)
                    .collect(),
            }),
            _ => Kind::Bools(BoolVector {
                values: (0..rng.below(20)).map(|_| rng.chance(50)).collect(),
            }),
        };
        Value { kind: Some(kind) }
    };
    let (model, names): (&str, &[&str]) = *rng.pick(&[
        ("temperature_sensor", &["reading"][..]),
        ("beta_binomial", &["trials", "successes"][..]),
        ("linear_regression", &["x", "y"][..]),
        ("eight_schools", &["y", "sigma"][..]),
        ("fz", &["n"][..]),
    ]);
    let mut inputs = HashMap::new();
    for n in names {
        if rng.chance(90) {
            inputs.insert((*n).to_owned(), value(rng));
        }
    }
    let infer = InferRequest {
        model: model.into(),
        inputs,
        method: rng.below(6) as i32,
        options: Some(InferenceOptions {
            num_samples: small(rng),
            num_chains: small(rng).min(64),
            num_warmup: small(rng),
            thin: small(rng),
            ess_threshold: random_double(rng),
        }),
        seed: rng.chance(50).then(|| rng.next()),
        return_draws: rng.chance(30),
        max_draws: small(rng),
        ..Default::default()
    };
    match rng.below(5) {
        0 | 1 => (
            "/probserve.v1.InferenceService/Infer",
            infer.encode_to_vec(),
            false,
        ),
        2 => (
            "/probserve.v1.InferenceService/InferStream",
            InferStreamRequest {
                request_id: "a".into(),
                request: Some(infer),
            }
            .encode_to_vec(),
            true,
        ),
        3 => (
            "/probserve.v1.ModelRegistryService/RegisterModel",
            RegisterModelRequest {
                name: "fz".into(),
                version: format!("1.0.{}", rng.below(5)),
                source: rng.pick(&STRINGS[22..]).to_string(),
                ..Default::default()
            }
            .encode_to_vec(),
            false,
        ),
        _ => (
            "/probserve.v1.ModelRegistryService/ValidateModel",
            ValidateModelRequest {
                source: String::from_utf8_lossy(&random_string(rng)).into_owned(),
            }
            .encode_to_vec(),
            false,
        ),
    }
}

struct Method {
    path: String,
    input: String,
    streaming: bool,
}

fn methods(fds: &FileDescriptorSet) -> Vec<Method> {
    let mut out = Vec::new();
    for f in &fds.file {
        for s in &f.service {
            for m in &s.method {
                out.push(Method {
                    path: format!("/{}.{}/{}", f.package(), s.name(), m.name()),
                    input: m.input_type().to_owned(),
                    streaming: m.client_streaming() || m.server_streaming(),
                });
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_requests_of_every_method_find_no_fault() {
    let seed = env_or("FUZZ_SEED", 12);
    let max_calls = env_or("FUZZ_CALLS", 5000);
    let max_time = Duration::from_secs(env_or("FUZZ_SECS", 25));
    eprintln!("fuzz_rpc: seed {seed}, at most {max_calls} calls or {max_time:?}");

    let fds = FileDescriptorSet::decode(probserve_proto::FILE_DESCRIPTOR_SET).unwrap();
    let types = index(&fds);
    let methods = methods(&fds);
    assert!(methods.len() >= 20, "{} methods", methods.len());

    let mut server = Server::start(Options::default()).await;
    let ch = server.channel().await;

    // The prober: a Check every 100 ms, each with its own 1 s deadline.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        let ch = ch.clone();
        tokio::spawn(async move {
            let mut c = tonic_health::pb::health_client::HealthClient::new(ch);
            let mut failures = Vec::new();
            let mut probes = 0u64;
            let mut worst = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                });
                req.set_timeout(Duration::from_secs(1));
                let t = Instant::now();
                let r = tokio::time::timeout(Duration::from_secs(1), c.check(req)).await;
                worst = worst.max(t.elapsed());
                probes += 1;
                match r {
                    Ok(Ok(resp)) if resp.get_ref().status == 1 => {}
                    other => failures.push(format!("{other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (probes, worst, failures)
        })
    };

    let mut rng = Rng(seed);
    let mut faults = Vec::new();
    let mut by_code: std::collections::BTreeMap<String, u64> = Default::default();
    let start = Instant::now();
    let mut calls = 0u64;
    while calls < max_calls && start.elapsed() < max_time {
        calls += 1;
        let (path, valid, streaming, input) = if rng.chance(30) {
            let (path, bytes, streaming) = structured(&mut rng);
            let input = methods
                .iter()
                .find(|m| m.path == path)
                .map(|m| m.input.clone())
                .unwrap_or_default();
            (path.to_owned(), bytes, streaming, input)
        } else {
            let m = rng.pick(&methods);
            let bytes = random_message(&mut rng, &types, &m.input, 0);
            (m.path.clone(), bytes, m.streaming, m.input.clone())
        };
        let body = if rng.chance(50) {
            valid
        } else {
            mutate(&mut rng, valid)
        };
        let timeout = Duration::from_secs(2);
        let result = if streaming {
            let mut bodies = vec![body.clone()];
            for _ in 0..rng.below(3) {
                bodies.push(random_message(&mut rng, &types, &input, 0));
            }
            raw_grpc::streaming(&ch, &path, bodies, timeout)
                .await
                .map(|_| ())
        } else {
            raw_grpc::unary(&ch, &path, body.clone(), timeout)
                .await
                .map(|_| ())
        };
        let code = match &result {
            Ok(()) => Code::Ok,
            Err(s) => s.code(),
        };
        *by_code.entry(format!("{code:?}")).or_default() += 1;
        if let Err(s) = result {
            let reason = s
                .get_error_details()
                .error_info()
                .map(|i| i.reason.clone())
                .unwrap_or_default();
            let fault = match s.code() {
                Code::Internal => !MODEL_OR_STORE_FAULTS.contains(&reason.as_str()),
                Code::Unknown | Code::DataLoss => true,
                _ => false,
            };
            if fault && faults.len() < 20 {
                let hex: String = body.iter().take(64).map(|b| format!("{b:02x}")).collect();
                faults.push(format!(
                    "{path} [{hex}]: {:?} {reason} {:?}",
                    s.code(),
                    s.message()
                ));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (probes, worst, probe_failures) = prober.await.unwrap();
    eprintln!(
        "fuzz_rpc: {calls} calls in {:?}; codes {by_code:?}; {probes} health probes, slowest {worst:?}",
        start.elapsed()
    );

    assert!(
        faults.is_empty(),
        "server faults for client input: {faults:#?}"
    );
    assert!(
        probe_failures.is_empty(),
        "health probes not answered SERVING within 1 s: {probe_failures:#?}"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited: {}",
        server.stderr()
    );
    let stderr = server.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
