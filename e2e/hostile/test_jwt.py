"""Subscriber JWTs beyond one HS256 secret: `auth.jwtKeys` (several HS256 secrets chosen
by `kid` while keys rotate, RS256 and ES256 public keys in PEM) and `auth.jwtIssuer`.
Tokens are signed here with the `openssl` command line tool, independently of Herald.
Every forged, misrouted or mis-signed token is refused with 401 and a reason; every test
ends with the gateway serving."""
import json
import subprocess
import time

import pytest

from support import b64url, default_config, herald_binary_path, ws_connect

ROTATING_OLD = "the-old-secret-of-at-least-32-bytes!!"
ROTATING_NEW = "the-new-secret-of-at-least-32-bytes!!"


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("jwt")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(d / "rsa.key"))
    openssl("pkey", "-in", str(d / "rsa.key"), "-pubout", "-out", str(d / "rsa.pub"))
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(d / "ec.key"))
    openssl("pkey", "-in", str(d / "ec.key"), "-pubout", "-out", str(d / "ec.pub"))
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(d / "weak.key"))
    openssl("pkey", "-in", str(d / "weak.key"), "-pubout", "-out", str(d / "weak.pub"))
    return d


def der_to_raw(der):
    """An ECDSA signature in DER (openssl) as JWS's raw r||s, 32 bytes each."""
    assert der[0] == 0x30
    offset = 2
    parts = []
    for _ in range(2):
        assert der[offset] == 0x02
        length = der[offset + 1]
        value = der[offset + 2:offset + 2 + length].lstrip(b"\x00")
        parts.append(value.rjust(32, b"\x00"))
        offset += 2 + length
    return parts[0] + parts[1]


def token(claims, alg, key=None, kid=None, secret=None):
    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
    if alg == "HS256":
        import hashlib
        import hmac
        signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    elif alg == "none":
        signature = b""
    else:
        signature = openssl("dgst", "-sha256", "-sign", str(key), data=signing_input)
        if alg == "ES256":
            signature = der_to_raw(signature)
    return f"{signing_input.decode()}.{b64url(signature)}"


def claims(**extra):
    return {"sub": "ada", "exp": int(time.time()) + 600, **extra}


def accepted(herald, text):
    ws, response = ws_connect(herald, path=f"/v1/ws?token={text}")
    ws.close()
    return response.status == 101, response


@pytest.fixture
def gateway(make_herald, keys):
    return make_herald(auth={
        "jwtIssuer": "https://auth.example",
        "jwtKeys": [
            {"kid": "old", "alg": "HS256", "secret": ROTATING_OLD},
            {"kid": "new", "alg": "HS256", "secret": ROTATING_NEW},
            {"kid": "rsa-1", "alg": "RS256", "publicKey": str(keys / "rsa.pub")},
            {"kid": "ec-1", "alg": "ES256", "publicKey": str(keys / "ec.pub")},
        ]})


ISS = {"iss": "https://auth.example"}


def test_rotating_secrets_rs256_and_es256_tokens_are_accepted(gateway, keys):
    for text in [
        token(claims(**ISS), "HS256", kid="old", secret=ROTATING_OLD),
        token(claims(**ISS), "HS256", kid="new", secret=ROTATING_NEW),
        token(claims(**ISS), "HS256", secret=ROTATING_NEW),  # no kid: every HS256 key is tried
        token(claims(**ISS), "RS256", keys / "rsa.key", kid="rsa-1"),
        token(claims(**ISS), "RS256", keys / "rsa.key"),
        token(claims(**ISS), "ES256", keys / "ec.key", kid="ec-1"),
    ]:
        ok, response = accepted(gateway, text)
        assert ok, (text, response)
    ws, _ = ws_connect(gateway, path=f"/v1/ws?token={token(claims(**ISS), 'ES256', keys / 'ec.key', kid='ec-1')}")
    ws.send_json({"op": "subscribe", "id": "s", "filter": {}})
    assert ws.receive_json()["type"] == "subscribed"
    ws.close()


