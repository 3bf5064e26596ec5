//! Client side of user authentication: an interceptor that puts a bearer token
//! into every request's metadata. Used by fogctl, the tests and any Rust client.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;

/// Adds `authorization: Bearer <token>` to every request; adds nothing without a token.
#[derive(Clone, Debug, Default)]
pub struct Bearer {
    token: Option<MetadataValue<Ascii>>,
    traceparent: Option<MetadataValue<Ascii>>,
}

/// A channel (or any gRPC service) that authenticates its requests.
pub type Authed<T = tonic::transport::Channel> = InterceptedService<T, Bearer>;

impl Bearer {
    /// A bearer token (access token or API token).
    pub fn new(token: &str) -> Result<Bearer, tonic::metadata::errors::InvalidMetadataValue> {
        Ok(Bearer { token: Some(format!("Bearer {token}").parse()?), traceparent: None })
    }

    /// No credentials: requests go out unauthenticated.
    pub fn none() -> Bearer {
        Bearer { token: None, traceparent: None }
    }

    /// Every request also carries this W3C trace context (`traceparent`), so
    /// the coordinator's spans join the caller's trace.
    pub fn with_traceparent(
        mut self,
        traceparent: &str,
    ) -> Result<Bearer, tonic::metadata::errors::InvalidMetadataValue> {
        self.traceparent = Some(traceparent.parse()?);
        Ok(self)
    }

    /// Wraps a channel so that every request carries this token.
    pub fn wrap<T>(self, channel: T) -> Authed<T> {
        InterceptedService::new(channel, self)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.token {
            req.metadata_mut().insert("authorization", v.clone());
        }
        if let Some(v) = &self.traceparent {
            req.metadata_mut().insert("traceparent", v.clone());
        }
        Ok(req)
    }
}
