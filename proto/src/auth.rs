//! Client side of user authentication: an interceptor that puts a bearer token
//! into every request's metadata. Used by fogctl, the tests and any Rust client.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;

/// Adds `authorization: Bearer <token>` to every request; adds nothing without a token.
#[derive(Clone, Debug, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

/// A channel (or any gRPC service) that authenticates its requests.
pub type Authed<T = tonic::transport::Channel> = InterceptedService<T, Bearer>;

impl Bearer {
    /// A bearer token (access token or API token).
    pub fn new(token: &str) -> Result<Bearer, tonic::metadata::errors::InvalidMetadataValue> {
        Ok(Bearer(Some(format!("Bearer {token}").parse()?)))
    }

    /// No credentials: requests go out unauthenticated.
    pub fn none() -> Bearer {
        Bearer(None)
    }

    /// Wraps a channel so that every request carries this token.
    pub fn wrap<T>(self, channel: T) -> Authed<T> {
        InterceptedService::new(channel, self)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}
