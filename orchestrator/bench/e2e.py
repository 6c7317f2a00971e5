"""End-to-end realtime load (placeholder, filled in next)."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args, settings) -> int:  # type: ignore[no-untyped-def]
    return 0
