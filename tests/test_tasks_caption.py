"""zoo.caption and `zoo caption`: the book's preprocessing, decoding options, errors, and the --html page."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo
from PIL import Image
from test_models_neuraltalk2_files import book_files

import zoo
from zoo.cli import main
from zoo.errors import ImageError, InvalidArgumentError
from zoo.models.neuraltalk2 import FCDecoder
from zoo.tasks.captioning import Captioner
from zoo.weights.presets import NEURALTALK2_MEAN, NEURALTALK2_STD


@pytest.fixture
def files(tmp_path):
    """The book's three files for a small captioner (vocabulary "a", "horse", "UNK")."""
    (tmp_path / "book").mkdir()
    _, made = book_files(tmp_path / "book")
    return {k: str(v) for k, v in made.items()}


def book_input(image: Image.Image) -> torch.Tensor:
    """The book's preprocessing, written out: RGB uint8 at full size, /255, ImageNet mean and std."""
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32).copy()).permute(2, 0, 1) / 255
    mean, std = torch.tensor(NEURALTALK2_MEAN)[:, None, None], torch.tensor(NEURALTALK2_STD)[:, None, None]
    return (x - mean) / std


def test_images_go_in_at_full_resolution_normalised_as_the_book_does(files):
    captioner = Captioner(**files)
    image = photo(150, 122)
    x = captioner.prepare(image)
    assert x.shape == (3, 122, 150)  # no resize, no crop
    torch.testing.assert_close(x, book_input(image))


def test_the_exif_orientation_of_a_jpeg_is_applied(files, tmp_path):
    upright = photo(60, 40)
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    x = Captioner(**files).prepare(path)
    assert x.shape == (3, 40, 60)


def test_a_grayscale_image_is_stacked_to_three_equal_channels(files, tmp_path):
    gray = photo(50, 30).convert("L")
    gray.save(tmp_path / "gray.png")
    x = Captioner(**files).prepare(tmp_path / "gray.png")
    assert x.shape == (3, 30, 50)
    raw = x * torch.tensor(NEURALTALK2_STD)[:, None, None] + torch.tensor(NEURALTALK2_MEAN)[:, None, None]
    torch.testing.assert_close(raw[0], raw[1]) and torch.testing.assert_close(raw[1], raw[2])


def test_caption_gives_the_models_own_decoding_for_paths_and_pil_images(files, tmp_path):
    model = zoo.get_model("neuraltalk2", **files)
    images = [photo(64, 48, seed=s) for s in range(3)]
    for i, im in enumerate(images):
        im.save(tmp_path / f"{i}.png")
    with torch.no_grad():
        expected = [model.sentence(model.decode(model.features(book_input(im)[None]))[0]) for im in images]
    assert zoo.caption(images, **files) == expected
    assert zoo.caption([tmp_path / f"{i}.png" for i in range(3)], **files) == expected
    assert zoo.caption(images[0], **files) == expected[:1]
    assert all(set(c.split()) <= {"a", "horse", "UNK"} for c in expected)


def test_captions_do_not_depend_on_what_else_is_in_the_call(files):
    a, b = photo(40, 40, seed=1), photo(40, 40, seed=2)
    alone = zoo.caption([a], **files, beam_size=3)
    assert zoo.caption([b, a, b], **files, beam_size=3)[1] == alone[0]


def test_greedy_and_rule_best_reach_the_decoder(files, monkeypatch):
    seen = []
    original = FCDecoder.decode

    def spy(self, feats, beam_size=2, rule="first"):
        seen.append((beam_size, rule))
        return original(self, feats, beam_size, rule)

    monkeypatch.setattr(FCDecoder, "decode", spy)
    zoo.caption(photo(32, 32), **files, beam_size=1)
    zoo.caption(photo(32, 32), **files, beam_size=3, rule="best")
    assert seen == [(1, "first"), (3, "best")]


