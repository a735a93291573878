#!/usr/bin/python3
"""Build the Debian packages, install them into the system apache2 and prove
they work there, then remove every trace.  Run it as build/check-packages
(docs/packaging.md); it is slow and changes the system while it runs, so it
is not part of build/check.

  1. dpkg-buildpackage -us -uc -b in a copy of the working tree; lintian.
  2. Back up /etc/apache2, /var/lib/apache2, /var/log/apache2, ... (tar).
  3. dpkg -i the three packages; a2enmod authnz_tailscale md_tailscale.
  4. Start the tailscaled emulator on the default socket
     (/var/run/tailscale/tailscaled.sock) and a site using
     `Require tailscale-user` and `<MDomain web1.tail1234.ts.net>` with no
     socket directive, so the modules' defaults are what is tested.
  5. apache2ctl start (the real /etc/apache2 configuration, ports 80/443);
     requests from 127.0.0.1 get an identity through the emulator's proxymap;
     the certificate served on 443 must verify against the emulator's CA.
  6. apache2ctl stop, undo the test's own a2enmod/a2ensite, dpkg --purge,
     check that the packages left nothing behind, restore the backup and
     check that every backed-up path is exactly as before.

Exit status: 0 passed, 1 failed, 77 skipped (cannot run here: not root, a
system apache2 or tailscaled in the way, packages already installed, ...).
"""

import argparse
import glob
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import sysstate  # noqa: E402
import webclient  # noqa: E402

PACKAGES = ["libapache2-mod-authnz-tailscale", "libapache2-mod-md-tailscale",
            "tailscale-apache-tools"]
DOMAIN = "web1.tail1234.ts.net"          # the emulator's self node
SOCKET = "/var/run/tailscale/tailscaled.sock"
SITE = "tsl-pkgtest"
SITE_FILE = "/etc/apache2/sites-available/%s.conf" % SITE
# Everything the test (apache2, a2enmod, the packages' scripts, the module's
# certificate store, the emulator's socket) may create or change outside its
# own temporary directory.  Backed up, restored, compared.
BACKUP_ROOTS = ["/etc/apache2", "/var/lib/apache2", "/var/log/apache2",
                "/var/cache/apache2", "/run/apache2", "/run/lock/apache2",
                "/run/tailscale"]
POLICY_RC_D = "/usr/sbin/policy-rc.d"
# a2dismod leaves a marker here; a package's postinst then leaves the module off.
DISABLED_BY_ADMIN = "/var/lib/apache2/module/disabled_by_admin"
ERROR_LOG = "/var/log/apache2/error.log"
# Checked before building; after it, every file in the .debs is checked.
KNOWN_FILES = ["/usr/lib/apache2/modules/mod_authnz_tailscale.so",
               "/usr/lib/apache2/modules/mod_md_tailscale.so",
               "/etc/apache2/mods-available/authnz_tailscale.load",
               "/etc/apache2/mods-available/md_tailscale.load",
               "/usr/bin/tsl-check"]
SKIP = 77


class Skip(Exception):
    pass


class Fail(Exception):
    pass


class Interrupted(BaseException):
    pass


# ---------------------------------------------------------------------------
# output

T0 = time.monotonic()
FAILURES = []


def say(msg):
    print("[%5.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def ok(msg):
    say("ok   " + msg)


def fail(msg, fatal=True):
    say("FAIL " + msg)
    FAILURES.append(msg)
    if fatal:
        raise Fail(msg)


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (": " + detail if detail else ""))


def run(cmd, check_rc=True, log=None, env=None, timeout=600, **kw):
    """Run a command; its output goes to log (a path) when given, else is
    returned.  A failure shows the command and the end of its output."""
    full_env = dict(os.environ, LC_ALL="C.UTF-8", DEBIAN_FRONTEND="noninteractive")
    full_env.update(env or {})
    if log:
        with open(log, "ab") as f:
            f.write(("\n$ %s\n" % " ".join(map(str, cmd))).encode())
            f.flush()
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=full_env,
                               timeout=timeout, **kw)
        out = ""
    else:
        r = subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                           timeout=timeout, **kw)
        out = r.stdout + r.stderr
    if check_rc and r.returncode != 0:
        if log:
            lines = open(log, errors="replace").readlines()
            errors = [ln for ln in lines if "error:" in ln.lower() or "error " in ln.lower()]
            tail = "".join(errors[:20]) + "...\n" + "".join(lines[-10:]) + \
                "(whole output: %s)" % log
        else:
            tail = out
        fail("%s exited %d\n%s" % (" ".join(map(str, cmd)), r.returncode, tail.rstrip()))
    return r.returncode, out


