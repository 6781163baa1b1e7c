//! The nftables messages masquerade sends, and the nfnetlink socket that
//! sends them: typed messages of netlink-packet-netfilter, one atomic batch
//! per transaction, replies read without blocking.

use super::TABLE;
use ipnet::IpNet;
use netlink_packet_core::{
    ErrorBuffer, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions, Hook, InetHookNumber,
    ListAttribute, Lookup, Meta, MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage,
    SetAttribute, SetElementAttribute, SetElementList, SetElementMessage, SetMessage, TableAttribute, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use std::io;
use std::net::IpAddr;

pub(super) fn table_msg() -> NfTablesMessage {
    NfTablesMessage::NewTable(TableMessage { attributes: vec![TableAttribute::Name(TABLE.into())] })
}

pub(super) fn chain_msg(chain: &str) -> NfTablesMessage {
    NfTablesMessage::NewChain(ChainMessage {
        attributes: vec![
            ChainAttribute::Table(TABLE.into()),
            ChainAttribute::Name(chain.into()),
            ChainAttribute::Hook(vec![Hook::Number(InetHookNumber::PostRouting.into()), Hook::Priority(100)]), // srcnat
            ChainAttribute::Policy(1), // NF_ACCEPT
            ChainAttribute::Type("nat".into()),
        ],
    })
}

pub(super) fn set_msg(set: &str, exclude: IpNet) -> NfTablesMessage {
    // nft's datatypes: ipv4_addr = 7, ipv6_addr = 8.
    let (key_type, key_len) = if exclude.addr().is_ipv4() { (7, 4) } else { (8, 16) };
    NfTablesMessage::NewSet(SetMessage {
        attributes: vec![
            SetAttribute::Table(TABLE.into()),
            SetAttribute::Name(set.into()),
            SetAttribute::KeyType(key_type),
            SetAttribute::KeyLen(key_len),
            SetAttribute::Id(1), // required, though nothing refers to it
        ],
    })
}

pub(super) fn addr_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

pub(super) fn element_msg(set: &str, source: IpAddr, add: bool) -> NfTablesMessage {
    let attributes = vec![
        SetElementList::Table(TABLE.into()),
        SetElementList::Set(set.into()),
        SetElementList::Elements(vec![ListAttribute::Element(vec![SetElementAttribute::Key(DataAttribute::Value(
            addr_bytes(source),
        ))])]),
    ];
    let msg = SetElementMessage { attributes };
    if add { NfTablesMessage::NewSetElement(msg) } else { NfTablesMessage::DeleteSetElement(msg) }
}

pub(super) type Expr = ListAttribute<ExpressionAttribute>;
/// A message of a transaction: what it does (for errors), its netlink flags, the message.
pub(super) type Op = (&'static str, u16, NfTablesMessage);

/// Loads `len` bytes at `offset` of the network header into register 1.
pub(super) fn load(offset: u32, len: u32) -> Expr {
    let base = 1; // NFT_PAYLOAD_NETWORK_HEADER
    Expressions::Payload(vec![
        Payload::DestinationRegister(Register::Reg1),
        Payload::Base(base),
        Payload::Offset(offset),
        Payload::Len(len),
    ])
    .into()
}

pub(super) fn cmp(op: Operator, value: Vec<u8>) -> Expr {
    Expressions::Cmp(vec![Cmp::SourceRegister(Register::Reg1), Cmp::Op(op), Cmp::Data(DataAttribute::Value(value))])
        .into()
}

/// `daddr != net`: load, mask to the prefix, compare.
pub(super) fn daddr_not_in(net: IpNet, offset: u32) -> Vec<Expr> {
    let len = addr_bytes(net.addr()).len() as u32;
    let mut exprs = vec![load(offset, len)];
    if net.prefix_len() < net.max_prefix_len() {
        exprs.push(
            Expressions::Bitwise(vec![
                Bitwise::SourceRegister(Register::Reg1),
                Bitwise::DestinationRegister(Register::Reg1),
                Bitwise::Length(len),
                Bitwise::Mask(DataAttribute::Value(addr_bytes(net.netmask()))),
                Bitwise::Xor(DataAttribute::Value(vec![0; len as usize])),
            ])
            .into(),
        );
    }
    exprs.push(cmp(Operator::NotEqual, addr_bytes(net.network())));
    exprs
}

/// `meta nfproto ipv4 ip saddr @set ip daddr != exclude ip daddr != 224.0.0.0/4 masquerade` (or the ip6 form).
pub(super) fn rule_exprs(set: &str, exclude: IpNet) -> Vec<Expr> {
    // (NFPROTO_*, saddr offset, daddr offset, address length, multicast)
    let (nfproto, saddr, daddr, len, multicast) = match exclude {
        IpNet::V4(_) => (2, 12, 16, 4, "224.0.0.0/4"),
        IpNet::V6(_) => (10, 8, 24, 16, "ff00::/8"),
    };
    // An inet chain sees both families: check which one before reading addresses.
    let mut exprs = vec![
        Expressions::Meta(vec![Meta::DestinationRegister(Register::Reg1), Meta::Key(MetaKey::Nfproto)]).into(),
        cmp(Operator::Equal, vec![nfproto]),
        load(saddr, len),
        Expressions::Lookup(vec![Lookup::SourceRegister(Register::Reg1), Lookup::Set(set.into())]).into(),
    ];
    exprs.extend(daddr_not_in(exclude, daddr));
    exprs.extend(daddr_not_in(multicast.parse().expect("valid"), daddr));
    // The crate has no typed `masq` expression; it takes no attributes, so the generic form is exact.
    exprs.push(Expressions::Other { expression_type: "masq".into(), attributes: vec![] }.into());
    exprs
}

pub(super) fn rule_msg(chain: &str, set: &str, exclude: IpNet) -> NfTablesMessage {
    NfTablesMessage::NewRule(RuleMessage {
        attributes: vec![
            RuleAttribute::Table(TABLE.into()),
            RuleAttribute::Chain(chain.into()),
            RuleAttribute::Expressions(rule_exprs(set, exclude)),
        ],
    })
}

/// One nfnetlink socket and its sequence numbers.
pub(super) struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    pub(super) fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.set_cap_ack(true)?; // errors need not echo our request back
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
    pub(super) fn call(&mut self, msgs: Vec<Op>, batch: bool) -> io::Result<Option<(usize, i32)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_serialize_and_parse_back() {
        let exclude: IpNet = "10.88.0.0/16".parse().unwrap();
        let rule = rule_msg("masq-cbr0", "masq-cbr0-10.88.0.0-16", exclude);
        let NfTablesMessage::NewRule(RuleMessage { attributes }) = &rule else { unreachable!() };
        let RuleAttribute::Expressions(exprs) = &attributes[2] else { unreachable!() };
        // meta, cmp, payload, lookup, then (payload, bitwise, cmp) twice, masq
        assert_eq!(exprs.len(), 11);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        let inner = NetfilterMessage::new(NetfilterHeader::new(NetfilterProtoFamily::Inet, 0, 0), rule);
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        msg.finalize();
        let mut bytes = vec![0; msg.buffer_len()];
        msg.serialize(&mut bytes);
        assert_eq!(NetlinkMessage::<NetfilterMessage>::deserialize(&bytes).unwrap(), msg);
        assert_eq!(daddr_not_in("10.0.0.1/32".parse().unwrap(), 16).len(), 2, "no mask for a host route");
    }
}
