#!/usr/bin/python3
"""Fault soak: mixed tailnet traffic against httpd with both modules while
the tailscaled emulator cycles through its faults and certificates renew.
Minutes long, not part of the test suite.  Run as root; it re-runs itself in
a private network namespace (unshare -n) so that it does not collide with a
test run using the tailnet namespace at the same time:

    /usr/bin/python3 test/soak/fault_soak.py [--phase 15] [--cycles 1]
        [--workers 8] [--mpm event] [--json out/soak/report.json]

Timeline: a healthy warm-up, then for each fault mode (down, slow, reset,
garbage, oversized, http500, http429, and the store faults store-gw,
store-ro, store-full, store-gone) a fault phase followed by a healthy phase,
--cycles times (--faults picks some).  The store (mod_md_tailscale's
MDTailscaleStoreDir) is a tmpfs mounted for the run; a store fault makes it
group-writable, read-only, full or deleted, and httpd is restarted
gracefully in the middle of the phase, as logrotate would.  Clients (test/soak/loadgen.py, inside the tailnet
namespace) are the sample tailnet's nodes plus a stranger; they fetch
protected paths (Require tailscale-user / -tag rules) and a public one, over
HTTP and over TLS with the certificate mod_md_tailscale manages.  The
emulator issues 90-second certificates, so mod_md_tailscale renews and
activates (graceful restart) several times during the run.

Report (stdout, and JSON with --json):
- requests served, by status;
- protected responses served while tailscaled was unhealthy: must be 0.
  The unhealthy window of a fault is [on + T, off]: `on` is when the fault
  was surely active (the control call returned), `off` when it was surely
  still active (before the call clearing it), and T is the documented cache
  lifetime (AuthTailscaleCacheTimeout, set to 2 s here; a connection and the
  process cache may keep serving an identity learnt before the fault that
  long) plus 0.25 s of slack.  A protected 200 whose request started and
  ended inside that window counts;
- wrong grants at any time (a protected 200 to a client the rule does not
  admit): must be 0;
- crashes (child exit signals, sanitizer reports in the error log): must be 0;
- httpd parent fd count and RSS, children's total RSS and count, before
  (after warm-up) and after (final healthy phase);
- certificates activated (TS02034 "installed and in use" lines) and whether
  the certificate served at the end verifies against the emulator's CA, is
  valid now, and is the one tailscaled holds;
- httpd stops (a probe every 0.5 s finds the parent gone or the plain port
  closed): must be 0;
- probes that got an expired certificate while the store held a valid one:
  must be 0.
Exit status 0 only if the "must be 0" numbers are 0 and the final
certificate is valid.
"""

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lib.emulator import Emulator, DEFAULT_TAILNET  # noqa: E402
from lib.httpd import Httpd  # noqa: E402
from lib import netns as netns_lib  # noqa: E402
from lib import staging  # noqa: E402

SECRET = "SOAK-PROTECTED-CONTENT"
DOMAIN = "web1.tail1234.ts.net"
CACHE_TTL = 2.0
SLACK = 0.25
FAULTS = ["down", "slow", "reset", "garbage", "oversized", "http500", "http429"]
STORE_FAULTS = ["store-gw", "store-ro", "store-full", "store-gone"]

# path -> clients the rule admits (everything under /p/ is protected)
RULES = {
    "/p/users/s.txt": {"laptop", "phone", "juergen-pc", "friend"},
    "/p/alice/s.txt": {"laptop"},
    "/p/ci/s.txt": {"ci-runner"},
    "/pub/index.html": None,   # public
}

CONFIG = f"""
AuthTailscaleURL @SOCKET@
AuthTailscaleTimeout 1s
AuthTailscaleCacheTimeout {CACHE_TTL:g}
AuthTailscaleNegativeCacheTimeout {CACHE_TTL:g}
Alias /pub/ "@DOCROOT@/"
AliasMatch "^/p/[a-z]+/s.txt$" "@DOCROOT@/secret.txt"
<Location /p/users/>
  Require tailscale-user *
</Location>
<Location /p/alice/>
  Require tailscale-user alice@example.com
</Location>
<Location /p/ci/>
  Require tailscale-tag tag:ci
</Location>

MDTailscaleStoreDir @DIR@/md
MDTailscaleCheckInterval 5s
MDTailscaleRetryDelay 1s 5s
MDRenewWindow 33%
<MDomain {DOMAIN}>
  MDCertificateProtocol tailscale
  MDCertificateAuthority @SOCKET@
</MDomain>
Listen 100.100.0.1:@PORT2@ https
<VirtualHost 100.100.0.1:@PORT2@>
  ServerName {DOMAIN}
  SSLEngine on
</VirtualHost>
"""