# ---------------------------------------------------------------------------
# preflight: refuse to run where the test would break something

def apache_envvars():
    out = subprocess.run(["sh", "-c", ". /etc/apache2/envvars && echo \"$APACHE_PID_FILE\""],
                         capture_output=True, text=True).stdout.strip()
    return {"pid_file": out or "/var/run/apache2/apache2.pid"}


def port_in_use(port):
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            s = socket.socket(fam, socket.SOCK_STREAM)
        except OSError:
            continue
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
        except OSError:
            return True
        finally:
            s.close()
    return False


def package_paths(debs):
    """Files (not directories) the packages install, from the .debs."""
    paths = set()
    for deb in debs:
        out = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True,
                             check=True).stdout
        listing = subprocess.run(["tar", "-t"], input=out, capture_output=True,
                                 check=True).stdout.decode()
        for line in listing.splitlines():
            p = "/" + line.lstrip("./")
            if not line.endswith("/"):
                paths.add(p)
    return sorted(paths)


def admin_disabled_markers(state_dir=None):
    """The modules of our packages that an earlier a2dismod marked disabled_by_admin."""
    state_dir = state_dir or DISABLED_BY_ADMIN
    return [m for m in ("authnz_tailscale", "md_tailscale") if os.path.lexists(os.path.join(state_dir, m))]


def admin_disabled_explanation(markers, state_dir=None):
    """Why leftover disabled_by_admin markers stop this test, and how to clear them."""
    state_dir = state_dir or DISABLED_BY_ADMIN
    paths = " ".join(os.path.join(state_dir, m) for m in markers)
    return ("%s exists: an earlier 'a2dismod %s' (for example after make install) "
            "recorded that the administrator turned the module off, so a package's "
            "postinst rightly leaves it off and this test cannot check that installing "
            "the package enables authnz_tailscale. If that is no longer wanted, clear the "
            "marker: rm %s (a2enmod also removes it, but enables the module; a later "
            "a2dismod writes it again)" % (paths, " ".join(markers), paths))


