"""What one request may ask of the server (its caps), and the checks a request passes before it is decoded.

A request is checked alone, before it joins a batch, so that one bad request never fails the
others: its fields, the caps, the strategy (it exists, applies to the run, its options are valid:
the decoder is built). Each problem is a ``RequestProblem``: an HTTP status and one line, the
Python API's (and so the CLI's) where one exists, naming JSON fields (``beam_size: must be >= 1;
got 0``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from seqkit.api import Run
from seqkit.contracts import DecodeDetails
from seqkit.decoding import Naming
from seqkit.errors import SeqkitError
from seqkit.options import suggest
from seqkit.registry import get_registry

# How the Python API's problems name what a request gave: its JSON fields.
HTTP_NAMING = Naming(option=str, strategy="strategy", strategy_hint='a "strategy" field', inputs="inputs",
                     no_inputs="inputs: give one or more texts (the run's recipe has no decode.prompt)",
                     split="split", file_hint='a "file" field')

# The fields of a decode request besides the strategy's options, which sit beside them.
REQUEST_FIELDS = ("inputs", "strategy", "length", "details")
# The strategies /stream writes token by token: one row per input, each step's token the one fed next.
STREAMED = ("greedy", "sample")


@dataclass(frozen=True)
class Limits:
    """The server's caps (``seqkit serve --max-inputs`` ...), listed by ``GET /v1/runs``."""

    max_inputs: int = 64          # texts per request
    max_chars: int = 2000         # characters per text
    max_length: int = 1000        # tokens generated (length)
    max_beam_size: int = 32       # beam_size
    max_n_best: int = 16          # n_best
    max_num_samples: int = 32     # num_samples
    max_prefixes: int = 1_000_000  # max_prefixes of exact search
    max_body_bytes: int = 1 << 20  # a request's body

    def as_dict(self) -> dict:
        return asdict(self)

    def option_cap(self, key: str) -> int | None:
        """The cap on strategy option ``key``, or None."""
        name = OPTION_CAPS.get(key)
        return getattr(self, name) if name else None


# Strategy options with a cap: any decoder's option of that name.
OPTION_CAPS = {"beam_size": "max_beam_size", "n_best": "max_n_best", "num_samples": "max_num_samples",
               "max_prefixes": "max_prefixes"}
CAP_HELP = {
    "max_inputs": "texts per request", "max_chars": "characters per text",
    "max_length": "tokens generated per output (length)", "max_beam_size": "beam_size",
    "max_n_best": "n_best", "max_num_samples": "num_samples", "max_prefixes": "max_prefixes of exact search",
    "max_body_bytes": "bytes of a request's body",
}
assert set(CAP_HELP) == {f.name for f in fields(Limits)}


def flag(cap: str) -> str:
    """'max_beam_size' -> '--max-beam-size'."""
    return "--" + cap.replace("_", "-")


class RequestProblem(Exception):
    """A request the server refuses: an HTTP status and one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def bad(message: str) -> RequestProblem:
    return RequestProblem(400, message)


def over_cap(where: str, value, cap: str, limits: Limits) -> RequestProblem:
    return bad(f"{where}: {value:,} is over this server's cap of {getattr(limits, cap):,} ({flag(cap)})")


@dataclass(frozen=True)
class DecodeJob:
    """A checked request: its texts, and what ``Run.decode_report`` takes besides (the strategy
    and length as given, None for the recipe's; the options as given, with a cap in place of a
    default over it; whether to report per-token details). Requests with the same ``key`` can be
    decoded as one batch; a seeded one (``alone``) is decoded by itself, since its draws depend on
    the rows sampled beside it."""

    texts: tuple[str, ...]
    strategy: str | None
    length: int | None
    options: dict
    details: bool = False
    alone: bool = False

    @property
    def key(self) -> tuple:
        shared = (self.strategy, self.length, self.details, json.dumps(self.options, sort_keys=True))
        return (*shared, id(self)) if self.alone else shared


def parse_body(body: bytes) -> dict:
    """A request body as a JSON object."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"request body: not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise bad(f"request body: expected a JSON object, got {_json_type(data)}")
    return data


