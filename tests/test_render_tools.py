"""Tool calls rendered in the chat template's own form, arguments kept exactly as the agent emitted them."""

import dataclasses
import hashlib
import json
import warnings

import pytest

from attribution.errors import ParseWarning
from attribution.parse import chat
from attribution.score import render_run
from attribution.tiny import build_tokenizer
from attribution.types import Run, ToolCall

RAW = '{"city":  "Paris", "unit":"C"}'  # odd spacing and key order, as a model may emit them

#: A template with a tool-call form: a string's arguments go in raw, a decoded value as JSON.
TOOL_FORM = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>"
    '{"name": "{{ c.function.name }}", "arguments": '
    "{% if c.function.arguments is string %}{{ c.function.arguments }}{% else %}{{ c.function.arguments | tojson }}{% endif %}"
    "}</tool_call>{% endfor %}{% endif %}</s>\n{% endfor %}"
)
#: The same, but it re-serialises the arguments whatever they are.
RESERIALISING = TOOL_FORM.replace(
    "{% if c.function.arguments is string %}{{ c.function.arguments }}{% else %}{{ c.function.arguments | tojson }}{% endif %}",
    "{{ c.function.arguments | tojson }}",
)
PLAIN = "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"


@pytest.fixture(scope="module")
def base_tokenizer():
    return build_tokenizer()


def tokenizer(base, template):
    tok = base.__class__(tokenizer_object=base.backend_tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tok.chat_template = template
    return tok


def weather_run(arguments=RAW, content="I will look it up."):
    messages = [
        {"role": "user", "content": "Find the weather in Paris."},
        {"role": "assistant", "name": "Planner", "content": content,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 C"},
        {"role": "assistant", "name": "Planner", "content": "It is 18 C in Paris."},
    ]
    return chat.parse(messages, "weather.json", run_id="weather")


def no_warnings(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kw)


def test_chat_reader_keeps_calls_as_data_and_the_text_form_in_content():
    run = weather_run()
    step = run.steps[1]
    assert step.tool_calls == (ToolCall("get_weather", RAW, "c1"),)
    assert step.content == 'I will look it up.\n{"name": "get_weather", "arguments": ' + RAW + "}"
    assert all(not s.tool_calls for i, s in enumerate(run.steps) if i != 1)


def test_tool_calls_round_trip_and_enter_the_content_hash():
    run = weather_run(arguments={"b": 2, "a": [1, "x"]})
    back = Run.from_dict(json.loads(json.dumps(run.to_dict())))
    assert back == run and back.content_hash() == run.content_hash()
    bare = dataclasses.replace(run, steps=[dataclasses.replace(s, tool_calls=()) for s in run.steps])
    assert bare.content_hash() != run.content_hash()
    other = weather_run(arguments={"a": [1, "x"], "b": 2})
    assert other.content_hash() != run.content_hash()
    # runs without calls hash as before the field existed
    old = dataclasses.replace(bare, steps=[dataclasses.replace(s, content="x") for s in bare.steps])
    h = hashlib.sha256()
    for s in old.steps:
        h.update(json.dumps([s.agent, s.role, s.kind, s.content, s.to]).encode())
    assert old.content_hash() == h.hexdigest()[:16]


def test_template_tool_form_renders_raw_arguments_and_scores_the_call(base_tokenizer):
    tok = tokenizer(base_tokenizer, TOOL_FORM)
    run = weather_run()
    rendered = no_warnings(render_run, run, tok)
    assert rendered.mode == "chat_template"
    call = '<tool_call>{"name": "get_weather", "arguments": ' + RAW + "}</tool_call>"
    assert "[Planner]: I will look it up." + call + "</s>" in rendered.text
    assert rendered.text.count('"arguments"') == 1  # in the template's form only, not also as a text line
    cs, ce = rendered.chars[1]
    assert rendered.text[cs:ce] == "I will look it up." + call[: -len("}</tool_call>")]
    assert rendered.text[cs:ce].endswith(RAW)  # spacing and key order exactly as emitted
    s, e = rendered.spans[1]
    assert "".join(rendered.pieces[1]) == rendered.text[cs:ce] and len(rendered.pieces[1]) == e - s
    scored = tok.decode(rendered.input_ids[s:e])
    assert "<tool_call>" in scored and RAW in scored
    # the other steps are located as before
    for i in (0, 2, 3):
        a, b = rendered.chars[i]
        assert rendered.text[a:b] == run.steps[i].content


def test_template_tool_form_with_empty_content_and_decoded_arguments(base_tokenizer):
    tok = tokenizer(base_tokenizer, TOOL_FORM)
    args = {"unit": "C", "city": "Paris"}
    run = weather_run(arguments=args, content=None)
    rendered = no_warnings(render_run, run, tok)
    cs, ce = rendered.chars[1]
    assert rendered.text[cs:ce] == '<tool_call>{"name": "get_weather", "arguments": {"unit": "C", "city": "Paris"}'


def test_template_that_reserialises_arguments_falls_back_with_a_warning(base_tokenizer):
    tok = tokenizer(base_tokenizer, RESERIALISING)
    run = weather_run()
    with pytest.warns(ParseWarning, match=r"weather.json, run 'weather': .*arguments of tool call 0 .*text form") as rec:
        rendered = render_run(run, tok)
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    assert "<tool_call>" not in rendered.text
    for step in run.steps:
        cs, ce = rendered.chars[step.index]
        assert rendered.text[cs:ce] == step.content  # the text form: the call is a line of the content


def test_template_without_tool_form_is_unchanged(base_tokenizer):
    tok = tokenizer(base_tokenizer, PLAIN)
    run = weather_run()
    bare = dataclasses.replace(run, steps=[dataclasses.replace(s, tool_calls=()) for s in run.steps])
    rendered = no_warnings(render_run, run, tok)
    before = render_run(bare, tok)
    assert rendered.text == before.text and rendered.input_ids == before.input_ids and rendered.spans == before.spans
    assert '\n{"name": "get_weather", "arguments": ' + RAW + "}" in rendered.text


def test_steps_without_structured_calls_keep_the_text_form_under_a_tool_template(base_tokenizer):
    tok = tokenizer(base_tokenizer, TOOL_FORM)
    run = weather_run()
    bare = dataclasses.replace(run, steps=[dataclasses.replace(s, tool_calls=()) for s in run.steps])
    rendered = no_warnings(render_run, bare, tok)
    assert "<tool_call>" not in rendered.text
    cs, ce = rendered.chars[1]
    assert rendered.text[cs:ce] == bare.steps[1].content


def test_scorer_scores_the_call_tokens_under_a_tool_template(tmp_path):
    from attribution.score import CheckpointPair, Scorer
    from attribution.tiny import build_tiny_pair

    policy, reference = build_tiny_pair(tmp_path, max_positions=256)
    pair = CheckpointPair.load(policy, reference)
    pair.tokenizer.chat_template = TOOL_FORM
    run = weather_run()
    rendered = render_run(run, pair.tokenizer)
    got = {s.index: s for s in no_warnings(Scorer(pair, chat_template=True).score, run)}
    assert got[1].tokens == rendered.pieces[1] and len(got[1].logps) == len(rendered.pieces[1])
    assert "".join(got[1].tokens).endswith(RAW) and "<tool_call>" in "".join(got[1].tokens)
