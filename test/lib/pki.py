"""A throw-away test PKI for plain mod_ssl vhosts (not the emulator's CA).

One CA and one server certificate covering 127.0.0.1, ::1, localhost,
100.100.0.1, fd7a:115c:a1e0::1 and web1.tail1234.ts.net, made once per test
process in a private temporary directory.
"""

import atexit
import datetime
import ipaddress
import shutil
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_PKI = None


class TestPKI:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.ca_cert = self.dir / "ca.pem"
        self.server_cert = self.dir / "server.pem"
        self.server_key = self.dir / "server.key"


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path, key):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def test_pki():
    """The process-wide test PKI, created on first use."""
    global _PKI
    if _PKI is not None:
        return _PKI
    d = Path(tempfile.mkdtemp(prefix="tsl-pki-"))
    atexit.register(shutil.rmtree, d, True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(_name("mod_tailscale test CA"))
          .issuer_name(_name("mod_tailscale test CA"))
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName("localhost"), x509.DNSName("web1.tail1234.ts.net"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.IPAddress(ipaddress.ip_address("100.100.0.1")),
            x509.IPAddress(ipaddress.ip_address("fd7a:115c:a1e0::1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(_name("web1.tail1234.ts.net"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = TestPKI(d)
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.server_key, key)
    _PKI = pki
    return pki
