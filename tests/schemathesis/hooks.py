"""Schemathesis hooks for sessiond, loaded by scripts/schemathesis (SCHEMATHESIS_HOOKS).

Credentials follow each operation's `security` in openapi.yaml (both schemes are
`Authorization: Bearer`):
- `serviceKey`: $SESSIOND_ST_SERVICE_KEY, a key with every scope;
- `bearer`: the access token of a user signed up for that one test case (a guest for
  `upgrade`, the only operation a guest must call), so a case that logs out, changes the
  password or revokes its session spoils no other case.

Random credentials, tokens, tickets and ids only reach the "unknown" branches (401,
`active: false`, 404, `invalid_bridge_token`). So that the success branches and their response
schemas are tested too, string values of such fields are replaced by real ones in about half of
the cases (decided by the value, so a seed still replays the same run): a real login, refresh
token, access token to introspect or revoke, ticket, session or user id, a bridge token signed
for the provider that scripts/schemathesis configures. A replaced value is as schema-valid as
the one it replaces, and schemathesis re-validates a case that `before_call` changed.
"""

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid

import requests
import schemathesis

BASE = os.environ["SESSIOND_ST_URL"].rstrip("/")
SERVICE_KEY = os.environ["SESSIOND_ST_SERVICE_KEY"]
BRIDGE_SECRET = os.environ["SESSIOND_ST_BRIDGE_SECRET"]
PASSWORD = "Schemathesis: correct horse battery staple 42"


def call(method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.request(method, BASE + path, json=body, headers=headers, timeout=30)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:200]}")
    return response.json() if response.content else None


def new_user():
    email = f"st-{uuid.uuid4().hex}@example.com"
    return call("POST", "/v1/signup", body={"email": email, "password": PASSWORD})


def new_user_enrolling_totp():
    """A user with a pending authenticator: what confirming and disabling one act on."""
    tokens = new_user()
    enrolled = call("POST", "/v1/mfa/totp", token=tokens["access_token"])
    return {**tokens, "totp_secret": enrolled["secret"]}


def totp(secret_base32):
    """The current RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret."""
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    mac = hmac.new(key, (int(time.time()) // 30).to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 15
    value = int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def new_guest():
    return call("POST", "/v1/guest", body={})


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bridge_token():
    """An HS256 token of the `schemathesis` provider that scripts/schemathesis configures."""
    now = int(time.time())
    subject = uuid.uuid4().hex
    claims = {
        "iss": "https://issuer.schemathesis.invalid",
        "aud": "sessiond-schemathesis",
        "sub": subject,
        "iat": now,
        "exp": now + 300,
        "email": f"bridge-{subject}@example.com",
        "email_verified": True,
    }
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(BRIDGE_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64url(signature.digest())}"


_login_user = {}
_login_lock = threading.Lock()


def login_email():
    """The email of one user made for the login cases (its password is PASSWORD)."""
    with _login_lock:
        if "email" not in _login_user:
            _login_user["email"] = new_user()["user"]["email"]
        return _login_user["email"]


def new_ticket():
    return call("POST", "/v1/ws-tickets", token=new_guest()["access_token"])["ticket"]


def security_schemes(operation):
    """Names of the schemes the operation accepts (its own `security`, else the document's)."""
    requirements = operation.definition.raw.get("security")
    if requirements is None:
        requirements = operation.schema.raw_schema.get("security", [])
    return {name for requirement in requirements for name in requirement}


def operation_id(case):
    return case.operation.definition.raw.get("operationId")


def is_uuid(value):
    try:
        return len(value) == 36 and uuid.UUID(value) is not None
    except (TypeError, ValueError, AttributeError):
        return False


def pick(value):
    """True for about half of the string values, the same for the same value."""
    return isinstance(value, str) and sum(value.encode("utf-8", "surrogatepass")) % 2 == 0


def pick_uuid(value):
    """True for about half of the valid UUIDs (other strings are left as generated)."""
    return is_uuid(value) and pick(value)


def replace_in_body(case, field, make):
    if isinstance(case.body, dict) and pick(case.body.get(field)):
        case.body = {**case.body, field: make()}


def replace_path_id(case, make):
    params = case.path_parameters or {}
    if pick_uuid(params.get("id")):
        case.path_parameters = {**params, "id": make()}


@schemathesis.auth(refresh_interval=None)
class Credentials:
    def get(self, case, ctx):
        schemes = security_schemes(ctx.operation)
        if "serviceKey" in schemes:
            return {"token": SERVICE_KEY}
        if "bearer" in schemes:
            op = operation_id(case)
            if op == "upgrade":
                tokens = new_guest()
            elif op in ("confirmTotp", "disableTotp"):
                tokens = new_user_enrolling_totp()
            else:
                tokens = new_user()
            return {"token": tokens["access_token"], "tokens": tokens}
        return None

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data['token']}"}
        tokens = data.get("tokens")
        if tokens is None:
            return
        op = operation_id(case)
        if op == "changePassword":
            replace_in_body(case, "current_password", lambda: PASSWORD)
        elif op == "upgrade":
            replace_in_body(case, "refresh_token", lambda: tokens["refresh_token"])
        elif op == "revokeSession":
            replace_path_id(case, lambda: tokens["session_id"])
        elif op == "confirmTotp":
            replace_in_body(case, "code", lambda: totp(tokens["totp_secret"]))
        elif op == "reauthenticate":
            replace_in_body(case, "password", lambda: PASSWORD)
            replace_in_body(case, "refresh_token", lambda: tokens["refresh_token"])


@schemathesis.hook
def before_call(context, case, kwargs):
    op = operation_id(case)
    if op == "login":
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("email"), str) and pick(body.get("password")):
            case.body = {**body, "email": login_email(), "password": PASSWORD}
    elif op == "bridge":
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("provider"), str) and pick(body.get("token")):
            case.body = {**body, "provider": "schemathesis", "token": bridge_token()}
    elif op == "refreshToken":
        replace_in_body(case, "refresh_token", lambda: new_guest()["refresh_token"])
    elif op == "introspect":
        replace_in_body(case, "token", lambda: new_user()["access_token"])
    elif op == "revokeToken":
        replace_in_body(case, "token", lambda: new_guest()["refresh_token"])
    elif op == "redeemWsTicket":
        replace_in_body(case, "ticket", new_ticket)
    elif op and op.startswith("admin") and "{id}" in case.operation.path:
        replace_path_id(case, lambda: new_user()["user"]["id"])
