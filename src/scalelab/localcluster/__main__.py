"""`python -m scalelab.localcluster build|up|down|status|check-clean`."""

from __future__ import annotations

import argparse
import json
import sys

from scalelab.errors import ScalelabError
from scalelab.localcluster import build, clean, cluster
from scalelab.localcluster.layout import Layout


def say(line: str) -> None:
    print(f"cluster: {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scalelab.localcluster", description=__doc__)
    parser.add_argument("command", choices=["build", "up", "down", "status", "check-clean"])
    args = parser.parse_args(argv)
    layout = Layout.default()
    try:
        if args.command == "build":
            build.build_all(layout, say)
        elif args.command == "up":
            took = cluster.up(layout, say)
            say(f"up in {took:.0f} s; kubeconfig {layout.kubeconfig}, kubectl {layout.kubectl}")
        elif args.command == "down":
            took = cluster.down(layout, say)
            say(f"down in {took:.0f} s")
            return _report_clean(layout)
        elif args.command == "status":
            print(json.dumps(cluster.status(layout), indent=2))
        else:
            return _report_clean(layout)
    except ScalelabError as e:
        print(f"cluster: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _report_clean(layout: Layout) -> int:
    left = clean.leftovers(layout)
    for item in left:
        print(f"left behind: {item}", file=sys.stderr)
    if not left:
        say("clean: nothing left (processes, links, addresses, chains, sysctls, mounts, cgroups)")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
