//! Owned forms of what a device says: the core decodes replies in place (borrowed from the
//! frame buffer), and the client keeps them after the next read.

use manyfold_core::link::{
    Ack, BoardInfo, Counters, Describe, Event, FlowInfo, Nack, NodeInfo, Reply, ReplyBody, RouteInfo, SourceInfo,
    TaintInfo,
};

/// A describe, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedDescribe {
    /// Protocol version of the session.
    pub version: u32,
    /// The device's largest message.
    pub max_message: u32,
    /// `CAP_*` bits.
    pub capabilities: u32,
    /// Board name.
    pub board: String,
    /// 0 when a partition is loaded, else the image error code.
    pub image_status: u8,
    /// The loaded image's manifest id.
    pub manifest_id: Option<[u8; 32]>,
    /// The loaded partition's name.
    pub partition: String,
    /// The session in force.
    pub session: u32,
    /// Lockstep bit, reset bit.
    pub flags: u8,
    /// The device's time (v1.1; 0 in v1).
    pub time_us: i64,
    /// The control epoch in force (v1.1; 0 in v1).
    pub epoch: u32,
    /// True when this describe resumed the session (after a reconnect).
    pub resumed: bool,
}

impl OwnedDescribe {
    /// The owned copy of `d`.
    pub fn from(d: &Describe<'_>, resumed: bool) -> Self {
        OwnedDescribe {
            version: d.version,
            max_message: d.max_message,
            capabilities: d.capabilities,
            board: d.board.to_string(),
            image_status: d.image_status,
            manifest_id: d.manifest_id,
            partition: d.partition.to_string(),
            session: d.session,
            flags: d.flags,
            time_us: d.time_us,
            epoch: d.epoch,
            resumed,
        }
    }
}

/// A page of a table, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    /// Routes.
    Routes(Vec<RouteInfo>),
    /// Nodes.
    Nodes(Vec<NodeInfo>),
    /// Sources.
    Sources(Vec<SourceInfo>),
    /// Mailbox flow.
    Flow(Vec<FlowInfo>),
    /// Route taints.
    Taints(Vec<TaintInfo>),
}

impl Page {
    /// Items in the page.
    pub fn len(&self) -> usize {
        match self {
            Page::Routes(v) => v.len(),
            Page::Nodes(v) => v.len(),
            Page::Sources(v) => v.len(),
            Page::Flow(v) => v.len(),
            Page::Taints(v) => v.len(),
        }
    }

    /// True for an empty page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the items of `other` (of the same table).
    pub fn extend(&mut self, other: Page) {
        match (self, other) {
            (Page::Routes(a), Page::Routes(b)) => a.extend(b),
            (Page::Nodes(a), Page::Nodes(b)) => a.extend(b),
            (Page::Sources(a), Page::Sources(b)) => a.extend(b),
            (Page::Flow(a), Page::Flow(b)) => a.extend(b),
            (Page::Taints(a), Page::Taints(b)) => a.extend(b),
            _ => {}
        }
    }
}

/// The end of a request, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedAnswer {
    /// Carried out.
    Ack(Ack),
    /// A page: its items, where it starts, and the table's length.
    Page {
        /// The items.
        page: Page,
        /// Index of the first item.
        start: u16,
        /// Items in the table.
        total: u16,
    },
    /// Counters.
    Counters(Counters),
    /// The latest event of a route.
    Latest(Option<Event>),
    /// Board facts.
    Board(BoardInfo),
    /// Refused.
    Nack(Nack),
}

impl OwnedAnswer {
    /// The owned copy of a reply.
    pub fn from_reply(reply: &Reply<'_>) -> Self {
        fn page<T: manyfold_core::link::PageItem>(p: &manyfold_core::link::Page<'_, T>, wrap: fn(Vec<T>) -> Page) -> OwnedAnswer {
            OwnedAnswer::Page { page: wrap(p.items.iter().collect()), start: p.start, total: p.total }
        }
        match &reply.body {
            ReplyBody::Routes(p) => page(p, Page::Routes),
            ReplyBody::Nodes(p) => page(p, Page::Nodes),
            ReplyBody::Sources(p) => page(p, Page::Sources),
            ReplyBody::Flow(p) => page(p, Page::Flow),
            ReplyBody::Taints(p) => page(p, Page::Taints),
            ReplyBody::Counters(c) => OwnedAnswer::Counters(*c),
            ReplyBody::Latest(e) => OwnedAnswer::Latest(*e),
            ReplyBody::Board(b) => OwnedAnswer::Board(*b),
        }
    }
}
