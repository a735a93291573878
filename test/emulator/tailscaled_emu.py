#!/usr/bin/python3
"""tailscaled LocalAPI emulator: the test double for a daemon that cannot run here.

It serves /localapi/v0/* on a unix socket the way tailscaled >= 1.32.3 does
(shared/spec/localapi.md is the specification), strict by default: a wrong
Host, a Referer or an Origin gets 403 "invalid localapi request", peer
credentials decide who may fetch certificates, whois errors carry the exact
status and text, large bodies are chunked like Go's net/http chunks them, and
certificates renew on tailscaled's schedule.  A second unix socket (the
control channel) lets tests inspect and steer it at run time.

Standard library plus `cryptography`; run with /usr/bin/python3.
This is the command line; the code is the package tsemu/ next to this file.
See README.md next to this file for the modules, the tailnet file format and
the control API.
"""

import os
import sys

# The package next to this file, wherever this file is run from (a staged copy
# included) and also under -I, which puts no script directory on sys.path.
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from tsemu.emulator import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
