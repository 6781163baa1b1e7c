//! The pods' filters as one nftables transaction: the table dropped and
//! built again, so what is in the kernel afterwards is exactly `pods`.

use super::{Allow, PodFilter, Ports, Protocol, TABLE};
use crate::nft::{ACCEPT, Expr, Header, Op, addr_bytes, bounded, cmp, immediate, load, mask, meta, other, verdict};
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, DataAttribute, Expressions, Hook, InetHookNumber, ListAttribute, Lookup, MetaKey,
    NfTablesMessage, Operator, Register, RuleAttribute, RuleMessage, SetAttribute, SetElementAttribute, SetElementList,
    SetElementMessage, SetFlags, SetMessage, Verdict,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

const BASE: &str = "forward";

/// Which way a chain filters: the pod's address is the destination of
/// ingress and the source of egress; the peer's is the other one.
#[derive(Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn prefix(self) -> &'static str {
        match self {
            Direction::Ingress => "in",
            Direction::Egress => "out",
        }
    }
    /// Offset of the pod's address in the (v4, v6) network header.
    fn pod_offset(self) -> (u32, u32) {
        match self {
            Direction::Ingress => (16, 24),
            Direction::Egress => (12, 8),
        }
    }
    fn peer_offset(self) -> (u32, u32) {
        match self {
            Direction::Ingress => Direction::Egress.pod_offset(),
            Direction::Egress => Direction::Ingress.pod_offset(),
        }
    }
}

/// An address family's header facts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(addr: IpAddr) -> Family {
        if addr.is_ipv4() { Family::V4 } else { Family::V6 }
    }
    fn nfproto(self) -> u8 {
        match self {
            Family::V4 => 2,
            Family::V6 => 10,
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }
    /// nft's datatypes ipv4_addr / ipv6_addr, and the key length.
    fn key(self) -> (u32, u32) {
        match self {
            Family::V4 => (7, 4),
            Family::V6 => (8, 16),
        }
    }
    fn pick(self, (v4, v6): (u32, u32)) -> u32 {
        match self {
            Family::V4 => v4,
            Family::V6 => v6,
        }
    }
    /// `meta nfproto <family>`: an inet chain sees both families.
    fn check(self) -> Vec<Expr> {
        vec![meta(MetaKey::Nfproto), cmp(Operator::Equal, vec![self.nfproto()])]
    }
    /// Loads the address at `offsets` of this family's header.
    fn load(self, offsets: (u32, u32)) -> Expr {
        load(Header::Network, self.pick(offsets), self.key().1)
    }
}

const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

/// A transaction's messages, with the ids its sets need.
struct Batch {
    ops: Vec<Op>,
    set_ids: u32,
}

impl Batch {
    fn push(&mut self, op: &'static str, flags: u16, msg: NfTablesMessage) {
        self.ops.push((op, flags, msg));
    }

    fn chain(&mut self, name: &str, base: bool) {
        let mut attributes = vec![ChainAttribute::Table(TABLE.into()), ChainAttribute::Name(name.into())];
        if base {
            attributes.extend([
                ChainAttribute::Hook(vec![Hook::Number(InetHookNumber::Forward.into()), Hook::Priority(0)]),
                ChainAttribute::Policy(1), // NF_ACCEPT
                ChainAttribute::Type("filter".into()),
            ]);
        }
        self.push("add chain", NLM_F_CREATE, NfTablesMessage::NewChain(ChainMessage { attributes }));
    }

    /// A set of `family`'s addresses, or with `map` a verdict map keyed by them, and its elements.
    fn set(&mut self, name: &str, family: Family, map: bool, elements: Vec<ListAttribute<SetElementAttribute>>) {
        self.set_ids += 1;
        let (key_type, key_len) = family.key();
        let mut attributes = vec![
            SetAttribute::Table(TABLE.into()),
            SetAttribute::Name(name.into()),
            SetAttribute::KeyType(key_type),
            SetAttribute::KeyLen(key_len),
            SetAttribute::Id(self.set_ids),
        ];
        if map {
            attributes.extend([SetAttribute::Flags(SetFlags::Map), SetAttribute::DataType(0xffff_ff00)]); // NFT_DATA_VERDICT
        }
        self.push("add set", NLM_F_CREATE, NfTablesMessage::NewSet(SetMessage { attributes }));
        if !elements.is_empty() {
            let attributes = vec![
                SetElementList::Table(TABLE.into()),
                SetElementList::Set(name.into()),
                SetElementList::Elements(elements),
            ];
            self.push("add elements", NLM_F_CREATE, NfTablesMessage::NewSetElement(SetElementMessage { attributes }));
        }
    }

