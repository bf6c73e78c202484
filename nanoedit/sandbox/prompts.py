"""How long a prompt may be: Google's image models take a bounded number of input tokens, and
every emulated API refuses a request past it, each in its own words.

What is documented and what is inferred:

- Google's limits are what ``models.get`` reports as ``inputTokenLimit`` (32,768 for
  gemini-2.5-flash-image, 131,072 for the 3.x image models), and its refusal is documented by
  its answers: HTTP 400 INVALID_ARGUMENT, "The input token count (N) exceeds the maximum
  number of tokens allowed (M)." (:func:`google_message`).
- The resellers relay to Google, so the same limit holds behind each of them; how each says
  so is inferred from how it reports any other refusal (see each API's module): the
  OpenAI-compatible gateway relays Google's words in its error object, duomi ends the task in
  state error, fal refuses the field with a 422 validation error, Replicate with a 422
  problem, OpenRouter with its 400 context-length error.
- Tokens are counted as the sandbox bills them (about four bytes of text a token, a fixed
  count per image), not with Google's tokenizer.
"""

from __future__ import annotations

import math

from nanoedit.sandbox.catalog import Family, Model

INPUT_TOKEN_LIMITS: dict[Family, int] = {
    Family.FLASH: 32_768,
    Family.PRO: 131_072,
    Family.FLASH_3: 131_072,
    Family.FLASH_21: 131_072,
    Family.LITE: 131_072,
}
# Tokens billed per input image: 258 on 2.5; the 3.x model cards say 560.
INPUT_IMAGE_TOKENS: dict[Family, int] = {
    Family.FLASH: 258, Family.PRO: 560, Family.FLASH_3: 560, Family.FLASH_21: 560,
    Family.LITE: 560,
}  # fmt: skip
# About what Google's tokenizer makes of English text.
BYTES_PER_TOKEN = 4


def text_tokens(text: str) -> int:
    """The tokens a text counts for."""
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)


def input_limit(model: Model) -> int:
    """The most input tokens ``model`` takes."""
    return INPUT_TOKEN_LIMITS[model.family]


def input_tokens(model: Model, prompt: str, images: int) -> int:
    """The input tokens of a request to ``model``: its prompt and ``images`` images."""
    return text_tokens(prompt) + INPUT_IMAGE_TOKENS[model.family] * images


def prompt_characters(model: Model) -> int:
    """The longest prompt, in characters, a schema in front of ``model`` lets through: its
    input limit in plain text (inferred, as no reseller publishes one)."""
    return input_limit(model) * BYTES_PER_TOKEN


def google_message(count: int, limit: int) -> str:
    """Google's words for a request of ``count`` input tokens to a model that takes
    ``limit``."""
    return (
        f"The input token count ({count}) exceeds the maximum number of tokens allowed ({limit})."
    )
