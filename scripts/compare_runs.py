"""Write the comparison report of a group of runs (or of given run folders): report.md and PNG plots.

python scripts/compare_runs.py --group G [--runs_dir artifacts/runs] [--runs FOLDER ...] [--out DIR]
                               [--source local|wandb|auto] [--project rlhf-gym]
"""

import argparse
import sys

from rlhf.runs.report import SOURCES, EmptyGroupError, build_report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", help="the run group to compare (wandb group and <runs_dir>/<group>)")
    parser.add_argument("--runs_dir", default="artifacts/runs", help="where the local run records are")
    parser.add_argument("--runs", nargs="+", help="run record folders to compare instead of a group")
    parser.add_argument("--out", help="output folder (default <runs_dir>/<group>/report)")
    parser.add_argument("--source", choices=SOURCES, default="auto", help="wandb API, local records, or auto")
    parser.add_argument("--project", default="rlhf-gym", help="wandb project")
    args = parser.parse_args(argv)
    if not args.group and not args.runs:
        parser.error("give --group G or --runs FOLDER ...")
    try:
        path = build_report(
            args.runs or args.group,
            args.out,
            runs_dir=args.runs_dir,
            source=args.source,
            project=args.project,
            title=f"Run comparison: {args.group}" if args.group else None,
        )
    except EmptyGroupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
