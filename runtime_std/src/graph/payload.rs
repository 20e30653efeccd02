//! Lazy payloads: bulk routes publish metadata eagerly and open payloads on demand.
//!
//! A lazy envelope carries only its payload's declared length and SHA-256. Its source (a
//! function that produces the bytes, such as reading a camera frame) waits here until someone
//! opens it. An open checks the bytes against the declared length and digest, keeps them in a
//! cache bounded by bytes, and is recorded: per route (metadata events, opens, cache hits,
//! bytes materialized, opens per consumer) and per envelope (who opened it, when).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use manyfold_core::envelope::{Digest, EnvelopeId, RouteIdx};
use sha2::{Digest as _, Sha256};

/// Produces a lazy payload's bytes when it is opened.
pub type PayloadOpener = Box<dyn FnMut() -> Result<Vec<u8>, String> + Send>;

/// The most lazy sources kept waiting for an open; older ones are forgotten (an open then
/// fails with a clear error).
pub const SOURCES_MAX: usize = 4096;
/// The most payload bytes kept in the cache.
pub const CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The most open records kept for lineage and audit.
pub const OPEN_RECORDS_MAX: usize = 4096;

struct Source {
    len: u64,
    digest: Digest,
    open: PayloadOpener,
}

/// One open of one payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRecord {
    /// The envelope whose payload was opened.
    pub id: EnvelopeId,
    /// Who asked (a node or an external reader).
    pub consumer: String,
    /// Bytes handed out.
    pub bytes: u64,
    /// True when served from the cache (the source was not called).
    pub cache_hit: bool,
    /// Graph time of the open.
    pub time_us: i64,
}

/// Payload demand on one route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDemand {
    /// Lazy envelopes published (metadata only).
    pub metadata_events: u64,
    /// Opens asked for (cache hits included).
    pub opens: u64,
    /// Opens served from the cache.
    pub cache_hits: u64,
    /// Bytes produced by sources (cache misses).
    pub bytes_materialized: u64,
    /// Opens that failed (source gone, source error, digest mismatch).
    pub failures: u64,
    /// Opens per consumer.
    pub by_consumer: BTreeMap<String, u64>,
}

/// The lazy sources, the payload cache and the demand counters of a graph.
pub struct Payloads {
    sources: HashMap<EnvelopeId, Source>,
    /// Envelopes derived from a lazy envelope (forwarded, filtered, buffered) share its
    /// payload: their id maps to the origin's.
    aliases: HashMap<EnvelopeId, EnvelopeId>,
    alias_order: VecDeque<EnvelopeId>,
    source_order: VecDeque<EnvelopeId>,
    cache: HashMap<EnvelopeId, Arc<[u8]>>,
    cache_order: VecDeque<EnvelopeId>,
    cache_bytes: usize,
    cache_bytes_max: usize,
    sources_max: usize,
    demand: BTreeMap<RouteIdx, RouteDemand>,
    records: VecDeque<OpenRecord>,
}

