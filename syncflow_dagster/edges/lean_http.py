"""Requests over pooled keep-alive ``http.client`` connections: the clients' transport.

Both clients move bulk over HTTP: a million-row fetch reads ~280 MB of NDJSON
pages, a million-row ingest sends a thousand 500 KB bodies. httpx spends ~0.5 ms
of CPU per such request (request model, h11 state machine, response streaming
in 64 KB pieces); ``http.client`` ~0.2 ms, and reads a body in one call
(all pages of 1M rows: 0.13 instead of 0.3–0.5 core-seconds). On two cores
shared with the hub and the database that is a few tenths of a second per
million records.

Failures keep httpx's vocabulary, so the retry policy and the error mapping
(:mod:`retry`, :mod:`http`) stay one piece of code: a timeout raises
``httpx.TimeoutException``, a refused or dropped connection
``httpx.TransportError``, and the answer comes back as an ``httpx.Response``.
Nothing is resent here: every failure goes to the caller's retry policy, which
counts it (a resent ingest batch's outcome is read differently, see ``ingest``).
An idle connection the server has closed meanwhile is noticed before reuse (its
socket reads as ready) and replaced, as httpcore does.
"""

import http.client
import select
import threading
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

import httpx

from syncflow_dagster.edges.http import REQUEST_EXTENSION, tls_context
from syncflow_dagster.settings import mask_url

Connection = http.client.HTTPConnection
Params = Mapping[str, str | int]


class LeanHttp:
    """Requests to one server over up to ``size`` idle keep-alive connections; thread-safe.

    Args:
        base_url: ``http(s)://host[:port][/prefix]``.
        headers: sent with every request (e.g. the bearer token).
        timeout: seconds for connecting and for each read.
        size: idle connections kept for reuse.
    """

    def __init__(
        self, base_url: str, headers: Mapping[str, str], timeout: float, size: int
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {mask_url(base_url)!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path
        self._headers = dict(headers)
        self._timeout = timeout
        self._size = size
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def _new(self) -> Connection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=tls_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _take(self) -> Connection:
        while True:
            with self._lock:
                if not self._idle:
                    return self._new()
                conn = self._idle.pop()
            if not _closed_by_server(conn):
                return conn
            conn.close()

    def _give_back(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; the answer, whatever its status.

        The answer notes the request (method and path, no query) in its
        ``extensions`` (:data:`~syncflow_dagster.edges.http.REQUEST_EXTENSION`), so
        errors can name it.

        Raises:
            httpx.TimeoutException: no answer within the timeout.
            httpx.TransportError: the connection failed or broke.
        """
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        conn = self._take()
        try:
            conn.request(method, target, body=body, headers={**self._headers, **(headers or {})})
            answer = conn.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            conn.close()
            raise httpx.ReadTimeout(f"no answer within {self._timeout:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        if answer.will_close:
            conn.close()
        else:
            self._give_back(conn)
        return httpx.Response(
            answer.status,
            headers=answer.getheaders(),
            content=content,
            extensions={REQUEST_EXTENSION: f"{method} {self._prefix}{path}"},
        )

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _closed_by_server(conn: Connection) -> bool:
    """An idle keep-alive socket is readable only if the server closed it (or misbehaved)."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet: it connects on the next request
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def bearer_client(base_url: str, token: str, timeout: float, connections: int) -> LeanHttp:
    """A transport that sends the bearer token with every request (never logged)."""
    return LeanHttp(base_url, {"Authorization": f"Bearer {token}"}, timeout, size=connections)
