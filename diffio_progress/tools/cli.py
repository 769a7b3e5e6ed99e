"""`python -m diffio_progress <command>`: run, watch, simulate, create-key, revoke-key."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from .firestore_connection import CliError, firestore_client, firestore_errors

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
    failing = simulate.add_mutually_exclusive_group()
    failing.add_argument("--fail-stage", choices=ALL_STAGES, help="fail this stage halfway")
    failing.add_argument(
        "--kill-stage",
        choices=ALL_STAGES,
        help="kill this stage's worker halfway (needs CLOUD_RUN_EMULATOR_HOST, as run prints it)",
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
    return parser


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from .firestore_connection import LOCAL_PROJECT
    from .simulator import Pace
    from .world import WorldOptions, run

    options = WorldOptions(
        port=args.port,
        firestore_port=args.firestore_port,
        project=args.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or LOCAL_PROJECT,
        pace=Pace.scaled(args.step_seconds),
        reaper_period=args.reaper_seconds,
    )
    return run(options, out)


def _watch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .watch import API_KEY_VARIABLE, EXIT_REFUSED, Watcher, watch

    api_key = args.api_key or os.environ.get(API_KEY_VARIABLE)
    if not api_key:
        raise CliError(f"No API key: set {API_KEY_VARIABLE} or pass --api-key.", EXIT_REFUSED)
    watcher = Watcher(
        url=args.url,
        api_key=api_key,
        generation_id=args.generation_id,
        project_id=args.project_id,
        interval=args.interval,
        retry_for=args.retry_for,
    )
    return watch(watcher, json_lines=args.json, out=out, err=err)


def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    from diffio_progress.functions.config import CLOUD_RUN_EMULATOR_HOST

    from .executions import StandInExecutions, StandInUnavailable
    from .simulator import KILLED, Failure, Pace, ensure_generation, new_generation_id, simulate

    db = firestore_client(args.project)
    generation_id = args.generation_id or new_generation_id()
    failure = None
    if args.fail_stage:
        failure = Failure(args.fail_stage)
        failure = Failure(
            args.fail_stage, args.error or failure.error, args.details or failure.details
        )
    standin = os.environ.get(CLOUD_RUN_EMULATOR_HOST)
    if args.kill_stage:
        if not standin:
            raise CliError(
                "--kill-stage needs the Cloud Run stand-in of `run`'s world: set "
                f"{CLOUD_RUN_EMULATOR_HOST} as `run` prints it."
            )
        failure = Failure(args.kill_stage, killed=True)
    executions = StandInExecutions(standin, db.project) if standin else None
    with firestore_errors(db.project):
        _, has_video = ensure_generation(
            db, args.project_id, generation_id, user_id=args.user_id, has_video=args.video
        )
        if failure is not None and failure.stage == "restoredVideo" and not has_video:
            raise CliError(f"Project {args.project_id} has no video, so no restoredVideo stage.")
        out.write(f"Simulating {args.project_id}/{generation_id}; watch it with:\n")
        out.write(f"  {PROG} watch {generation_id} --project-id {args.project_id}\n")
        out.flush()

        def report(stage: str, status: str) -> None:
            out.write(f"{stage}: {status}\n")
            out.flush()

        pace = Pace.scaled(args.step_seconds, max(args.steps, 2))
        try:
            status = simulate(
                db,
                args.project_id,
                generation_id,
                has_video=has_video,
                pace=pace,
                failure=failure,
                on_change=report,
                executions=executions,
            )
        except StandInUnavailable as error:
            raise CliError(str(error)) from None
    if status == KILLED:
        out.write(
            f"{args.kill_stage}'s worker is gone and its execution reports FAILED; "
            "the reaper marks the stage failed on its next run.\n"
        )
    out.write(f"{generation_id}: {status}\n")
    return 0


def _create_key(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .keys import create_key

    db = firestore_client(args.project)
    expires_in = timedelta(days=args.expires_in_days) if args.expires_in_days else None
    with firestore_errors(db.project):
        minted = create_key(
            db,
            user_id=args.user_id,
            now=datetime.now(UTC),
            live=args.live,
            write=args.write,
            expires_in=expires_in,
            label=args.label,
        )
    # Only the key goes to stdout, so `KEY=$(... create-key ...)` captures it.
    out.write(minted.key + "\n")
    err.write(
        f"keyId {minted.key_id} for user {args.user_id} in project {db.project}. "
        "The key is shown only this once; only its SHA-256 is stored.\n"
    )
    return 0


def _revoke_key(args: argparse.Namespace, out: TextIO) -> int:
    from .keys import KeyNotFound, revoke_key

    db = firestore_client(args.project)
    try:
        with firestore_errors(db.project):
            revoke_key(db, args.key_id)
    except KeyNotFound:
        raise CliError(f"No API key with keyId {args.key_id} in project {db.project}.") from None
    out.write(f"Revoked {args.key_id}.\n")
    return 0


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args, out)
        if args.command == "watch":
            return _watch(args, out, err)
        if args.command == "simulate":
            return _simulate(args, out)
        if args.command == "create-key":
            return _create_key(args, out, err)
        return _revoke_key(args, out)
    except CliError as error:
        err.write(f"error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        return 130