def preflight(need_build):
    if os.geteuid() != 0:
        raise Skip("needs root: it installs packages into the system apache2 and "
                   "starts it on ports 80 and 443")
    tools = ["dpkg", "dpkg-deb", "apache2ctl", "a2enmod", "a2dismod", "a2ensite", "tar"]
    if need_build:
        tools += ["dpkg-buildpackage", "git"]
    missing = [t for t in tools if not shutil.which(t)]
    if missing or not os.path.exists("/etc/apache2/envvars"):
        raise Skip("missing %s: run build/check-packages, which installs what it needs"
                   % (", ".join(missing) or "/etc/apache2/envvars (package apache2)"))
    if os.path.isdir("/run/systemd/system"):
        say("note: systemd is running; the test still uses apache2ctl directly")
    pid_file = apache_envvars()["pid_file"]
    try:
        pid = int(open(pid_file).read().split()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    if pid and sysstate.alive(pid):
        raise Skip("the system apache2 is running (pid %d from %s); this test starts and "
                   "stops it with the real /etc/apache2 configuration, so it refuses to "
                   "touch a running server: stop it first (apache2ctl stop)" % (pid, pid_file))
    for port in (80, 443):
        if port_in_use(port):
            raise Skip("port %d is in use (ss -ltnp 'sport = :%d' shows by what); the "
                       "system apache2 needs it for this test" % (port, port))
    installed = []
    for p in PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", p],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() not in ("", "un", "pn"):
            installed.append("%s (%s)" % (p, r.stdout.strip()))
    if installed:
        raise Skip("already installed: %s; this test would purge them. Remove them first "
                   "(dpkg --purge %s)" % (", ".join(installed), " ".join(PACKAGES)))
    if os.path.lexists(SOCKET):
        raise Skip("%s exists: a tailscaled (or another emulator) is using the default "
                   "socket, which this test's emulator needs" % SOCKET)
    markers = admin_disabled_markers()
    if markers:
        raise Skip(admin_disabled_explanation(markers))
    check_no_foreign_files(KNOWN_FILES)
    if os.path.lexists(SITE_FILE):
        raise Skip("%s exists, probably left by an interrupted run: check it and remove "
                   "it (a2dissite %s)" % (SITE_FILE, SITE))


def check_no_foreign_files(paths):
    present = [p for p in paths if os.path.lexists(p)]
    if present:
        raise Skip("files the packages would install already exist, probably from "
                   "`make install`: %s. Remove them (make uninstall) first"
                   % ", ".join(present))


# ---------------------------------------------------------------------------
# build

# The tree may belong to another user than the one building (--build-only).
GIT = ["git", "-c", "safe.directory=%s" % REPO, "-C", str(REPO)]


def copy_tree(dest, head=False):
    """The working tree as it is now (tracked and untracked, not ignored),
    without compiled binaries; or, with head, the last commit."""
    if head:
        Path(dest).mkdir(parents=True)
        archive = subprocess.run(GIT + ["archive", "HEAD"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return sum(len(f) for _, _, f in os.walk(dest))
    names = subprocess.run(GIT + ["ls-files", "-co", "--exclude-standard",
                            "-z"], capture_output=True, check=True).stdout.split(b"\0")
    n = 0
    for raw in names:
        if not raw:
            continue
        rel = raw.decode()
        src = REPO / rel
        if not src.is_file() or src.is_symlink() and not src.exists():
            continue
        with open(src, "rb") as f:
            if f.read(4) == b"\x7fELF":
                continue
        dst = Path(dest) / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        n += 1
    return n


def build(workdir, head=False):
    src = Path(workdir) / "src"
    n = copy_tree(src, head)
    say("building in %s (%d files from %s)" % (src, n, "HEAD" if head else "the working tree"))
    log = Path(workdir) / "build.log"
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], log=log, cwd=src, timeout=1800)
    debs = []
    for p in PACKAGES:
        found = glob.glob(str(Path(workdir) / ("%s_*.deb" % p)))
        check(len(found) == 1, "built %s" % p, "not among %s" % os.listdir(workdir))
        debs.append(found[0])
        say("     %-40s %7d bytes" % (os.path.basename(found[0]), os.path.getsize(found[0])))
    changes = glob.glob(str(Path(workdir) / "*.changes"))
    return debs, changes[0] if changes else None


def lintian(targets):
    if not shutil.which("lintian"):
        say("lintian is not installed: skipping the lintian check")
        return
    r = subprocess.run(["lintian", "--pedantic", "-I", "-E", "--fail-on", "error,warning",
                        ] + list(targets), capture_output=True, text=True)
    lines = [ln for ln in (r.stdout + r.stderr).splitlines()
             if ln.strip() and "running with root privileges" not in ln]
    for ln in lines:
        say("     lintian: " + ln)
    check(r.returncode == 0, "lintian: no errors or warnings (%d info/pedantic tags)"
          % len(lines), "\n".join(lines))


# ---------------------------------------------------------------------------
# the system test

class Emulator:
    def __init__(self, workdir):
        self.state = Path(workdir) / "emulator-state"
        self.control_path = str(Path(workdir) / "emulator-control.sock")
        self.log = Path(workdir) / "emulator.log"
        self.proc = None
        self.made_dir = False

    def start(self):
        d = os.path.dirname(SOCKET)
        if not os.path.isdir(d):
            os.makedirs(d, mode=0o755)
            self.made_dir = True
        cmd = ["/usr/bin/python3", str(REPO / "test/emulator/tailscaled_emu.py"),
               "--socket", SOCKET, "--tailnet", str(REPO / "test/emulator/tailnet.json"),
               "--state-dir", str(self.state), "--control", self.control_path]
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.logf)
        deadline = time.monotonic() + 30
        line = b""
        while time.monotonic() < deadline and self.proc.poll() is None:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                line = self.proc.stdout.readline()
                break
        if line.strip() != b"READY":
            fail("the emulator did not print READY (%s):\n%s"
                 % (line, self.log.read_text(errors="replace")[-2000:]))
        ok("tailscaled emulator listening on the default socket %s (pid %d)"
           % (SOCKET, self.proc.pid))

    @property
    def ca(self):
        return str(self.state / "ca.pem")

    def proxymap(self, port, node):
        st, body = webclient.control(self.control_path, "POST", "/proxymap",
                                     {"addr": "127.0.0.1:%d" % port, "node": node})
        if st != 200:
            fail("proxymap 127.0.0.1:%d -> %s: %s %s" % (port, node, st, body))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                fail("the emulator did not stop on SIGTERM", fatal=False)
        if self.proc:
            self.logf.close()
        for p in (SOCKET, self.control_path):
            if os.path.lexists(p):
                os.unlink(p)
        if self.made_dir and os.path.isdir(os.path.dirname(SOCKET)):
            os.rmdir(os.path.dirname(SOCKET))


