"""Building decoders: a registered strategy from its options, and the recipe's own (one place).

``seqkit decode`` and ``seqkit eval`` (through ``seqkit.Run``), the end of a run's test scores and
a task's sample all build their decoder here, so a recipe's ``decode:`` section means the same
everywhere: its values are the defaults of the strategy it chose, and only of that one.
"""
from __future__ import annotations

from seqkit.contracts.decoder import Decoder, DecodeResult
from seqkit.decoding.naming import PYTHON, Naming
from seqkit.errors import SeqkitError
from seqkit.options import options_elsewhere, suggest
from seqkit.registry import get_registry


def inapplicable_options(registry, strategy: str, keys) -> dict[str, str]:
    """``{key: why}`` for the ``keys`` that belong to other decoders but not to ``strategy``.

    A key no decoder owns is left to the caller's unknown-key check.
    """
    schemas = {name: getattr(registry.get("decoder", name), "options", {})
               for name in registry.names("decoder")}
    return options_elsewhere(keys, strategy, schemas, "strategy")


def build_decoder(strategy: str, values: dict, registry=None) -> Decoder:
    """The registered decoder ``strategy`` built from ``values`` (its options only)."""
    registry = registry or get_registry()
    known = registry.names("decoder")
    if strategy not in known:
        raise SeqkitError(f"decode.strategy: unknown strategy '{strategy}'{suggest(strategy, known)}; "
                          f"registered: {', '.join(known) or 'none'}")
    problems = [f"decode.{key}: {why}"
                for key, why in inapplicable_options(registry, strategy, values).items()]
    if problems:
        raise SeqkitError(*problems)
    return registry.get("decoder", strategy)(**values)


def check_strategy_options(strategy: str, options: dict, naming: Naming = PYTHON) -> None:
    """``strategy`` is registered, and ``options`` are its own and valid, named as the caller
    gave them; found without a model."""
    registry = get_registry()
    known = registry.names("decoder")
    if not isinstance(strategy, str) or strategy not in known:
        raise SeqkitError(f"{naming.strategy}: unknown strategy '{strategy}'{suggest(str(strategy), known)}; "
                          f"registered: {', '.join(known)}")
    problems = inapplicable_options(registry, strategy, options)
    if problems:
        raise SeqkitError(*(f"{naming.option(key)}: {why}" for key, why in problems.items()))
    try:
        build_decoder(strategy, options)
    except SeqkitError as exc:
        raise SeqkitError(*map(naming.problem, exc.problems)) from None


def strategy_values(strategy: str, options: dict, recipe_decode: dict) -> dict:
    """The options to build ``strategy`` with: the recipe's ``decode:`` values where the recipe
    chose this strategy (they are defaults for it only), then ``options``."""
    schema = get_registry().get("decoder", strategy).options
    values = {k: recipe_decode[k] for k in schema
              if k in recipe_decode and recipe_decode.get("strategy") == strategy}
    values.update(options)
    return values


def recipe_decoder(recipe: dict, strategy: str | None = None, options: dict | None = None) -> Decoder:
    """``strategy`` (default: the recipe's ``decode.strategy``) built from ``options`` over the
    recipe's ``decode:`` values."""
    strategy = strategy or recipe["decode"]["strategy"]
    return build_decoder(strategy, strategy_values(strategy, dict(options or {}), recipe["decode"]))


def decode_inputs(task, model, inputs: list[str], strategy: str, length: int,
                  options: dict | None = None, registry=None) -> list[DecodeResult]:
    """Decode each text of ``inputs`` with a task's trained ``model`` (a task with step decoding,
    ``seqkit.contracts.capabilities.StepDecoding``): one result per input."""
    decoder = build_decoder(strategy, dict(options or {}), registry)
    state, tokens = task.start_decoding(model, list(inputs))
    return decoder.decode(task.step_model(model), state, tokens, length)
