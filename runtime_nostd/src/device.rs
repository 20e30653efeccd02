//! A device end of a link, from bytes to bytes: frame decoder, link state machine, executor and
//! partition upload, in one object that the board firmware and the simulation both drive.
//!
//! The firmware feeds it UART bytes and its millisecond clock; the simulation feeds it the
//! bytes a host client wrote and a virtual clock. Both call the same code, so for the same
//! input they write the same bytes. The caller provides the image storage ([`ImageStore`]) and
//! the byte sink ([`Tx`]).
//!
//! The device speaks link protocol v1.1 ([`crate::link::v11`]): it answers a hello of an older
//! version with a refusal in the layout every version reads (`version_unsupported`, detail 2),
//! packs the events it sends into batches of compact events (flushed before any other message
//! and at the end of each call), and keeps the references that let those events be short
//! ([`crate::link::refs::TxTime`], and each route's `announced` flag).
//!
//! # When the link layer looks at its timers
//! Heartbeats and stale/down transitions are checked after each message has been handled
//! completely (including a lockstep step finishing) and in [`Device::poll`] when idle. In
//! lockstep, time moves only with steps, so these checks happen at the same points of the
//! input on every host, and the output stays reproducible.

use crate::cbor::Writer;
use crate::exec::{Exec, Outbox, SendError};
use crate::framing::{encode_frame, DecoderStats, FrameDecoder, FrameError};
use crate::link::msg::{CAP_EVENTS, CAP_HEARTBEAT, CAP_LOCKSTEP, CAP_QUERIES, CAP_SOURCES, CAP_UPLOAD, DESCRIBE_RESET, HELLO_LOCKSTEP, HELLO_RESET};
use crate::link::refs::TxTime;
use crate::link::v11::{self, RouteCtx};
#[cfg(feature = "upload")]
use crate::link::{Ack, UploadBegin};
use crate::link::{
    Body, BoardInfo, Counters, Describe, Event, Heartbeat, Hello, HelloOutcome, LinkAction, LinkMachine, LinkTimers,
    Message, Nack, NackReason, Role,
};

/// Where the partition image lives, and (optionally) room to stage an uploaded one.
pub trait ImageStore {
    /// The region holding the current image (its header, body, and anything after).
    fn image(&self) -> &[u8];
    /// True when uploads can be staged.
    fn can_upload(&self) -> bool {
        false
    }
    /// Prepares to stage `len` bytes; `Err(capacity)` when they do not fit.
    fn begin(&mut self, len: usize) -> Result<(), usize> {
        let _ = len;
        Err(0)
    }
    /// Stages `data` at `offset`; false when it does not fit.
    fn write(&mut self, offset: usize, data: &[u8]) -> bool {
        let _ = (offset, data);
        false
    }
    /// The staged bytes so far.
    fn staged(&self) -> &[u8] {
        &[]
    }
    /// Makes the staged image the current one.
    fn commit(&mut self) {}
    /// Forgets the staged bytes.
    fn abort(&mut self) {}
}

/// A fixed image (the board's flash region): no uploads.
impl ImageStore for &[u8] {
    fn image(&self) -> &[u8] {
        self
    }
}

/// Where encoded frames go.
pub trait Tx {
    /// Writes `bytes`; false when there is no room (the frame is then lost, and counted).
    fn write(&mut self, bytes: &[u8]) -> bool;
}

#[cfg(feature = "upload")]
#[derive(Debug, Clone, Copy)]
struct Upload {
    total_len: u32,
    sha256: [u8; 32],
    received: u32,
}

/// The device: a frame decoder over buffer `B`, message and frame buffers `M` and `F`, and an
/// executor with capacities `R, N, S, W, Q, P`.
pub struct Device<B, M, F, const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> {
    decoder: FrameDecoder<B>,
    core: Core<M, F, R, N, S, W, Q, P>,
}

struct Core<M, F, const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> {
    exec: Exec<R, N, S, W, Q, P>,
    link: LinkMachine,
    msg: M,
    frame: F,
    board: &'static str,
    max_message: usize,
    tx_max: usize,
    stats_base: DecoderStats,
    nacks: u32,
    tx_lost: u32,
    #[cfg(feature = "upload")]
    upload: Option<Upload>,
    facts: BoardInfo,
    pending_hello: Option<(u32, Hello)>,
    /// The time references of the events sent (docs/wire.md 2.5).
    time: TxTime,
    /// Bytes of compact events waiting in `msg` for their frame.
    batch: usize,
}

