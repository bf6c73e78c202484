"""Presets through the MCP server's tools: a real server process over stdio, its runs against
the served sandbox; the request carries the preset's template and ratio, an argument given
wins over the preset, and an unknown preset is a usage error with nothing sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Served, config_file, one_backend_env, paid
from mcp.client.session import ClientSession
from test_mcp import body, with_server


def test_the_image_tools_take_a_preset_and_an_argument_given_wins(
    isolated: Path, served: Served
) -> None:
    config = config_file()
    config.parent.mkdir(parents=True)
    config.write_text('[presets.poster]\nprompt = "{prompt}, as a poster"\nratio = "3:4"\n')
    config.chmod(0o600)
    answers: list[Any] = []

    async def client(session: ClientSession) -> None:
        for arguments in (
            {"prompt": "a red fox", "preset": "thumbnail"},
            {"prompt": "a boat", "preset": "poster", "ratio": "1:1"},
            {"prompt": "x", "preset": "thumbnial"},
        ):
            answers.append(await session.call_tool("generate_image", arguments))
        answers.append(
            await session.call_tool(
                "estimate_cost", {"prompt": "a red fox", "preset": "poster", "count": 2}
            )
        )

    with_server([], one_backend_env(served, "gemini"), isolated, client)
    fox, boat, unknown, estimate = answers
    assert not fox.is_error and not boat.is_error, (fox, boat)
    requests = paid(served)
    assert [r.json["contents"][0]["parts"][0]["text"] for r in requests] == [
        "a red fox, as a 16:9 video thumbnail: one clear focal subject large in the frame, a "
        "bold composition that reads at a glance when small, strong contrast and saturated "
        "colours, simple uncluttered background, clear space on one side for a title",
        "a boat, as a poster",
    ]
    assert [r.json["generationConfig"]["imageConfig"] for r in requests] == [
        {"aspectRatio": "16:9"},
        {"aspectRatio": "1:1"},
    ]
    assert body(fox)["jobs"][0]["prompt"].startswith("a red fox, as a 16:9 video thumbnail")
    assert unknown.is_error
    assert body(unknown)["error"]["message"] == (
        "no preset is called 'thumbnial'; did you mean thumbnail? the presets are: icon, "
        "product, sticker, thumbnail, poster (nanoedit presets shows them)"
    )
    assert body(unknown)["error"]["exit_code"] == 2
    assert not estimate.is_error, estimate
    assert (body(estimate)["jobs"], body(estimate)["images"]) == (1, 2)
    assert len(paid(served)) == 2  # neither the unknown preset nor the estimate sent anything
