//! The one place that maps errors to gRPC statuses. Bad input becomes
//! `INVALID_ARGUMENT` with `google.rpc.BadRequest` field violations naming
//! every offending field.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// An error an RPC can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: every violation found, as (field path, description).
    #[error("invalid request: {}", .0.iter().map(|(f, d)| format!("{f}: {d}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. cancel a finished task).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Not allowed for this caller.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller's credentials (certificate, join token) are missing or not valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// It exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// Over a limit; retry after the given time.
    #[error("rate limit: {what} exceeded; retry after {} ms", retry_after.as_millis())]
    Exhausted {
        /// What ran out.
        what: String,
        /// When to retry.
        retry_after: std::time::Duration,
    },
    /// The coordinator cannot serve now (store failure, shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or unexpected condition.
    #[error("internal error: {0}")]
    Internal(String),
    /// Between the engine and an adapter only: what was asked for is not in
    /// the engine's memory but may be among the finished tasks in the store,
    /// which the adapter reads before asking again.
    #[error("internal error: the answer is in the store")]
    InStoreOnly,
}

impl ApiError {
    /// A single-field violation.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![(field.into(), description.into())])
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let msg = e.to_string();
        match e {
            ApiError::Invalid(violations) => {
                let mut details = ErrorDetails::new();
                for (field, description) in violations {
                    details.add_bad_request_violation(field, description);
                }
                Status::with_error_details(Code::InvalidArgument, msg, details)
            }
            ApiError::NotFound(_) => Status::not_found(msg),
            ApiError::FailedPrecondition(_) => Status::failed_precondition(msg),
            ApiError::PermissionDenied(_) => Status::permission_denied(msg),
            ApiError::Unauthenticated(_) => Status::unauthenticated(msg),
            ApiError::AlreadyExists(_) => Status::already_exists(msg),
            ApiError::Exhausted { retry_after, .. } => Status::with_error_details(
                Code::ResourceExhausted,
                msg,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            ApiError::Unavailable(_) => Status::unavailable(msg),
            ApiError::Internal(_) | ApiError::InStoreOnly => Status::internal(msg),
        }
    }
}

/// The engine is gone (shutting down).
pub fn engine_gone<T>(_: T) -> ApiError {
    ApiError::Unavailable("coordinator is shutting down".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_every_field() {
        let s: Status = ApiError::Invalid(vec![
            ("spec.resources.cpu_millis".into(), "too large".into()),
            ("spec.name".into(), "too long".into()),
        ])
        .into();
        assert_eq!(s.code(), Code::InvalidArgument);
        let br = s.get_details_bad_request().expect("BadRequest details");
        let fields: Vec<_> = br.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["spec.resources.cpu_millis", "spec.name"]);
        assert!(s.message().contains("spec.name: too long"));
    }
}
