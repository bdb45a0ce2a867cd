"""A real OpenAI-compatible HTTP server for tests, scripted to misbehave on cue (stdlib HTTP only).

    python tests/llm_server.py --port-file PATH [--script 429,ok,malformed,500,timeout,ok]

Each chat request consumes one script item (the last repeats forever). `POST /script {"script": "..."}`
replaces the script and resets the position and the request count; `GET /stats` reports the count.
"""

from __future__ import annotations

import argparse
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
    """The behaviour queue shared by all request threads."""

    def __init__(self, text: str):
        self.lock = threading.Lock()
        self.set(text)

    def set(self, text: str) -> None:
        items = parse_script(text)
        with self.lock:
            self.items, self.position, self.requests = items, 0, 0

    def next(self) -> str:
        with self.lock:
            item = self.items[min(self.position, len(self.items) - 1)]
            self.position += 1
            self.requests += 1
            return item


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
    script: Script

    def log_message(self, format, *args):  # quiet: the test fixture keeps stderr for startup failures
        pass

    def do_GET(self):
        if self.path == "/stats":
            self.send_json(200, {"requests": self.script.requests})
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "test-model", "object": "model",
                                                             "created": 0, "owned_by": "tests"}]})
        else:
            self.not_found()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/script":
            try:
                self.script.set(json.loads(body)["script"])
            except (ValueError, KeyError, TypeError) as err:
                return self.send_json(400, error_body(str(err), "invalid_request_error", None))
            return self.send_json(200, {"script": self.script.items})
        if self.path != "/v1/chat/completions":
            return self.not_found()
        request = json.loads(body)
        item = self.script.next()
        if item == "429":
            return self.send_json(429, error_body("Rate limit reached for requests", "requests",
                                                  "rate_limit_exceeded"), {"Retry-After": "1"})
        if item == "500":
            return self.send_json(500, error_body("The server had an error while processing your request.",
                                                  "server_error", None))
        if item == "timeout":
            time.sleep(TIMEOUT_SECONDS)
        messages = request["messages"]
        doc = json.loads(next(m["content"] for m in messages if m["role"] == "user"))
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True, type=Path, help="where to write the bound port number")
    parser.add_argument("--script", default="ok", help=f"comma-separated items of {', '.join(ITEMS)}")
    args = parser.parse_args(argv)
    try:
        Handler.script = Script(args.script)
    except ValueError as err:
        parser.error(str(err))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a sleeping `timeout` request must not hold up shutdown
    tmp = args.port_file.with_name(args.port_file.name + ".tmp")
    tmp.write_text(str(server.server_address[1]))
    os.replace(tmp, args.port_file)  # the fixture never reads a half-written port
    server.serve_forever()


if __name__ == "__main__":
    main()
