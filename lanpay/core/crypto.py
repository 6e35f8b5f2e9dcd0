"""Key schedule, pairing code, CPace, sealing and the replay window.

Everything here is a pure function of its arguments: randomness arrives as a
``random.Random`` so a simulator seed reproduces every key, and nothing reads a
clock.  The heavy lifting (X25519, HKDF, ChaCha20-Poly1305) is done by
``cryptography``; this module only fixes how the pieces are put together.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import random
import struct
import unicodedata
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .frozen import frozen

KEY_SIZE = 32
TAG_SIZE = 16
COUNTER_LIMIT = 1 << 64
CPACE_LABEL = b"lanpay-cpace-v1"
KEYS_INFO = b"lanpay v1 keys"

# Curve25519 in Montgomery form v^2 = u^3 + A u^2 + u over GF(P); Z is the
# Elligator 2 non-square from RFC 9380 section 6.7.1.
P = 2**255 - 19
A = 486662
Z = 2


class CryptoFailure(Exception):
    """The peer sent a point that would make the shared secret predictable.

    Raised only while deriving secrets; the caller treats it as a bad handshake
    datagram (dropped and counted), never as a crash.
    """


def new_private_key(rng: random.Random) -> bytes:
    """Draw 32 bytes for an X25519 scalar (clamping happens inside X25519)."""
    return rng.randbytes(KEY_SIZE)


def public_key(private: bytes) -> bytes:
    """The X25519 public key (scalar times the base point u = 9)."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def signing_public(private: bytes) -> bytes:
    """The Ed25519 public key of a 32-byte seed (a process signs its announces with it)."""
    return _signer(private).public_key().public_bytes_raw()


