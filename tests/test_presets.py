"""Presets (--preset NAME, a --from line's "preset", nanoedit presets) on real runs against the
served sandbox: the request each built-in one sends, the config file's presets, what wins over
what, the errors (exit codes, messages, nothing sent), and the listing."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Served,
    config_file,
    journal_jobs,
    one_backend_env,
    paid,
    run_cli,
)
from PIL import Image
from test_resume import _env, _killed, _posts, held  # noqa: F401 (held: the fixture)

from nanoedit.journal.recording import planned_from
from nanoedit.output.provenance import read as read_provenance
from nanoedit.sandbox import Sandbox, sample_image

CAT = sample_image("cat.png")[0]
ICON = (
    "a red fox, as an app icon: one bold, simple subject centred with even margins, on a plain "
    "background; flat shapes with soft shading, a small palette of strong colours, clean edges, "
    "no text or lettering, readable at 32 pixels"
)
STICKER = (
    "the cat, as a die-cut sticker: bold clean outlines, flat vivid colours with simple cel "
    "shading, the whole subject inside a thick even white border that follows its outline, no "
    "text"
)
# What --transparent (the sticker's) adds on Gemini for the sample cat, whose colours are
# greener than magenta: a magenta key.
KEYED = (
    ". Place the subject on a solid, flat, uniform magenta (#FF00FF) background that fills the "
    "whole image, with no shadow, gradient, texture or reflection on it, and use no magenta "
    "anywhere in the subject."
)


def gemini(served: Served) -> dict[str, str]:
    return one_backend_env(served, "gemini")


def sent_text(request: Any) -> str:
    """The prompt a generateContent request carries (its first part)."""
    text: str = request.json["contents"][0]["parts"][0]["text"]
    return text


def image_config(request: Any) -> dict[str, str]:
    config: dict[str, str] = request.json["generationConfig"]["imageConfig"]
    return config


def write_config(text: str) -> Path:
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


# Each built-in preset ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "start", "ratio", "pixels", "saved"),
    [
        ("icon", "a red fox, as an app icon: one bold, simple subject", "1:1", (1024, 1024), "a-red-fox.jpg"),
        ("product", "a red fox, as a professional product photograph: the product alone, whole", "1:1", (1024, 1024), "a-red-fox.png"),
        ("sticker", "a red fox, as a die-cut sticker: bold clean outlines", "1:1", (1024, 1024), "a-red-fox.png"),
        ("thumbnail", "a red fox, as a 16:9 video thumbnail: one clear focal subject", "16:9", (1376, 768), "a-red-fox.jpg"),
    ],
)  # fmt: skip
def test_each_built_in_preset_sends_its_template_with_the_prompt_and_its_ratio(
    served: Served, name: str, start: str, ratio: str, pixels: tuple[int, int], saved: str
) -> None:
    result = run_cli(
        ["generate", "--preset", name, "-p", "a red fox", "--json"], env=gemini(served)
    )
    assert result.exit_code == 0, result.stderr
    (request,) = paid(served)
    assert sent_text(request).startswith(start)
    assert image_config(request) == {"aspectRatio": ratio}
    record = json.loads(result.stdout)
    # The file is named after the prompt given, not the template; the record says which preset.
    assert (record["prompt"], record["preset"]) == (sent_text(request), name)
    assert [output["path"] for output in record["outputs"]] == [saved]
    with Image.open(saved) as image:
        assert image.size == pixels
        # product and sticker are cut out (a key colour on Gemini): corners clear, centre kept.
        cut_out = saved.endswith(".png")
        assert image.mode == ("RGBA" if cut_out else "RGB")
        if cut_out:
            corner, centre = image.getpixel((0, 0)), image.getpixel((512, 512))
            assert isinstance(corner, tuple) and isinstance(centre, tuple)
            assert (corner[3], centre[3]) == (0, 255)
    provenance = read_provenance(saved)
    assert provenance is not None
    assert (provenance["prompt"], provenance["preset"], provenance["ratio"]) == (
        sent_text(request), name, ratio
    )  # fmt: skip


def test_the_icon_preset_sends_exactly_its_template_filled_in(served: Served) -> None:
    result = run_cli(["generate", "--preset", "icon", "-p", "  a red fox  "], env=gemini(served))
    assert (result.exit_code, result.stdout) == (0, "a-red-fox.jpg\n"), result.stderr
    (request,) = paid(served)
    assert request.json["contents"] == [{"role": "user", "parts": [{"text": ICON}]}]


def test_an_edit_with_a_preset_sends_the_filled_template_then_the_image(
    served: Served, sample: Path
) -> None:
    result = run_cli(
        ["edit", "cat.png", "--preset", "sticker", "-p", "the cat"], env=gemini(served)
    )
    assert (result.exit_code, result.stdout) == (0, "cat-edit.png\n"), result.stderr
    (request,) = paid(served)
    assert request.json["contents"][0]["parts"] == [
        {"text": STICKER + KEYED},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(CAT).decode()}},
    ]
    assert image_config(request) == {"aspectRatio": "1:1"}


def test_a_prompt_from_stdin_goes_into_the_template_too(served: Served) -> None:
    result = run_cli(
        ["generate", "--preset", "icon", "-p", "-"], env=gemini(served), stdin="a red fox\n"
    )
    assert result.exit_code == 0, result.stderr
    assert sent_text(paid(served)[0]) == ICON


# What wins over what ---------------------------------------------------------------------------


def test_flags_given_win_over_the_preset_and_the_preset_over_the_config_defaults(
    served: Served,
) -> None:
    write_config('[default]\nratio = "4:5"\n')
    env = gemini(served)
    assert run_cli(["generate", "-p", "a", "--preset", "thumbnail"], env=env).exit_code == 0
    assert (
        run_cli(
            ["generate", "-p", "b", "--preset", "thumbnail", "--ratio", "4:3"], env=env
        ).exit_code
        == 0
    )
    assert run_cli(["generate", "-p", "c"], env=env).exit_code == 0
    # The environment's default too gives way to the preset, as to a flag.
    variable = env | {"NANOEDIT_RATIO": "5:4"}
    assert run_cli(["generate", "-p", "d", "--preset", "thumbnail"], env=variable).exit_code == 0
    assert run_cli(["generate", "-p", "e"], env=variable).exit_code == 0
    assert [image_config(request)["aspectRatio"] for request in paid(served)] == [
        "16:9", "4:3", "4:5", "16:9", "5:4"
    ]  # fmt: skip


def test_a_config_preset_sets_model_size_and_count_and_a_flag_given_still_wins(
    served: Served,
) -> None:
    write_config(
        "[presets.poster]\n"
        'description = "a print poster"\n'
        'prompt = "{prompt}, as a screen-printed poster"\n'
        'model = "nano-banana-pro"\n'
        'size = "2k"\n'
        "count = 2\n"
        'ratio = "3:4"\n'
    )
    env = gemini(served)
    result = run_cli(["generate", "--preset", "poster", "-p", "a lighthouse"], env=env)
    assert (result.exit_code, result.stdout) == (0, "a-lighthouse.jpg\na-lighthouse-2.jpg\n")
    requests = paid(served)
    assert [request.path for request in requests] == [
        "/v1beta/models/gemini-3-pro-image:generateContent"
    ] * 2
    assert {sent_text(request) for request in requests} == {
        "a lighthouse, as a screen-printed poster"
    }
    assert image_config(requests[0]) == {"aspectRatio": "3:4", "imageSize": "2K"}
    # -n 1 and -m given: the preset's count and model give way; its size and ratio stay.
    result = run_cli(
        ["generate", "--preset", "poster", "-p", "a boat", "-n", "1", "-m", "nano-banana-2"],
        env=env,
    )
    assert (result.exit_code, result.stdout) == (0, "a-boat.jpg\n"), result.stderr
    (request,) = paid(served)[2:]
    assert request.path == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert image_config(request) == {"aspectRatio": "3:4", "imageSize": "2K"}


def test_a_config_preset_sets_provider_dials_and_a_flag_given_still_wins(served: Served) -> None:
    write_config('[presets.seeded]\nseed = 7\nthinking = "HIGH"\nimage_only = true\n')
    env = gemini(served)
    result = run_cli(["generate", "--preset", "seeded", "-p", "a kite"], env=env)
    assert (result.exit_code, result.stdout) == (0, "a-kite.jpg\n"), result.stderr
    result = run_cli(["generate", "--preset", "seeded", "-p", "a bell", "--seed", "8"], env=env)
    assert (result.exit_code, result.stdout) == (0, "a-bell.jpg\n"), result.stderr
    configs = [json.loads(request.body)["generationConfig"] for request in paid(served)]
    assert [(c["seed"], c["thinkingConfig"], c["responseModalities"]) for c in configs] == [
        (7, {"thinkingLevel": "HIGH"}, ["IMAGE"]),
        (8, {"thinkingLevel": "HIGH"}, ["IMAGE"]),
    ]


def test_a_config_preset_with_a_built_in_name_takes_its_place(served: Served) -> None:
    write_config('[presets.icon]\nprompt = "{prompt} as a tiny {pixel-art} icon"\nratio = "1:1"\n')
    result = run_cli(["generate", "--preset", "icon", "-p", "a {red} fox"], env=gemini(served))
    assert result.exit_code == 0, result.stderr
    # Only {prompt} is replaced: other braces, in the template or the prompt, are text.
    assert sent_text(paid(served)[0]) == "a {red} fox as a tiny {pixel-art} icon"


def test_a_whole_prompt_preset_needs_no_prompt(served: Served, sample: Path) -> None:
    write_config('[presets.cutout]\nprompt = "remove the background; keep the subject whole"\n')
    result = run_cli(["edit", "cat.png", "--preset", "cutout"], env=gemini(served))
    assert result.exit_code == 0, result.stderr
    assert sent_text(paid(served)[0]) == "remove the background; keep the subject whole"


# --from lines --------------------------------------------------------------------------------


def test_a_from_line_may_name_a_preset_and_its_own_fields_win_over_it(
    served: Served, sample: Path
) -> None:
    Path("jobs.jsonl").write_text(
        '{"input": "cat.png", "preset": "thumbnail", "prompt": "the cat", "output": "a.png"}\n'
        '{"input": "cat.png", "preset": "thumbnail", "ratio": "4:3", "output": "b.png"}\n'
        '{"input": "cat.png", "output": "c.png"}\n'
        '{"input": "cat.png", "prompt": "own words", "output": "d.png"}\n',
        encoding="utf-8",
    )
    result = run_cli(
        ["edit", "--from", "jobs.jsonl", "-p", "the dog", "--preset", "sticker", "-j", "1",
         "--json"],
        env=gemini(served),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    by_output = {
        record["outputs"][0]["path"]: record
        for record in map(json.loads, result.stdout.split("\n")[:-1])
    }
    sent = {sent_text(request): image_config(request)["aspectRatio"] for request in paid(served)}
    thumbnail = ", as a 16:9 video thumbnail: one clear focal subject large in the frame, a bold composition that reads at a glance when small, strong contrast and saturated colours, simple uncluttered background, clear space on one side for a title"
    sticker = STICKER.removeprefix("the cat") + KEYED
    # The run's preset (sticker) is cut out; a line's preset that says nothing of transparency
    # leaves the run's, as one that sets no ratio leaves the run's ratio.
    assert sent == {
        f"the cat{thumbnail}{KEYED}": "16:9",  # the line's preset, the line's prompt
        f"the dog{thumbnail}{KEYED}": "4:3",  # the line's ratio over its preset's; -p's prompt
        f"the dog{sticker}": "1:1",  # no preset on the line: the run's --preset
        f"own words{sticker}": "1:1",  # the line's prompt into the run's preset
    }
    assert [by_output[name]["preset"] for name in ("a.png", "b.png", "c.png", "d.png")] == [
        "thumbnail", "thumbnail", "sticker", "sticker"
    ]  # fmt: skip


def test_a_from_line_preset_may_cut_out_its_own_job_alone(served: Served, sample: Path) -> None:
    write_config('[presets.cutout]\nprompt = "{prompt}"\ntransparent = "key"\n')
    Path("jobs.jsonl").write_text(
        '{"input": "cat.png", "preset": "cutout", "output": "cut.png"}\n'
        '{"input": "cat.png", "output": "plain.jpg"}\n',
        encoding="utf-8",
    )
    result = run_cli(
        ["edit", "--from", "jobs.jsonl", "-p", "the cat", "-j", "1"], env=gemini(served)
    )
    assert (result.exit_code, result.stdout) == (0, "cut.png\nplain.jpg\n"), result.stderr
    assert sorted(sent_text(request) for request in paid(served)) == ["the cat", f"the cat{KEYED}"]
    with Image.open("cut.png") as cut, Image.open("plain.jpg") as plain:
        assert (cut.mode, plain.mode) == ("RGBA", "RGB")


def test_a_from_line_preset_that_sets_the_backend_is_refused_naming_the_line(
    served: Served, sample: Path
) -> None:
    write_config('[presets.fast]\nprompt = "{prompt}"\nbackend = "gemini"\n')
    Path("jobs.jsonl").write_text('{"input": "cat.png", "preset": "fast"}\n', encoding="utf-8")
    result = run_cli(["edit", "--from", "jobs.jsonl", "-p", "x"], env=gemini(served))
    assert (result.exit_code, result.stderr) == (
        2,
        "error: jobs.jsonl line 1: the preset fast sets backend, which is the whole run's, not "
        "one job's (a line's preset may set: ratio, size, model, count, transparent); give "
        "--preset fast on the command line instead\n",
    )
    assert paid(served) == []


def test_a_from_line_naming_no_such_preset_is_refused_naming_the_line(
    served: Served, sample: Path
) -> None:
    Path("jobs.jsonl").write_text('{"input": "cat.png", "preset": "stiker"}\n', encoding="utf-8")
    result = run_cli(["edit", "--from", "jobs.jsonl", "-p", "x"], env=gemini(served))
    assert (result.exit_code, result.stderr) == (
        2,
        "error: jobs.jsonl line 1: no preset is called 'stiker'; did you mean sticker? the "
        "presets are: icon, product, sticker, thumbnail (nanoedit presets shows them)\n",
    )
    assert served.sandbox.received == []


# The journal ---------------------------------------------------------------------------------


def test_the_journal_keeps_the_prompt_as_sent_and_the_preset_for_resume(served: Served) -> None:
    result = run_cli(["generate", "--preset", "icon", "-p", "a red fox"], env=gemini(served))
    assert result.exit_code == 0, result.stderr
    (record,) = journal_jobs()
    assert record.prompt == ICON
    assert record.spec["options"]["prompt"] == ICON
    assert record.spec["options"].get("preset") == "icon"
    assert record.provenance is not None and record.provenance["preset"] == "icon"
    shown = run_cli(["history", "show", str(record.id)]).stdout.splitlines()
    assert shown[shown.index(f"prompt: {ICON}") + 1] == "preset: icon"
    # What resume would send: the prompt as it was sent, not put into the template again.
    planned, _ = planned_from(record)
    assert (planned.job.options.prompt, planned.job.options.preset) == (ICON, "icon")


def test_the_same_request_with_and_without_a_preset_is_one_paid_job(served: Served) -> None:
    env = gemini(served)
    assert (
        run_cli(
            ["generate", "--preset", "icon", "-p", "a red fox", "-o", "fox.jpg"], env=env
        ).exit_code
        == 0
    )
    result = run_cli(
        ["generate", "-p", ICON, "--ratio", "1:1", "-o", "fox.jpg", "--skip-existing"], env=env
    )
    assert result.exit_code == 0, result.stderr
    assert len(paid(served)) == 1


# Errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["generate", "--preset", "thumbnial", "-p", "x"],
            "no preset is called 'thumbnial'; did you mean thumbnail? the presets are: icon, "
            "product, sticker, thumbnail (nanoedit presets shows them)",
        ),
        (
            ["generate", "--preset", "icon"],
            "the preset icon puts your prompt into its template at {prompt}, and no prompt was "
            'given; say what you want with -p "..."',
        ),
        (
            ["edit", "cat.png", "--preset", "icon"],
            "cat.png: the preset icon puts your prompt into its template at {prompt}, and no "
            'prompt was given; say what you want with -p "..."',
        ),
    ],
)
def test_preset_usage_errors_exit_2_and_send_nothing(
    served: Served, sample: Path, args: list[str], message: str
) -> None:
    result = run_cli(args, env=gemini(served))
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
    assert served.sandbox.received == []


def test_a_whole_prompt_preset_refuses_a_prompt_given_too(served: Served) -> None:
    write_config('[presets.cutout]\nprompt = "remove the background"\n')
    result = run_cli(["generate", "--preset", "cutout", "-p", "x", "--json"], env=gemini(served))
    message = (
        "the preset cutout's template is a whole prompt (it has no {prompt} to put yours in), "
        "and a prompt was given too; leave out the prompt, or put {prompt} in the preset's "
        "template"
    )
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
    assert json.loads(result.stdout)["message"] == message
    assert served.sandbox.received == []


@pytest.mark.parametrize(
    ("toml", "line", "what"),
    [
        (
            '[presets.logo]\nprompt = "{prompt}"\nratoi = "1:1"\n',
            3,
            "presets.logo.ratoi is not a preset setting (did you mean ratio?); a preset takes: "
            "prompt, description, ratio, size, model, count, backend, transparent, seed, "
            "thinking, search, image_only, format, safety, quality, input_fidelity, tier",
        ),
        (
            '[presets.logo]\ntier = "cheap"\n',
            2,
            "presets.logo.tier must be one of: standard, flex, priority, batch, not 'cheap'",
        ),
        (
            '[presets.logo]\nsearch = "false"\n',
            2,
            "presets.logo.search must be true or false (unquoted), not 'false'",
        ),
        (
            '[presets.logo]\nprompt = "{prompt}"\n\nratio = "16x9"\n',
            4,
            "presets.logo.ratio must be one of: auto, 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, "
            "9:16, 16:9, 21:9, 1:4, 4:1, 1:8, 8:1, not '16x9'",
        ),
        (
            '[default]\nratio = "1:1"\n[presets."logo"]\n"prompt" = "{prompt} and {prompt}"\n',
            4,
            "presets.logo.prompt has {prompt} 2 times; put it once, where your prompt goes (or "
            "leave it out to make the template the whole prompt)",
        ),
        (
            "[presets.logo]\nsize = 3000\n",
            2,
            "presets.logo.size must be one of: 512, 1K, 2K, 4K, not 3000",
        ),
        (
            "[presets.logo]\ncount = 11\n",
            2,
            "presets.logo.count must be a whole number from 1 to 10, not 11",
        ),
        (
            '[presets.logo]\ndescription = "nothing else"\n',
            1,
            "presets.logo sets nothing; give it a prompt or a setting",
        ),
        (
            '[presets.logo]\nbackend = "gemni"\n',
            2,
            "presets.logo.backend must be one of: auto, openai, duomi, gemini, fal, replicate, "
            "openrouter, vertex, not 'gemni'",
        ),
    ],
)
def test_a_wrong_config_preset_names_the_file_line_and_key_and_stops_only_preset_runs(
    served: Served, toml: str, line: int, what: str
) -> None:
    path = write_config(toml)
    env = gemini(served)
    expected = f"error: the config file {path} line {line}: {what}; correct it in the config file\n"
    for args in (["generate", "--preset", "logo", "-p", "x"], ["presets"]):
        result = run_cli(args, env=env)
        assert (result.exit_code, result.stderr) == (3, expected)
    assert served.sandbox.received == []
    # A run that names no preset does not read them: it goes ahead, with no warning.
    result = run_cli(["generate", "-p", "x"], env=env)
    assert (result.exit_code, result.stdout) == (0, "x.jpg\n"), result.stderr
    assert "presets" not in result.stderr


# nanoedit presets ----------------------------------------------------------------------------


def test_presets_lists_each_as_the_toml_that_makes_it_with_its_source() -> None:
    path = write_config(
        '[presets.sticker]\nprompt = "{prompt}, as a round sticker"\n\n'
        '[presets.logo]\ndescription = "a flat logo"\nprompt = "{prompt}, flat vector logo"\n'
        'ratio = "1:1"\nsize = 512\n'
    )
    result = run_cli(["presets"])
    assert result.exit_code == 0, result.stderr
    blocks = result.stdout.split("\n\n")
    assert [block.split("\n")[1] for block in blocks] == [
        "[presets.icon]", "[presets.product]", "[presets.sticker]", "[presets.thumbnail]",
        "[presets.logo]",
    ]  # fmt: skip
    assert blocks[2] == (
        f"# from the config file {path}, in place of the built-in sticker\n"
        "[presets.sticker]\n"
        'prompt = "{prompt}, as a round sticker"'
    )
    assert blocks[4] == (
        f"# from the config file {path}\n"
        "[presets.logo]\n"
        'description = "a flat logo"\n'
        'prompt = "{prompt}, flat vector logo"\n'
        'ratio = "1:1"\n'
        'size = "512"\n'
    )
    assert blocks[3] == (
        "# built in\n"
        "[presets.thumbnail]\n"
        'description = "a 16:9 video thumbnail: one focal subject, bold, readable when small"\n'
        'prompt = "{prompt}, as a 16:9 video thumbnail: one clear focal subject large in the '
        "frame, a bold composition that reads at a glance when small, strong contrast and "
        'saturated colours, simple uncluttered background, clear space on one side for a title"\n'
        'ratio = "16:9"'
    )
    # What it prints is TOML a config file takes back as it is.
    write_config(result.stdout)
    again = run_cli(["presets"])
    assert again.exit_code == 0, again.stderr
    assert again.stdout.count("in place of the built-in") == 4


def test_presets_json_is_one_object_per_preset_and_name_shows_one() -> None:
    path = write_config('[presets.logo]\nprompt = "{prompt}, flat vector logo"\ncount = 3\n')
    result = run_cli(["presets", "--json"])
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["name"] for record in records] == [
        "icon", "product", "sticker", "thumbnail", "logo"
    ]  # fmt: skip
    assert records[0] == {
        "schema": "nanoedit/preset/1",
        "name": "icon",
        "source": "built-in",
        "file": None,
        "overrides_builtin": False,
        "description": "a square app icon: one bold subject, flat and readable at small sizes",
        "template": ICON.replace("a red fox", "{prompt}", 1),
        "settings": {"ratio": "1:1"},
    }
    assert records[4] == {
        "schema": "nanoedit/preset/1",
        "name": "logo",
        "source": "config",
        "file": str(path),
        "overrides_builtin": False,
        "description": "",
        "template": "{prompt}, flat vector logo",
        "settings": {"count": 3},
    }
    one = run_cli(["presets", "logo", "--json"])
    assert (one.exit_code, [json.loads(one.stdout)]) == (0, records[4:])
    missing = run_cli(["presets", "lgo"])
    assert (missing.exit_code, missing.stdout) == (2, "")
    assert missing.stderr == (
        "error: no preset is called 'lgo'; did you mean logo? the presets are: icon, product, "
        "sticker, thumbnail, logo (nanoedit presets shows them)\n"
    )


def test_resume_sends_the_prompt_as_it_was_put_into_the_template_not_the_preset_as_it_is_now(
    held: tuple[Sandbox, str, Any, threading.Event],  # noqa: F811 (the fixture imported)
    isolated: Path,
) -> None:
    sandbox, base_url, _, release = held
    write_config('[presets.mine]\nprompt = "{prompt}, in ink"\n')
    folder = Path("in")
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.png").write_bytes(CAT)
    _killed(
        ["edit", "in", "--preset", "mine", "-p", "a hat", "--backend", "openai", "-j", "1"],
        base_url,
        lambda: _posts(sandbox, "/v1/images/edits") == 1,
        "the first request",
    )
    release.set()
    # The preset changes after the run: what resume sends is what the journal kept.
    write_config('[presets.mine]\nprompt = "{prompt}, in oils"\n')
    result = run_cli(["resume"], env=_env(base_url))
    assert result.exit_code == 7, result.stderr  # b sent and saved; a may have been charged
    prompts = [
        request.fields["prompt"]
        for request in sandbox.received
        if request.method == "POST" and request.path == "/v1/images/edits"
    ]
    assert prompts == [["a hat, in ink"]] * 2
    assert [(record.prompt, record.spec["options"].get("preset")) for record in journal_jobs()] == [
        ("a hat, in ink", "mine")
    ] * 2
