"""Lesson presets: the shipped ones load, a teacher's own file works without code, and every
mistake in a file is named in plain words."""

import pytest

from vizcore import lessons
from vizcore.warm import lesson_preset

SHIPPED = ("what-does-a-cnn-see", "why-did-it-decide-that")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_lessons_load(name):
    lesson = lessons.load(name)
    assert lesson.title and lesson.summary
    assert set(lesson.steps) <= set(lessons.STEPS)
    assert set(lesson.hide) <= set(lessons.HIDEABLE)
    for img in lesson.images:
        ds, index = lessons.parse_image(img)
        assert index >= 0 and ds in ("fashion_mnist", "digits", "mnist", "photos")


def test_the_first_lesson_follows_the_course_notes():
    steps = lessons.load("what-does-a-cnn-see").steps
    assert steps == ("model", "filters", "feature_maps", "unit", "patches", "occlusion",
                     "attribution", "embedding", "fooling")


def test_a_teacher_adds_a_lesson_in_a_folder(tmp_path, monkeypatch):
    (tmp_path / "edges-only.toml").write_text(
        'title = "Edges only"\nsteps = ["filters", "feature_maps"]\n'
        'images = ["fashion_mnist:7"]\nhide = ["sidebar"]\n'
        '[text.filters]\nquestion = "Which filter finds vertical edges?"\n')
    monkeypatch.setenv("VIZCORE_LESSONS", str(tmp_path))
    assert "edges-only" in lessons.available()
    lesson = lessons.load("edges-only")
    assert lesson.steps == ("filters", "feature_maps")
    assert lesson.words("filters", "question", "default") == "Which filter finds vertical edges?"
    assert lesson.words("filters", "answer", "default") == "default"
    assert lesson.model == "fashion_vgg" and lesson.hide == ("sidebar",)


@pytest.mark.parametrize("text,expected", [
    ('title = "x"\nsteps = ["filters", "dance"]', "unknown step(s) dance"),
    ('title = "x"\nmodel = "resnet9000"', "not a shipped model"),
    ('title = "x"\nhide = ["everything"]', "cannot hide everything"),
    ('title = "x"\nimages = ["fashion_mnist"]', "not 'dataset:index'"),
    ('title = "x"\nmethods = ["magic"]', "unknown method(s) magic"),
    ('title = "x"\ncolour = "red"', "unknown field(s) colour"),
    ('steps = ["filters"]', "'title' is missing"),
    ('title = "x"\n[text.filters]\nhint = "y"', "[text.filters]"),
    ('title = "x"\nsteps = [', "cannot be read"),
])
def test_mistakes_in_a_lesson_are_named(tmp_path, monkeypatch, text, expected):
    (tmp_path / "broken.toml").write_text(text)
    monkeypatch.setenv("VIZCORE_LESSONS", str(tmp_path))
    with pytest.raises(lessons.LessonError) as err:
        lessons.load("broken")
    assert expected in str(err.value)


def test_unknown_and_malformed_names():
    with pytest.raises(lessons.LessonError, match="no lesson 'nope'"):
        lessons.load("nope")
    with pytest.raises(lessons.LessonError, match="not a lesson name"):
        lessons.load("../etc/passwd")


def test_a_lesson_becomes_a_warm_preset():
    lesson = lessons.load("what-does-a-cnn-see")
    p = lesson_preset(lesson)
    assert p.model == "fashion_vgg" and p.dataset == "fashion_mnist"
    assert p.images == (0, 9, 1)
    assert p.methods == ("saliency", "smoothgrad", "gradcam", "occlusion")
    assert p.embeddings == ("tsne",)
    assert p.units == (("block3_conv1", 5),)
    p2 = lesson_preset(lessons.load("why-did-it-decide-that"))
    assert p2.units == () and "lrp_composite" in p2.methods
