"""Native CPython tests of ipam_core against an in-memory lease store, the
Python counterpart of the Rust SDK's mock host: python3 -m unittest discover tests"""

import os
import sys
import unittest
from types import SimpleNamespace

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import ipam_core  # noqa: E402


class Store:
    """The ipam-store interface, in memory."""

    def __init__(self):
        self.leased = {}

    def reserve(self, ip, container_id, ifname, range_set):
        if ip in self.leased:
            return False
        self.leased[ip] = (container_id, ifname)
        return True

    def last_reserved(self, range_set):
        return None

    def leases(self):
        return [SimpleNamespace(ip=ip, container_id=c, ifname=i) for ip, (c, i) in self.leased.items()]

    def release_owner(self, container_id, ifname):
        freed = [ip for ip, owner in self.leased.items() if owner == (container_id, ifname)]
        for ip in freed:
            del self.leased[ip]
        return freed


def log(level, msg):
    pass


SMALL = '{"ipam": {"subnet": "10.9.0.0/29"}}'


class LowestFree(unittest.TestCase):
    def add(self, store, container, conf=SMALL):
        return ipam_core.add(store, log, container, "eth0", conf)[0]

    def test_hands_out_the_lowest_free_address_again_after_a_release(self):
        s = Store()
        self.assertEqual(self.add(s, "a"), [("10.9.0.2/29", "10.9.0.1")])
        self.assertEqual(self.add(s, "b")[0][0], "10.9.0.3/29")
        ipam_core.delete(s, log, "a", "eth0", SMALL)
        self.assertEqual(self.add(s, "c")[0][0], "10.9.0.2/29")

    def test_exhaustion_is_code_50_in_add_and_status(self):
        s = Store()
        for c in "abcde":
            self.add(s, c)
        with self.assertRaises(ipam_core.IpamError) as e:
            self.add(s, "z")
        self.assertEqual(e.exception.code, 50)
        with self.assertRaises(ipam_core.IpamError) as e:
            ipam_core.status(s, SMALL)
        self.assertEqual(e.exception.code, 50)

    def test_a_second_add_for_one_attachment_is_refused(self):
        s = Store()
        self.add(s, "a")
        with self.assertRaises(ipam_core.IpamError) as e:
            self.add(s, "a")
        self.assertEqual(e.exception.code, 100)
        ipam_core.check(s, "a", "eth0", SMALL)

    def test_gc_keeps_only_valid_attachments(self):
        s = Store()
        for c in "abc":
            self.add(s, c)
        ipam_core.gc(s, log, [SimpleNamespace(container_id="b", ifname="eth0")])
        self.assertEqual([owner for owner, _ in s.leased.values()], ["b"])

    def test_range_start_and_gateway_are_honoured_and_bad_subnets_are_code_7(self):
        conf = '{"ipam": {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "gateway": "10.1.0.10"}}'
        self.assertEqual(self.add(Store(), "a", conf), [("10.1.0.11/24", "10.1.0.10")])
        with self.assertRaises(ipam_core.IpamError) as e:
            self.add(Store(), "a", '{"ipam": {"subnet": "10.9.0.0/33"}}')
        self.assertEqual(e.exception.code, 7)


if __name__ == "__main__":
    unittest.main()
