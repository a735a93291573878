"""A real Apache httpd (Debian's apache2 binary) with our modules, for tests.

Each Httpd owns a work directory holding its generated configuration, logs,
document root and runtime files.  Placeholders in the configuration text:
@PORT@, @TLS_PORT@ (127.0.0.1 ports picked free), @TS_PORT@ (the port on
the tailnet addresses 100.100.0.1 / fd7a:115c:a1e0::1 when tailnet=True),
@PORT2@..@PORT4@ (spare free ports), @SOCKET@ (tailscaled
emulator socket), @DIR@ (work dir), @DOCROOT@, @CGIBIN@, @SERVER_CERT@,
@SERVER_KEY@ (a test PKI certificate for 127.0.0.1, localhost and
web1.tail1234.ts.net), @TEST_CA@ (its CA).

inherit_fds={number: path} hands apache2 extra open descriptors when it
starts (each path opened read-only under that number): a test can then
check what httpd passes on to the programs it runs.
"""

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import pki, staging, tsan_reports

REPO = Path(__file__).resolve().parents[2]
APACHE2 = shutil.which("apache2", path="/usr/sbin:/usr/bin") or "/usr/sbin/apache2"
DEBIAN_MODULES = Path("/usr/lib/apache2/modules")

# Lines in an error log that mean a child died badly.
CRASH_PATTERNS = [
    re.compile(r"AH00052"),                 # child pid N exit signal ...
    re.compile(r"Segmentation fault"),
    re.compile(r"AddressSanitizer"),
    re.compile(r"runtime error:"),          # UBSan
    re.compile(r"AH00060"),                 # seems deadlocked
    re.compile(r"double free|free\(\): invalid"),
]

# Sanitizer runs (build/check-sanitizers, docs/hardening.md): our modules come
# from another build tree, the ASan (or TSan) runtime is preloaded into apache2,
# and the sanitizers write their reports to files in each instance's sanitizer/
# directory.
MODULE_DIR = os.environ.get("TSL_MODULE_DIR")        # tree or flat dir of mod_*.so
HTTPD_PRELOAD = os.environ.get("TSL_HTTPD_PRELOAD")  # e.g. $(gcc -print-file-name=libasan.so)
SANITIZER = os.environ.get("TSL_SANITIZER", "address")   # or "thread" (libtsan.so)
# Leak reports (not crashes) are copied here before the work dir goes away.
SANITIZER_REPORT_DIR = os.environ.get("TSL_SANITIZER_REPORT_DIR")

BASE_MODULES = [
    "authz_core", "authn_core", "authz_user", "authz_host", "auth_basic",
    "authn_file", "mime", "dir", "env", "headers", "setenvif", "alias",
]


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def module_path(name):
    """Path of one of our built modules, e.g. 'authnz_tailscale'."""
    if MODULE_DIR:
        for p in (Path(MODULE_DIR) / f"mod_{name}" / ".libs" / f"mod_{name}.so",
                  Path(MODULE_DIR) / f"mod_{name}.so"):
            if p.exists():
                return p
        raise FileNotFoundError(f"mod_{name}.so is not built in TSL_MODULE_DIR={MODULE_DIR}")
    p = REPO / f"mod_{name}" / ".libs" / f"mod_{name}.so"
    if not p.exists():
        raise FileNotFoundError(f"{p} is not built: run build/setup (or make)")
    return p


def www_data_ids():
    import pwd
    pw = pwd.getpwnam("www-data")
    return pw.pw_uid, pw.pw_gid


def make_world_readable_dir(path):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)
    return path


