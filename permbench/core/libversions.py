"""Versions of the native libraries behind the orderings and back-ends, read from the libraries
actually loaded in this process, never from constants written in the code.

Where a library has a version call it is used (``SuiteSparse_version``, ``cholmod_version``,
``amd_version`` from SuiteSparse 7 on; ``SCOTCH_version``, ``MKL_Get_Version_String`` and
``cudssGetProperty`` live beside their plug-ins). METIS has none: the version of a METIS compiled
into a Python extension comes from what that build left behind (see :func:`pymetis_metis_version`
and :func:`homapy_metis_version`), and the system's libmetis, like SuiteSparse 5's AMD and CAMD,
from the real file name of the mapped library (``libamd.so.2.4.6``).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import re

from .provenance import library_file_version, loaded_libraries

#: METIS's options[] layout, compiled into whatever includes its metis.h: METIS 5.2 inserted
#: NIPARTS and ONDISK before NUMBERING, which moved from index 17 (5.1.0) to 18 (5.2.1).
_METIS_NUMBERING_INDEX = {17: "5.1", 18: "5.2"}


def version_call(library_path: str, symbol: str) -> str | None:
    """``symbol(int version[3])`` of a loaded library as 'a.b.c'; None when it has no such call."""
    lib = ctypes.CDLL(library_path)
    try:
        fn = getattr(lib, symbol)
    except AttributeError:
        return None
    version = (ctypes.c_int * 3)()
    fn.restype = None
    fn(version)
    return ".".join(str(v) for v in version)


def _mapped(needle: str) -> str | None:
    """Real path of the loaded library whose file name contains ``needle``: libcholmod.so.3 -> path."""
    paths = [p for name, p in loaded_libraries(needle).items() if name.startswith(needle + ".so")]
    return paths[0] if paths else None


def suitesparse_library_version(name: str) -> str:
    """Version of the loaded SuiteSparse library ``lib<name>`` (amd, camd, cholmod, suitesparseconfig):
    its own ``<name>_version`` call where it has one, else the mapped file's name; 'not loaded'."""
    path = _mapped(f"lib{name}")
    if path is None:
        return "not loaded"
    symbol = "SuiteSparse_version" if name == "suitesparseconfig" else f"{name}_version"
    return version_call(path, symbol) or library_file_version(f"lib{name}") or "unknown"



def cholmod_version() -> str:
    """CHOLMOD's version from its own ``cholmod_version`` call in the libcholmod scikit-sparse loaded."""
    import sksparse.cholmod  # noqa: F401  (maps libcholmod into the process)

    return suitesparse_library_version("cholmod")

def pymetis_metis_version() -> str:
    """The METIS compiled into pymetis's extension, e.g. '5.1.0'.

    METIS has no version call. The extension reports the option indices it was compiled with
    (``options_indices``), which tell 5.1 from 5.2; the full version is the one pymetis's own
    description names ("It includes version 5.1.0 of Metis"), used only when the two agree.
    """
    from pymetis import _internal

    compiled = _METIS_NUMBERING_INDEX.get(int(_internal.options_indices.NUMBERING), "unknown layout")
    meta = importlib.metadata.metadata("pymetis")
    text = meta.get_payload() or meta.get("Description") or ""
    stated = re.search(r"version \**(\d+\.\d+\.\d+)\** of (?:the )?metis", text, re.IGNORECASE)
    if stated and stated.group(1).startswith(compiled + "."):
        return stated.group(1)
    return f"{compiled} (from its option layout; pymetis's description says {stated.group(1) if stated else 'nothing'})"


def homapy_metis_version() -> str:
    """The METIS compiled into homapy: the ``METIS_VER_*`` of the metis.h its wheel installs."""
    files = importlib.metadata.files("homapy") or []
    header = next((f for f in files if str(f).replace("\\", "/").endswith("include/metis.h")), None)
    if header is None:
        return "unknown (homapy ships no metis.h)"
    text = header.locate().read_text(errors="replace")
    parts = [re.search(rf"#define\s+METIS_VER_{p}\s+(\d+)", text) for p in ("MAJOR", "MINOR", "SUBMINOR")]
    return ".".join(m.group(1) for m in parts) if all(parts) else "unknown (no METIS_VER_* in its metis.h)"
