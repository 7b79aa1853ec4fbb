"""Object IDs as swarmkit makes them: 128 random bits in base 36, 25 characters."""

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 25


def base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits)).rjust(width, "0")


def new_id() -> str:
    return base36(secrets.randbits(128), ID_LENGTH)
