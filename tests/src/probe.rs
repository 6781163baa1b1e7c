//! Real traffic between network namespaces: TCP and UDP servers bound in a
//! pod's netns, and connections made from another's. A socket belongs to
//! the netns of the thread that creates it, so each side is created on a
//! thread that has entered the namespace.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// A port a probe tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Tcp(u16),
    Udp(u16),
}

/// Runs `f` on a thread inside the netns at `path`.
pub fn in_netns<T: Send + 'static>(path: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("the netns thread")
}

/// Serves `ports` in the netns at `path` for the rest of the process: TCP
/// accepts and closes, UDP echoes. The sockets keep working after the
/// thread that made them is gone; the serving threads live as long as the
/// test binary.
pub fn serve(path: &str, ports: &[Port]) {
    let ports = ports.to_vec();
    let (tcp, udp) = in_netns(path, move || {
        // `[::]` takes IPv4 too (net.ipv6.bindv6only is 0 in a fresh netns).
        let any = |port| SocketAddr::from(([0u16; 8], port));
        let (mut tcp, mut udp) = (Vec::new(), Vec::new());
        for port in ports {
            match port {
                Port::Tcp(n) => tcp.push(TcpListener::bind(any(n)).expect("bind tcp")),
                Port::Udp(n) => udp.push(UdpSocket::bind(any(n)).expect("bind udp")),
            }
        }
        (tcp, udp)
    });
    for l in tcp {
        std::thread::spawn(move || {
            for mut conn in l.incoming().flatten() {
                let _ = conn.write_all(b"ok");
            }
        });
    }
    for s in udp {
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        });
    }
}

/// Whether each of `targets` answers from the netns at `path`: TCP
/// connects and reads the server's greeting, UDP gets its datagram echoed
/// (tried three times, as a datagram may be lost while the neighbour is
/// resolved). A refused probe usually fails at once (the policy rejects).
pub fn reach(path: &str, targets: Vec<(IpAddr, Port)>) -> Vec<bool> {
    in_netns(path, move || targets.iter().map(|&(ip, port)| one(ip, port)).collect())
}

fn one(ip: IpAddr, port: Port) -> bool {
    let wait = Duration::from_millis(700);
    match port {
        Port::Tcp(n) => TcpStream::connect_timeout(&SocketAddr::new(ip, n), wait).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(wait));
            let mut got = [0u8; 2];
            s.read_exact(&mut got).is_ok()
        }),
        Port::Udp(n) => {
            let any: SocketAddr = if ip.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
            let Ok(s) = UdpSocket::bind(any) else { return false };
            if s.connect(SocketAddr::new(ip, n)).is_err() || s.set_read_timeout(Some(wait / 2)).is_err() {
                return false;
            }
            (0..3).any(|_| {
                let mut buf = [0u8; 8];
                s.send(b"probe").is_ok() && s.recv(&mut buf).is_ok_and(|got| &buf[..got] == b"probe")
            })
        }
    }
}
