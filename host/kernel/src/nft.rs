//! The nfnetlink socket wasmcni's nftables tables are programmed through
//! (one atomic batch per transaction, replies read without blocking), and
//! the expression builders they share: typed messages of
//! netlink-packet-netfilter throughout, with `Other` only for expressions the
//! crate has no variant for (their attributes are the kernel's, listed where
//! used).

use netlink_packet_core::{
    DefaultNla, ErrorBuffer, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_netfilter::nftables::{
    Bitwise, Cmp, DataAttribute, ExpressionAttribute, Expressions, Immediate, ListAttribute, Meta, MetaKey,
    NfTablesMessage, Operator, Payload, Register, TableAttribute, TableMessage, Verdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use sha2::{Digest, Sha256};
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;

/// Longest chain or set name we create (the kernel allows 255 bytes; shorter keeps listings readable).
pub const MAX_NAME: usize = 64;

/// A chain or set name: `name` itself when short enough, otherwise a prefix and a hash.
pub(crate) fn bounded(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..8]);
    // Cut at a char boundary: names are mostly ASCII, but a pod's name need not be.
    let mut cut = MAX_NAME - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}/{hash}", &name[..cut])
}

/// Send and receive buffer of a socket, bytes.
const BUFFER: usize = 16 << 20;

pub(crate) type Expr = ListAttribute<ExpressionAttribute>;
/// A message of a transaction: what it does (for errors), its netlink flags, the message.
pub(crate) type Op = (&'static str, u16, NfTablesMessage);

pub(crate) fn table_msg(table: &str) -> TableMessage {
    TableMessage { attributes: vec![TableAttribute::Name(table.into())] }
}

pub(crate) fn addr_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Where [`load`] reads from.
#[derive(Clone, Copy)]
pub(crate) enum Header {
    Network = 1,
    Transport = 2,
}

/// Loads `len` bytes at `offset` of a packet header into register 1.
pub(crate) fn load(base: Header, offset: u32, len: u32) -> Expr {
    Expressions::Payload(vec![
        Payload::DestinationRegister(Register::Reg1),
        Payload::Base(base as u32),
        Payload::Offset(offset),
        Payload::Len(len),
    ])
    .into()
}

pub(crate) fn meta(key: MetaKey) -> Expr {
    Expressions::Meta(vec![Meta::DestinationRegister(Register::Reg1), Meta::Key(key)]).into()
}

pub(crate) fn cmp(op: Operator, value: Vec<u8>) -> Expr {
    Expressions::Cmp(vec![Cmp::SourceRegister(Register::Reg1), Cmp::Op(op), Cmp::Data(DataAttribute::Value(value))])
        .into()
}

/// Register 1 = (register 1 & `mask`).
pub(crate) fn mask(mask: Vec<u8>) -> Expr {
    let len = mask.len();
    Expressions::Bitwise(vec![
        Bitwise::SourceRegister(Register::Reg1),
        Bitwise::DestinationRegister(Register::Reg1),
        Bitwise::Length(len as u32),
        Bitwise::Mask(DataAttribute::Value(mask)),
        Bitwise::Xor(DataAttribute::Value(vec![0; len])),
    ])
    .into()
}

/// A verdict: accept, drop, return, or a jump to `chain`.
pub(crate) fn verdict(code: Verdict, chain: Option<&str>) -> Vec<VerdictAttribute> {
    let mut v = vec![VerdictAttribute::Code(code)];
    v.extend(chain.map(|c| VerdictAttribute::Chain(c.into())));
    v
}

pub(crate) const ACCEPT: Verdict = Verdict::Other(1); // NF_ACCEPT

pub(crate) fn immediate(v: Vec<VerdictAttribute>) -> Expr {
    Expressions::Immediate(vec![
        Immediate::DestinationRegister(Register::Verdict),
        Immediate::Data(DataAttribute::Verdict(v)),
    ])
    .into()
}

/// An expression the crate has no variant for, from its kernel attributes.
pub(crate) fn other(name: &str, attributes: Vec<(u16, Vec<u8>)>) -> Expr {
    let attributes = attributes.into_iter().map(|(kind, value)| DefaultNla::new(kind, value)).collect();
    Expressions::Other { expression_type: name.into(), attributes }.into()
}

/// One nfnetlink socket and its sequence numbers.
pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    pub(crate) fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.set_cap_ack(true)?; // errors need not echo our request back
        // A network policy update is one batch of thousands of messages, each acked: room for both.
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::SndBufForce, &BUFFER)?;
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &BUFFER)?;
        Ok(Netlink { socket, seq: 0, buf: Vec::with_capacity(64 * 1024) })
    }

    fn message(
        &mut self,
        flags: u16,
        family: NetfilterProtoFamily,
        res_id: u16,
        inner: impl Into<NetfilterMessageInner>,
    ) -> NetlinkMessage<NetfilterMessage> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let payload = NetfilterMessage::new(NetfilterHeader::new(family, 0, res_id), inner);
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
        msg.finalize();
        msg
    }

    /// Sends `msgs`, each asking for an ack; if `batch`, between BATCH_BEGIN and BATCH_END.
    /// `Ok(Some((i, errno)))`: the kernel refused `msgs[i]` (and with it all of a batch).
    pub(crate) fn call(&mut self, msgs: Vec<Op>, batch: bool) -> io::Result<Option<(usize, i32)>> {
        if self.seq > u32::MAX / 2 {
            self.seq = 0; // nothing is outstanding between calls
        }
        let subsys = 10; // NFNL_SUBSYS_NFTABLES: the batch is for nftables
        let mut out = Vec::new();
        if batch {
            out.push(self.message(0, NetfilterProtoFamily::Unspec, subsys, ControlMessage::BatchBegin));
        }
        let (first, n) = (self.seq + 1, msgs.len() as u32);
        for (_, flags, msg) in msgs {
            out.push(self.message(NLM_F_ACK | flags, NetfilterProtoFamily::Inet, 0, msg));
        }
        if batch {
            out.push(self.message(0, NetfilterProtoFamily::Unspec, subsys, ControlMessage::BatchEnd));
        }
        let mut bytes = Vec::new();
        for msg in &out {
            let start = bytes.len();
            bytes.resize(start + msg.buffer_len(), 0);
            msg.serialize(&mut bytes[start..]);
        }
        let sent = self.socket.send_to(&bytes, &SocketAddr::new(0, 0), 0)?;
        if sent != bytes.len() {
            return Err(io::Error::other("short netlink send"));
        }
        // The kernel handles nftables requests synchronously inside sendmsg(), so every reply is queued
        // by now: read without blocking, and a missing reply is an error rather than a hang.
        let ours = (first - batch as u32)..=(first + n - 1 + batch as u32);
        let (mut acked, mut errno) = (0, None);
        loop {
            self.buf.clear();
            match self.socket.recv(&mut self.buf, nix::libc::MSG_DONTWAIT) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            let mut rest = &self.buf[..];
            while !rest.is_empty() {
                let reply = NetlinkBuffer::new_checked(rest).map_err(io::Error::other)?;
                let (len, seq) = (reply.length() as usize, reply.sequence_number());
                // Only acks and errors matter (a GET's answer itself does not).
                if reply.message_type() == NLMSG_ERROR && ours.contains(&seq) {
                    match ErrorBuffer::new_checked(reply.payload()).map_err(io::Error::other)?.code() {
                        None => acked += 1,
                        // The first refusal is the cause, later ones often its consequences. One for
                        // BATCH_BEGIN or BATCH_END counts as the first or last message's.
                        Some(code) => {
                            _ = errno.get_or_insert(((seq.clamp(first, first + n - 1) - first) as usize, -code.get()))
                        }
                    }
                }
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
            }
        }
        match errno {
            Some(errno) => Ok(Some(errno)),
            None if acked == n => Ok(None),
            None => Err(io::Error::other(format!("{acked} of {n} acks received"))),
        }
    }
}

