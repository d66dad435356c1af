"""API v2 authentication (splynx §1.3): Splynx-EA signatures, access tokens
(JWT HS256) with refresh tokens, Basic for "unsecure" keys, and the exchange of
a portal/admin PHP session for a token (``auth_type=session``, splynx §4).
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from urllib.parse import parse_qs

from .errors import ApiError

# Permission controllers (names as add-ons declare them, splynx §3.2), one per resource.
CONTROLLERS = [
    "api\\admin\\customers\\Customer", "api\\admin\\customers\\CustomerBilling",
    "api\\admin\\customers\\BillingInfo", "api\\admin\\customers\\CustomerPaymentAccounts",
    "api\\admin\\finance\\Invoices", "api\\admin\\finance\\Requests",
    "api\\admin\\finance\\Payments", "api\\admin\\finance\\Transactions",
    "api\\admin\\finance\\InvoiceRelations", "api\\admin\\finance\\PaymentMethods",
    "api\\admin\\finance\\TransactionCategories", "api\\admin\\finance\\BankStatements",
    "api\\admin\\finance\\BankStatementsRecords", "api\\admin\\config\\Config",
    "api\\admin\\config\\Modules", "api\\admin\\config\\EntryPoints",
    "api\\admin\\administration\\Administrators", "api\\admin\\administration\\Partners",
    "api\\admin\\config\\CompanyInfo",
]

_EA_HEADER = re.compile(r"^Splynx-EA\s*\((.*)\)\s*$", re.DOTALL)

# splynx §1.3b: the JWT "model" claim per subject. Admin and API key values are
# decoded from the docs' screenshots; the customer one is [I].
MODELS = {
    "admin": "models\\admin\\administration\\Administrators",
    "api_key": "models\\admin\\administration\\ApiKeys",
    "customer": "models\\common\\customers\\Customer",
}


def signature(secret, nonce, key):
    """``UPPER(hex(HMAC-SHA256(secret, str(nonce) + key)))`` (splynx §1.3a)."""
    return hmac.new(secret.encode(), f"{nonce}{key}".encode(), hashlib.sha256).hexdigest().upper()


class Principal:
    """Who is calling: an API key, an administrator or a customer."""

    def __init__(self, kind, user_id, api_key=None, jti=None):
        self.kind, self.id, self.api_key, self.jti = kind, user_id, api_key, jti

    @property
    def customer_id(self):
        """The customer a customer token is restricted to, else None."""
        return self.id if self.kind == "customer" else None

    def permissions(self):
        """The permission map shown in the token answer (splynx §1.3b)."""
        if self.kind == "customer":
            return {}
        perms = self.api_key["permissions"] if self.kind == "api_key" else None
        if perms is None:
            perms = {c: ["index", "view", "add", "update", "delete"] for c in CONTROLLERS}
        return {c.replace("api\\", "", 1): {a: "allow" for a in actions} for c, actions in perms.items()}

    def require(self, controller, action):
        """403 FORBIDDEN unless this principal may run ``controller``/``action``.

        Administrators have every right [I: the seed admin is a super-administrator];
        customers are limited by the API layer to their own records, read-only.
        """
        if self.kind == "customer":
            if action not in ("index", "view"):
                raise ApiError(403, "FORBIDDEN", "Customers may not modify this resource")
            return
        if self.kind != "api_key":
            return
        perms = self.api_key["permissions"]
        if perms is not None and action not in perms.get(controller, ()):
            raise ApiError(403, "FORBIDDEN",
                           f"API key has no permission {controller}::{action}")


# ------------------------------------------------------------------ JWT
def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(payload, secret):
    """A compact HS256 JWT."""
    header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(sig)}"


def decode_jwt(token, secret):
    """The payload of a JWT signed with ``secret``; 401 if forged or malformed."""
    try:
        header, body, sig = token.split(".")
        expected = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(sig)):
            raise ValueError("signature")
        if json.loads(_unb64(header)).get("alg") != "HS256":
            raise ValueError("alg")
        return json.loads(_unb64(body))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(401, "UNAUTHORIZED", "Invalid access token") from None


# --------------------------------------------------------- request auth
def authenticate(store, request):
    """The Principal of an API request, or ApiError 401."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise ApiError(401, "MISSED_AUTHORIZATION_HEADER", "Authorization header is missing")
    if header.lower().startswith("basic "):
        return _basic(store, header[6:].strip(), request)
    match = _EA_HEADER.match(header)
    if not match:
        raise ApiError(401, "INVALID_AUTH_TYPE", "Unsupported authorization scheme")
    params = {k: v[-1] for k, v in parse_qs(match.group(1), keep_blank_values=True).items()}
    if "access_token" in params:
        return _access_token(store, params["access_token"], request)
    return _signed(store, params, request)


