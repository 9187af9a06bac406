//! Issue 12, items 4 and 5, through the real binary: compile abuse. Sources full of
//! errors (a megabyte of undefined names, a 960 KB one-line source) answer
//! INVALID_ARGUMENT with a bounded status to tonic and grpcurl clients alike (they
//! used to take minutes and reach clients as RESOURCE_EXHAUSTED "metadata size
//! exceeds hard limit"), and a compilation that outlives its call's deadline stops
//! with COMPILE_BUDGET while the server keeps answering.

use probserve_e2e::{Options, Server};
use probserve_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use probserve_proto::v1::*;
use tonic::Code;
use tonic_types::StatusExt as _;

/// Statements sampling a fresh latent from an undefined name, `sep` between them,
/// until the source is about `bytes` long.
fn undefined_names(bytes: usize, sep: &str) -> String {
    let mut s = String::from("model hostile {");
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!("{sep}x{i} ~ normal(undefined_{i}, 1.0);"));
        i += 1;
    }
    s.push_str(" }");
    s
}

fn register(name: &str, source: String) -> tonic::Request<RegisterModelRequest> {
    tonic::Request::new(RegisterModelRequest {
        name: name.into(),
        version: "1.0.0".into(),
        source,
        ..Default::default()
    })
}

/// The size of everything a status puts in the trailers: message and details.
fn status_bytes(s: &tonic::Status) -> usize {
    s.message().len() + s.details().len()
}

/// RegisterModel answers INVALID_ARGUMENT naming the first errors, with message and
/// details far below the 16 KiB metadata limit common clients enforce.
fn assert_bounded_invalid(s: &tonic::Status) {
    assert_eq!(s.code(), Code::InvalidArgument, "{}", s.message());
    assert!(
        s.message().contains("undefined name `undefined_0`"),
        "{}",
        s.message()
    );
    assert!(s.message().contains("more error(s)"), "{}", s.message());
    assert!(status_bytes(s) < 8 * 1024, "{} bytes", status_bytes(s));
    let details = s.get_error_details();
    let violations = &details.bad_request().expect("bad request").field_violations;
    assert!(!violations.is_empty() && violations.len() <= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_sources_full_of_errors_answer_a_bounded_invalid_argument() {
    let server = Server::start(Options::default()).await;
    let mut c = ModelRegistryServiceClient::new(server.channel().await)
        .max_decoding_message_size(16 << 20)
        .max_encoding_message_size(16 << 20);

    // About 30,000 undefined names on as many lines, just under the 1 MiB limit.
    let many_lines = undefined_names(1_000_000, "\n  ");
    assert!(many_lines.len() < probserve_lang_limit());
    let e = c
        .register_model(register("hostile", many_lines.clone()))
        .await
        .expect_err("does not compile");
    assert_bounded_invalid(&e);
    assert!(e.message().contains("line 2, column"), "{}", e.message());

    // The same names on one 960 KB line: each snippet is a window of the line.
    let one_line = undefined_names(960_000, " ");
    let e = c
        .register_model(register("hostile_line", one_line.clone()))
        .await
        .expect_err("does not compile");
    assert_bounded_invalid(&e);
    assert!(e.message().contains('\u{2026}'), "{}", e.message());

    // ValidateModel lists the kept diagnostics in its body, each bounded too.
    let v = c
        .validate_model(ValidateModelRequest { source: one_line })
        .await
        .expect("validate answers")
        .into_inner();
    assert!(!v.valid);
    assert_eq!(v.diagnostics.len(), 50);
    assert!(v.diagnostics.iter().all(|d| d.rendered.len() < 1024));

    // The same call through grpcurl: a clear InvalidArgument, not a metadata error.
    let body = serde_json::json!({ "name": "hostile", "version": "1.0.0", "source": many_lines });
    let (ok, _out, err) = server.grpcurl_stdin(
        &[
            "-max-msg-sz",
            "16777216",
            "-d",
            "@",
            &server.addr.to_string(),
            "probserve.v1.ModelRegistryService/RegisterModel",
        ],
        &body.to_string(),
    );
    assert!(!ok);
    assert!(err.contains("InvalidArgument"), "{err}");
    assert!(err.contains("undefined name"), "{err}");
    assert!(err.len() < 16 * 1024, "{} bytes from grpcurl", err.len());

    // Nothing was stored and the server is fine.
    let e = c
        .get_model(GetModelRequest {
            name: "hostile".into(),
            ..Default::default()
        })
        .await
        .expect_err("not registered");
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(server.health("").await.expect("health"), 1);
}

/// The server's source limit (the language's `MAX_SOURCE_BYTES`).
fn probserve_lang_limit() -> usize {
    1 << 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compilation_past_its_deadline_stops_with_compile_budget() {
    let server = Server::start(Options {
        config_toml: Some("inference_threads = 1\n".into()),
        ..Options::default()
    })
    .await;
    let mut c =
        ModelRegistryServiceClient::new(server.channel().await).max_encoding_message_size(16 << 20);
    let source = undefined_names(1_000_000, "\n  ");
    for _ in 0..3 {
        let mut req = register("slow", source.clone());
        // Long enough for the 1 MB request to arrive, far too short to compile it.
        req.set_timeout(std::time::Duration::from_millis(20));
        let e = c.register_model(req).await.expect_err("out of time");
        // The client's own timer usually answers first (CANCELLED "Timeout
        // expired"); if the server's answer arrives first, it names the budget.
        match e.code() {
            Code::Cancelled | Code::DeadlineExceeded => {}
            other => panic!("{other:?}: {e:?}"),
        }
        if e.code() == Code::DeadlineExceeded && !e.message().contains("Timeout expired") {
            let details = e.get_error_details();
            assert_eq!(
                details.error_info().map(|i| i.reason.as_str()),
                Some("COMPILE_BUDGET"),
                "{e:?}"
            );
        }
    }
    // The single CPU worker is free again: a good model registers, health answers.
    let good = "model fine {\n  mu ~ normal(0.0, 1.0);\n  output mu;\n}\n".to_owned();
    let r = c
        .register_model(register("fine", good))
        .await
        .expect("register after budget hits");
    assert!(r.into_inner().created);
    assert_eq!(server.health("").await.expect("health"), 1);
    // Each abandoned compilation stopped on the server rather than running on.
    let log = server.stderr();
    assert!(
        log.contains("compilation stopped")
            && (log.contains("compilation was cancelled")
                || log.contains("compilation exceeded its time budget")),
        "{log}"
    );
}
