//! Seeded faults of a simulated board, on virtual time only (never the wall clock): byte drops
//! and corruption on its link ([`ByteFaults`]), reboots ([`ResetPlan`]) and a skewed clock
//! ([`skewed_us`]). The same seed gives the same faults, run after run.

/// SplitMix64: small, fast and the same everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `seed` and `board` mixed into one generator seed (boards of one fleet get unrelated streams).
pub fn mix(seed: u64, board: u64) -> u64 {
    let mut g = SplitMix64::new(seed ^ board.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    g.next_u64()
}

/// What a board's faults are: the fleet's settings for it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BoardFaults {
    /// The fault streams' seed (mixed with the board's index).
    pub seed: u64,
    /// Probability that a byte is lost, in each direction.
    pub drop: f64,
    /// Probability that a byte arrives with one bit flipped, in each direction.
    pub corrupt: f64,
    /// Mean reboots per hour of simulated time (Poisson).
    pub resets_per_hour: f64,
    /// The board's clock runs this many parts per million fast (negative: slow).
    pub skew_ppm: i32,
}

impl BoardFaults {
    /// Checks the settings; the error is one sentence.
    pub fn check(&self) -> Result<(), String> {
        for (name, p) in [("drop", self.drop), ("corrupt", self.corrupt)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("the {name} probability must be between 0 and 1, got {p}"));
            }
        }
        if !(self.resets_per_hour.is_finite() && self.resets_per_hour >= 0.0) {
            return Err(format!("resets_per_hour must be 0 or more, got {}", self.resets_per_hour));
        }
        if self.skew_ppm.unsigned_abs() > 100_000 {
            return Err(format!("skew_ppm must be within ±100000, got {}", self.skew_ppm));
        }
        Ok(())
    }
}

/// What [`ByteFaults`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Bytes lost.
    pub dropped: u64,
    /// Bytes corrupted.
    pub corrupted: u64,
}

/// Per-byte drops and bit flips of one direction of a link.
#[derive(Debug, Clone)]
pub struct ByteFaults {
    rng: SplitMix64,
    drop: f64,
    corrupt: f64,
    /// What it did so far.
    pub counts: FaultCounts,
}

impl ByteFaults {
    /// Faults with these probabilities, from `seed`.
    pub fn new(seed: u64, drop: f64, corrupt: f64) -> Self {
        ByteFaults { rng: SplitMix64::new(seed), drop, corrupt, counts: FaultCounts::default() }
    }

    /// True when it never changes a byte.
    pub fn is_clean(&self) -> bool {
        self.drop <= 0.0 && self.corrupt <= 0.0
    }

    /// `bytes` as they arrive, appended to `out`.
    pub fn pass(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.is_clean() {
            out.extend_from_slice(bytes);
            return;
        }
        for &b in bytes {
            if self.drop > 0.0 && self.rng.next_f64() < self.drop {
                self.counts.dropped += 1;
                continue;
            }
            if self.corrupt > 0.0 && self.rng.next_f64() < self.corrupt {
                self.counts.corrupted += 1;
                let bit = (self.rng.next_u64() & 7) as u8;
                out.push(b ^ (1 << bit));
                continue;
            }
            out.push(b);
        }
    }
}

/// When a board reboots: a Poisson process on fleet time.
#[derive(Debug, Clone)]
pub struct ResetPlan {
    rng: SplitMix64,
    mean_gap_us: f64,
    next_us: Option<i64>,
}

impl ResetPlan {
    /// `per_hour` reboots per hour on average (0: never), the first after `from_us`.
    pub fn new(seed: u64, per_hour: f64, from_us: i64) -> Self {
        let mean_gap_us = if per_hour > 0.0 { 3_600e6 / per_hour } else { 0.0 };
        let mut plan = ResetPlan { rng: SplitMix64::new(seed), mean_gap_us, next_us: None };
        plan.schedule(from_us);
        plan
    }

    fn schedule(&mut self, from_us: i64) {
        if self.mean_gap_us <= 0.0 {
            self.next_us = None;
            return;
        }
        let u = self.rng.next_f64();
        let gap = -(1.0 - u).ln() * self.mean_gap_us;
        self.next_us = Some(from_us.saturating_add(gap.clamp(1.0, 1e15) as i64));
    }

    /// True (once per reboot) when a reboot falls at or before `now_us`; the next one is then
    /// planned.
    pub fn due(&mut self, now_us: i64) -> bool {
        match self.next_us {
            Some(t) if t <= now_us => {
                self.schedule(t);
                true
            }
            _ => false,
        }
    }
}

/// Fleet time `t_us` on a clock running `ppm` parts per million fast.
pub fn skewed_us(t_us: i64, ppm: i32) -> i64 {
    let t = i128::from(t_us);
    (t + t * i128::from(ppm) / 1_000_000) as i64
}
