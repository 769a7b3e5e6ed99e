"""The refused-key budget of an address: whose address it is, how wide, when it is charged."""

from __future__ import annotations

from collections import Counter

from google.cloud import firestore

from diffio_progress.functions.config import Settings
from tests.clocks import Clock
from tests.counted_handler import BATCH, Counted, counted_handler
from tests.project import TEST_PROJECT
from tests.races import race
from tests.seed import Seeder, new_key

BALANCER = "35.191.0.1"  # the socket's peer when the function sits behind a load balancer
FRONT = "34.120.0.1"  # the balancer's address, as the entry it appends after the client's


def handler(clock: Clock, budget: float, **settings: float) -> Counted:
    return counted_handler(
        Settings(project=TEST_PROJECT, refused_keys_per_address_per_minute=budget, **settings),  # type: ignore[arg-type]
        monotonic=clock,
    )


def made_up_from(counted: Counted, forwarded_for: str, peer: str = "127.0.0.1") -> int:
    headers = {"X-Forwarded-For": forwarded_for}
    return counted.poll(new_key(), "gen-1", "proj-1", headers=headers, peer=peer).status


# -- whose address (item 4) --------------------------------------------------


def test_fewer_forwarded_entries_than_trusted_hops_charge_the_peer(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    """Behind a balancer (2 hops) a lone entry was not written by both proxies: the client
    may have written it, so it picks no budget; the socket's peer is charged instead."""
    counted = handler(clock, budget=1, trusted_proxy_hops=2)
    assert made_up_from(counted, "6.6.6.6", peer=BALANCER) == 401
    assert made_up_from(counted, "6.6.6.7", peer=BALANCER) == 429
    assert made_up_from(counted, "", peer=BALANCER) == 429
    # Through both: the client's address as the balancer saw it, then the balancer's own.
    assert made_up_from(counted, f"203.0.113.9, {FRONT}", peer=BALANCER) == 401
    assert made_up_from(counted, f"198.51.100.7, {FRONT}", peer=BALANCER) == 401
    assert made_up_from(counted, f"6.6.6.6, 203.0.113.9, {FRONT}", peer=BALANCER) == 429


# -- how wide (item 5) -------------------------------------------------------


def test_ipv6_addresses_of_one_64_share_a_budget(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    counted = handler(clock, budget=3)
    statuses = [made_up_from(counted, f"2001:db8:1:2::{n:x}") for n in range(1, 5)]
    assert statuses == [401, 401, 401, 429]
    # Any spelling of an address in that /64; another /64 has its own budget.
    assert made_up_from(counted, "2001:DB8:1:2:ffff:ffff:ffff:ffff") == 429
    assert made_up_from(counted, "2001:db8:1:3::1") == 401


def test_ipv4_addresses_keep_a_budget_each_however_written(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    counted = handler(clock, budget=1)
    assert made_up_from(counted, "203.0.113.9") == 401
    assert made_up_from(counted, "::ffff:203.0.113.9") == 429  # the same IPv4 address
    # Mapped addresses are IPv4 addresses, not one /64 shared by all of them.
    assert made_up_from(counted, "::ffff:198.51.100.7") == 401
    assert made_up_from(counted, "203.0.113.10") == 401


def test_entries_that_are_no_address_share_one_budget(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    counted = handler(clock, budget=1)
    assert made_up_from(counted, "unknown") == 401
    assert made_up_from(counted, "not-an-address") == 429
    assert made_up_from(counted, "203.0.113.9") == 401


# -- when it is charged (item 6) ---------------------------------------------


def test_made_up_keys_sent_at_once_cannot_overdraw_the_budget(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    seed.world()
    counted = handler(clock, budget=5)
    polls = 40

    def poll() -> int:
        response = counted.app.test_client().post(
            "/",
            json={"generationId": "gen-1", "apiProjectId": "proj-1"},
            headers={"X-Api-Key": new_key(), "X-Forwarded-For": "203.0.113.9"},
        )
        return response.status_code

    counted.counter.reset()
    statuses = Counter(race(*[poll] * polls))
    assert statuses == Counter({401: 5, 429: polls - 5})
    # Only the five admitted lookups read: one batch each (the key, the generation's documents).
    assert counted.counter.snapshot()[BATCH] == 5


def test_a_key_that_works_gets_its_charge_back(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    """New keys that work cost the address nothing, even many of them."""
    counted = handler(clock, budget=2)
    mine = {"X-Forwarded-For": "203.0.113.9"}
    for n in range(4):
        key = seed.world(f"proj-{n}", "gen-1", f"user-{n}")
        assert counted.poll(key, "gen-1", f"proj-{n}", headers=mine).status == 200
    assert [made_up_from(counted, "203.0.113.9") for _ in range(3)] == [401, 401, 429]


def test_a_working_key_refunds_only_its_own_charge(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    """Polls of a key known to work were never charged: they give the address nothing back."""
    key = seed.world()
    counted = handler(clock, budget=1)
    mine = {"X-Forwarded-For": "203.0.113.9"}
    assert counted.poll(key, "gen-1", "proj-1", headers=mine).status == 200
    assert made_up_from(counted, "203.0.113.9") == 401
    for _ in range(3):
        assert counted.poll(key, "gen-1", "proj-1", headers=mine).status == 200
    assert made_up_from(counted, "203.0.113.9") == 429


def test_a_working_key_on_a_missing_generation_gets_its_charge_back(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    """The budget is for keys that do not work; a 404 or 403 to a real key is not one."""
    counted = handler(clock, budget=1)
    mine = {"X-Forwarded-For": "203.0.113.9"}
    seed.world("proj-9", "gen-9", "user-9")
    for n in range(3):
        key = seed.api_key(f"user-{n}")
        assert counted.poll(key, "gen-404", headers=mine).status == 404
        assert counted.poll(seed.api_key(f"user-{n}"), "gen-9", headers=mine).status == 403
    assert [made_up_from(counted, "203.0.113.9") for _ in range(2)] == [401, 429]
