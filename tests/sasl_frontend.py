#!/usr/bin/env python3
"""A small, independent Kafka-protocol SASL server for the client's integration tests.

It checks the Rust client's SASL code (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER, KIP-368
re-authentication) against code that is not ours: requests and responses are
decoded/encoded with kafka-python's protocol classes where they fit, and the
server side of SCRAM is scramp 1.5.0 (pure Python, `pip install scramp`), so the
client's SCRAM is checked against a second, independent SCRAM implementation.

    python3 tests/sasl_frontend.py --users USERS_JSON \
        --mechanisms PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER [--session-lifetime-ms N] [--port 0]

USERS_JSON is a JSON object {"user": "password", ...}. stdout gets one line
`listening on 127.0.0.1:PORT`, then `authenticated USER MECH` or
`reauthenticated USER MECH` per success; diagnostics go to stderr.
Served, with Kafka's connection rules: ApiVersions 0-3, SaslHandshake 0-1 (v0 =>
unframed SASL tokens), SaslAuthenticate 0-2, Metadata 1 (after authentication
only; one broker, every requested topic UNKNOWN_TOPIC_OR_PARTITION). Anything
else, a non-SaslAuthenticate request between SaslHandshake and the end of the
exchange, a failed authentication, or a request other than SaslHandshake after
the session lifetime has run out closes the connection, as Kafka does.

OAUTHBEARER (RFC 7628, KIP-255/342) is checked as Kafka's broker does with its
unsecured-token validator: the client's first message is parsed with the pattern of
Kafka's OAuthBearerClientInitialResponse (`n,[a=AUTHZID],\\x01auth=Bearer TOKEN\\x01`,
`key=value\\x01` extensions, `\\x01`; a message that does not match is refused at once,
error 58). TOKEN is a JWT `header.payload.signature` (base64url, unpadded; the
signature is not checked and may be empty): header and payload must be JSON objects,
`sub` a string naming a user of USERS_JSON (passwords do not matter), `exp` a number
in the future, `iat` (optional) a number at most 60 s ahead of now and before `exp`.
A token that fails gets Kafka's answer: the RFC 7628 error challenge
`{"status":"invalid_token"}` with error code 0, then, after the client's `\\x01` (or
anything else), error 58 with the reason (never the token) and the connection closed.
An AUTHZID other than `sub` is refused at once (error 58). Success also prints
`extensions USER k=v,...` (sorted by key, `\\` `\\t` `\\r` `\\n` escaped as such; `-`
when none), and the session lifetime (KIP-368) is capped at the token's `exp`.

Proxy mode, `--upstream HOST:PORT [--advertised-port P]`: the SASL layer in front
of a plaintext single-broker Kafka (librdkafka's mock cluster, tansu). ApiVersions
announces the upstream's ranges (asked once at startup with ApiVersions v0), with
ApiVersions 0-3, SaslHandshake 0-1, SaslAuthenticate 0-2, Metadata exactly 1 and
FindCoordinator 0-1. Once authenticated, every other request is forwarded byte for
byte over one upstream connection per client connection, one request at a time,
and the response relayed unchanged, except that the broker addresses in Metadata v1
and FindCoordinator v0/v1 responses become 127.0.0.1:P (default: our own port).
Produce with acks=0 gets no response (a stray upstream answer to one, as librdkafka's
mock sends, is dropped). An upstream failure closes the connection.
"""
import argparse
import base64
import io
import json
import math
import re
import socket
import socketserver
import os
import struct
import sys
import threading
import time

try:
    import scramp
except ImportError as e:
    sys.exit("sasl_frontend.py: cannot import scramp (pip install scramp): %s" % e)
from kafka.protocol.api_versions import (ApiVersionsRequest_v3, ApiVersionsResponse_v0, ApiVersionsResponse_v1,
                                         ApiVersionsResponse_v2, ApiVersionsResponse_v3)
