"""Size the event function, the reaper and the relay: one instance on one CPU, measured.

    python -m diffio_progress.bench.event_capacity        (about 2 minutes; loopback only)

events: the deployed main.py serves ``on_generation_written`` (direct sink, a
local receiver) pinned to CPU 0; emulator, receiver and load run on CPU 1. For
each THREADS value as many closed-loop clients as threads POST CloudEvents,
each one a status change that records, claims, delivers and marks an event of
a fresh generation (the costly path; a progress-only write costs no read).
reaper: ``reap_stalled_jobs`` served the same way, one call (as Cloud Scheduler
makes) over REAPER_BATCH stale stages that the Cloud Run stand-in reports dead.
relay: ``relay_pending_deliveries`` served the same way, one call over
RELAY_BATCH due deliveries to a receiver that answers at once.
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.functions.webhooks.endpoint_store import new_signing_secret
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools import emulator
from diffio_progress.tools.cloud_events import written_event
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from diffio_progress.tools.event_world import create_endpoint

from .event_world import bench_key
from .harness import PROJECT, ROOT, served
from .load import HttpClient, Samples, Throughput, process_tree_cpu, process_tree_rss
from .relay import seed_events as seed_due_events

THREADS = (1, 4, 8, 16, 32)
Request = tuple[dict[str, str], bytes]


class QuickReceiver(ThreadingHTTPServer):
    """Answers every webhook 204 at once."""

    daemon_threads = True

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"


def seed_events(db: firestore.Client, key_id: str, count: int, prefix: str) -> list[Request]:
    """``count`` generations, each a creation and a job start: two status-change CloudEvents."""
    project = f"{prefix}-project"
    db.document(*paths.project(project)).set({"userId": "bench-user", "hasVideo": False})
    requests: list[Request] = []
    for start in range(0, count, 250):
        batch = db.batch()
        for i in range(start, min(start + 250, count)):
            generation = f"{prefix}-{i}"
            doc = {"generationId": generation, "apiProjectId": project, "apiKeyId": key_id}
            job = {"status": "running", "progress": 5}
            gen_path, job_path = (
                paths.generation(project, generation),
                paths.job(project, generation, "preProcessing"),
            )
            batch.set(db.document(*gen_path), doc)
            batch.set(db.document(*job_path), job)
            requests.append(written_event(PROJECT, "/".join(gen_path), None, doc))
            requests.append(written_event(PROJECT, "/".join(job_path), None, job))
        batch.commit()
    return requests


def closed_loop(url: str, requests: list[Request], clients: int, seconds: float) -> Throughput:
    """``clients`` threads POST the next unused CloudEvent as soon as the last one answers."""
    stop, lock = threading.Event(), threading.Lock()
    queue = iter(requests)
    results = [Samples() for _ in range(clients)]

    def run(index: int) -> None:
        client = HttpClient(timeout=60)
        while not stop.is_set():
            with lock:
                request = next(queue, None)
            if request is None:
                return
            started = time.perf_counter()
            try:
                status, _ = client._request(url, "POST", "/", request[1], request[0])
            except OSError:
                results[index].errors += 1
                continue
            if status < 300:
                results[index].latencies.append(time.perf_counter() - started)
            else:
                results[index].errors += 1
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    merged = Samples(list(itertools.chain(*(r.latencies for r in results))))
    merged.errors = sum(r.errors for r in results)
    elapsed = time.perf_counter() - began
    return Throughput(len(merged.latencies), merged.errors, elapsed, samples=merged)


def events(env: dict[str, str], db: firestore.Client, seconds: float, per_row: int) -> None:
    key_id = bench_key(db)[1]
    receiver = QuickReceiver()
    create_endpoint(db, key_id, receiver.url, new_signing_secret())
    env = {**env, "WEBHOOK_SINK": "direct", "WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WORKERS": "1"}
    print(
        "| THREADS (= concurrency) | calls/s | p50 | p99 | errors | function CPU busy "
        "| CPU per call | calls/s at 100% CPU | memory (RSS) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for threads in THREADS:
        requests = seed_events(db, key_id, per_row, f"cap{threads}")
        with served(
            "on_generation_written", ROOT / "main.py", {**env, "THREADS": str(threads)}, cpus=(0,)
        ) as (url, pid):
            closed_loop(url, requests[:40], min(threads, 4), 60)  # warm up
            cpu_before = process_tree_cpu(pid)
            run = closed_loop(url, requests[40:], threads, seconds)
            cpu = process_tree_cpu(pid) - cpu_before
            rss = process_tree_rss(pid)
        per_call = cpu / run.requests if run.requests else float("nan")
        print(
            f"| {threads} | {run.per_second:.0f} | {run.samples.p50 * 1000:.0f} ms "
            f"| {run.samples.percentile(99) * 1000:.0f} ms | {run.errors} "
            f"| {cpu / run.seconds:.0%} | {per_call * 1000:.1f} ms | {1 / per_call:.0f} "
            f"| {rss / 2**20:.0f} MiB |",
            flush=True,
        )
    receiver.shutdown()


def one_call(target: str, env: dict[str, str]) -> tuple[int, bytes, float, float, int]:
    """Serve ``target`` on CPU 0 and POST to it once, as Cloud Scheduler does: status, body,
    seconds, CPU seconds and RSS bytes."""
    with served(target, ROOT / "main.py", env, cpus=(0,)) as (url, pid):
        client = HttpClient(timeout=600)
        cpu_before = process_tree_cpu(pid)
        started = time.perf_counter()
        status, body = client._request(url, "POST", "/", b"{}", {})
        elapsed = time.perf_counter() - started
        return status, body, elapsed, process_tree_cpu(pid) - cpu_before, process_tree_rss(pid)


def reaper(env: dict[str, str], db: firestore.Client, batch: int) -> None:
    stale = datetime.now(UTC) - timedelta(minutes=10)
    with CloudRunStandIn() as standin:
        for start in range(0, batch, 250):
            writes = db.batch()
            for i in range(start, min(start + 250, batch)):
                name = replies.execution_name(f"exec-reap-{i}")
                standin.script(name, replies.reply_for(name, "FAILED"))
                document = {"status": "running", "progress": 50, "jobState": "RUNNING"}
                document.update(executionName=name, updatedAt=stale - timedelta(milliseconds=i))
                writes.set(db.document(*paths.job("reap", f"gen-{i}", "inference")), document)
            writes.commit()
        reaper_env = {
            **env,
            "CLOUD_RUN_EMULATOR_HOST": standin.host_port,
            "REAPER_BATCH": str(batch),
            "WORKERS": "1",
            "THREADS": "1",
        }
        status, body, elapsed, cpu, rss = one_call("reap_stalled_jobs", reaper_env)
    print(
        f"reaper, REAPER_BATCH={batch}, all dead: HTTP {status} {body.decode()[:80]} in "
        f"{elapsed:.1f} s, {cpu:.1f} s CPU, {rss / 2**20:.0f} MiB RSS"
    )


def relay(env: dict[str, str], db: firestore.Client, batch: int) -> None:
    """One relay call over ``batch`` due deliveries to a receiver answering at once."""
    receiver = QuickReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    key_id = bench_key(db)[1]
    create_endpoint(db, key_id, receiver.url, new_signing_secret())
    webhooks = firestore.Client(project=PROJECT, database="webhooks")
    seed_due_events(webhooks, "relay", batch, key_id, due=True)
    relay_env = {
        **env,
        "WEBHOOK_SINK": "direct",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "RELAY_BATCH": str(batch),
        "WORKERS": "1",
        "THREADS": "2",
    }
    status, body, elapsed, cpu, rss = one_call("relay_pending_deliveries", relay_env)
    receiver.shutdown()
    print(
        f"relay, RELAY_BATCH={batch}, all due: HTTP {status} {body.decode()[:80]} in "
        f"{elapsed:.1f} s, {cpu:.1f} s CPU, {rss / 2**20:.0f} MiB RSS"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.event_capacity")
    parser.add_argument("--seconds", type=float, default=8.0, help="per THREADS value")
    parser.add_argument("--per-row", type=int, default=1500, help="generations per THREADS row")
    parser.add_argument("--reaper-batch", type=int, default=500)
    parser.add_argument("--relay-batch", type=int, default=500)
    parser.add_argument("--only", choices=("events", "reaper", "relay"), help="one part only")
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two CPUs: one for the function, one for the emulator and load")
    os.sched_setaffinity(0, {1})
    with ExitStack() as stack:
        emu = stack.enter_context(emulator.FirestoreEmulator())
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        env = {**os.environ, "GOOGLE_CLOUD_PROJECT": PROJECT}
        db = firestore.Client(project=PROJECT)
        if args.only in (None, "events"):
            events(env, db, args.seconds, args.per_row)
        if args.only in (None, "reaper"):
            reaper(env, db, args.reaper_batch)
        if args.only in (None, "relay"):
            relay(env, db, args.relay_batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
