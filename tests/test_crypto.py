"""Key schedule, CPace, sealing and the replay window, checked against exact values."""

from __future__ import annotations

import hashlib
import hmac
import random
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
from lanpay.core import crypto
from lanpay.core.crypto import (
    A,
    P,
    CryptoFailure,
    ReplayWindow,
    SessionKeys,
    confirm_tag,
    cpace_generator,
    cpace_secret,
    cpace_share,
    derive_keys,
    digest,
    elligator2,
    new_private_key,
    nonce,
    normalise_code,
    open_sealed,
    public_key,
    seal,
    tags_equal,
    x25519,
)

CODE_FORMAT = re.compile(r"^\d\d-\d\d-\d\d$")
secrets32 = st.binary(min_size=32, max_size=32)
field_elements = st.integers(min_value=0, max_value=P - 1)


def legendre(x: int) -> int:
    """1 for a non-zero square mod P, -1 for a non-square, 0 for zero."""
    s = pow(x % P, (P - 1) // 2, P)
    return -1 if s == P - 1 else s


def on_curve(u: int) -> bool:
    """Curve25519 has a point with this u iff u^3 + A u^2 + u is a square."""
    return legendre(u * u * u + A * u * u + u) != -1


def times8(u: int) -> tuple[int, int]:
    """8 times the point with coordinate u, projectively (X, Z); Z == 0 is the identity."""
    x, z = u % P, 1
    for _ in range(3):
        x, z = (x * x - z * z) ** 2 % P, 4 * x * z * (x * x + A * x * z + z * z) % P
    return x, z


def le(u: int) -> bytes:
    return u.to_bytes(32, "little")


# --- X25519 -------------------------------------------------------------------

# RFC 7748, section 6.1.
ALICE_PRIV = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUB = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIV = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUB = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

# u-coordinates of the points of order 1, 2, 4 and 8, canonical and not.
ORDER8_A = 325606250916557431795983626356110631294008115727848805560023387167927233504
ORDER8_B = 39382357235489614581723060781553021112529911719440698176882885853963445705823
LOW_ORDER = [0, 1, ORDER8_A, ORDER8_B, P - 1, P, P + 1]
LOW_ORDER_ENCODINGS = [le(u) for u in LOW_ORDER] + [le(u | 1 << 255) for u in (0, 1, P - 1)]


def test_x25519_matches_rfc7748() -> None:
    assert public_key(ALICE_PRIV) == ALICE_PUB
    assert public_key(BOB_PRIV) == BOB_PUB
    assert x25519(ALICE_PRIV, BOB_PUB) == SHARED == x25519(BOB_PRIV, ALICE_PUB)


def test_private_keys_come_from_the_given_rng() -> None:
    a = new_private_key(random.Random(7))
    assert len(a) == 32
    assert a == new_private_key(random.Random(7)) == random.Random(7).randbytes(32)
    assert a != new_private_key(random.Random(8))


@pytest.mark.parametrize("u", LOW_ORDER)
def test_low_order_list_really_is_low_order(u: int) -> None:
    assert times8(u)[1] == 0


@pytest.mark.parametrize("point", LOW_ORDER_ENCODINGS)
def test_low_order_points_are_refused(point: bytes) -> None:
    with pytest.raises(CryptoFailure):
        x25519(ALICE_PRIV, point)
    with pytest.raises(CryptoFailure):
        cpace_secret(ALICE_PRIV, point)


@pytest.mark.parametrize("point", [b"", bytes(31), bytes(33), b"\x09" * 64])
def test_malformed_points_are_refused(point: bytes) -> None:
    with pytest.raises(CryptoFailure):
        x25519(ALICE_PRIV, point)


def test_all_zero_secret_is_refused_whatever_the_backend() -> None:
    with pytest.raises(CryptoFailure):
        crypto._nonzero(bytes(32))
    assert crypto._nonzero(SHARED) == SHARED


# --- digest -------------------------------------------------------------------


def test_digest_is_sha256_over_length_prefixed_parts() -> None:
    expected = hashlib.sha256(b"\x00\x00\x00\x02ab\x00\x00\x00\x01c").digest()
    assert digest(b"ab", b"c") == expected
    assert digest() == hashlib.sha256(b"").digest()
    assert digest(b"") == hashlib.sha256(bytes(4)).digest()


@given(st.lists(st.binary(max_size=8), max_size=4), st.lists(st.binary(max_size=8), max_size=4))
def test_digest_never_confuses_part_boundaries(a: list[bytes], b: list[bytes]) -> None:
    assert (digest(*a) == digest(*b)) == (a == b)


# --- key schedule -------------------------------------------------------------


@given(secrets32, st.sampled_from([b"", bytes(range(32))]), st.binary(max_size=200))
def test_both_sides_derive_matching_keys(dh: bytes, pake: bytes, transcript: bytes) -> None:
    i = derive_keys(dh, pake, transcript, initiator=True)
    r = derive_keys(dh, pake, transcript, initiator=False)
    assert i.send_key == r.recv_key and i.recv_key == r.send_key
    assert i.send_key != i.recv_key
    assert (i.confirm_key, i.session_id, i.code) == (r.confirm_key, r.session_id, r.code)
    sizes = [len(k) for k in (i.send_key, i.recv_key, i.confirm_key, i.session_id)]
    assert sizes == [32, 32, 32, 8]
    assert CODE_FORMAT.match(i.code)


def test_key_layout_is_hkdf_output_in_order() -> None:
    dh, pake, transcript = bytes(range(32)), bytes(range(32, 64)), b"hello"
    okm = HKDF(hashes.SHA256(), 112, digest(transcript), b"lanpay v1 keys").derive(dh + pake)
    keys = derive_keys(dh, pake, transcript, initiator=True)
    assert (keys.send_key, keys.recv_key, keys.confirm_key) == (okm[:32], okm[32:64], okm[64:96])
    assert keys.session_id == okm[96:104]
    n = int.from_bytes(okm[104:], "big") % 1_000_000
    assert keys.code == f"{n:06d}"[:2] + "-" + f"{n:06d}"[2:4] + "-" + f"{n:06d}"[4:]


def test_code_keeps_leading_zeros() -> None:
    rng = random.Random(1)
    codes = {derive_keys(rng.randbytes(32), b"", b"t", True).code for _ in range(400)}
    assert any(code.startswith("0") for code in codes)
    assert all(CODE_FORMAT.match(code) for code in codes)


@given(secrets32, st.binary(max_size=50), st.binary(max_size=50))
def test_transcript_changes_every_key(dh: bytes, t1: bytes, t2: bytes) -> None:
    a, b = derive_keys(dh, b"", t1, True), derive_keys(dh, b"", t2, True)
    assert (a == b) == (t1 == t2)
    if t1 != t2:
        keys = {a.send_key, a.recv_key, a.confirm_key, b.send_key, b.recv_key, b.confirm_key}
        assert len(keys) == 6
        assert a.session_id != b.session_id


def test_different_transcripts_almost_always_give_different_codes() -> None:
    codes = {derive_keys(SHARED, b"", bytes([n]), True).code for n in range(200)}
    assert len(codes) == 200  # 200 draws from a million rarely collide, and these do not


def test_pake_secret_changes_the_keys() -> None:
    assert derive_keys(SHARED, b"", b"t", True) != derive_keys(SHARED, bytes(32), b"t", True)


def test_session_keys_repr_hides_keys() -> None:
    keys = derive_keys(SHARED, b"", b"t", True)
    text = repr(keys)
    assert keys.send_key.hex() not in text and repr(keys.send_key) not in text
    assert keys.code in text and isinstance(keys, SessionKeys)


def test_confirm_tags() -> None:
    i = derive_keys(SHARED, b"", b"t", True)
    r = derive_keys(SHARED, b"", b"t", False)
    tag = confirm_tag(i, b"initiator", b"t")
    expected = hmac.new(i.confirm_key, b"initiator" + digest(b"t"), "sha256").digest()[:16]
    assert tag == expected and len(tag) == 16
    assert tags_equal(tag, confirm_tag(r, b"initiator", b"t"))
    assert not tags_equal(tag, confirm_tag(r, b"responder", b"t"))
    assert not tags_equal(tag, confirm_tag(r, b"initiator", b"u"))
    other = derive_keys(SHARED, b"", b"u", False)
    assert not tags_equal(tag, confirm_tag(other, b"initiator", b"t"))


# --- Elligator 2 and CPace ----------------------------------------------------

# RFC 9380, appendix J.4.2 (curve25519_XMD:SHA-512_ELL2_NU_): u[0], Q.x and P.x = 8 Q.
RFC9380_VECTORS = [
    (
        "608d892b641f0328523802a6603427c26e55e6f27e71a91a478148d45b5093cd",
        "51125222da5e763d97f3c10fcc92ea6860b9ccbbd2eb1285728f566721c1e65b",
        "1bb913f0c9daefa0b3375378ffa534bda5526c97391952a7789eb976edfe4d08",
    ),
    (
        "46f5b22494bfeaa7f232cc8d054be68561af50230234d7d1d63d1d9abeca8da5",
        "7d56d1e08cb0ccb92baf069c18c49bb5a0dcd927eff8dcf75ca921ef7f3e6eeb",
        "7c22950b7d900fa866334262fcaea47a441a578df43b894b4625c9b450f9a026",
    ),
    (
        "235fe40c443766ce7e18111c33862d66c3b33267efa50d50f9e8e5d252a40aaa",
        "3fbe66b9c9883d79e8407150e7c2a1c8680bee496c62fabe4619a72b3cabe90f",
        "31ad08a8b0deeb2a4d8b0206ca25f567ab4e042746f792f4b7973f3ae2096c52",
    ),
    (
        "001e92a544463bda9bd04ddbe3d6eed248f82de32f522669efc5ddce95f46f5b",
        "227e0bb89de700385d19ec40e857db6e6a3e634b1c32962f370d26f84ff19683",
        "027877759d155b1997d0d84683a313eb78bdb493271d935b622900459d52ceaa",
    ),
    (
        "1a68a1af9f663592291af987203393f707305c7bac9c8d63d6a729bdc553dc19",
        "3bcd651ee54d5f7b6013898aab251ee8ecc0688166fce6e9548d38472f6bd196",
        "5fd892c0958d1a75f54c3182a18d286efab784e774d1e017ba2fb252998b5dc1",
    ),
]


@pytest.mark.parametrize(("u", "qx", "px"), RFC9380_VECTORS)
def test_elligator2_matches_rfc9380(u: str, qx: str, px: str) -> None:
    q = elligator2(int(u, 16))
    assert q == int(qx, 16)
    x, z = times8(q)
    assert x * pow(z, P - 2, P) % P == int(px, 16)


def test_elligator2_vectors_take_both_branches() -> None:
    """The map returns x1 when g(x1) is square and -x1 - A otherwise; the vectors show both."""
    x1s = [-A * pow(1 + 2 * int(u, 16) ** 2, P - 2, P) % P for u, _, _ in RFC9380_VECTORS]
    chosen = [elligator2(int(u, 16)) == x1 for (u, _, _), x1 in zip(RFC9380_VECTORS, x1s)]
    assert True in chosen and False in chosen


def test_elligator2_denominator_cannot_vanish() -> None:
    """1 + 2 r^2 == 0 needs r^2 == -1/2, which is a non-square: -1 is a square, 2 is not."""
    assert legendre(-1) == 1 and legendre(2) == -1
    assert legendre(-pow(2, P - 2, P)) == -1


def test_elligator2_of_zero_is_the_order_two_point() -> None:
    """r = 0: x1 = -A and g(-A) = -A is a non-square, so u = -x1 - A = 0 (low order).

    A hashed r is zero with probability 2^-255; cpace_share would then refuse it.
    """
    assert legendre(-A) == -1
    assert elligator2(0) == 0
    with pytest.raises(CryptoFailure):
        cpace_share(ALICE_PRIV, le(elligator2(0)))


@given(field_elements)
def test_elligator2_lands_on_the_curve_and_ignores_sign(r: int) -> None:
    u = elligator2(r)
    assert 0 <= u < P and on_curve(u)
    assert elligator2(P - r if r else 0) == u


@settings(max_examples=examples(200))
@given(st.text(max_size=40), st.binary(max_size=32))
def test_generator_is_a_curve_point(code: str, sid: bytes) -> None:
    g = cpace_generator(code, sid)
    u = int.from_bytes(g, "little")
    assert len(g) == 32 and u < P and on_curve(u)
    assert times8(u)[1] != 0  # not a low-order point


def test_generator_is_the_framed_sha512_hash_mapped() -> None:
    parts = (b"lanpay-cpace-v1", b"open sesame", b"sid")
    framed = b"".join(len(p).to_bytes(4, "big") + p for p in parts)
    r = int.from_bytes(hashlib.sha512(framed).digest(), "little") % P
    assert cpace_generator("Open  Sesame", b"sid") == le(elligator2(r))


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        (" Correct  Horse ", "correct horse"),
        ("CORRECT\thorse\n", "correct horse"),
        ("ｃｏｒｒｅｃｔ　ｈｏｒｓｅ", "correct horse"),  # full-width letters and space
        ("Straße", "strasse"),
        ("cafe\u0301", "café"),
    ],
)
def test_code_normalisation(typed: str, canonical: str) -> None:
    assert normalise_code(typed) == canonical
    assert cpace_generator(typed, b"s") == cpace_generator(canonical, b"s")


