import io
import stat
import subprocess
import tarfile
import zipfile

import pytest

import zoo
from zoo.hub import snapshots
from zoo.hub.archives import UnsafeArchiveError, archive_commit, extract_archive
from zoo.hub.specs import parse_spec

HUBCONF = "def version():\n    return 'ok'\n"


def make_zip(path, members):
    """members: (name, text) for files, (name, None) for folders, (name, ('link', target)) for symlinks."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            if isinstance(data, tuple):
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, data[1])
            elif data is None:
                zf.writestr(zipfile.ZipInfo(name + "/"), "")
            else:
                zf.writestr(name, data)
    return path


def make_tar(path, members):
    """members: tarfile.TarInfo objects, with `text` set on regular files."""
    with tarfile.open(path, "w:gz") as tf:
        for info, text in members:
            data = text.encode() if text is not None else None
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tar_info(name, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def test_strips_the_top_folder_and_keeps_modes_and_inner_links(tmp_path):
    archive = make_zip(
        tmp_path / "a.zip",
        [
            ("repo-main", None),
            ("repo-main/hubconf.py", HUBCONF),
            ("repo-main/pkg/mod.py", "X = 1\n"),
            ("repo-main/alias.py", ("link", "pkg/mod.py")),
        ],
    )
    dest = tmp_path / "out"
    dest.mkdir()
    extract_archive(archive, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "alias.py",
        "hubconf.py",
        "pkg",
        "pkg/mod.py",
    ]
    assert (dest / "alias.py").is_symlink() and (dest / "alias.py").read_text() == "X = 1\n"


def test_several_top_entries_are_kept_as_they_are(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("hubconf.py", HUBCONF), ("pkg/mod.py", "")])
    dest = tmp_path / "out"
    dest.mkdir()
    extract_archive(archive, dest)
    assert (dest / "hubconf.py").is_file() and (dest / "pkg" / "mod.py").is_file()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("r/hubconf.py", HUBCONF), ("r/../../evil.py", "x")], r"outside the archive \('\.\.'\)"),
        ([("r/hubconf.py", HUBCONF), ("/tmp/evil.py", "x")], "absolute path"),
        ([("r/hubconf.py", HUBCONF), ("r/link", ("link", "/etc/passwd"))], "absolute path '/etc/passwd'"),
        ([("r/hubconf.py", HUBCONF), ("r/up", ("link", "../../outside"))], "links outside the archive"),
        (
            # each link looks inside on its own; through the first, the second leads out
            [("r/hubconf.py", HUBCONF), ("r/a/b/s", ("link", "../..")), ("r/t", ("link", "a/b/s/.."))],
            "'r/t' links outside the archive",
        ),
        ([("r/hubconf.py", HUBCONF), ("r/d", ("link", ".")), ("r/d/x.py", "x")], "link over another member"),
        ([("r/hubconf.py", HUBCONF), ("r\\..\\evil.py", "x")], "backslash"),
    ],
)
def test_unsafe_zip_members_are_refused(tmp_path, members, message):
    archive = make_zip(tmp_path / "a.zip", members)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_archive(archive, dest)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path.parent / "evil.py").exists()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (tar_info("r/h", tarfile.LNKTYPE, "r/../../etc/passwd"), r"\('\.\.'\)"),
        (tar_info("r/h", tarfile.LNKTYPE, "r/missing"), "not a file in the archive"),
        (tar_info("r/s", tarfile.SYMTYPE, "../../x"), "links outside"),
        (tar_info("r/dev", tarfile.CHRTYPE), "device or pipe"),
        (tar_info("r/fifo", tarfile.FIFOTYPE), "device or pipe"),
    ],
)
def test_unsafe_tar_members_are_refused(tmp_path, member, message):
    archive = make_tar(tmp_path / "a.tar.gz", [(tar_info("r/hubconf.py"), HUBCONF), (member, None)])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_archive(archive, dest)


def test_tar_hardlink_inside_is_copied(tmp_path):
    archive = make_tar(
        tmp_path / "a.tar.gz",
        [(tar_info("r/hubconf.py"), HUBCONF), (tar_info("r/copy.py", tarfile.LNKTYPE, "r/hubconf.py"), None)],
    )
    dest = tmp_path / "out"
    dest.mkdir()
    extract_archive(archive, dest)
    assert (dest / "copy.py").read_text() == HUBCONF and not (dest / "copy.py").is_symlink()


def test_size_cap_is_checked_before_writing(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("r/hubconf.py", HUBCONF), ("r/big.bin", "x" * 5000)])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="over the 4096 cap"):
        extract_archive(archive, dest, max_bytes=4096)
    assert list(dest.iterdir()) == []


def test_commit_id_of_git_archives(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    identity = ["-c", "user.name=T", "-c", "user.email=t@example.invalid"]

    def run(*args):
        return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)

    run("init", "-q")
    (repo / "hubconf.py").write_text(HUBCONF)
    run("add", "-A")
    run("commit", "-q", "-m", "one")
    commit = run("rev-parse", "HEAD").stdout.decode().strip()
    for fmt in ("zip", "tar.gz"):
        run("archive", f"--format={fmt}", "-o", str(tmp_path / f"a.{fmt}"), "HEAD")
        assert archive_commit(tmp_path / f"a.{fmt}") == commit
        run("archive", f"--format={fmt}", "-o", str(tmp_path / f"t.{fmt}"), "HEAD^{tree}")
        assert archive_commit(tmp_path / f"t.{fmt}") is None  # a bare tree has no commit


@pytest.mark.parametrize(
    "members",
    [
        [("r/hubconf.py", HUBCONF), ("r/../../evil.py", "x")],
        [("r/hubconf.py", HUBCONF), ("r/pkg/x.py", "x"), ("r/up", ("link", "../../../outside"))],
    ],
)
def test_bad_archive_url_leaves_nothing_behind(tmp_path, members):
    archive = make_zip(tmp_path / "evil.zip", members)
    spec = archive.as_uri()
    with pytest.raises(UnsafeArchiveError):
        zoo.load(spec, "version", trust_repo=True)
    folder = snapshots.repo_dir(parse_spec(spec))
    assert [p.name for p in folder.iterdir()] == [".lock"]
    assert not (tmp_path / "evil.py").exists()


def test_archive_without_hubconf_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("r/readme.md", "hi")])
    with pytest.raises(zoo.ZooError, match="no hubconf.py at its top level"):
        zoo.list(archive.as_uri(), trust_repo=True)


def test_file_url_tar_archive_loads(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", [(tar_info("r/hubconf.py"), HUBCONF)])
    assert zoo.load(archive.as_uri(), "version", trust_repo=True) == "ok"


def boxed(tmp_path):
    """An extraction folder alone in a box, so that anything made outside it shows up in the box."""
    box = tmp_path / "box"
    dest = box / "out"
    dest.mkdir(parents=True)
    (box / "outside").mkdir()
    return box, dest


def everything_in(box):
    return sorted(p.relative_to(box).as_posix() for p in box.rglob("*"))


@pytest.mark.parametrize(
    "links",
    [
        # a link to the parent, then a link made through it
        [("top/a", ".."), ("top/a/escaped", "hubconf.py")],
        # a link into a sibling folder, then a link whose folder would be made through it
        [("top/a", "../outside"), ("top/a/new/deeper", "../x")],
        # the same, the second link first in the archive
        [("top/a/escaped", "hubconf.py"), ("top/a", "..")],
    ],
)
def test_links_made_through_links_never_create_anything_outside(tmp_path, links):
    members = [(tar_info("top/hubconf.py"), HUBCONF)]
    members += [(tar_info(name, tarfile.SYMTYPE, target), None) for name, target in links]
    archive = make_tar(tmp_path / "a.tar.gz", members)
    box, dest = boxed(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="outside the archive|over another member|through a link"):
        extract_archive(archive, dest)
    outside = [p for p in everything_in(box) if p != "out" and not p.startswith("out/")]
    assert outside == ["outside"]


def test_a_link_chain_that_stays_inside_is_kept(tmp_path):
    archive = make_tar(
        tmp_path / "a.tar.gz",
        [
            (tar_info("top/hubconf.py"), HUBCONF),
            (tar_info("top/pkg/mod.py"), "X = 1\n"),
            (tar_info("top/alias", tarfile.SYMTYPE, "pkg"), None),
            (tar_info("top/alias2", tarfile.SYMTYPE, "alias/mod.py"), None),
        ],
    )
    box, dest = boxed(tmp_path)
    extract_archive(archive, dest)
    assert (dest / "alias2").read_text() == "X = 1\n"


def test_duplicate_zip_member_is_an_unsafe_archive(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("r/hubconf.py", HUBCONF)
        zf.writestr("r/hubconf.py", "raise SystemExit\n")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="'hubconf.py' appears twice"):
        extract_archive(archive, dest)


def test_truncated_archive_is_one_clear_error(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", [(tar_info("r/hubconf.py"), HUBCONF * 500)])
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="cannot be extracted"):
        extract_archive(archive, dest)


def test_duplicate_member_through_the_cli_is_one_line(tmp_path, capsys):
    from zoo.cli import main

    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("r/hubconf.py", HUBCONF)
        zf.writestr("r/hubconf.py", HUBCONF)
    assert main(["list", archive.as_uri(), "--trust"]) == 1
    assert capsys.readouterr().err == (
        f"zoo: error: {archive.as_uri()} cannot be extracted: 'hubconf.py' appears twice in it\n"
    )


def test_an_archive_url_that_is_no_archive_is_named_in_the_error(tmp_path):
    page = tmp_path / "page.zip"
    page.write_text("<html>not an archive</html>")
    with pytest.raises(zoo.ZooError, match=f"^{page.as_uri()} is neither a zip nor a tar archive$"):
        zoo.list(page.as_uri(), trust_repo=True)