def alive(pid):
    """True while pid exists and is not a zombie.  A daemonized httpd's
    parent is reaped by PID 1, which on some machines (a VM's minimal init)
    does so only every second or two: the exited process is gone for every
    purpose but kill(pid, 0)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


class HttpdError(AssertionError):
    pass


class Httpd:
    def __init__(self, workdir, config="", mpm="event", modules=(), our=("authnz_tailscale",),
                 socket_path=None, listen=None, env=None, preload=None, tailnet=False,
                 inherit_fds=None):
        self.dir = make_world_readable_dir(workdir)
        self.mpm = mpm
        self.modules = list(modules)
        self.our = list(our)
        self.socket_path = str(socket_path) if socket_path else ""
        self.port = free_port()
        self.tls_port = free_port()
        self.ts_port = free_port()   # on the tailnet addresses (netns fixture)
        self.extra_ports = [free_port() for _ in range(3)]   # @PORT2@..@PORT4@
        self.tailnet = tailnet
        self.listen = listen  # extra Listen lines, e.g. ["[::]:8080"]
        self.env = dict(env or {})
        self.inherit_fds = {int(n): str(path) for n, path in (inherit_fds or {}).items()}
        self.preload = ":".join(p for p in (HTTPD_PRELOAD, preload) if p) or None
        # sanitizer reports; children run as www-data, so world-writable
        self.sanitizer_dir = self.dir / "sanitizer"
        if HTTPD_PRELOAD:
            self.sanitizer_dir.mkdir(exist_ok=True)
            os.chmod(self.sanitizer_dir, 0o1777)
        self.docroot = make_world_readable_dir(self.dir / "htdocs")
        self.cgibin = make_world_readable_dir(self.dir / "cgi-bin")
        self.logs = make_world_readable_dir(self.dir / "logs")
        self.run = make_world_readable_dir(self.dir / "run")
        self.conf_path = self.dir / "httpd.conf"
        self.error_log_path = self.logs / "error.log"
        self.access_log_path = self.logs / "access.log"
        self.pid_path = self.run / "httpd.pid"
        self.pki = pki.test_pki()
        self._started = False
        (self.docroot / "index.html").write_text("hello from httpd\n")
        self.set_config(config)

    # -- configuration -------------------------------------------------
    def substitute(self, text):
        repl = {
            "@PORT@": str(self.port),
            "@TLS_PORT@": str(self.tls_port),
            "@TS_PORT@": str(self.ts_port),
            "@PORT2@": str(self.extra_ports[0]),
            "@PORT3@": str(self.extra_ports[1]),
            "@PORT4@": str(self.extra_ports[2]),
            "@SOCKET@": self.socket_path,
            "@DIR@": str(self.dir),
            "@DOCROOT@": str(self.docroot),
            "@CGIBIN@": str(self.cgibin),
            "@SERVER_CERT@": str(self.pki.server_cert),
            "@SERVER_KEY@": str(self.pki.server_key),
            "@TEST_CA@": str(self.pki.ca_cert),
        }
        for k, v in repl.items():
            text = text.replace(k, v)
        return text

    def set_config(self, config):
        self.config = config
        self.conf_path.write_text(self.render())

    def render(self):
        lines = [
            f"ServerRoot {self.dir}",
            f"DefaultRuntimeDir {self.run}",
            f"PidFile {self.pid_path}",
            f"ErrorLog {self.error_log_path}",
            "LogLevel warn",
            "ServerName 127.0.0.1",
            f"Listen 127.0.0.1:{self.port}",
            "User www-data",
            "Group www-data",
            "Timeout 30",
            "KeepAlive On",
            "MaxKeepAliveRequests 0",
            "TypesConfig /etc/mime.types",
            "DirectoryIndex index.html",
            f"LoadModule mpm_{self.mpm}_module {DEBIAN_MODULES}/mod_mpm_{self.mpm}.so",
        ]
        if self.mpm == "event":
            lines += ["StartServers 2", "ServerLimit 4", "ThreadsPerChild 25",
                      "MaxRequestWorkers 100", "MinSpareThreads 10", "MaxSpareThreads 100"]
        elif self.mpm == "prefork":
            lines += ["StartServers 3", "MinSpareServers 2", "MaxSpareServers 8",
                      "MaxRequestWorkers 32"]
        if self.tailnet:
            # The server's own tailnet addresses (host end of the netns veth).
            lines += [f"Listen 100.100.0.1:{self.ts_port}",
                      f"Listen [fd7a:115c:a1e0::1]:{self.ts_port}"]
        if self.listen:
            lines += [f"Listen {self.substitute(l)}" for l in self.listen]
        seen = set()
        for m in BASE_MODULES + self.modules:
            if m in seen:
                continue
            seen.add(m)
            lines.append(f"LoadModule {m}_module {DEBIAN_MODULES}/mod_{m}.so")
        for m in self.our:
            # a copy every user can read: www-data children run it, and an
            # httpd started as www-data loads it (the checkout may be in /root)
            lines.append(f"LoadModule {m}_module {staging.stage(module_path(m))}")
        if "ssl" in self.modules:
            lines.append(f"Listen 127.0.0.1:{self.tls_port} https")
        lines += [
            'LogFormat "%h %a %{remote}p \\"%r\\" %>s %b \\"%u\\"" tsl',
            f"CustomLog {self.access_log_path} tsl",
            f"DocumentRoot {self.docroot}",
            f"<Directory {self.docroot}>",
            "  Require all granted",
            "</Directory>",
        ]
        return "\n".join(lines) + "\n" + self.substitute(self.config) + "\n"

    # -- lifecycle -----------------------------------------------------
    def _env(self):
        env = dict(os.environ)
        env.update(self.env)
        if self.preload:
            env["LD_PRELOAD"] = self.preload
        if HTTPD_PRELOAD and SANITIZER == "thread":
            # reports go to sanitizer/tsan.PID (see crashes()); exitcode=0:
            # a child with a report exits as it would without TSan
            env["TSAN_OPTIONS"] = ":".join(filter(None, [
                env.get("TSAN_OPTIONS"), f"log_path={self.sanitizer_dir}/tsan", "exitcode=0"]))
        elif HTTPD_PRELOAD:
            # reports go to sanitizer/asan.PID and ubsan.PID (see crashes())
            env["ASAN_OPTIONS"] = ":".join(filter(None, [
                env.get("ASAN_OPTIONS"), f"log_path={self.sanitizer_dir}/asan",
                "verify_asan_link_order=0"]))
            env["UBSAN_OPTIONS"] = ":".join(filter(None, [
                env.get("UBSAN_OPTIONS"), f"log_path={self.sanitizer_dir}/ubsan", "print_stacktrace=1"]))
        return env

    def _cmd(self, *args):
        cmd = [APACHE2, "-d", str(self.dir), "-f", str(self.conf_path), *args]
        if HTTPD_PRELOAD and SANITIZER == "address" and "-X" in args:
            # One process (-X) exits from inside the MPM module, and httpd's
            # atexit handler unloads the modules, that one included, then
            # frees more memory: ASan's slow unwinder (fast_unwind_on_malloc=0,
            # build/check-sanitizers) then faults in libgcc_s walking the
            # stack into the unmapped module - with or without our modules
            # loaded.  Frame-pointer stacks for this process only.
            opts = self._env()["ASAN_OPTIONS"] + ":fast_unwind_on_malloc=1"
            cmd = ["/usr/bin/env", f"ASAN_OPTIONS={opts}"] + cmd
        return cmd

    @contextlib.contextmanager
    def _inherited_fds(self):
        """subprocess arguments that hand inherit_fds to the child: each is
        opened here under its number (close-on-exec, so no other child gets
        it; the soft RLIMIT_NOFILE raised to fit while it is open), kept
        open for the child by pass_fds, and closed here again afterwards."""
        if not self.inherit_fds:
            yield {}
            return
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = max(self.inherit_fds) + 1
        raised = soft != resource.RLIM_INFINITY and soft < need
        if raised:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        opened = []
        try:
            for n, path in self.inherit_fds.items():
                try:
                    os.fstat(n)
                except OSError:
                    pass
                else:
                    raise HttpdError(f"inherit_fds: descriptor {n} is in use in the test process")
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                if fd != n:
                    try:
                        os.dup2(fd, n, inheritable=False)
                    finally:
                        os.close(fd)
                opened.append(n)
            yield {"pass_fds": tuple(self.inherit_fds)}
        finally:
            for n in opened:
                os.close(n)
            if raised:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    def configtest(self):
        """Run `apache2 -t`; returns (returncode, combined output)."""
        p = subprocess.run(self._cmd("-t"), capture_output=True, text=True,
                           env=self._env(), timeout=60)
        return p.returncode, p.stdout + p.stderr

    def start(self, wait=True, expect_fail=False):
        if self.error_log_path.exists():
            self._log_offset_at_start = self.error_log_path.stat().st_size
        with self._inherited_fds() as fds:
            p = subprocess.run(self._cmd("-k", "start"), capture_output=True, text=True,
                               env=self._env(), timeout=120, **fds)
        out = p.stdout + p.stderr
        if expect_fail:
            return p.returncode, out + self.error_log()
        if p.returncode != 0:
            raise HttpdError(f"httpd failed to start (rc {p.returncode}):\n{out}\n"
                             f"--- error log ---\n{self.error_log()}")
        self._started = True
        if wait:
            self.wait_ready()
        return p.returncode, out

    def pid(self):
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid = self.pid()
            if pid and self._port_open(self.port):
                return
            time.sleep(0.05)
        raise HttpdError(f"httpd did not come up in {timeout}s\n{self.error_log()}")

    @staticmethod
    def _port_open(port, host="127.0.0.1"):
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    def _generation(self):
        """Count of 'resuming normal operations' lines (one per (re)start)."""
        return self.error_log().count("resuming normal operations")

    def graceful(self, timeout=30):
        """Graceful restart; waits until the new generation is up."""
        before = self._generation()
        subprocess.run(self._cmd("-k", "graceful"), check=True, env=self._env(), timeout=60)
        self.wait_for_log_count("resuming normal operations", before + 1, timeout)
        self.wait_ready()

    def restart(self, timeout=30):
        before = self._generation()
        subprocess.run(self._cmd("-k", "restart"), check=True, env=self._env(), timeout=60)
        self.wait_for_log_count("resuming normal operations", before + 1, timeout)
        self.wait_ready()

    def wait_for_log(self, pattern, timeout=30):
        """Wait until the error log matches regex pattern; return the match."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = rx.search(self.error_log())
            if m:
                return m
            time.sleep(0.1)
        raise HttpdError(f"error log never matched {pattern!r}:\n{self.error_log()}")

    def wait_for_log_count(self, needle, count, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.error_log().count(needle) >= count:
                return
            time.sleep(0.1)
        raise HttpdError(f"error log never had {count}x {needle!r}:\n{self.error_log()}")

    def stop(self, check_crashes=True):
        if not self._started:
            return
        pid = self.pid()
        try:
            subprocess.run(self._cmd("-k", "stop"), capture_output=True, env=self._env(),
                           timeout=60)
            deadline = time.time() + 20
            while pid and time.time() < deadline:
                if not alive(pid):
                    break
                time.sleep(0.02)
            else:
                if pid:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
        finally:
            # even when "-k stop" failed or timed out: no process survives
            self._kill_leftovers()
            self._started = False
        if check_crashes:
            self.assert_no_crash()

    def _kill_leftovers(self):
        """Kill any process still running with our config file (children, helpers)."""
        conf = str(self.conf_path)
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmdline = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if conf.encode() in cmdline:
                try:
                    os.kill(int(d.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # -- inspection ----------------------------------------------------
    def error_log(self):
        try:
            return self.error_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def access_log(self):
        try:
            return self.access_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def sanitizer_reports(self):
        """{path: text} of the ASan/UBSan/LSan/TSan report files in sanitizer/."""
        out = {}
        for p in sorted(self.sanitizer_dir.glob("asan.*")) + \
                sorted(self.sanitizer_dir.glob("ubsan.*")) + \
                sorted(self.sanitizer_dir.glob("tsan.*")):
            try:
                out[p] = p.read_text(errors="replace")
            except OSError:
                pass
        return out

    def crashes(self):
        text = self.error_log()
        bad = [line for line in text.splitlines()
               if any(p.search(line) for p in CRASH_PATTERNS)]
        for path, report in self.sanitizer_reports().items():
            if path.name.startswith("tsan."):
                bad += self._tsan_findings(path, report)
                continue
            # A report with only leaks (or LeakSanitizer's own failure to
            # stop the threads for its exit-time scan) is not a crash: it is
            # kept for the leak summary of build/check-sanitizers.
            if "LeakSanitizer" in report and "ERROR: AddressSanitizer" not in report \
                    and "runtime error:" not in report:
                if SANITIZER_REPORT_DIR:
                    dest = Path(SANITIZER_REPORT_DIR)
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, dest / f"{self.dir.parent.name}-{self.dir.name}-{path.name}")
                continue
            bad += [f"{path.name}: {line}" for line in report.splitlines()
                    if any(p.search(line) for p in CRASH_PATTERNS)] or [f"{path.name}: {report[:2000]}"]
        return bad

    def _tsan_findings(self, path, text):
        """ThreadSanitizer reports of ours in one tsan.PID file (each fails the
        test); every file is also copied for build/sanitizer_races.py, which
        counts the reports only inside httpd/APR/libraries."""
        if SANITIZER_REPORT_DIR:
            dest = Path(SANITIZER_REPORT_DIR)
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest / f"{self.dir.parent.name}-{self.dir.name}-{path.name}")
        bad = [f"{path.name}: {line}" for line in tsan_reports.fatal_lines(text)]
        for r in tsan_reports.reports(text):
            if r.ours:
                bad.append(f"{path.name}: ThreadSanitizer report in our code:\n{r.text()}")
        return bad

    def assert_no_crash(self):
        bad = self.crashes()
        if bad:
            raise HttpdError("httpd crashed:\n" + "\n".join(bad))

    def url(self, path="/", tls=False, host="127.0.0.1"):
        if tls:
            return f"https://{host}:{self.tls_port}{path}"
        return f"http://{host}:{self.port}{path}"

    def write_file(self, rel, content, mode=0o644):
        p = self.docroot / rel
        make_world_readable_dir(p.parent)
        p.write_text(content)
        os.chmod(p, mode)
        return p

    def write_cgi(self, name, script):
        p = self.cgibin / name
        p.write_text(script)
        os.chmod(p, 0o755)
        return p