def run_cpace(code_a: str, code_b: str, sid: bytes, seed: int) -> tuple[bytes, bytes]:
    rng = random.Random(seed)
    a, b = new_private_key(rng), new_private_key(rng)
    share_a = cpace_share(a, cpace_generator(code_a, sid))
    share_b = cpace_share(b, cpace_generator(code_b, sid))
    return cpace_secret(a, share_b), cpace_secret(b, share_a)


@settings(max_examples=examples(50))
@given(st.text(max_size=20), st.binary(max_size=16), st.integers(0, 2**32))
def test_cpace_same_code_same_secret(code: str, sid: bytes, seed: int) -> None:
    sa, sb = run_cpace(code, code, sid, seed)
    assert sa == sb and len(sa) == 32 and any(sa)


@settings(max_examples=examples(50))
@given(st.text(max_size=20), st.text(max_size=20), st.integers(0, 2**32))
def test_cpace_different_code_different_secret(a: str, b: str, seed: int) -> None:
    sa, sb = run_cpace(a, b, b"sid", seed)
    assert (sa == sb) == (normalise_code(a) == normalise_code(b))


def test_cpace_sid_binds_the_secret() -> None:
    assert cpace_generator("x", b"1") != cpace_generator("x", b"2")
    sa, sb = run_cpace("x", "x", b"1", 3)
    assert sa != run_cpace("x", "x", b"2", 3)[0]


