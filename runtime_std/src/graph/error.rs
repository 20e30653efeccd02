//! Graph errors: one enum for building and running a graph. Messages are sentences that name
//! the offending route, node or edge.

use std::fmt;

/// Why a graph operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// A route was declared twice with different schemas, or is unknown.
    RouteUnknown(String),
    /// A route is declared already.
    RouteDeclaredTwice(String),
    /// Two ends of an edge carry different schemas.
    SchemaMismatch(String),
    /// A payload does not match its route's schema.
    SchemaCheck(String),
    /// The caller does not own the route it publishes to.
    NotOwner(String),
    /// Connecting would close a feedback loop without a mailbox or epoch boundary.
    UnsafeCycle(String),
    /// A node, edge, producer or mailbox name is invalid or taken.
    NameInvalid(String),
    /// An operator's configuration is invalid.
    OperatorConfig(String),
    /// A join plan is refused (for example an unbounded all-to-all join).
    JoinRejected(String),
    /// A blocking mailbox is full: wait for it to drain, then publish again.
    MustWait(String),
    /// A rejecting mailbox is full: the publish was refused.
    Rejected(String),
    /// A guard's deadline is already in the past.
    GuardInvalid(String),
    /// The graph cannot do this in its current clock mode.
    ClockMode(String),
    /// A lazy payload could not be opened (source gone or failing, digest mismatch).
    PayloadOpen(String),
    /// An operator refers to a user function that was not supplied.
    CallableMissing(String),
    /// An envelope received from a link repeats a sequence number the route already has.
    Duplicate(String),
    /// A durable store could not be opened or written, or a durable operator has no store
    /// directory.
    Store(String),
}

impl GraphError {
    /// The sentence, without the variant.
    pub fn message(&self) -> &str {
        match self {
            GraphError::RouteUnknown(m)
            | GraphError::RouteDeclaredTwice(m)
            | GraphError::SchemaMismatch(m)
            | GraphError::SchemaCheck(m)
            | GraphError::NotOwner(m)
            | GraphError::UnsafeCycle(m)
            | GraphError::NameInvalid(m)
            | GraphError::OperatorConfig(m)
            | GraphError::JoinRejected(m)
            | GraphError::MustWait(m)
            | GraphError::Rejected(m)
            | GraphError::GuardInvalid(m)
            | GraphError::ClockMode(m)
            | GraphError::PayloadOpen(m)
            | GraphError::CallableMissing(m)
            | GraphError::Duplicate(m)
            | GraphError::Store(m) => m,
        }
    }

    /// A stable short name of the variant, for bindings and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            GraphError::RouteUnknown(_) => "route_unknown",
            GraphError::RouteDeclaredTwice(_) => "route_declared_twice",
            GraphError::SchemaMismatch(_) => "schema_mismatch",
            GraphError::SchemaCheck(_) => "schema_check",
            GraphError::NotOwner(_) => "not_owner",
            GraphError::UnsafeCycle(_) => "unsafe_cycle",
            GraphError::NameInvalid(_) => "name_invalid",
            GraphError::OperatorConfig(_) => "operator_config",
            GraphError::JoinRejected(_) => "join_rejected",
            GraphError::MustWait(_) => "must_wait",
            GraphError::Rejected(_) => "rejected",
            GraphError::GuardInvalid(_) => "guard_invalid",
            GraphError::ClockMode(_) => "clock_mode",
            GraphError::PayloadOpen(_) => "payload_open",
            GraphError::CallableMissing(_) => "callable_missing",
            GraphError::Duplicate(_) => "duplicate",
            GraphError::Store(_) => "store",
        }
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for GraphError {}

impl From<crate::store::StoreError> for GraphError {
    fn from(e: crate::store::StoreError) -> Self {
        GraphError::Store(e.message().to_string())
    }
}
