"""What plugins implement: the base classes of the six plugin kinds, and the data they exchange.

These modules import only seqkit's leaf modules (errors, options, state, text_files), so that the
registry, the trainer and the decoders can all build on them without circles.
"""
from seqkit.contracts.capabilities import (
                                           Breakdown,
                                           DecodeDetails,
                                           GradientProbe,
                                           SearchReport,
                                           ShowsDecoded,
                                           StepDecoding,
                                           breakdown_of,
)
from seqkit.contracts.cell import Cell
from seqkit.contracts.dataset import Dataset, Split, read_text_file
from seqkit.contracts.decoder import Decoder, DecodeResult, Hypothesis, NonFiniteLogProbs, StepModel
from seqkit.contracts.logger import MetricLogger
from seqkit.contracts.parallel_corpus import Example, ParallelCorpus
from seqkit.contracts.tagged_corpus import Sentence, TaggedCorpus
from seqkit.contracts.task import Task
from seqkit.contracts.tokenizer import Tokenizer

__all__ = ["Breakdown", "Cell", "Dataset", "DecodeDetails", "DecodeResult", "Decoder", "Example", "GradientProbe",
           "Hypothesis", "MetricLogger", "NonFiniteLogProbs", "ParallelCorpus", "SearchReport",
           "Sentence", "ShowsDecoded", "Split", "StepDecoding", "StepModel", "TaggedCorpus", "Task",
           "Tokenizer", "breakdown_of", "read_text_file"]
