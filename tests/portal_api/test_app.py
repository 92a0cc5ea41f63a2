"""The API served on loopback: who may read what, inputs, payments, documents, rate limits."""

from __future__ import annotations

import datetime as dt

import httpx
import polars as pl
import pytest
from portal_world import ALICE, BOB, KEY, NOBODY, World

from core.invoices import SCHEMA, part_path
from portal_api import tokens
from portal_api.clients import add_client

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
ALICE_OCT_BILL = "B202610000001"
BOB_OCT_BILL = "B202610000002"

# Every customer-data endpoint, for the "never another customer's data" checks.
CUSTOMER_ENDPOINTS = [
    ("/v1/customers/{code}/consumption", OCTOBER),
    ("/v1/customers/{code}/consumption", {**OCTOBER, "granularity": "month"}),
    ("/v1/customers/{code}/consumption", {**OCTOBER, "to": "2026-10-03", "granularity": "interval"}),
    ("/v1/customers/{code}/bills", {}),
    ("/v1/customers/{code}/bills", {"period": "2026-10"}),
    ("/v1/customers/{code}/bills/{bill}", {}),
    ("/v1/customers/{code}/bills/{bill}/pdf", {}),
    ("/v1/customers/{code}/bills/{bill}/xml", {}),
]


def _path(template: str, code: str, bill: str) -> str:
    return template.format(code=code, bill=bill)


@pytest.mark.parametrize(("template", "params"), CUSTOMER_ENDPOINTS)
def test_a_customer_cannot_read_another_customers_data(shared_world: World, template: str,
                                                       params: dict[str, str]) -> None:
    alice = shared_world.customer_token(ALICE)
    reply = shared_world.get(_path(template, BOB, BOB_OCT_BILL), alice, **params)
    assert reply.status_code == 403
    body = reply.json()
    assert body["error"] == "forbidden" and body["hint"]
    assert BOB not in reply.text.replace(reply.url.path, "")  # nothing of Bob's leaks
    # ... nor by naming her own code with Bob's bill
    if "{bill}" in template:
        assert shared_world.get(_path(template, ALICE, BOB_OCT_BILL), alice, **params).status_code == 404


@pytest.mark.parametrize(("template", "params"), CUSTOMER_ENDPOINTS)
def test_every_endpoint_needs_a_valid_token(shared_world: World, template: str,
                                            params: dict[str, str]) -> None:
    path = _path(template, ALICE, ALICE_OCT_BILL)
    assert shared_world.get(path, None, **params).status_code == 401
    expired = tokens.issue(KEY.encode(), "customer", ALICE, ttl_s=-1)
    forged = tokens.issue(b"another key", "customer", ALICE, ttl_s=60)
    for token in (expired, forged, "garbage", "a.b"):
        reply = shared_world.get(path, token, **params)
        assert reply.status_code == 401, token
        assert reply.headers["www-authenticate"].startswith("Bearer")


def test_a_customer_reads_own_consumption_summed_over_meters(shared_world: World) -> None:
    alice = shared_world.customer_token(ALICE)
    reply = shared_world.get(f"/v1/customers/{ALICE}/consumption", alice, **OCTOBER)
    assert reply.status_code == 200
    body = reply.json()
    assert body["meters"] == ["M-A1", "M-A2"]
    assert [p["date"] for p in body["points"]] == [
        (dt.date(2026, 10, 1) + dt.timedelta(days=i)).isoformat() for i in range(31)]
    # M-A1 started 2026-09-25 at 5000 Wh rising 100 a day; M-A2 started 10-01 at 1000.
    first = body["points"][0]
    assert first["energy_wh"] == (5000 + 600) + 1000 and first["meters"] == 2
    assert sum(first["tou"].values()) == first["energy_wh"]
    assert body["total"]["energy_wh"] == sum(p["energy_wh"] for p in body["points"])


