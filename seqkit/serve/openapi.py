"""``GET /openapi.json``: the API described as OpenAPI 3.1, written by hand (docs/serve.md explains it)."""
from __future__ import annotations

from seqkit.version import __version__

_ERROR = {"description": "a problem, in one line",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "a run's name, as GET /v1/runs lists it"}]
_DECODE_BODY = {"required": False, "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/DecodeRequest"}}}}


def _json(description: str, schema: dict | None = None) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def openapi(limits: dict) -> dict:
    """The OpenAPI document of this server (``limits``: its caps, quoted in the descriptions)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "seqkit serve", "version": __version__,
                 "description": "Decode with trained seqkit runs: JSON everywhere; every error is "
                                "{\"error\": \"<one line>\"}. With --token, send Authorization: Bearer TOKEN."},
        "paths": {
            "/healthz": {"get": {"summary": "the server is up; what it has decoded so far",
                                 "responses": {"200": _json("status ok, and counters")}}},
            "/v1/runs": {"get": {"summary": "the runs served: task, cell, strategies and their options, "
                                            "limits, recipe",
                                 "responses": {"200": _json("{\"runs\": [...]}")}}},
            "/v1/runs/{name}/metrics": {"get": {
                "summary": "every line of the run's metrics.jsonl ([] for an exported file)",
                "parameters": _NAME,
                "responses": {"200": _json("{\"metrics\": [...]}"), "404": _ERROR}}},
            "/v1/runs/{name}/decode": {"post": {
                "summary": "decode inputs: exactly what `seqkit decode --json` prints for the same arguments",
                "parameters": _NAME, "requestBody": _DECODE_BODY,
                "responses": {"200": _json("the decode report: strategy, options, length, results"),
                              "400": _ERROR, "404": _ERROR, "413": _ERROR, "500": _ERROR}}},
            "/v1/runs/{name}/stream": {"post": {
                "summary": "one input, greedy or one sample, as server-sent events: `token` events "
                           "({index, token, text}), then `result` (the decode report) or `error`",
                "parameters": _NAME, "requestBody": _DECODE_BODY,
                "responses": {"200": {"description": "text/event-stream",
                                      "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                              "400": _ERROR, "404": _ERROR, "413": _ERROR}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "DecodeRequest": {
                "type": "object",
                "description": "Strategy options (beam_size, temperature, ...) sit beside these fields; "
                               "GET /v1/runs lists each strategy's. Left out: the run recipe's decode: values. "
                               f"Caps: {', '.join(f'{k} {v}' for k, v in limits.items())}.",
                "properties": {
                    "inputs": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    "strategy": {"type": "string"},
                    "length": {"type": "integer", "minimum": 1},
                    "details": {"type": "boolean", "description": "add each output's token_log_probs "
                                                                   "(a translator's attention too), as "
                                                                   "seqkit decode --details"},
                },
                "additionalProperties": True,
            },
        }},
    }