from kafka.protocol.find_coordinator import FindCoordinatorResponse
from kafka.protocol.metadata import MetadataRequest_v1, MetadataResponse_v1
from kafka.protocol.sasl_authenticate import SaslAuthenticateRequest, SaslAuthenticateResponse
from kafka.protocol.sasl_handshake import SaslHandshakeRequest, SaslHandshakeResponse
from kafka.protocol.types import CompactBytes, CompactString, Int16, Int64, String, TaggedFields

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE, METADATA = 18, 17, 36, 3
PRODUCE, FIND_COORDINATOR = 0, 10
APIS = [(API_VERSIONS, 0, 3), (SASL_HANDSHAKE, 0, 1), (SASL_AUTHENTICATE, 0, 2), (METADATA, 1, 1)]
UNKNOWN_TOPIC_OR_PARTITION, SASL_FAILED, UNSUPPORTED_MECHANISM, ILLEGAL_SASL_STATE, UNSUPPORTED_VERSION = 3, 58, 33, 34, 35
_out = threading.Lock()

# Kafka's OAuthBearerClientInitialResponse patterns (SASLNAME is [\x01-\x7F&&[^=,]]|=2C|=3D).
_SASLNAME = r"(?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|=2C|=3D)+"
_KVPAIRS = r"(?:[A-Za-z]+=[\x21-\x7e \t\r\n]+\x01)*"
OAUTH_FIRST = re.compile(r"n,(?:a=(?P<authzid>%s))?,\x01(?P<kvpairs>%s)\x01" % (_SASLNAME, _KVPAIRS))
OAUTH_AUTH = re.compile(r"(?P<scheme>[A-Za-z0-9_]+) +(?P<token>[-_.A-Za-z0-9]+)")
OAUTH_CHALLENGE = b'{"status":"invalid_token"}'  # RFC 7628 section 3.2.2, as Kafka's server sends it
CLOCK_SKEW_S = 60  # how far in the future a token's iat may be


def say(line, err=False):
    with _out:
        stream = sys.stderr if err else sys.stdout
        stream.write(line + "\n")
        stream.flush()


class AuthFailed(Exception):
    """The credentials or SASL messages are wrong: answer error 58 (when framed), then close."""


class Close(Exception):
    """Drop the connection, as Kafka does for a request it does not accept in this state."""


class TokenRejected(Exception):
    """The OAUTHBEARER token is not valid: the reason (never the token itself)."""


def oauth_first(token):
    """Parses an OAUTHBEARER client first message: (authzid, token, {extension: value}); raises AuthFailed."""
    m = OAUTH_FIRST.fullmatch(token.decode("utf-8", "replace"))
    if not m:
        raise AuthFailed("Authentication failed: invalid OAUTHBEARER client first message")
    pairs = {}
    for kv in m.group("kvpairs").split("\x01")[:-1]:
        k, v = kv.split("=", 1)
        pairs[k] = v  # a repeated key: the last one, as Kafka's Utils.parseMap
    auth = pairs.pop("auth", None)
    if auth is None:
        raise AuthFailed("Authentication failed: invalid OAUTHBEARER client first message: 'auth' not specified")
    a = OAUTH_AUTH.fullmatch(auth)
    if not a:
        raise AuthFailed("Authentication failed: invalid OAUTHBEARER client first message: invalid 'auth' format")
    if a.group("scheme").lower() != "bearer":
        raise AuthFailed("Authentication failed: invalid scheme in OAUTHBEARER client first message")
    return m.group("authzid") or "", a.group("token"), pairs


def _no_constant(name):  # NaN, Infinity: not JSON
    raise ValueError(name)


