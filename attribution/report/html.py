"""Render a :class:`~attribution.types.Diagnosis` as one self-contained HTML file.

The page needs no network: CSS and JS are inlined from ``report.css`` / ``report.js``
beside this module, and a Content-Security-Policy forbids every fetch. All text from
the run is escaped on the server side; the per-token data travels as one JSON blob
(``<script type="application/json">``, with ``<``, ``>`` and ``&`` escaped) from which
the script builds the shaded token spans with ``textContent`` only when a step scrolls
into view or is expanded, so a 130-step, 80k-token run opens with a small DOM.

Colours: one diverging scale (ColorBrewer RdBu) with 0 neutral, red for negative
progress advantage (the ranker's suspects) and blue for positive, symmetric around 0 and
clipped at a robust maximum |value| (:func:`robust_max`), separately for step scores
and per-token log-ratios.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from attribution.io import atomic_write_text
from attribution.types import OBSERVATION, Diagnosis

__all__ = ["COLLAPSE_TOKENS", "LAZY_STEPS", "diverging_color", "render_html", "robust_max", "write_html"]

COLLAPSE_TOKENS = 300
"""Steps with more tokens than this start collapsed (the culprit and gold steps never do)."""

PREVIEW_CHARS = 400
"""About how many characters of text a collapsed step shows before it is expanded."""

LAZY_STEPS = 500
"""Runs with more steps lay out only the steps near the viewport (CSS ``content-visibility``).
Below it every step is laid out at once, so that jump links land exactly and a full-page capture
shows every step; measured in headless Chromium, eager layout costs nothing visible at 130 steps
and ~1.5-4.5 s more to first paint at 2,000 steps (1M tokens), hence the cut."""

ROBUST_QUANTILE = 0.95
MEDIAN_SPREAD = 4.0

# ColorBrewer RdBu, 5 classes, at t = -1, -0.5, 0, 0.5, 1.
PALETTE = ((202, 0, 32), (244, 165, 130), (247, 247, 247), (146, 197, 222), (5, 113, 176))
OBSERVATION_COLOR = "#d4d4d8"
CONTEXT_LANE = "context"
_MINUS = "\u2212"
_DOT = " \u00b7 "
_SURROGATE = re.compile("[\ud800-\udfff]")
# Labels that the header shows; any other label is listed with the settings.
_SHOWN_LABELS = ("mistake_step", "mistake_agent", "mistake_reason", "question", "success")


def robust_max(values: Iterable[float], quantile: float = ROBUST_QUANTILE, spread: float = MEDIAN_SPREAD) -> float:
    """Where the colour scale saturates: the ``quantile`` of ``|values|`` (nearest rank),
    but at most ``spread`` times their median, so that one extreme step among a few does
    not wash out all the others. Falls back to the max, then to 1.

    >>> robust_max([1.0, -2.0, 3.0, -100.0], quantile=0.75)
    3.0
    >>> robust_max([0.1, -0.1, 0.2, -60.0])
    0.4
    >>> robust_max([0.0, 0.0])
    1.0
    """
    mags = sorted(abs(v) for v in values if math.isfinite(v))
    if not mags:
        return 1.0
    rank = min(len(mags) - 1, max(0, math.ceil(quantile * len(mags)) - 1))
    median = mags[(len(mags) - 1) // 2]
    cap = spread * median if median > 0 else math.inf
    for m in (min(mags[rank], cap), mags[-1]):
        if m > 0:
            return m
    return 1.0


def diverging_color(value: float, scale: float) -> str:
    """Hex colour of ``value`` on the diverging palette, clipped at ``±scale``.

    >>> diverging_color(0.0, 1.0), diverging_color(-5.0, 1.0), diverging_color(1.0, 1.0)
    ('#f7f7f7', '#ca0020', '#0571b0')
    """
    t = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    x = (t + 1.0) * 2.0  # 0..4 across the five stops
    i = min(3, int(x))
    f = x - i
    rgb = (round(a + (b - a) * f) for a, b in zip(PALETTE[i], PALETTE[i + 1]))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def write_html(diagnosis: Diagnosis, path: str | Path, *, collapse_tokens: int = COLLAPSE_TOKENS) -> Path:
    """Write :func:`render_html` of ``diagnosis`` to ``path`` (UTF-8, atomically; missing parent
    folders are created) and return the path."""
    path = Path(path)
    atomic_write_text(path, render_html(diagnosis, collapse_tokens=collapse_tokens))
    return path


def render_html(diagnosis: Diagnosis, *, collapse_tokens: int = COLLAPSE_TOKENS) -> str:
    """The report of ``diagnosis`` as one self-contained HTML document.

    Parameters
    ----------
    diagnosis : Diagnosis
        A diagnosed run; ``run_steps`` supplies roles and the text of observations.
    collapse_tokens : int
        Steps with more tokens (or, without tokens, more than four characters per
        token's worth of text) start collapsed, showing their first ``PREVIEW_CHARS``
        characters or so.
    """
    if collapse_tokens < 1:
        raise ValueError(
            f"The 'collapse_tokens' parameter of render_html must be >= 1. Got {collapse_tokens!r} instead."
        )
    return _Page(diagnosis, collapse_tokens).render()


@dataclass
class _StepView:
    index: int
    agent: str
    role: str
    kind: str
    content: str
    to: str | None
    score: float | None
    tokens: list[str]
    logps: list[float]
    ref_logps: list[float]
    beta: float

    @property
    def is_observation(self) -> bool:
        return self.kind == OBSERVATION

    @property
    def text(self) -> str:
        return "".join(self.tokens) if self.tokens else self.content

    @property
    def n_preview(self) -> int:
        """Tokens (or characters, without tokens) shown while collapsed: whole tokens up to PREVIEW_CHARS."""
        if not self.tokens:
            return PREVIEW_CHARS
        used = 0
        for n, tok in enumerate(self.tokens):
            used += len(tok)
            if used > PREVIEW_CHARS:
                return max(1, n)
        return len(self.tokens)

    @property
    def preview(self) -> str:
        return "".join(self.tokens[: self.n_preview]) if self.tokens else self.content[:PREVIEW_CHARS]


def _step_views(d: Diagnosis) -> list[_StepView]:
    """Merge the parsed steps (roles, observation texts) with the scored ones by index."""
    parsed = {int(s["index"]): s for s in d.run_steps}
    scored = {s.index: s for s in d.steps}
    views = []
    for i in sorted(parsed.keys() | scored.keys()):
        p, s = parsed.get(i, {}), scored.get(i)
        agent = s.agent if s is not None else p.get("agent", "?")
        n = min(len(s.tokens), len(s.logps), len(s.ref_logps)) if s is not None else 0
        views.append(
            _StepView(
                index=i,
                agent=str(agent),
                role=str(p.get("role", agent)),
                kind=str(s.kind if s is not None else p.get("kind", OBSERVATION)),
                content=str(p.get("content", "")),
                to=p.get("to"),
                score=s.score if s is not None else None,
                tokens=list(s.tokens[:n]) if s is not None else [],
                logps=list(s.logps[:n]) if s is not None else [],
                ref_logps=list(s.ref_logps[:n]) if s is not None else [],
                beta=s.beta if s is not None else 1.0,
            )
        )
    return views


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute (lone surrogates become U+FFFD; the
    line separators U+2028/2029 become character references, as in the page's JSON)."""
    text = html.escape(_SURROGATE.sub("\ufffd", str(value)), quote=True)
    return text.replace("\u2028", "&#x2028;").replace("\u2029", "&#x2029;")


def _num(value: float | None) -> str:
    """A signed score, with a typographic minus: 2 decimals from 1 up, else 3 significant digits."""
    if value is None:
        return "\u2014"
    text = f"{value:+.2f}" if abs(value) >= 1 or value == 0 else f"{value:+.3g}"
    return text.replace("-", _MINUS)


#: Characters written as JSON escapes inside the page's ``<script>`` block: ``<`` and ``>`` so that
#: no ``</script>`` or ``<!--`` can end or confuse the block, ``&`` for good measure, and the line
#: separators U+2028/2029, which older JavaScript parsers take for line breaks.
_SCRIPT_ESCAPES = {c: f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"}
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def _script_json(obj: Any) -> str:
    r"""JSON that is safe inside ``<script type="application/json">``, whatever the strings hold
    (lone surrogates become U+FFFD).

    >>> print(_script_json({"t": ["</script><!--", "\u2028"]}))
    {"t":["\u003c/script\u003e\u003c!--","\u2028"]}
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda m: _SCRIPT_ESCAPES[m.group()], _SURROGATE.sub("\ufffd", text))


def _asset(name: str) -> str:
    return resources.files("attribution.report").joinpath(name).read_text(encoding="utf-8")


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


class _Page:
    """Builds the page's sections from one diagnosis."""

    def __init__(self, d: Diagnosis, collapse_tokens: int):
        self.d = d
        self.collapse_tokens = collapse_tokens
        self.steps = _step_views(d)
        self.by_index = {s.index: s for s in self.steps}
        self.rank = {i: r for r, i in enumerate(d.top, start=1)}
        self.gold_step = _as_int(d.labels.get("mistake_step"))
        self.gold_agent = d.labels.get("mistake_agent")
        actions = [s for s in self.steps if not s.is_observation]
        self.lanes = list(dict.fromkeys(s.agent for s in actions))
        if len(actions) < len(self.steps):
            self.lanes.append(CONTEXT_LANE)
        self.score_scale = robust_max(s.score for s in actions if s.score is not None)
        self.token_scale = robust_max(s.beta * (a - b) for s in actions for a, b in zip(s.logps, s.ref_logps))

    # -- the document -------------------------------------------------------------
    def render(self) -> str:
        script = _asset("report.js")
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        csp = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
        )
        title = f"Attribution report \u00b7 {self.d.run_id}"
        lazy = ' class="lazy"' if len(self.steps) > LAZY_STEPS else ""
        sections = (self._header, self._timeline, self._overview, self._steps_section, self._details, self._footer)
        body = "\n".join(section() for section in sections)
        return (
            "<!doctype html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="referrer" content="no-referrer">\n'
            f"<title>{_e(title)}</title>\n<style>\n{_asset('report.css')}</style>\n</head>\n"
            f"<body{lazy}>\n" f'<main class="page">\n{body}\n</main>\n'
            '<div id="tip" class="tip" role="tooltip" hidden></div>\n'
            f'<script type="application/json" id="report-data">{_script_json(self._data())}</script>\n'
            f"<script>{script}</script>\n</body>\n</html>\n"
        )

    @staticmethod
    def _footer() -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f'<footer class="foot">Generated by <b>attribution</b> {_e(_version())}'
            f"{_DOT}{stamp}{_DOT}self-contained, no network</footer>"
        )

    def _data(self) -> dict[str, Any]:
        """Per-step tokens (or long texts) for the script; short observation texts are in the DOM."""
        steps: dict[str, Any] = {}
        for s in self.steps:
            if s.tokens:
                steps[str(s.index)] = {
                    "t": s.tokens,
                    "lp": _rounded(s.logps),
                    "rl": _rounded(s.ref_logps),
                    "b": s.beta,
                    "p": s.n_preview,
                }
            elif self._long(s):
                steps[str(s.index)] = {"x": s.content, "p": s.n_preview}
        return {
            "palette": [list(c) for c in PALETTE],
            "tokenScale": self.token_scale,
            "steps": steps,
        }

    # -- sections -----------------------------------------------------------------
    def _header(self) -> str:
        d = self.d
        n_tokens = sum(len(s.tokens) for s in self.steps)
        n_actions = sum(not s.is_observation for s in self.steps)
        n_agents = sum(lane != CONTEXT_LANE for lane in self.lanes)
        meta = [f"{len(self.steps)} steps", f"{n_actions} actions", f"{n_tokens:,} scored tokens", f"{n_agents} agents"]
        if d.source:
            meta.insert(0, f"source <code>{_e(d.source)}</code>")
        meta_html = _DOT.join(meta)
        culprit = self.by_index.get(d.culprit_step)
        sub = f"score {_num(culprit.score if culprit else None)}"
        if d.culprit_step in self.rank:
            sub += f"{_DOT}rank {self.rank[d.culprit_step]} of {len(d.top)}"
        value = f'<a href="#step-{_e(d.culprit_step)}">Step {_e(d.culprit_step)}</a>{_DOT}{_e(d.culprit_agent)}'
        cards = [self._card("Predicted culprit", value, sub, "verdict")]
        if self.gold_step is not None or self.gold_agent is not None:
            cards.append(self._gold_card())
        success = d.labels.get("success")
        if success is not None:
            cards.append(self._card("Run outcome", "succeeded" if success else "failed", "from the labels", "outcome"))
        ckpt = self._checkpoint_summary()
        if ckpt:
            cards.append(self._card("Checkpoints", ckpt, f"{len(d.checkpoints)} pair(s){_DOT}see details", "ckpt"))
        # Caveats first, above the question: the toy pair's verdict or a pair that cannot read the run.
        extras = [f'<p class="warning" role="alert"><span>Warning</span>{_e(w)}</p>' for w in d.warnings]
        question = d.labels.get("question")
        if question:
            extras.append(f'<p class="question"><span>Question</span>{_e(question)}</p>')
        reason = d.labels.get("mistake_reason")
        if reason:
            extras.append(f'<p class="question"><span>Gold reason</span>{_e(reason)}</p>')
        return (
            '<header class="top">\n<div class="eyebrow">Failure attribution report</div>\n'
            f'<h1>Run <span class="runid">{_e(d.run_id)}</span></h1>\n'
            f'<div class="meta">{meta_html}</div>\n'
            f'<div class="cards">{"".join(cards)}</div>\n{"".join(extras)}</header>'
        )

    def _gold_card(self) -> str:
        d = self.d
        parts = []
        if self.gold_step is not None:
            parts.append(f'<a href="#step-{_e(self.gold_step)}">Step {_e(self.gold_step)}</a>')
        if self.gold_agent is not None:
            parts.append(_e(self.gold_agent))
        checks = []
        if self.gold_step is not None:
            off = d.culprit_step - self.gold_step
            checks.append(_check(off == 0, "step matches" if off == 0 else f"step off by {abs(off)}"))
        if self.gold_agent is not None:
            same = self.gold_agent == d.culprit_agent
            checks.append(_check(same, "agent matches" if same else "agent differs"))
        return self._card("Gold mistake", _DOT.join(parts), " ".join(checks), "gold")

    @staticmethod
    def _card(label: str, value: str, sub: str, cls: str) -> str:
        return (
            f'<div class="card {cls}"><div class="label">{_e(label)}</div>'
            f'<div class="value">{value}</div><div class="sub">{sub}</div></div>'
        )

    def _checkpoint_summary(self) -> str:
        rows = []
        for c in list(self.d.checkpoints.values())[:2]:
            pol, ref = (_e(_checkpoint_name(c.get(k))) for k in ("policy", "reference"))
            rows.append(f'<div class="ck"><code>{pol}</code> <span class="vs">vs</span> <code>{ref}</code></div>')
        return "".join(rows)

    def _timeline(self) -> str:
        d = self.d
        n = len(self.steps)
        lane_row = {lane: r for r, lane in enumerate(self.lanes, start=2)}
        col = {s.index: c for c, s in enumerate(self.steps, start=2)}
        rows_end = len(self.lanes) + 2
        parts = []
        for lane, r in lane_row.items():
            ctx = " ctx" if lane == CONTEXT_LANE else ""
            total = d.agent_totals.get(lane)
            parts.append(f'<div class="lane-label{ctx}" style="grid-area:{r}/1" title="{_e(lane)}">{_e(lane)}</div>')
            parts.append(f'<div class="lane-bg{ctx}" style="grid-area:{r}/2/{r + 1}/{n + 2}"></div>')
            if total is not None:
                parts.append(
                    f'<div class="lane-total" style="grid-area:{r}/{n + 2}" title="total score of {_e(lane)}">'
                    f"{_num(total)}</div>"
                )
        for s in self.steps:
            c = col[s.index]
            lane = CONTEXT_LANE if s.is_observation else s.agent
            color = OBSERVATION_COLOR if s.score is None else diverging_color(s.score, self.score_scale)
            cls = ["cell"]
            if s.is_observation:
                cls.append("obs")
            if s.index == d.culprit_step:
                cls.append("culprit")
            elif s.index in self.rank:
                cls.append("topk")
            if s.index == self.gold_step:
                cls.append("gold")
            tip = f"step {s.index} \u00b7 {s.role}"
            tip += " \u00b7 observation" if s.score is None else f" \u00b7 score {_num(s.score)}"
            parts.append(
                f'<a class="{" ".join(cls)}" href="#step-{_e(s.index)}" style="grid-area:{lane_row[lane]}/{c};'
                f'background:{color}" title="{_e(tip)}" aria-label="{_e(tip)}"></a>'
            )
            if s.index == d.culprit_step:
                parts.append(f'<div class="guide culprit" style="grid-area:1/{c}/{rows_end}/{c + 1}"></div>')
                parts.append(f'<span class="mark culprit" style="grid-area:1/{c}">culprit \u25be</span>')
            elif s.index in self.rank:
                parts.append(
                    f'<span class="mark topk" style="grid-area:1/{c}" title="rank {self.rank[s.index]}">{self.rank[s.index]}</span>'
                )
            if s.index == self.gold_step:
                parts.append(f'<div class="guide gold" style="grid-area:2/{c}/{rows_end + 1}/{c + 1}"></div>')
                parts.append(f'<span class="mark gold" style="grid-area:{rows_end}/{c}">\u25b4 gold</span>')
        tick_every = 1 if n <= 20 else 5 if n <= 60 else 10 if n <= 200 else 50
        for pos, s in enumerate(self.steps):
            if pos % tick_every == 0:
                parts.append(f'<span class="tick" style="grid-area:{rows_end + 1}/{col[s.index]}">{_e(s.index)}</span>')
        columns = f"var(--label-w) repeat({n}, minmax(5px, 1fr)) minmax(var(--total-w), max-content)"
        rows = f"18px repeat({len(self.lanes)}, 24px) 16px 16px"
        return (
            '<section class="panel" id="timeline">\n<div class="panel-head"><h2>Timeline</h2>'
            f"{self._legend()}</div>\n"
            '<div class="tl-scroll"><div class="tl" style="grid-template-columns:'
            f'{columns};grid-template-rows:{rows}">\n' + "\n".join(parts) + "\n</div></div>\n"
            '<p class="hint">One lane per agent, observations in the grey context lane. '
            "Click a step to jump to its text; the right column is each agent's total.</p>\n</section>"
        )

    def _legend(self) -> str:
        stops = ", ".join(f"rgb{c} {p}%" for c, p in zip(PALETTE, (0, 25, 50, 75, 100)))
        s, t = self.score_scale, self.token_scale
        return (
            '<div class="legend" aria-label="colour scale">'
            '<span class="lg-end">negative advantage</span>'
            f'<span class="lg-bar" style="background:linear-gradient(90deg, {stops})"></span>'
            '<span class="lg-end">positive advantage</span>'
            f'<span class="lg-scale">steps \u00b1{s:.3g} \u00b7 tokens \u00b1{t:.3g} (colours saturate beyond)</span>'
            f'<span class="lg-obs"><i style="background:{OBSERVATION_COLOR}"></i>observation</span>'
            "</div>"
        )

    def _overview(self) -> str:
        return f'<div class="grid2">\n{self._top_table()}\n{self._agent_table()}\n</div>'

    def _top_table(self) -> str:
        rows = []
        for r, i in enumerate(self.d.top, start=1):
            s = self.by_index.get(i)
            if s is None:
                continue
            cls = ' class="is-culprit"' if i == self.d.culprit_step else ""
            rows.append(
                f'<tr{cls}><td class="num">{r}</td><td><a href="#step-{_e(i)}">{_e(i)}</a></td>'
                f"<td>{_e(s.agent)}</td>{self._score_td(s.score)}"
                f'<td class="snip">{_e(_snippet(s.text))}</td></tr>'
            )
        return (
            '<section class="panel" id="top-steps"><h2>Top-ranked steps</h2>'
            '<table class="tbl"><thead><tr><th>#</th><th>step</th><th>agent</th><th>score</th><th>text</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>"
        )

    def _score_td(self, score: float | None) -> str:
        if score is None:
            return '<td class="num">\u2014</td>'
        color = diverging_color(score, self.score_scale)
        return f'<td class="num"><span class="chip" style="background:{color}{_ink(score, self.score_scale)}">{_num(score)}</span></td>'

    def _agent_table(self) -> str:
        totals = self.d.agent_totals
        counts: dict[str, int] = {}
        for s in self.steps:
            if not s.is_observation:
                counts[s.agent] = counts.get(s.agent, 0) + 1
        agents = list(dict.fromkeys([a for a in self.lanes if a != CONTEXT_LANE] + list(totals)))
        peak = max((abs(v) for v in totals.values()), default=0.0) or 1.0
        rows = []
        for a in agents:
            total = totals.get(a)
            badges = ""
            if a == self.d.culprit_agent:
                badges += '<span class="badge culprit">culprit</span>'
            if a == self.gold_agent:
                badges += '<span class="badge gold">gold</span>'
            bar = ""
            if total is not None:
                w = 50 * abs(total) / peak
                side = "neg" if total < 0 else "pos"
                color = diverging_color(total, peak)
                bar = f'<div class="dbar"><i class="{side}" style="width:{w:.1f}%;background:{color}"></i></div>'
            rows.append(
                f'<tr><td class="name">{_e(a)} {badges}</td><td class="num">{counts.get(a, 0)}</td>'
                f'<td class="num">{_num(total)}</td><td class="barcell">{bar}</td></tr>'
            )
        return (
            '<section class="panel"><h2>Agents</h2>'
            '<table class="tbl"><thead><tr><th>agent</th><th>actions</th><th>total</th><th></th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>"
        )

    def _long(self, s: _StepView) -> bool:
        if s.tokens:
            return len(s.tokens) > self.collapse_tokens
        return len(s.content) > 4 * self.collapse_tokens

    def _steps_section(self) -> str:
        return (
            '<section class="panel" id="steps"><div class="panel-head"><h2>Steps</h2>'
            '<div class="tools"><button type="button" class="btn" data-act="expand-all">Expand all</button>'
            '<button type="button" class="btn" data-act="collapse-all">Collapse all</button></div></div>\n'
            + "\n".join(self._step(s) for s in self.steps)
            + "\n</section>"
        )

    def _step(self, s: _StepView) -> str:
        d = self.d
        special = s.index in (d.culprit_step, self.gold_step)
        collapsed = self._long(s) and not special
        cls = ["step", "obs" if s.is_observation else "act"]
        badges = []
        if s.index == d.culprit_step:
            cls.append("culprit")
            badges.append('<span class="badge culprit">culprit</span>')
        if s.index in self.rank:
            badges.append(f'<span class="badge topk">top {self.rank[s.index]}</span>')
        if s.index == self.gold_step:
            cls.append("gold")
            badges.append('<span class="badge gold">gold mistake</span>')
        role = f'<span class="role">{_e(s.role)}</span>' if s.role != s.agent else ""
        to = f'<span class="to">\u2192 {_e(s.to)}</span>' if s.to else ""
        kind = '<span class="kind">observation</span>' if s.is_observation else ""
        size = f"{len(s.tokens):,} tokens" if s.tokens else f"{len(s.content):,} chars"
        if s.score is None:
            score = '<span class="chip none">not scored</span>'
        else:
            color = diverging_color(s.score, self.score_scale)
            score = (
                f'<span class="chip" style="background:{color}{_ink(s.score, self.score_scale)}">{_num(s.score)}</span>'
            )
        has_data = bool(s.tokens) or self._long(s)
        text = s.text
        if collapsed:
            text = s.preview
        attrs = f' data-step="{_e(s.index)}"' if has_data else ""
        state = "collapsed" if collapsed else "open"
        if self._long(s):
            state += " long"
        toggle = ""
        if self._long(s):
            label = f"Show all {size}" if collapsed else "Collapse"
            toggle = (
                f'<button type="button" class="toggle" data-step="{_e(s.index)}" aria-expanded="{str(not collapsed).lower()}"'
                f' data-size="{_e(size)}">{label}</button>'
            )
        return (
            f'<article class="{" ".join(cls)}" id="step-{_e(s.index)}">'
            f'<div class="step-head"><a class="idx" href="#step-{_e(s.index)}">{_e(s.index)}</a>'
            f'<span class="agent">{_e(s.agent)}</span>{role}{to}{kind}{"".join(badges)}'
            f'<span class="grow"></span><span class="size">{size}</span>{score}'
            '<a class="up" href="#timeline" title="back to the timeline">\u2191</a></div>'
            f'<div class="text {state}"{attrs}>{_e(text)}</div>{toggle}</article>'
        )

    def _details(self) -> str:
        d = self.d
        facts = {"run id": d.run_id, "source": d.source, "schema": d.schema, **d.settings}
        other = {k: v for k, v in d.labels.items() if k not in _SHOWN_LABELS}
        facts.update({f"label: {k}": v for k, v in other.items()})
        kv = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_plain(v))}</dd>" for k, v in facts.items())
        known = ("policy", "reference", "beta")
        extra = any(k not in known for c in d.checkpoints.values() for k in c)
        head = "".join(f"<th>{h}</th>" for h in ("pair", "policy", "reference"))
        head += '<th class="greek">\u03b2</th>' + ("<th>other</th>" if extra else "")
        rows = []
        for name, c in d.checkpoints.items():
            rest = {k: v for k, v in c.items() if k not in known}
            cells = [f"<td>{_e(name)}</td>"]
            cells += [_checkpoint_td(c.get(k)) for k in ("policy", "reference")]
            cells.append(f'<td class="num">{_e(c.get("beta", ""))}</td>')
            if extra:
                cells.append(f'<td class="snip">{_e(_plain(rest) if rest else "")}</td>')
            rows.append(f"<tr>{''.join(cells)}</tr>")
        return (
            '<section class="panel" id="details"><h2>Settings and checkpoints</h2><div class="grid2 inner">'
            f'<div><h3>Settings</h3><dl class="kv">{kv}</dl></div>'
            f'<div class="scroll-x"><h3>Checkpoints</h3><table class="tbl"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div></div></section>"
        )


