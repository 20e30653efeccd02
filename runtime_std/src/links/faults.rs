//! Seeded datagram faults: drop, duplicate, reorder, corrupt and delay what a UDP link sends.
//! The same seed and the same datagrams give the same faults (tests and benchmarks).

use std::time::{Duration, Instant};

/// What to do to datagrams: each probability is in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultSpec {
    /// Seed of the fault generator.
    pub seed: u64,
    /// Probability that a datagram is dropped.
    pub drop: f64,
    /// Probability that it is sent twice.
    pub dup: f64,
    /// Probability that it is held back and sent after the next one.
    pub reorder: f64,
    /// Probability that one of its bits is flipped.
    pub corrupt: f64,
    /// Each datagram waits a random time up to this long (0: none).
    pub delay_ms: u64,
}

impl FaultSpec {
    /// Parses `seed=N,drop=P,dup=P,reorder=P,corrupt=P,delay_ms=N` (any subset, any order).
    pub fn parse(text: &str) -> Result<FaultSpec, String> {
        let mut spec = FaultSpec::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("fault {part:?} is not KEY=VALUE"))?;
            let probability = || -> Result<f64, String> {
                let p: f64 = value.parse().map_err(|_| format!("fault {key}={value}: not a number"))?;
                if (0.0..=1.0).contains(&p) { Ok(p) } else { Err(format!("fault {key}={value}: a probability is between 0 and 1")) }
            };
            let count = || value.parse::<u64>().map_err(|_| format!("fault {key}={value}: not a whole number"));
            match key {
                "seed" => spec.seed = count()?,
                "drop" => spec.drop = probability()?,
                "dup" => spec.dup = probability()?,
                "reorder" => spec.reorder = probability()?,
                "corrupt" => spec.corrupt = probability()?,
                "delay_ms" => spec.delay_ms = count()?,
                other => return Err(format!("unknown fault {other:?}; faults are seed, drop, dup, reorder, corrupt, delay_ms")),
            }
        }
        Ok(spec)
    }
}

/// What a fault wrapper did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Datagrams offered.
    pub offered: u64,
    /// Dropped.
    pub dropped: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Held back behind the next one.
    pub reordered: u64,
    /// With a flipped bit.
    pub corrupted: u64,
    /// Delayed.
    pub delayed: u64,
}

/// The fault generator of one link.
#[derive(Debug)]
pub struct Faults {
    spec: FaultSpec,
    rng: fastrand::Rng,
    held: Option<Vec<u8>>,
    delayed: Vec<(Instant, Vec<u8>)>,
    counts: FaultCounts,
}

/// Most datagrams waiting in the delay line; beyond that one is dropped (counted).
const DELAYED_MAX: usize = 4096;

impl Faults {
    /// A generator for `spec`.
    pub fn new(spec: FaultSpec) -> Faults {
        Faults { spec, rng: fastrand::Rng::with_seed(spec.seed), held: None, delayed: Vec::new(), counts: FaultCounts::default() }
    }

    /// What was done so far.
    pub fn counts(&self) -> FaultCounts {
        self.counts
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.f64() < p
    }

    /// Passes `datagram` through the faults at `now`: returns what to send now, in order
    /// (nothing, it, it twice, it after one held back earlier, ...).
    pub fn apply(&mut self, now: Instant, datagram: &[u8]) -> Vec<Vec<u8>> {
        self.counts.offered += 1;
        let mut out = Vec::new();
        if self.chance(self.spec.drop) {
            self.counts.dropped += 1;
            return out;
        }
        let mut bytes = datagram.to_vec();
        if self.chance(self.spec.corrupt) && !bytes.is_empty() {
            let at = self.rng.usize(..bytes.len());
            bytes[at] ^= 1 << self.rng.u8(..8);
            self.counts.corrupted += 1;
        }
        let copies = if self.chance(self.spec.dup) {
            self.counts.duplicated += 1;
            2
        } else {
            1
        };
        let mut ready = Vec::new();
        if self.held.is_none() && self.chance(self.spec.reorder) {
            self.counts.reordered += 1;
            self.held = Some(bytes.clone());
            if copies == 2 {
                ready.push(bytes);
            }
        } else {
            for _ in 0..copies {
                ready.push(bytes.clone());
            }
            ready.extend(self.held.take());
        }
        if self.spec.delay_ms == 0 {
            return ready;
        }
        for d in ready {
            let wait = Duration::from_micros(self.rng.u64(..=self.spec.delay_ms * 1000));
            if self.delayed.len() >= DELAYED_MAX {
                self.counts.dropped += 1;
                continue;
            }
            self.counts.delayed += 1;
            self.delayed.push((now + wait, d));
        }
        out.extend(self.take_due(now));
        out
    }

    /// The delayed datagrams due at `now`, in due order.
    pub fn take_due(&mut self, now: Instant) -> Vec<Vec<u8>> {
        if self.delayed.is_empty() {
            return Vec::new();
        }
        self.delayed.sort_by_key(|(due, _)| *due);
        let n = self.delayed.iter().take_while(|(due, _)| *due <= now).count();
        self.delayed.drain(..n).map(|(_, d)| d).collect()
    }

    /// When the next delayed datagram is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.iter().map(|(due, _)| *due).min()
    }
}