@pytest.mark.parametrize(
    ("options", "message"), [({"beam_size": 0}, "beam_size"), ({"rule": "last"}, "rule")]
)
def test_bad_decoding_options_are_refused_before_any_file_is_read(options, message, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(zoo.registry, "get_model", never)
    with pytest.raises(InvalidArgumentError, match=message):
        zoo.caption(photo(8, 8), **options)


def test_an_unreadable_image_is_one_error_naming_it(files, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ImageError, match="broken.jpg"):
        zoo.caption([photo(16, 16), bad], **files)


def test_an_image_too_large_for_full_resolution_is_refused(files, monkeypatch):
    monkeypatch.setattr(zoo.tasks.captioning, "MAX_CAPTION_PIXELS", 1000)
    with pytest.raises(ImageError, match="more than the 1000 pixels"):
        zoo.caption(photo(40, 30), **files)


def test_a_classifier_is_not_taken_for_a_captioner():
    with pytest.raises(InvalidArgumentError, match="not a captioning model"):
        zoo.caption(photo(16, 16), model="alexnet", weights=None)


# ---- the command -------------------------------------------------------------------------------------


def write_images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i}.png" for i in range(n)]
    for i, p in enumerate(paths):
        photo(48, 40, seed=i).save(p)
    return paths


def cli_files(files: dict[str, str]) -> list[str]:
    return ["--weights", files["weights"], "--infos", files["infos"], "--encoder", files["encoder"]]


def test_zoo_caption_prints_one_book_line_per_image_in_folder_order(files, tmp_path, capsys):
    paths = write_images(tmp_path / "pics", 3)
    assert main(["caption", str(tmp_path / "pics"), *cli_files(files), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = zoo.caption(paths, **files)
    assert lines == [f"image {i}: {c}" for i, c in enumerate(expected, 1)]


def test_zoo_caption_json_and_an_unreadable_image_beside_good_ones(files, tmp_path, capsys):
    paths = write_images(tmp_path / "pics", 2)
    (tmp_path / "pics" / "z.png").write_bytes(b"not a png")
    code = main(["caption", str(tmp_path / "pics"), *cli_files(files), "--beam-size", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [r["image_id"] for r in out["results"]] == ["1", "2"]
    assert [r["caption"] for r in out["results"]] == zoo.caption(paths, **files, beam_size=1)
    assert len(out["errors"]) == 1 and "z.png" in out["errors"][0]


def test_zoo_caption_refuses_a_bad_rule_as_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["caption", str(tmp_path), "--rule", "worst"])
    assert stop.value.code == 2 and "invalid choice" in capsys.readouterr().err


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_page_shows_each_image_with_its_caption_and_runs_nothing(files, tmp_path, capsys):
    paths = write_images(tmp_path / "pics", 2)
    out = tmp_path / "vis"
    assert main(["caption", *map(str, paths), *cli_files(files), "--html", str(out)]) == 0
    captions = zoo.caption(paths, **files)
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "iframe" not in tags and "link" not in tags
    csp = next(a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp["content"]
    images = [a for t, a in page.tags if t == "img"]
    assert [a["src"] for a in images] == ["imgs/1.png", "imgs/2.png"]
    for i, (src, path) in enumerate(zip(images, paths, strict=True)):
        copy = Image.open(out / src["src"])
        assert copy.size == Image.open(path).size and src["alt"] == captions[i]
    text = "".join(page.text)
    assert all(f"image {i}: {c}" in text for i, c in enumerate(captions, 1))
    assert json.loads((out / "vis.json").read_text()) == [
        {"image_id": str(i), "caption": c} for i, c in enumerate(captions, 1)
    ]


def test_captions_are_escaped_on_the_page(tmp_path):
    from zoo.tasks.captioning import write_page

    write_page(tmp_path / "vis", [(1, photo(8, 8), '<script>alert("x")</script> & more')])
    text = (tmp_path / "vis" / "index.html").read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_an_existing_page_is_kept_unless_overwrite_and_nothing_is_written_on_refusal(files, tmp_path, capsys):
    paths = write_images(tmp_path / "pics", 1)
    out = tmp_path / "vis"
    out.mkdir()
    (out / "index.html").write_text("mine")
    assert main(["caption", str(paths[0]), *cli_files(files), "--html", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (out / "index.html").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == [
        "index.html"
    ]
    assert main(["caption", str(paths[0]), *cli_files(files), "--html", str(out), "--overwrite"]) == 0
    assert (out / "index.html").read_text() != "mine"


def test_the_page_folder_may_not_be_an_input_folder(files, tmp_path, capsys):
    write_images(tmp_path / "pics", 1)
    code = main(["caption", str(tmp_path / "pics"), *cli_files(files), "--html", str(tmp_path / "pics")])
    assert code == 1 and "is one of the inputs" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["0.png"]
