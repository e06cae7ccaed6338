"""Ancestral sampling with temperature, top-k and nucleus (top-p) filtering, batched."""
from __future__ import annotations

import torch

import seqkit
from seqkit import Option
from seqkit.contracts import Decoder

from ._common import repeat_each
from ._rollout import most_probable, rollout


class Sample(Decoder):
    """Draw each token from the model's distribution, reshaped by temperature, top-k and top-p.

    Reported log-probabilities are the model's own (before temperature and filtering), so samples
    can be compared with other strategies' outputs.
    """

    options = {
        "temperature": Option(1.0, min=0.0, help="divide log-probabilities by this; 0 means greedy"),
        "top_k": Option(0, min=0, help="keep only the k most probable tokens; 0 keeps all"),
        "top_p": Option(1.0, min=0.0, max=1.0,
                        help="keep the fewest most probable tokens holding this much mass; 1: all, 0: the top one"),
        "num_samples": Option(1, min=1, help="samples per input, drawn in one batch"),
        "seed": Option(None, type=int, help="seed of the sampler's generator; unset: fresh randomness"),
    }

    def rows_per_input(self, model, length):
        return self.config["num_samples"]

    def search(self, model, state, tokens, length):
        temperature, top_k, top_p = (self.config[k] for k in ("temperature", "top_k", "top_p"))
        groups, per_group = tokens.shape[0], self.config["num_samples"]
        state, tokens = repeat_each(state, tokens, per_group)
        generator = torch.Generator(device=tokens.device)
        if self.config["seed"] is None:
            generator.seed()
        else:
            generator.manual_seed(self.config["seed"])

        def draw(log_probs):
            if temperature == 0.0:
                return most_probable(log_probs)
            weights = filtered_log_weights(log_probs / temperature, top_k, top_p).softmax(1)
            chosen = torch.multinomial(weights, 1, generator=generator)
            return chosen.squeeze(1), log_probs.gather(1, chosen).squeeze(1)

        return rollout(model, state, tokens, length, choose=draw, groups=groups)


def filtered_log_weights(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """``logits`` (batch, V) with every token outside the top-k and the top-p nucleus at -inf."""
    if 0 < top_k < logits.shape[1]:
        values, indices = logits.topk(top_k, dim=1)
        logits = torch.full_like(logits, float("-inf")).scatter(1, indices, values)
    if top_p < 1.0:
        ordered, order = logits.sort(dim=1, descending=True)
        probs = ordered.softmax(1)
        # Drop a token when the more probable ones before it already reach top_p; the first stays.
        drop = (probs.cumsum(1) - probs) >= top_p
        drop[:, 0] = False
        ordered = ordered.masked_fill(drop, float("-inf"))
        logits = torch.empty_like(logits).scatter(1, order, ordered)
    return logits


@seqkit.hookimpl
def register_decoders(register):
    register("sample", Sample)
