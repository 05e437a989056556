"""manygil.Interpreter: one own-GIL interpreter for direct use."""

import pytest

import helpers
import manygil


def test_exec_and_call():
    with manygil.Interpreter() as interp:
        interp.exec("counter = 0\ndef bump(n):\n    global counter\n    counter += n\n    return counter\n")
        assert interp.call("__main__:bump", 2) == 2
        assert interp.call("__main__:bump", 3) == 5
        assert interp.call(helpers.square, 5) == 25
        assert interp.id > 0


def test_state_is_isolated_between_interpreters():
    with manygil.Interpreter() as a, manygil.Interpreter() as b:
        a.exec("x = 1")
        b.exec("def has_x():\n    return 'x' in globals()\n")
        assert b.call("__main__:has_x") is False
        assert a.id != b.id


def test_errors_as_in_pool():
    with manygil.Interpreter() as interp:
        with pytest.raises(SyntaxError):
            interp.exec("def broken(:\n")
        with pytest.raises(ValueError, match="nope"):
            interp.call(helpers.raise_value_error, "nope")
        with pytest.raises(TypeError):
            interp.exec(b"x = 1")
        assert interp.call(helpers.square, 3) == 9


def test_close_is_final_and_idempotent():
    interp = manygil.Interpreter()
    interp.close()
    interp.close()
    with pytest.raises(RuntimeError):
        interp.call(helpers.square, 2)
