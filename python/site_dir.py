"""Print where the package graft installs: meson's choice (argv[2]) when the
interpreter imports from it, else the interpreter's own site folder under
the prefix (argv[1]).  Debian's python3 reads /usr/local/lib/python3.X/
dist-packages while meson picks /usr/local/lib/python3/dist-packages, which
it does not read (mesonbuild/meson#8739)."""
import os
import sys

prefix, meson_dir = sys.argv[1], sys.argv[2]
path = [os.path.normpath(p) for p in sys.path if p]
if os.path.normpath(meson_dir) in path:
    print(meson_dir)
else:
    under = [p for p in path if p.startswith(os.path.normpath(prefix) + os.sep)
             and os.path.basename(p) in ("dist-packages", "site-packages")]
    print(under[0] if under else meson_dir)
