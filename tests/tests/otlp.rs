//! Traces leave the real binary over OTLP and continue the client's trace: a real
//! OTLP trace receiver (opentelemetry-proto's tonic TraceService) runs inside the test.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use probserve_e2e::{Options, Server};
use probserve_proto::v1::diagnostics_service_client::DiagnosticsServiceClient;
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::{GetHealthReportRequest, InferRequest, Value};
use tokio::sync::mpsc;

struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_span_reaches_the_collector_with_the_clients_trace_id() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let mut server = Server::start(Options {
        env: vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                format!("http://{otlp_addr}"),
            ),
            ("OTEL_SERVICE_NAME".into(), "probserve-e2e".into()),
        ],
        ..Default::default()
    })
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let mut req = tonic::Request::new(GetHealthReportRequest {});
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_span}-01").parse().unwrap(),
    );
    DiagnosticsServiceClient::new(server.channel().await)
        .get_health_report(req)
        .await
        .unwrap();
    // An Infer in a second trace: its `infer` span carries what served it.
    let infer_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut req = tonic::Request::new(InferRequest {
        model: "temperature_sensor".into(),
        inputs: [(
            "reading".to_owned(),
            Value {
                kind: Some(Kind::Real(22.0)),
            },
        )]
        .into(),
        seed: Some(7),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{infer_trace}-b7ad6b7169203331-01")
            .parse()
            .unwrap(),
    );
    let resp = InferenceServiceClient::new(server.channel().await)
        .infer(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.trace_id, infer_trace, "the response names the trace");

    // SIGTERM flushes the batch exporter.
    server.signal("TERM");
    assert!(
        server.wait_exit(Duration::from_secs(30)).await.success(),
        "{}",
        server.stderr()
    );

    let mut found = None;
    let mut infer_spans: Vec<Span> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while found.is_none() || infer_spans.len() < 2 {
        let batch = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("no spans arrived")
            .expect("receiver closed");
        for rs in batch.resource_spans {
            let service_name = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .and_then(|a| a.value.as_ref())
                .and_then(|v| v.value.clone());
            for ss in rs.scope_spans {
                for span in ss.spans {
                    if hex(&span.trace_id) == trace_id && span.name.contains("GetHealthReport") {
                        found = Some((span, service_name.clone()));
                    } else if hex(&span.trace_id) == infer_trace {
                        infer_spans.push(span);
                    }
                }
            }
        }
    }
    let (span, service_name) = found.unwrap();
    assert_eq!(
        hex(&span.parent_span_id),
        parent_span,
        "the client's span must be the parent"
    );
    assert_eq!(
        service_name,
        Some(AnyValue::StringValue("probserve-e2e".into()))
    );
    let attr = |k: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.clone())
    };
    assert_eq!(
        attr("rpc.system"),
        Some(AnyValue::StringValue("grpc".into()))
    );
    assert_eq!(
        attr("rpc.service"),
        Some(AnyValue::StringValue(
            "probserve.v1.DiagnosticsService".into()
        ))
    );
    assert_eq!(
        attr("rpc.method"),
        Some(AnyValue::StringValue("GetHealthReport".into()))
    );
    assert_eq!(attr("rpc.grpc.status_code"), Some(AnyValue::IntValue(0)));
    // SpanKind::Server = 2 in OTLP.
    assert_eq!(span.kind, 2);

    // The Infer trace: the RPC span, and under it the `infer` span with the model,
    // the version that served, the routing reason and the method.
    let rpc = infer_spans
        .iter()
        .find(|s| s.name.contains("Infer"))
        .expect("the Infer RPC span");
    let infer = infer_spans
        .iter()
        .find(|s| s.name == "infer")
        .expect("the infer span");
    assert_eq!(
        infer.parent_span_id, rpc.span_id,
        "infer is a child of the RPC span"
    );
    let attr = |k: &str| {
        infer
            .attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.clone())
    };
    let text = |v: &str| Some(AnyValue::StringValue(v.into()));
    assert_eq!(attr("probserve.model"), text("temperature_sensor"));
    assert_eq!(attr("probserve.version"), text("1.0.0"));
    assert_eq!(
        attr("probserve.routing_reason"),
        text("ROUTING_REASON_DEFAULT")
    );
    assert_eq!(
        attr("probserve.method"),
        text("INFERENCE_METHOD_IMPORTANCE")
    );
}
