"""Render a run into the token ids one model sees, remembering where each step's content lies.

Two renderings, chosen per checkpoint pair:

* **chat template** (when the tokenizer has one and ``chat_template`` is not False): the run
  becomes a conversation; action steps are ``assistant`` messages, observations ``user``
  messages (tool output is prefixed with the tool's name, since few templates accept
  arbitrary ``tool`` turns). Every message's text starts with ``[agent]: `` so that the
  model sees who spoke even where the template drops ``name``. Consecutive messages of the
  same role are kept as separate turns when the template allows it; a template that refuses
  the conversation is an error (pass ``chat_template=False``), never a silent fallback.
  Each step's content is then *located* in the template's text, after the previous one:
  as written, else with trailing whitespace trimmed, else with both ends trimmed (templates
  such as ``{{ m['content'] | trim }}``). The characters found are the ones scored; the
  whitespace a template trimmed is not in the model's input, so it is not scored. A
  template that rewrites the content otherwise (upper-casing, escaping) is an error.
  **Tool calls.** Where the template has a tool-call form of its own (its source mentions
  ``tool_calls``), an action step with :attr:`~attribution.types.Step.tool_calls` becomes an
  assistant message with its plain text as content and ``tool_calls=[{"type": "function",
  "function": {"name": ..., "arguments": ...}}]``, arguments as the agent emitted them (the
  raw string, or the decoded value where the log holds one), so that the model sees its calls
  in the form it was trained on. The step's scored characters then run from its content to
  the end of its last call, each call's name and arguments located verbatim after the
  content. If a call cannot be located verbatim (a template that re-serialises the
  arguments), the whole run falls back to the text form below, with a one-line
  :class:`~attribution.errors.ParseWarning` naming the run. Steps without structured calls,
  and templates without a tool-call form, use the text form: the calls are lines
  ``{"name": ..., "arguments": ...}`` at the end of the content.
* **plain** (no template): ``[agent]: content`` followed by a blank line, per step.

**Tokenisation.** The whole rendered text is encoded once, as the model would see it in
deployment, and each token is mapped back to characters with the tokenizer's offsets
(``return_offsets_mapping``). A step's tokens are those whose characters overlap its
content. **A token that straddles a boundary** (byte-level BPE merges the header's space
into the first word, ``" word"``; a SentencePiece ``"▁word"`` holds the space before it)
**belongs to the step whose content holds its first content character**, so the first word
of a step is scored with the token the model really predicts; a token that overlaps no
content (header, separator, template text) is context. ``pieces`` (the token texts) are
clipped to the content and join back into it exactly. Tokenizers without offsets (slow,
Python ones) fall back to encoding header, content and separator segment by segment.
Only the content tokens of a step are scored; headers and template tokens are context.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from attribution.errors import ConfigError, ParseWarning
from attribution.parse.common import tool_call_text
from attribution.types import Run, Step

__all__ = ["Rendered", "render_run", "render_text", "has_chat_template", "has_tool_call_form", "header", "SEPARATOR"]

SEPARATOR = "\n\n"


@dataclass
class Rendered:
    """Token ids of a rendered run and each step's ``[start, end)`` content span in them.

    ``pieces[i]`` cuts step ``i``'s scored characters into one string per content token (the
    text from the previous token's end to this one's, clipped to the content, so they join
    back into it exactly); a token that shares its characters with the previous one (byte
    fallback) gets ``""``. ``text`` is the rendered text and ``chars[i]`` the ``[start, end)``
    characters of step ``i``'s content in it: the scored characters (with a trimming chat
    template, the trimmed content).
    """

    input_ids: list[int]
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    mode: str = "plain"
    pieces: dict[int, list[str]] = field(default_factory=dict)
    text: str = ""
    chars: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def has_tool_call_form(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders ``tool_calls`` in a form of its own."""
    return "tool_calls" in str(getattr(tokenizer, "chat_template", None) or "")


