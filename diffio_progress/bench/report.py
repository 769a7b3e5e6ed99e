"""The benchmark's table: each figure next to the floor's, with the ratio and the target."""

from __future__ import annotations

from dataclasses import dataclass

from .load import Samples, Throughput
from .rpc_count import BATCH_GET, RUN_QUERY, reads, rpcs

# Targets of issue 5: ratio limits against the floor.
TARGET_WITH_P50 = 1.1
TARGET_WITHOUT_P50 = 1.2
TARGET_THROUGHPUT = 0.9


@dataclass
class Report:
    command: str
    setup: str
    latency: dict[str, Samples]
    throughput: dict[int, dict[str, Throughput]]
    counts: dict[str, dict[str, int]]
    key_cache_ttl: float
    reads: list[str]
    abuse: list[str]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor else "n/a"


def _verdict(ok: bool, target: str) -> str:
    return f"{target}: {'met' if ok else 'NOT met'}"


def _latency_rows(report: Report) -> list[str]:
    floor = report.latency["floor"]
    rows = [
        "| poll | n | p50 | p99 | p50 / floor | p99 / floor | target |",
        "|---|---|---|---|---|---|---|",
    ]
    described = (
        ("with", "function, with apiProjectId", TARGET_WITH_P50),
        (
            "with_cached",
            f"function + {report.key_cache_ttl:g} s key cache, with apiProjectId",
            None,
        ),
        ("without", "function, without apiProjectId (repeated polls)", TARGET_WITHOUT_P50),
        ("without_first", "function, without apiProjectId (first poll: 2 round trips)", None),
        ("floor", "floor: one get_all of the same documents", None),
        ("floor_no_key", "floor without the key document (what a key cache could save)", None),
    )
    for name, label, target in described:
        s = report.latency.get(name)
        if s is None:
            continue
        p50_ratio = s.p50 / floor.p50
        verdict = _verdict(p50_ratio <= target, f"p50 <= {target}x") if target else ""
        if s.errors:
            verdict += f" ({s.errors} errors)"
        rows.append(
            f"| {label} | {len(s.latencies)} | {_ms(s.p50)} | {_ms(s.percentile(99))} "
            f"| {_ratio(s.p50, floor.p50)} | {_ratio(s.percentile(99), floor.percentile(99))} "
            f"| {verdict} |"
        )
    return rows


def _throughput_rows(report: Report) -> list[str]:
    rows = [
        "| clients | poll | requests/s | errors | / floor "
        "| server CPU per poll | / floor | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = {
        "with": "function, with apiProjectId",
        "without": "function, without apiProjectId",
        "floor": "floor",
    }
    for clients, runs in report.throughput.items():
        floor = runs["floor"].per_second
        for name, label in labels.items():
            run = runs[name]
            ok = run.errors == 0 and (
                name == "floor" or run.per_second >= TARGET_THROUGHPUT * floor
            )
            verdict = _verdict(ok, f">= {TARGET_THROUGHPUT}x, 0 errors")
            rows.append(
                f"| {clients} | {label} | {run.per_second:.0f} | {run.errors} "
                f"| {_ratio(run.per_second, floor)} | {_ms(run.cpu_per_request)} "
                f"| {_ratio(run.cpu_per_request, runs['floor'].cpu_per_request)} | {verdict} |"
            )
    return rows


def _rpc_text(counts: dict[str, int]) -> str:
    parts = []
    for method, short in ((RUN_QUERY, "RunQuery"), (BATCH_GET, "BatchGet")):
        n = counts.get(f"calls.{method}", 0)
        if n:
            parts.append(f"{n} {short}")
    return " + ".join(parts) or "0"


def _count_rows(report: Report) -> list[str]:
    rows = [
        "| poll | audio RPCs | audio reads | video RPCs | video reads | reads / floor (a, v) |",
        "|---|---|---|---|---|---|",
    ]
    described = (
        ("with.first", "function, with apiProjectId, first poll"),
        ("with.later", "function, with apiProjectId, later polls"),
        ("without.first", "function, without apiProjectId, first poll"),
        ("without.later", "function, without apiProjectId, later polls"),
        ("with_cached.later", f"function + {report.key_cache_ttl:g} s key cache, later polls"),
        ("floor", "floor"),
        ("floor_no_key", "floor without the key document"),
    )
    c = report.counts
    for suffix, label in described:
        audio, video = c[f"audio.{suffix}"], c[f"video.{suffix}"]
        ratios = (
            f"{_ratio(reads(audio), reads(c['audio.floor']))}, "
            f"{_ratio(reads(video), reads(c['video.floor']))}"
        )
        rows.append(
            f"| {label} | {rpcs(audio)} ({_rpc_text(audio)}) | {reads(audio)} "
            f"| {rpcs(video)} ({_rpc_text(video)}) | {reads(video)} | {ratios} |"
        )
    return rows


def render(report: Report) -> str:
    """Markdown: paste it into docs/benchmark.md as it is."""
    lines = [
        f"Command: `{report.command}`",
        "",
        f"Setup: {report.setup}.",
        "",
        "Latency (one client, keep-alive, the kinds interleaved request by request):",
        "",
        *_latency_rows(report),
        "",
        "Throughput (closed loop: each client sends its next poll when the last is answered;"
        " the kinds alternate in short runs):",
        "",
        *_throughput_rows(report),
        "",
        "Firestore per poll (counted on the gRPC channel; reads = documents looked up,"
        " found or missing, plus query results):",
        "",
        *_count_rows(report),
        "",
        "Billed reads per poll by scenario (fresh documents each; steady = the third poll;"
        " the key cache off unless named):",
        "",
        *report.reads,
        "",
        "Coalescing and one key flooding (the rate limit), counted on the wire:",
        "",
        *report.abuse,
    ]
    return "\n".join(lines)
