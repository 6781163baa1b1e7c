"""What the runtime asked for, in the SDK's model: the WIT `invocation` with
`ipaddress` values. The addresses and MAC it asked for come typed and
checked by the host (from CNI_ARGS, `args` and `runtimeConfig`)."""

import json
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .errors import config_error
from .ip import Address
from .result import CniResult


def parse_config(text):
    """A plugin's config JSON as a dict; a malformed one is the runtime's error 7."""
    try:
        config = json.loads(text)
    except ValueError as e:
        raise config_error("invalid plugin config: %s" % e) from None
    if not isinstance(config, dict):
        raise config_error("invalid plugin config: expected a JSON object")
    return config


@dataclass(kw_only=True)
class Invocation:
    container_id: str
    ifname: str
    network_name: str
    # The plugin's own config object (this entry of the conflist), as JSON.
    config: str
    # CNI_NETNS, for a result's `sandbox` only: the host binds every
    # container-side call to it. None when absent or gone (DEL).
    netns: Optional[str] = None
    # CNI_ARGS, already split: [("K8S_POD_NAMESPACE", "prod"), ...].
    args: List[Tuple[str, str]] = field(default_factory=list)
    requested_ips: List[Address] = field(default_factory=list)
    # Six bytes, most significant first.
    requested_mac: Optional[bytes] = None
    # The previous plugin's result, whatever cniVersion the runtime speaks.
    prev_result: Optional[CniResult] = None

    def config_json(self):
        return parse_config(self.config)

    def arg(self, key):
        """The value of `key` in CNI_ARGS, or None."""
        return next((v for k, v in self.args if k == key), None)

    def pod_namespace(self):
        """The pod's Kubernetes namespace (CNI_ARGS `K8S_POD_NAMESPACE`), if given."""
        return self.arg("K8S_POD_NAMESPACE")
