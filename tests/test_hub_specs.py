import warnings
from pathlib import Path

import pytest

from zoo.errors import HubError, InvalidSpecError
from zoo.hub.specs import HEAD, looks_like_spec, parse_spec


@pytest.fixture(autouse=True)
def forges(monkeypatch):
    monkeypatch.delenv("ZOO_GITHUB_URL", raising=False)
    monkeypatch.setenv("ZOO_GITLAB_URL", "https://gitlab.example.invalid/")


@pytest.mark.parametrize(
    ("text", "kind", "path", "ref", "url"),
    [
        (
            "pytorch/vision",
            "github",
            "pytorch/vision",
            HEAD,
            "https://github.com/pytorch/vision/archive/HEAD.zip",
        ),
        (
            "pytorch/vision:v0.10.0",
            "github",
            "pytorch/vision",
            "v0.10.0",
            "https://github.com/pytorch/vision/archive/v0.10.0.zip",
        ),
        (
            "o/r.js:feature/x",
            "github",
            "o/r.js",
            "feature/x",
            "https://github.com/o/r.js/archive/feature/x.zip",
        ),
        ("o/r:abc1234", "github", "o/r", "abc1234", "https://github.com/o/r/archive/abc1234.zip"),
        (
            "gitlab:grp/sub/proj:v1",
            "gitlab",
            "grp/sub/proj",
            "v1",
            "https://gitlab.example.invalid/api/v4/projects/grp%2Fsub%2Fproj/repository/archive.zip?sha=v1",
        ),
        (
            "gitlab:grp/proj",
            "gitlab",
            "grp/proj",
            HEAD,
            "https://gitlab.example.invalid/api/v4/projects/grp%2Fproj/repository/archive.zip",
        ),
        ("https://h.invalid/x/a.tar.gz", "url", "", HEAD, "https://h.invalid/x/a.tar.gz"),
        ("file:///tmp/a.zip", "url", "", HEAD, "file:///tmp/a.zip"),
    ],
)
def test_remote_specs(text, kind, path, ref, url):
    spec = parse_spec(text)
    assert (spec.kind, spec.path, spec.ref, spec.archive_url) == (kind, path, ref, url)
    assert spec.is_remote and spec.display == text


def test_hosts_and_trust_keys(monkeypatch):
    assert parse_spec("o/r:dev").host == "github.com" and parse_spec("o/r:dev").trust_key == "o/r"
    # the fixture points ZOO_GITLAB_URL at another server than gitlab.com: its keys name it
    assert parse_spec("gitlab:g/s/r:v1").trust_key == "gitlab:https://gitlab.example.invalid/g/s/r"
    monkeypatch.delenv("ZOO_GITLAB_URL")
    assert parse_spec("gitlab:g/s/r:v1").trust_key == "gitlab:g/s/r"
    monkeypatch.setenv("ZOO_GITHUB_URL", "http://127.0.0.1:8080/ghe/")
    spec = parse_spec("o/r")
    assert spec.host == "127.0.0.1_8080_ghe"
    assert spec.archive_url == "http://127.0.0.1:8080/ghe/o/r/archive/HEAD.zip"
    assert spec.trust_key == "http://127.0.0.1:8080/ghe/o/r"
    assert parse_spec("file:///tmp/a.zip").host == "file"


@pytest.mark.parametrize(
    ("github_url", "default"),
    [
        ("https://github.com/", True),
        ("https://GitHub.com:443", True),
        ("http://github.com", False),
        ("https://github.com.evil.invalid", False),
        ("https://github.com/mirror", False),
        ("https://user:pw@ghe.example.invalid/", False),
    ],
)
def test_trust_keys_name_any_server_but_github(monkeypatch, github_url, default):
    monkeypatch.setenv("ZOO_GITHUB_URL", github_url)
    spec = parse_spec("pytorch/vision:v1")
    assert spec.on_default_host is default
    assert (spec.trust_key == "pytorch/vision") is default
    assert "pw" not in spec.trust_key


def test_archive_url_query_is_not_displayed_or_a_trust_key():
    spec = parse_spec("https://h.invalid/a/archive.zip?private_token=SECRET&x=1")
    assert spec.display == spec.trust_key == "https://h.invalid/a/archive.zip"
    assert "SECRET" in spec.archive_url  # still fetched with it


def test_local_paths(tmp_path, monkeypatch):
    assert parse_spec(tmp_path).kind == "local"
    assert parse_spec(str(tmp_path)).local == tmp_path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "repo").mkdir(parents=True)
    with pytest.warns(
        UserWarning, match="'owner/repo' is an existing folder.*source='github'.*'./owner/repo'"
    ):
        assert parse_spec("owner/repo").kind == "local"  # an existing directory wins, as in torch.hub's local
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said the way it is meant: no warning
        assert parse_spec("owner/repo", source="github").kind == "github"
        assert parse_spec("owner/repo", source="local").kind == "local"
        assert parse_spec("./owner/repo").kind == "local"
        assert parse_spec("owner").kind == "local"  # not owner/repo: nothing to confuse it with
        assert not looks_like_spec("owner/repo")  # no hubconf.py; and the load that follows warns, not this
    assert parse_spec("/does/not/exist").kind == "local"  # a path, so the error will say "not a directory"
    assert not parse_spec("./x").is_remote