/// Why a transaction failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The kernel refused message `op` (and with it the whole batch).
    Refused { op: &'static str, errno: i32 },
    /// The socket failed, or a reply made no sense.
    Socket { op: &'static str, source: io::Error },
}

/// A socket opened on first use, in the network namespace of the thread
/// making that call, kept for the owner's life, and reopened after a failure.
#[derive(Default)]
pub(crate) struct Lazy(Mutex<Option<Netlink>>);

impl Lazy {
    pub(crate) fn call(&self, msgs: Vec<Op>, batch: bool) -> Result<(), Failure> {
        if msgs.is_empty() {
            return Ok(());
        }
        let mut guard = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            *guard = Some(Netlink::open().map_err(|source| Failure::Socket { op: "open", source })?);
        }
        let ops: Vec<_> = msgs.iter().map(|(op, ..)| *op).collect();
        match guard.as_mut().expect("opened").call(msgs, batch) {
            Ok(None) => Ok(()),
            Ok(Some((i, errno))) => Err(Failure::Refused { op: ops[i], errno }),
            Err(source) => {
                *guard = None; // a socket in an unknown state is not reused
                Err(Failure::Socket { op: ops[0], source })
            }
        }
    }
}

/// Serializes `msg` as sent and parses it back: what the crate emits is what it reads.
#[cfg(test)]
pub(crate) fn assert_round_trips(msg: NfTablesMessage) {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    let inner = NetfilterMessage::new(NetfilterHeader::new(NetfilterProtoFamily::Inet, 0, 0), msg);
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
    msg.finalize();
    let mut bytes = vec![0; msg.buffer_len()];
    msg.serialize(&mut bytes);
    assert_eq!(NetlinkMessage::<NetfilterMessage>::deserialize(&bytes).unwrap(), msg);
}
