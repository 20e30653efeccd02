//! How each node is doing, for the `health` query: its operator's own [`Operator::health`]
//! joined with what its input edges say (a full refusing mailbox blocks it; a mailbox or an
//! epoch hold that dropped values degrades it) and with the inputs its operator failed on.
//! The node's query plane and `manyfold.query.health` both read this, so they agree.

use manyfold_core::mailbox::Overflow;

use super::factory::overflow_word;
use super::operator::{Health, HealthState};
use super::Graph;

/// One node's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    /// The node's name.
    pub name: String,
    /// Its state and why.
    pub health: Health,
}

impl Graph {
    /// Every node's health, in node order.
    pub fn node_health(&self) -> Vec<NodeHealth> {
        self.nodes.iter().map(|n| NodeHealth { name: n.name.clone(), health: self.health_of_node(n) }).collect()
    }

    fn health_of_node(&self, n: &super::NodeState) -> Health {
        let mut h = n.op.health().unwrap_or_else(Health::healthy);
        for &e in &n.inputs {
            let Some(edge) = self.edges.get(e.0 as usize) else { continue };
            if let Some(m) = edge.mailbox.and_then(|m| self.mailboxes.get(m.0 as usize)) {
                let (depth, capacity, overflow) = (m.queue.depth(), m.queue.capacity(), m.queue.overflow());
                let word = overflow_word(overflow);
                if depth >= capacity && matches!(overflow, Overflow::Block | Overflow::Reject) {
                    h.add(HealthState::Blocked, format!("input mailbox {} is full ({depth} of {capacity}) and refuses new values (overflow {word})", m.name));
                }
                let dropped = m.queue.counters().dropped() + m.stall_dropped;
                if dropped > 0 {
                    h.add(HealthState::Degraded, format!("input mailbox {} dropped {dropped} values when full (overflow {word})", m.name));
                }
            }
            if edge.held_dropped > 0 {
                h.add(HealthState::Degraded, format!("input edge {} dropped {} values held for the next epoch", edge.name, edge.held_dropped));
            }
        }
        if n.failures > 0 {
            h.add(HealthState::Degraded, format!("its operator failed on {} inputs", n.failures));
        }
        h
    }
}
