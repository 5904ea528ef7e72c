"""Vetting: judgments of recommended pairs, queues of seeds to judge, and what follows from them."""
