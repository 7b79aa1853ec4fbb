import base64
import datetime as dt

from shoal.ca.certificates import root_tls_info
from shoal.ca.rootca import create_root_ca

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_the_root_is_named_as_swarms_is() -> None:
    info = root_tls_info(create_root_ca(T0).cert_pem)
    # What `docker node inspect --pretty` shows as Issuer Subject on a real swarm.
    assert info.CertIssuerSubject == "MBMxETAPBgNVBAMTCHN3YXJtLWNh"
    assert base64.b64decode(info.CertIssuerPublicKey or "")[:2] == b"\x30\x59"  # P-256 SPKI
