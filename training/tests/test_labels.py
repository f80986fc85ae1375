"""Word-level label alignment on hand-built cases."""

from kompress_train.generators import generate
from kompress_train.labels import lcs_keep, pair_labels, split_of
from kompress_train.must_keep import words


def brute_lcs_len(a, b):
    L = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            L[i][j] = L[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(L[i - 1][j], L[i][j - 1])
    return L[-1][-1]


def is_subseq(sub, seq):
    it = iter(seq)
    return all(any(x == y for y in it) for x in sub)


def test_simple_deletion():
    a = "Compiling foo please wait error: bad thing".split()
    b = "Compiling foo error: bad thing".split()
    assert lcs_keep(a, b) == [True, True, False, False, True, True, True]


def test_duplicates_align_to_one_occurrence_each():
    a = "x the y the z".split()
    b = "x the z".split()
    keep = lcs_keep(a, b)
    assert sum(keep) == 3 and keep[0] and keep[4]
    assert keep[1] != keep[3]  # exactly one `the` kept


def test_insertions_in_reference_are_ignored():
    # Output markers (e.g. "[... 3 lines]") are not text words: they align to nothing.
    a = "a b c d".split()
    b = "a [... 2 lines] d".split()
    assert lcs_keep(a, b) == [True, False, False, True]


def test_empty_cases():
    assert lcs_keep([], ["a"]) == []
    assert lcs_keep(["a", "b"], []) == [False, False]
    assert lcs_keep(["a"], ["b"]) == [False]


def test_reordered_reference_keeps_a_longest_subsequence():
    a = "one two three four five six".split()
    b = "four five one two six".split()
    keep = lcs_keep(a, b)
    kept = [w for w, k in zip(a, keep) if k]
    assert is_subseq(kept, b) and len(kept) == brute_lcs_len(a, b) == 3


def test_lcs_length_matches_brute_force_on_many_cases():
    import random

    rng = random.Random(5)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 30))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 30))]
        keep = lcs_keep(a, b)
        kept = [w for w, k in zip(a, keep) if k]
        assert len(kept) == brute_lcs_len(a, b)
        assert is_subseq(kept, b)


def test_synthetic_pairs_labels_reproduce_reference():
    for p in generate(11, 30):
        keep, must = pair_labels(p.text, p.reference)
        tw = words(p.text)
        assert [w for w, k in zip(tw, keep) if k] == words(p.reference), p.id
        assert all(k for k, m in zip(keep, must) if m), p.id  # must-keep words are labelled keep


def test_split_is_by_source_and_stable():
    assert split_of("mini-swe-agent:django__django-11099") == split_of("mini-swe-agent:django__django-11099")
    splits = {split_of(f"src-{i}") for i in range(50)}
    assert splits == {"train", "val"}
