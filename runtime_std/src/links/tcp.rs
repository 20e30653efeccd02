//! TCP: COBS stream frames, `COBS(message || crc32c) || 0x00` (docs/wire.md 1.3). The dialing
//! side reconnects with a backoff that doubles up to [`BACKOFF_MAX`]; the listening side takes
//! the connections the node's listener hands it ([`TcpTransport::attach`]).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use manyfold_framing::FrameDecoder;
use parking_lot::{Condvar, Mutex};

use super::{Counters, Transport, TransportStats};

/// First wait before dialing again after a failed connection.
pub const BACKOFF_MIN: Duration = Duration::from_millis(20);
/// Longest wait between dials.
pub const BACKOFF_MAX: Duration = Duration::from_millis(1000);
/// A send that cannot hand its bytes to the kernel within this time drops the connection
/// (the peer stopped reading); only this link's thread waits for it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

struct Reader {
    stream: Option<TcpStream>,
    decoder: FrameDecoder<Box<[u8]>>,
    buf: Box<[u8]>,
    read_timeout: Option<Duration>,
    next_dial: Instant,
    backoff: Duration,
}

/// A TCP link transport.
pub struct TcpTransport {
    dial: Option<SocketAddr>,
    reader: Mutex<Reader>,
    writer: Mutex<Option<TcpStream>>,
    /// A connection accepted for this link, with the bytes the listener already read from it.
    pending: Mutex<Option<(TcpStream, Vec<u8>)>>,
    attached: Condvar,
    peer: Mutex<Option<SocketAddr>>,
    max_message: usize,
    counters: Counters,
}

impl TcpTransport {
    fn new(dial: Option<SocketAddr>, max_message: usize) -> TcpTransport {
        let decoder = FrameDecoder::with_max_message(max_message).unwrap_or_else(|_| {
            FrameDecoder::with_max_message(manyfold_framing::MESSAGE_LEN_MAX_DEFAULT).expect("the default frame bound is valid")
        });
        TcpTransport {
            dial,
            reader: Mutex::new(Reader {
                stream: None,
                decoder,
                buf: vec![0u8; 64 * 1024].into_boxed_slice(),
                read_timeout: None,
                next_dial: Instant::now(),
                backoff: BACKOFF_MIN,
            }),
            writer: Mutex::new(None),
            pending: Mutex::new(None),
            attached: Condvar::new(),
            peer: Mutex::new(dial),
            max_message,
            counters: Counters::default(),
        }
    }

    /// Dials `peer` (on the first receive, and again whenever the connection drops).
    pub fn dial(peer: SocketAddr, max_message: usize) -> TcpTransport {
        TcpTransport::new(Some(peer), max_message)
    }

    /// Waits for the node's listener to hand over connections ([`TcpTransport::attach`]).
    pub fn accept(max_message: usize) -> TcpTransport {
        TcpTransport::new(None, max_message)
    }

    /// Hands an accepted connection to this link, with the bytes already read from it; it
    /// replaces the current one (a restarted peer connects again).
    pub fn attach(&self, stream: TcpStream, already: Vec<u8>) {
        *self.pending.lock() = Some((stream, already));
        self.attached.notify_all();
    }

    fn use_stream(&self, reader: &mut Reader, stream: TcpStream, already: &[u8], on: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        if let Some(old) = reader.stream.take() {
            let _ = old.shutdown(Shutdown::Both);
        }
        *self.peer.lock() = stream.peer_addr().ok();
        *self.writer.lock() = Some(stream.try_clone()?);
        reader.stream = Some(stream);
        reader.read_timeout = None;
        reader.decoder.reset();
        Counters::add(&self.counters.connects, 1);
        Ok(feed(&self.counters, &mut reader.decoder, already, on))
    }

    fn drop_connection(&self, reader: &mut Reader) {
        if let Some(s) = reader.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        *self.writer.lock() = None;
        reader.decoder.reset();
    }
}

