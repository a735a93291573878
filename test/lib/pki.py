"""A throw-away test PKI for plain mod_ssl vhosts (not the emulator's CA).

One CA and one server certificate covering 127.0.0.1, ::1, localhost,
100.100.0.1, fd7a:115c:a1e0::1 and web1.tail1234.ts.net, made once per test
process in a private temporary directory.  Both carry the extensions a
public CA's certificates do (basicConstraints, keyUsage, SKI, AKI; the
server's also extendedKeyUsage and SAN), so clients that verify strictly
(OpenSSL's X509_STRICT, Python 3.13's default context) accept them.
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
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


def validity(cert):
    """(not_before, not_after) of an x509 certificate as aware UTC datetimes:
    the _utc properties where cryptography has them (42 and later, whose
    naive ones are deprecated), else the naive ones (bookworm's 38) in UTC."""
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    utc = datetime.timezone.utc
    return cert.not_valid_before.replace(tzinfo=utc), cert.not_valid_after.replace(tzinfo=utc)


def _key_usage(digital_signature=False, cert_sign=False):
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def test_pki():
    """The process-wide test PKI, created on first use."""
    global _PKI
    if _PKI is not None:
        return _PKI
    d = Path(tempfile.mkdtemp(prefix="tsl-pki-"))
    atexit.register(shutil.rmtree, d, True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    ca = (x509.CertificateBuilder()
          .subject_name(_name("mod_tailscale test CA"))
          .issuer_name(_name("mod_tailscale test CA"))
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_key_usage(digital_signature=True, cert_sign=True), critical=True)
          .add_extension(ca_ski, critical=False)
          .add_extension(ca_aki, critical=False)
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
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(ca_aki, critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = TestPKI(d)
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.server_key, key)
    _PKI = pki
    return pki
