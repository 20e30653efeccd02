//! Transport tests on loopback: messages cross intact, bad frames are counted and never handed
//! on, the TCP dialer reconnects, and the fault wrapper is deterministic.

use std::net::{TcpListener, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Receives until `want` messages came or two seconds passed.
fn receive(t: &dyn Transport, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(2);
    while got.len() < want && Instant::now() < end {
        t.recv(Duration::from_millis(20), &mut |m| got.push(m.to_vec())).unwrap();
    }
    got
}

#[test]
fn udp_messages_cross_and_bad_datagrams_are_counted() {
    let listen = Arc::new(UdpSocket::bind(loopback()).unwrap());
    listen.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let (route, inbox) = mpsc::channel();
    let acceptor = UdpTransport::accept(listen.clone(), inbox, UDP_MTU_DEFAULT);
    let dialer = UdpTransport::dial(loopback(), listen.local_addr().unwrap(), UDP_MTU_DEFAULT).unwrap();
    dialer.send(b"\xc1hello").unwrap();
    // A raw datagram with a bad CRC from the same peer.
    let raw = UdpSocket::bind(loopback()).unwrap();
    raw.send_to(b"\xc1hello\0\0\0\0", listen.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..2 {
        let (n, from) = listen.recv_from(&mut buf).unwrap();
        route.send((from, buf[..n].to_vec())).unwrap();
    }
    let got = receive(&acceptor, 2);
    assert_eq!(got, vec![b"\xc1hello".to_vec()]);
    assert_eq!(acceptor.stats().bad_frames, 1);
    // The acceptor answers the last source it heard: the raw socket, not the dialer.
    assert_eq!(acceptor.peer(), Some(raw.local_addr().unwrap()));
}

#[test]
fn udp_dialer_hears_only_its_peer() {
    let peer = UdpTransport::dial(loopback(), "127.0.0.1:9".parse().unwrap(), UDP_MTU_DEFAULT).unwrap();
    let dialer = UdpTransport::dial(loopback(), peer.local_addr().unwrap(), UDP_MTU_DEFAULT).unwrap();
    let stranger = UdpTransport::dial(loopback(), dialer.local_addr().unwrap(), UDP_MTU_DEFAULT).unwrap();
    stranger.send(b"\xc1not you").unwrap();
    let mut got = 0;
    dialer.recv(Duration::from_millis(200), &mut |_| got += 1).unwrap();
    assert_eq!(got, 0);
}

#[test]
fn tcp_frames_cross_and_the_dialer_reconnects() {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TcpTransport::accept(TCP_MTU_DEFAULT);
    let dialer = TcpTransport::dial(addr, TCP_MTU_DEFAULT);
    // The dialer connects on its first receive.
    assert_eq!(dialer.recv(Duration::from_millis(50), &mut |_| {}).unwrap(), 0);
    let (stream, _) = listener.accept().unwrap();
    acceptor.attach(stream, Vec::new());
    for i in 0..100u8 {
        dialer.send(&[0xc1, i, 0, 0]).unwrap();
    }
    let got = receive(&acceptor, 100);
    assert_eq!(got.len(), 100);
    assert_eq!(got[99], vec![0xc1, 99, 0, 0]);
    acceptor.send(b"\xc2back").unwrap();
    assert_eq!(receive(&dialer, 1), vec![b"\xc2back".to_vec()]);
    // The acceptor drops the connection: the dialer sees it and dials again.
    acceptor.reset();
    let end = Instant::now() + Duration::from_secs(2);
    listener.set_nonblocking(true).unwrap();
    let mut again = None;
    while again.is_none() && Instant::now() < end {
        dialer.recv(Duration::from_millis(20), &mut |_| {}).unwrap();
        again = listener.accept().ok();
    }
    let (stream, _) = again.expect("the dialer reconnected");
    stream.set_nonblocking(false).unwrap();
    acceptor.attach(stream, Vec::new());
    dialer.send(b"\xc1again").unwrap();
    assert_eq!(receive(&acceptor, 1), vec![b"\xc1again".to_vec()]);
    assert_eq!(dialer.stats().connects, 2);
}

#[test]
fn tcp_bad_frames_are_counted() {
    let listener = TcpListener::bind(loopback()).unwrap();
    let acceptor = TcpTransport::accept(TCP_MTU_DEFAULT);
    let mut raw = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    acceptor.attach(stream, Vec::new());
    let mut frame = [0u8; 64];
    let n = manyfold_framing::encode_frame(b"\xc1ok", &mut frame, 4096).unwrap();
    std::io::Write::write_all(&mut raw, b"\x05bad\x01\x00").unwrap();
    std::io::Write::write_all(&mut raw, &frame[..n]).unwrap();
    assert_eq!(receive(&acceptor, 1), vec![b"\xc1ok".to_vec()]);
    assert_eq!(acceptor.stats().bad_frames, 1);
}

#[test]
fn faults_are_seeded_and_parsed() {
    let spec = FaultSpec::parse("seed=7,drop=0.2,dup=0.1,reorder=0.1,corrupt=0.1").unwrap();
    assert_eq!(spec.seed, 7);
    let run = || {
        let mut f = Faults::new(spec);
        let now = Instant::now();
        let out: Vec<Vec<u8>> = (0..200u8).flat_map(|i| f.apply(now, &[0xc1, i, i, i])).collect();
        (out, f.counts())
    };
    let (a, counts) = run();
    assert_eq!(a, run().0);
    assert!(counts.dropped > 10 && counts.duplicated > 5 && counts.reordered > 5 && counts.corrupted > 5, "{counts:?}");
    assert!(FaultSpec::parse("drop=2").is_err());
    assert!(FaultSpec::parse("jitter=1").is_err());
}

#[test]
fn delayed_datagrams_come_out_when_due() {
    let mut f = Faults::new(FaultSpec { seed: 1, delay_ms: 5, ..FaultSpec::default() });
    let start = Instant::now();
    let mut out = f.apply(start, b"\xc1a");
    out.extend(f.apply(start, b"\xc1b"));
    assert!(f.next_due().is_some() || out.len() == 2);
    out.extend(f.take_due(start + Duration::from_millis(6)));
    assert_eq!(out.len(), 2);
    assert_eq!(f.counts().delayed, 2);
}
