//! Building gRPC statuses with `google.rpc` details (tonic-types), following the
//! error model documented in `proto/probserve/v1/common.proto`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

/// The domain of our ErrorInfo details.
pub const ERROR_DOMAIN: &str = "probserve.dev";

/// INVALID_ARGUMENT with one BadRequest field violation per problem.
///
/// The message lists the violations too, so tools that show only the message
/// (grpcurl, logs) still name every field.
pub fn invalid_argument(message: impl Into<String>, violations: Vec<(String, String)>) -> Status {
    let mut message: String = message.into();
    for (field, description) in violations.iter().take(20) {
        message.push_str(&format!("\n  {field}: {description}"));
    }
    bad_request(message, violations)
}

/// INVALID_ARGUMENT with field violations and the message as given.
pub fn bad_request(message: String, violations: Vec<(String, String)>) -> Status {
    let details = ErrorDetails::with_bad_request(
        violations
            .into_iter()
            .map(|(field, description)| FieldViolation::new(field, description))
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// A status with an ErrorInfo detail (`reason` in UPPER_SNAKE_CASE).
pub fn with_reason(code: Code, message: impl Into<String>, reason: &str) -> Status {
    let details = ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    Status::with_error_details(code, message, details)
}

/// UNIMPLEMENTED for an RPC whose capability a later issue delivers.
pub fn not_yet(rpc: &str, capability: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} is not implemented yet: it arrives with {capability}; nothing was done"
    ))
}

/// Bytes of rendered diagnostics a compile error's status message carries at most.
const COMPILE_MESSAGE_BYTES: usize = 1536;

/// Field violations a compile error's status carries at most.
const COMPILE_VIOLATIONS: usize = 10;

/// INVALID_ARGUMENT for a source that does not compile, small enough for any
/// client's metadata limit (16 KiB is common, and `grpc-message` is
/// percent-encoded): the message renders diagnostics (snippets included) until
/// [`COMPILE_MESSAGE_BYTES`], BadRequest holds the first [`COMPILE_VIOLATIONS`];
/// both say how many there are in all. ValidateModel returns every kept diagnostic
/// in its response body instead.
pub fn compile_errors(diags: &probserve_lang::Diagnostics) -> Status {
    let total = diags.len() + diags.more;
    let mut message = format!("model source does not compile ({total} error(s)):");
    let mut shown = 0;
    for d in diags.iter() {
        let rendered = d.to_string();
        if shown > 0 && message.len() + rendered.len() + 1 > COMPILE_MESSAGE_BYTES {
            break;
        }
        message.push('\n');
        message.push_str(&rendered);
        shown += 1;
    }
    if shown < total {
        message.push_str(&format!(
            "\n... and {} more error(s); ValidateModel lists the first {}",
            total - shown,
            diags.len()
        ));
    }
    let violations = diags
        .iter()
        .take(COMPILE_VIOLATIONS)
        .map(|d| {
            (
                "source".to_owned(),
                format!("{}:{}: {}", d.line, d.column, d.message),
            )
        })
        .collect();
    bad_request(message, violations)
}

#[cfg(test)]
mod compile_error_tests {
    use super::*;

    /// Everything a status puts in the response headers/trailers, encoded as sent.
    fn header_bytes(s: Status) -> usize {
        let response = s.into_http::<()>();
        response
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum()
    }

    #[test]
    fn a_compile_error_status_fits_client_metadata_limits() {
        // 270,000 lex errors on non-ASCII characters (percent-encoded 3x in the message).
        let name = "\u{e9}".repeat(90);
        let src = format!(
            "model m {{ {} }}",
            (0..3_000)
                .map(|i| format!("x{i} ~ normal({name}{i}, 1.0);"))
                .collect::<String>()
        );
        let diags = probserve_lang::compile(&src).expect_err("undefined names");
        let status = compile_errors(&diags);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("270000 error(s)"),
            "{}",
            status.message()
        );
        assert!(status.message().contains("more error(s)"));
        let violations = status.get_error_details();
        let br = violations.bad_request().expect("bad request");
        assert_eq!(br.field_violations.len(), COMPILE_VIOLATIONS);
        let bytes = header_bytes(status);
        assert!(bytes < 12 * 1024, "{bytes} bytes of metadata");
    }
}

