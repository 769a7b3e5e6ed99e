"""`python -m diffio_progress <command>`: run, watch, simulate, keys, fail-stage, webhooks."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from .cli_parser import PROG, build_parser
from .firestore_connection import CliError, firestore_client, firestore_errors


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
        relay_period=args.relay_seconds,
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
    from .simulator import (
        KILLED,
        SILENT,
        Failure,
        Pace,
        ensure_generation,
        new_generation_id,
        simulate,
    )

    db = firestore_client(args.project)
    generation_id = args.generation_id or new_generation_id()
    failure = None
    if args.fail_stage:
        failure = Failure(args.fail_stage)
        failure = Failure(
            args.fail_stage, args.error or failure.error, args.details or failure.details
        )
    standin = os.environ.get(CLOUD_RUN_EMULATOR_HOST)
    # Only the execution tells of these two: they need the stand-in that holds it.
    unreported = (
        "--kill-stage" if args.kill_stage else "--exit-silently" if args.exit_silently else None
    )
    if unreported and not standin:
        raise CliError(
            f"{unreported} needs the Cloud Run stand-in of `run`'s world: set "
            f"{CLOUD_RUN_EMULATOR_HOST} as `run` prints it."
        )
    if args.kill_stage:
        failure = Failure(args.kill_stage, killed=True)
    if args.exit_silently:
        failure = Failure(args.exit_silently, silent=True)
    executions = StandInExecutions(standin, db.project) if standin else None
    with firestore_errors(db.project):
        _, has_video = ensure_generation(
            db,
            args.project_id,
            generation_id,
            user_id=args.user_id,
            has_video=args.video,
            api_key_id=args.api_key_id,
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
    if status == SILENT:
        out.write(
            f"{args.exit_silently}'s worker exited without its result and its execution "
            "reports SUCCEEDED; the reaper marks the stage failed on its next run.\n"
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


def _fail_stage(args: argparse.Namespace, out: TextIO) -> int:
    from diffio_progress.worker.stage_writer import StageWriter

    db = firestore_client(args.project)
    where = f"{args.project_id}/{args.generation_id} {args.stage}"
    with firestore_errors(db.project):
        writer = StageWriter(db, args.project_id, args.generation_id, args.stage)
        if writer.read() is None:
            raise CliError(f"No stage {where} in project {db.project}.")
        wrote = writer.fail(args.error, args.details)
    out.write(f"{where}: {'failed' if wrote else 'unchanged: it had already finished'}\n")
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
        if args.command == "fail-stage":
            return _fail_stage(args, out)
        if args.command == "webhooks":
            from .webhooks_cli import run

            return run(args, out, err)
        return _revoke_key(args, out)
    except CliError as error:
        err.write(f"error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        return 130
