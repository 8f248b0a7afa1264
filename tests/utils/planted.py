"""Shared libraries a hostile user could plant in a cache: loading one runs its constructor,
which writes a marker file (so a test sees whether the library was ever dlopen'ed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

NOBODY = 65534  # uid/gid of `nobody`

SOURCE = """#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w");
    if (f) { fputs("constructor ran\\n", f); fclose(f); }
}
"""


def planted_library(path: Path, marker: Path, compiler: str = "gcc") -> Path:
    """Compile a library whose constructor writes ``marker``, at ``path`` (the compiler the
    project builds its own libraries with: tl2cgen's toolchain ``gcc``)."""
    source = path.with_name(path.name + ".c")
    source.write_text(SOURCE)
    subprocess.run([compiler, "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", str(path),
                    str(source)], check=True, capture_output=True)
    source.unlink()
    return path