@pytest.mark.parametrize("case, reason", [
    ("unknown kid", "no key has the token's kid"),
    ("kid of another algorithm", "is signed with"),
    ("alg none", "is signed with \"none\""),
    ("HS256 with an RSA key's kid", "is signed with \"HS256\""),
    ("wrong RSA key", "signature is not valid"),
    ("tampered claims", "signature is not valid"),
    ("retired secret", "signature is not valid"),
    ("wrong issuer", "not issued by"),
    ("no issuer", "not issued by"),
    ("kid not a string", "\"kid\" must be a string"),
])
def test_forged_and_misrouted_tokens_are_refused_with_a_reason(gateway, keys, tmp_path, case, reason):
    other = tmp_path / "other.key"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(other))
    good = token(claims(**ISS), "RS256", keys / "rsa.key", kid="rsa-1")
    text = {
        "unknown kid": token(claims(**ISS), "HS256", kid="older", secret=ROTATING_OLD),
        "kid of another algorithm": token(claims(**ISS), "ES256", keys / "ec.key", kid="rsa-1"),
        "alg none": token(claims(**ISS), "none"),
        # The classic confusion: the RSA public key used as an HMAC secret.
        "HS256 with an RSA key's kid": token(claims(**ISS), "HS256", kid="rsa-1", secret=(keys / "rsa.pub").read_text()),
        "wrong RSA key": token(claims(**ISS), "RS256", other, kid="rsa-1"),
        "tampered claims": good.split(".")[0] + "." + b64url(json.dumps(claims(sub="root", **ISS)).encode()) + "." + good.split(".")[2],
        "retired secret": token(claims(**ISS), "HS256", secret="a-secret-nobody-configured-32-bytes-long"),
        "wrong issuer": token(claims(iss="https://evil.example"), "HS256", kid="new", secret=ROTATING_NEW),
        "no issuer": token(claims(), "HS256", kid="new", secret=ROTATING_NEW),
        "kid not a string": b64url(json.dumps({"alg": "HS256", "kid": 7}).encode()) + "." + good.split(".", 1)[1],
    }[case]
    ok, response = accepted(gateway, text)
    assert not ok and response.status == 401, (case, response)
    assert reason in response.json()["error"]["message"], (case, response.json())
    posted = gateway.post("/v1/events", json.dumps({"type": "x"}), {"Authorization": f"Bearer {text}"})
    assert posted.status == 401


@pytest.mark.parametrize("key, message", [
    ({"kid": "a", "alg": "RS256", "publicKey": "WEAK"}, "RS256 needs an RSA key of 2048 bits or more"),
    ({"kid": "a", "alg": "ES256", "publicKey": "RSA"}, "ES256 needs an EC key on P-256"),
    ({"kid": "a", "alg": "RS256", "publicKey": "/nonexistent.pem"}, "cannot read /nonexistent.pem"),
])
def test_an_unusable_public_key_stops_startup_with_its_reason(keys, tmp_path, key, message):
    key = dict(key, publicKey={"WEAK": str(keys / "weak.pub"), "RSA": str(keys / "rsa.pub")}.get(key["publicKey"], key["publicKey"]))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_config(auth={"jwtKeys": [key]})))
    result = subprocess.run([herald_binary_path(), "serve", "--config", str(path), "--host", "127.0.0.1", "--port", "0"],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result


def test_jwt_key_config_errors_are_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_config(auth={"jwtIssuer": 5, "jwtKeys": [
        {"kid": "a", "alg": "HS512", "secret": "x" * 40},
        {"kid": "b", "alg": "HS256", "secret": "short"},
        {"kid": "c", "alg": "RS256", "secret": "x" * 40},
        {"kid": "c", "alg": "HS256", "secret": "y" * 40},
        {"kid": "d"},
    ]})))
    result = subprocess.run([herald_binary_path(), "check-config", str(path)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    for expected in ["$.auth.jwtIssuer", "$.auth.jwtKeys[0].alg", "$.auth.jwtKeys[1].secret", "$.auth.jwtKeys[2]",
                     "$.auth.jwtKeys[3].kid", "$.auth.jwtKeys[4].alg"]:
        assert expected in result.stdout + result.stderr, (expected, result.stdout)
