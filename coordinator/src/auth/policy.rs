//! The one table of what every RPC requires: which credential, which role,
//! and which rate-limit budget it draws from. The auth layer enforces it in
//! front of every service; an RPC missing from the table is refused (fail
//! closed), and a test checks that every RPC in the schema is listed.

use super::Role;

/// The credential an RPC needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// None (sign-in, health, reflection, join with a join token). Limited per address.
    Public,
    /// A node: a client certificate from the cluster CA (mTLS mode). User tokens are refused.
    Node,
    /// A user's access token or an API token with at least this role. Node certificates are refused.
    User(Role),
}

/// Which budget a request draws from; each has its own limits, so a flood of
/// one kind cannot starve another (node sessions above all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Public endpoints, per address.
    Public,
    /// Public streams (health watch): per-address rate and a cap on open streams per address.
    PublicStream,
    /// Node session opens and joins.
    Node,
    /// Unary reads.
    Read,
    /// Mutations.
    Write,
    /// Opening a watch stream.
    Watch,
}

/// An RPC's requirements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Credential and role.
    pub access: Access,
    /// Budget.
    pub budget: Budget,
}

const fn r(access: Access, budget: Budget) -> Rule {
    Rule { access, budget }
}

use Access::{Node, Public, User};
use Budget as B;
use Role::{Admin, Operator, Viewer};

/// Every RPC served, by its HTTP/2 path.
pub const RULES: &[(&str, Rule)] = &[
    ("/grpc.health.v1.Health/Check", r(Public, B::Public)),
    ("/grpc.health.v1.Health/Watch", r(Public, B::PublicStream)),
    // The schema, admin RPCs included, is for signed-in users (grpcurl -H 'authorization: Bearer …').
    ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", r(User(Viewer), B::Watch)),
    ("/fog.v1.AuthService/SignIn", r(Public, B::Public)),
    ("/fog.v1.AuthService/Refresh", r(Public, B::Public)),
    ("/fog.v1.AuthService/SignOut", r(Public, B::Public)),
    ("/fog.v1.AuthService/WhoAmI", r(User(Viewer), B::Read)),
    ("/fog.v1.AuthService/CreateUser", r(User(Admin), B::Write)),
    ("/fog.v1.AuthService/ListUsers", r(User(Admin), B::Read)),
    ("/fog.v1.AuthService/DeleteUser", r(User(Admin), B::Write)),
    ("/fog.v1.AuthService/CreateApiToken", r(User(Admin), B::Write)),
    ("/fog.v1.AuthService/ListApiTokens", r(User(Admin), B::Read)),
    ("/fog.v1.AuthService/RevokeApiToken", r(User(Admin), B::Write)),
    ("/fog.v1.AuthService/RotateSigningKey", r(User(Admin), B::Write)),
    // Join authenticates with the one-time join token in its body.
    ("/fog.v1.NodeService/Join", r(Public, B::Node)),
    ("/fog.v1.NodeService/Session", r(Node, B::Node)),
    ("/fog.v1.TaskService/SubmitTask", r(User(Operator), B::Write)),
    ("/fog.v1.TaskService/GetTask", r(User(Viewer), B::Read)),
    ("/fog.v1.TaskService/ListTasks", r(User(Viewer), B::Read)),
    ("/fog.v1.TaskService/CancelTask", r(User(Operator), B::Write)),
    ("/fog.v1.TaskService/WatchTasks", r(User(Viewer), B::Watch)),
    ("/fog.v1.TaskService/ExplainPlacement", r(User(Viewer), B::Read)),
    ("/fog.v1.FleetService/ListNodes", r(User(Viewer), B::Read)),
    ("/fog.v1.FleetService/GetNode", r(User(Viewer), B::Read)),
    ("/fog.v1.FleetService/CordonNode", r(User(Operator), B::Write)),
    ("/fog.v1.FleetService/UncordonNode", r(User(Operator), B::Write)),
    ("/fog.v1.FleetService/DrainNode", r(User(Operator), B::Write)),
    ("/fog.v1.FleetService/SetMaintenance", r(User(Operator), B::Write)),
    ("/fog.v1.FleetService/RemoveNode", r(User(Admin), B::Write)),
    ("/fog.v1.FleetService/UpdateNodeLabels", r(User(Admin), B::Write)),
    ("/fog.v1.FleetService/CreateJoinToken", r(User(Admin), B::Write)),
    ("/fog.v1.TopologyService/GetTopology", r(User(Viewer), B::Read)),
    ("/fog.v1.TopologyService/WatchTopology", r(User(Viewer), B::Watch)),
    ("/fog.v1.TopologyService/GetTopologyHistory", r(User(Viewer), B::Read)),
    ("/fog.v1.SystemService/GetSystemStatus", r(User(Viewer), B::Read)),
];

/// The rule of an RPC path; `None` means refuse.
pub fn rule(path: &str) -> Option<Rule> {
    RULES.iter().find(|(p, _)| *p == path).map(|(_, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_rpc_in_the_schema_has_exactly_one_rule() {
        let fds = prost_types::FileDescriptorSet::decode(fog_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut seen = 0;
        for file in fds.file.iter().filter(|f| f.package() == "fog.v1") {
            for svc in &file.service {
                for m in &svc.method {
                    let path = format!("/fog.v1.{}/{}", svc.name(), m.name());
                    assert_eq!(RULES.iter().filter(|(p, _)| *p == path).count(), 1, "{path}");
                    seen += 1;
                }
            }
        }
        assert_eq!(seen + 3, RULES.len(), "no rule for an RPC that does not exist");
    }

    #[test]
    fn mutations_need_more_than_viewer_and_reads_need_a_user() {
        for (path, rule) in RULES {
            match rule.budget {
                Budget::Write => assert!(matches!(rule.access, Access::User(r) if r > Role::Viewer), "{path}"),
                Budget::Read | Budget::Watch => assert!(matches!(rule.access, Access::User(_)), "{path}"),
                Budget::Public | Budget::PublicStream | Budget::Node => {}
            }
        }
        assert_eq!(rule("/fog.v1.Nope/Nope"), None);
    }
}
