"""The OpenAI-compatible policy against a real local HTTP server (tests/llm_server.py), no mocked client."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from agents.openai_policy import LLMSettings, OpenAIPolicy, backoff, parse_reply, retry_after, user_message
from agents.policy import Field, InvalidReply, PolicyUnavailable, ReadingTask
from tests.llm_fixtures import llm_server  # noqa: F401
from tests.llm_server import reference_answer

TASK = ReadingTask(
    step="judge_indemnity", kind="indemnity",
    instruction="Who indemnifies whom under this contract, and is the duty capped?",
    passages=("The Supplier shall indemnify the Buyer against all third-party claims.",
              "Liability under this clause is capped at 12 months of fees."),
    fields=(Field("indemnitor", "the party that indemnifies", ("Supplier", "Buyer", "none")),
            Field("capped", "whether the duty is capped", ("yes", "no")),
            Field("cap_months", "the cap in months, digits only")))


def task(n: int = 0) -> ReadingTask:
    """TASK, or a variant with a different step name (a different request, so a different cache key)."""
    return TASK if n == 0 else replace(TASK, step=f"judge_{n}")


def expected(t: ReadingTask = TASK) -> dict[str, str]:
    """What the server answers to `t`: computed from the same JSON document the policy sends."""
    return reference_answer(json.loads(user_message(t)))


class Waits(list):
    """An injectable sleep that records the seconds asked for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def policy(server, tmp_path, script: str = "ok", **kw) -> tuple[OpenAIPolicy, Waits]:
    server.script(script)
    waits = Waits()
    settings = LLMSettings(base_url=kw.pop("base_url", server.base_url), model="test-model",
                           cache_dir=tmp_path, **kw)
    return OpenAIPolicy(settings, sleep=waits), waits


@pytest.mark.parametrize("script", ["ok", "fenced"])
def test_a_valid_reply_is_the_answer(llm_server, tmp_path, script):  # noqa: F811
    p, waits = policy(llm_server, tmp_path, script)
    answer = p.read(TASK)
    assert answer == expected() and set(answer) == {"indemnitor", "capped", "cap_months"}
    assert llm_server.requests() == 1 and waits == []
    assert p.name == "openai:test-model"
    assert p.stats["calls"] == 1 and p.stats["total_tokens"] > 0
    assert p.stats["total_tokens"] == p.stats["prompt_tokens"] + p.stats["completion_tokens"]


@pytest.mark.parametrize("bad", ["malformed", "invalid"])
def test_a_bad_reply_is_asked_again_once(llm_server, tmp_path, bad):  # noqa: F811
    p, _ = policy(llm_server, tmp_path, f"{bad},ok")
    assert p.read(TASK) == expected()
    assert llm_server.requests() == 2
    assert p.stats["invalid_replies"] == 1 and p.stats["calls"] == 2


def test_two_bad_replies_raise_invalid_reply_and_are_not_cached(llm_server, tmp_path):  # noqa: F811
    p, _ = policy(llm_server, tmp_path, "malformed")
    with pytest.raises(InvalidReply, match="Supp") as err:
        p.read(TASK)
    assert "not valid JSON" in str(err.value) and "judge_indemnity" in str(err.value)
    assert llm_server.requests() == 2 and p.stats["invalid_replies"] == 2
    llm_server.script("ok")
    assert p.read(TASK) == expected() and llm_server.requests() == 1  # asked the server, not the cache


def test_429_waits_as_long_as_retry_after_says(llm_server, tmp_path):  # noqa: F811
    p, waits = policy(llm_server, tmp_path, "429,ok")
    assert p.read(TASK) == expected()
    first, second = llm_server.log()
    # The server's Retry-After: 1, not the 0.5 s backoff, waited by the shared gate (not the retry sleep).
    assert first["status"] == 429 and first["retry_after"] == 1.0 and second["status"] == 200
    assert second["t"] - first["t"] >= 1.0 and waits == []
    assert llm_server.requests() == 2 and p.stats["retries"] == 1


def test_persistent_500_gives_up_after_max_attempts(llm_server, tmp_path):  # noqa: F811
    p, waits = policy(llm_server, tmp_path, "500", max_attempts=3)
    with pytest.raises(PolicyUnavailable) as err:
        p.read(TASK)
    assert llm_server.requests() == 3
    assert waits == [0.5, 1.0]  # exponential backoff between attempts, none after the last
    message = str(err.value)
    assert llm_server.base_url in message and "500" in message and "3 attempts" in message


def test_a_slow_server_times_out_without_hanging(llm_server, tmp_path):  # noqa: F811
    p, waits = policy(llm_server, tmp_path, "timeout", timeout=0.5, max_attempts=2)
    start = time.monotonic()
    with pytest.raises(PolicyUnavailable, match=r"timed out after 0\.5 s.*--llm-timeout"):
        p.read(TASK)
    # Two 0.5 s attempts; the server would have answered only after 5 s each.
    assert time.monotonic() - start < 3.0
    assert waits == [0.5] and llm_server.requests() == 2


def test_an_unreachable_server_is_named(llm_server, tmp_path):  # noqa: F811
    # Port 9 (discard) on loopback: nothing listens, so every attempt is refused at once.
    p, waits = policy(llm_server, tmp_path, base_url="http://127.0.0.1:9/v1", max_attempts=2)
    with pytest.raises(PolicyUnavailable, match=r"127\.0\.0\.1:9/v1 gave no answer in 2 attempts.*cannot connect"):
        p.read(TASK)
    assert waits == [0.5] and p.stats["calls"] == 0  # refused connections never reached a server


