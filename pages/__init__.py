"""Dash pages: one module per page, each with ``dash.register_page``, ``layout`` and its callbacks."""
