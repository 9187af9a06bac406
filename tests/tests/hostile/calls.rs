//! The hostile calls of issue 12 items 1, 2, 4, 5 and 6: the models they use, the
//! set-up (registration, warm-up, capacity), the storm of all of them at once, the
//! memory-hungry ones one by one, and the 4× overload.

use std::time::{Duration, Instant};

use probserve_e2e::Server;
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::*;
use tokio::task::JoinSet;
use tonic::Code;
use tonic::transport::Channel;

/// Item 1: the loop's length comes from the data; `factor` reads a latent, so the
/// loop runs at run time, once per draw.
pub const LOOP_BOMB: &str = "model hostile_loop {
  data n: int;
  x ~ normal(0.0, 1.0);
  for i in 0..n { factor(-0.000001 * x * x); }
  output x;
}
";

/// Item 2: `k` outputs per draw (an indexed site of data-given length).
pub const WIDE: &str = "model hostile_wide {
  data k: int;
  for i in 0..k { z[i] ~ normal(0.0, 1.0); }
  output z;
}
";

/// Item 2: a trace of `n` sites per run, none of them an output.
pub const TRACE_BOMB: &str = "model hostile_trace {
  data n: int;
  x ~ normal(0.0, 1.0);
  for i in 0..n { z[i] ~ normal(x, 1.0); }
  output x;
}
";

/// Item 2 (a second round): `w[m]` written under a latent branch, a run-time array
/// whose index the data sets (16 M elements would be 268 MB per run).
pub const FAR_WRITE: &str = "model hostile_far {
  data m: int;
  b ~ bernoulli(0.5);
  if b { w[m] ~ normal(0.0, 1.0); }
  output b;
}
";

pub fn int(v: i64) -> Value {
    Value {
        kind: Some(Kind::Int(v)),
    }
}

pub fn real(v: f64) -> Value {
    Value {
        kind: Some(Kind::Real(v)),
    }
}

pub fn infer(
    model: &str,
    input: (&str, Value),
    method: InferenceMethod,
    samples: u32,
) -> InferRequest {
    InferRequest {
        model: model.into(),
        version: if model.starts_with("hostile_") {
            "1.0.0".into()
        } else {
            String::new()
        },
        inputs: [(input.0.to_owned(), input.1)].into(),
        method: method as i32,
        options: Some(InferenceOptions {
            num_samples: samples,
            ..Default::default()
        }),
        seed: Some(7),
        ..Default::default()
    }
}

pub fn temp(method: InferenceMethod, samples: u32) -> InferRequest {
    infer(
        "temperature_sensor",
        ("reading", real(22.0)),
        method,
        samples,
    )
}

pub fn with_timeout<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

