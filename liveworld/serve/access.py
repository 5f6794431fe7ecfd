"""Who may drive the server: Host and Origin checks, and a token for anything beyond loopback.

    loopback bind (127.0.0.1, the default)   requests must name a loopback host (Host header),
                                             and a browser's Origin must be a loopback page
                                             (or one given with --allow-origin): another site
                                             open in the same browser, or a DNS-rebound name,
                                             is refused
    any other bind (--host 0.0.0.0, an IP)   every HTTP request and WebSocket must also carry
                                             the token (?token=..., given with --token or
                                             generated and printed in the URL at start)

It is one ASGI middleware in front of the whole app, so no route can forget it: a refused HTTP
request gets 403 with the reason, a refused WebSocket is closed before it is accepted.

Knows ASGI scopes and headers; knows nothing about the engine or the page.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname(netloc: str) -> str:
    """'[::1]:8000' -> '::1', 'example.com:80' -> 'example.com'."""
    return (urlsplit(f"//{netloc}").hostname or "").lower()


@dataclass(frozen=True)
class Access:
    """The policy of one server. token None: loopback only (no token asked)."""

    token: str | None = None
    allow_origins: frozenset[str] = field(default_factory=frozenset)  # extra origins, like "http://host:8000"

    @classmethod
    def for_bind(cls, host: str, token: str | None = None, allow_origins: tuple[str, ...] = ()) -> "Access":
        """The policy for a server bound to `host`: a non-loopback bind always has a token (the
        given one, or a new random one)."""
        if token is not None and len(token) < 16:
            raise ValueError("--token must be at least 16 characters (or leave it out and one is generated)")
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(18)
        origins = frozenset(o.rstrip("/").lower() for o in allow_origins)
        for o in origins:
            if urlsplit(o).scheme not in ("http", "https") or not urlsplit(o).netloc:
                raise ValueError(f"--allow-origin {o!r} must look like http://host:port")
        return cls(token, origins)

    def check(self, headers: dict[str, str], query: str) -> str | None:
        """None if the request may go on, else why not (a message for the client)."""
        try:
            return self._check(headers, query)
        except ValueError:  # a Host or Origin that is not a URL authority ("[::1", "http://[x")
            return "malformed Host or Origin header"

    def _check(self, headers: dict[str, str], query: str) -> str | None:
        host = _hostname(headers.get("host", ""))
        if not host:
            return "the request has no Host header"
        if self.token is None and not is_loopback(host):
            return (f"Host {host!r} is not allowed: this server only answers to localhost or 127.0.0.1 "
                    f"(start it with --host and a --token to serve other names)")
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/").lower() not in self.allow_origins:
            # the page's own origin: the same host and port the request names (a Host that is
            # not allowed was refused above)
            if urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
                return (f"Origin {origin!r} is not allowed: only this server's own page may open a session "
                        f"(start it with --allow-origin {origin} to allow that page)")
        if self.token is not None:
            given = parse_qs(query).get("token", [""])[0]
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return "this server needs its token: open the URL it printed at start (it ends in ?token=...)"
        return None


class AccessMiddleware:
    """ASGI middleware that applies an Access policy to every HTTP request and WebSocket."""

    def __init__(self, app, access: Access):
        self.app, self.access = app, access

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        why = self.access.check(headers, scope.get("query_string", b"").decode("latin-1"))
        if why is None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            # Close before accepting: the browser sees a failed handshake (HTTP 403); the reason
            # goes in the close frame where the server supports it.
            await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})
            return
        body = (why + "\n").encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
