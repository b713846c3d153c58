"""Student construction: layer selection and weights copied from the teacher's chosen layers."""

import pytest
import torch

from compress.errors import UserError
from compress.recipe import StudentConfig
from compress.student import build_student, count_params, select_layers


@pytest.mark.parametrize("n_t, n_s, expected", [(6, 3, [1, 3, 5]), (12, 6, [1, 3, 5, 7, 9, 11]), (6, 2, [2, 5]), (6, 6, list(range(6))), (4, 1, [3]), (6, 4, [1, 2, 4, 5])])
def test_uniform_layer_selection_ends_on_the_last_layer(n_t, n_s, expected):
    assert select_layers(n_t, StudentConfig(num_layers=n_s)) == expected


@pytest.mark.parametrize(
    "cfg, message",
    [
        (StudentConfig(num_layers=7), "more than the teacher's 6 layers"),
        (StudentConfig(num_layers=2, layers=[0]), "lists 1 layers"),
        (StudentConfig(num_layers=2, layers=[0, 6]), r"\[6\] are out of range"),
        (StudentConfig(num_layers=2, layers=[1, 1]), "repeats a layer"),
    ],
)
def test_bad_layer_choices(cfg, message):
    with pytest.raises(UserError, match=message):
        select_layers(6, cfg)


def test_student_copies_the_chosen_teacher_layers():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    teacher = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4,
                                                       num_attention_heads=2, intermediate_size=32, num_labels=3))
    student, layers, _ = build_student(teacher, StudentConfig(num_layers=2, layers=[0, 3]))
    assert student.config.num_hidden_layers == 2 and layers == [0, 3]
    for m, t in enumerate(layers):
        s_sd, t_sd = student.bert.encoder.layer[m].state_dict(), teacher.bert.encoder.layer[t].state_dict()
        assert all(torch.equal(s_sd[k], t_sd[k]) for k in t_sd)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    # a copy, not an alias: training the student leaves the teacher alone
    assert student.classifier.weight.data_ptr() != teacher.classifier.weight.data_ptr()
    assert count_params(student) < count_params(teacher)


@pytest.mark.parametrize("n_t, n_s", [(6, 4), (6, 3), (12, 4), (12, 5), (6, 5)])
def test_student_starts_from_the_teacher_layers_it_is_mapped_to(n_t, n_s):
    from compress.distill.mapping import LayerMapConfig, build_layer_map

    init = select_layers(n_t, StudentConfig(num_layers=n_s))
    assert [t - 1 for _, t in build_layer_map(n_s, n_t, LayerMapConfig())] == init
