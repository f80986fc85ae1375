"""The synthetic generators keep every must-keep word and compress by at least 1.3x."""

import hashlib

from kompress_train.generators import DOMAINS, MIN_RATIO, generate, violations
from kompress_train.must_keep import words

N_PER_DOMAIN = 620  # 3,100 pairs


def test_invariant_exhaustive_3000_pairs():
    pairs = generate(42, N_PER_DOMAIN)
    assert len(pairs) >= 3000
    assert {p.domain for p in pairs} == set(DOMAINS)
    bad = {p.id: v for p in pairs if (v := violations(p))}
    assert not bad, f"{len(bad)} pairs violate: {list(bad.items())[:5]}"
    for p in pairs:
        assert len(p.text) >= MIN_RATIO * len(p.reference)
        assert words(p.reference), p.id


def test_deterministic_same_seed_same_bytes():
    def digest(seed):
        h = hashlib.sha256()
        for p in generate(seed, 60):
            h.update(p.to_json().encode())
        return h.hexdigest()

    assert digest(7) == digest(7)
    assert digest(7) != digest(8)


def test_reference_is_word_subsequence():
    # The reference is the text with words removed: its words are a subsequence of the text's.
    for p in generate(3, 40):
        it = iter(words(p.text))
        assert all(any(w == t for t in it) for w in words(p.reference)), p.id
