"""Problem kinds as objects (``losslab.kinds``) and the task config's schema (``losslab.tasks.schema``): what each
kind decides, written out here, and every task field's type refused in one line naming the option."""

from __future__ import annotations

import pytest
from conftest import compose, options
from omegaconf import OmegaConf, open_dict

from losslab import kinds
from losslab.errors import ConfigError, UsageError
from losslab.tasks import schema

# what each kind decides, written out by hand (not read from losslab): a changed attribute is caught
EXPECTED = {
    # kind: (problem_type, model class, output class, tokenize, collator, generates, trainable)
    "regression": ("regression", "AutoModelForSequenceClassification", "SequenceClassifierOutput", "text", "padding",
                   False, True),
    "single_label": ("single_label_classification", "AutoModelForSequenceClassification", "SequenceClassifierOutput",
                     "text", "padding", False, True),
    "multi_label": ("multi_label_classification", "AutoModelForSequenceClassification", "SequenceClassifierOutput",
                    "text", "padding", False, True),
    "token_classification": (None, "AutoModelForTokenClassification", "TokenClassifierOutput", "words", "token",
                             False, True),
    "ordinal": (None, "AutoModelForSequenceClassification", "SequenceClassifierOutput", "text", "padding", False,
                False),
    "causal_lm": (None, "AutoModelForCausalLM", "CausalLMOutput", "next_token", "token", False, True),
    "seq2seq": (None, "EncoderDecoderModel", "Seq2SeqLMOutput", "text_to_text", "seq2seq", True, True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_kind_decides_what_it_did_as_a_string(name):
    import transformers
    from transformers import modeling_outputs

    kind = kinds.get(name)
    assert kinds.get(kind) is kind and str(kind) == name
    assert (kind.problem_type, kind.model, kind.output, kind.tokenize, kind.collator, kind.generates,
            kind.trainable) == EXPECTED[name]
    assert hasattr(transformers, kind.model) and hasattr(modeling_outputs, kind.output)
    assert kind.per_token == (name in ("token_classification", "causal_lm", "seq2seq"))
    assert kind.next_token == (name == "causal_lm") and kind.scalar_target == (name == "regression")
    assert kind.vocab_output == (name in ("causal_lm", "seq2seq"))
    assert kind.outputs_are == (("labels", "label") if name == "multi_label" else ("classes", "class"))
    assert set(kinds.KINDS) == set(kinds.ANY)


def test_the_targets_each_kind_takes():
    assert kinds.get("regression").target("1.5") == 1.5
    assert kinds.get("single_label").target(2.0) == 2
    assert kinds.get("multi_label").target([1, 0]) == [1.0, 0.0]
    assert all(kinds.get(k).target is None for k in ("token_classification", "causal_lm", "seq2seq"))


def test_an_unknown_kind_is_one_line_naming_the_kinds():
    with pytest.raises(ConfigError) as err:
        kinds.get("regresion")
    assert str(err.value) == ("task.kind='regresion' is not a problem kind losslab can train yet; choose one of: "
                              "regression, single_label, multi_label, token_classification, causal_lm, seq2seq")
    assert isinstance(err.value, UsageError)  # exit 2
    with pytest.raises(ConfigError, match="task.kind='ordinal' is not a problem kind losslab can train yet"):
        kinds.of_task("ordinal")  # a kind losses serve, never a task's own
    assert kinds.get("ordinal").name == "ordinal"


@pytest.mark.parametrize("task", options("task"))
def test_every_task_option_fits_the_schema(task):
    cfg = compose([f"task={task}"]).task
    typed = schema.validate(cfg)
    assert (typed.name, typed.kind, typed.objective) == (cfg.name, cfg.kind, cfg.objective)
    assert typed.max_length == cfg.max_length and typed.label_noise == cfg.get("label_noise", 0)
    assert typed.split_seed == cfg.get("split_seed", 0)


def test_values_are_converted_and_absent_ones_get_their_default():
    cfg = compose(["task=seq2seq", "task.max_length='24'", "task.max_eval_samples=8.0"]).task
    typed = schema.validate(cfg)
    assert typed.max_length == 24 and typed.max_eval_samples == 8
    assert typed.generation == schema.GenerationConfig(32, 1) and typed.label_noise == 0.0  # seq2seq has none
    with open_dict(cfg):
        del cfg.generation
    assert schema.validate(cfg).generation is None  # the model's generation then takes GenerationConfig()'s


@pytest.mark.parametrize("overrides, message", [
    (["task.max_length=abc"], "task.max_length=abc must be a whole number >= 1"),
    (["task.max_length=0"], "task.max_length=0 must be a whole number >= 1"),
    (["task.max_length=null"], "task.max_length needs a value: a whole number >= 1"),
    (["task.max_train_samples=0"], "task.max_train_samples=0 must be null (all rows) or a whole number >= 1"),
    (["task.max_eval_samples=1.5"], "task.max_eval_samples=1.5 must be null (all rows) or a whole number >= 1"),
    (["task.max_test_samples=all"], "task.max_test_samples=all must be null (all rows) or a whole number >= 1"),
    (["task.num_labels=two"], "task.num_labels=two must be null (counted in the train split) or a whole number >= 1"),
    (["task.label_noise=lots"], "task.label_noise=lots must be a number, 0 <= task.label_noise < 1"),
    (["task.label_noise=1"], "task.label_noise=1 must be a number, 0 <= task.label_noise < 1"),
    (["task.split_seed=abc"], "task.split_seed=abc must be an integer (the salt of the hash split"),
    (["task.greater_is_better=maybe"], "task.greater_is_better=maybe must be true or false, or null"),
    (["task.text_column=[a,b]"], "task.text_column=['a', 'b'] must be text"),
    (["task.kind=regresion"], "task.kind='regresion' is not a problem kind losslab can train yet; choose one of: "),
    (["task.kind=ordinal"], "task.kind='ordinal' is not a problem kind losslab can train yet"),
    (["task=rating_dist", "task.also_kinds=[ordnial]"], "task.also_kinds=['ordnial']: 'ordnial' is not a problem kind"),
    (["task=rating_dist", "task.targets=soft"], "task.targets=soft must be null (one label per item) or distribution"),
    (["task=seq2seq", "task.generation.num_beams=0"], "task.generation.num_beams=0 must be a whole number >= 1"),
    (["task=seq2seq", "task.generation=greedy"], "task.generation=greedy must be a mapping of max_new_tokens, num_beams"),
    (["task=seq2seq", "task.max_target_length=null"], "task.max_target_length needs a value: task.kind=seq2seq "
                                                      "generates a target text"),
    (["task.data=here"], "task.data=here must be a mapping of path, name, encoding, train, validation, test, loader"),
])
def test_a_task_value_of_the_wrong_type_is_one_line_naming_the_option(overrides, message):
    cfg = compose(overrides).task
    with pytest.raises(ConfigError) as err:
        schema.validate(cfg)
    text = str(err.value)
    assert message in text and "\n" not in text, text


def test_a_task_without_a_required_field_says_which():
    cfg = compose(["task=regression"]).task
    cfg = OmegaConf.create({k: v for k, v in OmegaConf.to_container(cfg).items() if k != "text_column"})
    with pytest.raises(ConfigError, match=r"^task.text_column is not set: every task names it \(text\)$"):
        schema.validate(cfg)


def test_one_field_alone_as_the_label_noise_module_reads_it():
    assert schema.value(OmegaConf.create({"label_noise": None}), "label_noise") is None
    assert schema.value(OmegaConf.create({}), "label_noise") == 0.0
    assert schema.value(OmegaConf.create({"label_noise": "0.25"}), "label_noise") == 0.25
