"""Lets pyserial-based upload tools (nodemcu-uploader) use `nodemcu-sim serial --pty PATH`.

A pseudo-terminal has no RTS and DTR lines, so pyserial's attempt to set them fails with
ENOTTY before the tool says a word. On a board those lines only reset it or select its boot
mode, which a simulated device does not need, so here a refusal to set them is ignored.

Use: PYTHONPATH=scripts/pty-modem-lines nodemcu-uploader --port PATH ...
"""
import errno

try:
    import serial.serialposix as _posix
except ImportError:  # no pyserial: nothing to adjust
    _posix = None


def _tolerant(update):
    def wrapped(self):
        try:
            update(self)
        except OSError as e:
            if e.errno not in (errno.ENOTTY, errno.EINVAL):
                raise

    return wrapped


if _posix is not None:
    for _name in ("_update_rts_state", "_update_dtr_state"):
        setattr(_posix.Serial, _name, _tolerant(getattr(_posix.Serial, _name)))
