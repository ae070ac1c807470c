"""Compile every seed notebook here into generated/, each with its flags from notebooks.json.

    python examples/notebooks/compile.py [--check]

(the same as running `bpc compile examples/notebooks/<file> <flags>` for each file)
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    flags = json.loads((HERE / "notebooks.json").read_text())
    status = 0
    for name, options in flags.items():
        args = []
        for key, value in options.items():
            args += [f"--{key}", ",".join(value) if isinstance(value, list) else value]
        cmd = ["bpc", "compile", str((HERE / name).relative_to(Path.cwd())), *args, *sys.argv[1:]]
        print("$", " ".join(cmd), flush=True)
        status = status or subprocess.run(cmd).returncode
    return status


if __name__ == "__main__":
    raise SystemExit(main())