def _jws_part(part, what):
    try:
        raw = base64.b64decode(part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4), validate=True)
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise TokenRejected("malformed token (its %s is not base64url-encoded JSON)" % what)
    if not isinstance(value, dict):
        raise TokenRejected("malformed token (its %s is not a JSON object)" % what)
    return value


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_token(token, users, now):
    """Kafka's unsecured-JWS validation, plus: sub must be a known user. Returns (user, exp); raises TokenRejected."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("malformed token (not 3 dot-separated base64url values)")
    _jws_part(parts[0], "header")
    claims = _jws_part(parts[1], "payload")
    sub, exp, iat = claims.get("sub"), claims.get("exp"), claims.get("iat")
    if not isinstance(sub, str) or not sub.strip():
        raise TokenRejected("the token has no 'sub' claim (a string) naming its principal")
    if iat is not None and not _number(iat):
        raise TokenRejected("the token's 'iat' claim is not a number")
    if iat is not None and iat > now + CLOCK_SKEW_S:
        raise TokenRejected("the token's 'iat' is in the future")
    if not _number(exp):
        raise TokenRejected("the token has no 'exp' claim (a number)")
    if now >= exp:
        raise TokenRejected("the token expired")
    if iat is not None and exp <= iat:
        raise TokenRejected("the token's 'exp' is not after its 'iat'")
    if sub not in users:
        raise TokenRejected("unknown principal %s" % sub)
    return sub, exp


def _escape(value):
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def enc(cls, *fields):  # encode with a kafka-python response class's schema
    return cls.SCHEMA.encode(fields)


def read_exact(sock, n, who="client"):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise Close("%s closed the connection" % who) if buf else EOFError()
        buf += chunk
    return buf


def read_frame(sock, who="client"):
    size = struct.unpack(">i", read_exact(sock, 4, who))[0]
    if not 0 <= size <= 100 << 20:
        raise Close("bad frame size %d from %s" % (size, who))
    return read_exact(sock, size, who)


def produce_acks(ver, buf):
    """The acks of a Produce request; buf is just past the request header's client_id."""
    if ver >= 9:  # flexible: request header v2 (tagged fields), compact transactional_id
        TaggedFields.decode(buf)
        CompactString("utf-8").decode(buf)
    elif ver >= 3:
        String("utf-8").decode(buf)
    return Int16.decode(buf)


