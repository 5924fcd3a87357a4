import pytest

import zoo
from zoo.errors import HubError
from zoo.hub import fetch
from zoo.store import download


def load_version(spec, **kw):
    return zoo.load(spec, "version", trust_repo=True, **kw)


def test_private_repo_needs_the_token(forge, monkeypatch):
    with pytest.raises(HubError, match="alice/private: http://.*: HTTP 404 .*set GITHUB_TOKEN"):
        load_version("alice/private")
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    with pytest.raises(HubError, match="check the token's access") as e:
        load_version("alice/private")
    assert "wrong" not in str(e.value)
    monkeypatch.setenv("GITHUB_TOKEN", "s3cret-token")
    assert load_version("alice/private") == "v2"
    assert forge.requests[-1].headers["Authorization"] == "Bearer s3cret-token"
    # nothing the zoo wrote keeps the token
    home = zoo.store.paths.home()
    assert not [p for p in home.rglob("*") if p.is_file() and b"s3cret" in p.read_bytes()]


def test_gitlab_token_goes_in_its_own_header(forge, monkeypatch):
    monkeypatch.setenv("GITLAB_TOKEN", "s3cret-token")
    monkeypatch.setenv("ZOO_GITHUB_URL", forge.other_url)  # so GITHUB_TOKEN's host is another one
    monkeypatch.setenv("GITHUB_TOKEN", "github-only")
    assert load_version("gitlab:group/private:dev") == "dev"
    (request,) = forge.requests
    assert request.headers["PRIVATE-TOKEN"] == "s3cret-token" and "Authorization" not in request.headers


def test_token_is_not_sent_to_a_redirect_on_another_host(forge, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "s3cret-token")
    monkeypatch.setenv("GITLAB_TOKEN", "s3cret-token")
    assert load_version("moved/nets:dev") == "dev"
    first, second = forge.requests
    assert (first.server, first.path) == ("main", "/moved/nets/archive/dev.zip")
    assert first.headers["Authorization"] == "Bearer s3cret-token"
    assert (second.server, second.path) == ("other", "/alice/nets/archive/dev.zip")
    assert not {"Authorization", "PRIVATE-TOKEN"} & set(second.headers)


def test_token_follows_a_redirect_on_its_own_host(forge, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "s3cret-token")
    assert load_version("hop/private:v1.0") == "v1"
    assert [r.server for r in forge.requests] == ["main", "main"]
    assert all(r.headers["Authorization"] == "Bearer s3cret-token" for r in forge.requests)


def test_server_errors_are_retried_but_not_404(forge):
    forge.fail_next[:] = [503, 502]
    assert load_version("alice/nets:dev") == "dev"
    assert len(forge.requests) == 3
    forge.reset()
    forge.fail_next[:] = [503] * (download.RETRIES + 1)
    with pytest.raises(HubError, match=r"alice/nets:v1.0: http://.*: HTTP 503 .*\(gave up after"):
        load_version("alice/nets:v1.0")
    assert len(forge.requests) == download.RETRIES + 1
    forge.reset()
    with pytest.raises(HubError, match="HTTP 404"):
        load_version("alice/nets:missing")
    assert len(forge.requests) == 1


def test_unreachable_host_is_one_clear_error(forge, monkeypatch):
    monkeypatch.setenv("ZOO_GITHUB_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(download, "RETRIES", 1)
    with pytest.raises(
        HubError, match=r"alice/nets: http://127\.0\.0\.1:9/alice/nets/archive/HEAD\.zip: conn"
    ):
        load_version("alice/nets")


def test_auth_headers_match_scheme_host_and_port(monkeypatch):
    monkeypatch.setenv("ZOO_GITHUB_URL", "https://ghe.example.invalid/")
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    assert fetch.auth_headers("https://ghe.example.invalid:443/o/r/archive/x.zip") == {
        "Authorization": "Bearer t"
    }
    for url in (
        "http://ghe.example.invalid/o/r/archive/x.zip",
        "https://ghe.example.invalid:8443/o/r",
        "https://codeload.ghe.example.invalid/o/r",
        "https://ghe.example.invalid.evil.invalid/o/r",
    ):
        assert fetch.auth_headers(url) == {}, url
