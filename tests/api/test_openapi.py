"""What /openapi.json promises (SPEC §12), read as a client generator would."""

from __future__ import annotations

from tests.support import Api

BULK = "/pages/auth/api/clinicaldata/studies/{studyOID}/sites/{siteOID}/participants/bulk"


def test_bearer_scheme_error_bodies_and_the_upload_body(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A token from POST /user-service/api/oauth/token",
    }
    assert "HTTPValidationError" not in str(doc)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if path.startswith("/pages/auth/api/"):
                assert operation["security"] == [{"HTTPBearer": []}], (method, path)
                assert "401" in operation["responses"], (method, path)
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    expected = "Problems" if path.startswith("/rest/ng/") else "ErrorBody"
                    assert schema == {"$ref": f"#/components/schemas/{expected}"}, (method, path, status)
    upload = doc["paths"][BULK]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert {"200", "400", "401", "403", "404", "413", "422"} <= set(upload["responses"])
    token = doc["paths"]["/user-service/api/oauth/token"]["post"]["requestBody"]["content"]
    assert set(token) == {"application/json", "application/x-www-form-urlencoded"}
    assert "409" in doc["paths"]["/pages/auth/api/admin/studies"]["post"]["responses"]
    assert set(doc["components"]["schemas"]["ErrorBody"]["required"]) == {"message", "params", "detail"}


def test_enums_for_statuses_outcomes_roles_and_job_types(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    job = schemas["JobOut"]["properties"]
    assert job["status"]["enum"] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"]
    assert job["type"]["enum"] == ["BULK_ADD_PARTICIPANTS", "REVERT_BULK_ADD_PARTICIPANTS", "EXTRACT_PARTICIPANTS"]
    assert {"rowsPerSecond", "etaSeconds"} <= set(job)
    assert schemas["LogEntryOut"]["properties"]["outcome"]["enum"][:4] == ["created", "updated", "unchanged", "failed"]
    assert schemas["Role"]["enum"] == [
        "data_manager",
        "investigator",
        "clinical_research_coordinator",
        "monitor",
        "viewer",
    ]
    assert schemas["StudyOut"]["properties"]["status"]["enum"] == ["available", "locked"]
    assert schemas["ParticipantOut"]["properties"]["status"]["enum"] == ["available", "removed"]


def test_405_names_every_method_of_the_path(api: Api) -> None:
    answer = api.client.request("OPTIONS", "/pages/auth/api/admin/studies", headers=api.admin)
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
    assert answer.json()["message"] == "errorCode.methodNotAllowed"
    audit = api.client.put("/pages/auth/api/clinicaldata/studies/S/participants/X/audit", headers=api.admin, json={})
    assert (audit.status_code, audit.headers["allow"]) == (405, "GET")


def test_docs_are_served_from_roster_itself(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200 and "/swagger/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    bundle = api.client.get("/swagger/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert api.client.get("/swagger/swagger-ui.css").status_code == 200
    assert api.client.get("/redoc").status_code == 404


def test_busy_too_large_and_throttled_answers_are_documented(api: Api) -> None:
    """503 serverBusy can come from any gated route (admission, lock timeouts); 413 from any JSON body; 429
    from the token endpoint; a weak password's minimum length is stated."""
    doc = api.client.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert ("503" in operation["responses"]) is (path != "/healthz"), (method, path)
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                assert "413" in operation["responses"], (method, path)
    assert "429" in doc["paths"]["/user-service/api/oauth/token"]["post"]["responses"]
    created = doc["components"]["schemas"]["UserCreate"]["properties"]["password"]
    assert created["minLength"] == 12
