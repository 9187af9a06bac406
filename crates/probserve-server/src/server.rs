//! The server's lifecycle: bind, build the service stack, report health, serve,
//! and drain on SIGTERM/SIGINT.
//!
//! Start-up: listeners are bound first (a taken port fails fast), every health
//! status is NOT_SERVING (tonic-health starts "" as SERVING, so we flip it) until
//! the services are built, then SERVING.
//!
//! Drain: on a signal every health status flips to NOT_SERVING and new calls are
//! refused with UNAVAILABLE (health checks still answer) for `drain_grace_secs`;
//! then the listener closes (HTTP/2 GOAWAY), in-flight calls get
//! `drain_timeout_secs` to finish, and telemetry is flushed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use probserve_proto::v1::HealthState;
use probserve_proto::v1::diagnostics_service_server::DiagnosticsServiceServer;
use probserve_proto::v1::experiment_service_server::ExperimentServiceServer;
use probserve_proto::v1::inference_service_server::InferenceServiceServer;
use probserve_proto::v1::model_registry_service_server::ModelRegistryServiceServer;
use probserve_reliability::{Admission, AdmissionLayer};
use prost::Message as _;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::infer::InferencePool;
use crate::services;
use crate::state::Shared;
use crate::telemetry::TelemetryGuard;
use crate::telemetry::metrics::{self, RpcMetrics};
use crate::telemetry::rpc_layer::RpcLayer;

/// Health service names: the whole server ("") and each probserve service.
fn health_names() -> Vec<&'static str> {
    let mut v = vec![""];
    v.extend_from_slice(probserve_proto::SERVICE_NAMES);
    v
}

