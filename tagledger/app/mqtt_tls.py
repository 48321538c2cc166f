"""A private CA, the broker's server certificate and one client certificate per MQTT identity.

For ``tagledger mqtt provision --tls`` (the ``tls`` extra: the ``cryptography``
package).  A chain's MQTT traffic crosses store networks and the internet, so the
broker's listener beyond the host is TLS (8883): agents verify the broker against
``ca.crt``; the broker may also ask clients for a certificate (``require_certificate
true``), each client certificate's common name being its MQTT user name.

Keys are ECDSA P-256.  Files already present are kept (a second run adds the
certificates of new identities and re-uses the CA), so agents in the field keep
trusting the same CA.  Files, in the output directory::

    ca.crt  ca.key                      the CA (keep ca.key offline once done)
    server.crt  server.key              the broker's listener (SANs: --tls-host)
    clients/<user>.crt  <user>.key      one per identity
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("TLS certificates need the 'tls' extra: pip install 'tagledger[tls]'") from exc

from tagledger.paths import PRIVATE_FILE_MODE, make_private_dir

CA_DAYS = 10 * 365
LEAF_DAYS = 825  # the longest validity clients commonly accept for a leaf certificate


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, PRIVATE_FILE_MODE)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tagledger"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: not an EC key")
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("tagledger MQTT CA"))
        .issuer_name(_name("tagledger MQTT CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    common_name: str,
    *,
    server_hosts: Iterable[str] = (),
    client: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = []
    for host in server_hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def write(directory: Path, *, server_hosts: list[str], client_names: list[str]) -> list[Path]:
    """The CA, the server certificate and the client certificates missing from ``directory``; returns new files."""
    make_private_dir(directory)
    created: list[Path] = []
    had_ca = (directory / "ca.crt").exists()
    ca = _load_ca(directory)
    if not had_ca:
        created += [directory / "ca.crt", directory / "ca.key"]
    server = directory / "server.crt"
    if not server.exists():
        cert, key = _leaf(ca, server_hosts[0] if server_hosts else "mqtt", server_hosts=server_hosts, client=False)
        _write_key(directory / "server.key", key)
        _write_cert(server, cert)
        created += [server, directory / "server.key"]
    clients = directory / "clients"
    make_private_dir(clients)
    for name in client_names:
        crt = clients / f"{name}.crt"
        if crt.exists():
            continue
        cert, key = _leaf(ca, name, client=True)
        _write_key(clients / f"{name}.key", key)
        _write_cert(crt, cert)
        created += [crt, clients / f"{name}.key"]
    return created
