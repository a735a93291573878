"""Certificates: a local CA shaped like Let's Encrypt's ECDSA hierarchy
(P-384 root -> P-384 intermediate -> P-256 leaf), and a store that renews
on tailscaled's schedule."""

import datetime
import os
import secrets
import struct
import threading
import time
import traceback

from .gocompat import go_quote, go_quote_list, go_time
from .log import log


# cryptography is imported by the CA thread (see CertStore): it is most of the
# start-up time, and most tests start an emulator without needing certificates.
x509 = hashes = serialization = ec = ExtendedKeyUsageOID = NameOID = None


def _load_crypto():
    global x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID
    from cryptography import x509 as _x509
    from cryptography.hazmat.primitives import hashes as _hashes, serialization as _ser
    from cryptography.hazmat.primitives.asymmetric import ec as _ec
    from cryptography.x509.oid import ExtendedKeyUsageOID as _eku, NameOID as _name
    x509, hashes, serialization, ec = _x509, _hashes, _ser, _ec
    ExtendedKeyUsageOID, NameOID = _eku, _name


class CertError(Exception):
    def __init__(self, text, status=500, retry_after=None):
        super().__init__(text)
        self.text = text
        self.status = status
        self.retry_after = retry_after


def _write_file(path, data, mode):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class TestCA:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.root_path = os.path.join(state_dir, "ca.pem")
        self.inter_path = os.path.join(state_dir, "intermediate.pem")
        rk = os.path.join(state_dir, "ca-key.pem")
        ik = os.path.join(state_dir, "intermediate-key.pem")
        if all(os.path.exists(p) for p in (self.root_path, self.inter_path, rk, ik)):
            with open(self.root_path, "rb") as f:
                self.root = x509.load_pem_x509_certificate(f.read())
            with open(self.inter_path, "rb") as f:
                self.inter_pem = f.read()
                self.inter = x509.load_pem_x509_certificate(self.inter_pem)
            with open(ik, "rb") as f:
                self.inter_key = serialization.load_pem_private_key(f.read(), None)
            return
        now = datetime.datetime.now(datetime.timezone.utc)
        root_key = ec.generate_private_key(ec.SECP384R1())
        root_name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tailscale Emulator Test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Emulator Test Root X2"),
        ])
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        self.root = (x509.CertificateBuilder()
                     .subject_name(root_name).issuer_name(root_name)
                     .public_key(root_key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                     .add_extension(root_ski, critical=False)
                     .sign(root_key, hashes.SHA384()))
        self.inter_key = ec.generate_private_key(ec.SECP384R1())
        inter_name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tailscale Emulator Test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Emulator E5"),
        ])
        self.inter = (x509.CertificateBuilder()
                      .subject_name(inter_name).issuer_name(root_name)
                      .public_key(self.inter_key.public_key())
                      .serial_number(x509.random_serial_number())
                      .not_valid_before(now - datetime.timedelta(days=1))
                      .not_valid_after(now + datetime.timedelta(days=1095))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                      .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
                      .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                            ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                      .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.inter_key.public_key()), critical=False)
                      .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
                      .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                          x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                          x509.UniformResourceIdentifier("http://x2.i.lencr.emulator.test/"))]), critical=False)
                      .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                          x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), critical=False)
                      .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                          [x509.UniformResourceIdentifier("http://x2.c.lencr.emulator.test/")],
                          None, None, None)]), critical=False)
                      .sign(root_key, hashes.SHA384()))
        self.inter_pem = self.inter.public_bytes(serialization.Encoding.PEM)
        _write_file(self.root_path, self.root.public_bytes(serialization.Encoding.PEM), 0o644)
        _write_file(self.inter_path, self.inter_pem, 0o644)
        _write_file(rk, root_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()), 0o600)
        _write_file(ik, self.inter_key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                                     serialization.NoEncryption()), 0o600)

    def issue(self, names, lifetime, bad_chain=None):
        """Issue a leaf for names; returns (key_pem, chain_pem).  bad_chain
        (the cabadchain fault only) issues a broken one instead: "leaf-only"
        (no intermediate), "unrelated-ca" (the leaf, then a CA that did not
        issue it), "cn-only" (names in the CN, no subjectAltName)."""
        key = ec.generate_private_key(ec.SECP256R1())
        nb_ts = int(time.time())  # X.509 has second resolution
        nb = datetime.datetime.fromtimestamp(nb_ts, datetime.timezone.utc)
        na = nb + datetime.timedelta(seconds=lifetime)
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.inter.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(nb).not_valid_after(na)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.inter_key.public_key()), critical=False)
                .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                    x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier("http://e5.i.lencr.emulator.test/"))]), critical=False)
                )
        if bad_chain != "cn-only":
            leaf = leaf.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                      critical=False)
        leaf = (leaf
                .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                    x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), critical=False)
                .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                    [x509.UniformResourceIdentifier("http://e5.c.lencr.emulator.test/61.crl")],
                    None, None, None)]), critical=False)
                .add_extension(_fake_sct_list_extension(), critical=False)
                .sign(self.inter_key, hashes.SHA384()))
        # SEC1 "EC PRIVATE KEY", like x509.MarshalECPrivateKey in tailscaled.
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
        if bad_chain == "leaf-only":
            return key_pem, leaf_pem
        if bad_chain == "unrelated-ca":
            return key_pem, leaf_pem + self.root.public_bytes(serialization.Encoding.PEM)
        return key_pem, leaf_pem + self.inter_pem