    fn rule(&mut self, chain: &str, exprs: Vec<Expr>) {
        let attributes = vec![
            RuleAttribute::Table(TABLE.into()),
            RuleAttribute::Chain(chain.into()),
            RuleAttribute::Expressions(exprs),
        ];
        self.push("add rule", NLM_F_CREATE | NLM_F_APPEND, NfTablesMessage::NewRule(RuleMessage { attributes }));
    }
}

fn key(addr: IpAddr) -> SetElementAttribute {
    SetElementAttribute::Key(DataAttribute::Value(addr_bytes(addr)))
}

fn lookup(set: &str, verdict_map: bool) -> Expr {
    let mut attrs = vec![Lookup::SourceRegister(Register::Reg1), Lookup::Set(set.into())];
    if verdict_map {
        attrs.push(Lookup::DestinationRegister(Register::Verdict));
    }
    Expressions::Lookup(attrs).into()
}

/// `meta l4proto <p>`, and `th dport` within its range.
fn port_match(p: &Ports) -> Vec<Expr> {
    let mut exprs = vec![meta(MetaKey::L4Proto), cmp(Operator::Equal, vec![p.protocol.number()])];
    if let Some((lo, hi)) = p.range {
        exprs.push(load(Header::Transport, 2, 2));
        if lo == hi {
            exprs.push(cmp(Operator::Equal, lo.to_be_bytes().to_vec()));
        } else {
            // cmp compares bytes in order: big-endian ports compare as numbers.
            exprs.push(cmp(Operator::GreatherThanEqual, lo.to_be_bytes().to_vec()));
            exprs.push(cmp(Operator::LessThanEqual, hi.to_be_bytes().to_vec()));
        }
    }
    exprs
}

/// `ct state established,related accept`.
fn established() -> Vec<Expr> {
    // NFTA_CT_DREG = 1 (register 1), NFTA_CT_KEY = 2 (NFT_CT_STATE = 0).
    let ct = other("ct", vec![(1, 1u32.to_be_bytes().to_vec()), (2, 0u32.to_be_bytes().to_vec())]);
    // The state is a host-order bit mask: ESTABLISHED = 2, RELATED = 4.
    vec![ct, mask(6u32.to_ne_bytes().to_vec()), cmp(Operator::NotEqual, vec![0; 4]), immediate(verdict(ACCEPT, None))]
}

/// ICMPv6 types 133-137: router and neighbour solicitation and advertisement, redirect.
fn neighbour_discovery() -> Vec<Expr> {
    let mut exprs = Family::V6.check();
    exprs.extend([
        meta(MetaKey::L4Proto),
        cmp(Operator::Equal, vec![58]),
        load(Header::Transport, 0, 1),
        cmp(Operator::GreatherThanEqual, vec![133]),
        cmp(Operator::LessThanEqual, vec![137]),
        immediate(verdict(ACCEPT, None)),
    ]);
    exprs
}

/// The end of a pod's chain: `meta l4proto tcp reject with tcp reset`, then
/// `reject with icmpx admin-prohibited`. A refused connection fails at once
/// (a TCP client in SYN_SENT does not act on an ICMPv6 error, it waits out
/// its retries).
fn reject() -> [Vec<Expr>; 2] {
    // NFTA_REJECT_TYPE = 1: NFT_REJECT_TCP_RST = 1, NFT_REJECT_ICMPX_UNREACH = 2;
    // NFTA_REJECT_ICMP_CODE = 2: ADMIN_PROHIBITED = 3.
    let reset = other("reject", vec![(1, 1u32.to_be_bytes().to_vec())]);
    let tcp = vec![meta(MetaKey::L4Proto), cmp(Operator::Equal, vec![Protocol::Tcp.number()]), reset];
    [tcp, vec![other("reject", vec![(1, 2u32.to_be_bytes().to_vec()), (2, vec![3])])]]
}

/// How an allow-list's peers are matched: any address, a set of single
/// addresses of one family, or one prefix.
enum Peer {
    Any,
    Set(Family, String),
    Prefix(IpNet),
}

