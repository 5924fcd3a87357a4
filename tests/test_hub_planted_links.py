"""Links planted in the hub cache (at a snapshot folder, the ref index, the lock, the repo folder) are never
written through: the victim they point at is unchanged, and the link is replaced or one StorageError says so."""

import pytest

import zoo
from zoo.errors import StorageError
from zoo.hub import snapshots
from zoo.hub.specs import parse_spec


@pytest.fixture
def victim(tmp_path):
    """A folder outside the zoo home, with code a planted link would run and a file it would overwrite."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "hubconf.py").write_text("def version():\n    return 'victim'\n")
    (folder / "precious.txt").write_text("keep me")
    return folder


def snapshot_of(victim):
    return sorted(
        (p.relative_to(victim).as_posix(), p.read_bytes()) for p in victim.rglob("*") if p.is_file()
    )


def repo_folder(forge):
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    folder.mkdir(parents=True)
    return folder


def test_a_planted_snapshot_link_is_replaced_and_its_code_never_runs(forge, victim):
    commit = forge.commits["v1"]
    before = snapshot_of(victim)
    folder = repo_folder(forge)
    (folder / commit).symlink_to(victim, target_is_directory=True)
    (folder / "refs.json").write_text(f'{{"version": 1, "refs": {{"{commit}": "{commit}"}}}}')
    assert zoo.load(f"alice/nets:{commit}", "version", trust_repo=True) == "v1"
    target = folder / commit
    assert target.is_dir() and not target.is_symlink() and (target / "models").is_dir()
    assert snapshot_of(victim) == before


def test_a_planted_index_link_is_replaced_not_written_through(forge, victim):
    before = snapshot_of(victim)
    folder = repo_folder(forge)
    (folder / "refs.json").symlink_to(victim / "precious.txt")
    assert zoo.load("alice/nets:dev", "version", trust_repo=True) == "dev"
    index = folder / "refs.json"
    assert not index.is_symlink() and snapshots.read_index(folder) == {"dev": forge.commits["dev"]}
    assert snapshot_of(victim) == before


def test_a_planted_lock_link_does_not_touch_its_target(forge, victim):
    before = snapshot_of(victim)
    folder = repo_folder(forge)
    (folder / ".lock").symlink_to(victim / "precious.txt")
    assert zoo.load("alice/nets", "version", trust_repo=True) == "v2"
    assert snapshot_of(victim) == before


@pytest.mark.parametrize("level", ["repo", "owner"])
def test_a_linked_repo_or_owner_folder_is_one_clear_error(forge, victim, level):
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    planted = folder if level == "repo" else folder.parent
    planted.parent.mkdir(parents=True)
    planted.symlink_to(victim, target_is_directory=True)
    before = snapshot_of(victim)
    with pytest.raises(StorageError, match=f"^{planted} is a symbolic link; zoo never writes through a link"):
        zoo.load("alice/nets", "version", trust_repo=True)
    assert snapshot_of(victim) == before and sorted(p.name for p in victim.iterdir()) == [
        "hubconf.py",
        "precious.txt",
    ]
    assert forge.archive_requests() == []
