"""Training data and model code for kompress's word-level keep/drop classifier.

Modules:

* must_keep   -- a faithful port of src/protect.rs (word-level must-keep rules).
* generators  -- seeded synthetic (text, reference) pairs, one generator per domain.
* labels      -- word-level keep/drop labels (LCS alignment; real-corpus self-labels).
"""
