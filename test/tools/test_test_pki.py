"""The certificates the tests make (test/lib/pki.py for plain mod_ssl vhosts,
the emulator's CA in test/emulator/tsemu/certs.py) pass a strict verifier:
OpenSSL's X509_STRICT, which Python 3.13's default context turns on, wants
what a public CA's certificates carry (SKI, AKI, keyUsage, ...).  The TLS
handshakes run in memory: no server, no network."""

import ssl
import sys
from pathlib import Path

import pytest

from lib import pki

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulator"))
from tsemu import certs  # noqa: E402

WEB1 = "web1.tail1234.ts.net"


def strict_client(cafile):
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def handshake(server_ctx, client_ctx, hostname):
    """A TLS handshake between the two contexts over memory BIOs; raises the
    client's ssl.SSLCertVerificationError if it refuses the server's chain."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = set()
    for _ in range(20):
        for name, end, out, peer_in in (("client", client, c_out, s_in),
                                        ("server", server, s_out, c_in)):
            if name not in done:
                try:
                    end.do_handshake()
                    done.add(name)
                except ssl.SSLWantReadError:
                    pass
            data = out.read()
            if data:
                peer_in.write(data)
        if done == {"client", "server"}:
            return client.getpeercert()
    raise AssertionError("the in-memory TLS handshake did not finish")


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


@pytest.mark.parametrize("hostname", [WEB1, "localhost", "127.0.0.1", "fd7a:115c:a1e0::1"])
def test_the_test_pki_server_certificate_passes_strict_verification(hostname):
    p = pki.test_pki()
    got = handshake(server_context(p.server_cert, p.server_key), strict_client(p.ca_cert),
                    hostname)
    assert ("commonName", WEB1) in got["subject"][0]


def test_the_emulator_chain_passes_strict_verification(tmp_path):
    certs._load_crypto()
    ca = certs.TestCA(str(tmp_path))
    key_pem, chain_pem = ca.issue([WEB1], 90 * 86400)
    (tmp_path / "chain.pem").write_bytes(chain_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    got = handshake(server_context(tmp_path / "chain.pem", tmp_path / "key.pem"),
                    strict_client(ca.root_path), WEB1)
    assert got["subjectAltName"] == (("DNS", WEB1),)


def test_validity_is_aware_utc_without_a_deprecation_warning(recwarn):
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(pki.test_pki().server_cert.read_bytes())
    nb, na = pki.validity(cert)
    assert nb.utcoffset().total_seconds() == 0 and na.utcoffset().total_seconds() == 0
    assert (na - nb).days == 31
    assert not [w for w in recwarn if "not_valid" in str(w.message)]
