"""A real OpenAI-compatible HTTP server for tests, scripted to misbehave on cue (stdlib HTTP only).

    python tests/llm_server.py --port-file PATH [--script 429,ok,malformed,500,timeout,ok]

Each chat request consumes one script item (the last repeats forever). `POST /script {"script": "...",
"latency": 0.2, "storm": 2}` replaces the script and resets the position, the request count and the request
log; `latency` (seconds) delays every answer, as a real model's decoding does; `storm` (seconds) answers every
request 429 with `Retry-After: <storm>` from the first request on until that many seconds have passed, then
follows the script. `GET /stats` reports the count; `GET /log` lists every chat request (arrival time in
seconds since the reset, status, Retry-After sent, and the SHA-256 of the user message).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from agents.policy import Field, ReadingTask

ITEMS = ("ok", "malformed", "invalid", "429", "500", "timeout", "fenced")
TIMEOUT_SECONDS = 5.0  # longer than any client timeout a test sets, so `timeout` really times out
MALFORMED = '{"indemnitor": "Supp'


def reference_answer(doc: dict) -> dict[str, str]:
    """The answer to a request's task document: the simulated reader's when it reads this task validly (so an
    agent run through this server matches a run with the simulated policy), else first choices."""
    from agents.reader import SimulatedReader

    task = ReadingTask(step=doc["step"], kind=doc["task"], instruction=doc["instruction"],
                       passages=tuple(doc["passages"]), message=doc.get("message", ""),
                       fields=tuple(Field(name, f["description"], tuple(f["choices"]))
                                    for name, f in doc["fields"].items()))
    try:
        answer = SimulatedReader().read(task)
    except ValueError:  # a reading the simulated reader does not know
        answer = None
    if answer is None or task.invalid_fields(answer):
        return {name: (f["choices"][0] if f["choices"] else "0") for name, f in doc["fields"].items()}
    return answer


def parse_script(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in ITEMS]
    if not items or unknown:
        raise ValueError(f"script {text!r}: unknown items {unknown}; use a comma-separated list of {', '.join(ITEMS)}")
    return items


class Script:
    """The behaviour queue shared by all request threads, with the latency, the 429 storm and the log."""

    def __init__(self, text: str):
        self.lock = threading.Lock()
        self.set(text)

    def set(self, text: str, latency: float = 0.0, storm: float = 0.0) -> None:
        items = parse_script(text)
        if not (0 <= latency <= 10 and 0 <= storm <= 60):
            raise ValueError(f"latency {latency!r} must be within [0, 10] s and storm {storm!r} within [0, 60] s")
        with self.lock:
            self.items, self.position, self.requests = items, 0, 0
            self.latency, self.storm, self.storm_start = float(latency), float(storm), None
            self.reset_at, self.log = time.monotonic(), []

    def next(self, key: str) -> tuple[str, dict]:
        """The item for the next request and its log entry (the handler fills in the status)."""
        with self.lock:
            now = time.monotonic()
            entry = {"t": now - self.reset_at, "key": key, "status": 200, "retry_after": None}
            self.log.append(entry)
            self.requests += 1
            if self.storm:
                self.storm_start = now if self.storm_start is None else self.storm_start
                if now < self.storm_start + self.storm:
                    return "storm", entry
            item = self.items[min(self.position, len(self.items) - 1)]
            self.position += 1
            return item, entry


def error_body(message: str, kind: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def completion(model: str, content: str, prompt_chars: int) -> dict:
    prompt_tokens, completion_tokens = prompt_chars // 4 + 1, len(content) // 4 + 1  # ~4 characters a token
    return {"id": f"chatcmpl-test-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle would hold the body ~40 ms
    script: Script

    def log_message(self, format, *args):  # quiet: the test fixture keeps stderr for startup failures
        pass

    def do_GET(self):
        if self.path == "/stats":
            self.send_json(200, {"requests": self.script.requests})
        elif self.path == "/log":
            with self.script.lock:
                self.send_json(200, {"log": list(self.script.log)})
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "test-model", "object": "model",
                                                             "created": 0, "owned_by": "tests"}]})
        else:
            self.not_found()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/script":
            try:
                config = json.loads(body)
                self.script.set(config["script"], config.get("latency", 0.0), config.get("storm", 0.0))
            except (ValueError, KeyError, TypeError) as err:
                return self.send_json(400, error_body(str(err), "invalid_request_error", None))
            return self.send_json(200, {"script": self.script.items})
        if self.path != "/v1/chat/completions":
            return self.not_found()
        request = json.loads(body)
        messages = request["messages"]
        user = next(m["content"] for m in messages if m["role"] == "user")
        item, entry = self.script.next(hashlib.sha256(user.encode("utf-8")).hexdigest())
        if item in ("429", "storm"):
            wait = "1" if item == "429" else f"{self.script.storm:g}"
            entry.update(status=429, retry_after=float(wait))
            return self.send_json(429, error_body("Rate limit reached for requests", "requests",
                                                  "rate_limit_exceeded"), {"Retry-After": wait})
        if item == "500":
            entry["status"] = 500
            return self.send_json(500, error_body("The server had an error while processing your request.",
                                                  "server_error", None))
        if item == "timeout":
            time.sleep(TIMEOUT_SECONDS)
        time.sleep(self.script.latency)
        doc = json.loads(user)
        answer = reference_answer(doc)
        if item == "invalid":
            answer = dict(list(answer.items())[1:])  # drops the first field
        content = {"malformed": MALFORMED, "fenced": f"```json\n{json.dumps(answer)}\n```"}.get(item,
                                                                                             json.dumps(answer))
        self.send_json(200, completion(request.get("model", ""), content,
                                       sum(len(m.get("content") or "") for m in messages)))

    def not_found(self):
        self.send_json(404, error_body(f"Unknown request URL: {self.command} {self.path}.",
                                       "invalid_request_error", "unknown_url"))

    def send_json(self, status: int, payload: dict, headers: dict | None = None):
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 refuses a burst of concurrent clients


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True, type=Path, help="where to write the bound port number")
    parser.add_argument("--script", default="ok", help=f"comma-separated items of {', '.join(ITEMS)}")
    args = parser.parse_args(argv)
    try:
        Handler.script = Script(args.script)
    except ValueError as err:
        parser.error(str(err))
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a sleeping `timeout` request must not hold up shutdown
    tmp = args.port_file.with_name(args.port_file.name + ".tmp")
    tmp.write_text(str(server.server_address[1]))
    os.replace(tmp, args.port_file)  # the fixture never reads a half-written port
    server.serve_forever()


if __name__ == "__main__":
    main()