def _encode(tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _clip_pieces(text: str, offsets: list[tuple[int, int]], cs: int, ce: int) -> list[str]:
    """The text each token covers inside ``text[cs:ce]``; they join back into it exactly."""
    pieces, cur = [], cs
    for _, end in offsets:
        end = min(end, ce)
        pieces.append(text[cur:end] if end > cur else "")
        cur = max(cur, end)
    if pieces and cur < ce:
        pieces[-1] += text[cur:ce]
    return pieces


def _encode_with_pieces(tokenizer: Any, text: str) -> tuple[list[int], list[str]]:
    """Token ids of ``text`` and the text each token covers (see :class:`Rendered`)."""
    if not text:
        return [], []
    if not getattr(tokenizer, "is_fast", False):
        ids = _encode(tokenizer, text)
        return ids, tokenizer.batch_decode([[t] for t in ids])
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return list(enc["input_ids"]), _clip_pieces(text, list(enc["offset_mapping"]), 0, len(text))


def header(agent: str) -> str:
    """The text before a step's content: who spoke."""
    return f"[{agent}]: "


def render_text(run: Run, tokenizer: Any, *, chat_template: bool | str = "auto") -> tuple[str, dict[int, tuple[int, int]], str]:
    """The rendered text of ``run``, each step's ``[start, end)`` content characters in it, and the mode."""
    if chat_template not in ("auto", True, False):
        raise ConfigError(f"chat_template must be 'auto', True or False. Got {chat_template!r} instead.")
    use_template = has_chat_template(tokenizer) if chat_template == "auto" else bool(chat_template)
    if use_template and not has_chat_template(tokenizer):
        raise ConfigError("chat_template=True but the tokenizer has no chat template")
    if use_template:
        text, chars = _template_text(run, tokenizer)
        return text, chars, "chat_template"
    parts, chars, at = [], {}, 0
    for step in run.steps:
        head = header(step.agent)
        chars[step.index] = (at + len(head), at + len(head) + len(step.content))
        parts += [head, step.content, SEPARATOR]
        at += len(head) + len(step.content) + len(SEPARATOR)
    return "".join(parts), chars, "plain"


def render_run(run: Run, tokenizer: Any, *, chat_template: bool | str = "auto") -> Rendered:
    """Render ``run`` for ``tokenizer`` and encode it once (see the module docstring).

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
    text, chars, mode = render_text(run, tokenizer, chat_template=chat_template)
    ids: list[int] = []
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and mode == "plain":
        ids.append(bos)
    if not getattr(tokenizer, "is_fast", False):
        return _render_segments(text, chars, tokenizer, ids, mode)
    # verbose=False: runs longer than model_max_length are windowed (plan_windows), not truncated.
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    owner = _token_owners(offsets, chars)
    base = len(ids)
    ids.extend(enc["input_ids"])
    by_step: dict[int, list[int]] = {}
    for t, o in enumerate(owner):
        if o is not None:
            by_step.setdefault(o, []).append(t)
    spans: dict[int, tuple[int, int]] = {}
    pieces: dict[int, list[str]] = {}
    for step_index, (cs, ce) in chars.items():
        mine = by_step.get(step_index, [])
        if mine:
            lo, hi = mine[0], mine[-1] + 1
            if hi - lo != len(mine):  # impossible with ordered offsets; a broken tokenizer is not scored wrong
                raise ConfigError(f"the tokenizer's offsets of run {run.run_id!r} put step {step_index}'s tokens out of order")
        else:  # no content tokens: an empty span where the content would be
            lo = hi = sum(1 for a, _ in offsets if a < cs)
        spans[step_index] = (base + lo, base + hi)
        pieces[step_index] = _clip_pieces(text, offsets[lo:hi], cs, ce) if mine else []
    return Rendered(input_ids=ids, spans=spans, mode=mode, pieces=pieces, text=text, chars=chars)


def _token_owners(offsets: list[tuple[int, int]], chars: dict[int, tuple[int, int]]) -> list[int | None]:
    """Per token, the step whose content holds its first content character (None: context)."""
    ranges = sorted((cs, ce, i) for i, (cs, ce) in chars.items() if ce > cs)
    owner: list[int | None] = []
    j = 0
    for a, b in offsets:
        while j < len(ranges) and ranges[j][1] <= a:
            j += 1
        if j == len(ranges):
            owner.append(None)
            continue
        cs, ce, i = ranges[j]
        if b > a:
            owner.append(i if max(a, cs) < min(b, ce) else None)
        else:  # a token with no characters of its own counts where it sits
            owner.append(i if cs < a < ce else None)
    return owner


def _render_segments(text: str, chars: dict[int, tuple[int, int]], tokenizer: Any, ids: list[int], mode: str) -> Rendered:
    """Fallback for tokenizers without offsets: header, content and separator encoded apart."""
    spans: dict[int, tuple[int, int]] = {}
    pieces: dict[int, list[str]] = {}
    cursor = 0
    for step_index, (cs, ce) in sorted(chars.items(), key=lambda kv: kv[1]):
        ids.extend(_encode(tokenizer, text[cursor:cs]))
        start = len(ids)
        seg, pieces[step_index] = _encode_with_pieces(tokenizer, text[cs:ce])
        ids.extend(seg)
        spans[step_index] = (start, len(ids))
        cursor = ce
    ids.extend(_encode(tokenizer, text[cursor:]))
    return Rendered(input_ids=ids, spans=spans, mode=mode, pieces=pieces, text=text, chars=chars)


def _locate(text: str, cursor: int, head: str, content: str) -> tuple[int, int] | None:
    """Where ``content`` (as written, else trimmed) lies in ``text`` after ``cursor``, behind ``head``."""
    for body in dict.fromkeys((content, content.rstrip(), content.strip())):
        for prefix in dict.fromkeys((head, head.rstrip())):
            if body or prefix:
                at = text.find(prefix + body, cursor)
                if at >= 0:
                    return at + len(prefix), at + len(prefix) + len(body)
    return None


class _NotVerbatim(Exception):
    """A step's tool calls are not in the template's text as the agent emitted them."""


def _template_text(run: Run, tokenizer: Any) -> tuple[str, dict[int, tuple[int, int]]]:
    if has_tool_call_form(tokenizer) and any(s.is_action and s.tool_calls for s in run.steps):
        try:
            return _template_pass(run, tokenizer, tool_form=True)
        except _NotVerbatim as why:
            where = f"{run.source}, run {run.run_id!r}" if run.source else f"run {run.run_id!r}"
            warnings.warn(ParseWarning(
                f"{where}: the chat template does not render {why} as emitted, so the run's tool calls "
                "are scored in the text form ({\"name\": ..., \"arguments\": ...} lines in the content)"
            ), stacklevel=3)
    return _template_pass(run, tokenizer, tool_form=False)


def _plain_text(step: Step) -> str | None:
    """``step.content`` less the text lines of its tool calls; None if it does not end with them."""
    suffix = "\n".join(tool_call_text(c.name, c.arguments) for c in step.tool_calls)
    if not step.content.endswith(suffix):
        return None
    text = step.content[: len(step.content) - len(suffix)]
    if not text:
        return text
    return text[:-1] if text.endswith("\n") else None


def _message(step: Step, plain: str | None) -> dict[str, Any]:
    role = "assistant" if step.is_action else "user"
    if plain is None:
        return {"role": role, "content": header(step.agent) + step.content}
    calls = [{"type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in step.tool_calls]
    return {"role": role, "content": header(step.agent) + plain, "tool_calls": calls}


def _arguments_forms(arguments: Any) -> list[str]:
    """The texts the arguments may appear as: the emitted string, or the decoded value's JSON."""
    if isinstance(arguments, str):
        return [a for a in dict.fromkeys((arguments, arguments.strip())) if a]
    return list(dict.fromkeys((
        json.dumps(arguments, ensure_ascii=False),
        json.dumps(arguments, ensure_ascii=False, separators=(",", ":")),
        json.dumps(arguments),
    )))


def _locate_calls(text: str, at: int, step: Step) -> int:
    """The end of ``step``'s last tool call in ``text``, each call's name then arguments found after ``at``."""
    for k, call in enumerate(step.tool_calls):
        found = text.find(call.name, at)
        if found < 0:
            raise _NotVerbatim(f"the name of tool call {k} of step {step.index}")
        at = found + len(call.name)
        if call.arguments is None or call.arguments == "":
            continue
        for form in _arguments_forms(call.arguments):
            found = text.find(form, at)
            if found >= 0:
                at = found + len(form)
                break
        else:
            raise _NotVerbatim(f"the arguments of tool call {k} ({call.name!r}) of step {step.index}")
    return at


def _template_pass(run: Run, tokenizer: Any, *, tool_form: bool) -> tuple[str, dict[int, tuple[int, int]]]:
    plains = {s.index: _plain_text(s) if tool_form and s.is_action and s.tool_calls else None for s in run.steps}
    messages = [_message(step, plains[step.index]) for step in run.steps]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception as err:  # templates raise jinja errors of their own kinds
        if tool_form:
            raise _NotVerbatim(f"the tool calls ({_first_line(err)})") from err
        raise ConfigError(
            f"the tokenizer's chat template refused run {run.run_id!r} ({_first_line(err)}); "
            "score with chat_template=False (--no-chat-template)"
        ) from err
    chars: dict[int, tuple[int, int]] = {}
    cursor = 0
    for step in run.steps:
        plain = plains[step.index]
        found = _locate(text, cursor, header(step.agent), step.content if plain is None else plain)
        if found is None and plain is not None:
            raise _NotVerbatim(f"the text of step {step.index} next to its tool calls")
        if found is None:
            raise ConfigError(
                f"the chat template altered the text of step {step.index} of run {run.run_id!r} beyond trimming "
                "whitespace; score with chat_template=False (--no-chat-template)"
            )
        if plain is not None:
            found = (found[0], _locate_calls(text, found[1], step))
        chars[step.index] = found
        cursor = found[1]
    return text, chars


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
