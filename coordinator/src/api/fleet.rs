//! `fog.v1.FleetService`.

use super::validate::Violations;
use super::{ApiError, ask, page_size};
use crate::convert;
use crate::engine::{AdminOp, Command, EngineHandle, NodeFilter};
use crate::identity::{self, IdentityContext};
use fog_proto::v1 as pb;
use fog_proto::v1::fleet_service_server::FleetService;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The fleet service.
pub struct FleetApi {
    engine: EngineHandle,
    identity: Option<Arc<IdentityContext>>,
    /// With several replicas: which replica holds each node's session.
    directory: Option<Arc<crate::ha::sessions::SessionDirectory>>,
}

impl FleetApi {
    /// A service over the engine; `identity` is None in insecure dev mode.
    pub fn new(engine: EngineHandle, identity: Option<Arc<IdentityContext>>) -> FleetApi {
        FleetApi { engine, identity, directory: None }
    }

    /// Names, on each node, the replica holding its session.
    pub fn with_directory(mut self, directory: Option<Arc<crate::ha::sessions::SessionDirectory>>) -> FleetApi {
        self.directory = directory;
        self
    }

    fn with_replica(&self, node: &mut pb::Node) {
        if let Some(d) = &self.directory {
            node.session_replica = d.replica_of(&node.id).unwrap_or_default();
        }
    }

    async fn admin(&self, node_id: String, op: AdminOp) -> Result<pb::Node, Status> {
        let mut v = Violations::default();
        v.id("node_id", &node_id);
        v.finish()?;
        Ok(ask(&self.engine, |reply| Command::Admin(node_id, op, reply)).await?)
    }
}

