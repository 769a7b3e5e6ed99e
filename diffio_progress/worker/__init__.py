"""What a Cloud Run job imports to report its stage: Firestore and core; no Flask, rich or httpx."""
