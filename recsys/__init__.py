"""RecSys Lab: build, vet and serve embedding-based item recommendations.

The library imports no Dash. Heavy dependencies (TensorFlow, gensim, UMAP) are
imported inside the functions that need them, so ``import recsys`` is cheap.
"""

__version__ = "0.1.0"
