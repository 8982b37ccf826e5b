def test_healthz_answers_without_a_token(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_reports_the_database_backend(client, backend):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["database"] == backend