/// A `latest` reply to write: the query's id, the route's last event (and what the host knows of
/// the route), the epoch in force.
type LatestReply = (u32, Option<(Event, RouteCtx)>, u32);

/// The executor's outbox while the core handles one message: encoding, batching, framing.
struct Port<'a, T, M, F> {
    link: &'a mut LinkMachine,
    tx: &'a mut T,
    msg: &'a mut M,
    frame: &'a mut F,
    tx_max: usize,
    now_ms: u64,
    nacks: &'a mut u32,
    tx_lost: &'a mut u32,
    time: &'a mut TxTime,
    batch: &'a mut usize,
    counters: Counters,
    facts: BoardInfo,
}

impl<T: Tx, M: AsMut<[u8]>, F: AsMut<[u8]>> Port<'_, T, M, F> {
    /// The largest message this link carries (the smaller of both ends' limits).
    fn limit(&mut self) -> usize {
        self.tx_max.min(self.msg.as_mut().len())
    }

    /// Frames the first `len` bytes of the message buffer and writes them out.
    fn frame_out(&mut self, len: usize) -> Result<(), SendError> {
        let limit = self.limit();
        let n = encode_frame(&self.msg.as_mut()[..len], self.frame.as_mut(), limit).map_err(|_| SendError::TooLong)?;
        if !self.tx.write(&self.frame.as_mut()[..n]) {
            // The frame is lost: counted here, and the host sees the gap in the seqs.
            *self.tx_lost = self.tx_lost.wrapping_add(1);
            return Err(SendError::Full);
        }
        self.link.sent(self.now_ms);
        Ok(())
    }

    /// Sends the waiting batch of events, if any.
    fn flush(&mut self) -> Result<(), SendError> {
        match core::mem::take(self.batch) {
            0 => Ok(()),
            len => self.frame_out(len),
        }
    }

    /// Flushes the events, then writes one answer (or heartbeat) and sends it; the latest
    /// reply `latest` instead of `body` when given.
    fn answer(&mut self, body: &Body<'_>, latest: Option<LatestReply>) -> Result<(), SendError> {
        // A lost batch is counted by `frame_out`; the answer still goes.
        let _ = self.flush();
        let limit = self.limit();
        let mut w = Writer::new(&mut self.msg.as_mut()[..limit]);
        match latest {
            Some((ref_id, event, epoch_now)) => v11::write_latest(&mut w, ref_id, event, self.time, epoch_now),
            None => v11::write_from_device(&mut w, body, self.time),
        }
        let len = w.done().map_err(|_| SendError::TooLong)?;
        self.frame_out(len)?;
        if matches!(body, Body::Nack(_)) {
            *self.nacks = self.nacks.wrapping_add(1);
        }
        Ok(())
    }
}

impl<T: Tx, M: AsMut<[u8]>, F: AsMut<[u8]>> Outbox for Port<'_, T, M, F> {
    fn send(&mut self, body: &Body<'_>) -> Result<(), SendError> {
        match body {
            Body::Event(e) => self.send_event(e, RouteCtx::default()),
            _ => self.answer(body, None),
        }
    }

    fn send_event(&mut self, event: &Event, ctx: RouteCtx) -> Result<(), SendError> {
        let limit = self.limit();
        // At most two tries: into the waiting batch, then into an empty one.
        for _ in 0..2 {
            let at = *self.batch;
            let mut w = Writer::new(&mut self.msg.as_mut()[at..limit]);
            if v11::write_event(&mut w, event, ctx, self.time).is_ok() {
                *self.batch = at + w.len();
                return Ok(());
            }
            if at == 0 {
                return Err(SendError::TooLong);
            }
            self.flush()?;
        }
        Err(SendError::TooLong)
    }

    fn send_latest(&mut self, ref_id: u32, latest: Option<(Event, RouteCtx)>, epoch_now: u32) -> Result<(), SendError> {
        self.answer(&Body::Resume, Some((ref_id, latest, epoch_now)))
    }

    fn link_up(&self) -> bool {
        self.link.is_up()
    }

    fn counters(&self) -> Counters {
        Counters { nacks_tx: *self.nacks, messages_tx: self.link.counters().messages_tx, ..self.counters }
    }

    fn board(&self) -> BoardInfo {
        self.facts
    }
}

