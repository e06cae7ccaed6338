"""Decoding: build a registered strategy, and decode with a task's trained model.

Decoding a trained run from Python is ``seqkit.load_run(RUN).decode(...)`` (``seqkit.api``). Below
it, a decoder drives a task's step model (``seqkit.contracts.decoder``) directly::

    run = seqkit.load_run("runs/char_lm")
    results = decode_inputs(run.task, run.model, ["The "], "beam", 40, {"beam_size": 8})
    best = results[0].hypotheses[0]
    run.task.detokenize(best.tokens), best.log_prob

or, step by step, ``build_decoder(...).decode(task.step_model(model), *task.start_decoding(model,
inputs), length)``. A task whose outputs continue its inputs (a language model) takes
``decode`` and ``show_decoded`` from ``Continuation``. ``observe_steps(on_step, on_done)`` watches
the tokens of every search inside a block, and may stop it (``seqkit serve`` streams them).
"""
from seqkit.contracts.decoder import (
                                      BYTES_PER_STEP,
                                      BYTES_PER_TOKEN,
                                      Decoder,
                                      DecodeResult,
                                      Hypothesis,
                                      NonFiniteLogProbs,
                                      StepModel,
                                      observe_steps,
)
from seqkit.decoding.build import (
                                      build_decoder,
                                      check_strategy_options,
                                      decode_inputs,
                                      inapplicable_options,
                                      recipe_decoder,
                                      strategy_values,
)
from seqkit.decoding.continuation import Continuation
from seqkit.decoding.naming import PYTHON, Naming

__all__ = ["BYTES_PER_STEP", "BYTES_PER_TOKEN", "Continuation", "DecodeResult", "Decoder",
           "Hypothesis", "Naming", "NonFiniteLogProbs", "PYTHON", "StepModel", "build_decoder",
           "check_strategy_options", "decode_inputs", "inapplicable_options", "observe_steps",
           "recipe_decoder", "strategy_values"]
