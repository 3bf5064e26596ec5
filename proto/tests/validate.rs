//! The rules generated from the `buf.validate` annotations run and name fields.

use fog_proto::Validate;
use fog_proto::v1 as pb;

fn fields<M: Validate>(m: &M) -> Vec<String> {
    m.validate().err().map(|e| e.into_violations().into_iter().map(|v| v.field_path()).collect()).unwrap_or_default()
}

#[test]
fn generated_rules_name_the_fields_they_reject() {
    assert_eq!(fields(&pb::SubmitTaskRequest::default()), ["spec"]);
    assert_eq!(fields(&pb::GetNodeRequest { node_id: "Bad Id".into() }), ["node_id"]);
    let spec = pb::TaskSpec {
        sla_tier: 42,
        required_labels: vec![pb::Label { key: "bad key!".into(), value: "v".into() }],
        ..Default::default()
    };
    let f = fields(&pb::SubmitTaskRequest { spec: Some(spec), request_id: "x".repeat(65) });
    for want in ["request_id", "spec.sla_tier", "spec.required_labels[0].key"] {
        assert!(f.iter().any(|x| x == want), "{want} not in {f:?}");
    }
    assert!(fields(&pb::GetNodeRequest { node_id: "edge-1".into() }).is_empty());
}