/// Every `/package.Service/Method` path in the given encoded descriptor sets.
fn method_paths(sets: &[&[u8]]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for bytes in sets {
        let Ok(fds) = prost_types::FileDescriptorSet::decode(*bytes) else {
            continue;
        };
        for f in &fds.file {
            for s in &f.service {
                for m in &s.method {
                    out.insert(format!("/{}.{}/{}", f.package(), s.name(), m.name()));
                }
            }
        }
    }
    out
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// Runs the server until a signal ends it.
pub async fn run(config: Config, telemetry: TelemetryGuard) -> anyhow::Result<()> {
    probserve_reliability::install_panic_hook();
    let grpc_listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the gRPC listener on {}", config.listen))?;
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("binding the metrics listener on {}", config.metrics_listen))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;

    let (health, health_service) = tonic_health::server::health_reporter();
    for name in health_names() {
        health
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }

    let known = method_paths(&[
        probserve_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]);
    let rpc_metrics = Arc::new(RpcMetrics::new(known));
    let admission = Admission::new(
        config.effective_max_in_flight(),
        &["/grpc.health.v1.Health/", "/grpc.reflection."],
    );
    let shared = Arc::new(Shared::new(
        Arc::clone(&rpc_metrics),
        Arc::clone(&admission),
    ));
    let registry = Arc::new(metrics::registry(&rpc_metrics, &admission));

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let db_path = config.data_dir.join("probserve.redb");
    let store = tokio::task::spawn_blocking(move || probserve_store::RedbStore::open(&db_path))
        .await
        .context("opening the store")?
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let store: Arc<dyn probserve_store::Store> = Arc::new(store);
    // The path is for the operator's log, not for anonymous health callers.
    tracing::info!(data_dir = %config.data_dir.display(), "store opened");
    shared.set_subsystem("store", HealthState::Healthy, "redb store".to_owned());
    let pool = Arc::new(
        InferencePool::new(config.inference_threads)
            .context("starting the inference threads")?
            .with_max_queue(Duration::from_millis(config.max_queue_ms)),
    );
    let catalog = Arc::new(Catalog::new(store, Arc::clone(&pool)));
    if config.builtin_models {
        let created = catalog
            .register_builtins()
            .await
            .map_err(|e| anyhow::anyhow!("registering built-in models: {e}"))?;
        tracing::info!(created, "built-in models registered");
    }
    shared.set_subsystem(
        "inference",
        HealthState::Healthy,
        format!("{} CPU workers", pool.threads()),
    );
    let rollouts = crate::rollouts::Rollouts::load(Arc::clone(catalog.store()))
        .await
        .map_err(|e| anyhow::anyhow!("loading rollouts: {e}"))?;
    let (controller_stop, controller_rx) = tokio::sync::watch::channel(false);
    let controller = crate::rollouts::spawn_controller(
        Arc::clone(&rollouts),
        Duration::from_millis(config.controller_interval_ms),
        controller_rx,
    );
    let inference = services::inference::Inference::new(
        Arc::clone(&catalog),
        Arc::clone(&rollouts),
        Arc::clone(&pool),
        Duration::from_millis(config.default_deadline_ms),
        Duration::from_micros(config.inline_budget_micros),
    )
    .with_max_deadline(Duration::from_millis(config.max_deadline_ms))
    .with_admission(Arc::clone(&admission))
    .with_limits(
        crate::run_cost::MemoryBudget::new(
            config.max_request_memory_bytes,
            config.max_inference_memory_bytes,
            config.max_message_bytes as u64,
        ),
        config.non_finite_outputs,
    );

    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(probserve_proto::FILE_DESCRIPTOR_SET)
            // So grpcurl can decode the google.rpc details our errors carry.
            .register_encoded_file_descriptor_set(probserve_proto::GOOGLE_RPC_FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
            .include_reflection_service(false)
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure()).build_v1()?;
    let reflection_v1alpha =
        reflection(tonic_reflection::server::Builder::configure()).build_v1alpha()?;

    let max = config.max_message_bytes;
    let keepalive =
        (config.keepalive_interval_secs > 0.0).then(|| secs(config.keepalive_interval_secs));
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(keepalive)
        .http2_keepalive_timeout(Some(secs(config.keepalive_timeout_secs)))
        .max_concurrent_streams(config.max_concurrent_streams)
        .tcp_nodelay(true)
        .layer(RpcLayer::new(Arc::clone(&rpc_metrics)))
        .layer(AdmissionLayer::new(Arc::clone(&admission)))
        .layer(probserve_reliability::DeadlineLayer::new(
            Duration::from_millis(config.max_deadline_ms),
        ))
        .layer(probserve_reliability::CatchPanicLayer::new())
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            InferenceServiceServer::new(inference)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ModelRegistryServiceServer::new(services::registry::Registry::new(Arc::clone(
                &catalog,
            )))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            ExperimentServiceServer::new(services::experiments::Experiments::new(
                Arc::clone(&rollouts),
                Arc::clone(&catalog),
            ))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            DiagnosticsServiceServer::new(services::diagnostics::Diagnostics::new(Arc::clone(
                &shared,
            )))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (metrics_stop_tx, metrics_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let metrics_task = tokio::spawn(metrics::serve(metrics_listener, registry, async move {
        let _ = metrics_stop_rx.await;
    }));
    let serve = tokio::spawn(router.serve_with_incoming_shutdown(
        // tonic ignores the builder's tcp_nodelay for caller-supplied listeners; without
        // it Nagle + delayed ACK cost ~40 ms per unary call.
        tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
        async move {
            let _ = stop_rx.await;
        },
    ));

    for name in health_names() {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    shared.set_ready();
    tracing::info!(grpc = %grpc_addr, metrics = %metrics_addr, otlp = telemetry.exporting(), "probserve serving");

    let mut serve = serve;
    tokio::select! {
        res = &mut serve => {
            // The server stopped on its own: an I/O error.
            res.context("gRPC server task")?.context("gRPC server")?;
        }
        () = shutdown_signal() => {
            tracing::info!(grace_secs = config.drain_grace_secs, timeout_secs = config.drain_timeout_secs, "draining");
            for name in health_names() {
                health.set_service_status(name, ServingStatus::NotServing).await;
            }
            admission.start_draining();
            tokio::time::sleep(secs(config.drain_grace_secs)).await;
            let _ = stop_tx.send(());
            match tokio::time::timeout(secs(config.drain_timeout_secs), &mut serve).await {
                Ok(res) => res.context("gRPC server task")?.context("gRPC server")?,
                Err(_) => {
                    tracing::warn!(in_flight = admission.in_flight(), "drain timeout: abandoning in-flight calls");
                    serve.abort();
                }
            }
        }
    }
    let _ = controller_stop.send(true);
    if tokio::time::timeout(Duration::from_secs(5), controller)
        .await
        .is_err()
    {
        tracing::warn!("controller did not stop in time");
    }
    let _ = metrics_stop_tx.send(());
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), metrics_task)
        .await
        .map(|r| r.unwrap_or(Ok(())))
    {
        tracing::warn!(error = %e, "metrics server");
    }
    tracing::info!("stopped");
    telemetry.shutdown();
    Ok(())
}