/// Feeds received bytes to the decoder; hands on each intact message, counts the bad frames.
fn feed(counters: &Counters, decoder: &mut FrameDecoder<Box<[u8]>>, bytes: &[u8], on: &mut dyn FnMut(&[u8])) -> usize {
    let mut count = 0;
    decoder.feed(bytes, |frame| match frame {
        Ok(message) => {
            Counters::add(&counters.received, 1);
            count += 1;
            on(message);
        }
        Err(_) => Counters::add(&counters.bad_frames, 1),
    });
    count
}

impl Transport for TcpTransport {
    fn send(&self, message: &[u8]) -> io::Result<()> {
        let mut frame = [0u8; manyfold_framing::frame_len_max(manyfold_framing::MESSAGE_LEN_MAX_DEFAULT)];
        let len = manyfold_framing::encode_frame(message, &mut frame, self.max_message.min(manyfold_framing::MESSAGE_LEN_MAX_DEFAULT))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut writer = self.writer.lock();
        let Some(stream) = writer.as_mut() else {
            Counters::add(&self.counters.send_errors, 1);
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no connection to the peer"));
        };
        match stream.write_all(&frame[..len]) {
            Ok(()) => {
                Counters::add(&self.counters.sent, 1);
                Ok(())
            }
            Err(e) => {
                // The reader sees the broken connection too and drops it; the dialer dials again.
                let _ = stream.shutdown(Shutdown::Both);
                *writer = None;
                Counters::add(&self.counters.send_errors, 1);
                Err(e)
            }
        }
    }

    fn recv(&self, timeout: Duration, on: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let end = Instant::now() + timeout;
        let mut reader = self.reader.lock();
        if let Some((stream, already)) = self.pending.lock().take() {
            return self.use_stream(&mut reader, stream, &already, on);
        }
        if reader.stream.is_none() {
            match self.dial {
                Some(addr) => {
                    let now = Instant::now();
                    if now < reader.next_dial {
                        std::thread::sleep((reader.next_dial - now).min(timeout));
                        return Ok(0);
                    }
                    match TcpStream::connect_timeout(&addr, timeout.clamp(Duration::from_millis(10), BACKOFF_MAX)) {
                        Ok(stream) => {
                            reader.backoff = BACKOFF_MIN;
                            return self.use_stream(&mut reader, stream, &[], on);
                        }
                        Err(_) => {
                            reader.next_dial = Instant::now() + reader.backoff;
                            reader.backoff = (reader.backoff * 2).min(BACKOFF_MAX);
                            return Ok(0);
                        }
                    }
                }
                None => {
                    let mut pending = self.pending.lock();
                    if pending.is_none() {
                        self.attached.wait_until(&mut pending, end);
                    }
                    let Some((stream, already)) = pending.take() else { return Ok(0) };
                    drop(pending);
                    return self.use_stream(&mut reader, stream, &already, on);
                }
            }
        }
        let wait = Some(timeout.max(Duration::from_millis(1)));
        if reader.read_timeout != wait {
            if let Some(s) = &reader.stream {
                s.set_read_timeout(wait)?;
            }
            reader.read_timeout = wait;
        }
        let Reader { stream, buf, decoder, .. } = &mut *reader;
        let Some(stream) = stream.as_mut() else { return Ok(0) };
        match stream.read(buf) {
            Ok(n) if n > 0 => Ok(feed(&self.counters, decoder, &buf[..n], on)),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => Ok(0),
            // End of stream or a broken connection: the dialer dials again.
            _ => {
                self.drop_connection(&mut reader);
                Ok(0)
            }
        }
    }

    fn kind(&self) -> &'static str {
        "tcp"
    }

    fn peer(&self) -> Option<SocketAddr> {
        *self.peer.lock()
    }

    fn stats(&self) -> TransportStats {
        self.counters.snapshot()
    }

    fn reset(&self) {
        let mut reader = self.reader.lock();
        self.drop_connection(&mut reader);
    }
}
