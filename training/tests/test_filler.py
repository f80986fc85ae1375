from kompress_train import filler
from kompress_train.must_keep import is_protected, words


def labels_of(text):
    return dict(zip(words(text), filler.keep_labels(text)))


def test_prose_function_words_are_filler_content_words_are_not():
    lab = labels_of("Successfully installed the package into the environment")
    assert lab["the"] is False and lab["into"] is False and lab["Successfully"] is False
    assert lab["installed"] and lab["package"] and lab["environment"]


def test_code_and_signal_lines_keep_every_word():
    for line in ["for item in items: total = total + item",
                 "    return self.value if it is not None else default",
                 "def get_value(self, key):",
                 "ValueError: the value is out of the range",
                 "warning: this is a deprecated form of the call"]:
        assert all(filler.keep_labels(line)), line


def test_decoration_is_filler_outside_code():
    lab = labels_of("========== 3 passed in 0.12s ==========")
    assert lab["=========="] is False and lab["passed"] and lab["0.12s"]


def test_protected_words_are_never_filler():
    text = "This is not the file and it should be kept at /var/log/app.log for the user"
    for w, keep in zip(words(text), filler.keep_labels(text)):
        if is_protected(w):
            assert keep, w


def test_one_label_per_word_on_odd_whitespace():
    text = "a\tb\r\nthe  end \u2003of\x1cthe line\n\n  the\n"
    assert len(filler.keep_labels(text)) == len(words(text))


def test_prefixed_code_and_short_lines_keep_every_word():
    for line in ["202-            if z is not None:",
                 "1288-        idx for idx in added_indexes if idx not in remove_from_added",
                 "src/app.py:7:import numpy as np",
                 "+ for the item in the list",
                 "ok", "is the"]:
        assert all(filler.keep_labels(line)), line
