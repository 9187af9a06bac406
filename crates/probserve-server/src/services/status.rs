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

/// The gRPC status for a catalog (store or compile) error, per the error model.
pub fn from_catalog(e: crate::catalog::CatalogError) -> Status {
    use crate::catalog::CatalogError;
    use probserve_store::StoreError;
    match e {
        CatalogError::Compile(diags) => bad_request(
            format!(
                "model source does not compile ({} error(s)):\n{diags}",
                diags.len()
            ),
            diags
                .iter()
                .map(|d| {
                    (
                        "source".to_owned(),
                        format!("{}:{}: {}", d.line, d.column, d.message),
                    )
                })
                .collect(),
        ),
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
}
