"""The review routes over HTTP on real files (real model, real SQLite): resolve (dry run and reviewed choices), undo,
distinct and forget go through the CLI's workspace methods; and the guards that keep other sites from using them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.api.serving import serving
from tests.conftest import another_writer, tree

CHANGE = {"X-Lookalike": "1"}
ROUTES = {  # each state-changing route, with a body that changes nothing
    "/api/resolve": {"apply": False},
    "/api/undo": {"run": 999},
    "/api/distinct": {"paths": ["/nonexistent/a.png", "/nonexistent/b.png"]},
    "/api/decisions/forget": {"ids": [999]},
}


def _post(client, url: str, body: dict, **headers: str):
    return client.post(url, json=body, headers={**CHANGE, **headers})


def _group_names(client) -> list[set[str]]:
    groups = client.get("/api/duplicates").json()["groups"]
    return sorted(({it["name"] for it in g["items"]} for g in groups), key=sorted)


COFFEE = {"coffee.png", "coffee_copy.png", "coffee_small.jpg", "coffee_crop.png"}
ROCKET = {"rocket.png", "rocket.jpg"}


def test_a_dry_run_returns_the_plan_and_changes_nothing(library):
    settings, media = library
    before = tree(media)
    with serving(settings) as c:
        r = _post(c, "/api/resolve", {"apply": False})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["run"] is None and body["outside"] == [] and body["skipped"] == []
        assert {Path(a["path"]).name: a["action"] for a in body["actions"]} == {
            "coffee.png": "keep",
            "coffee_copy.png": "trash",
            "coffee_small.jpg": "trash",
            "coffee_crop.png": "keep",
            "rocket.png": "keep",
            "rocket.jpg": "trash",
        }
        crop = next(a for a in body["actions"] if a["path"].endswith("coffee_crop.png"))
        assert crop == {
            "path": str(media / "coffee_crop.png"),
            "action": "keep",
            "keeper": str(media / "coffee.png"),
            "reason": "cropped: not a whole copy",
            "group": crop["group"],
        }
        assert _group_names(c) == [COFFEE, ROCKET]
        # the page shows each file's date: its modification time as indexed
        crop_id = next(
            it["id"]
            for g in c.get("/api/duplicates").json()["groups"]
            for it in g["items"]
            if it["name"] == "coffee_crop.png"
        )
        modified = datetime.fromisoformat(c.get(f"/api/items/{crop_id}").json()["modified"])
        want = datetime.fromtimestamp((media / "coffee_crop.png").stat().st_mtime_ns / 1e9, UTC)
        assert modified.tzinfo is not None and abs(modified - want) < timedelta(microseconds=2)
    assert tree(media) == before
    assert not (settings.home / "trash").exists()


def test_applied_choices_move_exactly_the_chosen_file_and_undo_puts_it_back(library):
    settings, media = library
    before = tree(media)
    crop = str(media / "coffee_crop.png")
    with serving(settings) as c:
        coffee_id = next(
            it["id"]
            for g in c.get("/api/duplicates").json()["groups"]
            for it in g["items"]
            if it["name"] == "coffee.png"
        )
        assert "coffee_crop.png" in {h["name"] for h in c.get(f"/api/search/similar/{coffee_id}?k=6").json()["hits"]}

        r = _post(c, "/api/resolve", {"apply": True, "choices": {crop: "trash"}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["run"] == 1 and body["skipped"] == []
        assert [a["path"] for a in body["actions"] if a["action"] != "keep"] == [crop]
        reasons = {Path(a["path"]).name: a["reason"] for a in body["actions"]}
        assert reasons["coffee_crop.png"] == "chosen trash in the review"
        assert reasons["coffee_copy.png"] == "kept: not chosen in the review"
        # the file's bytes left its path for <home>/trash/<run>/<its absolute path>, and nothing else moved
        assert set(tree(media)) == set(before) - {"coffee_crop.png"}
        trashed = settings.home / "trash" / "1" / crop.lstrip("/")
        assert hashlib.sha256(trashed.read_bytes()).hexdigest() == before["coffee_crop.png"][0]
        # the service sees it at once: out of the duplicate groups and of search
        assert _group_names(c) == [COFFEE - {"coffee_crop.png"}, ROCKET]
        hits = c.get(f"/api/search/similar/{coffee_id}?k=6").json()["hits"]
        assert "coffee_crop.png" not in {h["name"] for h in hits}

        r = _post(c, "/api/undo", {"run": 1})
        assert r.status_code == 200, r.text
        assert r.json() == {"run": 1, "done": [crop], "skipped": []}
        assert tree(media) == before  # byte-identical, with its modification time
        assert _group_names(c) == [COFFEE, ROCKET]
        assert "coffee_crop.png" in {h["name"] for h in c.get(f"/api/search/similar/{coffee_id}?k=6").json()["hits"]}
        r = _post(c, "/api/undo", {"run": 1})
        assert (r.status_code, r.json()["detail"]) == (400, "run 1 has nothing to undo (1 undone)")


def test_distinct_keeps_a_pair_apart_until_it_is_forgotten(library):
    settings, media = library
    pair = [str(media / "coffee.png"), str(media / "coffee_small.jpg")]
    with serving(settings) as c:
        assert _group_names(c) == [COFFEE, ROCKET]
        r = _post(c, "/api/distinct", {"paths": pair})
        assert r.status_code == 200, r.text
        ids = r.json()["decisions"]
        assert r.json() == {"added": 1, "decisions": ids} and len(ids) == 1
        assert c.get("/api/decisions").json() == {"decisions": [{"id": ids[0], "a": pair[0], "b": pair[1]}]}
        assert _group_names(c) == [COFFEE - {"coffee_small.jpg"}, ROCKET]
        plan = _post(c, "/api/resolve", {}).json()["actions"]
        assert "coffee_small.jpg" not in {Path(a["path"]).name for a in plan}
        again = _post(c, "/api/distinct", {"paths": pair}).json()
        assert again == {"added": 0, "decisions": []}  # nothing new: undoing this must not forget the first

        r = _post(c, "/api/decisions/forget", {"ids": ids})
        assert (r.status_code, r.json()) == (200, {"forgotten": 1})
        assert c.get("/api/decisions").json() == {"decisions": []}
        assert _group_names(c) == [COFFEE, ROCKET]


def test_domain_errors_have_their_statuses(library):
    settings, media = library
    before = tree(media)
    with serving(settings) as c:
        r = _post(c, "/api/resolve", {"choices": {str(media / "coffee_copy.png"): "shred"}})
        assert r.status_code == 400 and "unknown choice 'shred'" in r.json()["detail"]
        assert _post(c, "/api/resolve", {"keep": "biggest"}).status_code == 400
        r = _post(c, "/api/undo", {})
        assert (r.status_code, r.json()["detail"]) == (400, "nothing to undo: no applied run has files in the trash")
        r = _post(c, "/api/distinct", {"paths": [str(media / "coffee.png"), str(media / "nope.png")]})
        assert r.status_code == 404 and "nope.png is not an indexed file" in r.json()["detail"]
        assert _post(c, "/api/distinct", {"paths": [str(media / "coffee.png")]}).status_code == 422
        with another_writer(settings.home):
            r = _post(c, "/api/resolve", {"apply": True})
            assert r.status_code == 409 and "another lookalike process is writing" in r.json()["detail"]
    assert tree(media) == before


def test_changes_come_only_as_json_with_the_header_from_this_origin(library):
    """A page elsewhere can make a browser POST a form or a no-cors fetch (text/plain) to the service, with the
    session cookie when it is on another port of this machine: it cannot add a header or a JSON type, and its
    Origin names it."""
    settings, media = library
    before = tree(media)
    apply_all = {"apply": True}
    with serving(settings) as c:
        for url, body in ROUTES.items():
            assert c.get(url).status_code == 405, url
            for origin in ("http://evil.example", "http://127.0.0.1:9999", "null", "http://localhost:8000"):
                r = _post(c, url, body, Origin=origin)
                assert r.status_code == 403, (url, origin)
                assert r.json() == {"detail": f"refused: a change asked by a page of another origin ({origin})"}
            r = c.post(url, json=body)  # no change header
            assert r.status_code == 403, url
            assert r.json() == {
                "detail": "refused: a change needs the X-Lookalike header (a page of another site cannot send it)"
            }
            form = c.post(url, data={"apply": "true"}, headers=CHANGE)
            assert form.status_code == 415, url
            assert form.json()["detail"].endswith("not application/x-www-form-urlencoded")
            plain = c.post(url, content=b'{"apply": true}', headers={**CHANGE, "Content-Type": "text/plain"})
            assert plain.status_code == 415, url
        assert c.post("/api/resolve", json=apply_all, headers={"Origin": "http://evil.example"}).status_code == 403
        assert tree(media) == before
        # this origin's own page (its Origin is the address the service was asked by), and clients without Origin
        ok = _post(c, "/api/resolve", {}, Origin="http://127.0.0.1:8000")
        assert ok.status_code == 200 and ok.json()["run"] is None
        assert _post(c, "/api/resolve", {}).status_code == 200
        charset = c.post(
            "/api/resolve", content=b"{}", headers={**CHANGE, "Content-Type": "application/json; charset=utf-8"}
        )
        assert charset.status_code == 200
    assert tree(media) == before


def test_changes_need_the_key_when_one_is_set(library):
    settings, media = library
    before = tree(media)
    with serving(settings, api_key="s3cret-key") as c:
        for url, body in ROUTES.items():
            r = _post(c, url, body)
            assert r.status_code == 401 and "X-API-Key" in r.json()["detail"], url
            assert _post(c, url, body, **{"X-API-Key": "wrong"}).status_code == 401
        r = c.post("/api/resolve", json={"apply": True}, headers={"X-API-Key": "s3cret-key"})
        assert r.status_code == 403  # the key alone is not enough: the change header too
        assert _post(c, "/api/resolve", {}, **{"X-API-Key": "s3cret-key"}).status_code == 200
        assert c.post("/api/session", json={"key": "s3cret-key"}).status_code == 204  # the page's session cookie
        assert _post(c, "/api/resolve", {}).status_code == 200
    assert tree(media) == before


def test_the_openapi_document_declares_the_change_header(indexed):
    settings, _ = indexed
    with serving(settings) as c:
        doc = c.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["ChangeHeader"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Lookalike")
    for url in ROUTES:
        assert {"ChangeHeader": []} in doc["paths"][url]["post"]["security"], url
    assert "ChangeHeader" not in str(doc["paths"]["/api/decisions"]["get"].get("security"))
