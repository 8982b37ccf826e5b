"""The list's `q` (roster.participants.search): ID prefix and exact OID for everybody; name prefixes and the
exact email, uid, empi and MRN only at sites where the caller may read personal data."""

from __future__ import annotations

from urllib.parse import quote

from tests.participants.conftest import SITE_A, SITE_B, STUDY_PATH, World


def _found(world: World, q: str, user: str = "dm", **params) -> list[str]:
    r = world.client.get(f"{STUDY_PATH}/participants", headers=world.h(user), params={"q": q, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [item["participantId"] for item in body["items"]]
    if body["page"] == 1 and len(ids) < body["pageSize"]:
        assert body["total"] == len(ids), (q, user)  # the count agrees with the rows
    return ids


def test_an_id_is_found_by_its_start_in_any_case_not_by_its_middle(world: World):
    for pid in ("AB-1", "AB-10", "XAB-2", "Ärzt-1", "STRASSE-3"):
        world.created(pid)
    assert _found(world, "ab-1") == ["AB-1", "AB-10"]
    assert _found(world, "AB-10") == ["AB-10"]
    assert _found(world, "b-1") == []
    assert _found(world, "äRZT") == ["Ärzt-1"]
    assert _found(world, "straße") == ["STRASSE-3"]  # IDs compare case-folded, as their uniqueness does
    # OIDs: exact, any case; their start finds nothing (an OID is derived from the ID, which has a prefix search)
    assert _found(world, "ss_ab10") == ["AB-10"]
    assert _found(world, "SS_AB") == []


def test_like_wildcards_in_a_term_are_plain_characters(world: World):
    for pid, last in (("A_1", "O_Neil"), ("AB1", "ORNeil"), ("A%1", "O%Hara"), ("A\\1", "Ob")):
        world.created(pid, lastName=last)
    assert _found(world, "a_") == ["A_1"]
    assert _found(world, "a%") == ["A%1"]
    assert _found(world, "a\\") == ["A\\1"]
    assert _found(world, "o_") == ["A_1"]
    assert _found(world, "o%") == ["A%1"]
    assert _found(world, "_") == _found(world, "%") == []


def test_names_by_their_start_email_uid_empi_and_mrn_exactly(world: World):
    world.created("P-1", firstName="Mary Ann", lastName="Smith", emailAddress="Mary.Smith@Example.org")
    world.created("P-2", firstName="Élodie", lastName="Smithers")
    world.created("P-3", firstName="Zed", lastName="Ömer")
    r = world.patch("P-3", {"uid": "Uid-5", "empi": "E-6", "pmis": [{"mrn": "Mrn-7", "siteName": f"Site {SITE_A}"}]})
    assert r.status_code == 200, r.text
    assert _found(world, "smith") == ["P-1", "P-2"]
    assert _found(world, "SMITHE") == ["P-2"]
    assert _found(world, "mary a") == ["P-1"]
    assert _found(world, "mary.smith@example.ORG") == ["P-1"]
    assert _found(world, "mary.smith@") == _found(world, "ann") == _found(world, "ith") == []
    assert _found(world, "uid-5") == _found(world, "e-6") == _found(world, "MRN-7") == ["P-3"]
    assert _found(world, "uid-") == _found(world, "mrn") == []
    # Case folds A-Z only (SQL lower() on both backends): other letters match in the case they were stored in.
    assert _found(world, "ÉLOD") == ["P-2"]
    assert _found(world, "élod") == []
    assert _found(world, "Öm") == ["P-3"] and _found(world, "öm") == []


def test_personal_fields_are_searched_only_at_sites_where_the_caller_may_read_them(world: World):
    world.created("P-1", SITE_A, lastName="Lovelace", emailAddress="ada@example.org")
    world.created("Q-1", SITE_B, lastName="Lovell", emailAddress="lovell@example.org")
    assert _found(world, "love") == ["P-1", "Q-1"]
    assert _found(world, "love", "crc_a") == ["P-1"]
    assert _found(world, "love", "inv_b") == ["Q-1"]
    assert _found(world, "love", "monitor_a_crc_b") == ["Q-1"]  # a monitor at A, a coordinator at B
    assert _found(world, "ada@example.org", "monitor_a_crc_b") == []
    for user in ("monitor", "viewer_a"):
        assert _found(world, "love", user) == _found(world, "ada@example.org", user) == []
        assert _found(world, "p-", user) == ["P-1"]
    # The site's own list: the same rules.
    r = world.client.get(f"{STUDY_PATH}/sites/{quote(SITE_A)}/participants", headers=world.h("viewer_a"), params={"q": "love"})
    assert (r.status_code, r.json()["items"], r.json()["total"]) == (200, [], 0)


def test_a_search_is_counted_and_paged_like_the_whole_list(world: World):
    for i in range(5):
        world.created(f"PG-{i}", lastName="Page")
    world.created("OTHER-1", lastName="Other")
    world.post("PG-4", "remove")
    r = world.client.get(f"{STUDY_PATH}/participants", headers=world.h("dm"), params={"q": "pag", "page": 2, "pageSize": 2})
    body = r.json()
    assert ([i["participantId"] for i in body["items"]], body["total"]) == (["PG-2", "PG-3"], 5)
    assert _found(world, "pg-", status="available") == ["PG-0", "PG-1", "PG-2", "PG-3"]
    assert _found(world, "pg-", siteOID=SITE_B) == []