def proc_stats(pid):
    """(fd count, RSS kB) of a process, or (None, None)."""
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))
        return fds, rss
    except (OSError, AttributeError):
        return None, None


def httpd_stats(h):
    ppid = h.pid()
    fds, rss = proc_stats(ppid)
    kids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == ppid:
                kids.append(int(d.name))
        except (OSError, ValueError, IndexError):
            pass
    child_rss = sum((proc_stats(k)[1] or 0) for k in kids)
    return {"parent_pid": ppid, "parent_fds": fds, "parent_rss_kb": rss,
            "children": len(kids), "children_rss_kb": child_rss}


def served_cert(h, cafile):
    """(fingerprint, verified, not_after) of the certificate served for DOMAIN."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    try:
        with socket.create_connection(("100.100.0.1", h.extra_ports[0]), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=DOMAIN) as t:
                der = t.getpeercert(binary_form=True)
                info = t.getpeercert()
                return hashlib.sha256(der).hexdigest(), True, info.get("notAfter")
    except (OSError, ssl.SSLError) as e:
        return None, False, str(e)


def store_valid_fps(store):
    """SHA-256 fingerprints of the valid certificates in the store now."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    fps = set()
    now = datetime.datetime.now(datetime.timezone.utc)
    for chain in Path(store, "domains", DOMAIN).glob("g*/pubcert.pem"):
        try:
            c = x509.load_pem_x509_certificate(chain.read_bytes())
        except (OSError, ValueError):
            continue
        nb = c.not_valid_before.replace(tzinfo=datetime.timezone.utc)
        na = c.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        if nb <= now < na:
            fps.add(c.fingerprint(hashes.SHA256()).hex())
    return fps


def served_expired(h, cafile):
    """True when the certificate served for DOMAIN fails only for its dates."""
    fp, ok, err = served_cert(h, cafile)
    return not ok and "expired" in str(err)


