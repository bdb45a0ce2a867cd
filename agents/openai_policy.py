"""A policy that asks a language model behind an OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, OpenAI).

Every request carries a timeout and retries are bounded, so a run never hangs on a server. Validated answers are
cached on disk, keyed by the model and the exact request (not the server address), so a re-run is reproducible
and free. `task.slip` is ignored: a real model makes its own mistakes.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from agents.policy import InvalidReply, PolicyUnavailable, ReadingTask
from agents.request_gate import RequestGate, Stopped
from sim.core.atomic import write_text
from sim.core.limits import MAX_LLM_CONCURRENCY

OPENAI_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the client refuses to start without one
_URL = re.compile(r"^https?://[^\s/:?#]+(:\d{1,5})?(/[^\s?#]*)?$")
_FENCED = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_CACHE_VERSION = 1  # bump when the request or the cached record changes shape
SYSTEM_PROMPT = ("You are a careful reader. Answer only from the passages in the user's JSON document, following "
                 "its instruction. Reply with one JSON object holding exactly the requested fields; where a field "
                 "lists choices, use one of them verbatim.")


@dataclass(frozen=True, kw_only=True)
class LLMSettings:
    """Where the model is and how far to trust it: `timeout` in seconds per request, `max_attempts` per read
    (first try included), budgets over the policy's life (`max_calls` requests reaching the server,
    `max_tokens_total` tokens as reported in `usage`, the requests in flight counted at their estimate, so a
    run stops sending where it would one request at a time; None: unlimited)."""

    base_url: str | None = None
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    max_attempts: int = 4
    max_calls: int | None = None
    max_tokens_total: int | None = None
    cache_dir: Path | None = None
    temperature: float = 0.0
    concurrency: int = 8
    """Model requests in flight at once (the engine runs as many instances at a time); never changes a result."""
    requests_per_minute: int | None = None
    """Budget: requests sent in any `rate_window` seconds (None: unlimited); a request waits for room."""
    tokens_per_minute: int | None = None
    """Budget: tokens (prompt + completion, estimated when sent, corrected by `usage`) in any `rate_window`."""
    rate_window: float = 60.0
    """Seconds the per-minute budgets are counted over (60; tests shorten it)."""

    def __post_init__(self):
        if not self.base_url and not self.api_key:
            raise PolicyUnavailable(
                "the openai policy needs an endpoint: pass --llm-base-url URL (a vLLM / Ollama / llama.cpp server, "
                "e.g. http://127.0.0.1:8000/v1) or set OPENAI_BASE_URL; for api.openai.com set OPENAI_API_KEY")
        if self.base_url and not _URL.match(self.base_url):
            raise PolicyUnavailable(
                f"LLM base URL {self.base_url!r} is not an http(s) URL; write it as http://HOST[:PORT][/PATH], "
                "e.g. http://127.0.0.1:8000/v1")
        if not self.model:
            raise PolicyUnavailable("the openai policy needs a model: pass --llm-model NAME (the name the server "
                                    "serves, e.g. Qwen/Qwen2.5-7B-Instruct) or set OPENAI_MODEL")
        checks = [(self.timeout > 0, f"--llm-timeout {self.timeout!r} must be a number of seconds > 0"),
                  (self.max_attempts >= 1, f"max_attempts {self.max_attempts!r} must be >= 1"),
                  (self.max_calls is None or self.max_calls >= 0,
                   f"--llm-max-calls {self.max_calls!r} must be >= 0"),
                  (self.max_tokens_total is None or self.max_tokens_total >= 0,
                   f"--llm-max-tokens {self.max_tokens_total!r} must be >= 0"),
                  (0 <= self.temperature <= 2, f"temperature {self.temperature!r} must be within [0, 2]"),
                  (isinstance(self.concurrency, int) and 1 <= self.concurrency <= MAX_LLM_CONCURRENCY,
                   f"--llm-concurrency {self.concurrency!r} must be a whole number from 1 to {MAX_LLM_CONCURRENCY}"),
                  (self.requests_per_minute is None or self.requests_per_minute >= 1,
                   f"--llm-rpm {self.requests_per_minute!r} must be >= 1"),
                  (self.tokens_per_minute is None or self.tokens_per_minute >= 1,
                   f"--llm-tpm {self.tokens_per_minute!r} must be >= 1"),
                  (self.rate_window > 0, f"rate_window {self.rate_window!r} must be a number of seconds > 0")]
        for ok, message in checks:
            if not ok:
                raise PolicyUnavailable(message)

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 **kw) -> LLMSettings:
        """Settings with missing values taken from OPENAI_BASE_URL, OPENAI_MODEL and OPENAI_API_KEY."""
        return cls(base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
                   model=model or os.environ.get("OPENAI_MODEL") or "",
                   api_key=api_key or os.environ.get("OPENAI_API_KEY") or None, **kw)

    @property
    def address(self) -> str:
        """The server the requests go to."""
        return (self.base_url or OPENAI_URL).rstrip("/")


class OpenAIPolicy:
    """Answers reading tasks with a chat model; `sleep(seconds)` waits between retries after a 5xx, a timeout or
    a refused connection (injectable for tests); a 429's Retry-After pauses every thread through `gate`.

    Thread-safe: the engine reads from many instances at once. Two reads of the same request at once send it
    once (the second waits for the first's answer and counts as cached), so the requests sent and the counts in
    `stats` do not depend on how many ran at a time."""

    def __init__(self, settings: LLMSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.name = f"openai:{settings.model}"
        self.concurrency = settings.concurrency
        self.gate = RequestGate(settings.concurrency, settings.requests_per_minute, settings.tokens_per_minute,
                                settings.rate_window)
        self._sleep = sleep
        self._client = None
        self._lock = threading.Lock()  # one client, consistent counters, one flight per request
        self._flights: dict[Path, Future] = {}
        self._in_flight_tokens = 0  # estimated tokens of the requests sent and not answered yet (token budget)
        self.stats = dict(calls=0, cached=0, retries=0, invalid_replies=0, prompt_tokens=0, completion_tokens=0,
                          total_tokens=0)
        from sim.retrieval.embedding import default_cache_dir

        self._cache_root = (settings.cache_dir or default_cache_dir()) / "llm"

    def __repr__(self) -> str:
        return f"OpenAIPolicy({self.settings!r})"

    def read(self, task: ReadingTask) -> dict[str, str]:
        """The model's answer to `task` (cached when seen before); raises InvalidReply or PolicyUnavailable."""
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_message(task)}]
        schema = task.json_schema()
        path = self._cache_path(messages, schema)
        while True:
            cached = _load_cached(path, task)
            if cached is not None:
                with self._lock:
                    self.stats["cached"] += 1
                return cached
            with self._lock:
                flight = self._flights.get(path)
                if flight is None:
                    flight = self._flights[path] = Future()
                    break
            try:
                answer = flight.result()
            except Exception:  # noqa: BLE001 - the first asker's failure: ask again, as a later read would
                continue
            with self._lock:
                self.stats["cached"] += 1
            return answer
        try:
            answer = self._ask(messages, schema, task, path)
            flight.set_result(answer)
            return answer
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        finally:
            with self._lock:
                del self._flights[path]

    def stop(self) -> None:
        """Stop the run's requests: waiting ones raise at once, and in-flight ones lose their connection."""
        self.gate.stop()
        with self._lock:
            client = self._client
        if client is not None:
            client.close()

    def _ask(self, messages: list[dict], schema: dict, task: ReadingTask, path: Path) -> dict[str, str]:
        reply, usage = self._complete(messages, schema)
        answer, problems = parse_reply(reply, task)
        if problems:
            with self._lock:
                self.stats["invalid_replies"] += 1
            follow_up = [{"role": "assistant", "content": reply or ""},
                         {"role": "user", "content": "That reply is not a valid answer: " + "; ".join(problems)
                          + ". Reply again with one JSON object holding exactly the requested fields."}]
            reply, more = self._complete(messages + follow_up, schema)
            answer, problems = parse_reply(reply, task)
            usage = {k: usage[k] + more[k] for k in usage}
            if problems:
                with self._lock:
                    self.stats["invalid_replies"] += 1
                raise InvalidReply(f"{self.name} gave no valid answer to step {task.step!r}, even when asked again: "
                                   f"reply {_clip(reply)!r}: {'; '.join(problems)}")
        write_text(path, json.dumps({"model": self.settings.model, "answer": answer, "usage": usage},
                                    sort_keys=True, ensure_ascii=False))
        return answer

    def _cache_path(self, messages: list[dict], schema: dict) -> Path:
        # No base_url in the key: the same model behind another address gives the same answers.
        key = json.dumps({"v": _CACHE_VERSION, "model": self.settings.model, "messages": messages,
                          "schema": schema, "temperature": self.settings.temperature},
                         sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self._cache_root / digest[:2] / f"{digest}.json"

    def _complete(self, messages: list[dict], schema: dict) -> tuple[str | None, dict[str, int]]:
        """(content, token usage) of one chat completion, retrying 429, 5xx, timeouts and connection errors."""
        import openai  # imported on first use: simulated runs never pay for it

        s = self.settings
        last = ""
        estimate = sum(len(m["content"]) for m in messages) // 4 + 64  # ~4 characters a token, plus the reply
        for attempt in range(1, s.max_attempts + 1):
            self._reserve_call(estimate)
            try:
                with self.gate.request(estimate) as sent:
                    completion = self._get_client().chat.completions.create(
                        model=s.model, messages=messages, temperature=s.temperature,
                        response_format={"type": "json_schema",
                                         "json_schema": {"name": "answer", "schema": schema, "strict": True}})
            except Stopped:
                with self._lock:
                    self.stats["calls"] -= 1  # never sent
                raise
            except openai.APIStatusError as err:
                if err.status_code != 429 and err.status_code < 500:
                    raise PolicyUnavailable(self._refused(err)) from err
                last = f"HTTP {err.status_code}: {_server_message(err)}"
                asked = retry_after(err.response.headers)
                wait = backoff(attempt) if asked is None else asked
                if err.status_code == 429:
                    self.gate.pause(wait)  # every request waits, not only this one
                    wait = 0.0
            except openai.APITimeoutError as err:
                if attempt == s.max_attempts:
                    raise PolicyUnavailable(
                        f"the LLM server at {s.address} timed out after {s.timeout:g} s (attempt {attempt} of "
                        f"{s.max_attempts}); a slow model needs a longer --llm-timeout SECONDS") from err
                last, wait = "timed out", backoff(attempt)
            except openai.APIConnectionError as err:
                with self._lock:
                    self.stats["calls"] -= 1  # never reached the server
                last, wait = f"cannot connect ({err.__cause__ or err})", backoff(attempt)
            else:
                choices = completion.choices or []
                usage = self._count_usage(completion.usage)
                self.gate.settle(sent, usage["total_tokens"] or estimate)
                return (choices[0].message.content if choices else None), usage
            finally:
                with self._lock:
                    self._in_flight_tokens -= estimate  # counted in stats by now, if the server answered
            if self.gate.stopped:
                raise Stopped("the run was stopped; no further model request is sent")
            if attempt < s.max_attempts:
                with self._lock:
                    self.stats["retries"] += 1
                if wait > 0:
                    self._sleep(wait)
        raise PolicyUnavailable(f"the LLM server at {s.address} gave no answer in {s.max_attempts} attempts; "
                                f"last: {last}. Check that the server is up and serves model {s.model!r}")

    def _get_client(self):
        # One client for the policy's life: creating one costs ~25 ms; retries are ours (max_retries=0).
        with self._lock:
            if self._client is None:
                import openai

                s = self.settings
                self._client = openai.OpenAI(base_url=s.address, api_key=s.api_key or PLACEHOLDER_KEY,
                                             timeout=s.timeout, max_retries=0)
            return self._client

    def _reserve_call(self, estimate: int) -> None:
        """Count a request against the budgets before it is sent. The token budget counts the tokens spent
        plus the estimates of the requests in flight (`estimate` each), so N requests at once stop where one
        at a time would: a request is sent only while that sum is below the budget, and the total can pass
        the budget by at most the last request's tokens plus what in-flight requests use beyond their
        estimates."""
        s = self.settings
        with self._lock:
            if s.max_calls is not None and self.stats["calls"] + 1 > s.max_calls:
                raise PolicyUnavailable(f"the LLM call budget is spent ({self.stats['calls']} of {s.max_calls} "
                                        "calls); raise it with --llm-max-calls N")
            committed = self.stats["total_tokens"] + self._in_flight_tokens
            if s.max_tokens_total is not None and committed >= s.max_tokens_total:
                raise PolicyUnavailable(f"the LLM token budget is spent ({self.stats['total_tokens']} of "
                                        f"{s.max_tokens_total} tokens, {self._in_flight_tokens} more estimated for "
                                        "requests in flight); raise it with --llm-max-tokens N")
            self.stats["calls"] += 1
            self._in_flight_tokens += estimate

    def _count_usage(self, usage) -> dict[str, int]:
        # Some local servers omit `usage`: count zero rather than fail.
        counts = {k: int(getattr(usage, k, 0) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        with self._lock:
            for k, v in counts.items():
                self.stats[k] += v
        return counts

    def _refused(self, err) -> str:
        s = self.settings
        hints = {401: "check OPENAI_API_KEY", 403: "check OPENAI_API_KEY and the model's access rights",
                 404: f"check that the base URL ends in /v1 (e.g. http://127.0.0.1:8000/v1) and that the server "
                      f"serves model {s.model!r}",
                 400: "the server may not support structured output (response_format json_schema); "
                      "vLLM, Ollama >= 0.5 and llama.cpp's server do"}
        hint = hints.get(err.status_code, "check the server's log")
        return (f"the LLM server at {s.address} refused the request: HTTP {err.status_code}: "
                f"{_server_message(err)}; {hint}")


def user_message(task: ReadingTask) -> str:
    """The user message: the task as one JSON document (the test server parses this exact structure)."""
    return json.dumps({"task": task.kind, "step": task.step, "instruction": task.instruction,
                       "passages": list(task.passages), "message": task.message,
                       "fields": {f.name: {"description": f.description, "choices": list(f.choices)}
                                  for f in task.fields}}, sort_keys=True, ensure_ascii=False)


def parse_reply(reply: str | None, task: ReadingTask) -> tuple[dict | None, list[str]]:
    """(answer, problems) of a reply's content; problems is empty when the answer is valid for `task`."""
    if not reply:
        return None, ["the reply is empty"]
    fenced = _FENCED.match(reply)
    try:
        answer = json.loads(fenced.group(1) if fenced else reply)
    except json.JSONDecodeError as err:
        return None, [f"not valid JSON ({err.msg} at character {err.pos})"]
    return answer, task.invalid_fields(answer)


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): 0.5, 1, 2, ... capped at 8."""
    return min(0.5 * 2 ** (attempt - 1), 8.0)


def retry_after(headers) -> float | None:
    """Seconds the server asked us to wait (Retry-After as seconds or an HTTP date), capped at 60; None: no ask."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), 60.0)


def _load_cached(path: Path, task: ReadingTask) -> dict[str, str] | None:
    # A corrupt or stale record is treated as absent; the fresh answer then overwrites it.
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))["answer"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if task.invalid_fields(answer) else answer


def _server_message(err) -> str:
    body = err.body
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str):
                return _clip(value)
    try:
        return _clip(err.response.text) or "(no message)"
    except Exception:  # a streamed or closed response has no text to show
        return "(no message)"


def _clip(text: str | None, limit: int = 200) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
