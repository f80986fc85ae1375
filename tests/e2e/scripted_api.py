#!/usr/bin/env python3
"""A fake Anthropic Messages API that plays a scripted sequence of tool calls.

Standard library only; listens on 127.0.0.1. Started by session.py; can run alone:

    scripted_api.py --script S.json --results R.json --log L.jsonl --port-file P

S.json: {"marker": "e2e-session-go", "calls": [{"tool": "Bash", "input": {...}}, ...],
         "final_text": "done"}

How a POST /v1/messages is answered:

* The conversation is ours when a user message contains `marker` and the request offers
  tools (Claude Code's side requests, such as title generation, offer none).
* In our conversation, count the scripted calls whose tool_result is already in the
  messages. Call k (0-based) is sent as one tool_use block only after the tool_result of
  call k-1 has arrived; after the last tool_result the reply is `final_text`.
* Every tool_result seen (first sight of each id) is written to --results, in call order,
  with the text blocks of the same user message and the messages after it (where Claude
  Code puts hook context and environment updates).
* Anything else gets a short text. Replies stream as server-sent events when the request
  asks for "stream": true. count_tokens and GET /v1/models get plausible answers.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
OPTS = None
SCRIPT = {}
RESULTS = {}  # call index -> record


def call_id(k):
    return "toolu_e2e%02d%s" % (k, SCRIPT["run_id"])


def text_of(content):
    if isinstance(content, str):
        return content
    out = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            out.append(block.get("text") or "")
        elif isinstance(block, dict) and block.get("type") != "tool_result":
            out.append("[%s block]" % block.get("type"))
    return "\n".join(out)


def is_ours(body):
    if not body.get("tools"):
        return False
    marker = SCRIPT["marker"]
    for msg in body.get("messages") or []:
        if msg.get("role") == "user" and marker in json.dumps(msg.get("content")):
            return True
    return False


def collect_results(messages):
    """Record each scripted call's tool_result once; return how many have arrived."""
    ids = {call_id(k): k for k in range(len(SCRIPT["calls"]))}
    seen = set()
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not (isinstance(block, dict) and block.get("type") == "tool_result"):
                continue
            k = ids.get(block.get("tool_use_id"))
            if k is None:
                continue
            seen.add(k)
            with LOCK:
                if k in RESULTS:
                    continue
                raw = block.get("content")
                extra = [text_of(content)] + [text_of(m.get("content")) for m in messages[i + 1:]]
                RESULTS[k] = {
                    "call": k,
                    "input": SCRIPT["calls"][k]["input"],
                    "text": text_of(raw) if not isinstance(raw, str) else raw,
                    "is_error": bool(block.get("is_error")),
                    "extra": [t for t in extra if t],
                }
                ordered = [RESULTS[j] for j in sorted(RESULTS)]
                tmp = OPTS.results + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(ordered, f, indent=2)
                os.replace(tmp, OPTS.results)
    return len(seen)


def message(model, content, stop_reason):
    return {"id": "msg_e2e%d" % int(time.time() * 1e6), "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}


def as_events(msg):
    def ev(name, data):
        return "event: %s\ndata: %s\n\n" % (name, json.dumps(data))
    head = dict(msg, content=[], stop_reason=None)
    parts = [ev("message_start", {"type": "message_start", "message": head})]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        parts.append(ev("content_block_start",
                        {"type": "content_block_start", "index": i, "content_block": start}))
        parts.append(ev("content_block_delta",
                        {"type": "content_block_delta", "index": i, "delta": delta}))
        parts.append(ev("content_block_stop", {"type": "content_block_stop", "index": i}))
    parts.append(ev("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": msg["stop_reason"],
                                                "stop_sequence": None},
                                      "usage": {"output_tokens": 5}}))
    parts.append(ev("message_stop", {"type": "message_stop"}))
    return "".join(parts).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, data, ctype="application/json"):
        if not isinstance(data, bytes):
            data = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def note(self, answer):
        with LOCK:
            with open(OPTS.log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"t": round(time.time(), 3), "method": self.command,
                                    "path": self.path, "answer": answer}) + "\n")

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/models" or path.startswith("/v1/models/"):
            model = {"type": "model", "id": path.rsplit("/", 1)[-1] if path != "/v1/models"
                     else "claude-sonnet-4-5", "display_name": "scripted",
                     "created_at": "2025-01-01T00:00:00Z"}
            self.note("models")
            if path == "/v1/models":
                return self.reply(200, {"data": [model], "has_more": False,
                                        "first_id": model["id"], "last_id": model["id"]})
            return self.reply(200, model)
        self.note("404")
        self.reply(404, {"type": "error", "error": {"type": "not_found_error",
                                                     "message": "not found"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        path = self.path.split("?")[0]
        if path == "/v1/messages/count_tokens":
            self.note("count_tokens")
            return self.reply(200, {"input_tokens": max(1, len(raw) // 4)})
        if path != "/v1/messages":
            self.note("200 {}")
            return self.reply(200, {})
        model = body.get("model") or "claude-sonnet-4-5"
        calls = SCRIPT["calls"]
        if is_ours(body):
            done = collect_results(body.get("messages") or [])
            if done < len(calls):
                call = calls[done]
                content = [{"type": "tool_use", "id": call_id(done), "name": call["tool"],
                            "input": call["input"]}]
                msg, answer = message(model, content, "tool_use"), "tool_use %d" % done
            else:
                msg = message(model, [{"type": "text", "text": SCRIPT["final_text"]}],
                              "end_turn")
                answer = "final_text"
        else:
            msg, answer = message(model, [{"type": "text", "text": "ok"}], "end_turn"), "side"
        self.note(answer)
        if body.get("stream"):
            return self.reply(200, as_events(msg), "text/event-stream")
        return self.reply(200, msg)


def main():
    global OPTS, SCRIPT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--script", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    OPTS = ap.parse_args()
    with open(OPTS.script, encoding="utf-8") as f:
        SCRIPT = json.load(f)
    SCRIPT.setdefault("marker", "e2e-session-go")
    SCRIPT.setdefault("final_text", "e2e-session: done")
    SCRIPT["run_id"] = "%016x" % int(time.time() * 1e6)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(OPTS.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(OPTS.port_file + ".tmp", OPTS.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