impl Default for Payloads {
    fn default() -> Self {
        Payloads {
            sources: HashMap::new(),
            aliases: HashMap::new(),
            alias_order: VecDeque::new(),
            source_order: VecDeque::new(),
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
            cache_bytes_max: CACHE_BYTES_MAX,
            sources_max: SOURCES_MAX,
            demand: BTreeMap::new(),
            records: VecDeque::new(),
        }
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

impl Payloads {
    /// Registers the source of a lazy envelope just published.
    pub fn add_source(&mut self, id: EnvelopeId, len: u64, digest: Digest, open: PayloadOpener) {
        // Bounded: each pass forgets one source.
        while self.source_order.len() >= self.sources_max {
            let Some(old) = self.source_order.pop_front() else { break };
            self.sources.remove(&old);
        }
        self.sources.insert(id, Source { len, digest, open });
        self.source_order.push_back(id);
        self.demand.entry(id.route).or_default().metadata_events += 1;
    }

    /// The origin of a lazy payload: itself, or the lazy envelope `id` was derived from.
    pub fn origin(&self, id: EnvelopeId) -> EnvelopeId {
        self.aliases.get(&id).copied().unwrap_or(id)
    }

    /// Declared length and digest of the lazy payload `id` carries (directly or derived).
    pub fn lazy_ref(&self, id: EnvelopeId) -> Option<(EnvelopeId, u64, Digest)> {
        let origin = self.origin(id);
        self.sources.get(&origin).map(|s| (origin, s.len, s.digest))
    }

    /// Records that `derived` carries the payload of `origin`.
    pub fn alias(&mut self, derived: EnvelopeId, origin: EnvelopeId) {
        if self.alias_order.len() >= SOURCES_MAX * 4 {
            if let Some(old) = self.alias_order.pop_front() {
                self.aliases.remove(&old);
            }
        }
        self.aliases.insert(derived, origin);
        self.alias_order.push_back(derived);
    }

    /// Sets how many lazy sources are kept (at least 1; [`SOURCES_MAX`] by default): older
    /// payloads are no longer held, and opening them fails.
    pub fn set_sources_max(&mut self, sources: usize) {
        self.sources_max = sources.max(1);
    }

    /// Sets the cache bound, in bytes (0 disables caching).
    pub fn set_cache_bytes_max(&mut self, bytes: usize) {
        self.cache_bytes_max = bytes;
        self.evict_to(bytes);
    }

    fn evict_to(&mut self, bytes: usize) {
        // Bounded: each pass removes one cached payload.
        while self.cache_bytes > bytes {
            let Some(old) = self.cache_order.pop_front() else { break };
            if let Some(b) = self.cache.remove(&old) {
                self.cache_bytes -= b.len();
            }
        }
    }

    /// Opens the payload of `id` for `consumer`: from the cache, or by calling its source and
    /// checking the bytes against the declared length and digest.
    pub fn open(&mut self, id: EnvelopeId, consumer: &str, now_us: i64, label: &str) -> Result<Arc<[u8]>, String> {
        let id = self.origin(id);
        let demand = self.demand.entry(id.route).or_default();
        demand.opens += 1;
        *demand.by_consumer.entry(consumer.to_string()).or_default() += 1;
        if let Some(bytes) = self.cache.get(&id).cloned() {
            demand.cache_hits += 1;
            self.record(OpenRecord { id, consumer: consumer.into(), bytes: bytes.len() as u64, cache_hit: true, time_us: now_us });
            return Ok(bytes);
        }
        let result = match self.sources.get_mut(&id) {
            None => Err(format!(
                "the payload of {label} is not available: its source was never registered or was forgotten (only the last {} are kept)",
                self.sources_max
            )),
            Some(source) => match (source.open)() {
                Err(e) => Err(format!("opening the payload of {label} failed: {e}")),
                Ok(bytes) if bytes.len() as u64 != source.len => Err(format!(
                    "the payload of {label} has {} bytes but {} were declared; refused",
                    bytes.len(),
                    source.len
                )),
                Ok(bytes) if sha256(&bytes) != source.digest => {
                    Err(format!("the payload of {label} does not match its declared SHA-256; refused"))
                }
                Ok(bytes) => Ok(Arc::<[u8]>::from(bytes)),
            },
        };
        let demand = self.demand.entry(id.route).or_default();
        match result {
            Err(e) => {
                demand.failures += 1;
                Err(e)
            }
            Ok(bytes) => {
                demand.bytes_materialized += bytes.len() as u64;
                if bytes.len() <= self.cache_bytes_max {
                    self.evict_to(self.cache_bytes_max - bytes.len());
                    self.cache_bytes += bytes.len();
                    self.cache.insert(id, bytes.clone());
                    self.cache_order.push_back(id);
                }
                self.record(OpenRecord { id, consumer: consumer.into(), bytes: bytes.len() as u64, cache_hit: false, time_us: now_us });
                Ok(bytes)
            }
        }
    }

    fn record(&mut self, record: OpenRecord) {
        if self.records.len() >= OPEN_RECORDS_MAX {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// Demand counters of a route.
    pub fn demand(&self, route: RouteIdx) -> RouteDemand {
        self.demand.get(&route).cloned().unwrap_or_default()
    }

    /// Opens of one envelope's payload, oldest first.
    pub fn opens_of(&self, id: EnvelopeId) -> Vec<OpenRecord> {
        self.records.iter().filter(|r| r.id == id).cloned().collect()
    }

    /// Recent opens, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &OpenRecord> + '_ {
        self.records.iter()
    }

    /// Bytes in the cache now.
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }
}
