"""The tailscaled LocalAPI emulator (../tailscaled_emu.py is its command line).

Modules, each importing only those above it:

    log        the log line on stderr
    gocompat   Go-compatible encodings (encoding/json, strconv.Quote, time,
               netip and net/url parsing, header helpers)
    tailnet    the tailnet model: a JSON description compiled into tailscaled's shapes
    certs      the test CA and the certificate store that renews on schedule
    faults     the faults the control channel injects
    http1      HTTP/1.x on raw sockets with Go net/http's framing
    listeners  unix-socket listeners and peer credentials
    localapi   the LocalAPI: request checks, routes, permissions, handlers
    control    the control channel tests steer the emulator with
    emulator   the Emulator that ties them together, and main()

README.md next to tailscaled_emu.py documents the tailnet file, the control
API and what is emulated.
"""
