//! The one place fogctl turns a failure into a message, a hint and an exit code.

use std::fmt::Write as _;
use std::process::ExitCode;

use tonic::Code;
use tonic_types::StatusExt;

/// Everything a fogctl command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The coordinator could not be reached.
    #[error("cannot connect to the coordinator at {url}: {detail}")]
    Connect {
        /// The coordinator URL.
        url: String,
        /// What the transport said.
        detail: String,
    },
    /// The coordinator answered with an error status.
    #[error("{}", .status.message())]
    Status {
        /// The status.
        status: Box<tonic::Status>,
        /// The coordinator URL, for hints.
        url: String,
    },
    /// Bad input that clap could not catch.
    #[error("{0}")]
    Usage(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: any other failure, or a task that failed under `--wait`.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the coordinator cannot be reached.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: NOT_FOUND.
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit code: INVALID_ARGUMENT.
pub const EXIT_INVALID: u8 = 5;
/// Exit code: not signed in, or not allowed (UNAUTHENTICATED, PERMISSION_DENIED).
pub const EXIT_AUTH: u8 = 6;

impl CliError {
    /// Wraps a status from a call to the coordinator at `url`.
    pub fn status(status: tonic::Status, url: &str) -> CliError {
        CliError::Status { status: Box::new(status), url: url.to_string() }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Connect { .. } => EXIT_UNREACHABLE,
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Other(_) => EXIT_FAILURE,
            CliError::Status { status, .. } => match status.code() {
                Code::Unavailable => EXIT_UNREACHABLE,
                Code::NotFound => EXIT_NOT_FOUND,
                Code::InvalidArgument => EXIT_INVALID,
                Code::Unauthenticated | Code::PermissionDenied => EXIT_AUTH,
                _ => EXIT_FAILURE,
            },
        }
    }

    /// The full text for stderr: `error: …`, then details and a hint.
    pub fn report(&self) -> String {
        let mut out = String::new();
        match self {
            CliError::Status { status, url } => {
                let message = if status.message().is_empty() {
                    format!("{:?}", status.code())
                } else {
                    status.message().to_string()
                };
                let _ = writeln!(out, "error: {message}");
                if let Some(bad) = status.get_details_bad_request() {
                    for v in &bad.field_violations {
                        let _ = writeln!(out, "  - {}: {}", v.field, v.description);
                    }
                }
                match status.code() {
                    Code::Unavailable => {
                        let _ = writeln!(out, "hint: is the coordinator running at {url}?");
                    }
                    Code::Unauthenticated => {
                        let _ = writeln!(
                            out,
                            "hint: sign in with `fogctl login --username NAME`, or pass an API token with --token / FOG_TOKEN"
                        );
                    }
                    Code::PermissionDenied => {
                        let _ = writeln!(out, "hint: your role does not allow this; ask an admin");
                    }
                    Code::ResourceExhausted => {
                        let _ = writeln!(out, "hint: the coordinator is limiting this client; retry later");
                    }
                    Code::DeadlineExceeded => {
                        let _ = writeln!(out, "hint: the coordinator at {url} did not answer in time");
                    }
                    _ => {}
                }
            }
            CliError::Connect { url, .. } => {
                let _ = writeln!(out, "error: {self}");
                let _ =
                    writeln!(out, "hint: is the coordinator running at {url}? (set --coordinator or FOG_COORDINATOR)");
            }
            CliError::Usage(_) | CliError::Other(_) => {
                let _ = writeln!(out, "error: {self:#}");
            }
        }
        out
    }
}

impl From<CliError> for ExitCode {
    fn from(e: CliError) -> ExitCode {
        ExitCode::from(e.exit_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn codes_map_to_exit_codes() {
        let url = "http://127.0.0.1:7443";
        let st = |c| CliError::status(tonic::Status::new(c, "x"), url).exit_code();
        assert_eq!(st(Code::NotFound), 4);
        assert_eq!(st(Code::InvalidArgument), 5);
        assert_eq!(st(Code::Unavailable), 3);
        assert_eq!(st(Code::Internal), 1);
        let connect = CliError::Connect { url: url.into(), detail: "refused".into() };
        assert_eq!(connect.exit_code(), 3);
        assert!(connect.report().contains("is the coordinator running at http://127.0.0.1:7443?"));
    }

    #[test]
    fn invalid_argument_prints_field_violations() {
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("spec.resources.cpu_millis", "must be at most 64000");
        details.add_bad_request_violation("spec.name", "too long");
        let status = tonic::Status::with_error_details(Code::InvalidArgument, "invalid task spec", details);
        let report = CliError::status(status, "u").report();
        assert!(report.starts_with("error: invalid task spec\n"), "{report}");
        assert!(report.contains("  - spec.resources.cpu_millis: must be at most 64000\n"), "{report}");
        assert!(report.contains("  - spec.name: too long\n"), "{report}");
    }

    #[test]
    fn unavailable_gets_a_hint() {
        let status = tonic::Status::unavailable("tcp connect error");
        let report = CliError::status(status, "http://h:1").report();
        assert_eq!(report, "error: tcp connect error\nhint: is the coordinator running at http://h:1?\n");
    }
}
