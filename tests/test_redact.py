"""Masking of CHAP secrets, by name and by the provider_auth shape."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from volctl.iscsi import ALPHABET
from volctl.redact import MASK, mask, mask_argv

FAST = settings(max_examples=200)
PW = "Jo57JJGdFmiLqNtK"
USER = "kjRwYpBnpu9GT47Mfux8"


def test_named_secret_is_masked_everywhere():
    text = f"add-initiator iqn.x {USER} {PW} iqn.y; again {PW}!"
    out = mask(text, [PW])
    assert PW not in out
    assert out == f"add-initiator iqn.x {USER} *** iqn.y; again ***!"


def test_several_secrets_and_empty_ones():
    out = mask("a-secret1 b-secret2 c", ["secret1", "", "secret2"])
    assert out == "a-*** b-*** c"
    assert mask("nothing here", ["", ""]) == "nothing here"  # an empty secret must not mask everything


def test_provider_auth_shape_is_masked_without_naming_the_secret():
    assert mask(f"CHAP {USER} {PW}") == f"CHAP {USER} {MASK}"
    assert mask(f"provider_auth=CHAP {USER} {PW} done") == f"provider_auth=CHAP {USER} {MASK} done"
    assert mask(f"CHAP  {USER}\t{PW}") == f"CHAP  {USER}\t{MASK}"
    out = mask(f"first CHAP u1 p1secret\nsecond CHAP u2 p2secret")
    assert "p1secret" not in out and "p2secret" not in out
    assert "u1" in out and "u2" in out


def test_words_that_merely_start_with_chap_are_left_alone():
    assert mask("CHAPTER one two") == "CHAPTER one two"
    assert mask("auth_method CHAP") == "auth_method CHAP"


def test_mask_argv():
    argv = ["cinder-rtstool", "create", "/dev/vg/lv", "iqn.x", USER, PW, "False", "-p3260", f"--opt={PW}"]
    shown = mask_argv(argv, [PW, ""])
    assert shown == ["cinder-rtstool", "create", "/dev/vg/lv", "iqn.x", USER, MASK, "False", "-p3260", f"--opt={MASK}"]
    assert argv[5] == PW  # the input list is not changed
    assert mask_argv(["lvs"], []) == ["lvs"]


@FAST
@given(st.text(max_size=40), st.text(ALPHABET, min_size=8, max_size=16), st.text(max_size=40), st.integers(1, 3))
def test_named_secret_never_survives(prefix, secret, suffix, copies):
    text = prefix + (secret + suffix) * copies
    assert secret not in mask(text, [secret])
    assert all(secret not in arg for arg in mask_argv([text, secret, prefix], [secret]))


@FAST
@given(st.text(max_size=30), st.text(ALPHABET, min_size=1, max_size=20), st.text(ALPHABET, min_size=8, max_size=16),
       st.sampled_from(["", " tail", "\nnext line"]))
def test_provider_auth_password_never_survives(prefix, user, password, suffix):
    text = f"{prefix} CHAP {user} {password}{suffix}"
    out = mask(text)
    assert out.endswith(f" {MASK}{suffix}")
    if "CHAP" not in prefix and user != "CHAP":  # else two readings overlap, and both are masked
        assert out.endswith(f"CHAP {user} {MASK}{suffix}")


def test_overlapping_provider_auth_shapes_mask_every_reading():
    assert mask("CHAP CHAP 2 22222222") == f"CHAP CHAP {MASK} {MASK}"
    assert mask("auth CHAP CHAP pw tail") == f"auth CHAP CHAP {MASK} {MASK}"
    assert mask("x CHAP uuu ppp tail") == f"x CHAP uuu {MASK} tail"
