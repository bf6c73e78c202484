"""Jobs, sources and option values: parsed and checked before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoedit.errors import InputError, UsageError
from nanoedit.jobs import (
    Options,
    build_edit_jobs,
    build_generate_job,
    normalize_ratio,
    normalize_size,
    parse_source,
    prompt_slug,
)


@pytest.mark.parametrize(
    ("text", "is_url", "name", "stem"),
    [
        ("cat.png", False, "cat.png", "cat"),
        ("pics/My Cat.final.jpeg", False, "My Cat.final.jpeg", "My-Cat.final"),
        ("https://cdn.example/a/dog.jpg?sig=ab&x=1", True, "dog.jpg", "dog"),
        ("HTTP://cdn.example/a/b%20c.webp", True, "b c.webp", "b-c"),
        ("https://cdn.example/", True, "cdn.example", "cdn.example"),
        (".hidden", False, ".hidden", "hidden"),
    ],
)
def test_parse_source(text: str, is_url: bool, name: str, stem: str) -> None:
    source = parse_source(text)
    assert (source.is_url, source.name, source.stem) == (is_url, name, stem)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file:///tmp/cat.png", "uses the file: scheme; nanoedit reads local files and http(s) URLs only (for a local file, pass its path)"),
        ("ftp://host/cat.png", "uses the ftp: scheme"),
        ("data:image/png;base64,AAAA", "uses the data: scheme"),
        ("https:///cat.png", "is not a valid URL (it has no host)"),
        ("   ", "an input is empty"),
    ],
)  # fmt: skip
def test_parse_source_refuses(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_source(text)
    assert message in caught.value.message


def test_ratio_and_size_values() -> None:
    assert normalize_ratio("16:9") == "16:9"
    assert normalize_ratio(" 16/9 ") == "16:9"
    assert normalize_ratio("AUTO") == "auto"
    assert normalize_size("4k") == "4K"
    assert normalize_size(None) is None
    with pytest.raises(UsageError, match="invalid ratio '7:3'; use one of: auto, 1:1, 2:3"):
        normalize_ratio("7:3")
    with pytest.raises(UsageError, match="invalid size '8K'; use one of: 512, 1K, 2K, 4K"):
        normalize_size("8K")


@pytest.mark.parametrize(
    ("prompt", "slug"),
    [
        ("a red fox in snow", "a-red-fox-in-snow"),
        ("A Red FOX, in the snow!!", "a-red-fox-in-the-snow"),
        ("一只猫", "一只猫"),
        ("!!!", "image"),
        ("word " * 30, "word-word-word-word-word-word-word-word"),
        ("x" * 80, "x" * 40),
    ],
)
def test_prompt_slug(prompt: str, slug: str) -> None:
    assert prompt_slug(prompt) == slug


def test_edit_jobs_carry_every_reference_after_their_own_input() -> None:
    options = Options(prompt="make it night")
    jobs = build_edit_jobs(
        ["a.png", "https://h/b.jpg"], ["hat.png", "https://h/ref.webp"], options, None
    )
    assert [[s.location for s in job.images] for job in jobs] == [
        ["a.png", "hat.png", "https://h/ref.webp"],
        ["https://h/b.jpg", "hat.png", "https://h/ref.webp"],
    ]
    assert [job.stem for job in jobs] == ["a-edit", "b-edit"]
    generated = build_generate_job(Options(prompt="a red fox in snow"), Path("fox.png"))
    assert (generated.kind, generated.images, generated.stem, generated.output) == (
        "generate", (), "a-red-fox-in-snow", Path("fox.png")
    )  # fmt: skip
