//! Node identity as the engine keeps it: join tokens (only their hashes),
//! the certificates issued to each node, and the denylist of revoked ones.
//! Consuming a token, issuing a certificate and pre-registering the node are
//! one durable batch; the reply carrying the certificate is an effect of it.

use super::{Engine, now_ms};
use crate::api::ApiError;
use crate::identity::{CertDenylist, IdentityError, JoinTokenRecord, ParsedToken, check_join_token};
use crate::store::Mutation;
use fog_core::domain::NodeId;
use fog_core::registry::{NodeEntry, NodeRegistration};
use fog_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

const TOKEN_PREFIX: &str = "token/";
const CERTS_PREFIX: &str = "certs/";
const DENYLIST_KEY: &str = "denylist";

/// Tokens, issued certificates, revoked certificates.
#[derive(Default)]
pub struct IdentityBook {
    tokens: HashMap<String, JoinTokenRecord>,
    /// Node id → (serial, not_after) of every certificate issued to it and not yet expired.
    certs: HashMap<String, Vec<(String, SystemTime)>>,
    denylist: CertDenylist,
}

impl IdentityBook {
    /// Rebuilds the book from the store's meta entries.
    pub fn restore(meta: &[(String, Vec<u8>)]) -> IdentityBook {
        let mut book = IdentityBook::default();
        for (key, value) in meta {
            if let Some(id) = key.strip_prefix(TOKEN_PREFIX) {
                if let Ok(r) = serde_json::from_slice::<JoinTokenRecord>(value) {
                    book.tokens.insert(id.to_string(), r);
                }
            } else if let Some(node) = key.strip_prefix(CERTS_PREFIX) {
                if let Ok(c) = serde_json::from_slice(value) {
                    book.certs.insert(node.to_string(), c);
                }
            } else if key == DENYLIST_KEY
                && let Ok(d) = serde_json::from_slice(value)
            {
                book.denylist = d;
            }
        }
        book
    }

    /// Whether a certificate serial was revoked.
    pub fn is_denied(&self, serial: &str) -> bool {
        self.denylist.is_denied(serial)
    }

    /// Number of unexpired join tokens and revoked certificates (for status).
    pub fn counts(&self) -> (usize, usize) {
        (self.tokens.len(), self.denylist.len())
    }
}

fn meta<T: serde::Serialize>(key: String, value: &T) -> Mutation {
    Mutation::PutMeta { key, value: serde_json::to_vec(value).expect("identity records serialise") }
}

fn token_error(e: IdentityError) -> ApiError {
    match e {
        IdentityError::TokenMalformed(_) => ApiError::field("token", e.to_string()),
        IdentityError::TokenNameMismatch { .. } => ApiError::PermissionDenied(e.to_string()),
        _ => ApiError::Unauthenticated(e.to_string()),
    }
}

impl Engine {
    pub(super) fn create_token(&mut self, record: JoinTokenRecord, reply: oneshot::Sender<Result<(), ApiError>>) {
        self.pending.mutations.push(meta(format!("{TOKEN_PREFIX}{}", record.id), &record));
        self.identity.tokens.insert(record.id.clone(), record);
        self.pending.effects.push(Box::new(move |res| {
            let _ = reply.send(res.map_err(|e| ApiError::Unavailable(format!("token not stored: {e}"))));
        }));
    }

    pub(super) fn join(
        &mut self,
        token: ParsedToken,
        node_name: String,
        csr_der: Vec<u8>,
        reply: oneshot::Sender<Result<pb::JoinResponse, ApiError>>,
    ) {
        let r = self.try_join(token, node_name, &csr_der);
        match r {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(resp) => self.pending.effects.push(Box::new(move |res| {
                let _ =
                    reply.send(res.map(|()| resp).map_err(|e| ApiError::Unavailable(format!("join not stored: {e}"))));
            })),
        }
    }