def _key_record(store, key, request):
    record = store.api_keys.get(key or "")
    if record is None or not record["enabled"]:
        raise ApiError(401, "UNAUTHORIZED", "Unknown or disabled API key")
    if record["allowed_ips"] and request.remote_addr not in record["allowed_ips"]:
        raise ApiError(401, "UNAUTHORIZED", f"IP {request.remote_addr} is not allowed for this key")
    return record


def check_signature(store, key, nonce, sig, request):
    """Verify key/nonce/signature and record the nonce (splynx §1.3a).

    Nonce rule [I]: by default it must be greater than the last one accepted for
    the key (what the official clients produce); ``nonce_mode`` may relax it to
    "unique" (never reused) or "off".
    """
    record = _key_record(store, key, request)
    try:
        nonce_value = int(str(nonce))
    except (TypeError, ValueError):
        raise ApiError(401, "UNAUTHORIZED", "Nonce must be an integer") from None
    if not sig or not hmac.compare_digest(signature(record["secret"], nonce_value, record["key"]), str(sig)):
        raise ApiError(401, "UNAUTHORIZED", "Invalid signature")
    mode = store.settings["nonce_mode"]
    if mode == "increasing" and record["last_nonce"] is not None and nonce_value <= record["last_nonce"]:
        raise ApiError(401, "UNAUTHORIZED", "Nonce must be greater than the last one used")
    if mode == "unique" and nonce_value in record["used_nonces"]:
        raise ApiError(401, "UNAUTHORIZED", "Nonce was already used")
    record["last_nonce"] = max(nonce_value, record["last_nonce"] or nonce_value)
    if mode == "unique":
        record["used_nonces"].add(nonce_value)
    return record


def _signed(store, params, request):
    record = check_signature(store, params.get("key"), params.get("nonce"), params.get("signature"), request)
    return Principal("api_key", record["id"], api_key=record)


def _basic(store, encoded, request):
    try:
        key, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(401, "UNAUTHORIZED", "Malformed Basic credentials") from None
    record = _key_record(store, key, request)
    # splynx §1.3c: Basic works only for keys with "Unsecure access" on.
    if not record["unsecure_access"]:
        raise ApiError(401, "UNAUTHORIZED", "Basic authorization is not enabled for this key")
    if not hmac.compare_digest(record["secret"], secret):
        raise ApiError(401, "UNAUTHORIZED", "Invalid key or secret")
    return Principal("api_key", record["id"], api_key=record)


def _access_token(store, token, request):
    if not token:
        raise ApiError(401, "EMPTY_ACCESS_TOKEN", "Access token is empty")
    payload = decode_jwt(token, store.jwt_secret)
    entry = store.tokens.get(payload.get("jti"))
    if entry is None:
        raise ApiError(401, "UNAUTHORIZED", "Unknown access token")
    if entry["banned"]:
        raise ApiError(401, "TOKEN_BANNED", "Access token was revoked")
    if time.time() >= entry["exp"]:
        raise ApiError(401, "EXPIRED_ACCESS_TOKEN", "Access token has expired")
    if store.settings["bind_tokens"]:
        if entry["ip"] != request.remote_addr:
            raise ApiError(401, "IP_CHANGED", "Access token was issued to another IP")
        if entry["ua"] != request.headers.get("User-Agent", ""):
            raise ApiError(401, "USER_AGENT_CHANGED", "Access token was issued to another User-Agent")
    principal = entry["principal"]
    if principal.kind == "api_key":
        principal.api_key = _key_record(store, principal.api_key["key"], request)
    return principal


