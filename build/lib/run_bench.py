"""HourglassBench command line: ``python run_bench.py --help`` (same as ``hourglass-bench``)."""

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