    fn try_join(
        &mut self,
        token: ParsedToken,
        node_name: String,
        csr_der: &[u8],
    ) -> Result<pb::JoinResponse, ApiError> {
        let ctx = self.cfg.identity.clone().ok_or_else(|| ApiError::FailedPrecondition("mTLS is off".into()))?;
        let now = now_ms();
        let record =
            self.identity.tokens.get(&token.id).ok_or_else(|| token_error(IdentityError::TokenUnknown))?.clone();
        let name = if node_name.is_empty() { record.node_name.clone().unwrap_or_default() } else { node_name };
        check_join_token(&token, &record, &name, now).map_err(token_error)?;
        let node_id = if name.is_empty() {
            format!("node-{:08x}", rand::random::<u32>())
        } else {
            fog_core::domain::validate_id(&name).map_err(|e| ApiError::field("node_name", e.to_string()))?;
            name
        };
        let issued = ctx
            .ca
            .sign_node_csr(csr_der, &node_id, ctx.node_cert_ttl, SystemTime::now())
            .map_err(|e| ApiError::field("csr_der", e.to_string()))?;
        // One batch: the token is spent, the node exists with the token's
        // labels, and the certificate is on record for revocation.
        let mut used = record;
        used.used = true;
        self.pending.mutations.push(meta(format!("{TOKEN_PREFIX}{}", used.id), &used));
        self.identity.tokens.insert(used.id.clone(), used.clone());
        let id: NodeId = Arc::from(node_id.as_str());
        if self.nodes.get(&node_id).is_none() {
            let reg = NodeRegistration { id: id.clone(), name: node_id.clone(), ..Default::default() };
            self.nodes.insert(NodeEntry::new(reg, now));
            self.liveness.restore(id.clone(), now);
        }
        self.nodes.update(&node_id, |e| e.set_operator_labels(used.labels.iter().cloned()));
        self.pending.nodes.insert(id.clone());
        self.flush_nodes();
        self.record_cert(&node_id, &issued.serial_hex, issued.not_after);
        self.publish_node(&node_id);
        tracing::info!(node.id = %node_id, token.id = %used.id, serial = %issued.serial_hex, "node joined");
        Ok(pb::JoinResponse {
            node_id,
            certificate_der: issued.der,
            ca_chain_der: vec![ctx.ca.cert_der()],
            expires_at: Some(crate::convert::ts(
                issued.not_after.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            )),
        })
    }

    fn record_cert(&mut self, node: &str, serial: &str, not_after: SystemTime) {
        let now = SystemTime::now();
        let list = self.identity.certs.entry(node.to_string()).or_default();
        list.retain(|(_, t)| *t > now);
        list.push((serial.to_string(), not_after));
        let list = list.clone();
        self.pending.mutations.push(meta(format!("{CERTS_PREFIX}{node}"), &list));
    }

    /// Renews a node's certificate over its live session.
    pub(super) fn renew(&mut self, node: &str, csr_der: &[u8]) {
        let Some(ctx) = self.cfg.identity.clone() else { return };
        match ctx.ca.sign_node_csr(csr_der, node, ctx.node_cert_ttl, SystemTime::now()) {
            Ok(issued) => {
                self.record_cert(node, &issued.serial_hex, issued.not_after);
                let expires = issued.not_after.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                let msg = pb::session_response::Msg::CertificateRenewed(pb::CertificateRenewed {
                    certificate_der: issued.der,
                    expires_at: Some(crate::convert::ts(expires)),
                });
                self.send_after_commit(node, msg);
                tracing::info!(node.id = %node, serial = %issued.serial_hex, "certificate renewed");
            }
            Err(e) => tracing::warn!(node.id = %node, error = %e, "certificate renewal refused"),
        }
    }

    /// Revokes every certificate issued to a removed node.
    pub(super) fn revoke_node(&mut self, node: &str) {
        let Some(certs) = self.identity.certs.remove(node) else { return };
        for (serial, not_after) in certs {
            self.identity.denylist.deny(&serial, not_after);
        }
        self.identity.denylist.prune(SystemTime::now());
        self.pending.mutations.push(Mutation::DeleteMeta(format!("{CERTS_PREFIX}{node}")));
        self.pending.mutations.push(meta(DENYLIST_KEY.to_string(), &self.identity.denylist));
    }

    /// Drops spent and expired tokens from memory and the store (periodic).
    pub(super) fn prune_tokens(&mut self) {
        let now = now_ms();
        let dead: Vec<String> = self
            .identity
            .tokens
            .values()
            .filter(|t| now >= t.expires_at_ms.saturating_add(3_600_000))
            .map(|t| t.id.clone())
            .collect();
        for id in dead {
            self.identity.tokens.remove(&id);
            self.pending.mutations.push(Mutation::DeleteMeta(format!("{TOKEN_PREFIX}{id}")));
        }
    }
}
