"""Who did what to whom: generated sentences for the lecture's word-order argument (12.1).

"the man ate the hot dog" and "the hot dog ate the man" hold the same words, so a time-invariant
bag of words sums them to one vector; only a model that reads order can tell the two apart. Each
sentence is "NP verb NP", both noun phrases drawn alike from one grammar (a determiner, up to two
adjectives, a noun; the two nouns differ), then a question: "?" and one of the two nouns. The
question word is tagged with that noun's role, ``B-AGENT`` or ``B-PATIENT``; every other word
``O``. At the question a left-to-right bag of words holds the whole sentence, the same for both
orders (and every noun is an agent as often as a patient): it can only guess, 50 %. A recurrent
cell reads the order and answers.

``data.tagged: phrases`` tags the sentence's noun phrases instead (``B-AGENT I-AGENT ...``), no
question: there a bag of the words *so far* already tells an agent (no verb seen yet) from a
patient, so a per-step bag-of-words tagger does well; the contrast shows what "time-invariant"
means for a whole sentence and what it does not mean for its prefixes.

Deterministic: the sentences are a function of ``data.seed`` and the split sizes.
"""
from __future__ import annotations

import random

import seqkit
from seqkit import Dataset, Option
from seqkit.contracts.tagged_corpus import Sentence, TaggedCorpus
from seqkit.plugins.datasets._text_files import code_digest

DETERMINERS = ("the", "a")
ADJECTIVES = ("hot", "big", "small", "old", "young", "hungry", "angry", "happy", "tall", "red")
NOUNS = ("man", "woman", "dog", "cat", "boy", "girl", "chef", "king", "queen", "horse", "bird",
         "fish", "farmer", "doctor", "teacher", "child")
VERBS = ("ate", "saw", "chased", "bit", "liked", "pushed", "called", "helped", "followed", "found",
         "fed", "met")
QUESTION = "?"


def noun_phrase(rng: random.Random, noun: str) -> list[str]:
    adjectives = rng.sample(ADJECTIVES, rng.choice((0, 0, 1, 1, 2)))
    return [rng.choice(DETERMINERS), *adjectives, noun]


def sentence(rng: random.Random, tagged: str) -> Sentence:
    agent, patient = rng.sample(NOUNS, 2)
    first, second = noun_phrase(rng, agent), noun_phrase(rng, patient)
    words = [*first, rng.choice(VERBS), *second]
    if tagged == "phrases":
        def span(role, phrase):
            return [f"B-{role}"] + [f"I-{role}"] * (len(phrase) - 1)
        return words, span("AGENT", first) + ["O"] + span("PATIENT", second)
    asked = rng.choice((agent, patient))
    role = "B-AGENT" if asked == agent else "B-PATIENT"
    return words + [QUESTION, asked], ["O"] * (len(words) + 1) + [role]


class Roles(Dataset):
    options = {
        "train_sentences": Option(20000, min=10, help="generated training sentences"),
        "dev_sentences": Option(2000, min=1),
        "test_sentences": Option(2000, min=1),
        "tagged": Option("question", choices=("question", "phrases"),
                         help="question: tag the role of the noun asked about after the sentence; "
                              "phrases: tag the sentence's noun phrases"),
        "seed": Option(0, min=0, help="the generator's seed (the sentences, not the model)"),
    }

    def _options(self) -> dict:
        return {key: option.default for key, option in self.options.items()} | self.config

    def identity(self) -> dict:
        """The options and the generator's code: the sentences are a function of both."""
        return {"dataset": "roles", "options": dict(sorted(self._options().items())), "code": code_digest(__file__)}

    def load(self) -> TaggedCorpus:
        config = self._options()
        rng, tagged = random.Random(config["seed"]), config["tagged"]
        splits = {split: [sentence(rng, tagged) for _ in range(config[f"{split}_sentences"])]
                  for split in ("train", "dev", "test")}
        tags = ("O", "B-AGENT", "B-PATIENT") if tagged == "question" else \
            ("O", "B-AGENT", "I-AGENT", "B-PATIENT", "I-PATIENT")
        return TaggedCorpus("word", splits, tags)


@seqkit.hookimpl
def register_datasets(register):
    register("roles", Roles)
