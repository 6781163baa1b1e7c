"""CNI errors with the spec's codes (1-99) and wasmcni's own (100 and up),
as the host uses them. A plugin raises `CniError`; the component edge turns
it into the WIT `cni-error`."""

INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
LIMITED_CONNECTIVITY = 51
PLUGIN_FAILURE = 100
# A plugin asked for something outside its capabilities.
CAPABILITY_DENIED = 101
# The kernel refused a netlink or sysctl request.
KERNEL = 102
POLICY_DENIED = 103


class CniError(Exception):
    def __init__(self, code, msg, details=""):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def __str__(self):
        return "%s (code %d)" % (self.msg, self.code)

    def __repr__(self):
        return "CniError(%d, %r, %r)" % (self.code, self.msg, self.details)


def config_error(msg):
    """Code 7: the network configuration is invalid."""
    return CniError(INVALID_CONFIG, msg)


def plugin_error(msg):
    """Code 100: a plugin-specific failure."""
    return CniError(PLUGIN_FAILURE, msg)


def internal_error(e):
    """Code 100 for an exception a plugin did not mean to raise (a bug)."""
    return plugin_error("internal error: %s: %s" % (type(e).__name__, e))


def guard(f, *args):
    """Calls f; any exception other than a CniError becomes `internal_error`.

    Inside the component an uncaught exception would trap with no message
    (componentize-py formats a traceback, which lazily imports modules from
    the stubbed filesystem), so the edge and the testing host both call a
    plugin through this."""
    try:
        return f(*args)
    except CniError:
        raise
    except Exception as e:
        raise internal_error(e) from e