SITE_CONF = """\
# Written by build/check-packages (test/packaging/check_packages.py) while it
# runs; removed again with everything else it changed.
# Decisions of Require tailscale-* are debug messages; mod_md_tailscale stays
# at the stock level (its notices are always logged).
LogLevel authnz_tailscale:debug

# No MDCertificateAuthority and no AuthTailscaleURL: the default socket.
<MDomain {domain}>
    MDCertificateProtocol tailscale
</MDomain>

<Directory {www}>
    Require all granted
</Directory>

<VirtualHost *:80>
    ServerName {domain}
    DocumentRoot {www}
    <Location /private/>
        Require tailscale-user alice@example.com
    </Location>
</VirtualHost>

<VirtualHost *:443>
    ServerName {domain}
    DocumentRoot {www}
    SSLEngine on
    <Location /private/>
        Require tailscale-user alice@example.com
    </Location>
</VirtualHost>
"""


class SystemApache:
    def __init__(self):
        self.pid_file = apache_envvars()["pid_file"]
        self.started = False
        self.pids = set()

    def parent_pid(self):
        try:
            return int(open(self.pid_file).read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def remember_tree(self):
        pid = self.parent_pid()
        if pid:
            self.pids.update(sysstate.descendants(pid))

    def start(self):
        run(["apache2ctl", "configtest"])
        ok("apache2ctl configtest")
        self.started = True
        _, out = run(["apache2ctl", "start"])
        for ln in out.splitlines():
            say("     apache2ctl: " + ln)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pid = self.parent_pid()
            if pid and sysstate.alive(pid) and port_in_use(80):
                self.remember_tree()
                ok("apache2ctl start: system apache2 running (pid %d)" % pid)
                return
            time.sleep(0.2)
        fail("apache2 did not start:\n" + error_log_tail())

    def stop(self):
        if not self.started:
            return
        self.remember_tree()
        run(["apache2ctl", "stop"], check_rc=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(sysstate.alive(p) for p in self.pids):
            time.sleep(0.2)
        left = [p for p in self.pids if sysstate.alive(p)]
        if left:
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            fail("apache2 processes %s survived apache2ctl stop (killed)" % left, fatal=False)
        else:
            ok("apache2ctl stop: all %d apache2 processes gone" % len(self.pids))
        self.started = False


# Where this run's lines start in the error log: lines of earlier runs must
# not satisfy (or fail) its checks.  Set by remember_error_log_start().
ERROR_LOG_START = 0


def remember_error_log_start(path=ERROR_LOG):
    global ERROR_LOG_START
    try:
        ERROR_LOG_START = os.path.getsize(path)
    except OSError:
        ERROR_LOG_START = 0


def error_log(path=ERROR_LOG, start=None):
    """The error log's text from this run's start (all of it if it was truncated)."""
    start = ERROR_LOG_START if start is None else start
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size >= start:
                f.seek(start)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def error_log_tail(n=40):
    return "".join(error_log().splitlines(keepends=True)[-n:]) or "(no error.log lines from this run)"


def request(port, path, node=None, emu=None, tls=None):
    sock = webclient.bound_socket()
    if node:
        emu.proxymap(sock.getsockname()[1], node)
    return webclient.get(sock, port, path, DOMAIN, tls_context=tls, server_name=DOMAIN)


def wait_for_certificate(emu, timeout=120):
    """Connect to :443 until the served chain verifies against the emulator's
    CA for DOMAIN: first start serves a self-signed fallback, the module
    fetches the real certificate and triggers a graceful restart."""
    ctx = ssl.create_default_context(cafile=emu.ca)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", 443), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname=DOMAIN) as t:
                    return t.getpeercert(), last
        except (ssl.SSLError, OSError) as e:
            last = str(e)
        time.sleep(0.5)
    fail("no certificate for %s that verifies against %s within %ds (last: %s)\n%s"
         % (DOMAIN, emu.ca, timeout, last, error_log_tail()))


def exercise(emu, www):
    # Identity: Require tailscale-user over plain HTTP on port 80.
    r = request(80, "/")
    check(r.status == 200 and "tsl-pkgtest public" in r.body,
          "GET http://%s/ (no identity needed) -> 200" % DOMAIN, "%s %r" % (r.status, r.body[:200]))
    r = request(80, "/private/")
    check(r.status == 403, "GET /private/ from 127.0.0.1:%d, not a tailnet peer -> 403"
          % r.sport, "got %s" % r.status)
    r = request(80, "/private/", node="laptop", emu=emu)
    check(r.status == 200 and "tsl-pkgtest private" in r.body,
          "GET /private/ from 127.0.0.1:%d mapped to node laptop (alice@example.com) -> 200"
          % r.sport, "got %s %r" % (r.status, r.body[:200]))
    r = request(80, "/private/", node="phone", emu=emu)
    check(r.status == 403, "GET /private/ from 127.0.0.1:%d mapped to node phone "
          "(bob@example.com) -> 403" % r.sport, "got %s" % r.status)
    lines = [ln for ln in error_log().splitlines() if "TS01021" in ln]
    check(any("alice@example.com" in ln for ln in lines),
          "error.log has the TS01021 decisions (%d lines)" % len(lines), error_log_tail())
    for ln in lines[:2]:
        say("     " + ln.strip())

    # Certificate: mod_md_tailscale, default socket, served by mod_ssl on 443.
    cert, first_error = wait_for_certificate(emu)
    if first_error:
        say("     (before it: %s)" % first_error)
    issuer = dict(x[0] for x in cert["issuer"])
    sans = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    ok("https://%s/ serves a certificate for %s that verifies against the emulator CA "
       "%s (issuer %s, until %s)" % (DOMAIN, sans, emu.ca, issuer.get("commonName"),
                                     cert.get("notAfter")))
    ctx = ssl.create_default_context(cafile=emu.ca)
    r = request(443, "/private/", node="laptop", emu=emu, tls=ctx)
    check(r.status == 200 and "tsl-pkgtest private" in r.body,
          "GET https://%s/private/ as laptop (alice) -> 200 over the verified chain" % DOMAIN,
          "got %s" % r.status)
    r = request(443, "/private/", tls=ctx)
    check(r.status == 403, "GET https://%s/private/ without identity -> 403" % DOMAIN,
          "got %s" % r.status)
    log = error_log()
    ids = [i for i in ("TS02010", "TS02021", "TS02031", "TS02032", "TS02034") if i in log]
    for ln in log.splitlines():
        if "TS020" in ln:
            say("     " + ln.strip()[:220])
    check("TS02031" in log, "error.log shows the certificate obtained from tailscaled "
          "(%s)" % " ".join(ids), error_log_tail())

    stores = [d for d in ("/etc/apache2/md_tailscale", "/var/lib/apache2/md_tailscale")
              if os.path.isdir(d)]
    say("     certificate store: %s (purge must remove it)" % (", ".join(stores) or "not found"))

    # The tool package against the same default socket.
    rc, out = run(["/usr/bin/tsl-check", "check", DOMAIN], check_rc=False)
    check(rc == 0, "tsl-check check %s -> exit 0" % DOMAIN, out)
    rc, out = run(["/usr/bin/tsl-check", "whois", "100.101.102.103"], check_rc=False)
    check(rc == 0 and "alice@example.com" in out, "tsl-check whois 100.101.102.103 -> alice",
          out)


def system_test(debs, workdir, save_log=None):
    paths = package_paths(debs)
    check_no_foreign_files(paths)
    pkg_dirs = sorted({"/usr/share/doc/%s" % p for p in PACKAGES})
    roots = BACKUP_ROOTS + [p for p in paths if not any(
        p.startswith(r + "/") for r in BACKUP_ROOTS)] + pkg_dirs
    before = sysstate.manifest(roots)
    mods_before = set(os.listdir("/etc/apache2/mods-enabled"))
    backup = sysstate.Backup(BACKUP_ROOTS, workdir).take()
    say("backed up %s to %s (kept there should this run be killed)"
        % (", ".join(backup.present), backup.archive))

    made_policy = False
    if not os.path.exists(POLICY_RC_D):
        # Keep package scripts (invoke-rc.d) from starting apache2 themselves.
        with open(POLICY_RC_D, "w") as f:
            f.write("#!/bin/sh\n# build/check-packages: no service starts\nexit 101\n")
        os.chmod(POLICY_RC_D, 0o755)
        made_policy = True

    www = Path(workdir) / "www"
    (www / "private").mkdir(parents=True)
    (www / "index.html").write_text("tsl-pkgtest public\n")
    (www / "private" / "index.html").write_text("tsl-pkgtest private\n")
    os.chmod(www, 0o755)
    os.chmod(www / "private", 0o755)

    emu = Emulator(workdir)
    apache = SystemApache()
    dpkg_log = Path(workdir) / "dpkg.log"
    installed = False
    remember_error_log_start()
    try:
        run(["dpkg", "-i"] + debs, log=dpkg_log)
        installed = True
        ok("dpkg -i %s" % " ".join(os.path.basename(d) for d in debs))
        check(os.path.islink("/etc/apache2/mods-enabled/authnz_tailscale.load"),
              "authnz_tailscale enabled by its postinst (Debian module policy)")
        check(os.path.lexists("/etc/apache2/mods-enabled/socache_shmcb.load"),
              "its '# Depends: socache_shmcb' enabled the shared identity cache's provider")
        check(not os.path.lexists("/etc/apache2/mods-enabled/md_tailscale.load"),
              "md_tailscale not enabled by its postinst (it would pull in mod_ssl)")
        for p in paths:
            if not os.path.lexists(p):
                fail("%s missing after installation" % p)
        ok("all %d packaged files in place" % len(paths))

        rc, out = run(["a2enmod", "authnz_tailscale", "md_tailscale"])
        enabled = set(os.listdir("/etc/apache2/mods-enabled"))
        check({"authnz_tailscale.load", "authnz_tailscale.conf", "md_tailscale.load",
               "md_tailscale.conf"} <= enabled, "a2enmod authnz_tailscale md_tailscale")
        check("ssl.load" in enabled, "a2enmod followed md_tailscale.load's "
              "'# Depends: ssl' (ssl.load enabled)", out)

        emu.start()
        with open(SITE_FILE, "w") as f:
            f.write(SITE_CONF.format(domain=DOMAIN, www=www))
        run(["a2ensite", SITE])
        ok("site %s enabled (MDomain %s, Require tailscale-user, no socket directives)"
           % (SITE, DOMAIN))
        apache.start()
        exercise(emu, www)
    finally:
        # Cleaning up must not be cut short by a second Ctrl-C.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if save_log:
            try:
                shutil.copyfile("/var/log/apache2/error.log", save_log)
                say("     error.log saved as %s" % save_log)
            except OSError as e:
                say("     cannot save error.log: %s" % e)
        cleanup_errors = []

        def step(what, fn):
            try:
                fn()
            except Exception as e:  # keep cleaning up, report at the end
                cleanup_errors.append("%s: %s" % (what, e))
                say("FAIL cleanup: %s: %s" % (what, e))

        step("stop apache2", apache.stop)
        step("stop the emulator", emu.stop)
        if not emu.proc or emu.proc.poll() is not None:
            if emu.proc:
                ok("emulator stopped, %s removed" % SOCKET)

        def undo_admin():
            if os.path.lexists("/etc/apache2/sites-enabled/%s.conf" % SITE):
                run(["a2dissite", "-q", SITE])
            if os.path.lexists(SITE_FILE):
                os.unlink(SITE_FILE)
            ours = {"authnz_tailscale", "md_tailscale"}
            extra = sorted({n.rsplit(".", 1)[0] for n in
                            set(os.listdir("/etc/apache2/mods-enabled")) - mods_before}
                           - ours)
            if extra:
                run(["a2dismod", "-q", "-f"] + extra)
                say("     a2dismod %s (enabled by the test's a2enmod)" % " ".join(extra))
        step("undo a2ensite/a2enmod", undo_admin)

        def purge():
            if installed or any(os.path.lexists(p) for p in paths):
                run(["dpkg", "--purge"] + PACKAGES, log=dpkg_log)
                ok("dpkg --purge %s" % " ".join(PACKAGES))
            left = [p for p in paths + pkg_dirs if os.path.lexists(p)]
            left += [f for p in PACKAGES for f in glob.glob("/var/lib/dpkg/info/%s.*" % p)]
            if left:
                fail("left behind after purge: %s" % left, fatal=False)
            else:
                ok("purge removed every packaged file")
            after_purge = sysstate.manifest(["/etc/apache2"])
            d = sysstate.diff({k: v for k, v in before.items()
                               if k == "/etc/apache2" or k.startswith("/etc/apache2/")},
                              after_purge, ignore_mtime_of_dirs=True)
            if d:
                fail("/etc/apache2 after undo + purge differs from before:\n  "
                     + "\n  ".join(d), fatal=False)
            else:
                ok("/etc/apache2 after purge: same files and contents as before "
                   "(module disabled by prerm, certificate store removed by postrm)")
        step("purge the packages", purge)

        def restore():
            backup.restore()
            after = sysstate.manifest(roots)
            d = sysstate.diff(before, after)
            if d:
                fail("after restoring, these differ from before:\n  " + "\n  ".join(d),
                     fatal=False)
            else:
                ok("restored: %d paths under %s identical to before (contents, modes, "
                   "owners, mtimes)" % (len(after), ", ".join(BACKUP_ROOTS)))
        step("restore the backup", restore)
        if made_policy:
            step("remove policy-rc.d", lambda: os.unlink(POLICY_RC_D))

        def leftovers():
            procs = [p for p in apache.pids if sysstate.alive(p)]
            if emu.proc and emu.proc.poll() is None:
                procs.append(emu.proc.pid)
            if procs or os.path.lexists(SOCKET):
                fail("left running or present: processes %s, socket %s"
                     % (procs, os.path.lexists(SOCKET)), fatal=False)
            else:
                ok("no process and no socket left behind")
        step("check leftovers", leftovers)
        if cleanup_errors:
            FAILURES.extend(cleanup_errors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--debs", help="use the .deb files in this directory instead of building")
    ap.add_argument("--keep-debs", metavar="DIR", help="copy the built .deb files here")
    ap.add_argument("--head", action="store_true",
                    help="build the last commit (git archive HEAD) instead of the working tree")
    ap.add_argument("--save-error-log", metavar="FILE",
                    help="copy the system apache2's error.log here before restoring it")
    ap.add_argument("--no-lintian", action="store_true", help="do not run lintian")
    ap.add_argument("--build-only", action="store_true",
                    help="build and lintian only; do not touch the system apache2")
    args = ap.parse_args()

    def on_signal(signum, frame):
        raise Interrupted("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    workdir = None
    try:
        try:
            if not args.build_only:
                preflight(need_build=not args.debs)
            elif not shutil.which("dpkg-buildpackage"):
                raise Skip("dpkg-buildpackage missing: run build/check-packages")
            workdir = sysstate.make_workdir("tsl-pkgtest-")
            if args.debs:
                debs = []
                for p in PACKAGES:
                    found = sorted(glob.glob(os.path.join(args.debs, "%s_*.deb" % p)))
                    if not found:
                        raise Skip("no %s_*.deb in %s" % (p, args.debs))
                    debs.append(os.path.abspath(found[-1]))
                changes = None
            else:
                say("== build")
                debs, changes = build(workdir, args.head)
                if args.keep_debs:
                    os.makedirs(args.keep_debs, exist_ok=True)
                    for f in glob.glob(os.path.join(workdir, "*.deb")):
                        shutil.copy2(f, args.keep_debs)
                    say("copied the .deb files to %s" % args.keep_debs)
            if not args.no_lintian:
                say("== lintian")
                lintian([changes] if changes else debs)
            if not args.build_only:
                say("== install into the system apache2, run, purge, restore")
                system_test(debs, workdir, args.save_error_log and os.path.abspath(args.save_error_log))
        except Skip as e:
            say("SKIP " + str(e))
            return SKIP
        except Fail:
            pass
        except Interrupted as e:
            FAILURES.append("interrupted (%s)" % e)
    finally:
        if workdir and not FAILURES:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir:
            say("kept %s (build.log, dpkg.log, emulator.log, system-backup.tar)" % workdir)
    if FAILURES:
        say("FAILED (%d): see the FAIL lines above" % len(FAILURES))
        return 1
    say("PASSED in %.0f s" % (time.monotonic() - T0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
