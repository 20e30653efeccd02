//! Declaring the graph: routes and their schemas, producers and grants, nodes, edges and their
//! mailboxes, subscriptions. Wiring is checked here: a route has one producing node, connected
//! routes carry the same schema, and an inline feedback loop is refused.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use manyfold_core::envelope::{ClockDomain, RouteIdx};
use manyfold_core::mailbox::{Mailbox, Overflow};
use manyfold_core::taint::TaintSet;

use crate::envelope::EnvelopeRef;
use crate::route::{check_segment, Layer, Route};
use crate::schema::Schema;

use super::*;

/// Per-route settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteOptions {
    /// Envelopes kept for replay (at least 1: the latest).
    pub history: usize,
    /// Envelopes kept for lineage queries (at least `history`, or the route is refused): a
    /// lineage walk can reach this far back on this route; older ancestors are `missing`.
    pub retain: usize,
    /// Record publishes and deliveries on this route in the audit log.
    pub audit: bool,
    /// Clock domain of event times published without one.
    pub clock_domain: ClockDomain,
}

/// Default envelopes kept per route for lineage.
pub const RETAIN_DEFAULT: usize = 256;

impl Default for RouteOptions {
    fn default() -> Self {
        RouteOptions { history: 8, retain: RETAIN_DEFAULT, audit: false, clock_domain: ClockDomain::INGEST }
    }
}

impl RouteOptions {
    /// The default options keeping `history` envelopes for replay. Retain is
    /// [`RETAIN_DEFAULT`], or `history` when that is larger (retain is at least history), so a
    /// route that only asks for a long history gets it, from Python and from a manifest alike.
    pub fn with_history(history: usize) -> RouteOptions {
        RouteOptions { history, retain: RETAIN_DEFAULT.max(history), ..RouteOptions::default() }
    }
}

/// A mailbox on an edge: capacity and overflow policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxSpec {
    /// Items held at most.
    pub capacity: usize,
    /// What happens when full.
    pub overflow: Overflow,
}

/// How an edge delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EdgePolicy {
    /// Buffer in a mailbox (asynchronous); `None` delivers inline.
    pub mailbox: Option<MailboxSpec>,
    /// Hold items until the next control epoch.
    pub epoch_boundary: bool,
}

impl EdgePolicy {
    /// Inline delivery.
    pub const INLINE: EdgePolicy = EdgePolicy { mailbox: None, epoch_boundary: false };

    /// True when delivery happens during the publish that fed the edge.
    pub fn is_inline(&self) -> bool {
        self.mailbox.is_none() && !self.epoch_boundary
    }
}

/// What an edge delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Input `port` of a node.
    Node {
        /// The node.
        node: NodeIdx,
        /// Its input port.
        port: usize,
    },
    /// A subscription.
    Subscription(SubscriptionIdx),
}

/// Who may publish on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteProducer {
    /// External producers named like the route's owner (or granted).
    External,
    /// Only this node.
    Node(NodeIdx),
}

/// A consumer of envelopes outside the graph (a callback, a counter).
pub trait Subscriber: Send {
    /// Receives one envelope.
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure>;

    /// Receives `n` envelopes it does not look at (the fused batch path): true when it took
    /// them, false when it needs each envelope (then the graph never fuses a batch through it;
    /// `n == 0` is the graph's probe and must change nothing).
    fn deliver_many(&mut self, _n: u64) -> bool {
        false
    }
}

/// A subscriber that only counts, without leaving Rust.
#[derive(Debug, Default)]
pub struct CountingSubscriber {
    /// Shared count, readable while the graph runs.
    pub count: Arc<std::sync::atomic::AtomicU64>,
}

