"""The content model: item vectors from the catalogue (text, price, brand, category, images).

- :mod:`.features`: the tower's inputs and the fitted :class:`FeatureState`;
- :mod:`.pairs`: positive pairs, simulated cold items, validation pairs;
- :mod:`.title_words`: the title-words block;
- :mod:`.blocks`: the wide output blocks and their weights;
- :mod:`.model`: :class:`ContentModel` (fit, embed new items, save/load).

What was tried to choose its settings, with the figures: ``docs/experiments.md``.
"""

from __future__ import annotations

from recsys.models.content.blocks import block_names, block_weights, reweight, split_blocks
from recsys.models.content.features import FeatureState, build_features, tokenize
from recsys.models.content.model import LOSSES, ContentModel
from recsys.models.content.pairs import cooccurrence_pairs, holdout_items, leaf_blocks, pair_scores
from recsys.models.content.title_words import (
    title_matrix,
    title_tokens,
    title_vocab,
    word_codes,
    word_lift_weights,
)

__all__ = [
    "LOSSES",
    "ContentModel",
    "FeatureState",
    "block_names",
    "block_weights",
    "build_features",
    "cooccurrence_pairs",
    "holdout_items",
    "leaf_blocks",
    "pair_scores",
    "reweight",
    "split_blocks",
    "title_matrix",
    "title_tokens",
    "title_vocab",
    "tokenize",
    "word_codes",
    "word_lift_weights",
]
