"""nanoedit history (list, show, search, path, cost, a page) and @last / @ID as inputs.

Until the runner journals its jobs, these tests write the journal through its API the way a
run leaves it (saved jobs with their image files on disk); the tests marked ``needs the
runner's journal`` make the records by a real run instead, and pass once the runner writes
them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Served, backend_env, posts, run_cli
from PIL import Image
from readme_help import README

from nanoedit.jobs import ResultEntry
from nanoedit.journal.records import NewJob
from nanoedit.journal.store import Journal

# A fixed moment for every record: 2026-11-28 12:00:00 UTC.
WHEN = 1_795_867_200.0
EDITS = "/v1/images/edits"


def data_folder() -> Path:
    return Path(os.environ["NANOEDIT_DATA_DIR"])


def minute(timestamp: float = WHEN) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")


def journal() -> Journal:
    return Journal(data_folder(), clock=lambda: WHEN)


def saved_job(
    book: Journal,
    prompt: str,
    paths: list[Path],
    *,
    backend: str = "openai",
    model: str = "nano-banana",
    cost: float | None = 0.039,
    usage: dict[str, Any] | None = None,
) -> int:
    """A job as the runner leaves one that saved its images."""
    (ident,) = book.add_jobs(
        [NewJob("edit", backend, model, prompt, f"fp-{prompt}", {"inputs": [{"path": "cat.png"}]})]
    )
    book.submitted(ident)
    results: list[ResultEntry] = [
        {"url": f"https://cdn.example/{n}.png"} for n in range(len(paths))
    ]
    book.answered(ident, results, usage=usage, cost=cost)
    book.saved(
        ident,
        [
            ResultEntry(**entry, path=str(path), sha256="x")
            for entry, path in zip(results, paths, strict=True)
        ],
    )
    return ident


def failed_job(book: Journal, prompt: str) -> int:
    (ident,) = book.add_jobs(
        [
            NewJob(
                "edit",
                "openai",
                "nano-banana",
                prompt,
                f"fp-{prompt}",
                {"inputs": [{"path": "dog.png"}]},
            )
        ]
    )
    book.submitted(ident)
    book.failed(ident, "api", "the server said no")
    return ident


def image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    Image.new("RGB", size, colour).save(path, format="PNG")
    return path


# Listing ------------------------------------------------------------------------------------


def test_history_lists_jobs_newest_first_as_tab_separated_lines(isolated: Path) -> None:
    red = image(isolated / "red.png", (255, 0, 0))
    with journal() as book:
        book.begin_run(["nanoedit", "edit"])
        first = saved_job(book, "make it\tred", [red])
        second = failed_job(book, "a dog at night")
    result = run_cli(["history"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"{second}\t{minute()}\tfailed\topenai\tnano-banana\ta dog at night\n"
        f"{first}\t{minute()}\tsaved\topenai\tnano-banana\tmake it red\t{red}\n"
    )
    limited = run_cli(["history", "list", "--limit", "1"])
    assert limited.stdout == f"{second}\t{minute()}\tfailed\topenai\tnano-banana\ta dog at night\n"


def test_history_json_prints_one_object_per_job(isolated: Path) -> None:
    red = image(isolated / "red.png", (255, 0, 0))
    with journal() as book:
        ident = saved_job(book, "make it red", [red], usage={"total_tokens": 1444})
    result = run_cli(["history", "--json"])
    assert result.exit_code == 0
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert {key: record[key] for key in ("id", "state", "prompt", "outputs", "cost", "usage")} == {
        "id": ident,
        "state": "saved",
        "prompt": "make it red",
        "outputs": [str(red)],
        "cost": 0.039,
        "usage": {"total_tokens": 1444},
    }
    assert record["created"] == datetime.fromtimestamp(WHEN).astimezone().isoformat()


def test_history_with_no_journal_yet_says_so_and_creates_nothing() -> None:
    result = run_cli(["history"])
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "",
        "no jobs in the history yet\n",
    )
    assert not data_folder().exists()


def test_history_show_prints_the_whole_job(isolated: Path) -> None:
    red = image(isolated / "red.png", (255, 0, 0))
    with journal() as book:
        ident = saved_job(book, "make it red", [red], usage={"total_tokens": 1444})
    result = run_cli(["history", "show", str(ident)])
    iso = datetime.fromtimestamp(WHEN).astimezone().isoformat()
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"id: {ident}",
        "run: 1",
        f"created: {iso}",
        f"updated: {iso}",
        "state: saved",
        "kind: edit",
        "backend: openai",
        "model: nano-banana",
        "prompt: make it red",
        f"output: {red}",
        "cost: $0.039",
        'usage: {"total_tokens": 1444}',
        f'result: {{"url": "https://cdn.example/0.png", "path": "{red}", "sha256": "x"}}',
        'spec: {"inputs": [{"path": "cat.png"}]}',
    ]
    shown = run_cli(["history", "show", f"@{ident}", "--json"])
    assert json.loads(shown.stdout)["outputs"] == [str(red)]


def test_history_show_of_an_unknown_id_is_a_usage_error(isolated: Path) -> None:
    with journal() as book:
        saved_job(book, "x", [image(isolated / "a.png", (1, 2, 3))])
    result = run_cli(["history", "show", "42"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: there is no job 42 in the history; see: nanoedit history\n"


def test_history_search_finds_prompts_by_word_and_prefix(isolated: Path) -> None:
    with journal() as book:
        cat = saved_job(book, "a watercolor cat", [image(isolated / "a.png", (1, 2, 3))])
        failed_job(book, "a dog at night")
        cats = saved_job(book, "cats on a roof", [image(isolated / "b.png", (4, 5, 6))])
    result = run_cli(["history", "search", "cat*", "--json"])
    assert result.exit_code == 0
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [cats, cat]
    none = run_cli(["history", "search", "giraffe"])
    assert (none.exit_code, none.stdout, none.stderr) == (
        0,
        "",
        "no job's prompt matches 'giraffe'\n",
    )


def test_history_search_with_bad_syntax_is_a_usage_error_not_a_traceback(isolated: Path) -> None:
    with journal() as book:
        failed_job(book, "a dog")
    result = run_cli(["history", "search", '"unclosed'])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: cannot search for '\"unclosed' (unterminated string); search words, "
        '"a phrase" in double quotes, a prefix such as cat*, or words joined with AND, OR, NOT\n'
    )


def test_history_path_prints_the_database_path() -> None:
    result = run_cli(["history", "path"])
    assert (result.exit_code, result.stdout) == (0, f"{data_folder() / 'journal.sqlite3'}\n")


def test_history_cost_sums_by_day_backend_and_model_and_says_unknown(isolated: Path) -> None:
    a, b = image(isolated / "a.png", (1, 2, 3)), image(isolated / "b.png", (4, 5, 6))
    with journal() as book:
        saved_job(book, "one", [a])
        saved_job(book, "two", [a, b], cost=0.078)
        saved_job(book, "pro", [b], backend="duomi", model="gemini-3-pro-image-preview", cost=0.24)
        saved_job(book, "custom", [b], backend="openrouter", model="x/y", cost=None)
        failed_job(book, "no image")
    day = datetime.fromtimestamp(WHEN).astimezone().strftime("%Y-%m-%d")
    result = run_cli(["history", "--cost"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"{day}\tduomi\tgemini-3-pro-image-preview\t1\t1\t$0.24\n"
        f"{day}\topenai\tnano-banana\t3\t3\t$0.117\n"
        f"{day}\topenrouter\tx/y\t1\t1\tunknown\n"
        "total\t\t\t5\t5\t$0.357 + unknown (1 job)\n"
    )
    assert run_cli(["history", "cost"]).stdout == result.stdout


def test_history_report_writes_a_page_with_thumbnails_prompts_states_and_costs(
    isolated: Path,
) -> None:
    red = image(isolated / "red.png", (255, 0, 0), (64, 48))
    with journal() as book:
        saved_job(book, "make it red", [red])
        failed_job(book, "a dog at night")
    result = run_cli(["history", "--report", "past.html"])
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "",
        "wrote the report past.html\n",
    )
    page = (isolated / "past.html").read_text()
    assert "make it red" in page and "a dog at night" in page
    assert "the server said no" in page and "$0.039" in page
    assert page.count("data:image/jpeg;base64,") == 1
    assert 'href="red.png"' in page and "64" in page


# @last and @ID ------------------------------------------------------------------------------


def test_edit_at_last_sends_the_image_the_previous_run_saved(served: Served, sample: Path) -> None:
    env = backend_env(served)
    first = run_cli(["edit", "cat.png", "-p", "make it blue"], env=env)
    assert (first.exit_code, first.stdout) == (0, "cat-edit.jpg\n")
    saved = sample.parent / "cat-edit.jpg"
    # What the runner's journal records of that run (written here until it does).
    with journal() as book:
        saved_job(book, "make it blue", [saved])
    second = run_cli(["edit", "@last", "-p", "now at night"], env=env)
    assert (second.exit_code, second.stdout) == (0, "cat-edit-edit.jpg\n")
    last = posts(served)[-1]
    assert last.path == EDITS and last.fields["prompt"] == ["now at night"]
    assert [part.data for part in last.files] == [saved.read_bytes()]
    with Image.open(sample.parent / "cat-edit-edit.jpg") as made:
        assert made.size == (1200, 896)


def test_edit_at_last_after_a_real_run_needs_no_journal_written_by_hand(
    served: Served, sample: Path
) -> None:
    env = backend_env(served)
    assert run_cli(["edit", "cat.png", "-p", "make it blue"], env=env).exit_code == 0
    second = run_cli(["edit", "@last", "-p", "now at night"], env=env)
    assert (second.exit_code, second.stdout) == (0, "cat-edit-edit.jpg\n")
    assert posts(served)[-1].files[0].data == (sample.parent / "cat-edit.jpg").read_bytes()


def test_at_id_and_at_id_dot_n_name_a_job_s_images_and_refs_take_them_too(
    served: Served, isolated: Path
) -> None:
    red, blue = image(isolated / "red.png", (255, 0, 0)), image(isolated / "blue.png", (0, 0, 255))
    green = image(isolated / "green.png", (0, 255, 0))
    with journal() as book:
        two = saved_job(book, "two images", [red, blue])
        saved_job(book, "later", [green])
    result = run_cli(
        ["edit", f"@{two}", "--ref", f"@{two}.2", "-p", "mix them"], env=backend_env(served)
    )
    assert (result.exit_code, result.stdout) == (0, "red-edit.jpg\n")
    assert [part.data for part in posts(served)[-1].files] == [red.read_bytes(), blue.read_bytes()]


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("@7", "@7: there is no job 7 in the history; see the ids with: nanoedit history"),
        (
            "@2",
            "@2: job 2 saved no image (failed: the server said no); choose another job with: "
            "nanoedit history",
        ),
        ("@1.3", "@1.3: job 1 saved 2 images, so there is no image 3; write @1.1 to @1.2"),
    ],
)
def test_a_reference_to_no_image_says_why_and_sends_nothing(
    served: Served, isolated: Path, reference: str, message: str
) -> None:
    with journal() as book:
        saved_job(
            book,
            "two",
            [image(isolated / "a.png", (1, 2, 3)), image(isolated / "b.png", (4, 5, 6))],
        )
        failed_job(book, "none")
    result = run_cli(["edit", reference, "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout, result.stderr) == (4, "", f"error: {message}\n")
    assert posts(served) == []


def test_at_last_with_no_history_yet_says_to_run_a_job_first(served: Served) -> None:
    result = run_cli(["edit", "@last", "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == (
        "error: @last names an earlier result, but there is no history yet "
        f"({data_folder() / 'journal.sqlite3'}); run an edit or generate first, or pass an "
        "image's path\n"
    )
    assert posts(served) == []


def test_at_last_whose_file_was_moved_names_the_path(served: Served, isolated: Path) -> None:
    gone = image(isolated / "gone.png", (1, 2, 3))
    with journal() as book:
        ident = saved_job(book, "x", [gone])
    gone.rename(isolated / "elsewhere.png")
    result = run_cli(["edit", "@last", "-p", "x"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == (
        f"error: @last names {gone}, saved by job {ident}, which is no longer there (moved or "
        "deleted); pass the image's new path instead\n"
    )
    assert posts(served) == []


def test_a_relative_saved_path_is_found_from_its_run_s_folder(
    served: Served, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image(isolated / "out.png", (9, 9, 9))
    with journal() as book:
        book.begin_run(["nanoedit", "edit"])  # in the working folder, as a run would
        saved_job(book, "x", [Path("out.png")])
    elsewhere = isolated / "sub"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run_cli(["edit", "@last", "-p", "x", "-o", "again.png"], env=backend_env(served))
    assert (result.exit_code, result.stdout) == (0, "again.png\n")
    assert posts(served)[-1].files[0].data == (isolated / "out.png").read_bytes()


def test_a_job_file_takes_references_as_inputs_and_refs(served: Served, isolated: Path) -> None:
    red, blue = image(isolated / "red.png", (255, 0, 0)), image(isolated / "blue.png", (0, 0, 255))
    with journal() as book:
        two = saved_job(book, "two images", [red, blue])
    jobs = isolated / "jobs" / "list.jsonl"
    jobs.parent.mkdir()
    jobs.write_text(f'@last\n{{"input": "@{two}", "ref": ["@{two}.2"], "output": "mix.png"}}\n')
    result = run_cli(
        ["edit", "--from", "jobs/list.jsonl", "-p", "x", "-j", "1"], env=backend_env(served)
    )
    assert (result.exit_code, result.stdout) == (0, "blue-edit.jpg\njobs/mix.png\n")
    assert [[part.data for part in request.files] for request in posts(served)] == [
        [blue.read_bytes()],
        [red.read_bytes(), blue.read_bytes()],
    ]


NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))


def test_at_last_after_a_job_written_to_stdout_is_refused_not_read_back_from_it(
    served: Served, sample: Path
) -> None:
    # As found: the second command's @last was /dev/stdout, the file it appends to.
    script = (
        f"{NANOEDIT} edit cat.png -p x -o - > out.png && cp out.png first.png && "
        f"{NANOEDIT} edit @last -p y -o - >> out.png"
    )
    done = subprocess.run(
        ["sh", "-c", script], env=os.environ | backend_env(served), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 4
    assert done.stderr.splitlines()[-1] == (
        "error: @last: job 1 wrote its image to stdout, so no file of it is there to edit; save "
        "the result with -o FILE or -d DIR to go on from it"
    )
    assert Path("out.png").read_bytes() == Path("first.png").read_bytes()
    with Image.open("out.png") as image:
        assert image.size == (1200, 896)
    assert len(posts(served)) == 1  # the first run's edit; nothing for the second


@pytest.mark.parametrize("output", ["/dev/null", "pipe"])
def test_a_reference_to_an_image_written_to_a_device_or_a_fifo_is_refused(
    served: Served, isolated: Path, output: str
) -> None:
    target = isolated / output
    if output == "pipe":
        os.mkfifo(target)  # still there: opening it would wait for a writer forever
    where = "the device /dev/null" if output == "/dev/null" else f"the FIFO {target}"
    with journal() as book:
        ident = saved_job(book, "x", [target])
    for reference in ("@last", f"@{ident}", f"@{ident}.1"):
        result = run_cli(["edit", reference, "-p", "x"], env=backend_env(served))
        assert (result.exit_code, result.stdout, result.stderr) == (
            4,
            "",
            f"error: {reference}: job {ident} wrote its image to {where}, so no file of it is "
            "there to edit; save the result with -o FILE or -d DIR to go on from it\n",
        )
    assert posts(served) == []


def test_the_readmes_word_on_at_last_after_stdout_holds(served: Served, sample: Path) -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(
        r"It is an error \(exit (\d), nothing sent\) when .* the job wrote its image to stdout "
        r"\(`-o -`\), a FIFO or a device, which keep no file of it \(save with `-o FILE` or "
        r"`-d DIR` to go on from a result\)",
        text,
    )
    assert found, "the README no longer says @last after -o - is an error"
    env = os.environ | backend_env(served)
    with open("out.png", "wb") as out:
        first = subprocess.run([NANOEDIT, "edit", "cat.png", "-p", "x", "-o", "-"], stdout=out,
                               env=env, timeout=60)  # fmt: skip
    assert first.returncode == 0
    again = subprocess.run([NANOEDIT, "edit", "@last", "-p", "y", "-o", "again.png"], env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (again.returncode, again.stdout) == (int(found.group(1)), "")
    assert "save the result with -o FILE or -d DIR" in again.stderr
    assert len(posts(served)) == 1


def test_the_history_page_of_a_real_run_shows_its_input_ratio_and_size(
    served: Served, sample: Path
) -> None:
    # The page reads what a run journals: inputs as {"path": ...}, the ratio and size under
    # "options". It showed no input and "ratio auto" for every job once a run had written it.
    env = backend_env(served)
    made = run_cli(["edit", "cat.png", "-p", "make it blue", "--ratio", "16:9"], env=env)
    assert (made.exit_code, made.stdout) == (0, "cat-edit.jpg\n")
    result = run_cli(["history", "--report", "past.html"], env=env)
    assert (result.exit_code, result.stderr) == (0, "wrote the report past.html\n")
    page = (sample.parent / "past.html").read_text()
    assert "Input<br>cat.png" in page and "Made from the prompt alone" not in page
    assert "ratio 16:9" in page and "ratio auto" not in page
    assert page.count("data:image/jpeg;base64,") == 2  # the input's thumbnail, the result's