def test_month_granularity_and_register_only_days_have_no_tou_split(shared_world: World) -> None:
    client = shared_world.integrator_token()
    months = shared_world.get(f"/v1/customers/{ALICE}/consumption", client, granularity="month",
                       **{"from": "2026-09-01", "to": "2026-10-31"}).json()
    assert [p["period"] for p in months["points"]] == ["2026-09", "2026-10"]
    assert months["points"][0]["energy_wh"] == sum(5000 + 100 * i for i in range(6))
    bob = shared_world.get(f"/v1/customers/{BOB}/consumption", client, **OCTOBER).json()
    assert all(p["tou"] is None for p in bob["points"]) and bob["total"]["tou"] is None


@pytest.mark.parametrize(("params", "fragment"), [
    ({"from": "2026-10-31", "to": "2026-10-01"}, "before it starts"),
    ({"from": "2025-01-01", "to": "2026-10-01"}, "at most 366"),
    ({"from": "2026-13-01", "to": "2026-10-01"}, "from"),
    ({"from": "2026-10-01"}, "to"),
    ({**OCTOBER, "granularity": "hour"}, "granularity"),
])
def test_invalid_ranges_get_a_clear_body(shared_world: World, params: dict[str, str],
                                        fragment: str) -> None:
    alice = shared_world.customer_token(ALICE)
    reply = shared_world.get(f"/v1/customers/{ALICE}/consumption", alice, **params)
    assert reply.status_code == 422
    body = reply.json()
    assert body["error"] == "invalid_request" and fragment in body["message"] and body["hint"]


@pytest.mark.parametrize("code", ["PD0100000000", "XX01000000001", "PD01000000001X", "pd01000000001"])
def test_malformed_customer_codes_are_refused(shared_world: World, code: str) -> None:
    reply = shared_world.get(f"/v1/customers/{code}/bills", shared_world.integrator_token())
    assert reply.status_code == 422 and "code" in reply.json()["message"]


def test_unknown_customer_is_404(shared_world: World) -> None:
    reply = shared_world.get(f"/v1/customers/{NOBODY}/bills", shared_world.integrator_token())
    assert reply.status_code == 404 and NOBODY in reply.json()["message"]


def test_bills_show_the_latest_issued_version_only(shared_world: World) -> None:
    body = shared_world.get(f"/v1/customers/{ALICE}/bills", shared_world.customer_token(ALICE)).json()
    assert [(b["period"], b["version"], b["total_amount"]) for b in body["bills"]] == [
        ("2026-10", 2, 450_000), ("2026-09", 1, 500_000)]  # the draft of 2026-11 is not shown
    assert body["bills"][0]["lines"][0]["tier"] == 1 and body["bills"][0]["paid"] is False
    alice = shared_world.customer_token(ALICE)
    only = shared_world.get(f"/v1/customers/{ALICE}/bills", alice, period="2026-09").json()
    assert [b["period"] for b in only["bills"]] == ["2026-09"]


def test_documents_are_served_from_the_agreed_path_or_404(world: World) -> None:
    token = world.customer_token(ALICE)
    path = f"/v1/customers/{ALICE}/bills/{ALICE_OCT_BILL}"
    missing = world.get(f"{path}/pdf", token)
    assert missing.status_code == 404 and "has not been rendered" in missing.json()["message"]
    folder = world.settings.data_dir / "documents" / "2026-10"
    folder.mkdir(parents=True)
    (folder / f"{ALICE_OCT_BILL}-v2.pdf").write_bytes(b"%PDF-1.7 test")
    (folder / f"{ALICE_OCT_BILL}-v2.xml").write_text("<HDon/>")
    pdf = world.get(f"{path}/pdf", token)
    assert pdf.status_code == 200 and pdf.content == b"%PDF-1.7 test"
    assert pdf.headers["content-type"] == "application/pdf"
    assert world.get(f"{path}/xml", token).text == "<HDon/>"


