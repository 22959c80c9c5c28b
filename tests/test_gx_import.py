"""GX is imported with scipy.stats and altair deferred, not missing: they run in full on first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_gx_does_not_run_scipy_stats_nor_altair():
    out = _python(
        """
        import sys
        from deid.expect.gx_import import great_expectations
        gx = great_expectations()
        assert gx.get_context is not None
        # the module objects exist (GX's expectation holds them) but their code has not run
        print("scipy.stats" in sys.modules, "scipy.stats._stats_py" in sys.modules)
        print("altair" in sys.modules, "altair.vegalite" in sys.modules)
        print(any(type(f).__name__ == "_LazyFinder" for f in sys.meta_path))
        """
    )
    assert out.split() == ["True", "False", "True", "False", "False"]


def test_the_deferred_modules_work_when_used():
    out = _python(
        """
        from deid.expect.gx_import import great_expectations
        great_expectations()
        from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
        print(round(float(kl.stats.entropy([0.5, 0.5], [0.9, 0.1])), 6))
        print(kl.alt.Chart.__name__)
        import scipy.stats
        print(scipy.stats.norm.cdf(0))
        """
    )
    assert out.split() == ["0.510826", "Chart", "0.5"]


def test_importing_twice_gives_the_same_module():
    out = _python(
        """
        import great_expectations
        from deid.expect.gx_import import great_expectations as imported
        print(imported() is great_expectations)
        """
    )
    assert out.split() == ["True"]


def test_a_run_imports_gx_in_the_background_only_when_it_validates():
    """`deid run` starts GX's import once the scrub has transformed its last rows (the process waits on the
    server then); validate's own call gets the same module, imported with scipy.stats still deferred."""
    out = _python(
        """
        import sys
        from deid.run import _validation_ahead
        print(_validation_ahead(("snapshot", "scrub", "rebase")))
        start = _validation_ahead(("snapshot", "scrub", "validate"))
        start().join()
        print("great_expectations" in sys.modules, "scipy.stats._stats_py" in sys.modules)
        from deid.expect.gx_import import great_expectations
        print(great_expectations() is sys.modules["great_expectations"])
        """
    )
    assert out.split() == ["None", "True", "False", "True"]