/// One pod's chain for one direction: a rule per (peer, port) ending in `return`, then reject.
fn pod_chain(batch: &mut Batch, chain: &str, direction: Direction, allows: &[Allow]) {
    batch.chain(chain, false);
    let mut rules = Vec::new();
    for (k, allow) in allows.iter().enumerate() {
        let peers = match &allow.peers {
            None => vec![Peer::Any],
            Some(nets) => {
                let mut hosts: BTreeMap<Family, BTreeSet<IpAddr>> = BTreeMap::new();
                let mut peers = Vec::new();
                for net in nets {
                    if net.prefix_len() == net.max_prefix_len() {
                        hosts.entry(Family::of(net.addr())).or_default().insert(net.addr());
                    } else {
                        peers.push(Peer::Prefix(net.trunc()));
                    }
                }
                for (family, addrs) in hosts {
                    let set = bounded(format!("{chain}-{k}-{}", family.suffix()));
                    let elements = addrs.into_iter().map(|a| ListAttribute::Element(vec![key(a)])).collect();
                    batch.set(&set, family, false, elements);
                    peers.insert(0, Peer::Set(family, set));
                }
                peers
            }
        };
        let ports: Vec<Option<&Ports>> =
            if allow.ports.is_empty() { vec![None] } else { allow.ports.iter().map(Some).collect() };
        for peer in &peers {
            let matched = match peer {
                Peer::Any => vec![],
                Peer::Set(family, set) => {
                    let mut e = family.check();
                    e.extend([family.load(direction.peer_offset()), lookup(set, false)]);
                    e
                }
                Peer::Prefix(net) => {
                    let family = Family::of(net.addr());
                    let mut e = family.check();
                    e.push(family.load(direction.peer_offset()));
                    if net.prefix_len() > 0 {
                        e.push(mask(addr_bytes(net.netmask())));
                        e.push(cmp(Operator::Equal, addr_bytes(net.network())));
                    }
                    e
                }
            };
            for port in &ports {
                let mut exprs = matched.clone();
                exprs.extend(port.map(port_match).unwrap_or_default());
                exprs.push(immediate(verdict(Verdict::Return, None)));
                rules.push(exprs);
            }
        }
    }
    for rule in rules {
        batch.rule(chain, rule);
    }
    for rule in reject() {
        batch.rule(chain, rule);
    }
}

