"""The API reference's "Successful response" example, the stages rules 5 and 6 report, rule 9."""

from typing import Any

RESPONSE: dict[str, Any] = {
    "generationId": "gen-123",
    "apiProjectId": "proj-123",
    "status": "processing",
    "hasVideo": True,
    "preProcessing": {
        "jobId": "job-pre",
        "jobState": "SUCCEEDED",
        "status": "complete",
        "progress": 100,
        "statusMessage": None,
        "error": None,
        "errorDetails": None,
    },
    "inference": {
        "jobId": "job-cloud-run-gpu",
        "jobState": "RUNNING",
        "status": "running",
        "progress": 45,
        "statusMessage": "Processing audio",
        "error": None,
        "errorDetails": None,
    },
    "restoredVideo": {
        "jobId": "job-restored",
        "jobState": "PENDING",
        "status": "pending",
        "progress": 0,
        "statusMessage": "Queued",
        "error": None,
        "errorDetails": None,
    },
}

# Rule 5: a stage without a job document. Rule 6: preProcessing when only the MP3 flag is set.
PENDING_STAGE: dict[str, Any] = {
    "jobId": None,
    "jobState": None,
    "status": "pending",
    "progress": 0,
    "statusMessage": None,
    "error": None,
    "errorDetails": None,
}
COMPLETE_STAGE: dict[str, Any] = {**PENDING_STAGE, "status": "complete", "progress": 100}


def current_stage(stage: str, index: int, count: int, progress: float = 0) -> dict[str, Any]:
    """Rule 9's ``stage`` and ``stageProgress``, as a pending, processing or failed body has."""
    return {
        "stage": stage,
        "stageProgress": {"stage": stage, "index": index, "count": count, "progress": progress},
    }


# What a poll answers for the example's documents: the reference's example plus rule 9.
RESPONSE_WITH_STAGE: dict[str, Any] = {**RESPONSE, **current_stage("inference", 2, 3, 45)}
