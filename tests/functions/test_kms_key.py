"""The KMS path with Google's real ``google-cloud-kms`` client (REST) against a local stand-in."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import kms_v1

from diffio_progress.core.errors import SecretUnavailable
from diffio_progress.functions.kms_key import KmsKey
from diffio_progress.functions.secret_box import SecretBox
from tests.functions.kms_standin import KmsStandIn

KEY = "projects/p/locations/us-central1/keyRings/webhook-secrets/cryptoKeys/webhook-secrets"
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


@pytest.fixture
def standin() -> Iterator[KmsStandIn]:
    started = KmsStandIn()
    yield started
    started.stop()


def box(standin: KmsStandIn) -> SecretBox:
    client = kms_v1.KeyManagementServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": standin.url},
    )
    return SecretBox(KmsKey(KEY, client))


def test_kms_wraps_each_data_key_bound_to_its_endpoint_and_opens_it_once(
    standin: KmsStandIn,
) -> None:
    sealing = box(standin)
    sealed = sealing.seal("ep_1", SECRET)
    assert sealed.startswith("enc1:kms:") and "k" * 8 not in sealed
    assert sealing.open("ep_1", sealed) == SECRET
    assert sealing.open("ep_1", sealed) == SECRET  # the data key is kept: no second call
    paths = [path for path, _ in standin.calls]
    assert paths == [f"/v1/{KEY}:encrypt", f"/v1/{KEY}:decrypt"]
    bound = {base64.b64decode(body["additionalAuthenticatedData"]) for _, body in standin.calls}
    assert bound == {b"ep_1"}
    # Only the 32-byte data key ever crossed to KMS, never the secret.
    assert len(base64.b64decode(standin.calls[0][1]["plaintext"])) == 32


def test_a_copy_on_another_endpoint_is_refused_by_kms_itself(standin: KmsStandIn) -> None:
    sealed = box(standin).seal("ep_1", SECRET)
    with pytest.raises(SecretUnavailable, match="Cloud KMS decrypt failed"):
        box(standin).open("ep_2", sealed)
    assert standin.calls[-1][0].endswith(":decrypt")
