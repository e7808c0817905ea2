"""Batched decoding (batching.py): every engine answers each sequence as one-at-a-time decoding does,
with sequences joining and leaving between steps, and threads sharing forward passes."""

import json
import threading
import time
from pathlib import Path

import pytest
import torch

from distillery.batching import EngineRunner, RunnerEngine, Scheduler, TorchEngine, decode_many
from distillery.decoding import TorchRunner, greedy_decode
from distillery.spirit import load_spirit, write_spirit
from distillery.students.tiny import build_model, model_config
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.grammar import CallGrammar
from distillery.tasks.tool_calling.prompt import END, PAD, TOOLS, USER, prompt_ids, render_prompt
from distillery.tokenizer import train_tokenizer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
UTTERANCES = ["set a timer for 5 minutes", "text Sarah that I am late", "what is the weather in Paris",
              "play some jazz", "call mom", "turn off the kitchen lights", "remind me to buy milk at 6",
              "how is AAPL doing", "start a 20 minute run", "note that the wifi password is hunter2"]


class Shape:
    d_model, d_ff, n_layers, n_heads, n_kv_heads, max_seq_len = 32, 64, 2, 4, 2, 192


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A randomly initialised student (its logits are arbitrary but deterministic) as a Spirit, and
    prompts over the Needle tools: ten requests, each catalog offered twice."""
    tools = parse_tools(json.loads((EXAMPLES / "needle_tools.json").read_text()), where="needle_tools.json")
    tok = train_tokenizer([render_prompt(u, tools) for u in UTTERANCES] * 3, 700)
    ids = {"bos": tok.token_to_id(TOOLS), "eos": tok.token_to_id(END), "pad": tok.token_to_id(PAD)}
    config = model_config(Shape, tok.get_vocab_size(), ids)
    path = tmp_path_factory.mktemp("tiny") / "tiny.spirit"
    write_spirit(path, build_model(config, seed=7), model_config=config, tokenizer_json=tok.to_str(),
                 recipe_yaml="name: tiny\n", task="tool_calling", tools=tools, tasting={}, lineage={},
                 decoding={"grammar": True, "copied_params": []})
    spirit = load_spirit(path)
    catalogs = [tools[i:i + 3] for i in range(0, 15, 3)]
    requests = [(u, catalogs[i % len(catalogs)]) for i, u in enumerate(UTTERANCES)]
    return spirit, requests


def _prompts(spirit, requests):
    return [prompt_ids(spirit.format, spirit.tokenizer, u, tools) for u, tools in requests]


def _alone(spirit, prompts, limits, filters):
    runner = TorchRunner(spirit.model, spirit.format.context)
    return [greedy_decode(runner, p, eos_id=spirit.format.end_id, max_new_tokens=limit, logits_filter=f)
            for p, limit, f in zip(prompts, limits, filters)]


def _grammars(spirit, requests):
    grammar = CallGrammar(spirit.tokenizer, spirit.format)
    return [grammar.matcher(tools, utterance=u) for u, tools in requests]


def test_sequences_join_and_leave_and_each_decodes_as_it_would_alone(tiny):
    spirit, requests = tiny
    prompts, limits = _prompts(spirit, requests), [3 + 2 * i for i in range(len(requests))]
    engine = TorchEngine(spirit.model, spirit.format.context, width=3, boundary_id=spirit.tokenizer.token_to_id(USER))
    for grammar in (False, True):
        filters = _grammars(spirit, requests) if grammar else [None] * len(prompts)  # matchers keep state:
        alone = _alone(spirit, prompts, limits, _grammars(spirit, requests) if grammar else filters)  # new ones
        together = decode_many(engine, prompts, eos_id=spirit.format.end_id, max_new_tokens=limits,
                               logits_filters=filters)
        assert together == alone
        assert all(len(out) <= limit for out, limit in zip(together, limits))
    # Five catalogs, each offered twice, read twice: the first reading of each is the only miss.
    assert (engine.prefixes.misses, engine.prefixes.hits) == (5, 15)
    assert engine.slots == {} and sorted(engine.free) == [0, 1, 2]  # every place given back


def test_the_catalog_cache_gives_the_logits_of_a_whole_read(tiny):
    spirit, requests = tiny
    first, second = _prompts(spirit, [requests[0], requests[5]])  # the same catalog
    engine = TorchEngine(spirit.model, spirit.format.context, width=2, boundary_id=spirit.tokenizer.token_to_id(USER))
    engine.feed([("a", first)])
    cached = engine.feed([("b", second)])[0]
    assert engine.prefixes.hits == 1
    whole = TorchRunner(spirit.model, spirit.format.context).start(second)
    assert (cached - whole).abs().max() < 1e-4


def test_a_filter_that_raises_ends_only_its_own_sequence(tiny):
    spirit, requests = tiny
    prompts = _prompts(spirit, requests[:4])

    def stop_at_two(generated, logits):
        if len(generated) == 2:
            raise LookupError("stop")
        return logits

    engine = TorchEngine(spirit.model, spirit.format.context, width=4)
    out = decode_many(engine, prompts, eos_id=spirit.format.end_id, max_new_tokens=[6] * 4,
                      logits_filters=[None, stop_at_two, None, None])
    assert isinstance(out[1], LookupError)
    assert [out[0], out[2], out[3]] == [o for i, o in enumerate(_alone(spirit, prompts, [6] * 4, [None] * 4))
                                        if i != 1]


def test_an_engine_of_one_sequence_runners_answers_the_same(tiny):
    spirit, requests = tiny
    prompts, limits = _prompts(spirit, requests), [8] * len(requests)
    engine = RunnerEngine(lambda: TorchRunner(spirit.model, spirit.format.context), spirit.format.context, width=4)
    out = decode_many(engine, prompts, eos_id=spirit.format.end_id, max_new_tokens=limits,
                      logits_filters=[None] * len(prompts))
    assert out == _alone(spirit, prompts, limits, [None] * len(prompts))
    assert engine.runners == {} and 1 <= len(engine.idle) <= 4  # runners are reused, never more than the width


def test_threads_share_forward_passes_and_each_gets_its_own_answer(tiny):
    spirit, requests = tiny
    prompts, limits = _prompts(spirit, requests), [10] * len(requests)
    alone = _alone(spirit, prompts, limits, _grammars(spirit, requests))
    scheduler = Scheduler(TorchEngine(spirit.model, spirit.format.context, width=4,
                                      boundary_id=spirit.tokenizer.token_to_id(USER)), max_wait=0.05)
    found, filters = [None] * len(prompts), _grammars(spirit, requests)

    def decode(i):
        runner = scheduler.runner()
        try:
            found[i] = greedy_decode(runner, prompts[i], eos_id=spirit.format.end_id, max_new_tokens=limits[i],
                                     logits_filter=filters[i])
        finally:
            runner.close()

    threads = [threading.Thread(target=decode, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert found == alone
    assert scheduler.fed > 1.5 * scheduler.passes  # more than one sequence a forward pass, on average
    assert scheduler.open == set()


def test_a_request_waits_for_a_free_place_only_until_its_deadline(tiny):
    spirit, requests = tiny
    prompt = _prompts(spirit, requests[:1])[0]
    scheduler = Scheduler(TorchEngine(spirit.model, spirit.format.context, width=1))
    holder = scheduler.runner()
    holder.start(prompt)  # the only place, kept
    late = scheduler.runner(deadline=time.monotonic() + 0.2)
    with pytest.raises(TimeoutError):
        late.start(prompt)
    holder.close()
    assert torch.equal(late.start(prompt), TorchRunner(spirit.model, spirit.format.context).start(prompt))
    late.close()


def test_llama_cpp_decodes_many_sequences_as_it_decodes_one(tiny, tmp_path):
    pytest.importorskip("llama_cpp")
    from distillery.bottling.gguf import export
    from distillery.bottling.gguf_engine import LlamaCppEngine

    spirit, requests = tiny
    path = export(spirit, tmp_path)
    prompts, limits = _prompts(spirit, requests), [12] * len(requests)
    end, context = spirit.format.end_id, spirit.format.context
    single = EngineRunner(LlamaCppEngine(path, context, width=1, threads=1, prefixes=0))
    alone = [greedy_decode(single, p, eos_id=end, max_new_tokens=12) for p in prompts]
    engine = LlamaCppEngine(path, context, width=3, threads=1, boundary_id=spirit.tokenizer.token_to_id(USER),
                            prefixes=5)
    together = decode_many(engine, prompts, eos_id=end, max_new_tokens=limits, logits_filters=[None] * len(prompts))
    assert together == alone
    assert engine.prefixes.hits >= 5 and engine.seqs == {}
    # The same student in f32: llama.cpp reads what PyTorch reads.
    assert together == _alone(spirit, prompts, limits, [None] * len(prompts))