@functools.lru_cache(maxsize=4)
def _signer(private: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(private)


@functools.lru_cache(maxsize=256)
def _verifier(public: bytes) -> Ed25519PublicKey | None:
    try:
        return Ed25519PublicKey.from_public_bytes(public)
    except ValueError:
        return None


def sign(private: bytes, data: bytes) -> bytes:
    return _signer(private).sign(data)


def signed_by(public: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` over ``data`` is the holder of ``public``'s (a bad key is just a no)."""
    key = _verifier(public)
    if key is None:
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def incarnation_of(sign_key: bytes, dh_key: bytes) -> int:
    """A process's incarnation, bound to its two public keys: an announce under a known
    incarnation with other keys is not that process's, whoever heard it first."""
    return int.from_bytes(digest(b"lanpay incarnation", sign_key, dh_key)[:8], "big") or 1


def _nonzero(shared: bytes) -> bytes:
    """Refuse an all-zero secret: it means the peer chose a low-order point.

    OpenSSL already refuses these, but the check is cheap and keeps the
    guarantee independent of the backend (RFC 7748, section 6.1).
    """
    if not any(shared):
        raise CryptoFailure("peer key has low order")
    return shared


def x25519(private: bytes, peer_public: bytes) -> bytes:
    """Diffie-Hellman; a low-order or malformed peer point raises CryptoFailure."""
    key = X25519PrivateKey.from_private_bytes(private)
    try:
        shared = key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:
        raise CryptoFailure("peer key is invalid or has low order") from exc
    return _nonzero(shared)


def digest(*parts: bytes) -> bytes:
    """SHA-256 over length-prefixed parts, so no two part lists share an encoding.

    Used for the transcript salt, the confirmation tags and the initiator's
    commitment to its public key: committing before seeing the responder's key
    leaves a man in the middle one guess at the pairing code, not a key search.
    """
    return _framed("sha256", parts)


def _framed(algorithm: str, parts: tuple[bytes, ...]) -> bytes:
    """Hash each part as a u32 big-endian length then its bytes."""
    h = hashlib.new(algorithm)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def normalise_code(code: str) -> str:
    """Fold the ways a person may type the same words into one string."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", code).casefold())
    return " ".join(folded.split())


def _is_square(x: int) -> bool:
    """Euler's criterion (zero counts as a square)."""
    return pow(x % P, (P - 1) // 2, P) != P - 1


def elligator2(r: int) -> int:
    """RFC 9380 map_to_curve_elligator2 for curve25519, Montgomery u only.

    The denominator 1 + Z r^2 never vanishes: that would need r^2 = -1/2,
    and -1/2 is not a square mod P (-1 is, 2 is not).  r = 0 maps to u = 0,
    a low-order point; a hashed r hits it with probability 2^-255.  Python's
    big integers are not constant time: someone timing this on the same host
    could learn bits of r and filter code guesses, a local attack outside the
    LAN threat model this tool is built for.
    """
    x1 = -A * pow(1 + Z * r * r, P - 2, P) % P
    if _is_square(x1 * (x1 * x1 + A * x1 + 1)):
        return x1
    return (-x1 - A) % P


def cpace_generator(code: str, sid: bytes) -> bytes:
    """The password-derived base point, as 32-byte little-endian u.

    Why CPace: a plain hash of the code would let anyone who records a
    handshake test every code offline.  Here the code only chooses the
    generator; each side sends its ephemeral scalar times it, so a guess can be
    checked only by running a live handshake, one guess per attempt.
    """
    parts = (CPACE_LABEL, normalise_code(code).encode("utf-8"), sid)
    r = int.from_bytes(_framed("sha512", parts), "little") % P
    return elligator2(r).to_bytes(KEY_SIZE, "little")


def cpace_share(private: bytes, generator: bytes) -> bytes:
    """The scalar times the generator, sent to the peer (CryptoFailure only if G has low order)."""
    return x25519(private, generator)


def cpace_secret(private: bytes, peer_share: bytes) -> bytes:
    """The CPace shared secret; a low-order share raises CryptoFailure."""
    return x25519(private, peer_share)


@frozen
class SessionKeys:
    """One side's view of a session's keys; keys stay out of repr so logs cannot leak them."""

    send_key: bytes = field(repr=False)
    recv_key: bytes = field(repr=False)
    confirm_key: bytes = field(repr=False)
    session_id: bytes
    code: str


def derive_keys(
    dh_secret: bytes, pake_secret: bytes, transcript: bytes, initiator: bool
) -> SessionKeys:
    """HKDF over both secrets, salted with the transcript so tampering changes every key.

    The pairing code comes from the same output: a man in the middle ends up
    with two different transcripts, hence (almost surely) two different codes.
    """
    okm = HKDF(
        algorithm=hashes.SHA256(), length=112, salt=digest(transcript), info=KEYS_INFO
    ).derive(dh_secret + pake_secret)
    i2r, r2i, confirm, sid, material = okm[:32], okm[32:64], okm[64:96], okm[96:104], okm[104:]
    digits = f"{int.from_bytes(material, 'big') % 1_000_000:06d}"
    code = f"{digits[:2]}-{digits[2:4]}-{digits[4:]}"
    send, recv = (i2r, r2i) if initiator else (r2i, i2r)
    return SessionKeys(send, recv, confirm, sid, code)


def confirm_tag(keys: SessionKeys, label: bytes, transcript: bytes) -> bytes:
    """Key confirmation: proves the sender derived the same keys from the same transcript."""
    mac = hmac.new(keys.confirm_key, label + digest(transcript), hashlib.sha256)
    return mac.digest()[:TAG_SIZE]


def tags_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison, so timing does not reveal how much of a tag matched."""
    return hmac.compare_digest(a, b)


def nonce(counter: int) -> bytes:
    """4 zero bytes + the 64-bit counter: unique per key because each direction has its own key."""
    if not 0 <= counter < COUNTER_LIMIT:
        raise ValueError(f"counter {counter} out of range")
    return _NONCE.pack(counter)


_NONCE = struct.Struct(">4xQ")


@functools.lru_cache(maxsize=16)
def _aead(key: bytes) -> ChaCha20Poly1305:
    """Reuse cipher objects: a session seals with the same key many times."""
    return ChaCha20Poly1305(key)


def seal(key: bytes, counter: int, header: bytes, plaintext: bytes) -> bytes:
    """Encrypt and authenticate; the header travels in clear but is authenticated."""
    return _aead(key).encrypt(nonce(counter), plaintext, header)


def open_sealed(key: bytes, counter: int, header: bytes, ciphertext: bytes) -> bytes | None:
    """The plaintext, or None for anything that does not authenticate (never raises)."""
    if not 0 <= counter < COUNTER_LIMIT:
        return None
    try:
        return _aead(key).decrypt(nonce(counter), ciphertext, header)
    except InvalidTag:
        return None


class Channel:
    """One direction's key, ready to seal or open with: ``seal`` and ``open_sealed`` for a
    session that uses the same key for every datagram, without looking its cipher up each time."""

    __slots__ = ("_key", "_aead")

    def __init__(self, key: bytes) -> None:
        self._key, self._aead = key, ChaCha20Poly1305(key)

    def __reduce__(self) -> tuple[type[Channel], tuple[bytes]]:
        return Channel, (self._key,)          # a copy makes its own cipher (it cannot be pickled)

    def seal(self, counter: int, header: bytes, plaintext: bytes) -> bytes:
        if not 0 <= counter < COUNTER_LIMIT:
            raise ValueError(f"counter {counter} out of range")
        return self._aead.encrypt(_NONCE.pack(counter), plaintext, header)

    def open(self, counter: int, header: bytes, ciphertext: bytes) -> bytes | None:
        """The plaintext, or None for anything that does not authenticate (never raises)."""
        if not 0 <= counter < COUNTER_LIMIT:
            return None
        try:
            return self._aead.decrypt(_NONCE.pack(counter), ciphertext, header)
        except InvalidTag:
            return None


class ReplayWindow:
    """Sliding window over 64-bit counters, as IPsec and WireGuard keep one.

    Datagrams may arrive reordered, so a strict "greater than last" rule would
    drop good ones; the window accepts any unseen counter within ``size`` of
    the highest.  Bit i of the bitmap says ``highest - i`` was seen, so memory
    stays at ``size`` bits whatever the peer sends.
    """

    def __init__(self, size: int = 1024) -> None:
        if size < 1:
            raise ValueError("window size must be positive")
        self.size = size
        self.highest = -1
        self._bits = 0
        self._mask = (1 << size) - 1

    def fresh(self, counter: int) -> bool:
        """True if the counter was never marked and is not left of the window."""
        if not 0 <= counter < COUNTER_LIMIT:
            return False
        if counter > self.highest:
            return True
        offset = self.highest - counter
        return offset < self.size and not (self._bits >> offset) & 1

    def mark(self, counter: int) -> None:
        """Record a counter; call only after the datagram authenticated."""
        if counter > self.highest:
            shift = counter - self.highest
            kept = self._bits << shift if shift < self.size else 0
            self._bits = (kept | 1) & self._mask
            self.highest = counter
            return
        offset = self.highest - counter
        if offset < self.size:
            self._bits |= 1 << offset