# --- nonce and sealing --------------------------------------------------------


def test_nonce_layout() -> None:
    assert nonce(0) == bytes(12)
    assert nonce(1) == bytes(11) + b"\x01"
    assert nonce(0x0102030405060708) == bytes.fromhex("00000000" "0102030405060708")
    assert nonce(2**64 - 1) == bytes(4) + b"\xff" * 8
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            nonce(bad)


KEY = bytes(range(32))


def test_seal_is_chacha20poly1305_with_header_as_aad() -> None:
    ct = seal(KEY, 5, b"hdr", b"pay 10")
    assert ct == ChaCha20Poly1305(KEY).encrypt(nonce(5), b"pay 10", b"hdr")
    assert len(ct) == 6 + 16
    assert open_sealed(KEY, 5, b"hdr", ct) == b"pay 10"
    with pytest.raises(ValueError):
        seal(KEY, 2**64, b"", b"")


@given(secrets32, st.integers(0, 2**64 - 1), st.binary(max_size=40), st.binary(max_size=300))
def test_seal_open_round_trip(key: bytes, counter: int, header: bytes, plaintext: bytes) -> None:
    assert open_sealed(key, counter, header, seal(key, counter, header, plaintext)) == plaintext


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << bit % 8
    return bytes(out)


@given(st.binary(max_size=100), st.binary(min_size=1, max_size=20), st.data())
def test_any_flipped_bit_is_refused(plaintext: bytes, header: bytes, data: st.DataObject) -> None:
    ct = seal(KEY, 9, header, plaintext)
    ct_bit = data.draw(st.integers(0, len(ct) * 8 - 1), label="ciphertext bit")
    hdr_bit = data.draw(st.integers(0, len(header) * 8 - 1), label="header bit")
    key_bit = data.draw(st.integers(0, 255), label="key bit")
    assert open_sealed(KEY, 9, header, flip(ct, ct_bit)) is None
    assert open_sealed(KEY, 9, flip(header, hdr_bit), ct) is None
    assert open_sealed(flip(KEY, key_bit), 9, header, ct) is None
    assert open_sealed(KEY, 8, header, ct) is None
    assert open_sealed(KEY, 10, header, ct) is None


