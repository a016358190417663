"""One Cloudflare API request through the official SDK, with our own retries.

The SDK's retries are turned off. A 429 is retried after its ``Retry-After``
(or the backoff), a 5xx or a lost connection on a read after
``backoff_seconds * 2**attempt``; a POST is retried only on 429. Every other
4xx, 408 and 409 included, fails at once. Errors name the endpoint's path
template, its ids and the API's error code. They never show the token: the
client's public methods pass every error through ``hide_token_in_errors``,
which writes ``***`` for it, whichever step raised the error. The API's own
message is cut at ``MESSAGE_CAP`` characters only after that (and after the
values a write sent are hidden): what it quotes is hidden whole, then cut.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from urllib.parse import quote

import cloudflare
import httpx

from devops_assets.sources._cloudflare_answers import CloudflareError, MalformedResponse

# One logger for the whole Cloudflare source, whichever module writes the line.
log = logging.getLogger("devops_assets.sources.cloudflare")

MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After fails at once, as Wrangler does


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before asking again."""

    max_retries: int = 3
    backoff_seconds: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def backoff(self, attempt: int) -> float:
        return self.backoff_seconds * 2**attempt

    def after_status(self, method: str, status: int, headers, attempt: int) -> float | None:
        """Seconds to wait before retrying an HTTP error, or None when it is final."""
        if attempt >= self.max_retries:
            return None
        if status == 429:
            after = retry_after(headers.get("retry-after"))
            if after is None:
                return self.backoff(attempt)
            return after if after <= MAX_RETRY_AFTER else None
        return self.backoff(attempt) if status >= 500 and method == "GET" else None

    def after_no_answer(self, method: str, attempt: int) -> float | None:
        """Seconds to wait after a lost connection; only reads are asked again."""
        if method != "GET" or attempt >= self.max_retries:
            return None
        return self.backoff(attempt)


class DeadlineTransport(httpx.BaseTransport):
    """Bounds a whole exchange, not only each read: an answer still arriving after
    ``seconds`` (a server dripping bytes) is cut off as a read timeout."""

    def __init__(self, inner: httpx.BaseTransport, seconds: float):
        self.inner, self.seconds = inner, seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.seconds
        response = self.inner.handle_request(request)
        response.stream = _DeadlineStream(response.stream, deadline, self.seconds, request)
        return response

    def close(self) -> None:
        self.inner.close()