def _fake_sct_list_extension():
    """An embedded-SCT list (RFC 6962) shaped like the two a Let's Encrypt leaf
    carries.  It is structurally valid TLS encoding with real ECDSA signature
    bytes, but no log ever saw it; its point is a realistic leaf size (a real
    chain is well past Go's 2048-byte buffer, so cert bodies go chunked)."""
    scts = b""
    for _ in range(2):
        log_key = ec.generate_private_key(ec.SECP256R1())
        sig = log_key.sign(secrets.token_bytes(32), ec.ECDSA(hashes.SHA256()))
        body = (b"\x00" + secrets.token_bytes(32) + struct.pack(">Q", int(time.time() * 1000))
                + b"\x00\x00" + b"\x04\x03" + struct.pack(">H", len(sig)) + sig)
        scts += struct.pack(">H", len(body)) + body
    tls = struct.pack(">H", len(scts)) + scts
    # extnValue holds an OCTET STRING wrapping the TLS-encoded list.
    n = len(tls)
    der_len = bytes([n]) if n < 0x80 else (b"\x81" + bytes([n]) if n < 0x100 else b"\x82" + struct.pack(">H", n))
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"),
                                      b"\x04" + der_len + tls)


def valid_looking_cert_domain(name):
    if (name == "" or ".." in name or any(c in name for c in ":/\\\x00")
            or "." not in name):
        return False
    if name.startswith("*."):
        rest = name[2:]
        if "*" in rest or "." not in rest:
            return False
    elif "*" in name:
        return False
    return True


class CertEntry:
    def __init__(self, storage_key, key_pem, chain_pem):
        self.storage_key = storage_key
        self.key_pem = key_pem
        self.chain_pem = chain_pem
        self.leaf = x509.load_pem_x509_certificate(chain_pem)
        if hasattr(self.leaf, "not_valid_after_utc"):    # cryptography 42 and later
            nb, na = self.leaf.not_valid_before_utc, self.leaf.not_valid_after_utc
        else:                                            # naive UTC (bookworm's 38)
            nb = self.leaf.not_valid_before.replace(tzinfo=datetime.timezone.utc)
            na = self.leaf.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        self.not_before, self.not_after = nb.timestamp(), na.timestamp()

    def valid_at(self, now):
        # x509 verification: invalid before NotBefore and after NotAfter.
        return self.not_before <= now <= self.not_after

    def info(self):
        try:
            names = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        return {"names": names, "serial": "%x" % self.leaf.serial_number,
                "not_before": int(self.not_before), "not_after": int(self.not_after),
                "sha256": self.leaf.fingerprint(hashes.SHA256()).hex()}