pub async fn connect(server: &Server) -> Channel {
    Channel::from_shared(format!("http://{}", server.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

pub fn inference(ch: Channel) -> InferenceServiceClient<Channel> {
    // Large enough to see what the server sends rather than the client's own limit.
    InferenceServiceClient::new(ch)
        .max_decoding_message_size(512 << 20)
        .max_encoding_message_size(64 << 20)
}

pub fn registry(ch: Channel) -> ModelRegistryServiceClient<Channel> {
    ModelRegistryServiceClient::new(ch).max_encoding_message_size(64 << 20)
}

/// What one hostile call got: OK or its status code and (the start of) its message.
pub type Outcome = (String, Result<(), (Code, String)>, Duration);

pub fn code<T>(r: Result<T, tonic::Status>) -> Result<(), (Code, String)> {
    r.map(|_| ()).map_err(|s| {
        let m: String = s.message().replace('\n', " ⏎ ").chars().take(160).collect();
        (s.code(), m)
    })
}

/// The unary call of the overload (item 6).
pub fn load_call() -> InferRequest {
    temp(InferenceMethod::Importance, 50_000)
}

pub const LOAD: &str = "6 unary under 4x load";
pub const LOAD_SECS: f64 = 5.0;

/// Registers the hostile models, warms the loop model up with `n = 0` until its cost
/// is learned as tiny, and measures how many [`load_call`]s per second the idle server
/// sustains (two callers back to back).
pub async fn set_up(server: &Server) -> f64 {
    let ch = connect(server).await;
    let mut reg = registry(ch.clone());
    for (name, source) in [
        ("hostile_loop", LOOP_BOMB),
        ("hostile_wide", WIDE),
        ("hostile_trace", TRACE_BOMB),
        ("hostile_far", FAR_WRITE),
    ] {
        reg.register_model(RegisterModelRequest {
            name: name.into(),
            version: "1.0.0".into(),
            source: source.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e:?}"));
    }
    let mut inf = inference(ch);
    for _ in 0..30 {
        let warm = infer(
            "hostile_loop",
            ("n", int(0)),
            InferenceMethod::Importance,
            300,
        );
        inf.infer(warm).await.expect("warm-up with n = 0");
    }
    for _ in 0..5 {
        let warm = infer("hostile_wide", ("k", int(1)), InferenceMethod::Prior, 10);
        inf.infer(warm).await.expect("warm-up with k = 1");
    }
    let started = Instant::now();
    let mut callers = JoinSet::new();
    for _ in 0..2 {
        let mut c = inf.clone();
        callers.spawn(async move {
            for _ in 0..20 {
                c.infer(load_call()).await.expect("capacity call");
            }
        });
    }
    while let Some(r) = callers.join_next().await {
        r.expect("capacity caller");
    }
    40.0 / started.elapsed().as_secs_f64()
}

/// A compile bomb of about `bytes` bytes: one undefined name per `let`, on many lines
/// or on one.
pub fn compile_bomb(bytes: usize, one_line: bool) -> String {
    let mut s = String::from("model hostile_compile {");
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(if one_line { " " } else { "\n  " });
        s.push_str(&format!("let a{i} = u{i} + 1.0;"));
        i += 1;
    }
    s.push_str("\n}\n");
    s
}

/// Unary [`load_call`]s offered at four times `capacity` (calls per second) for
/// `LOAD_SECS`, round-robin over `channels`, each with a 5 s deadline.
pub async fn overload(channels: Vec<Channel>, capacity: f64) -> Vec<Outcome> {
    let rate = (4.0 * capacity).clamp(4.0, 800.0);
    let total = (rate * LOAD_SECS) as usize;
    let mut calls = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    for i in 0..total {
        tick.tick().await;
        let mut c = inference(channels[i % channels.len()].clone());
        calls.spawn(async move {
            let t = Instant::now();
            let r = c
                .infer(with_timeout(load_call(), Duration::from_secs(5)))
                .await;
            (LOAD.to_owned(), code(r), t.elapsed())
        });
    }
    let mut out = Vec::new();
    while let Some(r) = calls.join_next().await {
        out.push(r.expect("load call"));
    }
    out
}

/// Starts every hostile call of items 1, 2, 4, 5 and 6 at once and returns what each got.
pub async fn attack(server: &Server, capacity: f64) -> Vec<Outcome> {
    let mut set: JoinSet<Vec<Outcome>> = JoinSet::new();
    let started = Instant::now();
    let one = |name: &str, r: Result<(), (Code, String)>, t: Instant| {
        vec![(name.to_owned(), r, t.elapsed())]
    };

    // Item 1: two data-sized loops at once, twice, after the n = 0 warm-ups.
    for round in 0..2 {
        for _ in 0..2 {
            let mut c = inference(connect(server).await);
            set.spawn(async move {
                tokio::time::sleep(Duration::from_millis(round * 3000)).await;
                let t = Instant::now();
                let req = infer(
                    "hostile_loop",
                    ("n", int(1_000_000)),
                    InferenceMethod::Importance,
                    300,
                );
                one(
                    "1 loop n=1e6 x300",
                    code(c.infer(with_timeout(req, Duration::from_secs(8))).await),
                    t,
                )
            });
        }
    }
    // Item 2: 1,000 outputs × 10^6 samples; a 10^6-element output; 3·10^6-site traces.
    for (name, model, key, n, samples) in [
        (
            "2 wide 1000 x 1e6 samples",
            "hostile_wide",
            "k",
            1_000,
            1_000_000,
        ),
        (
            "2 one output of 1e6 elements",
            "hostile_wide",
            "k",
            1_000_000,
            10,
        ),
        ("2 trace of 3e6 sites", "hostile_trace", "n", 3_000_000, 4),
        (
            "2 run-time array written at 2^24-1",
            "hostile_far",
            "m",
            (1 << 24) - 1,
            200,
        ),
    ] {
        let mut c = inference(connect(server).await);
        set.spawn(async move {
            let t = Instant::now();
            let req = infer(model, (key, int(n)), InferenceMethod::Prior, samples);
            one(
                name,
                code(c.infer(with_timeout(req, Duration::from_secs(10))).await),
                t,
            )
        });
    }
    // Item 4: MCMC cut off by the client's deadline (summaries of 4 × 10^6 draws), and
    // an InferStream of heavy items dropped after a second.
    for _ in 0..2 {
        let mut c = inference(connect(server).await);
        set.spawn(async move {
            let t = Instant::now();
            let mut req = temp(InferenceMethod::Mcmc, 1_000_000);
            if let Some(o) = req.options.as_mut() {
                o.num_chains = 4;
            }
            one(
                "4 mcmc 4x1e6, 2 s deadline",
                code(c.infer(with_timeout(req, Duration::from_secs(2))).await),
                t,
            )
        });
    }
    {
        let mut c = inference(connect(server).await);
        set.spawn(async move {
            let t = Instant::now();
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            for i in 0..32 {
                let item = InferStreamRequest {
                    request_id: format!("heavy{i}"),
                    request: Some(temp(InferenceMethod::Mcmc, 200_000)),
                };
                let _ = tx.send(item).await;
            }
            let call = c.infer_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
            // Keep the request stream open (tx alive), then walk away.
            let got = tokio::time::timeout(Duration::from_secs(1), async {
                let mut stream = call.await?.into_inner();
                while stream.message().await?.is_some() {}
                Ok::<(), tonic::Status>(())
            })
            .await;
            drop(tx);
            let r = match got {
                Err(_) => Err((Code::Cancelled, "dropped by the client".to_owned())),
                Ok(r) => code(r),
            };
            // A cheap call right after: it must not queue behind the abandoned items.
            let t2 = Instant::now();
            let cheap = code(
                c.infer(with_timeout(
                    temp(InferenceMethod::Importance, 100),
                    Duration::from_secs(10),
                ))
                .await,
            );
            vec![
                (
                    "4 stream of 32 heavy MCMC, dropped after 1 s".to_owned(),
                    r,
                    t.elapsed(),
                ),
                (
                    "4 cheap call after the dropped stream".to_owned(),
                    cheap,
                    t2.elapsed(),
                ),
            ]
        });
    }
    // Item 5: compile bombs, ~1 MB over many lines and 960 KB on one line.
    for (name, bytes, one_line, version) in [
        (
            "5 register 1 MB of undefined names",
            1_000_000,
            false,
            "1.0.0",
        ),
        ("5 register 960 KB one-line source", 960_000, true, "1.0.1"),
    ] {
        let mut c = registry(connect(server).await);
        set.spawn(async move {
            let t = Instant::now();
            let req = RegisterModelRequest {
                name: "hostile_compile".into(),
                version: version.into(),
                source: compile_bomb(bytes, one_line),
                ..Default::default()
            };
            one(
                name,
                code(
                    c.register_model(with_timeout(req, Duration::from_secs(15)))
                        .await,
                ),
                t,
            )
        });
    }
    // Item 6: 4× overload — unary calls offered at four times the rate the server
    // sustained in the set-up, for 5 s, over four connections — and 64 InferStreams
    // of 16 items each.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(connect(server).await);
    }
    set.spawn(overload(channels.clone(), capacity));
    for i in 0..64 {
        let mut c = inference(channels[i % 4].clone());
        set.spawn(async move {
            let t = Instant::now();
            let items: Vec<InferStreamRequest> = (0..16)
                .map(|j| InferStreamRequest {
                    request_id: format!("s{i}-{j}"),
                    request: Some(temp(InferenceMethod::Importance, 20_000)),
                })
                .collect();
            let r = async {
                let mut s = c
                    .infer_stream(with_timeout(
                        tokio_stream::iter(items),
                        Duration::from_secs(10),
                    ))
                    .await?
                    .into_inner();
                let (mut ok, mut shed) = (0, 0);
                while let Some(item) = s.message().await? {
                    match item.status.map(|s| s.code).unwrap_or(0) {
                        0 => ok += 1,
                        _ => shed += 1,
                    }
                }
                Ok::<_, tonic::Status>((ok, shed))
            }
            .await;
            match r {
                Ok((ok, shed)) => vec![(
                    format!("6 stream items ok={ok} failed={shed}"),
                    Ok(()),
                    t.elapsed(),
                )],
                Err(e) => one("6 stream", code::<()>(Err(e)), t),
            }
        });
    }

    let mut outcomes = Vec::new();
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(r) = set.join_next().await {
            outcomes.extend(r.expect("hostile task"));
        }
    })
    .await;
    assert!(
        all.is_ok(),
        "the hostile calls did not all end within 60 s (client-side deadlines are at most 15 s)"
    );
    eprintln!("attack took {:.1} s", started.elapsed().as_secs_f64());
    outcomes
}