# ---------------------------------------------------------------- tokens
def _issue(store, principal, request):
    now = int(time.time())
    access_exp = now + int(store.settings["access_token_ttl"])
    refresh_exp = access_exp + int(store.settings["refresh_token_extra"])
    jti = secrets.token_hex(16)
    refresh = secrets.token_hex(16)
    principal.jti = jti
    payload = {"sub": principal.kind, "id": str(principal.id), "exp": access_exp, "jti": jti,
               "model": MODELS[principal.kind]}
    store.tokens[jti] = {"principal": principal, "exp": access_exp, "banned": False,
                         "ip": request.remote_addr, "ua": request.headers.get("User-Agent", "")}
    store.refresh_tokens[refresh] = {"jti": jti, "exp": refresh_exp}
    return {"access_token": encode_jwt(payload, store.jwt_secret),
            "access_token_expiration": access_exp,
            "refresh_token": refresh, "refresh_token_expiration": refresh_exp}


def create_tokens(store, body, request):
    """``POST admin/auth/tokens`` for each auth_type (splynx §1.3b)."""
    auth_type = str(body.get("auth_type") or "")
    if not auth_type:
        raise ApiError(400, "INVALID_AUTH_TYPE", "auth_type: cannot be blank")
    if auth_type == "admin":
        admin = next((a for a in store.admins.values() if a["login"] == body.get("login")), None)
        if admin is None or not hmac.compare_digest(admin["password"], str(body.get("password", ""))):
            raise ApiError(401, "UNAUTHORIZED", "Invalid login or password")
        principal = Principal("admin", admin["id"])
    elif auth_type == "customer":
        customer = store.customer_by_login(body.get("login"))
        if customer is None or not hmac.compare_digest(customer["password"], str(body.get("password", ""))):
            raise ApiError(401, "UNAUTHORIZED", "Invalid login or password")
        if customer["status"] == "disabled":
            raise ApiError(401, "UNAUTHORIZED", "Customer is disabled")
        principal = Principal("customer", customer["id"])
    elif auth_type == "api_key":
        record = check_signature(store, body.get("key"), body.get("nonce"), body.get("signature"), request)
        principal = Principal("api_key", record["id"], api_key=record)
    elif auth_type == "session":
        # splynx §1.3b names the field session_id; the API blueprint text says
        # "session" [I: both accepted].
        session_id = str(body.get("session_id") or body.get("session") or "")
        if not session_id:
            raise ApiError(400, "INVALID_INPUT_DATA", "session_id: cannot be blank")
        session = store.sessions.get(session_id)
        if session is None:
            # [I] no internal_code names an unknown session; UNAUTHORIZED is the
            # closest (INVALID_USER is for a session whose user type is unsupported).
            raise ApiError(401, "UNAUTHORIZED", "Session not found or expired")
        kind, user_id = session
        if kind not in ("admin", "customer"):
            raise ApiError(401, "INVALID_USER", "Session user type is not supported")
        principal = Principal(kind, user_id)
    else:
        raise ApiError(400, "INVALID_AUTH_TYPE", f"auth_type: unknown value {auth_type!r}")
    answer = _issue(store, principal, request)
    answer["permissions"] = principal.permissions()
    return answer


def renew_tokens(store, refresh, request):
    """``GET admin/auth/tokens/<refresh>``: a fresh pair; the used refresh token
    is spent [I], the old access token lives until it expires."""
    entry = store.refresh_tokens.get(refresh)
    if entry is None:
        raise ApiError(401, "UNAUTHORIZED", "Unknown refresh token")
    if time.time() >= entry["exp"]:
        raise ApiError(401, "EXPIRED_REFRESH_TOKEN", "Refresh token has expired")
    old = store.tokens[entry["jti"]]
    if old["banned"]:
        raise ApiError(401, "TOKEN_BANNED", "Token was revoked")
    del store.refresh_tokens[refresh]
    principal = old["principal"]
    return _issue(store, Principal(principal.kind, principal.id, principal.api_key), request)


def delete_tokens(store, refresh):
    """``DELETE admin/auth/tokens/<refresh>`` (logout): ban the pair."""
    entry = store.refresh_tokens.pop(refresh, None)
    if entry is None:
        raise ApiError(404, "NOT_FOUND", "Refresh token not found")
    store.tokens[entry["jti"]]["banned"] = True
