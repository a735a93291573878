"""Which ThreadSanitizer reports fail a test (test/lib/tsan_reports.py): one
with a frame of ours, except httpd zeroing memory our code used before it
handed it to a new owner; the reverse order stays ours."""

from lib import tsan_reports

OUR_READ = "    #0 conn_cache mod_authnz_tailscale/azt_lookup.c:67 (mod_authnz_tailscale.so+0xa5ff)\n"
HTTPD_FILL = ("    #0 memset ../sanitizer_common_interceptors.inc:799 (libtsan.so+0x5cbc4)\n"
              "    #1 <null> <null> (apache2+0x4ff6b)\n")
HTTPD_COPY = "    #0 memcpy ../sanitizer_common_interceptors.inc:827 (libtsan.so+0x5cbc4)\n"


def report(first, second, kind="data race"):
    return (f"WARNING: ThreadSanitizer: {kind} (pid=1)\n"
            f"  Write of size 8 at 0x7f00 by thread T14:\n{first}\n"
            f"  Previous read of size 8 at 0x7f00 by thread T12 (mutexes: write M0):\n{second}\n"
            "  Thread T14 (tid=9491, running) created by thread T1 at:\n"
            "    #0 pthread_create tsan_interceptors_posix.cpp:1001 (libtsan.so+0x5e686)\n\n"
            f"SUMMARY: ThreadSanitizer: {kind} (/usr/sbin/apache2+0x4ff6b)\n")


def only(text):
    (r,) = tsan_reports.reports(text)
    return r


def test_httpd_refilling_memory_our_code_used_earlier_is_theirs():
    assert not only(report(HTTPD_FILL, OUR_READ)).ours


def test_our_access_after_httpd_refilled_the_memory_is_ours():
    assert only(report(OUR_READ, HTTPD_FILL)).ours


def test_a_race_between_two_accesses_of_ours_is_ours():
    assert only(report(OUR_READ, OUR_READ)).ours


def test_a_race_without_our_frames_is_theirs():
    assert not only(report(HTTPD_FILL, HTTPD_COPY)).ours


def test_a_fill_of_ours_is_not_excused():
    ours_fill = ("    #0 memset ../sanitizer_common_interceptors.inc:799 (libtsan.so+0x5cbc4)\n"
                 "    #1 slot_fill mod_authnz_tailscale/azt_lookup.c:290 (mod_authnz_tailscale.so+0x1)\n")
    assert only(report(ours_fill, OUR_READ)).ours


OUR_ALLOC_FILL = ("    #0 memcpy ../sanitizer_common_interceptors.inc:827 (libtsan.so+0x5dda6)\n"
                  "    #1 memcpy ../sanitizer_common_interceptors.inc:819 (libtsan.so+0x5dda6)\n"
                  "    #2 apr_pstrcat <null> (libapr-1.so.0+0x17610)\n"
                  "    #3 tsl_whois_dst localapi/tsl_whois.c:28 (mod_authnz_tailscale.so+0x187ff)\n")
HTTPD_SEND = ("    #0 writev ../sanitizer_common_interceptors.inc:1200 (libtsan.so+0x4f198)\n"
              "    #1 apr_socket_sendv <null> (libapr-1.so.0+0x25c07)\n")


def test_our_fill_of_memory_apr_just_allocated_after_httpd_used_it_is_theirs():
    assert not only(report(OUR_ALLOC_FILL, HTTPD_SEND)).ours


def test_our_fill_of_fresh_memory_racing_with_our_own_access_is_ours():
    assert only(report(OUR_ALLOC_FILL, OUR_READ)).ours