impl Subscriber for CountingSubscriber {
    fn deliver(&mut self, _envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        // Only the graph (under its lock) writes the count, so a plain load and store is
        // enough; readers on other threads see a recent value without a locked instruction.
        let n = self.count.load(std::sync::atomic::Ordering::Relaxed);
        self.count.store(n + 1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn deliver_many(&mut self, n: u64) -> bool {
        let count = self.count.load(std::sync::atomic::Ordering::Relaxed);
        self.count.store(count + n, std::sync::atomic::Ordering::Relaxed);
        true
    }
}

impl Graph {
    /// Declares a route with its schema.
    pub fn declare_route(&mut self, route: Route, schema: Arc<Schema>, options: RouteOptions) -> Result<RouteIdx, GraphError> {
        if let Some(existing) = self.by_route.get(&route) {
            let st = &self.routes[existing.0 as usize];
            if st.schema.hash == schema.hash {
                return Ok(*existing);
            }
            return Err(GraphError::RouteDeclaredTwice(format!(
                "route {route} is already declared with schema {}, not {}",
                st.schema.label(),
                schema.label()
            )));
        }
        if options.history == 0 || options.retain < options.history {
            return Err(GraphError::OperatorConfig(format!(
                "route {route}: history must be at least 1 and retain at least history (got history {}, retain {}); \
                 replay reads the newest history envelopes of the retained ones",
                options.history, options.retain
            )));
        }
        let index = RouteIdx(idx(self.routes.len()));
        self.routes.push(RouteState {
            ephemeral: route.layer() == Layer::Ephemeral,
            route: route.clone(),
            schema,
            options,
            seq: 0,
            retained: VecDeque::new(),
            consumers: Vec::new(),
            producer: RouteProducer::External,
            taints_seen: TaintSet::EMPTY,
            admission: None,
            ingested: 0,
            duplicates: 0,
            fused: None,
        });
        self.by_route.insert(route, index);
        self.topology_version += 1;
        Ok(index)
    }

    /// How many routes are declared.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// Takes back the routes declared after the first `count`, none of which may be in use yet
    /// (a consumer, a producing node, an envelope or a grant). A binding that declares a
    /// node's new output routes just before adding the node calls it when the node is refused,
    /// so the refusal leaves the graph as it was.
    pub fn undeclare_routes_from(&mut self, count: usize) -> Result<(), GraphError> {
        let in_use = |i: usize, r: &RouteState| {
            !r.consumers.is_empty()
                || r.producer != RouteProducer::External
                || r.seq > 0
                || self.producers.iter().any(|p| p.grants.contains(&RouteIdx(idx(i))))
        };
        if let Some((_, r)) = self.routes.iter().enumerate().skip(count).find(|(i, r)| in_use(*i, r)) {
            return Err(GraphError::OperatorConfig(format!("route {} is in use and cannot be undeclared", r.route)));
        }
        for r in self.routes.drain(count.min(self.routes.len())..) {
            self.by_route.remove(&r.route);
        }
        self.topology_version += 1;
        Ok(())
    }

    /// The index of a declared route.
    pub fn route_index(&self, route: &Route) -> Option<RouteIdx> {
        self.by_route.get(route).copied()
    }

    pub(super) fn route_state(&self, route: RouteIdx) -> Result<&RouteState, GraphError> {
        self.routes
            .get(route.0 as usize)
            .ok_or_else(|| GraphError::RouteUnknown(format!("no route with index {}", route.0)))
    }

    /// The route at an index.
    pub fn route(&self, route: RouteIdx) -> Result<&Route, GraphError> {
        Ok(&self.route_state(route)?.route)
    }

    /// The schema of a route.
    pub fn schema(&self, route: RouteIdx) -> Result<&Arc<Schema>, GraphError> {
        Ok(&self.route_state(route)?.schema)
    }

    /// Who may publish on a route.
    pub fn route_producer(&self, route: RouteIdx) -> Result<RouteProducer, GraphError> {
        Ok(self.route_state(route)?.producer)
    }

    /// Every declared route, in declaration order.
    pub fn routes(&self) -> impl Iterator<Item = (RouteIdx, &Route, &Arc<Schema>)> + '_ {
        self.routes.iter().enumerate().map(|(i, r)| (RouteIdx(idx(i)), &r.route, &r.schema))
    }

    /// Edges consuming a route.
    pub fn route_consumers(&self, route: RouteIdx) -> Result<Vec<EdgeIdx>, GraphError> {
        Ok(self.route_state(route)?.consumers.clone())
    }

    /// An external producer called `name` (created on first use): a route segment, or a segment,
    /// `#` and an instance number (`greenhouse#12`).
    pub fn producer(&mut self, name: &str) -> Result<ProducerIdx, GraphError> {
        if let Some(p) = self.by_producer.get(name) {
            return Ok(*p);
        }
        // One of N instances of a producer (boards of a fleet) is named `name#i`.
        let base = match name.split_once('#') {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => base,
            _ => name,
        };
        check_segment("producer", base).map_err(|e| GraphError::NameInvalid(e.0))?;
        let index = ProducerIdx(idx(self.producers.len()));
        self.producers.push(ProducerState { name: name.into(), grants: BTreeSet::new(), published: 0 });
        self.by_producer.insert(name.into(), index);
        Ok(index)
    }

    /// The name of a producer.
    pub fn producer_name(&self, producer: ProducerIdx) -> &str {
        self.producers.get(producer.0 as usize).map_or("?", |p| p.name.as_str())
    }

    /// Lets `producer` publish on `route` although it does not own it.
    pub fn grant(&mut self, producer: ProducerIdx, route: RouteIdx) -> Result<(), GraphError> {
        self.route_state(route)?;
        let p = self
            .producers
            .get_mut(producer.0 as usize)
            .ok_or_else(|| GraphError::NameInvalid(format!("no producer with index {}", producer.0)))?;
        p.grants.insert(route);
        Ok(())
    }

    fn check_name(&self, what: &str, name: &str) -> Result<(), GraphError> {
        check_segment(what, name).map_err(|e| GraphError::NameInvalid(e.0))?;
        if self.by_node.contains_key(name) || self.edge_names.contains_key(name) {
            return Err(GraphError::NameInvalid(format!("the name {name:?} is already used by a node or edge")));
        }
        Ok(())
    }

    /// Finds a path of inline edges from `from` to `to`, as printed route names.
    fn inline_path(&self, from: RouteIdx, to: RouteIdx) -> Option<Vec<String>> {
        let mut previous: HashMap<RouteIdx, (RouteIdx, NodeIdx)> = HashMap::new();
        let mut frontier = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        // Bounded: each route enters the frontier at most once.
        while let Some(r) = frontier.pop_front() {
            if r == to {
                let mut path = vec![self.routes[to.0 as usize].route.to_string()];
                let mut at = to;
                while let Some((prev, node)) = previous.get(&at).copied() {
                    path.push(format!("[{}]", self.nodes[node.0 as usize].name));
                    path.push(self.routes[prev.0 as usize].route.to_string());
                    at = prev;
                }
                path.reverse();
                return Some(path);
            }
            for e in &self.routes[r.0 as usize].consumers {
                let edge = &self.edges[e.0 as usize];
                if !edge.active || !edge.policy.is_inline() {
                    continue;
                }
                if let Target::Node { node, .. } = edge.target {
                    for out in &self.nodes[node.0 as usize].outputs {
                        if seen.insert(*out) {
                            previous.insert(*out, (r, node));
                            frontier.push_back(*out);
                        }
                    }
                }
            }
        }
        None
    }

    /// Checks an edge's policy before anything is built: a mailbox holds 1 to
    /// [`ops::CAPACITY_MAX`] items.
    fn check_policy(edge: &str, policy: &EdgePolicy) -> Result<(), GraphError> {
        match policy.mailbox {
            Some(spec) if spec.capacity == 0 || spec.capacity > ops::CAPACITY_MAX => Err(GraphError::OperatorConfig(format!(
                "edge {edge}: a mailbox needs a capacity of 1 to {}, got {}",
                ops::CAPACITY_MAX,
                spec.capacity
            ))),
            _ => Ok(()),
        }
    }

    /// The name of the edge into input `port` of node `node` (of `inputs` inputs).
    fn input_edge_name(node: &str, port: usize, inputs: usize) -> String {
        if inputs == 1 { format!("{node}_in") } else { format!("{node}_in{port}") }
    }

    /// Builds an edge whose policy [`Graph::check_policy`] accepted: it cannot fail, so a
    /// caller that checked everything first never leaves anything half-built.
    fn new_edge(&mut self, name: String, source: RouteIdx, target: Target, policy: EdgePolicy) -> EdgeIdx {
        let edge = EdgeIdx(idx(self.edges.len()));
        let mailbox = policy.mailbox.map(|spec| {
            let mb = MailboxIdx(idx(self.mailboxes.len()));
            let slots: Box<[Option<EnvelopeRef>]> = (0..spec.capacity).map(|_| None).collect();
            self.mailboxes.push(MailboxState {
                name: name.clone(),
                edge,
                queue: Mailbox::new(slots, spec.overflow),
                pending_taints: TaintSet::EMPTY,
                refused_publishes: 0,
                stall_dropped: 0,
                created_us: self.now_us(),
                full_since_us: None,
                full_us: 0,
                busy_ns: 0,
            });
            mb
        });
        self.edge_names.insert(name.clone(), edge);
        self.edges.push(EdgeState {
            name,
            source,
            target,
            policy,
            mailbox,
            active: true,
            delivered: 0,
            held: VecDeque::new(),
            held_dropped: 0,
            held_taints: TaintSet::EMPTY,
            stalled: VecDeque::new(),
        });
        self.routes[source.0 as usize].consumers.push(edge);
        self.topology_version += 1;
        edge
    }

    /// Adds a node running `op`, fed by `inputs` (route and edge policy per input port), that
    /// publishes on `outputs` (one route per output port). Refuses an output route someone
    /// else produces, a bad mailbox, and an inline feedback loop. Everything is checked before
    /// anything is built: a refused node leaves the graph as it was.
    pub fn add_node(
        &mut self,
        name: &str,
        op: Box<dyn Operator>,
        inputs: &[(RouteIdx, EdgePolicy)],
        outputs: &[RouteIdx],
    ) -> Result<NodeIdx, GraphError> {
        self.check_name("node", name)?;
        if outputs.is_empty() {
            return Err(GraphError::OperatorConfig(format!("node {name} needs at least one output route")));
        }
        for (i, output) in outputs.iter().enumerate() {
            let out_state = self.route_state(*output)?;
            if let RouteProducer::Node(other) = out_state.producer {
                return Err(GraphError::NotOwner(format!(
                    "route {} is already produced by node {}; a route has one producing node",
                    out_state.route, self.nodes[other.0 as usize].name
                )));
            }
            if out_state.seq > 0 {
                return Err(GraphError::NotOwner(format!(
                    "route {} already carries envelopes from external producers; give node {name} its own output route",
                    out_state.route
                )));
            }
            if outputs[..i].contains(output) {
                return Err(GraphError::OperatorConfig(format!("node {name} lists output {} twice", out_state.route)));
            }
        }
        for (port, (input, policy)) in inputs.iter().enumerate() {
            self.route_state(*input)?;
            Self::check_policy(&Self::input_edge_name(name, port, inputs.len()), policy)?;
            if !policy.is_inline() {
                continue;
            }
            for output in outputs {
                if let Some(path) = self.inline_path(*output, *input) {
                    return Err(GraphError::UnsafeCycle(format!(
                        "node {name} would close a feedback loop without a mailbox or control-epoch boundary: \
                         {} -> [{name}] -> {}; put a mailbox or an epoch boundary on one of its edges",
                        path.join(" -> "),
                        self.routes[output.0 as usize].route
                    )));
                }
            }
        }
        let node = NodeIdx(idx(self.nodes.len()));
        self.nodes.push(NodeState {
            name: name.into(),
            op,
            inputs: Vec::new(),
            outputs: outputs.to_vec(),
            processed: 0,
            emitted: 0,
            failures: 0,
            taints_in: TaintSet::EMPTY,
            taints_out: TaintSet::EMPTY,
            spec: None,
        });
        self.by_node.insert(name.into(), node);
        for (port, (input, policy)) in inputs.iter().enumerate() {
            let edge = self.new_edge(Self::input_edge_name(name, port, inputs.len()), *input, Target::Node { node, port }, *policy);
            self.nodes[node.0 as usize].inputs.push(edge);
        }
        for output in outputs {
            self.routes[output.0 as usize].producer = RouteProducer::Node(node);
        }
        if let Some(token) = self.nodes[node.0 as usize].op.start_timer() {
            self.timer_seq += 1;
            self.timers.push(std::cmp::Reverse((self.now_us(), self.timer_seq, node, token)));
        }
        self.topology_version += 1;
        Ok(node)
    }

    /// Adds a node built by [`factory::build`] from `params`, and keeps the parameters so the
    /// node can be written to a manifest exactly as it was described.
    #[allow(clippy::too_many_arguments)]
    pub fn add_node_described(
        &mut self,
        name: &str,
        kind: &str,
        op: Box<dyn Operator>,
        inputs: &[(RouteIdx, EdgePolicy)],
        outputs: &[RouteIdx],
        params: factory::ParamMap,
    ) -> Result<NodeIdx, GraphError> {
        let node = self.add_node(name, op, inputs, outputs)?;
        self.nodes[node.0 as usize].spec = Some((kind.to_string(), params));
        Ok(node)
    }

    /// The factory kind and parameters a node was described with (factory-built nodes and
    /// `connect`).
    pub fn node_spec(&self, node: NodeIdx) -> Option<(&str, &factory::ParamMap)> {
        self.nodes.get(node.0 as usize).and_then(|n| n.spec.as_ref()).map(|(k, p)| (k.as_str(), p))
    }

    /// A route's settings.
    pub fn route_options(&self, route: RouteIdx) -> Result<RouteOptions, GraphError> {
        Ok(self.route_state(route)?.options)
    }

    /// Producers granted `route` (besides its owner), by name, sorted.
    pub fn route_writers(&self, route: RouteIdx) -> Vec<String> {
        let mut names: Vec<String> = self.producers.iter().filter(|p| p.grants.contains(&route)).map(|p| p.name.clone()).collect();
        names.sort();
        names
    }

    /// Forwards every envelope of `source` to `sink` (a `forward` node named `name`). The two
    /// routes must carry the same schema. `link_taints` are what the crossing cannot promise
    /// (a link without ordering adds `OrderPossiblyOutOfOrder`, and so on); every forwarded
    /// envelope carries them.
    pub fn connect(&mut self, name: &str, source: RouteIdx, sink: RouteIdx, policy: EdgePolicy) -> Result<NodeIdx, GraphError> {
        self.connect_over(name, source, sink, policy, TaintSet::EMPTY)
    }

    /// [`Graph::connect`] across a link that adds `link_taints`.
    pub fn connect_over(
        &mut self,
        name: &str,
        source: RouteIdx,
        sink: RouteIdx,
        policy: EdgePolicy,
        link_taints: TaintSet,
    ) -> Result<NodeIdx, GraphError> {
        let (a, b) = (self.route_state(source)?, self.route_state(sink)?);
        if a.schema.hash != b.schema.hash {
            return Err(GraphError::SchemaMismatch(format!(
                "cannot connect {} ({}, hash {}) to {} ({}, hash {}): the schemas differ",
                a.route,
                a.schema.label(),
                a.schema.hash.short(),
                b.route,
                b.schema.label(),
                b.schema.hash.short()
            )));
        }
        let mut spec = factory::ParamMap::new();
        if !link_taints.is_empty() {
            let names = link_taints.iter().map(|t| factory::ParamValue::Text(t.name().into())).collect();
            spec.insert("link_taints".into(), factory::ParamValue::List(names));
        }
        self.add_node_described(name, "forward", Box::new(ops::Forward { added: link_taints }), &[(source, policy)], &[sink], spec)
    }

    /// Delivers every envelope of `route` to `sink` (inline or through a mailbox).
    pub fn subscribe(
        &mut self,
        name: &str,
        route: RouteIdx,
        sink: Box<dyn Subscriber>,
        policy: EdgePolicy,
    ) -> Result<SubscriptionIdx, GraphError> {
        self.check_name("subscription", name)?;
        self.route_state(route)?;
        Self::check_policy(name, &policy)?;
        let sub = SubscriptionIdx(idx(self.subscriptions.len()));
        let edge = self.new_edge(name.into(), route, Target::Subscription(sub), policy);
        self.subscriptions.push(SubscriptionState { name: name.into(), route, sink, edge });
        Ok(sub)
    }

    /// Stops a subscription; its mailbox, if any, is emptied (its items counted as delivered
    /// nowhere, so they show as dropped).
    pub fn unsubscribe(&mut self, sub: SubscriptionIdx) -> Result<(), GraphError> {
        let edge = self
            .subscriptions
            .get(sub.0 as usize)
            .map(|s| s.edge)
            .ok_or_else(|| GraphError::NameInvalid(format!("no subscription with index {}", sub.0)))?;
        let state = &mut self.edges[edge.0 as usize];
        state.active = false;
        let source = state.source;
        self.routes[source.0 as usize].consumers.retain(|e| *e != edge);
        self.topology_version += 1;
        Ok(())
    }
}