class CertStore:
    """tailscaled's cert cache and renewal logic (spec §3.5):
    - no valid cached cert: the request blocks through issuance;
    - cached, min_validity unmet: synchronous renewal;
    - cached, past NotBefore + 2/3 lifetime: one async renewal, current cert returned;
    - per-domain lock: concurrent callers wait and get the fresh result."""

    def __init__(self, emu, state_dir):
        self.emu = emu
        self.state_dir = state_dir
        self.dir = os.path.join(state_dir, "certs")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.ca = None
        self.ca_path = os.path.join(state_dir, "ca.pem")
        self.lock = threading.Lock()
        self.domain_locks = {}
        self.cache = {}
        self.renew_at = {}
        self.renewing = set()
        self.issue_count = {}
        self.last_error = {}
        self.generation = 0
        self.ready = threading.Event()
        self.init_error = None
        threading.Thread(target=self._init, daemon=True, name="test-ca").start()

    def _init(self):
        try:
            _load_crypto()
            self.ca = TestCA(self.state_dir)
            self._load_disk_cache()
        except Exception as e:
            self.init_error = "test CA: %r" % e
            log(self.init_error + "\n" + traceback.format_exc())
        finally:
            self.ready.set()

    def wait_ready(self):
        self.ready.wait()
        if self.init_error:
            raise CertError(self.init_error)

    def _load_disk_cache(self):
        for fn in os.listdir(self.dir):
            if fn.endswith(".crt"):
                sk = fn[:-4]
                try:
                    with open(os.path.join(self.dir, fn), "rb") as f:
                        chain = f.read()
                    with open(os.path.join(self.dir, sk + ".key"), "rb") as f:
                        key = f.read()
                    self.cache[sk] = CertEntry(sk, key, chain)
                except Exception as e:  # an unreadable cached cert counts as missing
                    log("ignoring cached cert %s: %s" % (fn, e))

    def _domain_lock(self, sk):
        with self.lock:
            return self.domain_locks.setdefault(sk, threading.Lock())

    def _cached_valid(self, sk, now):
        with self.lock:
            e = self.cache.get(sk)
        if e is not None and e.valid_at(now):
            return e
        return None

    def _should_renew(self, sk, now, entry, min_validity_ns):
        if min_validity_ns != 0 and entry.not_after - now < min_validity_ns / 1e9:
            return True
        with self.lock:
            at = self.renew_at.get(sk)
            if at is None:
                tn = self.emu.tailnet
                at = entry.not_before + (entry.not_after - entry.not_before) * tn.renew_fraction
                self.renew_at[sk] = at
        return now > at

    def resolve(self, domain, tn):
        """The domain checks of tailscaled v1.102 in their order."""
        if not valid_looking_cert_domain(domain):
            raise CertError("invalid domain")
        wildcard = domain.startswith("*.")
        base = domain[2:] if wildcard else domain
        base = base[:-1] if base.endswith(".") else base
        if not tn.has_netmap:
            raise CertError("no netmap available")
        cds = tn.cert_domains or []
        if not cds:
            raise CertError("your Tailscale account does not support getting TLS certs")
        if wildcard:
            if not tn.wildcard:
                raise CertError("wildcard certificates are not enabled for this node")
            if base not in cds:
                raise CertError("invalid domain %s; wildcard certificates are not enabled for this domain"
                                % go_quote("*." + base))
            return "*." + base, "wildcard_." + base, ["*." + base, base]
        if base in cds:
            return base, base, [base]
        raise CertError("invalid domain %s; must be one of %s" % (go_quote(base), go_quote_list(cds)))

    def get(self, domain, min_validity_ns):
        self.wait_ready()
        tn = self.emu.tailnet
        cert_domain, sk, names = self.resolve(domain, tn)
        now = time.time()
        entry = self._cached_valid(sk, now)
        if entry is not None:
            if not self._should_renew(sk, now, entry, min_validity_ns):
                return entry
            if min_validity_ns == 0:
                self._start_async(sk, names, now)
                return entry
            log("cert(%s): starting sync renewal" % cert_domain)
        return self._obtain(sk, names, now, min_validity_ns)

    def _start_async(self, sk, names, now):
        with self.lock:
            if sk in self.renewing:  # v1.102: never two renewals of one domain
                return
            self.renewing.add(sk)
        log("cert(%s): starting async renewal" % sk)

        def run():
            try:
                self._obtain(sk, names, now, 0)
            except CertError as e:
                log("cert(%s): async renewal failed: %s" % (sk, e.text))
            except Exception as e:
                log("cert(%s): async renewal crashed: %r" % (sk, e))
            finally:
                with self.lock:
                    self.renewing.discard(sk)
        threading.Thread(target=run, daemon=True, name="renew-" + sk).start()

    def _obtain(self, sk, names, now, min_validity_ns):
        with self._domain_lock(sk):
            # Someone may have issued while we waited for the lock.  Judge that
            # with the current time: our NotBefore is not backdated like Let's
            # Encrypt's, so a cert issued just now can postdate the request.
            now = max(now, time.time())
            entry = self._cached_valid(sk, now)
            if entry is not None and not self._should_renew(sk, now, entry, min_validity_ns):
                return entry
            gen = self.generation
            fault = self.emu.faults.take("cert", ("ca429", "ca500", "cabadchain"))
            tn = self.emu.tailnet
            # The ACME round trips take time; a first issuance blocks the caller.
            if self.emu.stopping.wait(tn.issue_delay):
                raise CertError("tailscaled is shutting down")
            bad_chain = fault.get("chain") if fault and fault["mode"] == "cabadchain" else None
            if fault is not None and bad_chain is None:
                err = self.emu.faults.error_for("cert", fault, names[0])
                with self.lock:
                    self.last_error[sk] = err.text
                raise err
            key_pem, chain_pem = self.ca.issue(names, tn.cert_lifetime, bad_chain)
            entry = CertEntry(sk, key_pem, chain_pem)
            with self.lock:
                if gen != self.generation:
                    raise CertError("certificate store was cleared during issuance")
                _write_file(os.path.join(self.dir, sk + ".crt"), chain_pem, 0o644)
                _write_file(os.path.join(self.dir, sk + ".key"), key_pem, 0o600)
                self.cache[sk] = entry
                self.renew_at.pop(sk, None)
                self.issue_count[sk] = self.issue_count.get(sk, 0) + 1
                self.last_error.pop(sk, None)
            log("cert(%s): issued serial %x, valid until %s" % (
                sk, entry.leaf.serial_number, go_time(entry.not_after)))
            return entry

    def info(self):
        self.wait_ready()
        with self.lock:
            out = {}
            for sk in sorted(set(self.cache) | set(self.issue_count) | set(self.last_error)):
                e = self.cache.get(sk)
                d = e.info() if e else {}
                d.update({"storage_key": sk, "issue_count": self.issue_count.get(sk, 0),
                          "renew_at": self.renew_at.get(sk), "renewing": sk in self.renewing,
                          "last_error": self.last_error.get(sk), "cached": e is not None})
                out[sk.replace("wildcard_.", "*.", 1)] = d
            return out

    def clear(self):
        self.wait_ready()
        with self.lock:
            self.generation += 1
            self.cache.clear()
            self.renew_at.clear()
            self.issue_count.clear()
            self.last_error.clear()
            for fn in os.listdir(self.dir):
                if fn.endswith((".crt", ".key")):
                    os.unlink(os.path.join(self.dir, fn))
