"""The API reference's "Successful response" example, exactly as the seed gives it."""

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
