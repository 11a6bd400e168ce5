"""Exercises for the notebooks: one module per notebook (`nb01`, `nb02`, ...), each holding checkers and the
worked solutions they are tested against.

In a notebook:

    from linformer_edu.exercises import nb01
    nb01.check_scaled_scores(my_scaled_scores)     # prints ✓/✗ and one line of plain-words feedback; returns a bool

How to write an exercise (see `_feedback.py` for the helpers, and `nb01.py` for a complete module):

1. The worked solution is a plain function named `solution_<name>` in `nbNN.py`. The notebook's collapsed
   solution cell (hidden in JupyterLab and in Colab, see 4) shows the same code and ends by running
   the checker on it, so the committed notebook proves the solution passes.
2. The checker `check_<name>(answer)` is a `@checker("Exercise N - title")` function. It builds small fixed
   inputs (seeded, so feedback is reproducible), runs the answer with `call(answer, ...)`, computes the expected
   result (from the worked solution or the package), then tests in order of helpfulness:
       call(answer, ..., hints={regex: hint})  a slip that surfaces as a raw PyTorch error, named (KEEPDIM: a
                                            forgotten keepdim=True; a (values, indices) pair is always named)
       call_on_batch(answer, batch, ...)    an answer written for one item of a batch, told so
       expect_shape(got, want.shape)        wrong shape, with a guess why (transposed axes, a missing axis ...)
       diagnose(got, {message: wrong})      the typical wrong answers, computed on the same inputs, each with
                                            the plain-words message that names the slip
       expect(condition, message)           properties (rows sum to 1, non-negative ...)
       expect_close(got, want)              finally the values; says how far off the worst entry is
   It returns an optional one-line takeaway printed after "correct".
3. Tests (tests/test_exercises_nbNN.py) run every checker on the worked solution (must print ✓ and return True)
   and on at least one typical wrong answer (must print the expected message and return False).
4. The notebook's solution cell defines `solution_<name>`, never the learner's own name, so that running all
   cells leaves the learner's answer alone; tools/solution_cells.py checks and fixes the cell's form.

Checkers never raise: a crashing answer, a non-function, a `None` all come back as a ✗ line and False.
"""
from ._feedback import (Mistake, call, checker, diagnose, expect, expect_close, expect_number, expect_shape,
                        expect_tensor, is_close)

__all__ = ["Mistake", "call", "checker", "diagnose", "expect", "expect_close", "expect_number", "expect_shape",
           "expect_tensor", "is_close"]
