//! gRPC callers: probserve's `Infer` (the echo server speaks the same service, so
//! the floor is measured with the identical client and messages) and
//! `DiagnosticsService/GetHealthReport` (a cheap RPC through probserve's full
//! middleware stack, for checking the tools before `Infer` works).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use probserve_proto::v1::diagnostics_service_client::DiagnosticsServiceClient;
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::{
    GetHealthReportRequest, InferRequest, InferenceMethod, InferenceOptions, Value, value,
};
use prost::Message as _;
use tonic::transport::{Channel, Endpoint};

use crate::BenchError;
use crate::driver::Call;
use crate::stats::Outcome;

/// google.rpc.Code INTERNAL, reported when a caller has no channel (cannot happen:
/// constructors reject an empty channel list).
const CODE_INTERNAL: i32 = 13;

/// Opens `connections` HTTP/2 connections to `addr` (`host:port`), with TCP_NODELAY
/// like the servers.
pub async fn connect(addr: &str, connections: usize) -> Result<Vec<Channel>, BenchError> {
    if connections == 0 {
        return Err(BenchError::InvalidParameter {
            name: "connections",
            reason: "must be at least 1".into(),
        });
    }
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|source| BenchError::Connect {
            addr: addr.to_string(),
            source,
        })?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let mut out = Vec::with_capacity(connections);
    for _ in 0..connections {
        out.push(
            endpoint
                .connect()
                .await
                .map_err(|source| BenchError::Connect {
                    addr: addr.to_string(),
                    source,
                })?,
        );
    }
    Ok(out)
}

/// An importance-sampling `Infer` request for a model with one real data input
/// `reading` (the built-in `temperature_sensor`), with `samples` particles.
pub fn infer_request(model: &str, samples: u32, reading: f64) -> InferRequest {
    let inputs = HashMap::from([(
        "reading".to_string(),
        Value {
            kind: Some(value::Kind::Real(reading)),
        },
    )]);
    InferRequest {
        model: model.to_string(),
        inputs,
        method: InferenceMethod::Importance as i32,
        options: Some(InferenceOptions {
            num_samples: samples,
            ..Default::default()
        }),
        seed: Some(0),
        ..Default::default()
    }
}

fn pick<T: Clone>(items: &[T], index: u64) -> Option<T> {
    let n = u64::try_from(items.len()).ok().filter(|&n| n > 0)?;
    items.get(usize::try_from(index % n).unwrap_or(0)).cloned()
}

fn non_empty(channels: &[Channel]) -> Result<(), BenchError> {
    if channels.is_empty() {
        return Err(BenchError::InvalidParameter {
            name: "channels",
            reason: "need at least one channel".into(),
        });
    }
    Ok(())
}

/// Sends `Infer`, round-robin over the channels; call `i` carries seed
/// `seed_base + i` so every run is reproducible.
#[derive(Debug, Clone)]
pub struct InferCall {
    clients: Vec<InferenceServiceClient<Channel>>,
    template: InferRequest,
    seed_base: u64,
    timeout: Option<Duration>,
}

impl InferCall {
    /// A caller over `channels` (at least one) sending `template` with per-call seeds;
    /// `timeout` becomes the gRPC deadline of each call.
    pub fn new(
        channels: &[Channel],
        template: InferRequest,
        seed_base: u64,
        timeout: Option<Duration>,
    ) -> Result<Self, BenchError> {
        non_empty(channels)?;
        Ok(Self {
            clients: channels
                .iter()
                .map(|c| InferenceServiceClient::new(c.clone()))
                .collect(),
            template,
            seed_base,
            timeout,
        })
    }
}

impl Call for InferCall {
    fn call(&self, index: u64) -> impl Future<Output = Outcome> + Send {
        let client = pick(&self.clients, index);
        let mut msg = self.template.clone();
        msg.seed = Some(self.seed_base.wrapping_add(index));
        let mut req = tonic::Request::new(msg);
        if let Some(t) = self.timeout {
            req.set_timeout(t);
        }
        async move {
            let Some(mut client) = client else {
                return Outcome::Failed {
                    code: CODE_INTERNAL,
                };
            };
            match client.infer(req).await {
                Ok(r) => Outcome::Ok {
                    response_bytes: r.get_ref().encoded_len(),
                },
                Err(s) => Outcome::Failed {
                    code: s.code() as i32,
                },
            }
        }
    }
}

/// Sends `DiagnosticsService/GetHealthReport`, round-robin over the channels.
#[derive(Debug, Clone)]
pub struct HealthReportCall {
    clients: Vec<DiagnosticsServiceClient<Channel>>,
}

impl HealthReportCall {
    /// A caller over `channels` (at least one).
    pub fn new(channels: &[Channel]) -> Result<Self, BenchError> {
        non_empty(channels)?;
        Ok(Self {
            clients: channels
                .iter()
                .map(|c| DiagnosticsServiceClient::new(c.clone()))
                .collect(),
        })
    }
}

impl Call for HealthReportCall {
    fn call(&self, index: u64) -> impl Future<Output = Outcome> + Send {
        let client = pick(&self.clients, index);
        async move {
            let Some(mut client) = client else {
                return Outcome::Failed {
                    code: CODE_INTERNAL,
                };
            };
            match client.get_health_report(GetHealthReportRequest {}).await {
                Ok(r) => Outcome::Ok {
                    response_bytes: r.get_ref().encoded_len(),
                },
                Err(s) => Outcome::Failed {
                    code: s.code() as i32,
                },
            }
        }
    }
}

/// The name of a gRPC status code (`ResourceExhausted`, ...).
pub fn code_name(code: i32) -> String {
    format!("{:?}", tonic::Code::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infer_request_is_importance_sampling_on_reading() {
        let r = infer_request("temperature_sensor", 1000, 22.0);
        assert_eq!(r.method, InferenceMethod::Importance as i32);
        assert_eq!(r.options.as_ref().map(|o| o.num_samples), Some(1000));
        assert_eq!(
            r.inputs.get("reading").and_then(|v| v.kind.clone()),
            Some(value::Kind::Real(22.0))
        );
    }

    #[test]
    fn round_robin_and_code_names() {
        let v = [1, 2, 3];
        assert_eq!(pick(&v, 0), Some(1));
        assert_eq!(pick(&v, 4), Some(2));
        assert_eq!(pick::<i32>(&[], 4), None);
        assert_eq!(code_name(8), "ResourceExhausted");
        assert_eq!(code_name(12), "Unimplemented");
    }
}
