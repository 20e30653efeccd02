"""``manyfold catalog``: the primitive catalog (:mod:`manyfold.catalog`) as a table per family,
as JSON (``--json``), or as the Markdown of ``docs/catalog.md`` (``--markdown``)."""

from __future__ import annotations

import argparse
import json
import sys

from manyfold.cli.errors import EXIT_OK, CliError


def cmd_catalog(args: argparse.Namespace) -> int:
    from manyfold import catalog
    from manyfold.catalog.docs import contract_data, render_markdown
    from manyfold.primitives import Family

    if args.json and args.markdown:
        raise CliError("give --json or --markdown, not both")
    contracts = catalog.family(args.family) if args.family else catalog.all()
    if args.json:
        print(json.dumps({"primitives": [contract_data(c) for c in contracts]}, indent=2))
        return EXIT_OK
    if args.markdown:
        sys.stdout.write(render_markdown(contracts))
        return EXIT_OK
    from manyfold.cli import render

    console = render.console()
    for family in Family:
        members = [c for c in contracts if c.family == family]
        if not members:
            continue
        table = render.table(
            f"{family.value} ({len(members)})", ("primitive", "layer", "maturity", "requires", "provides", "summary"),
            ((c.name, c.layer.value, c.maturity.value, ", ".join(c.requires), ", ".join(c.provides), c.summary) for c in members),
            optional=("requires", "provides"), priority=("primitive",),
        )  # fmt: skip
        console.print(table)
    return EXIT_OK


def register(subparsers) -> None:
    """Adds ``catalog``."""
    from manyfold.primitives import Family

    catalog = subparsers.add_parser(
        "catalog", help="list the primitive catalog: families, maturity, requires and provides",
        description="The primitives manyfold knows, from their contracts. --markdown prints docs/catalog.md "
        "(regenerate it with `manyfold catalog --markdown > docs/catalog.md`).",
    )  # fmt: skip
    catalog.add_argument("--family", choices=[f.value for f in Family], help="only this family")
    catalog.add_argument("--json", action="store_true", help='one JSON object {"primitives": [...]}, every contract field')
    catalog.add_argument("--markdown", action="store_true", help="the Markdown of docs/catalog.md")
    catalog.set_defaults(func=cmd_catalog)


__all__ = ["cmd_catalog", "register"]
