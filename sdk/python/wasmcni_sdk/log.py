"""The host's log, from anywhere in a plugin: `log.info("allocated ...")`.

The component edge points it at the WIT `log` import and the testing host
captures it; anywhere else it goes to stderr."""

import sys

LEVELS = ("error", "warn", "info", "debug")


def _stderr(level, msg):
    print("[%s] %s" % (level, msg), file=sys.stderr)


_sink = _stderr


def set_sink(sink):
    """Sends every message to `sink(level, msg)`; returns the previous sink."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def emit(level, msg):
    if level not in LEVELS:
        raise ValueError("log level %r is not one of %s" % (level, ", ".join(LEVELS)))
    _sink(level, msg)


def error(msg):
    emit("error", msg)


def warn(msg):
    emit("warn", msg)


def info(msg):
    emit("info", msg)


def debug(msg):
    emit("debug", msg)
