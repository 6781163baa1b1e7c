"""wasmcni plugins in Python: the SDK's model of the WIT contract
(wasmcni:plugin@1.2.0) with `ipaddress` values, a complete host-local style
IPAM (`range_ipam`), policy and network policy bases, and an in-memory host
for tests (`testing`). Only `wasmcni_sdk.component` touches the bindings
componentize-py generates; everything else runs under plain CPython."""

# The version of the WIT package this SDK binds (wit/wasmcni.wit).
WIT_VERSION = "1.2.0"
