"""python/README.md and the package agree: every graft.NAME it shows exists,
and every public name of the package is documented there."""
import os
import re

import graft
from pyhelp import SOURCE_ROOT


def readme():
    with open(os.path.join(SOURCE_ROOT, "python", "README.md")) as f:
        return f.read()


def test_every_name_in_the_readme_exists():
    names = set(re.findall(r"\bgraft\.([A-Za-z_]\w*)", readme()))
    assert len(names) > 10
    assert not {n for n in names if not hasattr(graft, n)}


def test_every_public_name_is_documented():
    text = readme()
    undocumented = [n for n in graft.__all__ if n != "__version__"
                    and not re.search(r"\b" + re.escape(n) + r"\b", text)]
    assert not undocumented
