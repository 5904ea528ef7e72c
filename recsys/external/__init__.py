"""Bring your own vectors: import embeddings (and an HNSW index) trained elsewhere, export runs.

Import (:func:`import_vectors`, ``python -m recsys import-vectors``) reads item
vectors from

==================  ==========================================================
``npy``             a 2-D ``.npy`` matrix plus ids (``--ids``: ``.npy`` or one id a line)
``parquet``/``csv`` an ``item_id`` column and either one list column (``[0.1, 0.2]``
                    in CSV) or ``d`` numeric columns
``word2vec``        word2vec text format (gensim's ``KeyedVectors`` reader)
``word2vec-binary`` word2vec binary format (same reader)
``projector``       ``vectors.tsv`` as TensorFlow's Embedding Projector writes it, ids
                    from its ``metadata.tsv`` (``--ids``)
==================  ==========================================================

validates them against the dataset's catalogue (dimension, rows, duplicate
ids, NaN/inf rows, zero rows, ids unknown to the catalogue, catalogue items
without a vector), optionally checks an hnswlib index file built elsewhere
(dimension, count, labels, space, a sample of queries; rebuilt with a warning
when it does not match) and a second, query-side space, and stores the result
as an ordinary run of family ``external`` with its provenance in run.json.
Everything is written into a temporary run folder and renamed into place, so a
failed import stores nothing.

Export (:func:`export_run`, ``python -m recsys runs export``) writes a run's
vectors as ``npy``, ``parquet``, ``word2vec`` text or the Embedding Projector's
``vectors.tsv`` + ``metadata.tsv`` + ``projector_config.json``; importing an
export gives the same run (same ids, vectors and lists).

The package: :mod:`.read` (the readers), :mod:`.validate` (the report against the
catalogue), :mod:`.index_check` (an index built elsewhere), :mod:`.importer`
(:func:`import_vectors`, the job form) and :mod:`.export`. Every public name is
importable from ``recsys.external`` as before the split.
"""

from __future__ import annotations

from recsys.external.export import EXPORT_FORMATS, export_run, export_zip
from recsys.external.importer import ERRORS, METRICS, ImportVectorsError, import_vectors, import_vectors_job
from recsys.external.index_check import (
    INDEX_CHECK_K,
    INDEX_CHECK_QUERIES,
    INDEX_MIN_RECALL,
    INDEX_WARN_RECALL,
    check_index,
    read_hnswlib_header,
)
from recsys.external.read import FORMATS, VectorTable, detect_format, read_ids, read_vectors
from recsys.external.validate import match_ids, validate_table

__all__ = [
    "ERRORS",
    "EXPORT_FORMATS",
    "FORMATS",
    "INDEX_CHECK_K",
    "INDEX_CHECK_QUERIES",
    "INDEX_MIN_RECALL",
    "INDEX_WARN_RECALL",
    "METRICS",
    "ImportVectorsError",
    "VectorTable",
    "check_index",
    "detect_format",
    "export_run",
    "export_zip",
    "import_vectors",
    "import_vectors_job",
    "match_ids",
    "read_hnswlib_header",
    "read_ids",
    "read_vectors",
    "validate_table",
]
