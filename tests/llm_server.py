"""A small local HTTP server that speaks the Anthropic Messages and OpenAI Chat Completions
APIs, for end-to-end tests of the LLM agents (only 127.0.0.1, bounded, stops by itself)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]  # (tool or schema name, request) -> the JSON answer


def anthropic_reply(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_test", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "tool_use", "id": "toolu_test", "name": name, "input": data}],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 150, "output_tokens": 60},
    }


def openai_reply(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
    }


class LLMServer:
    """Serve `answer` on 127.0.0.1; `requests` keeps every request body and the headers seen."""

    def __init__(self, answer: Answer, max_requests: int = 2000) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if len(server.requests) > max_requests:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path.endswith("/messages"):
                    name = body["tool_choice"]["name"]
                    reply = anthropic_reply(name, server.answer(name, body))
                else:
                    name = body["response_format"]["json_schema"]["name"]
                    reply = openai_reply(json.dumps(server.answer(name, body)))
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sensible(name: str, request: dict[str, Any]) -> dict[str, Any]:
    """Well-formed answers for every turn the agents ask for."""
    if name == "strategist_proposals":
        return {"agente": "strategist", "turno": 0, "plano_curto": "LLM plan: tighten and widen",
                "proposta": [
                    {"nome": "L1", "metodo": "ema_crossover", "parametros": {"atr_stop_mult": 1.8}, "racional": "llm one"},
                    {"nome": "L2", "metodo": "macd_trend", "parametros": {}, "racional": "llm two"},
                    {"nome": "L3", "metodo": "ema_crossover", "parametros": {"hard_tp_usd": 600}, "racional": "llm three"},
                ], "metricas_esperadas": {"hit": 0.52}, "proximo_passo": "critic picks"}
    if name == "critic_choice":
        return {"chosen_index": 0, "verdict": "LLM chose L1", "analysis": "best recent validation score"}
    if name == "critic_review":
        return {"decision": "confirm", "changes": [], "reason": "LLM confirms the rule"}
    return {"verdict": "LLM verdict", "analysis": "segment judged by the LLM"}