/// The gRPC status for a catalog (store or compile) error, per the error model.
pub fn from_catalog(e: crate::catalog::CatalogError) -> Status {
    use crate::catalog::CatalogError;
    use probserve_store::StoreError;
    match e {
        CatalogError::Compile(diags) => compile_errors(&diags),
        CatalogError::CompileBudget {
            message,
            callers_deadline,
        } => with_reason(
            if callers_deadline {
                Code::DeadlineExceeded
            } else {
                Code::ResourceExhausted
            },
            message,
            "COMPILE_BUDGET",
        ),
        CatalogError::CompileCancelled(message) => Status::cancelled(message),
        CatalogError::Overloaded(message) => {
            let mut details = ErrorDetails::new();
            details.set_error_info(
                "OVERLOADED",
                ERROR_DOMAIN,
                std::collections::HashMap::<String, String>::new(),
            );
            details.set_retry_info(Some(probserve_reliability::admission::SHED_RETRY_AFTER));
            Status::with_error_details(Code::ResourceExhausted, message, details)
        }
        CatalogError::Store(StoreError::NotFound { what }) => {
            with_reason(Code::NotFound, format!("{what} not found"), "NOT_FOUND")
        }
        CatalogError::Store(e @ StoreError::VersionConflict { .. }) => {
            with_reason(Code::AlreadyExists, e.to_string(), "VERSION_CONFLICT")
        }
        CatalogError::Store(e @ StoreError::RevisionMismatch { .. }) => {
            with_reason(Code::Aborted, e.to_string(), "CONFLICT")
        }
        CatalogError::Store(StoreError::InvalidArgument { field, reason }) => {
            invalid_argument(format!("invalid {field}: {reason}"), vec![(field, reason)])
        }
        CatalogError::Store(e @ StoreError::FailedPrecondition { .. }) => with_reason(
            Code::FailedPrecondition,
            e.to_string(),
            "FAILED_PRECONDITION",
        ),
        CatalogError::Store(e) => {
            tracing::error!(error = %e, "store failure");
            with_reason(Code::Internal, format!("store failure: {e}"), "STORE")
        }
        e @ CatalogError::StoredDoesNotCompile { .. } => {
            tracing::error!(error = %e, "stored model does not compile");
            with_reason(Code::Internal, e.to_string(), "STORED_MODEL_INVALID")
        }
        CatalogError::Task(msg) => with_reason(Code::Internal, msg, "TASK"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_round_trip() {
        let s = invalid_argument(
            "bad inputs",
            vec![("inputs.reading".into(), "missing".into())],
        );
        assert_eq!(s.code(), Code::InvalidArgument);
        let d = s.get_error_details();
        let br = d.bad_request().expect("bad request detail");
        assert_eq!(br.field_violations[0].field, "inputs.reading");
    }

    /// The rows of the error table that no request reaches (a server bug, or a
    /// budget no test can exhaust in its time) checked against the functions that
    /// build them; tests/tests/error_table.rs provokes every other row through the
    /// binary and lists these as checked here.
    #[test]
    fn bug_only_rows_map_as_the_table_says() {
        use crate::catalog::CatalogError;
        use crate::rollouts::RolloutError;
        use probserve_store::StoreError;
        let table = include_str!("../../../../proto/probserve/v1/common.proto");
        let diagnostics = probserve_lang::compile("model {").expect_err("bad source");
        let cases = [
            (
                from_catalog(CatalogError::Store(StoreError::Backend("disk".into()))),
                "INTERNAL",
                "STORE",
            ),
            (
                from_catalog(CatalogError::StoredDoesNotCompile {
                    name: "m".into(),
                    version: "1.0.0".into(),
                    diagnostics,
                }),
                "INTERNAL",
                "STORED_MODEL_INVALID",
            ),
            (
                from_catalog(CatalogError::Task("join".into())),
                "INTERNAL",
                "TASK",
            ),
            (
                crate::services::experiments::from_rollout(RolloutError::Internal("x".into())),
                "INTERNAL",
                "INTERNAL",
            ),
            (
                probserve_reliability::panic::panic_status(&"boom"),
                "INTERNAL",
                "PANIC",
            ),
            (
                from_catalog(CatalogError::CompileBudget {
                    message: "over".into(),
                    callers_deadline: false,
                }),
                "RESOURCE_EXHAUSTED",
                "COMPILE_BUDGET",
            ),
            (
                from_catalog(CatalogError::CompileBudget {
                    message: "late".into(),
                    callers_deadline: true,
                }),
                "DEADLINE_EXCEEDED",
                "COMPILE_BUDGET",
            ),
        ];
        for (status, code, reason) in cases {
            let row = table.lines().any(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                l.starts_with("// |")
                    && cells.get(1) == Some(&code)
                    && cells.get(3) == Some(&format!("ErrorInfo({reason})").as_str())
            });
            assert!(row, "no table row {code} ErrorInfo({reason})");
            assert_eq!(
                crate::telemetry::metrics::code_name(status.code() as i32),
                code,
                "{status:?}"
            );
            let details = status.get_error_details();
            assert_eq!(
                details.error_info().map(|i| i.reason.as_str()),
                Some(reason),
                "{status:?}"
            );
        }
    }
}
