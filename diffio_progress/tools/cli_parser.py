"""The command line's arguments: every command, its flags, its help and an example."""

from __future__ import annotations

import argparse

PROG = "python -m diffio_progress"


def _add(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    example: str,
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _positive(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _period(text: str) -> float:
    value = _positive(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than zero")
    return value


def build_parser() -> argparse.ArgumentParser:
    from diffio_progress.core.stages import ALL_STAGES

    from .watch import DEFAULT_URL

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="diffio-progress: the progress endpoint's local world and tools.",
        epilog=f"example:\n  {PROG} run        # then follow the printed commands",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    run = _add(
        commands,
        "run",
        "Start a Firestore emulator, seed demo data, serve the function, simulate a generation.",
        f"{PROG} run --port 8080 --firestore-port 8181",
    )
    run.add_argument("--port", type=int, default=8080, help="function port (default 8080)")
    run.add_argument(
        "--firestore-port",
        type=int,
        help="emulator port (default: emulators.firestore.port of firebase.json, 8181)",
    )
    run.add_argument("--project", help="Google Cloud project id on the emulator (diffio-local)")
    run.add_argument(
        "--step-seconds", type=_positive, default=1.0, help="simulator pace (default 1.0)"
    )
    run.add_argument(
        "--reaper-seconds", type=_period, default=15.0, help="reaper period (default 15)"
    )
    run.add_argument("--relay-seconds", type=_period, default=5.0, help="relay period (default 5)")

    watch = _add(
        commands,
        "watch",
        "Poll a generation's progress over HTTP and show live bars until it finishes.",
        f"DIFFIO_API_KEY=diffio_test_... {PROG} watch gen-123 --project-id proj-123",
    )
    watch.add_argument("generation_id", metavar="GENERATION_ID")
    watch.add_argument("--project-id", help="apiProjectId, to speed up the lookup")
    watch.add_argument("--url", default=DEFAULT_URL, help=f"endpoint URL (default {DEFAULT_URL})")
    watch.add_argument("--api-key", help="API key (default: the DIFFIO_API_KEY variable)")
    watch.add_argument("--interval", type=_positive, default=1.0, help="seconds between polls")
    watch.add_argument(
        "--retry-for",
        type=_positive,
        default=30.0,
        help="give up after this many seconds of 503s or connection errors (default 30)",
    )
    watch.add_argument("--json", action="store_true", help="print one JSON line per change")

    simulate = _add(
        commands,
        "simulate",
        "Drive a generation through its stages with the worker-side writer.",
        f"{PROG} simulate --project-id demo-video --fail-stage inference",
    )
    simulate.add_argument(
        "generation_id", nargs="?", metavar="GENERATION_ID", help="default: a new id"
    )
    simulate.add_argument("--project-id", required=True, help="apiProjectId (created if missing)")
    simulate.add_argument("--video", action="store_true", help="a new project has video")
    simulate.add_argument("--user-id", default="demo-user", help="owner of a new project")
    simulate.add_argument("--api-key-id", help="keyId a new generation is created under")
    failing = simulate.add_mutually_exclusive_group()
    failing.add_argument("--fail-stage", choices=ALL_STAGES, help="fail this stage halfway")
    failing.add_argument(
        "--kill-stage",
        choices=ALL_STAGES,
        help="kill this stage's worker halfway (needs CLOUD_RUN_EMULATOR_HOST, as run prints it)",
    )
    failing.add_argument(
        "--exit-silently",
        choices=ALL_STAGES,
        metavar="STAGE",
        help="this stage's worker exits cleanly halfway without writing its result "
        "(needs CLOUD_RUN_EMULATOR_HOST)",
    )
    simulate.add_argument("--error", help="error of the failed stage")
    simulate.add_argument("--details", help="errorDetails of the failed stage")
    simulate.add_argument("--step-seconds", type=_positive, default=1.0)
    simulate.add_argument("--steps", type=int, default=10, help="updates per stage")
    simulate.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")

    create = _add(
        commands,
        "create-key",
        "Mint an API key; store only its SHA-256 document; print the key once.",
        f"{PROG} create-key --user-id user-123 --label ci --expires-in-days 90",
    )
    create.add_argument("--user-id", required=True, help="the account that owns the key")
    create.add_argument("--live", action="store_true", help="diffio_live_ prefix (default test)")
    create.add_argument("--label", help="a note for humans")
    create.add_argument("--expires-in-days", type=_positive, help="expiry (default: never)")
    create.add_argument("--write", action="store_true", help="also grant write permission")
    create.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")

    revoke = _add(
        commands,
        "revoke-key",
        "Revoke an API key by its keyId: status becomes revoked, revokedAt is set.",
        f"{PROG} revoke-key --key-id key_0123456789abcdef",
    )
    revoke.add_argument("--key-id", required=True)
    revoke.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")

    fail = _add(
        commands,
        "fail-stage",
        "Write a stuck stage failed by hand, as the reaper would; a finished stage is left alone.",
        f'{PROG} fail-stage gen-123 inference --project-id proj-123 --error "Worker lost"',
    )
    fail.add_argument("generation_id", metavar="GENERATION_ID")
    fail.add_argument("stage", choices=ALL_STAGES, metavar="STAGE", help=", ".join(ALL_STAGES))
    fail.add_argument("--project-id", required=True, help="apiProjectId of the generation")
    fail.add_argument("--error", default="Failed by hand", help="the stage's error")
    fail.add_argument("--details", help="the stage's errorDetails")
    fail.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")

    from .webhooks_cli import add_parser

    add_parser(commands, _add, PROG)
    return parser