def test_tag_bits_and_truncation_are_refused() -> None:
    ct = seal(KEY, 1, b"h", b"money")
    for bit in range((len(ct) - 16) * 8, len(ct) * 8):  # every bit of the tag
        assert open_sealed(KEY, 1, b"h", flip(ct, bit)) is None
    for cut in range(len(ct)):
        assert open_sealed(KEY, 1, b"h", ct[:cut]) is None
    assert open_sealed(KEY, 1, b"h", ct + b"\x00") is None


def test_open_never_raises_on_out_of_range_counters() -> None:
    ct = seal(KEY, 0, b"", b"x")
    assert open_sealed(KEY, -1, b"", ct) is None
    assert open_sealed(KEY, 2**64, b"", ct) is None


# --- replay window ------------------------------------------------------------


def accept(w: ReplayWindow, counter: int) -> bool:
    """What the session does: check, (authenticate,) then mark."""
    if not w.fresh(counter):
        return False
    w.mark(counter)
    return True


def test_replay_window_in_order_and_duplicates() -> None:
    w = ReplayWindow()
    assert w.highest == -1 and w.size == 1024
    assert [accept(w, c) for c in range(5)] == [True] * 5
    assert w.highest == 4
    assert [accept(w, c) for c in range(5)] == [False] * 5