def test_an_e_invoice_kept_in_the_archive_is_served_with_its_exact_bytes(world: World) -> None:
    token = world.customer_token(ALICE)
    path = f"/v1/customers/{ALICE}/bills/{ALICE_OCT_BILL}/xml"
    signed = "<HDon><DLHDon><NMua><Ten>Nguyễn Văn A &amp; con</Ten></NMua></DLHDon></HDon>".encode()
    part = part_path(world.settings.data_dir, "2026-10", ALICE_OCT_BILL)
    part.parent.mkdir(parents=True)
    rows = {"bill_id": [ALICE_OCT_BILL, ALICE_OCT_BILL], "version": [1, 2],
            "invoice_no": ["00000001", "00000002"], "xml": [b"<HDon>old version</HDon>", signed]}
    pl.DataFrame(rows, schema=SCHEMA).write_parquet(part)

    served = world.get(path, token)

    assert served.status_code == 200 and served.content == signed  # the version in force, byte for byte
    assert served.headers["content-type"] == "application/xml"
    assert f"{ALICE_OCT_BILL}-v2.xml" in served.headers["content-disposition"]
    pl.DataFrame({k: v[:1] for k, v in rows.items()}, schema=SCHEMA).write_parquet(part)
    assert world.get(path, token).status_code == 404  # only an older version archived


def _pay(world: World, token: str, **overrides: object) -> httpx.Response:
    notice = {"notice_id": "N-1", "customer_code": ALICE, "bill_id": ALICE_OCT_BILL, "amount": 450_000,
              "paid_at": "2026-11-02T08:00:00+07:00", **overrides}
    return world.http.post("/v1/payments", json=notice, headers={"Authorization": f"Bearer {token}"})


def test_payment_notice_is_idempotent(world: World) -> None:
    client = world.integrator_token()
    first, second = _pay(world, client), _pay(world, client)
    assert first.status_code == second.status_code == 200
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert _pay(world, client, notice_id="N-2").status_code == 409  # a second payment of a paid bill
    bills = world.get(f"/v1/customers/{ALICE}/bills", client).json()["bills"]
    assert [b["paid"] for b in bills] == [True, False]


def test_payment_needs_an_integrator_and_a_valid_notice(world: World) -> None:
    assert _pay(world, world.customer_token(ALICE)).status_code == 403
    client = world.integrator_token()
    assert _pay(world, client, amount=1).status_code == 422  # not the bill's total
    assert _pay(world, client, amount=-5).status_code == 422
    assert _pay(world, client, bill_id=BOB_OCT_BILL).status_code == 404  # Bob's bill under Alice
    assert _pay(world, client, surprise=1).status_code == 422


def test_token_endpoint_checks_client_credentials(world: World) -> None:
    url = "/oauth/token"
    good = {"grant_type": "client_credentials", "client_id": world.client.client_id,
            "client_secret": world.client.client_secret}
    reply = world.http.post(url, data=good)
    assert reply.status_code == 200 and reply.json()["token_type"] == "Bearer"
    basic = world.http.post(url, data={"grant_type": "client_credentials"},
                       auth=(world.client.client_id, world.client.client_secret))
    assert basic.status_code == 200
    wrong = world.http.post(url, data={**good, "client_secret": "nope"})
    assert wrong.status_code == 401 and world.client.client_secret not in wrong.text
    grant = world.http.post(url, data={**good, "grant_type": "password"})
    assert grant.status_code == 400 and "grant_type" in grant.json()["message"]
    # A customer token is no integrator token: it cannot notify payments.
    assert _pay(world, world.customer_token(ALICE)).status_code == 403


def test_requests_are_rate_limited_per_client(world: World) -> None:
    slow = add_client(world.state, "slow-partner", rate_per_s=1)
    token = world.http.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": slow.client_id,
        "client_secret": slow.client_secret}).json()["access_token"]
    # Rate 1/s, burst 2: a run of quick requests meets a 429 (the bucket arithmetic itself is
    # tested with a fake clock in test_clients).
    limited = None
    for _ in range(50):
        reply = world.get(f"/v1/customers/{ALICE}/bills", token)
        if reply.status_code == 429:
            limited = reply
            break
        assert reply.status_code == 200
    assert limited is not None
    assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    # Another client is not slowed by it.
    assert world.get(f"/v1/customers/{ALICE}/bills", world.integrator_token()).status_code == 200


def test_me_names_the_customer(shared_world: World) -> None:
    assert shared_world.get("/v1/me", shared_world.customer_token(BOB)).json()["customer_code"] == BOB
    assert shared_world.get("/v1/me", shared_world.integrator_token()).status_code == 403