def test_a_cached_answer_costs_no_request(llm_server, tmp_path):  # noqa: F811
    p, _ = policy(llm_server, tmp_path)
    first = p.read(TASK)
    assert p.read(TASK) == first and llm_server.requests() == 1
    assert p.stats["cached"] == 1 and p.stats["calls"] == 1
    # A re-run, with the same model behind an address where nothing listens: still answered from the cache.
    elsewhere, _ = policy(llm_server, tmp_path, base_url="http://127.0.0.1:9/v1", max_attempts=1)
    assert elsewhere.read(TASK) == first and elsewhere.stats["cached"] == 1 and elsewhere.stats["calls"] == 0


def test_a_corrupt_cache_file_is_ignored_and_rewritten(llm_server, tmp_path):  # noqa: F811
    p, _ = policy(llm_server, tmp_path)
    answer = p.read(TASK)
    [path] = (tmp_path / "llm").glob("*/*.json")
    path.write_text('{"answer": {"indemnitor": ')
    again, _ = policy(llm_server, tmp_path)
    assert again.read(TASK) == answer and llm_server.requests() == 1 and again.stats["cached"] == 0
    assert json.loads(path.read_text())["answer"] == answer


def test_the_call_budget_stops_uncached_calls(llm_server, tmp_path):  # noqa: F811
    p, _ = policy(llm_server, tmp_path, max_calls=1)
    p.read(task(0))
    assert p.read(task(0)) == expected()  # cached answers are free
    with pytest.raises(PolicyUnavailable, match="--llm-max-calls"):
        p.read(task(1))
    assert llm_server.requests() == 1


def test_the_token_budget_stops_calls_once_spent(llm_server, tmp_path):  # noqa: F811
    p, _ = policy(llm_server, tmp_path, max_tokens_total=1)
    p.read(task(0))
    with pytest.raises(PolicyUnavailable, match="--llm-max-tokens"):
        p.read(task(1))
    assert llm_server.requests() == 1


def test_the_token_budget_counts_the_requests_in_flight(llm_server, tmp_path):  # noqa: F811
    """Eight reads at once (300 ms each) against a budget of two requests' estimated tokens: two are sent, the
    others are refused before sending, as one at a time would have been (without counting the requests in
    flight, all eight went out while nothing was spent yet)."""
    from concurrent.futures import ThreadPoolExecutor

    from agents.openai_policy import SYSTEM_PROMPT

    tasks = [task(i) for i in range(8)]
    estimates = [(len(SYSTEM_PROMPT) + len(user_message(t))) // 4 + 64 for t in tasks]  # as the policy estimates
    budget = 2 * min(estimates)
    assert max(estimates) < budget  # so the second request still fits and the third does not
    p, _ = policy(llm_server, tmp_path, max_tokens_total=budget, concurrency=8)
    llm_server.script("ok", latency=0.3)

    def read(t):
        try:
            return p.read(t)
        except PolicyUnavailable as exc:
            return str(exc)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(read, tasks))
    refused = [a for a in answers if isinstance(a, str)]
    assert llm_server.requests() == 2 == len(answers) - len(refused) and p.stats["calls"] == 2
    assert all("--llm-max-tokens" in a and "in flight" in a for a in refused)
    assert p.stats["total_tokens"] <= budget  # the server's counts are below the estimates


def test_a_wrong_path_names_the_v1_hint(llm_server, tmp_path):  # noqa: F811
    p, _ = policy(llm_server, tmp_path, base_url=llm_server.root)  # without /v1
    with pytest.raises(PolicyUnavailable, match="HTTP 404.*Unknown request URL.*ends in /v1"):
        p.read(TASK)
    assert llm_server.requests() == 0


def test_no_endpoint_and_no_key_is_explained(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(PolicyUnavailable, match="--llm-base-url URL.*OPENAI_BASE_URL.*OPENAI_API_KEY"):
        LLMSettings.from_env(model="m")
    with pytest.raises(PolicyUnavailable, match="--llm-model NAME.*OPENAI_MODEL"):
        LLMSettings.from_env(base_url="http://127.0.0.1:8000/v1")


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_MODEL", "qwen")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = LLMSettings.from_env(timeout=5)
    assert (settings.base_url, settings.model, settings.api_key, settings.timeout) == (
        "http://127.0.0.1:8000/v1", "qwen", None, 5)
    assert LLMSettings.from_env(model="other").model == "other"  # an argument beats the environment
    assert "api_key" not in repr(LLMSettings(base_url="http://h/v1", model="m", api_key="sk-secret"))


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://host/v1", "http://", "http://host:port/v1"])
def test_a_bad_base_url_is_named(url):
    with pytest.raises(PolicyUnavailable, match=r"is not an http\(s\) URL.*http://HOST\[:PORT\]") as err:
        LLMSettings(base_url=url, model="m")
    assert repr(url) in str(err.value)


def test_backoff_and_retry_after():
    assert [backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert retry_after({"retry-after": "2.5"}) == 2.5
    assert retry_after({"retry-after": "3600"}) == 60.0  # capped
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert retry_after({}) is None and retry_after({"retry-after": "soon"}) is None


def test_fenced_and_broken_replies_parse_as_expected():
    answer = {"indemnitor": "Supplier", "capped": "yes", "cap_months": "12"}
    assert parse_reply(f"```json\n{json.dumps(answer)}\n```", TASK) == (answer, [])
    assert parse_reply('{"indemnitor": "Supp', TASK)[1][0].startswith("not valid JSON")
    assert parse_reply(json.dumps({**answer, "capped": "maybe"}), TASK)[1] == ["capped: 'maybe' is not one of yes, no"]
