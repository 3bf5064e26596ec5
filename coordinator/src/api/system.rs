//! `fog.v1.SystemService`.

use super::ask;
use crate::engine::{Command, EngineHandle};
use fog_proto::v1 as pb;
use fog_proto::v1::system_service_server::SystemService;
use tonic::{Request, Response, Status};

/// The system service.
pub struct SystemApi {
    engine: EngineHandle,
}

impl SystemApi {
    /// A service over the engine.
    pub fn new(engine: EngineHandle) -> SystemApi {
        SystemApi { engine }
    }
}

#[tonic::async_trait]
impl SystemService for SystemApi {
    async fn get_system_status(
        &self,
        _req: Request<pb::GetSystemStatusRequest>,
    ) -> Result<Response<pb::GetSystemStatusResponse>, Status> {
        Ok(Response::new(ask(&self.engine, Command::Status).await?))
    }
}
