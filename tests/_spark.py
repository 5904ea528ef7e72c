"""The module-level gate of the Spark test files: PySpark installed and a Java runtime found."""

from __future__ import annotations

from types import ModuleType

import pytest


def require_spark() -> ModuleType:
    """``recsys.spark``, or skip the calling test module with the reason (no PySpark, no Java)."""
    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install -r requirements.txt)")
    from recsys import spark as rspark

    if not rspark.java_available():
        pytest.skip(
            "no Java runtime (java on PATH or JAVA_HOME): Spark cannot start; .ci/run installs "
            "openjdk-17-jre-headless",
            allow_module_level=True,
        )
    return rspark
