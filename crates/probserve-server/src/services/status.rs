//! Building gRPC statuses with `google.rpc` details (tonic-types), following the
//! error model documented in `proto/probserve/v1/common.proto`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

/// The domain of our ErrorInfo details.
pub const ERROR_DOMAIN: &str = "probserve.dev";

/// INVALID_ARGUMENT with one BadRequest field violation per problem.
pub fn invalid_argument(message: impl Into<String>, violations: Vec<(String, String)>) -> Status {
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