def _checkpoint_name(ckpt: Any) -> str:
    """A checkpoint is a name, or a dict with ``name`` (folder or hub id), ``id`` and more."""
    if isinstance(ckpt, dict):
        return str(ckpt.get("name", ckpt.get("id", "?")))
    return "?" if ckpt is None else str(ckpt)


def _checkpoint_td(ckpt: Any) -> str:
    cell = f"<code>{_e(_checkpoint_name(ckpt))}</code>"
    if isinstance(ckpt, dict):
        rest = [str(v) for k, v in ckpt.items() if k != "name"]
        if rest:
            cell += f'<div class="ckid">{_e(_DOT.join(rest))}</div>'
    return f'<td class="id">{cell}</td>'


def _check(ok: bool, text: str) -> str:
    mark, cls = ("\u2713", "ok") if ok else ("\u2717", "no")
    return f'<span class="check {cls}">{mark} {_e(text)}</span>'


def _ink(value: float, scale: float) -> str:
    """White text on the darkest shades."""
    return ";color:#fff" if abs(value) > 0.7 * scale else ""


def _snippet(text: str, width: int = 110) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _as_int(value: Any) -> int | None:
    """A label's step index: an int, or a string of ASCII digits; anything else is no index."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        return int(value)
    return None


def _version() -> str:
    from attribution import __version__

    return __version__
