"""`--estimate`: the calls, tokens and cost of an answer with the configured model, without calling it."""

import json

from typer.testing import CliRunner

from rag.cli import app
from rag.llm import ScriptedChat
from rag.pipeline import Pipeline
from rag.tokens import count_tokens
from tests.fake_openai import FakeOpenAI
from tests.test_answer import QUESTION, corpus  # noqa: F401  (the fixture)


def test_an_estimate_counts_the_draft_prompt_exactly_and_calls_nothing(settings, corpus):  # noqa: F811
    with FakeOpenAI() as fake:
        llm = type(settings.llm)(base_url=fake.url, model="fake-model", price_prompt=0.15, price_completion=0.6)
        priced = settings.model_copy(update={"llm": llm})
        guess = Pipeline(priced).estimate(QUESTION, collection="qa-test")
    assert fake.requests == []  # nothing was sent
    assert [c.call for c in guess.calls] == ["draft", "check"] and guess.evidence_given == 14
    chat = ScriptedChat(["# T\n\nMitochondria change early [S1].\n\n## Conclusion\n\nThey matter [S2]."])
    Pipeline(priced).answer(QUESTION, collection="qa-test", chat=chat, judge="offline", consensus="offline")
    sent = sum(count_tokens(m.content) for m in chat.calls[0])
    assert guess.calls[0].prompt_tokens == sent  # the draft's prompt, as it would be sent
    assert guess.calls[1].prompt_tokens > guess.calls[0].prompt_tokens  # the sources again, and the claims
    expected = (guess.prompt_tokens * 0.15 + guess.completion_tokens * 0.6) / 1e6
    assert abs(guess.cost_usd - expected) < 1e-6 and guess.max_cost_usd > guess.cost_usd
    one_call = Pipeline(priced).estimate(QUESTION, collection="qa-test", max_calls=1)
    assert [c.call for c in one_call.calls] == ["draft"]


def test_ask_and_eval_estimate_from_the_cli(settings, corpus, tmp_path, monkeypatch):  # noqa: F811
    runner = CliRunner()
    monkeypatch.setenv("RAG_HOME", str(settings.home))
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens: nothing may be asked
    monkeypatch.setenv("RAG_LLM_MODEL", "fake-model")
    result = runner.invoke(app, ["ask", QUESTION, "-c", "qa-test", "--estimate", "--json"])
    assert result.exit_code == 0, result.output
    assert [c["call"] for c in json.loads(result.stdout)["calls"]] == ["draft", "check"]
    shown = runner.invoke(app, ["ask", QUESTION, "-c", "qa-test", "--estimate"])
    assert "no model was called" in shown.stdout and "no price set" in shown.stdout

    records = [json.loads(line) for line in (tmp_path / "corpus.jsonl").read_text().splitlines()[:20]]
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps(r) + "\n" for r in records))
    questions = tmp_path / "q.jsonl"
    asked = [QUESTION, "Does statin use lower the risk of dementia?", "Is laparoscopic surgery safe in the elderly?"]
    questions.write_text("".join(json.dumps({"question": q}) + "\n" for q in asked))
    args = ["eval", "--corpus", str(small), "--questions", str(questions), "--out", str(tmp_path / "ev"), "--estimate"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "per answer, 3 answers" in result.stdout
    monkeypatch.delenv("RAG_LLM_BASE_URL")
    monkeypatch.delenv("RAG_LLM_MODEL")
    result = runner.invoke(app, ["ask", QUESTION, "-c", "qa-test", "--estimate"])
    assert result.exit_code == 2 and "needs an endpoint" in result.stderr
