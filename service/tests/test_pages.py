"""What a person who opens the service's address in a browser sees: a page saying what
this is, the API description, the sign-in provider's page; never a JSON 404."""

from __future__ import annotations


def test_home_page_names_the_service_and_where_to_go(client) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "farcall service" in answer.text and 'href="/openapi.json"' in answer.text


def test_docs_lead_to_the_openapi_description(client) -> None:
    answer = client.get("/docs", follow_redirects=False)
    assert answer.status_code in (302, 307)
    assert answer.headers["location"] == "/openapi.json"
    assert client.get("/docs").json()["info"]["title"] == "farcall service"


def test_auth_base_says_how_to_sign_in(client) -> None:
    answer = client.get("/auth/")
    assert answer.status_code == 200
    assert "farcall login" in answer.text


def test_pages_are_not_in_the_api_description_and_other_paths_still_404(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/docs", "/auth/"} & set(paths)
    missing = client.get("/nosuch")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