#[tonic::async_trait]
impl FleetService for FleetApi {
    async fn list_nodes(&self, req: Request<pb::ListNodesRequest>) -> Result<Response<pb::ListNodesResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        v.enum_value::<pb::NodeStatus>("status", r.status, true);
        v.enum_value::<pb::NodeType>("node_type", r.node_type, true);
        if !r.region.is_empty() {
            v.id("region", &r.region);
        }
        v.labels("labels", &r.labels, true);
        v.page_size("page_size", r.page_size, 1000);
        if !r.page_token.is_empty() {
            v.id("page_token", &r.page_token);
        }
        v.finish()?;
        let filter = NodeFilter {
            status: convert::status(r.status),
            node_type: (r.node_type != 0).then(|| convert::node_type(r.node_type)),
            region: (!r.region.is_empty()).then_some(r.region),
            labels: r.labels.into_iter().map(|l| (l.key, l.value)).collect(),
            page_size: page_size(r.page_size, 100),
            after: (!r.page_token.is_empty()).then_some(r.page_token),
        };
        let mut r = ask(&self.engine, |reply| Command::ListNodes(filter, reply)).await?;
        r.nodes.iter_mut().for_each(|n| self.with_replica(n));
        Ok(Response::new(r))
    }

    async fn get_node(&self, req: Request<pb::GetNodeRequest>) -> Result<Response<pb::GetNodeResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        v.id("node_id", &r.node_id);
        v.finish()?;
        let mut r = ask(&self.engine, |reply| Command::GetNode(r.node_id, reply)).await?;
        if let Some(n) = r.node.as_mut() {
            self.with_replica(n);
        }
        Ok(Response::new(r))
    }

    async fn cordon_node(
        &self,
        req: Request<pb::CordonNodeRequest>,
    ) -> Result<Response<pb::CordonNodeResponse>, Status> {
        super::validate::declared(req.get_ref())?;
        let node = self.admin(req.into_inner().node_id, AdminOp::Cordon).await?;
        Ok(Response::new(pb::CordonNodeResponse { node: Some(node) }))
    }

    async fn uncordon_node(
        &self,
        req: Request<pb::UncordonNodeRequest>,
    ) -> Result<Response<pb::UncordonNodeResponse>, Status> {
        super::validate::declared(req.get_ref())?;
        let node = self.admin(req.into_inner().node_id, AdminOp::Uncordon).await?;
        Ok(Response::new(pb::UncordonNodeResponse { node: Some(node) }))
    }

    async fn drain_node(&self, req: Request<pb::DrainNodeRequest>) -> Result<Response<pb::DrainNodeResponse>, Status> {
        super::validate::declared(req.get_ref())?;
        let node = self.admin(req.into_inner().node_id, AdminOp::Drain).await?;
        Ok(Response::new(pb::DrainNodeResponse { node: Some(node) }))
    }

    async fn set_maintenance(
        &self,
        req: Request<pb::SetMaintenanceRequest>,
    ) -> Result<Response<pb::SetMaintenanceResponse>, Status> {
        super::validate::declared(req.get_ref())?;
        let r = req.into_inner();
        let node = self.admin(r.node_id, AdminOp::Maintenance(r.maintenance)).await?;
        Ok(Response::new(pb::SetMaintenanceResponse { node: Some(node) }))
    }

    async fn remove_node(
        &self,
        req: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::RemoveNodeResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        v.id("node_id", &r.node_id);
        v.finish()?;
        let requeued = ask(&self.engine, |reply| Command::RemoveNode(r.node_id, reply)).await?;
        Ok(Response::new(pb::RemoveNodeResponse { requeued_tasks: requeued }))
    }

    async fn update_node_labels(
        &self,
        req: Request<pb::UpdateNodeLabelsRequest>,
    ) -> Result<Response<pb::UpdateNodeLabelsResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        // Admin-only labels are allowed here: this RPC is admin-only once roles
        // exist (security issue); in insecure dev mode every caller is admin.
        v.labels("set", &r.set, true);
        v.max_items("remove", &r.remove, 64);
        for (i, k) in r.remove.iter().enumerate() {
            if let Err(e) = fog_core::domain::validate_label_key(k) {
                v.add(format!("remove[{i}]"), e.to_string());
            }
        }
        if r.set.is_empty() && r.remove.is_empty() {
            v.add("set", "set or remove at least one label");
        }
        v.id("node_id", &r.node_id);
        v.finish()?;
        let op = AdminOp::Labels { set: r.set.into_iter().map(|l| (l.key, l.value)).collect(), remove: r.remove };
        let node = ask(&self.engine, |reply| Command::Admin(r.node_id, op, reply)).await?;
        Ok(Response::new(pb::UpdateNodeLabelsResponse { node: Some(node) }))
    }

    async fn create_join_token(
        &self,
        req: Request<pb::CreateJoinTokenRequest>,
    ) -> Result<Response<pb::CreateJoinTokenResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let Some(ctx) = &self.identity else {
            return Err(ApiError::FailedPrecondition(
                "this coordinator runs in insecure dev mode: nodes connect without join tokens".into(),
            )
            .into());
        };
        let r = req.into_inner();
        let mut v = declared;
        if r.ttl_seconds != 0 && !(60..=604_800).contains(&r.ttl_seconds) {
            v.add("ttl_seconds", "must be 0 (default) or between 60 and 604800");
        }
        if !r.node_name.is_empty() {
            v.id("node_name", &r.node_name);
        }
        // Admins create tokens, so reserved labels are allowed here.
        v.labels("labels", &r.labels, true);
        v.finish()?;
        let ttl = if r.ttl_seconds == 0 { ctx.join_token_ttl } else { Duration::from_secs(r.ttl_seconds.into()) };
        let name = (!r.node_name.is_empty()).then_some(r.node_name);
        let labels = r.labels.into_iter().map(|l| (l.key, l.value)).collect();
        let (token, record) =
            identity::create_join_token(&ctx.ca.fingerprint(), ttl, name, labels, crate::engine::now_ms());
        let (token_id, expires) = (record.id.clone(), record.expires_at_ms);
        ask(&self.engine, |reply| Command::CreateToken(record, reply)).await?;
        Ok(Response::new(pb::CreateJoinTokenResponse { token, token_id, expires_at: Some(convert::ts(expires)) }))
    }
}