fn frame_nack(error: FrameError) -> (NackReason, u32) {
    match error {
        FrameError::DecodeBadCrc { .. } => (NackReason::FrameBadCrc, 0),
        FrameError::DecodeShortBody { .. } => (NackReason::FrameShort, 0),
        FrameError::DecodeOversize { max, .. } => (NackReason::FrameOversize, max.min(u32::MAX as usize) as u32),
        _ => (NackReason::FrameBadCobs, 0),
    }
}

/// The decoder's counts including the frame whose outcome is `outcome`.
fn stats_after(mut stats: DecoderStats, outcome: &Result<&[u8], FrameError>) -> DecoderStats {
    match outcome {
        Ok(_) => stats.frames += 1,
        Err(FrameError::DecodeBadCrc { .. }) => stats.crc_errors += 1,
        Err(FrameError::DecodeShortBody { .. }) => stats.short_frames += 1,
        Err(FrameError::DecodeOversize { .. }) => stats.oversize_frames += 1,
        Err(_) => stats.cobs_errors += 1,
    }
    stats
}

fn since(now: u64, base: u64) -> u32 {
    now.wrapping_sub(base) as u32
}

impl<B, M, F, const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> Device<B, M, F, R, N, S, W, Q, P>
where
    B: AsMut<[u8]>,
    M: AsMut<[u8]>,
    F: AsMut<[u8]>,
{
    /// A device named `board` reading frames with `decoder` (whose `max_message` is the
    /// device's), with message and frame buffers `msg` (`max_message` bytes) and `frame`
    /// (`frame_len_max(max_message)` bytes). Call [`Device::boot`] next.
    ///
    /// Infallible and built in place: on a board the device is most of the RAM, and a
    /// `Result` around it would cost a copy of it on the stack.
    pub fn new(board: &'static str, decoder: FrameDecoder<B>, msg: M, frame: F, timers: LinkTimers) -> Self {
        let max_message = decoder.max_message();
        Device {
            decoder,
            core: Core {
                exec: Exec::new(),
                link: LinkMachine::new(Role::Device, timers),
                msg,
                frame,
                board,
                max_message,
                tx_max: max_message,
                stats_base: DecoderStats::default(),
                nacks: 0,
                tx_lost: 0,
                #[cfg(feature = "upload")]
                upload: None,
                facts: BoardInfo::default(),
                pending_hello: None,
                time: TxTime::default(),
                batch: 0,
            },
        }
        .with_byte_ids()
    }

    fn with_byte_ids(mut self) -> Self {
        // v1.1 request ids are one byte.
        self.core.link.set_id_mask(0xff);
        self
    }

    /// Loads the stored image and starts free-running at `now_us`. With no valid image the
    /// device still talks: its describe says why nothing runs.
    pub fn boot<I: ImageStore>(&mut self, store: &I, now_us: i64) {
        let _ = self.core.exec.load(store.image(), now_us);
        self.core.exec.set_free_running(now_us);
    }

    /// The executor.
    pub fn exec(&self) -> &Exec<R, N, S, W, Q, P> {
        &self.core.exec
    }

    /// The link state machine.
    pub fn link(&self) -> &LinkMachine {
        &self.core.link
    }

    /// Frames lost because the [`Tx`] had no room.
    pub fn tx_lost(&self) -> u32 {
        self.core.tx_lost
    }

    /// True while a lockstep step is being carried out: call [`Device::poll`] until it is not;
    /// [`Device::receive`] takes no bytes meanwhile.
    pub fn busy(&self) -> bool {
        self.core.exec.busy() || self.core.pending_hello.is_some()
    }

    /// Leaves lockstep for free-running at `now_us` (the board's lockstep lease ran out: the
    /// host went away without handing the clock back).
    pub fn leave_lockstep(&mut self, now_us: i64) {
        self.core.exec.set_free_running(now_us);
    }

    /// Sets the board facts reported by the `board` query.
    pub fn set_facts(&mut self, uptime_ms: u32, stack_peak: u32, rx_dropped: u32) {
        self.core.facts.uptime_ms = uptime_ms;
        self.core.facts.stack_peak = stack_peak;
        self.core.facts.rx_dropped = rx_dropped;
    }

    /// Handles received bytes up to the first complete frame that makes the device busy;
    /// returns how many bytes were used (keep the rest for later).
    pub fn receive<I: ImageStore, T: Tx>(&mut self, now_us: i64, bytes: &[u8], store: &mut I, tx: &mut T) -> usize {
        let mut used = 0;
        // Bounded: every pass uses at least one byte.
        while used < bytes.len() && !self.busy() {
            let rest = &bytes[used..];
            let end = rest.iter().position(|b| *b == 0).map_or(rest.len(), |p| p + 1);
            let stats = self.decoder.stats();
            let core = &mut self.core;
            // A piece ends at the first 0x00, so it completes at most one frame.
            self.decoder.feed(&rest[..end], |outcome| {
                let stats = stats_after(stats, &outcome);
                core.on_frame(now_us, outcome, stats, store, tx);
            });
            used += end;
        }
        if !self.busy() {
            self.core.flush(self.decoder.stats(), tx);
        }
        used
    }

    /// Runs what is due at `now_us` (free-running), or continues a lockstep step; sends
    /// heartbeats when idle.
    pub fn poll<I: ImageStore, T: Tx>(&mut self, now_us: i64, store: &mut I, tx: &mut T) {
        let stats = self.decoder.stats();
        if let Some((id, hello)) = self.core.pending_hello.take() {
            self.core.finish_hello(now_us, id, hello, stats, store, tx);
            self.core.tick(stats, tx);
            return;
        }
        self.core.run(now_us, &[], stats, tx);
        if !self.busy() {
            self.core.tick(stats, tx);
            // A step's events wait for its end (its ack flushes them); free-running, each
            // poll's events go out at its end.
            self.core.flush(stats, tx);
        }
    }
}

