"""devops-assets triage LOG [--pass PASSING_LOG] [--step NAME ...] [--format json|table]

LOG is a plain or gzipped text log, or a Workers Builds logs JSON response (one page or
a list of pages). An empty, binary (over a quarter NULs, lone surrogates or bytes that
are not UTF-8; fewer are shown as U+FFFD), oversized (over 200 MB of text) or malformed
log is refused with exit status 2 and one line on stderr: "devops-assets triage: LOG:
why". The JSON output has exactly the keys category, step, evidence_start, evidence_end,
evidence, summary, signature and certain (false for a guess or unknown); line numbers
are 1-based and count "\\n" only. A --step name is reported only when a command line
of the log runs it ("$ bun run lint").
"""

from __future__ import annotations

import argparse
import json
import sys

from devops_assets.triage import LogError, Triage, read_log, triage


def add_parser(subparsers) -> None:
    """Add ``triage``; sets ``args.run``."""
    parser = subparsers.add_parser(
        "triage",
        help="say which step of a failed build failed, why, and the lines that show it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("log", metavar="LOG", help="the failed build's log (text, .gz or JSON)")
    parser.add_argument(
        "--pass",
        dest="passing",
        metavar="PASSING_LOG",
        help="a passing build's log of the same branch: lines it shares are not the cause",
    )
    parser.add_argument(
        "--format",
        choices=("json", "table"),
        default="table",
        help="json: the keys above; table (default): the same for a person to read",
    )
    parser.add_argument(
        "--step",
        dest="steps",
        action="append",
        default=[],
        metavar="NAME",
        help="a quality-gate step name to report when a command line of the log runs it "
        "(repeatable)",
    )
    parser.set_defaults(run=run)


def render_table(result: Triage) -> str:
    width = len(str(result.evidence_end))
    rows = [
        f"category   {result.category}{'' if result.certain else ' (not certain)'}",
        f"step       {result.step}",
        f"lines      {result.evidence_start}-{result.evidence_end}",
        f"signature  {result.signature}",
        f"summary    {result.summary}",
        "evidence",
    ]
    for number, line in enumerate(result.evidence, result.evidence_start):
        rows.append(f"  {number:>{width}} | {line}")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    try:
        failed = read_log(args.log)
        passing = read_log(args.passing).text if args.passing else None
    except LogError as exc:
        print(f"devops-assets triage: {exc}", file=sys.stderr)
        return 2
    if not failed.text.strip():
        print(f"devops-assets triage: {args.log}: the log is empty", file=sys.stderr)
        return 2
    result = triage(failed.text, passing=passing, steps=args.steps)
    if args.format == "json":
        print(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    else:
        print(render_table(result))
    return 0
