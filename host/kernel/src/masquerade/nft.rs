//! The nftables messages masquerade sends (through [`crate::nft::Netlink`]).

use super::TABLE;
use crate::nft::{Expr, Header, addr_bytes, cmp, load, mask, meta};
use ipnet::IpNet;
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, DataAttribute, Expressions, Hook, InetHookNumber, ListAttribute, Lookup, MetaKey,
    NfTablesMessage, Operator, Register, RuleAttribute, RuleMessage, SetAttribute, SetElementAttribute, SetElementList,
    SetElementMessage, SetMessage,
};
use std::net::IpAddr;

pub(super) fn table_msg() -> NfTablesMessage {
    NfTablesMessage::NewTable(crate::nft::table_msg(TABLE))
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

/// `daddr != net`: load, mask to the prefix, compare.
pub(super) fn daddr_not_in(net: IpNet, offset: u32) -> Vec<Expr> {
    let len = addr_bytes(net.addr()).len() as u32;
    let mut exprs = vec![load(Header::Network, offset, len)];
    if net.prefix_len() < net.max_prefix_len() {
        exprs.push(mask(addr_bytes(net.netmask())));
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
        meta(MetaKey::Nfproto),
        cmp(Operator::Equal, vec![nfproto]),
        load(Header::Network, saddr, len),
        Expressions::Lookup(vec![Lookup::SourceRegister(Register::Reg1), Lookup::Set(set.into())]).into(),
    ];
    exprs.extend(daddr_not_in(exclude, daddr));
    exprs.extend(daddr_not_in(multicast.parse().expect("valid"), daddr));
    // The crate has no typed `masq` expression; it takes no attributes, so the generic form is exact.
    exprs.push(crate::nft::other("masq", vec![]));
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
        crate::nft::assert_round_trips(rule);
        assert_eq!(daddr_not_in("10.0.0.1/32".parse().unwrap(), 16).len(), 2, "no mask for a host route");
    }
}
