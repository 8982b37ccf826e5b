"""SPEC §1: the role matrix, through `GET P/me` and through `roster.auth.permissions` on real rows.

Study S has sites X and Y; every case asks about site X. A role at Y is a role in S that does not
cover X (noSufficientPrivileges); no role in S at all is noRoleSetUp, even with a role in study T.
"""

from __future__ import annotations

import pytest

from roster import codes
from roster.auth import service as users
from roster.auth.permissions import Action, require_site_action, study_access
from roster.errors import Forbidden
from roster.studies import service as studies
from tests.support import P

S, X, Y = "S_MATRIX(TEST)", "S_MATRIX_X(TEST)", "S_MATRIX_Y(TEST)"
T, Z = "S_OTHER(TEST)", "S_OTHER_Z(TEST)"
OK, NRS, NSP = "ok", codes.NO_ROLE_SET_UP, codes.NO_SUFFICIENT_PRIVILEGES

# placement: where the single role is granted. READ / READ_PII / WRITE: the answer at site X.
MATRIX = """
role                           placement   READ  READ_PII  WRITE
data_manager                   study       ok    ok        ok
data_manager                   site_x      ok    ok        ok
data_manager                   site_y      NSP   NSP       NSP
investigator                   study       ok    ok        ok
investigator                   site_x      ok    ok        ok
investigator                   site_y      NSP   NSP       NSP
clinical_research_coordinator  study       ok    ok        ok
clinical_research_coordinator  site_x      ok    ok        ok
clinical_research_coordinator  site_y      NSP   NSP       NSP
monitor                        study       ok    NSP       NSP
monitor                        site_x      ok    NSP       NSP
monitor                        site_y      NSP   NSP       NSP
viewer                         study       ok    NSP       NSP
viewer                         site_x      ok    NSP       NSP
viewer                         site_y      NSP   NSP       NSP
viewer                         other_study NRS   NRS       NRS
-                              none        NRS   NRS       NRS
"""
ANSWERS = {"ok": OK, "NRS": NRS, "NSP": NSP}
ROWS = [line.split() for line in MATRIX.strip().splitlines()[1:]]
WRITERS = {"data_manager", "investigator", "clinical_research_coordinator"}


@pytest.fixture
def world(api):
    api.setup_study(S, sites=(X, Y))
    api.setup_study(T, sites=(Z,))


def grant(api, username: str, role: str, placement: str) -> dict[str, str]:
    headers = api.user(username)
    if placement != "none":
        study, site = {"study": (S, None), "site_x": (S, X), "site_y": (S, Y), "other_study": (T, None)}[placement]
        api.grant(username, role, study, site)
    return headers


def answer(db, username: str, action: Action, site_oid: str = X) -> str:
    with db.read_sessions() as session:
        user = users.get_user(session, username)
        study = studies.get_study(session, S)
        site = studies.get_site(session, study, site_oid)
        try:
            require_site_action(session, user, study, site, action)
        except Forbidden as exc:
            assert exc.status == 403
            return exc.code
        return OK


@pytest.mark.parametrize("role,placement,read,read_pii,write", ROWS, ids=[f"{r[0]}@{r[1]}" for r in ROWS])
def test_role_matrix(client, api, db, world, role, placement, read, read_pii, write):
    headers = grant(api, "u", role, placement)

    # 1. The permission module's answer at site X, for each action.
    got = {a: answer(db, "u", a) for a in (Action.READ, Action.READ_PII, Action.WRITE)}
    assert got == {Action.READ: ANSWERS[read], Action.READ_PII: ANSWERS[read_pii], Action.WRITE: ANSWERS[write]}

    # 2. Study-wide lists: which sites, and whether the user may ask at all.
    with db.read_sessions() as session:
        study = studies.get_study(session, S)
        x, y = (studies.get_site(session, study, oid).id for oid in (X, Y))
        access = study_access(session, users.get_user(session, "u"), study)
        expected_sites = {"study": None, "site_x": frozenset({x}), "site_y": frozenset({y})}.get(placement, frozenset())
        assert access.site_ids(Action.READ) == expected_sites
        assert access.site_ids(Action.WRITE) == (expected_sites if role in WRITERS else frozenset())
        assert access.site_ids(Action.READ_PII) == access.site_ids(Action.WRITE)
        for action in Action:
            expected = (
                NRS if placement in ("none", "other_study") else OK if action is Action.READ or role in WRITERS else NSP
            )
            try:
                access.require_study(action)
                outcome = OK
            except Forbidden as exc:
                outcome = exc.code
            assert outcome == expected, action

    # 3. GET P/me tells the client the same.
    me = api.ok(client.get(f"{P}/me", headers=headers))
    if placement == "none":
        assert me["roles"] == [] and me["studies"] == []
        return
    study_oid = T if placement == "other_study" else S
    site_oid = {"site_x": X, "site_y": Y}.get(placement)
    assert [{k: r[k] for k in ("studyOid", "siteOid", "role")} for r in me["roles"]] == [
        {"studyOid": study_oid, "siteOid": site_oid, "role": role}
    ]
    [study_out] = me["studies"]
    assert study_out["oid"] == study_oid
    assert study_out["studyLevelRole"] == (role if site_oid is None else None)
    if placement == "other_study":
        return
    assert [s["oid"] for s in study_out["sites"]] == ([X, Y] if placement == "study" else [site_oid])
    for site in study_out["sites"]:
        assert site["canWrite"] is (role in WRITERS)
        assert site["canReadPii"] is (role in WRITERS)


