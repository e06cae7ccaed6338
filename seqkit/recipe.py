"""YAML recipes: load, apply ``--set`` overrides, validate every key at once, fill defaults.

The core owns the skeleton (task, seed, device, output, and the generic model/train keys);
the chosen task, dataset, cell and decoder validate the keys that belong to them.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from seqkit.device import DEVICE_SPEC, resolve_device
from seqkit.errors import SeqkitError
from seqkit.memory import memory_problems
from seqkit.options import Option, check_options, options_elsewhere, options_of, suggest
from seqkit.registry import get_registry

TOP_OPTIONS = {
    "task": Option(type=str, required=True, help="registered task name"),
    "seed": Option(0, min=0, help="seed for every random number generator"),
    "device": Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
    "output": Option(type=str, help="run directory (default runs/<task>)"),
}
SECTIONS = ("data", "model", "train", "decode")

MODEL_OPTIONS = {
    "cell": Option("lstm", help="registered cell name"),
    "hidden_size": Option(256, min=1),
    "layers": Option(1, min=1),
    "dropout": Option(0.0, min=0.0, max=0.99, help="between layers, as torch.nn.LSTM"),
    "cell_options": Option({}, help="keyword arguments of the cell"),
}

TRAIN_OPTIONS = {
    "steps": Option(1000, min=1, help="optimizer steps"),
    "batch_size": Option(32, min=1),
    "optimizer": Option("adam", choices=("adam", "adamw", "sgd")),
    "lr": Option(1e-3, min=0.0),
    "weight_decay": Option(0.0, min=0.0),
    "momentum": Option(0.0, min=0.0, help="SGD only"),
    "schedule": Option("constant", choices=("constant", "cosine")),
    "schedule_by": Option("steps", choices=("steps", "time"),
                          help="time: the schedule's decay follows the share of train.time_limit "
                               "used, and train.steps is only an upper bound"),
    "warmup_steps": Option(0, min=0),
    "clip_grad_norm": Option(1.0, min=0.0, help="0 turns clipping off"),
    "precision": Option("fp32", choices=("fp32", "bf16-mixed", "auto"),
                        help="bf16-mixed: the training step's matrix products in bfloat16 "
                             "(torch.autocast), the weights and optimizer in float32; auto: "
                             "bf16-mixed where the device multiplies bfloat16 in hardware, else fp32"),
    "eval_every": Option(200, min=1, help="steps between validation and checkpoints"),
    "patience": Option(0, min=0, help="stop after this many evaluations without improvement; 0: never"),
    "log_every": Option(20, min=1),
    "time_limit": Option(0.0, min=0.0, help="seconds; stop (and evaluate) once exceeded; 0: none"),
    "loggers": Option([], type=list, help="metric loggers besides metrics.jsonl, by registered "
                                          "name, e.g. [tensorboard]"),
    "resume": Option("auto", choices=("auto", "never"),
                     help="auto: after torchrun restarts a failed job (--max-restarts), resume "
                          "the run from checkpoints/last.pt; never: refuse, as a fresh run would"),
}

DECODE_OPTIONS = {
    "strategy": Option("greedy", help="registered decoder name"),
    "length": Option(100, min=1, help="tokens to generate"),
}


def cell_options_of(cell_cls) -> dict[str, Option]:
    """``model.cell_options``: the keyword arguments of a cell's constructor after the two sizes."""
    return options_of(cell_cls, skip=("self", "input_size", "hidden_size"))


def recipe_keys(kind: str, cls) -> dict[str, Option]:
    """The keys a component owns, by their path in a recipe."""
    if kind == "task":
        return {f"{section}.{key}": option
                for section, schema in getattr(cls, "options", {}).items() for key, option in schema.items()}
    if kind == "cell":
        return {f"model.cell_options.{key}": option for key, option in cell_options_of(cls).items()}
    if kind == "logger":  # chosen by name in train.loggers; a logger has no keys of its own
        return {}
    if kind == "tokenizer":  # the keys beside `name` of a task's tokenizer mapping, such as data.tokenizer
        return {f"data.tokenizer.{key}": option for key, option in options_of(cls).items()}
    section = {"decoder": "decode", "dataset": "data"}[kind]
    return {f"{section}.{key}": option for key, option in options_of(cls).items()}


