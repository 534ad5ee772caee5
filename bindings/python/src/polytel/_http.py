"""Sends one export over HTTP with the standard library and describes what
happened in the core's terms. The core decides what an answer means (done,
retry, split or drop); this only reports it faithfully."""

from __future__ import annotations

import base64
import binascii
import http.client
import socket
import urllib.error
import urllib.request
from typing import IO, Any, Optional, Tuple, Union

from ._core import Export, FailedOutcome, HttpOutcome

# Response bodies matter only for partial_success; more than this is not read.
_MAX_RESPONSE_BODY = 64 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: every 3xx goes back to the core as it came, with
    its Location, and the core decides (Azure Monitor within Application
    Insights' domains, OTLP to the same origin only). urllib would turn a
    POST into a bodiless GET, or re-send the backend's credentials to
    whichever host the Location names."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> Optional[urllib.request.Request]:
        return None


class Sender:
    def __init__(self, user_agent: str) -> None:
        self._user_agent = user_agent
        self._opener = urllib.request.build_opener(_NoRedirects())

    def send(self, export: Export) -> Union[HttpOutcome, FailedOutcome]:
        try:
            body = base64.b64decode(export.body, validate=True)
        except (binascii.Error, ValueError) as e:
            return FailedOutcome(f"the core handed over a body that is not base64: {e}")
        req = urllib.request.Request(export.url, data=body, method="POST")
        has_agent = False
        for name, value in export.headers:
            req.add_header(name, value)
            has_agent = has_agent or name.lower() == "user-agent"
        if not has_agent:
            req.add_header("User-Agent", self._user_agent)
        timeout = export.timeout if export.timeout is None else max(export.timeout, 0.001)
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                return _answer(resp.status, resp.headers, resp)
        except urllib.error.HTTPError as e:
            try:
                return _answer(e.code, e.headers, e)
            finally:
                e.close()
        except urllib.error.URLError as e:
            return FailedOutcome(_describe(e.reason))
        except (OSError, http.client.HTTPException, ValueError) as e:
            # Refused, reset, timed out, a malformed answer: the text names the
            # failure but never the request's headers.
            return FailedOutcome(_describe(e))


def _answer(status: int, headers: Any, stream: Any) -> HttpOutcome:
    try:
        data = stream.read(_MAX_RESPONSE_BODY) or b""
    except (OSError, http.client.HTTPException):
        data = b""
    return HttpOutcome(
        status=int(status),
        retry_after=headers.get("Retry-After") if headers else None,
        body=base64.b64encode(data).decode("ascii"),
        headers=_core_headers(headers),
    )


def _core_headers(headers: Any) -> Tuple[Tuple[str, str], ...]:
    """The response headers the core reads (location, x-ms-qps-*), names
    lower-case; only these cross into the core, each crossing costs."""
    if not headers:
        return ()
    wanted = []
    for raw, value in headers.items():
        name = raw.lower()
        if name == "location" or name.startswith("x-ms-qps-"):
            wanted.append((name, str(value)))
    return tuple(wanted)


def _describe(e: Any) -> str:
    if isinstance(e, socket.timeout) or type(e).__name__ == "TimeoutError":
        return f"timed out ({e})" if str(e) else "timed out"
    text = str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}" if isinstance(e, BaseException) else text
