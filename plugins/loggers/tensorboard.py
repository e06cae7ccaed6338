"""TensorBoard: every numeric value of every record as a scalar ``SPLIT/NAME`` against the step,
and the resolved recipe as text, under ``RUN/tb/`` (``tensorboard --logdir runs``).

Written through ``torch.utils.tensorboard``, which needs the ``tensorboard`` package: an optional
extra, ``pip install "seqkit[tensorboard]"``.
"""
from __future__ import annotations

import importlib.util

import seqkit
from seqkit.recipe import dump_recipe

INSTALL = 'the tensorboard package is not installed: pip install "seqkit[tensorboard]"'


class TensorBoardLogger(seqkit.MetricLogger):
    """Scalars under ``RUN/tb/``; on resume, what the stopped run logged past its checkpoint goes."""

    @classmethod
    def check(cls) -> list[str]:
        try:  # found, not imported: importing it costs seconds
            found = importlib.util.find_spec("tensorboard") is not None
        except ImportError:
            found = False
        return [] if found else [INSTALL]

    def start(self, recipe: dict, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the optional tensorboard package

        # purge_step: TensorBoard hides events at or past it that an earlier writer left
        self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=step + 1 if step else None)
        if not step:
            text = "\n".join("    " + line for line in dump_recipe(recipe).splitlines())  # markdown code
            self.writer.add_text("recipe", text, 0)

    def log(self, record: dict) -> None:
        split, step = record.get("split", "train"), record["step"]
        for key, value in record.items():
            if key not in ("step", "split") and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                self.writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        self.writer.close()


@seqkit.hookimpl
def register_loggers(register):
    register("tensorboard", TensorBoardLogger)