impl<M: AsMut<[u8]>, F: AsMut<[u8]>, const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> Core<M, F, R, N, S, W, Q, P> {
    fn now_ms(&self) -> u64 {
        (self.exec.time_us().max(0) / 1000) as u64
    }

    fn port<'a, T: Tx>(&'a mut self, stats: DecoderStats, tx: &'a mut T) -> (&'a mut Exec<R, N, S, W, Q, P>, Port<'a, T, M, F>) {
        let now_ms = self.now_ms();
        let base = self.stats_base;
        let link_counters = self.link.counters();
        let counters = Counters {
            frames: since(stats.frames, base.frames),
            frame_crc_errors: since(stats.crc_errors, base.crc_errors),
            frame_cobs_errors: since(stats.cobs_errors, base.cobs_errors),
            frame_short: since(stats.short_frames, base.short_frames),
            frame_oversize: since(stats.oversize_frames, base.oversize_frames),
            messages_rx: link_counters.messages_rx,
            rx_gaps: link_counters.rx_gaps,
            sessions: link_counters.sessions,
            resumes: link_counters.resumes,
            stale: link_counters.stale,
            ..Counters::default()
        };
        let port = Port {
            link: &mut self.link,
            tx,
            msg: &mut self.msg,
            frame: &mut self.frame,
            tx_max: self.tx_max,
            now_ms,
            nacks: &mut self.nacks,
            tx_lost: &mut self.tx_lost,
            time: &mut self.time,
            batch: &mut self.batch,
            counters,
            facts: self.facts,
        };
        (&mut self.exec, port)
    }

    /// Sends the waiting batch of events.
    fn flush<T: Tx>(&mut self, stats: DecoderStats, tx: &mut T) {
        let (_, mut port) = self.port(stats, tx);
        let _ = port.flush();
    }

    fn send<T: Tx>(&mut self, stats: DecoderStats, tx: &mut T, body: &Body<'_>) {
        let (_, mut port) = self.port(stats, tx);
        let _ = port.send(body);
    }

    fn nack<T: Tx>(&mut self, stats: DecoderStats, tx: &mut T, ref_id: Option<u32>, reason: NackReason, detail: u32) {
        self.send(stats, tx, &Body::Nack(Nack { ref_id, reason, detail }));
    }

    /// Runs the executor over `inbox`; in lockstep, a finished step counts as hearing the host.
    fn run<T: Tx>(&mut self, now_us: i64, inbox: &[Message<'_>], stats: DecoderStats, tx: &mut T) {
        let sent = self.link.counters().messages_tx;
        let (exec, mut port) = self.port(stats, tx);
        let busy = exec.step(now_us, inbox, &mut port);
        let now_ms = self.now_ms();
        if self.link.counters().messages_tx != sent {
            // What a step sent went out at its end, not at its start: no heartbeat is due.
            self.link.sent_by(now_ms);
        }
        if !busy && self.exec.is_lockstep() {
            self.link.heard(now_ms);
        }
    }

    /// Link timers: heartbeats, stale and down.
    fn tick<T: Tx>(&mut self, stats: DecoderStats, tx: &mut T) {
        // While the link is not up, events to the host are counted as unsent and their routes
        // tainted (`Exec::publish`); a resume taints every route to the host.
        if self.link.poll(self.now_ms()) == LinkAction::SendHeartbeat {
            let time_us = self.exec.time_us();
            self.send(stats, tx, &Body::Heartbeat(Heartbeat { time_us }));
        }
    }

    fn on_frame<I: ImageStore, T: Tx>(&mut self, now_us: i64, outcome: Result<&[u8], FrameError>, stats: DecoderStats, store: &mut I, tx: &mut T) {
        match outcome {
            Err(error) => {
                let (reason, detail) = frame_nack(error);
                self.nack(stats, tx, None, reason, detail);
            }
            Ok(bytes) => match v11::decode_for_device(bytes) {
                Err(error) => {
                    let id = v11::peek_id(bytes);
                    if let (Some(id), Some(_)) = (id, self.link.session()) {
                        let now_ms = self.now_ms();
                        self.link.on_receive(now_ms, id);
                    }
                    self.nack(stats, tx, id, NackReason::from_decode(error), 0);
                }
                Ok(message) => self.on_message(now_us, message, stats, store, tx),
            },
        }
        if !self.exec.busy() && self.pending_hello.is_none() {
            self.tick(stats, tx);
        }
    }

    fn on_message<I: ImageStore, T: Tx>(&mut self, now_us: i64, message: Message<'_>, stats: DecoderStats, store: &mut I, tx: &mut T) {
        let id = message.id;
        if let Body::Hello(h) = message.body {
            // Any newer host speaks v1.1 with us; an older one gets a refusal it can read.
            if h.version < v11::VERSION {
                return self.nack(stats, tx, Some(id), NackReason::VersionUnsupported, v11::VERSION);
            }
            if h.max_message < v11::MAX_MESSAGE_MIN {
                return self.nack(stats, tx, Some(id), NackReason::MaxMessageTooSmall, v11::MAX_MESSAGE_MIN);
            }
            // Finished by `Device::poll`, outside the frame decoder's callback: a reset reloads
            // the partition, which needs the stack that the callback's frames would take.
            self.pending_hello = Some((id, h));
            return;
        }
        if self.link.session().is_none() {
            return self.nack(stats, tx, Some(id), NackReason::NoSession, 0);
        }
        let now_ms = self.now_ms();
        self.link.on_receive(now_ms, id);
        match message.body {
            // The host reports the largest device time it has received (docs/wire.md 2.5).
            Body::Heartbeat(h) => self.time.acked(h.time_us),
            #[cfg(feature = "upload")]
            Body::UploadBegin(_) | Body::UploadChunk(_) | Body::UploadCommit | Body::UploadAbort => {
                self.on_upload(now_us, id, message.body, stats, store, tx)
            }
            #[cfg(not(feature = "upload"))]
            Body::UploadBegin(_) | Body::UploadChunk(_) | Body::UploadCommit | Body::UploadAbort => {
                let _ = store;
                self.nack(stats, tx, Some(id), NackReason::UploadUnsupported, 0)
            }
            _ => {
                if let Body::Step(s) = message.body {
                    self.time.acked(s.seen_us);
                }
                self.run(now_us, core::slice::from_ref(&message), stats, tx)
            }
        }
    }

    #[cfg(feature = "upload")]
    fn on_upload<I: ImageStore, T: Tx>(&mut self, now_us: i64, id: u32, body: Body<'_>, stats: DecoderStats, store: &mut I, tx: &mut T) {
        match body {
            Body::UploadBegin(b) => self.upload_begin(id, b, stats, store, tx),
            Body::UploadChunk(c) => {
                let Some(up) = self.upload.as_mut() else {
                    return self.nack(stats, tx, Some(id), NackReason::UploadNotBegun, 0);
                };
                if c.offset != up.received || c.data.len() as u64 + u64::from(up.received) > u64::from(up.total_len) {
                    let expected = up.received;
                    return self.nack(stats, tx, Some(id), NackReason::UploadBadOffset, expected);
                }
                if !store.write(c.offset as usize, c.data) {
                    return self.nack(stats, tx, Some(id), NackReason::UploadTooLarge, 0);
                }
                up.received += c.data.len() as u32;
                let info = i64::from(up.received);
                self.send(stats, tx, &Body::Ack(Ack { ref_id: id, info }));
            }
            Body::UploadCommit => self.upload_commit(now_us, id, stats, store, tx),
            Body::UploadAbort => {
                if self.upload.take().is_none() {
                    return self.nack(stats, tx, Some(id), NackReason::UploadNotBegun, 0);
                }
                store.abort();
                self.send(stats, tx, &Body::Ack(Ack { ref_id: id, info: self.exec.time_us() }));
            }
            _ => {}
        }
    }

    /// The rest of a hello (see `on_message`): reset, mode, session, and the describe.
    ///
    /// Time (docs/wire.md 2.9): a reset restarts the partition at the hello's `time_us` in
    /// lockstep, else at the device's time; no other hello moves the device's time. Entering or
    /// leaving lockstep keeps time continuous.
    #[inline(never)]
    fn finish_hello<I: ImageStore, T: Tx>(&mut self, now_us: i64, id: u32, h: Hello, stats: DecoderStats, store: &mut I, tx: &mut T) {
        let lockstep = h.flags & HELLO_LOCKSTEP != 0;
        let outcome = self.link.on_hello(self.now_ms(), id, h.session, h.flags & HELLO_RESET != 0);
        if outcome == HelloOutcome::Reset {
            let start = if lockstep { h.time_us } else { self.exec.time_us() };
            let _ = self.exec.load(store.image(), start);
            self.exec.set_free_running(now_us);
            #[cfg(feature = "upload")]
            {
                self.upload = None;
            }
            store.abort();
        }
        if lockstep {
            self.exec.enter_lockstep();
        } else if self.exec.is_lockstep() {
            self.exec.set_free_running(now_us);
        }
        // Every describe starts the host's references again: it must ask for the routes anew
        // before their events go short.
        self.exec.unannounce_routes();
        if outcome == HelloOutcome::Resumed {
            self.exec.taint_link_routes();
        }
        self.link.rebase(self.now_ms());
        if outcome == HelloOutcome::Reset {
            // The counters of a reset session start with this hello.
            self.link.reset_counters();
            self.stats_base = DecoderStats { frames: stats.frames.saturating_sub(1), ..stats };
            self.nacks = 0;
        }
        self.tx_max = (h.max_message as usize).min(self.max_message);
        let name = self.exec.partition().name.clone();
        let describe = self.describe(store, &name, id);
        self.send(stats, tx, &Body::Describe(describe));
    }

    fn capabilities<I: ImageStore>(store: &I) -> u32 {
        let mut caps = CAP_EVENTS | CAP_QUERIES | CAP_LOCKSTEP | CAP_SOURCES | CAP_HEARTBEAT;
        if cfg!(feature = "upload") && store.can_upload() {
            caps |= CAP_UPLOAD;
        }
        caps
    }

    fn describe<'a, I: ImageStore>(&self, store: &I, name: &'a str, hello_id: u32) -> Describe<'a> {
        let part = self.exec.partition();
        let (image_status, manifest_id) = match self.exec.status() {
            Ok(()) => (0, Some(part.manifest_id)),
            Err(e) => (e.code(), None),
        };
        // The mode in force now (a resume or the board's lockstep lease may have ended it), and
        // whether the session was opened by a reset (the session id is the reset token).
        let mut flags = if self.exec.is_lockstep() { HELLO_LOCKSTEP } else { 0 };
        if self.link.opened_by_reset() {
            flags |= DESCRIBE_RESET;
        }
        Describe {
            version: v11::VERSION,
            max_message: self.max_message as u32,
            capabilities: Self::capabilities(store),
            board: self.board,
            image_status,
            manifest_id,
            partition: name,
            session: self.link.session().unwrap_or(0),
            flags,
            ref_id: Some(hello_id),
            time_us: self.exec.time_us(),
            epoch: self.exec.epoch(),
        }
    }

    #[cfg(feature = "upload")]
    fn upload_begin<I: ImageStore, T: Tx>(&mut self, id: u32, b: UploadBegin, stats: DecoderStats, store: &mut I, tx: &mut T) {
        if Self::capabilities(store) & CAP_UPLOAD == 0 {
            return self.nack(stats, tx, Some(id), NackReason::UploadUnsupported, 0);
        }
        if let Err(capacity) = store.begin(b.total_len as usize) {
            return self.nack(stats, tx, Some(id), NackReason::UploadTooLarge, capacity.min(u32::MAX as usize) as u32);
        }
        self.upload = Some(Upload { total_len: b.total_len, sha256: b.sha256, received: 0 });
        self.send(stats, tx, &Body::Ack(Ack { ref_id: id, info: self.exec.time_us() }));
    }

    #[cfg(feature = "upload")]
    fn upload_commit<I: ImageStore, T: Tx>(&mut self, now_us: i64, id: u32, stats: DecoderStats, store: &mut I, tx: &mut T) {
        let Some(up) = self.upload else {
            return self.nack(stats, tx, Some(id), NackReason::UploadNotBegun, 0);
        };
        if up.received != up.total_len {
            return self.nack(stats, tx, Some(id), NackReason::UploadBadOffset, up.received);
        }
        if !digest_matches(store.staged(), &up.sha256) {
            self.upload = None;
            store.abort();
            return self.nack(stats, tx, Some(id), NackReason::UploadDigestMismatch, 0);
        }
        self.upload = None;
        let start = self.exec.time_us();
        let lockstep = self.exec.is_lockstep();
        match self.exec.load(store.staged(), start) {
            Ok(()) => store.commit(),
            Err(error) => {
                // Keep running the image that was there.
                let _ = self.exec.load(store.image(), start);
                store.abort();
                self.restore_mode(lockstep, now_us);
                return self.nack(stats, tx, Some(id), NackReason::ImageInvalid, error.code().into());
            }
        }
        self.restore_mode(lockstep, now_us);
        self.send(stats, tx, &Body::Ack(Ack { ref_id: id, info: self.exec.time_us() }));
    }

    #[cfg(feature = "upload")]
    fn restore_mode(&mut self, lockstep: bool, now_us: i64) {
        if lockstep {
            self.exec.enter_lockstep();
        } else {
            self.exec.set_free_running(now_us);
        }
    }
}

