"""``python -m toilless.scaffold <dag_id> [--owner TEAM] [--channel NAME] [--repo DIR]``: write a new SOP.

Exit codes: 0 written (the files and the manual steps left are printed); 2 refused (an invalid or existing dag_id;
one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toilless.scaffold import ScaffoldError, Sop, manual_steps, scaffold

#: The repository this package lives in: plugins/toilless/scaffold/__main__.py -> ../../../
DEFAULT_REPO = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toilless.scaffold", description=__doc__.splitlines()[0])
    parser.add_argument("dag_id", help="the new SOP's dag_id, e.g. disk_space_guard: its name in every folder")
    parser.add_argument("--owner", default="sre", help="the owning team (default_args owner); default: sre")
    parser.add_argument("--channel", default="non_urgent", help="the report's Slack channel name; default: non_urgent")
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO, help="the repository root; default: this one")
    args = parser.parse_args(argv)
    sop = Sop(dag_id=args.dag_id, owner=args.owner, channel=args.channel)
    root = args.repo.resolve()
    try:
        written = scaffold(sop, root)
    except ScaffoldError as err:
        print(f"scaffold: {err}", file=sys.stderr)
        return 2
    print(f"Scaffolded SOP {sop.dag_id}:")
    for path in written:
        print(f"  {path.relative_to(root)}")
    print("Left for you:")
    for number, step in enumerate(manual_steps(sop), start=1):
        print(f"  {number}. {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
