//! A fault-injecting TCP relay for cluster bus links: nodes announce the
//! relay's port as their bus port, every bus connection to a node passes
//! through its relay, and a test cuts links by source address. With each
//! node on its own loopback address (127.0.0.x), that is a network
//! partition without namespaces: `cut(ip)` drops and refuses every
//! connection from `ip`, `heal()` lets them through again.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Relay {
    pub port: u16,
    blocked: Arc<Mutex<HashSet<IpAddr>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Listens on `listen` (port 0: any free one) and forwards to `target`.
    pub fn start(listen: IpAddr, target: SocketAddr) -> Relay {
        let listener = TcpListener::bind((listen, 0)).expect("relay listen");
        listener.set_nonblocking(true).expect("nonblocking accept");
        let port = listener.local_addr().expect("relay addr").port();
        let blocked: Arc<Mutex<HashSet<IpAddr>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (blocked.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        if is_blocked(&b, peer.ip()) {
                            continue;
                        }
                        let Ok(up) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else { continue };
                        for (from, to) in [(&conn, &up), (&up, &conn)] {
                            let (from, to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
                            let (b, s) = (b.clone(), s.clone());
                            std::thread::spawn(move || pump(from, to, peer.ip(), &b, &s));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay { port, blocked, stop }
    }

    /// Drops every connection from `ip`, now and until healed.
    pub fn cut(&self, ip: IpAddr) {
        self.blocked.lock().unwrap_or_else(|e| e.into_inner()).insert(ip);
    }

    pub fn heal(&self) {
        self.blocked.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn is_blocked(b: &Mutex<HashSet<IpAddr>>, ip: IpAddr) -> bool {
    b.lock().unwrap_or_else(|e| e.into_inner()).contains(&ip)
}

/// Copies one direction until either side closes, the peer is cut or the
/// relay stops; then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream, peer: IpAddr, b: &Mutex<HashSet<IpAddr>>, stop: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if stop.load(Ordering::Relaxed) || is_blocked(b, peer) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
