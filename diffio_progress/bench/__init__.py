"""The benchmark: the function against a floor function, RPCs counted on the wire. Not deployed."""

import os

from diffio_progress.functions.config import WEBHOOK_SECRETS_KMS_KEY, WEBHOOK_SECRETS_LOCAL_KEY
from diffio_progress.functions.secret_box import new_local_key

# Signing secrets are stored sealed: as in `make run`, a benchmark makes its own local key, which
# every function and endpoint writer it starts (in process or served) inherits.
if not os.environ.get(WEBHOOK_SECRETS_KMS_KEY):
    os.environ.setdefault(WEBHOOK_SECRETS_LOCAL_KEY, new_local_key())