class _DeadlineStream(httpx.SyncByteStream):
    def __init__(self, inner, deadline: float, seconds: float, request: httpx.Request):
        self.inner, self.deadline, self.seconds, self.request = inner, deadline, seconds, request

    def __iter__(self):
        for chunk in self.inner:
            if time.monotonic() > self.deadline:
                message = f"the answer was not complete within {self.seconds:g} s"
                raise httpx.ReadTimeout(message, request=self.request)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class CloudflareHttp:
    """Sends requests for one account and checks the API's envelope of each answer."""

    def __init__(
        self,
        account_id: str,
        api_token: str,
        base_url: str,
        *,
        retries: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 20.0,
        deadline: float = 120.0,
    ):
        self.account_id, self.retries = account_id, retries
        bounded = DeadlineTransport(transport or httpx.HTTPTransport(), deadline)
        self.sdk = cloudflare.Cloudflare(
            api_token=api_token,
            base_url=base_url,
            http_client=httpx.Client(transport=bounded, timeout=timeout),
            max_retries=0,
            timeout=timeout,
        )

    @property
    def token(self) -> str:
        return self.sdk.api_token or ""

    def close(self) -> None:
        self.sdk.close()

    def request(self, method: str, template: str, params=None, body=None, **ids: str):
        """One call with retries; returns (endpoint label, checked envelope)."""
        label = " ".join([method, template, *(f"{k}={v}" for k, v in ids.items())])
        path = template.format(
            account_id=self.account_id, **{k: quote(v, safe="") for k, v in ids.items()}
        )
        options = {"params": params or {}}
        if method == "GET":
            send = partial(self.sdk.get, path, cast_to=httpx.Response, options=options)
        else:
            send = partial(self.sdk.post, path, cast_to=httpx.Response, body=body, options=options)
        return label, self._envelope(label, self.call(label, method, send))

    def call(self, endpoint: str, method: str, send: Callable):
        """``send()``'s answer, asking again while the retry policy allows."""
        attempt = 0
        while True:
            try:
                answer = send()
            except cloudflare.APIStatusError as exc:
                wait = self._wait_after_status(endpoint, method, exc, attempt)
                reason = f"HTTP {exc.status_code}"
            except cloudflare.APIConnectionError as exc:
                wait = self._wait_after_no_answer(endpoint, method, exc, attempt)
                reason = "no answer"
            else:
                log.debug("%s answered (attempt %d)", endpoint, attempt + 1)
                return answer
            attempt += 1
            limit = self.retries.max_retries
            log.warning("%s: %s; retry %d of %d in %.2fs", endpoint, reason, attempt, limit, wait)
            self.retries.sleep(wait)

    def _wait_after_status(
        self, endpoint: str, method: str, exc: cloudflare.APIStatusError, attempt: int
    ) -> float:
        wait = self.retries.after_status(method, exc.status_code, exc.response.headers, attempt)
        if wait is None:
            raise self._status_error(endpoint, exc.status_code, exc.body) from None
        return wait

    def _wait_after_no_answer(
        self, endpoint: str, method: str, exc: cloudflare.APIConnectionError, attempt: int
    ) -> float:
        wait = self.retries.after_no_answer(method, attempt)
        if wait is None:
            cause = exc.__cause__ or exc
            raise CloudflareError(
                f"{endpoint}: no answer after {attempt + 1} attempts "
                f"({type(cause).__name__}: {cause})",
                endpoint=endpoint,
            ) from None
        return wait

    def _envelope(self, endpoint: str, response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise MalformedResponse(endpoint, "(body)", "a JSON object", response.text) from None
        if not isinstance(body, dict):
            raise MalformedResponse(endpoint, "(body)", "a JSON object", body)
        if body.get("success") is False:
            raise self._status_error(endpoint, response.status_code, body)
        if body.get("success") is not True:
            got = body["success"] if "success" in body else ...
            raise MalformedResponse(endpoint, "success", "true or false", got)
        if "result" not in body:
            raise MalformedResponse(endpoint, "result", "present in the envelope")
        return body

    def _status_error(self, endpoint: str, status: int, body: object) -> CloudflareError:
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else {}
        code, message = (
            (first.get("code"), first.get("message")) if isinstance(first, dict) else (None, None)
        )
        text = f"{endpoint} failed with HTTP {status}: "
        if not (code or message):
            text += "no API error in the answer"
            return CloudflareError(text, endpoint=endpoint, status=status, code=code)
        # The API's message is kept whole and cut at MESSAGE_CAP only when shown, again
        # after each hide(): a value or token it quotes is hidden before any cut.
        return CloudflareError(
            f"{text}API error {code}: ",
            endpoint=endpoint,
            status=status,
            code=code,
            quoted=message if isinstance(message, str) else str(message),
            cap=MESSAGE_CAP,
        )


MESSAGE_CAP = 500  # characters of an API error message kept in our error


def check_token(token: str, source: str) -> None:
    """Refuse a token no HTTP header can carry; the error names ``source``, never the value."""
    if not token:
        raise CloudflareError(f"CloudflareClient: {source} is empty; a token is required")
    if any(char.isspace() for char in token):
        problem = "contains whitespace (a trailing newline copied along with it?)"
    elif not (token.isascii() and token.isprintable()):
        problem = "contains a character that is not printable ASCII"
    else:
        return
    raise CloudflareError(f"CloudflareClient: {source} {problem}; it cannot be sent as a token")


def hide_token_in_errors(cls):
    """Class decorator: errors out of ``cls``'s public methods show ``***`` for the token.

    ``cls`` keeps its :class:`CloudflareHttp` as ``self._http``. This is the
    one place the token is taken out of errors, whatever raised them.
    """
    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member) and not name.startswith("_"):
            setattr(cls, name, _hiding_token(member))
    return cls


def _hiding_token(method: Callable) -> Callable:
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except CloudflareError as exc:
            exc.hide(self._http.token)
            raise

    return call


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
