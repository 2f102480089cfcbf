"""Print, as pip constraints, the package versions a saved demo run recorded.

``make demo-constraints`` resolves the ``demo`` extra under these pins and freezes the
result into ``demo-constraints.txt``, so that ``make demo`` installs the versions that
produced the README's figures (``demo.json`` records them under ``environment``).

Usage: python scripts/demo_pins.py docs/demo-design3/demo.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The packages whose versions demo.json records (sas_core/demo/run.py, environment()),
# sas-core itself excepted: it is the checkout being installed.
RECORDED = ("torch", "trl", "transformers", "numpy")


def pins(demo_json: Path) -> list[str]:
    environment = json.loads(demo_json.read_text())["environment"]
    missing = [name for name in RECORDED if not environment.get(name)]
    if missing:
        raise SystemExit(f"{demo_json}: environment records no version of {', '.join(missing)}")
    return [f"{name}=={environment[name]}" for name in RECORDED]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    print("\n".join(pins(Path(sys.argv[1]))))