#[cfg(feature = "upload")]
fn digest_matches(bytes: &[u8], expected: &[u8; 32]) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).as_slice() == expected.as_slice()
}


/// The table capacities of a board build: the firmware and the simulation of a board use these,
/// so an image a board refuses is refused by the simulation too.
pub mod board {
    use super::{Device, Exec};

    /// Routes.
    pub const ROUTES: usize = 16;
    /// Nodes (and edges and mailboxes, one each per node).
    pub const NODES: usize = 9;
    /// Synthetic sources.
    pub const SOURCES: usize = 4;
    /// Window operators.
    pub const WINDOWS: usize = 2;
    /// Slots per mailbox.
    pub const MAILBOX_DEPTH: usize = 2;
    /// Values per count window, panes per time window.
    pub const WINDOW_SLOTS: usize = 4;
    /// Largest link message, bytes (`boards/<board>/board.toml`).
    pub const MAX_MESSAGE: usize = 256;

    /// The executor of a board.
    pub type BoardExec = Exec<ROUTES, NODES, SOURCES, WINDOWS, MAILBOX_DEPTH, WINDOW_SLOTS>;
    /// The device of a board over buffers `B` (decoder), `M` (message) and `F` (frame).
    pub type BoardDevice<B, M, F> = Device<B, M, F, ROUTES, NODES, SOURCES, WINDOWS, MAILBOX_DEPTH, WINDOW_SLOTS>;
}