def core_keys() -> dict[str, Option]:
    keys = dict(TOP_OPTIONS)
    for section, schema in (("model", MODEL_OPTIONS), ("train", TRAIN_OPTIONS), ("decode", DECODE_OPTIONS)):
        keys.update({f"{section}.{key}": option for key, option in schema.items()})
    return keys


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string; recipes mean a number (as YAML 1.2 does). A key given
    twice in one mapping is an error: PyYAML keeps the last silently, so an edit to the first
    occurrence would do nothing."""

    def construct_document(self, node):
        _refuse_repeated_keys(node, "", set())
        return super().construct_document(node)


def _refuse_repeated_keys(node, path: str, seen: set) -> None:
    if id(node) in seen:  # an alias: its node was checked where its anchor is (and may nest itself)
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, str], int] = {}  # (tag, text) of each scalar key -> its line
        for key_node, value_node in node.value:
            name = f"{path}.{key_node.value}" if path else str(key_node.value)
            # `<<: *base` merges keys that the mapping may override; a key that is a mapping or
            # a list is no recipe's
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                line, first = key_node.start_mark.line + 1, lines.get((key_node.tag, key_node.value))
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{name} given twice (lines {first} and {line}); keep one",
                        key_node.start_mark)
                lines[key_node.tag, key_node.value] = line
            _refuse_repeated_keys(value_node, name, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_repeated_keys(item, f"{path}[{i}]", seen)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                 |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                 |\.[0-9_]+(?:[eE][-+][0-9]+)?
                 |[-+]?\.(?:inf|Inf|INF)
                 |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeqkitError(f"{path}: no such recipe file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SeqkitError(f"{path}: cannot read recipe: {exc}") from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SeqkitError(f"{path}: {where}invalid YAML: {reason}") from None
    if data is None:
        raise SeqkitError(f"{path}: recipe is empty; it needs at least 'task:'")
    if not isinstance(data, dict):
        raise SeqkitError(f"{path}: a recipe is a mapping of keys, got {type(data).__name__}")
    return data


def override_problem(override: str) -> str | None:
    """Why one ``--set`` argument is not ``key.path=value`` (``--set train.steps 100`` gives the
    key and the value as two arguments), or None."""
    key, sep, _ = override.partition("=")
    if sep and key.strip():
        return None
    return f"--set {override}: needs KEY=VALUE, e.g. --set {key.strip() or 'train.steps'}=VALUE"


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> list[str]:
    """Apply ``key.path=value`` overrides in place (values parsed as YAML); return problems.

    ``key.path=null`` removes the key, so its default applies (or, for a key only another
    plugin accepts, it is gone: ``decode.temperature=null`` before switching to beam search).
    """
    problems = []
    for override in overrides:
        problem = override_problem(override)
        if problem:
            problems.append(problem)
            continue
        key, _, text = override.partition("=")
        try:
            value = parse_yaml(text)
        except yaml.YAMLError:
            value = text
        problem = set_value(data, key.strip(), value)
        if problem:
            problems.append(f"--set {override}: {problem}")
    return problems


def set_value(data: dict, key: str, value) -> str | None:
    """Set the dotted ``key`` of ``data`` to ``value`` in place (None removes it); why it cannot
    be set, or None."""
    *parents, leaf = key.split(".")
    node = data
    for i, part in enumerate(parents):
        if value is None and node.get(part) is None:
            return None  # nothing to remove
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            return f"{'.'.join(parents[:i + 1])} is not a mapping"
        node = child
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return None


def _lookup(registry, kind: str, name, key: str, problems: list[str]):
    if not isinstance(name, str):
        problems.append(f"{key}: expected a {kind} name, got {name!r}")
        return None
    if name not in registry.names(kind):
        known = registry.names(kind)
        problems.append(f"{key}: unknown {kind} '{name}'{suggest(name, known)}; "
                        f"registered: {', '.join(known) or 'none'}")
        return None
    return registry.get(kind, name)


def _without_keys_of_others(values: dict, path: str, schema: dict, registry, kind: str,
                            chosen: str, selector: str, problems: list[str], options=options_of) -> dict:
    """Report the keys of ``values`` (section ``path``; ``schema`` its keys with those of the
    ``chosen`` plugin of ``kind``) that another plugin of that kind declares, naming them and the
    recipe key ``selector`` that chooses them: ``data.path`` belongs to the text dataset,
    ``decode.top_p`` to sample. Return ``values`` without them, for the unknown-key check."""
    schemas = {name: options(registry.get(kind, name)) for name in registry.names(kind)}
    foreign = options_elsewhere([k for k in values if k not in schema], chosen, schemas,
                                selector.rpartition(".")[2], selector)
    problems.extend(f"{path}.{key}: {why}" for key, why in foreign.items())
    return {k: v for k, v in values.items() if k not in foreign}


def _logger_problems(train: dict, registry) -> list[str]:
    """``train.loggers``: registered names, each able to run here (its package installed)."""
    names = train.get("loggers")
    if not isinstance(names, list):
        return []
    problems: list[str] = []
    for name in names:
        cls = _lookup(registry, "logger", name, "train.loggers", problems)
        if cls is not None:
            problems += [f"train.loggers: {name}: {p}" for p in cls.check()]
    if len(set(map(str, names))) < len(names):
        problems.append(f"train.loggers: a logger is named twice in {names}")
    train["loggers"] = list(names)  # the recipe's own list, never the option's default
    return problems


def _schedule_problems(train: dict) -> list[str]:
    """A time schedule needs a budget to follow (seqkit.training.schedule)."""
    if train.get("schedule_by") == "time" and train.get("time_limit") == 0:
        return ["train.schedule_by: time needs a time budget; set train.time_limit to the seconds "
                "of training (validation included), or use schedule_by: steps"]
    return []


def _output_problems(output: str) -> list[str]:
    """The run folder can be made: the path, or the nearest of its parents that exists, is a
    folder (else creating it fails with FileExistsError or NotADirectoryError)."""
    path = Path(output)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or existing.is_dir():
        return []
    return [f"output: {existing} is a file, not a folder; name a folder for the run, e.g. "
            f"--set output=runs/NAME"]


def resolve(data: dict, registry, source: str = "recipe") -> dict:
    """Validate ``data`` against the core skeleton and the chosen plugins; return it with defaults.

    Once every key is valid, the checks beyond keys run too (``checks_beyond_keys``): the
    task's cross-key rules, the dataset's files, the device, whether the model fits in memory.
    Raises ``SeqkitError`` listing every problem, each as ``SOURCE: key.path: message``.
    """
    problems: list[str] = []
    top = {k: v for k, v in data.items() if k not in SECTIONS}
    resolved, found = check_options(top, TOP_OPTIONS, "", elsewhere=SECTIONS)
    problems += found
    if isinstance(resolved.get("device"), str) and not DEVICE_SPEC.match(resolved["device"]):
        problems.append(f"device: '{resolved['device']}' is not one of auto, cpu, cuda, cuda:N, mps")
    elif isinstance(resolved.get("device"), str):
        try:  # a device this machine lacks fails validation, not the run
            resolve_device(resolved["device"])
        except SeqkitError as exc:
            problems += exc.problems

    task_cls = _lookup(registry, "task", resolved.get("task"), "task", problems) \
        if resolved.get("task") is not None else None
    extra = getattr(task_cls, "options", {}) if task_cls else {}
    for section in extra:
        if section not in SECTIONS:
            problems.append(f"task: plugin declares options for unknown section '{section}'")
    chosen = {}  # section -> the plugin class its selector key chose (data: the dataset)

    def section(name: str, core: dict[str, Option], selector: tuple[str, str] | None = None):
        values = data.get(name) or {}
        if not isinstance(values, dict):
            problems.append(f"{name}: expected a mapping, got {type(values).__name__}")
            values = {}
        schema = {**core, **extra.get(name, {})}
        if selector:
            key, kind = selector
            if key in schema:
                selected = values.get(key, schema[key].default)
                cls = chosen[name] = _lookup(registry, kind, selected, f"{name}.{key}", problems)
                if cls is not None:
                    schema = {**schema, **options_of(cls)}
                    values = _without_keys_of_others(values, name, schema, registry, kind, selected,
                                                     f"{name}.{key}", problems)
        # Without a known task, keys it would own cannot be judged; report only the rest.
        unjudged = tuple(k for k in values if k not in schema) if task_cls is None else ()
        out, found = check_options(values, schema, name, ignore=unjudged)
        problems.extend(found)
        return out

    resolved["data"] = section("data", {}, ("dataset", "dataset"))
    model = section("model", MODEL_OPTIONS)
    cell_cls = _lookup(registry, "cell", model.get("cell"), "model.cell", problems)
    if cell_cls is not None and isinstance(model.get("cell_options"), dict):
        schema = cell_options_of(cell_cls)
        values = _without_keys_of_others(model["cell_options"], "model.cell_options", schema, registry,
                                         "cell", model["cell"], "model.cell", problems, cell_options_of)
        model["cell_options"], found = check_options(values, schema, "model.cell_options")
        problems += found
    resolved["model"] = model
    resolved["train"] = section("train", TRAIN_OPTIONS)
    problems += _logger_problems(resolved["train"], registry)
    problems += _schedule_problems(resolved["train"])
    resolved["decode"] = section("decode", DECODE_OPTIONS, ("strategy", "decoder"))

    if resolved.get("output") is None and isinstance(resolved.get("task"), str):
        resolved["output"] = f"runs/{resolved['task']}"
    if isinstance(resolved.get("output"), str):
        problems += _output_problems(resolved["output"])
    if not problems:  # the plugins' own rules and the machine's limits need valid keys
        problems = checks_beyond_keys(resolved, task_cls, chosen.get("data"))
    if problems:
        raise SeqkitError(*(f"{source}: {p}" for p in problems))
    return resolved


def checks_beyond_keys(recipe: dict, task_cls, dataset_cls) -> list[str]:
    """The checks a recipe needs beyond each key's own ``Option``: the task's rules across keys
    (``Task.check``, which may fill defaults in ``recipe``), the dataset's files
    (``Dataset.check``), and whether the model fits in memory (``Task.model_outline``). The core
    calls the hooks; the plugins own the rules. Problems as ``"key.path: message"``."""
    problems = list(task_cls.check(recipe))
    if dataset_cls is not None:
        data = recipe["data"]
        problems += dataset_cls.check({k: data[k] for k in options_of(dataset_cls) if k in data})
    if not problems:  # the model outline needs a recipe its task accepts
        problems += memory_problems(recipe, task_cls, resolve_device(recipe["device"]))
    return problems


def load_recipe(path: str | Path, overrides=(), registry=None) -> dict:
    """Read, override and resolve a recipe file; every problem is reported at once."""
    data = load_yaml(path)
    problems = apply_overrides(data, overrides)
    if problems:
        raise SeqkitError(*(f"{path}: {p}" for p in problems))
    return resolve(data, registry or get_registry(), str(path))


def dump_recipe(recipe: dict) -> str:
    return yaml.safe_dump(recipe, sort_keys=False, default_flow_style=False)