def test_source_forces_a_reading():
    assert parse_spec("grp/sub/proj", source="gitlab").path == "grp/sub/proj"
    assert parse_spec("o/r", source="local").local == Path("o/r")
    assert parse_spec("https://h.invalid/a.zip", source="url").kind == "url"
    with pytest.raises(InvalidSpecError, match="unknown source 'svn'") as e:
        parse_spec("o/r", source="svn")
    assert isinstance(e.value, ValueError)  # as torch.hub's unknown source
    with pytest.raises(InvalidSpecError, match="unknown source 3"):
        parse_spec("o/r", source=3)
    with pytest.raises(HubError, match="expected owner/repo"):
        parse_spec("g/s/r", source="github")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("resnet50", "not owner/repo"),
        ("o/", "empty name"),
        ("/r", None),  # a path: local
        ("o//r", "empty name"),
        ("o/r:", "empty ref"),
        ("o/r:a:b", "more than one ':'"),
        ("o/..", "'..' is not a valid name"),
        ("o/r:../x", "not a valid branch"),
        ("o/r:a b", "spaces"),
        (" o/r", "spaces"),
        ("o/r/x", "expected owner/repo"),
        ("gitlab:solo", "expected group/\\[sub/\\]repo"),
        ("ftp://h.invalid/a.zip", "URL scheme 'ftp'"),
        ("https://user:pw@h.invalid/a.zip", "credentials in the URL"),
        ("https://h.invalid/page.html", "must name a .zip or .tar.gz"),
        ("http:///a.zip", "without a host"),
    ],
)
def test_malformed_specs_list_the_accepted_forms(text, why):
    if why is None:
        assert parse_spec(text).kind == "local"
        return
    with pytest.raises(HubError, match=why) as e:
        parse_spec(text)
    assert "accepted forms: a directory holding hubconf.py; owner/repo; owner/repo:ref" in str(e.value)
    # a password in the spec is not repeated (the URL is shown without it)
    assert str(e.value).startswith(f"malformed hub spec {text.replace('user:pw@', '')!r}")
    assert "pw@" not in str(e.value)


def test_looks_like_spec(tmp_path, monkeypatch):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "hubconf.py").write_text("")
    (tmp_path / "resnet18").mkdir()
    monkeypatch.chdir(tmp_path)
    for text in ("repo", str(tmp_path), "./resnet18", "/no/such/dir", "o/r", "gitlab:g/r", "file:///a.zip"):
        assert looks_like_spec(text), text
    for text in ("resnet*", "mlp", "resnet18", "a b", ""):
        assert not looks_like_spec(text), text


@pytest.mark.parametrize(
    ("source", "kind"), [("GitHub", "github"), ("LOCAL", "local"), ("GitLab", "gitlab"), ("URL", "url")]
)
def test_source_is_case_insensitive_as_in_torch_hub(source, kind):
    text = "https://h.invalid/a.zip" if kind == "url" else "grp/proj"
    assert parse_spec(text, source=source).kind == kind


def test_malformed_specs_are_value_errors_as_in_torch_hub():
    with pytest.raises(ValueError, match="malformed hub spec") as e:
        parse_spec("o/r:a:b")
    assert isinstance(e.value, InvalidSpecError | HubError)


# --- hardening (issue 12): server variables and URLs that urlsplit cannot read ---


def _bad_server_urls():
    from conftest import PLANTED_SECRET

    return [
        "http://[bad",
        f"http://user:{PLANTED_SECRET}@[bad",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:port",
        "http://127.0.0.1:0",
        "ftp://127.0.0.1",
        "127.0.0.1:8080",
        "http://",
    ]


@pytest.mark.parametrize("value", _bad_server_urls())
@pytest.mark.parametrize(
    ("var", "spec"), [("ZOO_GITHUB_URL", "alice/nets"), ("ZOO_GITLAB_URL", "gitlab:g/nets")]
)
def test_a_server_variable_that_is_no_url_is_one_error_naming_it(monkeypatch, capsys, var, spec, value):
    import zoo
    from zoo.cli import main

    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidSpecError, match=f"^{var}=.* set it to https://HOST"):
        parse_spec(spec)
    with pytest.raises(InvalidSpecError, match=f"^{var}="):
        zoo.load(spec, "version", trust_repo=True)
    for argv in (["load", spec, "version", "--trust"], ["trust", spec], ["list", spec]):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"zoo: error: {var}=") and err.count("\n") == 1


@pytest.mark.parametrize(
    "url",
    ["http://[bad/x.zip", "http://[::1/x.zip", "http://127.0.0.1:99999/x.zip", "http://127.0.0.1:0/x.zip"],
)
def test_an_archive_url_that_urlsplit_cannot_read_is_a_malformed_spec(capsys, url):
    from conftest import PLANTED_SECRET

    from zoo.cli import main

    secret = f"{url}?token={PLANTED_SECRET}"
    with pytest.raises(InvalidSpecError, match="^malformed hub spec"):
        parse_spec(secret)
    assert not looks_like_spec(secret)
    assert main(["load", secret, "version", "--trust"]) == 1
    assert capsys.readouterr().err.startswith("zoo: error: malformed hub spec")


def test_a_server_with_a_port_and_prefix_still_parses(monkeypatch):
    monkeypatch.setenv("ZOO_GITHUB_URL", "http://[::1]:8080/ghe/")
    spec = parse_spec("alice/nets")
    assert spec.archive_url == "http://[::1]:8080/ghe/alice/nets/archive/HEAD.zip"
    assert spec.host == "[__1]_8080_ghe"