def test_replay_window_out_of_order_within_window() -> None:
    w = ReplayWindow(size=8)
    assert accept(w, 10)
    assert [accept(w, c) for c in (7, 3, 9, 2, 8, 7)] == [True, True, True, False, True, False]
    assert w.highest == 10
    assert not w.fresh(2) and w.fresh(4)  # 10 - 8 = 2 is just left of the window


def test_replay_window_big_jump_slides() -> None:
    w = ReplayWindow(size=64)
    for c in (0, 1, 2):
        accept(w, c)
    assert accept(w, 1000)
    assert not w.fresh(2) and not w.fresh(936) and w.fresh(937) and w.fresh(999)
    assert accept(w, 2**64 - 1)
    assert w.highest == 2**64 - 1 and not w.fresh(1000) and not w.fresh(2**64 - 1)
    assert w.fresh(2**64 - 2) and not w.fresh(2**64)
    assert w._bits == 1


def test_replay_window_slide_keeps_marks_in_range() -> None:
    w = ReplayWindow(size=4)
    for c in (5, 4, 3):
        accept(w, c)
    accept(w, 7)  # window now 4..7; 3 slides out, 4 and 5 stay marked
    assert [w.fresh(c) for c in range(2, 9)] == [False, False, False, False, True, False, True]
    w.mark(1)  # left of the window: ignored, changes nothing
    assert w._bits == 0b1101 and w.highest == 7


def test_replay_window_rejects_negative_and_bad_size() -> None:
    assert not ReplayWindow().fresh(-1)
    with pytest.raises(ValueError):
        ReplayWindow(0)


ops = st.lists(
    st.tuples(st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1)), st.booleans()),
    max_size=120,
)


@settings(max_examples=examples(300))
@given(st.integers(1, 80), ops)
def test_replay_window_matches_set_model(size: int, steps: list[tuple[int, bool]]) -> None:
    w, marked = ReplayWindow(size), set[int]()
    for counter, do_mark in steps:
        highest = max(marked, default=-1)
        assert w.fresh(counter) == (counter not in marked and counter > highest - size)
        if do_mark:
            w.mark(counter)
            marked.add(counter)
        assert w.highest == max(marked, default=-1)
        assert w._bits < 1 << size  # memory stays bounded
