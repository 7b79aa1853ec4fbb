"""Go's base64.StdEncoding.DecodeString, with its error: "illegal base64 data at input byte N".

Docker's daemon decodes a []byte field of a JSON body (a secret's or config's Data) this way,
so a user who sends bad base64 is told where, in Go's words. Python's decoder accepts and
refuses other inputs (it skips characters outside the alphabet unless told not to, and its
errors say nothing of the position), hence this transcription of Go's algorithm.
"""

import string

from shoal.golang.strconv import GoError

_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_PAD = "="
_NEWLINES = "\r\n"


def _corrupt(at: int) -> GoError:
    return GoError(f"illegal base64 data at input byte {at}")


def decode_std(text: str) -> bytes:
    """The bytes ``text`` encodes (padded standard alphabet; CR and LF are skipped)."""
    out = bytearray()
    si = 0
    n = len(text)
    while si < n:
        values: list[int] = []
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                # A quantum cut short: Go reports where it began.
                raise _corrupt(si - j)
            char = text[si]
            si += 1
            if char in _VALUE:
                values.append(_VALUE[char])
                j += 1
                continue
            if char in _NEWLINES:
                continue
            if char != _PAD:
                raise _corrupt(si - 1)
            # Padding: the quantum ends here.
            if j in (0, 1):
                raise _corrupt(si - 1)
            if j == 2:
                # "==" is expected; the first "=" is read already.
                while si < n and text[si] in _NEWLINES:
                    si += 1
                if si == n:
                    raise _corrupt(n)
                if text[si] != _PAD:
                    raise _corrupt(si - 1)
                si += 1
            while si < n and text[si] in _NEWLINES:
                si += 1
            if si < n:
                raise _corrupt(si)  # something after the padding
            break
        out.extend(_quantum(values))
        if len(values) < 4:
            return bytes(out)
    return bytes(out)


def _quantum(values: list[int]) -> bytes:
    bits = 0
    for v in values:
        bits = (bits << 6) | v
    bits <<= 6 * (4 - len(values))
    whole = bits.to_bytes(3, "big")
    return whole[: len(values) - 1] if len(values) < 4 else whole
