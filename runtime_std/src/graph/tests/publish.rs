//! Publishing: admission of every publish call, and what the audit records of refusals.

use super::*;

/// Every publish call records an owner refusal in the route audit, with the producer.
#[test]
fn owner_refusals_are_audited_by_every_publish_call() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "sensor", "a");
    let intruder = g.producer("other").unwrap();
    assert_eq!(g.publish(intruder, a, Value::Float(1.0), &PublishOptions::default()).unwrap_err().kind(), "not_owner");
    assert_eq!(g.publish_many(intruder, a, [Value::Float(1.0)]).1.unwrap().kind(), "not_owner");
    let guarded = g.publish_guarded(intruder, a, Value::Float(1.0), PublishOptions::default(), Guard::default());
    assert_eq!(guarded.unwrap_err().kind(), "not_owner");
    let refused: Vec<_> = g
        .audit_of(a)
        .into_iter()
        .map(|e| match e.kind {
            AuditKind::Refused { producer, reason } => (producer, reason),
            other => panic!("unexpected audit entry {other:?}"),
        })
        .collect();
    assert_eq!(refused, vec![("other".to_string(), "not the owner".to_string()); 3]);
}

/// A guarded publish refused for a guard already expired is in the route audit too.
#[test]
fn an_expired_guard_refusal_is_audited() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "sensor", "a");
    let owner = g.producer("sensor").unwrap();
    let guard = Guard { expires_at_us: Some(0), ..Guard::default() };
    let err = g.publish_guarded(owner, a, Value::Float(1.0), PublishOptions::default(), guard).unwrap_err();
    assert_eq!(err.kind(), "guard_invalid");
    let audit = g.audit_of(a);
    assert!(matches!(&audit[..], [AuditEntry { kind: AuditKind::Refused { producer, reason }, .. }] if producer == "sensor" && reason == err.message()));
}