def check_decode_request(run: Run, data: dict, limits: Limits) -> DecodeJob:
    """The job of a decode request ``data`` (a JSON object) for ``run``, or a ``RequestProblem``."""
    options = {k: v for k, v in data.items() if k not in REQUEST_FIELDS}
    known = sorted({key for name in get_registry().names("decoder")
                    for key in getattr(get_registry().get("decoder", name), "options", {})})
    for key in options:
        if key not in known:
            raise bad(f"{key}: unknown field{suggest(key, [*REQUEST_FIELDS, *known])}; allowed: "
                      f"{', '.join(REQUEST_FIELDS)} and a strategy's options ({', '.join(known)})")
    texts = _texts(run, data.get("inputs"), "inputs" in data)
    if len(texts) > limits.max_inputs:
        raise over_cap("inputs", len(texts), "max_inputs", limits)
    for i, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise bad(f"inputs[{i}]: {len(text):,} characters is over this server's cap of "
                      f"{limits.max_chars:,} ({flag('max_chars')})")
    length = _length(run, data.get("length"), limits)
    details = _details(run, data.get("details", False))
    strategy = data.get("strategy")
    given = strategy is not None
    effective = strategy if given else run.recipe.get("decode", {}).get("strategy")
    try:
        decoder = run.decoder(effective, options, HTTP_NAMING, given)
    except SeqkitError as exc:
        raise bad("; ".join(exc.problems)) from None
    problem = run.task.decode_strategy_problem(effective)
    if problem:
        where = "strategy" if given else "decode.strategy (the run's recipe)"
        raise bad(f"{where}: '{effective}' does not apply to this {run.recipe['task']} run: {problem}")
    options = dict(options)
    for key, value in decoder.config.items():
        cap = limits.option_cap(key)
        if cap is None or not isinstance(value, int | float) or value <= cap:
            continue
        if key in data:
            raise over_cap(key, value, OPTION_CAPS[key], limits)
        options[key] = cap  # a default over the cap: decoded at the cap
    return DecodeJob(tuple(texts), strategy, length, options, details,
                     alone=decoder.config.get("seed") is not None)


def check_stream_request(run: Run, data: dict, limits: Limits) -> DecodeJob:
    """A decode request that ``/stream`` can write token by token: one input, greedy or one sample."""
    job = check_decode_request(run, data, limits)
    if len(job.texts) != 1:
        raise bad(f"inputs: a stream decodes one input; got {len(job.texts)} (decode several with /decode)")
    strategy = job.strategy or run.recipe["decode"]["strategy"]
    samples = run.decoder(strategy, job.options, HTTP_NAMING).config.get("num_samples", 1)
    if strategy not in STREAMED or samples != 1:
        what = f"'{strategy}'" + (f" with num_samples {samples}" if samples != 1 else "")
        raise bad(f"strategy: a stream writes the tokens of greedy search or of one sample, not of "
                  f"{what}; decode it with /decode")
    return job


def _texts(run: Run, inputs, given: bool) -> list[str]:
    if not given:
        prompt = run.recipe.get("decode", {}).get("prompt")
        if not isinstance(prompt, str):
            raise bad(HTTP_NAMING.no_inputs)
        return [prompt]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise bad(f"inputs: expected a text or a non-empty list of texts; got {inputs!r:.80}")
    return texts


def _length(run: Run, length, limits: Limits) -> int | None:
    if length is None:
        default = run.recipe.get("decode", {}).get("length")
        if isinstance(default, int) and default > limits.max_length:
            raise bad(f"length: the run's recipe writes {default:,} tokens (decode.length), over this "
                      f"server's cap of {limits.max_length:,} ({flag('max_length')}); give a length")
        return None
    if isinstance(length, bool) or not isinstance(length, int):
        raise bad(f"length: must be an integer; got {length!r}")
    if length < 1:
        raise bad(f"length: must be >= 1; got {length}")
    if length > limits.max_length:
        raise over_cap("length", length, "max_length", limits)
    return length


def _details(run: Run, details) -> bool:
    """``details`` checked as ``Run.decode_report`` checks it, before the request joins a batch."""
    if not isinstance(details, bool):
        raise bad(f"details: must be true or false; got {details!r}")
    if details and not isinstance(run.task, DecodeDetails):
        raise bad(f"details: a {run.recipe['task']} run cannot report per-token details (its task has no "
                  f"decode_details method)")
    return details


def _json_type(value) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
             type(None): "null"}
    return names.get(type(value), type(value).__name__)