/// The whole table for `pods`. An address listed by two pods goes to the first.
pub(super) fn ruleset(pods: &[PodFilter]) -> Vec<Op> {
    let table = || NfTablesMessage::NewTable(crate::nft::table_msg(TABLE));
    let mut batch = Batch { ops: Vec::new(), set_ids: 0 };
    // Created if missing so that deleting it cannot fail, then deleted with all it holds.
    batch.push("add table", NLM_F_CREATE, table());
    batch.push("delete table", 0, NfTablesMessage::DeleteTable(crate::nft::table_msg(TABLE)));
    let isolated = |p: &&PodFilter| p.ingress.is_some() || p.egress.is_some();
    if !pods.iter().any(|p| isolated(&p)) {
        return batch.ops;
    }
    batch.push("add table", NLM_F_CREATE, table());
    batch.chain(BASE, true);
    let mut taken = BTreeSet::new();
    // Per direction and family, the verdict map's elements: address → jump to the pod's chain.
    let mut jumps: BTreeMap<(&str, Family), Vec<ListAttribute<SetElementAttribute>>> = BTreeMap::new();
    for pod in pods.iter().filter(isolated) {
        let addrs: Vec<IpAddr> = pod.addrs.iter().copied().filter(|a| taken.insert(*a)).collect();
        for (direction, allows) in [(Direction::Ingress, &pod.ingress), (Direction::Egress, &pod.egress)] {
            let Some(allows) = allows else { continue };
            let chain = bounded(format!("{}-{}", direction.prefix(), pod.name));
            pod_chain(&mut batch, &chain, direction, allows);
            for addr in &addrs {
                let jump = DataAttribute::Verdict(verdict(Verdict::Jump, Some(&chain)));
                let element = ListAttribute::Element(vec![key(*addr), SetElementAttribute::Data(jump)]);
                jumps.entry((direction.prefix(), Family::of(*addr))).or_default().push(element);
            }
        }
    }
    batch.rule(BASE, established());
    batch.rule(BASE, neighbour_discovery());
    // Egress first: a packet leaves one pod before it reaches another.
    for direction in [Direction::Egress, Direction::Ingress] {
        for family in FAMILIES {
            let map = format!("{}{}", direction.prefix(), family.suffix());
            batch.set(&map, family, true, jumps.remove(&(direction.prefix(), family)).unwrap_or_default());
            let mut exprs = family.check();
            exprs.extend([family.load(direction.pod_offset()), lookup(&map, true)]);
            batch.rule(BASE, exprs);
        }
    }
    batch.ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, addr: &str, ingress: Option<Vec<Allow>>) -> PodFilter {
        PodFilter { name: name.into(), addrs: vec![addr.parse().unwrap()], ingress, egress: None }
    }

    fn ops(batch: &[Op]) -> Vec<&str> {
        batch.iter().map(|(op, ..)| *op).collect()
    }

    #[test]
    fn nothing_isolated_only_drops_the_table() {
        assert_eq!(ops(&ruleset(&[])), ["add table", "delete table"]);
        assert_eq!(ops(&ruleset(&[pod("x.a", "10.0.0.1", None)])), ["add table", "delete table"]);
    }

    #[test]
    fn an_allow_list_becomes_a_set_of_hosts_a_rule_per_prefix_and_port_and_a_reject() {
        let tcp80 = Ports { protocol: Protocol::Tcp, range: Some((80, 80)) };
        let udp = Ports { protocol: Protocol::Udp, range: Some((5000, 5010)) };
        let peers = ["10.0.0.2/32", "10.0.0.3/32", "fd00::2/128", "192.168.0.0/16"];
        let allow = Allow { peers: Some(peers.iter().map(|p| p.parse().unwrap()).collect()), ports: vec![tcp80, udp] };
        let batch = ruleset(&[pod("x.a", "10.0.0.1", Some(vec![allow])), pod("x.b", "10.0.0.1", Some(vec![]))]);
        let sets: Vec<String> = batch
            .iter()
            .filter_map(|(_, _, m)| match m {
                NfTablesMessage::NewSet(SetMessage { attributes }) => attributes.iter().find_map(|a| match a {
                    SetAttribute::Name(n) => Some(n.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .collect();
        assert_eq!(sets, ["in-x.a-0-4", "in-x.a-0-6", "out4", "out6", "in4", "in6"]);
        let rules_of = |chain: &str| {
            batch
                .iter()
                .filter(|(_, _, m)| {
                    matches!(m, NfTablesMessage::NewRule(RuleMessage { attributes })
                        if attributes.contains(&RuleAttribute::Chain(chain.into())))
                })
                .count()
        };
        // (v4 set, v6 set, one prefix) × two ports, then the two rejects.
        assert_eq!(rules_of("in-x.a"), 3 * 2 + 2);
        assert_eq!(rules_of("in-x.b"), 2, "isolated with nothing allowed: the rejects alone");
        assert_eq!(rules_of(BASE), 2 + 4);
        // x.b's address is x.a's: one jump for it, to x.a's chain.
        let jumps: usize = batch
            .iter()
            .filter_map(|(_, _, m)| match m {
                NfTablesMessage::NewSetElement(SetElementMessage { attributes }) => {
                    attributes.iter().find_map(|a| match a {
                        SetElementList::Elements(e) => {
                            Some(e.iter().filter(|e| format!("{e:?}").contains("Jump")).count())
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .sum();
        assert_eq!(jumps, 1);
        for (_, _, msg) in batch {
            crate::nft::assert_round_trips(msg);
        }
    }

    #[test]
    fn long_names_are_bounded() {
        let name = format!("x.{}", "a".repeat(100));
        let batch = ruleset(&[pod(&name, "10.0.0.1", Some(vec![]))]);
        let chain = batch.iter().find_map(|(_, _, m)| match m {
            NfTablesMessage::NewChain(ChainMessage { attributes }) => attributes.iter().find_map(|a| match a {
                ChainAttribute::Name(n) if n.starts_with("in-") => Some(n.clone()),
                _ => None,
            }),
            _ => None,
        });
        assert_eq!(chain.map(|c| c.len()), Some(crate::nft::MAX_NAME));
    }
}
