"""The emulator's log: one line per event on stderr."""

import sys
import time


def log(msg):
    sys.stderr.write("%s tailscaled-emu: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()
