"""An IPAM plugin in the SDK's model: the `handler` export of the `ipam`
world as a class, over the host's lease store. `range_ipam.RangeIpam` is a
complete one; subclass `Ipam` for full control."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import List, Optional, Protocol

from .errors import guard
from .invocation import Invocation
from .ip import Address
from .result import CniResult, check_result


@dataclass(frozen=True)
class Lease:
    ip: Address
    container_id: str
    ifname: str


@dataclass(frozen=True)
class Attachment:
    """One attachment the runtime still considers valid (GC)."""
    container_id: str
    ifname: str


class Store(Protocol):
    """The host's lease store (the WIT `ipam-store`). The host holds the
    network's lock for the whole call; its failures raise CniError."""

    def reserve(self, ip: Address, container_id: str, ifname: str, range_set: int) -> bool:
        """Records `ip` for the container; False when it is already taken."""

    def last_reserved(self, range_set: int) -> Optional[Address]:
        """The last address reserved in range set `range_set`, if any."""

    def leases(self) -> List[Lease]:
        """Every lease of this network."""

    def release_owner(self, container_id: str, ifname: str) -> List[Address]:
        """Frees the leases of (container, ifname); returns the freed addresses."""


class Ipam(ABC):
    """One method per CNI command; each raises CniError to fail."""

    @abstractmethod
    def add(self, inv: Invocation, store: Store) -> CniResult: ...

    @abstractmethod
    def delete(self, inv: Invocation, store: Store) -> None: ...

    @abstractmethod
    def check(self, inv: Invocation, store: Store) -> None: ...

    @abstractmethod
    def status(self, inv: Invocation, store: Store) -> None:
        """Whether an ADD could be served now (code 50 when a range is exhausted)."""

    @abstractmethod
    def gc(self, inv: Invocation, valid: List[Attachment], store: Store) -> None:
        """Frees whatever no valid attachment owns."""


def serve_add(plugin, inv, store):
    """An ADD as the host gets it: a bug is code 100, and the result is checked."""
    return check_result(guard(plugin.add, inv, store))
