"""Render a run into the token ids one model sees, remembering where each step's content lies.

Two renderings, chosen per checkpoint pair:

* **chat template** (when the tokenizer has one and ``chat_template`` is not False): the run
  becomes a conversation; action steps are ``assistant`` messages, observations ``user``
  messages (tool output is prefixed with the tool's name, since few templates accept
  arbitrary ``tool`` turns). Every message's text starts with ``[agent]: `` so that the
  model sees who spoke even where the template drops ``name``. Consecutive messages of the
  same role are kept as separate turns when the template allows it; a template that refuses
  the conversation is an error (pass ``chat_template=False``), never a silent fallback.
* **plain** (no template): ``[agent]: content`` followed by a blank line, per step.

In both, the text is cut into segments at the boundaries of each step's content and each
segment is tokenised on its own, so a step's tokens never merge with the text around them
and its span is exact. Only the content tokens of a step are scored; headers and template
tokens are context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attribution.errors import ConfigError
from attribution.types import Run

__all__ = ["Rendered", "render_run", "has_chat_template", "header", "SEPARATOR"]

SEPARATOR = "\n\n"


@dataclass
class Rendered:
    """Token ids of a rendered run and each step's ``[start, end)`` content span in them.

    ``pieces[i]`` cuts step ``i``'s content into one string per content token (the text from
    the previous token's end to this one's, so they join back into the content exactly);
    a token that shares its characters with the previous one (byte fallback) gets ``""``.
    """

    input_ids: list[int]
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    mode: str = "plain"
    pieces: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _encode(tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _encode_with_pieces(tokenizer: Any, text: str) -> tuple[list[int], list[str]]:
    """Token ids of ``text`` and the text each token covers (see :class:`Rendered`)."""
    if not text:
        return [], []
    if not getattr(tokenizer, "is_fast", False):
        ids = _encode(tokenizer, text)
        return ids, tokenizer.batch_decode([[t] for t in ids])
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces, prev = [], 0
    for _, end in enc["offset_mapping"]:
        pieces.append(text[prev:end] if end > prev else "")
        prev = max(prev, end)
    if pieces and prev < len(text):
        pieces[-1] += text[prev:]
    return list(enc["input_ids"]), pieces


def header(agent: str) -> str:
    """The text before a step's content: who spoke."""
    return f"[{agent}]: "


def render_run(run: Run, tokenizer: Any, *, chat_template: bool | str = "auto") -> Rendered:
    """Render ``run`` for ``tokenizer``.

    Parameters
    ----------
    run : Run
    tokenizer : a Hugging Face tokenizer
    chat_template : {"auto", True, False}
        "auto" uses the tokenizer's chat template when it has one.

    Returns
    -------
    Rendered
        ``spans[i]`` is the token span of step ``i``'s content, for every step.
    """
    if chat_template not in ("auto", True, False):
        raise ConfigError(f"chat_template must be 'auto', True or False. Got {chat_template!r} instead.")
    use_template = has_chat_template(tokenizer) if chat_template == "auto" else bool(chat_template)
    if use_template and not has_chat_template(tokenizer):
        raise ConfigError("chat_template=True but the tokenizer has no chat template")
    if use_template:
        segments = _template_segments(run, tokenizer)
        mode = "chat_template"
    else:
        segments = []
        for step in run.steps:
            segments.append((None, header(step.agent)))
            segments.append((step.index, step.content))
            segments.append((None, SEPARATOR))
        mode = "plain"

    ids: list[int] = []
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and not use_template:
        ids.append(bos)
    spans: dict[int, tuple[int, int]] = {}
    pieces: dict[int, list[str]] = {}
    for step_index, text in segments:
        start = len(ids)
        if step_index is None:
            ids.extend(_encode(tokenizer, text))
        else:
            seg, pieces[step_index] = _encode_with_pieces(tokenizer, text)
            ids.extend(seg)
            spans[step_index] = (start, len(ids))
    return Rendered(input_ids=ids, spans=spans, mode=mode, pieces=pieces)


def _template_segments(run: Run, tokenizer: Any) -> list[tuple[int | None, str]]:
    messages = []
    bodies = []
    for step in run.steps:
        head = header(step.agent)
        messages.append({"role": "assistant" if step.is_action else "user", "content": head + step.content})
        bodies.append((step.index, head, step.content))
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception as err:  # templates raise jinja errors of their own kinds
        raise ConfigError(
            f"the tokenizer's chat template refused run {run.run_id!r} ({err}); "
            "score with chat_template=False (--no-chat-template)"
        ) from err
    segments: list[tuple[int | None, str]] = []
    cursor = 0
    for index, head, content in bodies:
        at = text.find(head + content, cursor)
        if at < 0:
            raise ConfigError(
                f"the chat template altered the text of step {index} of run {run.run_id!r}; "
                "score with chat_template=False (--no-chat-template)"
            )
        body = at + len(head)
        segments.append((None, text[cursor:body]))
        segments.append((index, content))
        cursor = body + len(content)
    segments.append((None, text[cursor:]))
    return segments
