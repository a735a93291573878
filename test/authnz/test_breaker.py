"""A hanging tailscaled: once a lookup timed out, protected requests get 503
at once while a single probe at a time asks whether it is back; nobody is
let in, unprotected URLs are untouched, and service resumes by itself.
Loopback clients from fresh ports stand in for new tailnet nodes (each is
its own ip:port peer, asked afresh)."""

import threading
import time

from lib import rawhttp
from .test_cache import child_pids
from .test_userspace import free_local_port

TIMEOUT_MS = 700
CONF = f"""
AuthTailscaleURL @SOCKET@
AuthTailscaleTimeout {TIMEOUT_MS}ms
AuthTailscaleCacheTimeout 0
AuthTailscaleNegativeCacheTimeout 0
AliasMatch "^/p/" "@DOCROOT@/secret.txt"
Alias /open "@DOCROOT@/open.txt"
<Location /p/alice>
  Require tailscale-user alice@example.com
</Location>
"""
CLIENTS = 20
SECONDS = 4


def whois_calls(emulator):
    return emulator.counters()["by_endpoint"].get("whois", 0)


def test_hanging_tailscaled_is_answered_at_once_and_probed_one_at_a_time(make_httpd,
                                                                          emulator):
    h = make_httpd(CONF, mpm="event")
    h.write_file("secret.txt", "SECRET\n")
    h.write_file("open.txt", "OPEN\n")
    emulator.fault("hang")
    emulator.reset_counters()
    results = {"protected": [], "open": []}
    lock = threading.Lock()
    stop = time.time() + SECONDS

    def client(i):
        while time.time() < stop:
            path = "/open" if i % 5 == 0 else "/p/alice"
            status, _, body = rawhttp.request("127.0.0.1", h.port, path, src="127.0.0.1",
                                              timeout=10)
            with lock:
                results["open" if path == "/open" else "protected"].append(
                    (status, "SECRET" in body))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - start
    calls = whois_calls(emulator)
    protected, opened = results["protected"], results["open"]
    print(f"hanging tailscaled, {CLIENTS} clients for {elapsed:.1f} s: "
          f"{len(protected)} protected answers, {len(opened)} unprotected, {calls} whois")
    assert protected and all(s == 503 and not secret for s, secret in protected)
    assert opened and all(s == 200 for s, _ in opened)
    # Each process asks once per probe, one probe at a time: beyond its first
    # wave (every client it served before its first lookup failed, one
    # timeout after its first whois), at most one whois per 500 ms.
    # Re-arming for everyone would ask for each client again and again.
    # Counted per process from the emulator's log, so that a child the MPM
    # starts in the middle of the run gets its own first wave.
    by_pid = {}
    for q in emulator.requests():
        if q["endpoint"] == "whois":
            by_pid.setdefault(q["pid"], []).append(q["time"])
    assert sum(len(t) for t in by_pid.values()) == calls
    # a probe stuck for 500 ms lets the next one start (azt_breaker.c)
    probes_allowed = int(elapsed * 1000 / 500) + 2
    for pid, times in by_pid.items():
        # (slack: a lookup begun before the failure may arrive late)
        wave_end = min(times) + TIMEOUT_MS / 1000 + 0.5
        wave = [t for t in times if t < wave_end]
        probes = [t for t in times if t >= wave_end]
        assert len(wave) <= CLIENTS, (pid, len(wave))
        assert len(probes) <= probes_allowed, (pid, len(probes), probes_allowed)

    # Recovery: tailscaled answers again and a mapped peer gets in.
    port = free_local_port()
    emulator.proxymap(f"127.0.0.1:{port}", "laptop")
    emulator.clear_fault()
    back = time.time()
    deadline = back + 15
    while True:
        status, _, body = rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1",
                                          sport=port, timeout=10)
        if status == 200:
            break
        assert status == 503 and "SECRET" not in body
        assert time.time() < deadline, "never recovered"
        time.sleep(0.05)
    print(f"served again {time.time() - back:.2f} s after tailscaled answered")
    assert "SECRET" in body


# One process, so that every request meets the same breaker.
ONE_PROCESS = """
StartServers 1
ServerLimit 1
MaxRequestWorkers 25
MinSpareThreads 5
MaxSpareThreads 25
"""


def test_lookups_stuck_on_a_hanging_tailscaled_do_not_reopen_the_breaker_once_it_answers(
        make_httpd, emulator):
    h = make_httpd(CONF.replace(f"{TIMEOUT_MS}ms", "3s") + ONE_PROCESS, mpm="event")
    h.write_file("secret.txt", "SECRET\n")
    port = free_local_port()
    emulator.proxymap(f"127.0.0.1:{port}", "laptop")
    emulator.fault("hang")

    def stuck():
        rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1", timeout=10)

    # The first lookup times out after 3 s and opens the breaker; probes then
    # start (one more each 500 ms while the others hang) and stay stuck.
    threads = [threading.Thread(target=stuck)]
    threads[0].start()
    time.sleep(3.3)
    for _ in range(3):
        t = threading.Thread(target=stuck)
        t.start()
        threads.append(t)
        time.sleep(0.6)
    emulator.clear_fault()
    statuses = []
    end = time.time() + 4        # past the end of every stuck lookup
    while time.time() < end:
        status, _, body = rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1",
                                          sport=port, timeout=10)
        statuses.append(status)
        assert "SECRET" in body or status != 200
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert 200 in statuses, statuses
    after = statuses[statuses.index(200):]
    assert set(after) == {200}, statuses