class StoreFault:
    """Apply and revert one store fault on the tmpfs store."""

    def __init__(self, store):
        self.store = Path(store)

    def apply(self, mode):
        if mode == "store-gw":
            os.chmod(self.store, 0o775)
        elif mode == "store-ro":
            subprocess.run(["mount", "-o", "remount,ro", str(self.store)], check=True)
        elif mode == "store-full":
            with open(self.store / "filler", "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
        elif mode == "store-gone":
            for child in self.store.iterdir():
                shutil.rmtree(child, ignore_errors=True)

    def revert(self, mode):
        if mode == "store-gw":
            os.chmod(self.store, 0o755)
        elif mode == "store-ro":
            subprocess.run(["mount", "-o", "remount,rw", str(self.store)], check=True)
        elif mode == "store-full":
            (self.store / "filler").unlink()


def main():
    ap = argparse.ArgumentParser(description="fault soak (see the module docstring)")
    ap.add_argument("--phase", type=float, default=15.0, help="seconds per phase")
    ap.add_argument("--cycles", type=int, default=1)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--mpm", default="event", choices=("event", "prefork", "worker"))
    ap.add_argument("--cert-lifetime", type=float, default=90.0)
    ap.add_argument("--faults", default=",".join(FAULTS + STORE_FAULTS),
                    help="comma-separated fault modes to cycle through")
    ap.add_argument("--json", help="write the report here as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("fault_soak: run as root (network namespace, certificates)")
    if os.environ.get("TSL_SOAK_ISOLATED") != "1" and shutil.which("unshare"):
        # Run in a private network namespace: the tailnet namespace's host-side
        # addresses would collide with a test run going on at the same time.
        os.environ["TSL_SOAK_ISOLATED"] = "1"
        os.execvp("unshare", ["unshare", "-n", "--", "sh", "-c",
                              'ip link set lo up && exec "$0" "$@"', sys.executable,
                              str(Path(__file__).resolve())] + sys.argv[1:])

    work = Path(tempfile.mkdtemp(prefix="tsl-soak-"))
    os.chmod(work, 0o755)
    staging.use(work / "staged")   # the modules as www-data can read them
    ns = netns_lib.TailnetNamespace()
    try:
        ns.create()
    except netns_lib.NetnsUnavailable as e:
        sys.exit(f"fault_soak: network namespaces unavailable: {e}")
    # Teardown steps, run last-registered first; every one runs even when an
    # earlier one fails (the load generator, httpd, the emulator, the namespace).
    cleanup = contextlib.ExitStack()
    cleanup.callback(ns.destroy)
    records, windows, loadgen, samples = [], [], None, []
    probe = {"stops": 0, "expired_while_valid_stored": 0, "probes": 0, "run": False}
    report = {}
    try:
        tn = json.loads(Path(DEFAULT_TAILNET).read_text())
        tn["certs"] = dict(tn.get("certs") or {}, lifetime=a.cert_lifetime, issue_delay=0.3)
        emu = Emulator()
        cleanup.callback(emu.stop)
        (work / "emu").mkdir()
        emu.start(work / "emu", tailnet=tn)
        h = Httpd(work / "httpd", config=CONFIG, mpm=a.mpm,
                  modules=["ssl", "socache_shmcb", "alias"],
                  our=["authnz_tailscale", "md_tailscale"], socket_path=emu.socket_path,
                  tailnet=True)
        cleanup.callback(h.stop, check_crashes=False)
        store = h.dir / "md"
        store.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs",
                        str(store)], check=True)
        cleanup.callback(lambda: subprocess.run(["umount", "-l", str(store)]))
        store_fault = StoreFault(store)
        h.write_file("secret.txt", SECRET + "\n")
        h.start()
        # the first certificate is fetched at startup; wait until it is served
        deadline = time.time() + 60
        while time.time() < deadline and not served_cert(h, emu.ca_pem_path)[1]:
            time.sleep(0.5)
        phases = [("healthy", a.phase)]
        for _ in range(a.cycles):
            for f in a.faults.split(","):
                phases += [(f, a.phase), ("healthy", a.phase)]
        total = sum(p[1] for p in phases) + 5
        clients = {name: v4 for name, (v4, _) in netns_lib.CLIENTS.items()}
        job = {"server": netns_lib.SERVER_V4, "port": h.ts_port, "tls_port": h.extra_ports[0],
               "sni": DOMAIN, "cafile": emu.ca_pem_path, "clients": clients,
               "paths": list(RULES), "duration": total, "workers": a.workers,
               "secret": SECRET}
        loadgen = subprocess.Popen(["ip", "netns", "exec", ns.ns, "/usr/bin/python3",
                                    str(HERE / "loadgen.py")], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        cleanup.callback(lambda: loadgen.poll() is None and loadgen.kill())
        loadgen.stdin.write(json.dumps(job))
        loadgen.stdin.close()

        def reader():
            for line in loadgen.stdout:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
        rt = threading.Thread(target=reader, daemon=True)
        rt.start()

        before = None
        samples = []
        t_start = time.time()
        probe = {"stops": 0, "expired_while_valid_stored": 0, "probes": 0, "run": True}
        parent = h.pid()

        def prober():
            # httpd stays up, and never serves an expired certificate while
            # the store holds a valid one
            down = False
            while probe["run"]:
                pid = h.pid()
                gone = not pid or pid != parent or not os.path.exists(f"/proc/{pid}") \
                    or not h._port_open(h.port)
                if gone and not down:
                    probe["stops"] += 1
                down = gone
                if store_valid_fps(store) and served_expired(h, emu.ca_pem_path) \
                        and store_valid_fps(store):
                    probe["expired_while_valid_stored"] += 1
                probe["probes"] += 1
                time.sleep(0.5)
        pt = threading.Thread(target=prober, daemon=True)
        pt.start()
        for i, (mode, secs) in enumerate(phases):
            if mode == "healthy":
                print(f"[{time.strftime('%H:%M:%S')}] healthy {secs:g}s", flush=True)
                time.sleep(secs)
                samples.append(dict(httpd_stats(h), t=round(time.time() - t_start)))
                if before is None:
                    before = samples[-1]
                continue
            # slow: beyond AuthTailscaleTimeout.  http429: a short Retry-After;
            # with the default hour mod_md_tailscale rightly waits longer than
            # the soak's 90-second certificates live.
            print(f"[{time.strftime('%H:%M:%S')}] fault {mode} {secs:g}s", flush=True)
            if mode in STORE_FAULTS:
                # not a tailscaled fault: no unhealthy window for identities
                store_fault.apply(mode)
                time.sleep(secs / 2)
                try:
                    h.graceful()
                except Exception as e:     # counted by the prober as a stop
                    print(f"graceful restart during {mode} failed: {e}", flush=True)
                time.sleep(secs / 2)
                store_fault.revert(mode)
                continue
            kw = {"slow": {"delay": 2.5}, "http429": {"retry_after": 5}}.get(mode, {})
            emu.fault(mode, **kw)
            on = time.time()
            time.sleep(secs)
            off = time.time()
            emu.clear_fault()
            windows.append((mode, on, off))
        probe["run"] = False
        pt.join(timeout=30)
        loadgen.wait(timeout=120)
        rt.join(timeout=30)
        time.sleep(2)
        after = httpd_stats(h)
        fp, verified, not_after = served_cert(h, emu.ca_pem_path)
        certs = emu.certs()
        held = {d: c.get("sha256") for d, c in certs.items()}
        activations = len(re.findall(r"TS02034", h.error_log()))
        crashes = h.crashes()
    finally:
        cleanup.close()

    # ---- analysis ---------------------------------------------------------
    by_status = collections.Counter(r["s"] for r in records)
    protected = [r for r in records if r["p"].startswith("/p/")]
    unhealthy_served, wrong_grants = [], []
    for r in protected:
        if r["s"] == 200 and r["ok"]:
            if r["c"] not in RULES[r["p"]]:
                wrong_grants.append(r)
            for mode, on, off in windows:
                if r["t0"] >= on + CACHE_TTL + SLACK and r["t1"] <= off:
                    unhealthy_served.append(dict(r, fault=mode, after_on=round(r["t0"] - on, 3)))
    in_fault = collections.Counter()
    for r in protected:
        for mode, on, off in windows:
            if r["t0"] >= on + CACHE_TTL + SLACK and r["t1"] <= off:
                in_fault[(mode, r["s"])] += 1
    cert_fps = sorted({r["fp"] for r in records if r.get("fp")})
    errors = collections.Counter(r.get("err", "").split(":")[0] for r in records if r["s"] == 0)
    with open(work / "records.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    (work / "windows.json").write_text(json.dumps(windows))
    final_ok = bool(verified and fp and fp in held.values())
    report = {
        "requests": len(records),
        "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "client_side_failures": dict(errors.most_common(8)),
        "protected_requests": len(protected),
        "protected_served_while_unhealthy": len(unhealthy_served),
        "wrong_grants": len(wrong_grants),
        "crashes": len(crashes),
        "crash_lines": crashes[:20],
        "fault_windows": [{"mode": m, "seconds": round(off - on, 1)} for m, on, off in windows],
        "protected_in_fault_windows_by_status": {f"{m}:{s}": n for (m, s), n in
                                                 sorted(in_fault.items())},
        "httpd_before": before,
        "httpd_after": after,
        "httpd_samples_after_each_healthy_phase": samples,
        "certificates_activated": activations,
        "httpd_stops": probe["stops"],
        "probes": probe["probes"],
        "expired_served_while_valid_stored": probe["expired_while_valid_stored"],
        "distinct_certificates_seen_by_clients": len(cert_fps),
        "final_certificate": {"sha256": fp, "verifies": verified, "not_after": not_after,
                              "held_by_tailscaled": fp in held.values() if fp else False},
        "examples_unhealthy_served": unhealthy_served[:5],
        "examples_wrong_grants": wrong_grants[:5],
    }
    print(json.dumps(report, indent=2))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=2))
    if a.keep:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    ok = (not unhealthy_served and not wrong_grants and not crashes and final_ok
          and not probe["stops"] and not probe["expired_while_valid_stored"])
    print("SOAK " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
