"""``nanoedit chat``: one image edited turn by turn at a terminal, each turn the next of its
thread.

The installed command runs on a pseudo-terminal that is its controlling terminal, as a
person's is: what it draws is read from there, prompts are typed there once the ``> `` it
waits with is drawn (never after a sleep), and Ctrl-C typed there interrupts it. Every turn
goes to the served sandbox over loopback; the journal and the files on disk say what became
of them."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

from conftest import Served, journal_jobs, one_backend_env, paid, run_cli, wait_for
from PIL import Image
from test_preview import Pixel, cells_of, expected_cells, settled_lines

from nanoedit.output.preview import ROWS_KEPT, Area, halfblock_pixels
from nanoedit.sandbox import ReceivedRequest

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
PRO = "gemini-3-pro-image"
COLUMNS, ROWS = 80, 30
# Any escape a terminal acts on: colours, the cursor, readline's bracketed paste.
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = "> "


def _take_the_terminal() -> None:
    """In the child, after setsid: make stdin (the pseudo-terminal) the controlling terminal,
    so that Ctrl-C typed there is a SIGINT to the chat, as at a real one."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class OnTerminal:
    """``nanoedit chat ARGS`` on a COLUMNS x ROWS pseudo-terminal: stdin, stdout and stderr."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        inherited = {
            name: value
            for name, value in os.environ.items()
            if "proxy" not in name.lower() and name not in ("COLUMNS", "LINES", "NO_COLOR")
        }
        self.process = subprocess.Popen(
            [NANOEDIT, "chat", *args], stdin=terminal, stdout=terminal, stderr=terminal,
            env=inherited | {"TERM": "xterm-256color", "COLORTERM": "truecolor"} | env,
            start_new_session=True, preexec_fn=_take_the_terminal,
        )  # fmt: skip
        os.close(terminal)
        self.chunks: list[bytes] = []
        self.lock = threading.Lock()
        self.typed = 0
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        # Read while the program runs: a full terminal buffer would block its writes.
        while True:
            try:
                chunk = os.read(self.controller, 65536)
            except OSError:  # EIO: the program closed its end
                return
            if not chunk:
                return
            with self.lock:
                self.chunks.append(chunk)

    def screen(self) -> str:
        """All it drew so far, escapes and all."""
        with self.lock:
            return b"".join(self.chunks).decode("utf-8", "replace")

    def text(self) -> str:
        """What it drew, without escapes, one string a line."""
        return ESCAPE.sub("", self.screen()).replace("\r\n", "\n")

    def wait_for(self, text: str, count: int = 1) -> None:
        """Wait until ``text`` has been drawn ``count`` times."""
        try:
            wait_for(lambda: self.text().count(text) >= count, f"{text!r} drawn {count} times")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen ends:\n{self.text()[-3000:]}") from None

    def type(self, line: str) -> None:
        """Type ``line`` and Enter at the next prompt, once it is drawn."""
        self.typed += 1
        self.wait_for(PROMPT, self.typed)
        os.write(self.controller, line.encode() + b"\r")

    def press(self, key: bytes) -> None:
        """Press a key (Ctrl-C is b"\\x03", Ctrl-D b"\\x04") now."""
        os.write(self.controller, key)

    def end(self) -> int:
        """Wait for the chat to end; its exit code."""
        try:
            code = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.reader.join(timeout=10)
            os.close(self.controller)
        return code


def gemini(served: Served) -> dict[str, str]:
    return one_backend_env(served, "gemini")


def roles(request: ReceivedRequest) -> list[str]:
    return [content["role"] for content in request.json["contents"]]


Cells = list[list[tuple[Pixel, Pixel | None]]]


def previews(screen: str) -> list[Cells]:
    """Each picture drawn in half blocks, as rows of cells: the runs of lines that hold
    nothing else, among the lines a terminal keeps (a live display's redraws gone)."""
    found: list[Cells] = []
    run: Cells = []
    cells = re.compile(r"^(\x1b\[38;2;[0-9;]+m[▀▄]+\x1b\[0m)+$")
    for line in [*settled_lines(screen), ""]:
        if cells.match(line):
            run.append(cells_of(line))
        elif run:
            found.append(run)
            run = []
    return found


def drawn(path: str) -> Cells:
    """The half blocks an image at ``path`` is drawn with on this terminal."""
    with Image.open(path) as image:
        size = halfblock_pixels(*image.size, Area(COLUMNS, ROWS - ROWS_KEPT))
        return expected_cells(image.convert("RGBA").resize(size, Image.Resampling.BOX))


def test_three_turns_an_undo_and_a_branch_are_a_thread_in_the_history(
    served: Served, sample: Path
) -> None:
    env = gemini(served) | {"NANOEDIT_PREVIEW_PROTOCOL": "halfblocks"}
    chat = OnTerminal(["cat.png", "-m", "nano-banana-pro"], env)
    for line in ("make it night", "add a moon", "add stars", "/undo", "add a sun", "/cost"):
        chat.type(line)
    chat.type("/quit")
    assert chat.end() == 0, chat.text()
    text = chat.text()
    said = [
        "chat on cat.png (turn 0): each line you type is the next turn; /help lists the "
        "commands, /quit or Ctrl-D leaves",
        "turn 1 (job 1, from turn 0): cat-edit.jpg",
        "turn 2 (job 2, from turn 1): cat-edit-edit.jpg",
        "turn 3 (job 3, from turn 2): cat-edit-edit-edit.jpg",
        "back to turn 2: cat-edit-edit.jpg; the next prompt goes on from there",
        "turn 4 (job 4, from turn 2): cat-edit-edit-edit-2.jpg",
        "this chat: 4 turns, 4 images, estimated cost $0.536",
        "4 turns sent; see the thread with: nanoedit history thread 4",
    ]
    lines = text.splitlines()
    assert [line for line in lines if line in said] == said
    # Each result saved as edit saves it, never over another, and decoded whole.
    names = [
        "cat-edit.jpg",
        "cat-edit-edit.jpg",
        "cat-edit-edit-edit.jpg",
        "cat-edit-edit-edit-2.jpg",
    ]
    assert sorted(os.listdir()) == sorted([*names, "cat.png"])
    for name in names:
        with Image.open(name) as image:
            image.load()
            assert (image.format, image.size) == ("JPEG", (1200, 896))
    # Shown where it was made: the image the chat started from, each turn's result, and
    # turn 2's again when /undo went back to it.
    assert previews(chat.screen()) == [
        drawn(path) for path in ("cat.png", *names[:3], names[1], names[3])
    ]
    # The journal holds a thread of that shape: the first turn a plain edit, each later one
    # going on from the turn before, the last from turn 2 again.
    records = journal_jobs()
    assert [record.spec.get("continues") for record in records] == [
        None, {"job": 1, "result": 1}, {"job": 2, "result": 1}, {"job": 2, "result": 1},
    ]  # fmt: skip
    assert [record.prompt for record in records] == [
        "make it night", "add a moon", "add stars", "add a sun"
    ]  # fmt: skip
    assert {(record.backend, record.model, record.state) for record in records} == {
        ("gemini", PRO, "saved")
    }
    one, two, three, four = paid(served)
    assert [roles(request) for request in (one, two, three, four)] == [
        ["user"], ["user", "model", "user"], ["user", "model", "user", "model", "user"],
        ["user", "model", "user", "model", "user"],
    ]  # fmt: skip
    # The branch sends turn 1 and 2 as the third turn did, then its own prompt.
    assert four.json["contents"][:4] == three.json["contents"][:4]
    assert four.json["contents"][4] == {"role": "user", "parts": [{"text": "add a sun"}]}
    shown = run_cli(["history", "thread", "@last"], env=gemini(served))
    assert shown.stdout.splitlines()[0] == (
        "thread of job 4, from job 1: 4 jobs in 2 branches, 4 images, estimated cost $0.536"
    )


def test_chat_on_an_earlier_result_goes_on_with_its_thread_and_checks_its_commands(
    served: Served, sample: Path
) -> None:
    env = gemini(served) | {"NANOEDIT_PREVIEW_PROTOCOL": "none"}
    first = run_cli(["edit", "cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env=env)
    assert first.exit_code == 0, first.stderr
    chat = OnTerminal(["@last"], env)
    for line in ("/undo", "/branch 5", "/ratio 7:3", "/size 3K", "/ratio 16:9", "/bogus"):
        chat.type(line)
    chat.type("add a moon")
    chat.type("/branch @1")
    chat.type("/undo")
    chat.type("//r/aww style")
    chat.wait_for(PROMPT, chat.typed + 1)
    chat.press(b"\x04")  # Ctrl-D at the prompt
    assert chat.end() == 0, chat.text()
    lines = chat.text().splitlines()
    for message in (
        "error: nothing to undo: turn 0 is where this chat started (or was taken with /branch); "
        "/branch N or /branch @ID goes on from another image",
        "error: /branch takes a turn of this chat (0 to 0) or a job of the history (@ID, @ID.N, "
        "@last), and 5 is neither",
        "error: invalid ratio '7:3'; use one of: auto, 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, "
        "16:9, 21:9, 1:4, 4:1, 1:8, 8:1",
        "error: invalid size '3K'; use one of: 512, 1K, 2K, 4K",
        "ratio 16:9 from the next turn",
        "error: there is no command /bogus; /help lists them",
        "turn 1 (job 2, from turn 0): cat-edit-edit.jpg",
        "at job 1: cat-edit.jpg; the next prompt goes on from there",
        "error: nothing to undo: job 1 is where this chat started (or was taken with /branch); "
        "/branch N or /branch @ID goes on from another image",
        "turn 2 (job 3, from job 1): cat-edit-edit-2.jpg",
        "2 turns sent; see the thread with: nanoedit history thread 3",
    ):
        assert message in lines, chat.text()
    records = journal_jobs()
    # Both turns go on from job 1, the image the chat started from, at the ratio set.
    assert [record.spec.get("continues") for record in records] == [
        None, {"job": 1, "result": 1}, {"job": 1, "result": 1},
    ]  # fmt: skip
    assert [record.prompt for record in records[1:]] == ["add a moon", "/r/aww style"]
    assert [record.spec["options"]["ratio"] for record in records[1:]] == ["16:9", "16:9"]
    for name in ("cat-edit-edit.jpg", "cat-edit-edit-2.jpg"):
        with Image.open(name) as image:
            assert image.size == (1376, 768)
    assert [roles(request) for request in paid(served)] == [
        ["user"], ["user", "model", "user"], ["user", "model", "user"],
    ]  # fmt: skip


def test_ctrl_c_during_a_turn_saves_its_image_and_ctrl_c_at_the_prompt_asks(
    held_gemini: tuple[Served, threading.Event], sample: Path
) -> None:
    served, release = held_gemini
    env = gemini(served) | {"NANOEDIT_PREVIEW_PROTOCOL": "none"}
    chat = OnTerminal(["cat.png", "-m", "nano-banana-pro"], env)
    release.clear()
    chat.type("make it night")
    wait_for(lambda: len(paid(served)) == 1, "the turn's request")
    chat.press(b"\x03")
    chat.wait_for(
        "warning: Ctrl-C: stopping; no new job is sent, the 1 job under way finishes and "
        "saves: job 1 (cat.png). Ctrl-C again aborts; nanoedit resume takes them up later"
    )
    release.set()
    # The paid image is saved, the turn is the chat's, and the chat waits for the next.
    chat.wait_for("turn 1 (job 1, from turn 0): cat-edit.jpg")
    chat.wait_for(PROMPT, 2)
    chat.press(b"\x03")
    chat.wait_for("leave the chat? [y/N] ")
    chat.typed += 1  # the question took the place of a prompt
    os.write(chat.controller, b"n\r")
    chat.type("/cost")
    chat.wait_for("this chat: 1 turn, 1 image, estimated cost $0.134")
    chat.wait_for(PROMPT, 4)
    chat.press(b"\x03")
    chat.wait_for("leave the chat? [y/N] ", 2)
    chat.press(b"\x03")  # a second Ctrl-C leaves
    assert chat.end() == 0, chat.text()
    assert chat.text().splitlines()[-1] == (
        "1 turn sent; see the thread with: nanoedit history thread 1"
    )
    (record,) = journal_jobs()
    assert (record.state, record.saved_paths) == ("saved", [Path("cat-edit.jpg")])
    with Image.open("cat-edit.jpg") as image:
        assert image.size == (1200, 896)
    assert len(paid(served)) == 1


def test_chat_off_a_terminal_is_refused_and_points_to_edit_continue(
    served: Served, sample: Path
) -> None:
    message = (
        "error: chat reads its prompts from a terminal, and stdin is not one; in a script, go "
        'on turn by turn with: nanoedit edit @last --continue -p "..."\n'
    )
    result = run_cli(["chat", "cat.png"], env=gemini(served), stdin="make it night\n")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)
    # The installed command too, its stdin a pipe.
    done = subprocess.run(
        [NANOEDIT, "chat", "cat.png"], input="make it night\n", capture_output=True, text=True,
        env=os.environ | gemini(served), timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)
    assert paid(served) == []
    assert not Path(os.environ["NANOEDIT_DATA_DIR"]).exists()
    assert sorted(os.listdir()) == ["cat.png"]