/// The calls of item 2 (memory) and the MCMC and compile bombs, one after another.
pub async fn one_by_one(server: &Server) -> Vec<Outcome> {
    let mut out = Vec::new();
    let ch = connect(server).await;
    let mut c = inference(ch.clone());
    for (name, model, key, n, samples) in [
        (
            "2 alone: wide 1000 x 1e6 samples",
            "hostile_wide",
            "k",
            1_000,
            1_000_000,
        ),
        (
            "2 alone: wide 100 x 1e6 samples",
            "hostile_wide",
            "k",
            100,
            1_000_000,
        ),
        (
            "2 alone: one output of 1e6 elements",
            "hostile_wide",
            "k",
            1_000_000,
            10,
        ),
        (
            "2 alone: trace of 3e6 sites",
            "hostile_trace",
            "n",
            3_000_000,
            4,
        ),
        (
            "2 alone: run-time array written at 2^24-1",
            "hostile_far",
            "m",
            (1 << 24) - 1,
            200,
        ),
    ] {
        let t = Instant::now();
        let req = infer(model, (key, int(n)), InferenceMethod::Prior, samples);
        let r = code(c.infer(with_timeout(req, Duration::from_secs(10))).await);
        out.push((name.to_owned(), r, t.elapsed()));
    }
    let t = Instant::now();
    let mut req = temp(InferenceMethod::Mcmc, 1_000_000);
    if let Some(o) = req.options.as_mut() {
        o.num_chains = 4;
    }
    let r = code(c.infer(with_timeout(req, Duration::from_secs(2))).await);
    out.push((
        "4 alone: mcmc 4x1e6, 2 s deadline".to_owned(),
        r,
        t.elapsed(),
    ));
    let mut reg = registry(ch);
    for (bytes, one_line, version) in [(1_000_000, false, "2.0.0"), (960_000, true, "2.0.1")] {
        let t = Instant::now();
        let req = RegisterModelRequest {
            name: "hostile_compile".into(),
            version: version.into(),
            source: compile_bomb(bytes, one_line),
            ..Default::default()
        };
        let r = code(
            reg.register_model(with_timeout(req, Duration::from_secs(15)))
                .await,
        );
        out.push((
            format!("5 alone: register {bytes} B (one line: {one_line})"),
            r,
            t.elapsed(),
        ));
    }
    out
}
