"""``edit_image`` with a mask or a region through ``nanoedit mcp`` (spawned, over stdio, against
the served sandbox): the promise holds as on the command line, the drift is in the answer, and
a mask outside the server's folders is refused before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Served, backend_env, paid
from mcp.client.session import ClientSession
from mcp_types import CallToolResult
from PIL import Image
from test_mcp import body, with_server

from nanoedit.sandbox import sample_image

CAT = sample_image("cat.png")[0]


def test_edit_image_with_a_region_keeps_the_outside_and_answers_the_drift(
    served: Served, isolated: Path, tmp_path: Path
) -> None:
    (isolated / "cat.png").write_bytes(CAT)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("L", (640, 480), 255).save(outside / "mask.png")
    answers: dict[str, CallToolResult] = {}

    async def client(session: ClientSession) -> None:
        answers["region"] = await session.call_tool(
            "edit_image",
            {
                "images": ["cat.png"],
                "prompt": "a hat",
                "region": "10,20,100,50",
                "feather": 0,
                "crop": True,
            },
        )
        answers["away"] = await session.call_tool(
            "edit_image",
            {"images": ["cat.png"], "prompt": "a hat", "mask": str(outside / "mask.png")},
        )

    with_server([], backend_env(served), isolated, client)
    region: dict[str, Any] = body(answers["region"])
    assert region["ok"] is True
    [job] = region["jobs"]
    [output] = job["outputs"]
    assert output["path"] == str(isolated / "cat-edit.png")
    assert output["drift"]["mean"] > 0 and output["drift"]["over"] is False
    with Image.open(isolated / "cat.png") as before, Image.open(output["path"]) as after:
        old, new = before.convert("RGB"), after.convert("RGB")
        moved = [
            (x, y)
            for y in range(480)
            for x in range(640)
            if old.getpixel((x, y)) != new.getpixel((x, y))
        ]
    assert moved and all(10 <= x < 110 and 20 <= y < 70 for x, y in moved)
    away = body(answers["away"])
    assert away["ok"] is False and away["error"]["exit_code"] == 4
    assert away["error"]["message"] == (
        f"the mask {outside / 'mask.png'} is outside the folders this MCP server may read "
        f"({isolated}); copy it into one of them and name its path"
    )
    assert len(paid(served)) == 1  # the refused call sent nothing