def upstream_apis(addr):
    """Ask the upstream broker for its ApiVersions (v0) and build the list we announce in proxy mode."""
    with socket.create_connection(addr, timeout=10) as s:
        client_id = b"sasl_frontend"
        s.sendall(struct.pack(">ihhih", 10 + len(client_id), API_VERSIONS, 0, 0, len(client_id)) + client_id)
        resp = read_frame(s, "upstream")
    error, ranges = ApiVersionsResponse_v0.SCHEMA.decode(io.BytesIO(resp[4:]))
    if error:
        raise OSError("upstream ApiVersions v0 failed with error %d" % error)
    apis = APIS[:3]  # ApiVersions, SaslHandshake, SaslAuthenticate: always ours
    for key, lo, hi in ranges:
        if key == METADATA:
            lo, hi = (1, 1) if lo <= 1 <= hi else (1, 0)
        elif key == FIND_COORDINATOR:
            hi = min(hi, 1)
        if key not in (API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE) and lo <= hi:
            apis.append((key, lo, hi))
    return apis


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.user = self.mech = self.pending = self.expires = None
        self.lifetime_ms = 0  # the session lifetime granted by the last authentication
        self.raw = self.versions_done = False
        self.reauth_ok = False  # KIP-368: only clients that used SaslAuthenticate v1+ may re-authenticate
        self.up = None  # proxy mode: the upstream connection, opened at the first forwarded request
        self.acks0 = set()  # correlation ids (4 bytes) of forwarded Produce requests with acks=0
        try:
            while True:
                size = struct.unpack(">i", read_exact(self.request, 4))[0]
                if not 0 <= size <= 100 << 20:
                    raise Close("bad frame size %d" % size)
                frame = read_exact(self.request, size)
                (self.raw_token if self.raw else self.serve)(frame)
        except EOFError:
            pass
        except (Close, AuthFailed, OSError, ValueError, struct.error) as e:
            say("closing %s:%d: %s" % (self.client_address + (e,)), err=True)
        finally:
            if self.up is not None:
                self.up.close()

    def send(self, data):
        self.request.sendall(struct.pack(">i", len(data)) + data)

    def serve(self, frame):
        key, ver, corr = struct.unpack(">hhi", frame[:8])
        if os.environ.get("FK_FRONTEND_DEBUG"):
            say("request api_key %d v%d corr %d" % (key, ver, corr), err=True)
        buf = io.BytesIO(frame[8:])
        String("utf-8").decode(buf)  # client_id
        flexible = (key == API_VERSIONS and ver >= 3) or (key == SASL_AUTHENTICATE and ver >= 2)
        if flexible:
            TaggedFields.decode(buf)
        if self.pending is not None and key != SASL_AUTHENTICATE:
            raise Close("unexpected request (api_key %d) during SASL authentication" % key)
        reauth = key == SASL_HANDSHAKE and self.reauth_ok
        if self.user and not reauth and self.expires and time.monotonic() > self.expires:
            raise Close("session of %s expired (no re-authentication)" % self.user)
        header = struct.pack(">i", corr)
        if key == API_VERSIONS:
            self.send(header + self.api_versions(ver, buf))  # always response header v0
        elif key == SASL_HANDSHAKE and ver <= 1:
            self.handshake(header, ver, SaslHandshakeRequest[ver].decode(buf).mechanism)
        elif key == SASL_AUTHENTICATE and ver <= 2:
            token = CompactBytes.decode(buf) if ver >= 2 else SaslAuthenticateRequest[ver].decode(buf).auth_bytes
            self.authenticate(header + (b"\0" if flexible else b""), ver, token)
        elif key == METADATA and ver == 1 and self.user and not self.server.upstream:
            topics = MetadataRequest_v1.decode(buf).topics or []
            port = self.server.server_address[1]
            self.send(header + enc(MetadataResponse_v1, [(1, "127.0.0.1", port, None)], 1,
                                   [(UNKNOWN_TOPIC_OR_PARTITION, t, False, []) for t in topics]))
        elif (self.user and self.server.upstream and key not in (SASL_HANDSHAKE, SASL_AUTHENTICATE)
              and not (key == METADATA and ver != 1) and not (key == FIND_COORDINATOR and ver > 1)):
            self.forward(key, ver, frame, buf)
        else:
            state = "authenticated" if self.user else "unauthenticated"
            raise Close("unsupported request api_key %d v%d on an %s connection" % (key, ver, state))

    def forward(self, key, ver, frame, buf):
        """Proxy mode: send the request frame upstream as is, relay its one response (none for acks=0)."""
        up = self.server.upstream
        try:
            if self.up is None:
                self.up = socket.create_connection(up, timeout=10)
                self.up.settimeout(None)
            self.up.sendall(struct.pack(">i", len(frame)) + frame)
            if key == PRODUCE and produce_acks(ver, buf) == 0:
                return self.acks0.add(frame[4:8])  # no response; but librdkafka's mock sends one anyway
            resp = read_frame(self.up, "upstream")
            while resp[:4] != frame[4:8] and resp[:4] in self.acks0:  # drop such stray acks=0 responses
                resp = read_frame(self.up, "upstream")
        except (OSError, EOFError, Close) as e:
            raise Close("upstream %s:%d: %s" % (up + (str(e) or "closed the connection",)))
        self.acks0.clear()  # responses come in order: none of those can follow
        if resp[:4] != frame[4:8]:
            raise Close("upstream answered correlation id %d to request %d" % struct.unpack(">ii", resp[:4] + frame[4:8]))
        adv = ("127.0.0.1", self.server.advertised_port)
        body = io.BytesIO(resp[4:])
        if key == METADATA:
            brokers, controller, topics = MetadataResponse_v1.SCHEMA.decode(body)
            resp = resp[:4] + enc(MetadataResponse_v1, [(b[0],) + adv + (b[3],) for b in brokers], controller, topics)
        elif key == FIND_COORDINATOR:
            cls = FindCoordinatorResponse[ver]
            fields = cls.SCHEMA.decode(body)
            if fields[-3] >= 0:  # coordinator_id; -1 (with an error code) means none: leave it alone
                resp = resp[:4] + enc(cls, *(fields[:-2] + adv))
        self.send(resp)

    def api_versions(self, ver, buf):
        apis = self.server.apis
        if ver > 3:  # Kafka answers v0 with only its own ApiVersions range so the client can retry
            return enc(ApiVersionsResponse_v0, UNSUPPORTED_VERSION, [APIS[0]])
        if not self.user:
            if self.versions_done:
                raise Close("second ApiVersions before SaslHandshake")
            self.versions_done = True
        if ver == 3:
            ApiVersionsRequest_v3.decode(buf)
            return enc(ApiVersionsResponse_v3, 0, [a + ({},) for a in apis], 0, {})
        if ver == 0:
            return enc(ApiVersionsResponse_v0, 0, apis)
        return enc((ApiVersionsResponse_v1, ApiVersionsResponse_v2)[ver - 1], 0, apis, 0)

    def handshake(self, header, ver, mechanism):
        enabled = self.server.mechanisms
        if self.user and not self.reauth_ok:  # not a re-authentication: Kafka's request handler refuses it
            return self.send(header + enc(SaslHandshakeResponse[ver], ILLEGAL_SASL_STATE, []))
        if mechanism not in enabled:
            self.send(header + enc(SaslHandshakeResponse[ver], UNSUPPORTED_MECHANISM, enabled))
            raise Close("SASL mechanism %r not enabled" % mechanism)
        self.pending = p = {"mech": mechanism, "user": None, "scram": None, "bad": None, "oauth_error": None}
        if self.user and mechanism != self.mech:  # Kafka accepts the handshake, then drops the next token
            p["bad"] = "SASL mechanism %r is not supported for re-authentication of %r" % (mechanism, self.mech)
        elif mechanism.startswith("SCRAM-"):
            infos = self.server.scram[mechanism]

            def lookup(user):
                p["user"] = user
                return infos.get(user)
            p["scram"] = scramp.ScramMechanism(mechanism).make_server(lookup)
        self.raw = ver == 0
        self.send(header + enc(SaslHandshakeResponse[ver], 0, enabled))

    def authenticate(self, header, ver, token):
        if self.pending is None:
            if not self.user:
                raise Close("SaslAuthenticate before SaslHandshake")
            return self.send(header + self.auth_response(ver, ILLEGAL_SASL_STATE, "SaslAuthenticate request "
                                                         "received after successful authentication", b"", 0))
        try:
            out, done = self.step(token)
        except AuthFailed as e:
            self.send(header + self.auth_response(ver, SASL_FAILED, str(e), b"", 0))
            raise
        lifetime = self.lifetime_ms if done else 0
        if done:
            self.reauth_ok = ver >= 1
        self.send(header + self.auth_response(ver, 0, None, out, lifetime))

    def auth_response(self, ver, error, message, out, lifetime):
        if ver < 2:
            return enc(SaslAuthenticateResponse[ver], error, message, out, *([lifetime] if ver else []))
        return (Int16.encode(error) + CompactString("utf-8").encode(message) + CompactBytes.encode(out)
                + Int64.encode(lifetime) + TaggedFields.encode({}))

    def raw_token(self, token):  # after SaslHandshake v0: unframed tokens, failure just closes
        out, done = self.step(token)
        self.raw = not done
        self.send(out)

    def step(self, token):
        """One SASL step: returns (bytes for the client, finished); raises AuthFailed."""
        p = self.pending
        if p["bad"]:
            raise Close(p["bad"])
        if p["mech"] == "PLAIN":
            parts = token.split(b"\0")
            if len(parts) != 3:
                raise AuthFailed("Authentication failed: malformed PLAIN message")
            authzid, user, password = (x.decode("utf-8", "replace") for x in parts)
            if not user:
                raise AuthFailed("Authentication failed: username not specified")
            if authzid and authzid != user:
                raise AuthFailed("Authentication failed: authorization id %s differs from user %s" % (authzid, user))
            if self.server.users.get(user) != password:
                raise AuthFailed("Authentication failed: invalid credentials for user %s" % user)
            self.done(user)
            return b"", True
        if p["mech"] == "OAUTHBEARER":
            return self.oauthbearer(p, token)
        server = p["scram"]
        try:
            if server.stage is None:
                server.set_client_first(token.decode("utf-8", "replace"))
                return server.get_server_first().encode(), False
            server.set_client_final(token.decode("utf-8", "replace"))
            final = server.get_server_final().encode()
        except scramp.ScramException as e:
            code = getattr(e.server_error, "value", None)
            if code in ("invalid-proof", "unknown-user"):
                raise AuthFailed("Authentication failed: invalid credentials for user %s" % p["user"])
            raise AuthFailed("Authentication failed: %s" % e.args[0])
        self.done(p["user"])
        return final, True

    def oauthbearer(self, p, token):
        """OAUTHBEARER as Kafka's OAuthBearerSaslServer with its unsecured-token validator."""
        if p["oauth_error"] is not None:  # after our error challenge the client must send \x01; either way: refused
            raise AuthFailed(p["oauth_error"])
        authzid, bearer, extensions = oauth_first(token)
        now = time.time()
        try:
            user, exp = check_token(bearer, self.server.users, now)
        except TokenRejected as e:
            p["oauth_error"] = "Authentication failed: %s" % e
            say("OAUTHBEARER token refused: %s" % e, err=True)
            return OAUTH_CHALLENGE, False
        if authzid and authzid != user:
            raise AuthFailed("Authentication failed: Client requested an authorization id (%s) that is different "
                             "from the token's principal name (%s)" % (authzid, user))
        ms = max(1, int(exp * 1000) - int(now * 1000))  # Kafka caps the session at the token's expiry
        if self.server.lifetime_ms:
            ms = min(ms, self.server.lifetime_ms)
        ext = ",".join("%s=%s" % (k, _escape(v)) for k, v in sorted(extensions.items())) or "-"
        self.done(user, ms, "extensions %s %s" % (user, ext))
        return b"", True

    def done(self, user, lifetime_ms=None, also=None):
        if self.user is not None and user != self.user:
            raise AuthFailed("Cannot change principals during re-authentication from User:%s: User:%s"
                             % (self.user, user))
        word = "reauthenticated" if self.user else "authenticated"
        self.user, self.mech, self.pending = user, self.pending["mech"], None
        ms = self.lifetime_ms = self.server.lifetime_ms if lifetime_ms is None else lifetime_ms
        self.expires = time.monotonic() + ms / 1000.0 if ms else None
        say("%s %s %s" % (word, user, self.mech) + ("\n" + also if also else ""))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", required=True, help="JSON file {user: password}")
    ap.add_argument("--mechanisms", required=True, help="comma-separated, e.g. PLAIN,SCRAM-SHA-256")
    ap.add_argument("--session-lifetime-ms", type=int, default=0, help="0 = sessions do not expire")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--upstream", metavar="HOST:PORT", help="proxy mode: plaintext Kafka broker to forward to")
    ap.add_argument("--no-sasl-authenticate", action="store_true",
                    help="act as Kafka 0.10-0.11: SaslHandshake v0 only, raw tokens, no SaslAuthenticate")
    ap.add_argument("--advertised-port", type=int, default=0,
                    help="proxy mode: port put in Metadata/FindCoordinator (default: our own)")
    args = ap.parse_args()
    with open(args.users) as f:
        users = json.load(f)
    mechanisms = [m.strip() for m in args.mechanisms.split(",") if m.strip()]
    unknown = [m for m in mechanisms if m not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")]
    if unknown:
        sys.exit("sasl_frontend.py: unsupported mechanism(s): %s" % ", ".join(unknown))
    server = Server(("127.0.0.1", args.port), Handler)
    server.users, server.mechanisms, server.lifetime_ms = users, mechanisms, args.session_lifetime_ms
    server.upstream, server.apis = None, APIS
    server.advertised_port = args.advertised_port or server.server_address[1]
    if args.upstream:
        host, _, port = args.upstream.rpartition(":")
        server.upstream = (host, int(port))
        try:
            server.apis = upstream_apis(server.upstream)
        except (OSError, EOFError, Close, ValueError, struct.error) as e:
            sys.exit("sasl_frontend.py: upstream %s: %s" % (args.upstream, str(e) or "closed the connection"))
    if args.no_sasl_authenticate:
        server.apis = [(k, lo, 0 if k == SASL_HANDSHAKE else hi) for k, lo, hi in server.apis if k != SASL_AUTHENTICATE]
    server.scram = {m: {u: scramp.ScramMechanism(m).make_auth_info(pw, iteration_count=4096)
                        for u, pw in users.items()} for m in mechanisms if m.startswith("SCRAM-")}
    say("listening on 127.0.0.1:%d" % server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