def test_a_study_level_read_role_plus_a_site_write_role(api, db, client, world):
    """Roles add up: viewer across the study, CRC at Y only."""
    headers = grant(api, "u", "viewer", "study")
    api.grant("u", "clinical_research_coordinator", S, Y)
    assert answer(db, "u", Action.READ) == OK
    assert answer(db, "u", Action.READ_PII) == NSP
    assert answer(db, "u", Action.WRITE) == NSP
    assert answer(db, "u", Action.WRITE, Y) == OK
    assert answer(db, "u", Action.READ_PII, Y) == OK
    with db.read_sessions() as session:
        study = studies.get_study(session, S)
        access = study_access(session, users.get_user(session, "u"), study)
        assert access.site_ids(Action.READ) is None
        assert access.site_ids(Action.WRITE) == frozenset({studies.get_site(session, study, Y).id})
    sites = {s["oid"]: s for s in api.ok(client.get(f"{P}/me", headers=headers))["studies"][0]["sites"]}
    assert (sites[X]["canWrite"], sites[Y]["canWrite"]) == (False, True)
    assert (sites[X]["canReadPii"], sites[Y]["canReadPii"]) == (False, True)


def test_site_roles_at_both_sites_list_both_but_not_others(api, db, world):
    grant(api, "u", "monitor", "site_x")
    api.grant("u", "investigator", S, Y)
    assert answer(db, "u", Action.READ_PII) == NSP  # the investigator role is at Y, not X
    assert answer(db, "u", Action.WRITE, Y) == OK
    with db.read_sessions() as session:
        study = studies.get_study(session, S)
        access = study_access(session, users.get_user(session, "u"), study)
        ids = {oid: studies.get_site(session, study, oid).id for oid in (X, Y)}
        assert access.site_ids(Action.READ) == frozenset(ids.values())
        assert access.site_ids(Action.WRITE) == frozenset({ids[Y]})


def test_being_admin_gives_no_participant_access(api, db, client, world):
    headers = api.user("boss", admin=True)
    assert answer(db, "boss", Action.READ) == NRS
    me = api.ok(client.get(f"{P}/me", headers=headers))
    assert me["admin"] is True and me["roles"] == [] and me["studies"] == []


def test_removing_the_role_removes_the_access(api, db, world):
    grant(api, "u", "data_manager", "site_x")
    role_id = api.ok(api.client.get(f"{P}/admin/users/u/roles", headers=api.admin))[0]["id"]
    assert answer(db, "u", Action.WRITE) == OK
    api.ok(api.client.delete(f"{P}/admin/users/u/roles/{role_id}", headers=api.admin), 204)
    assert answer(db, "u", Action.WRITE) == NRS


def test_me_describes_the_caller(client, api, world):
    headers = api.user("carol", display_name="Carol C.")
    api.grant("carol", "investigator", S)
    api.grant("carol", "viewer", T, Z)
    me = api.ok(client.get(f"{P}/me", headers=headers))
    assert me["username"] == "carol" and me["displayName"] == "Carol C." and me["admin"] is False
    assert [(r["studyOid"], r["siteOid"], r["role"]) for r in me["roles"]] == [
        (S, None, "investigator"),
        (T, Z, "viewer"),
    ]
    assert all(isinstance(r["id"], int) for r in me["roles"])
    by_oid = {s["oid"]: s for s in me["studies"]}
    assert set(by_oid) == {S, T}
    assert by_oid[S]["studyLevelRole"] == "investigator" and by_oid[T]["studyLevelRole"] is None
    assert by_oid[S]["name"] == f"Study {S}" and by_oid[S]["status"] == "available"
    assert {"participateActive", "participantIdMethod"} <= set(by_oid[S])
    assert [(s["oid"], s["canWrite"], s["canReadPii"]) for s in by_oid[T]["sites"]] == [(Z, False, False)]
