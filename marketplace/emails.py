"""One form of every email address, and refusal of mixed-script look-alikes.

`normalize_email` is applied wherever an address is compared or stored: signup, login,
adding a lab member, invitations. NFKC folds compatibility forms (full-width letters, the
full-width at sign and dots, ligatures) into the plain ones, so `person@\uff45xample.com` and
`person@example.com` are one address; then the whole address is lower-cased, as the project
and allauth already did before (local parts are case-insensitive in practice everywhere).

`email_problem` refuses a label (the local part, or one domain label) whose letters come from
more than one script, the look-alike trick (a Cyrillic U+0430 in a Latin word). The rule is the
"highly restrictive" level of Unicode TR39: one script per label, or Latin together with the
Han, Hiragana, Katakana, Bopomofo or Hangul combinations that Chinese, Japanese and Korean
names use. A whole label in another script (an internationalised domain) is fine.
"""

from __future__ import annotations

import unicodedata

# IDNA treats these as label separators; NFKC maps the full-width stop to '.', not these two.
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff61": "."})
_CJK_SCRIPTS = {"CJK": "Han", "HIRAGANA": "Hiragana", "KATAKANA": "Katakana"}
_ALLOWED_TOGETHER = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)


def normalize_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email.strip()).translate(_IDNA_DOTS).lower()


def _script(character: str) -> str | None:
    """The script of a letter, from its Unicode name (LATIN SMALL LETTER A -> Latin)."""
    if not character.isalpha():
        return None
    first = unicodedata.name(character, "UNKNOWN").split(" ")[0]
    return _CJK_SCRIPTS.get(first, first.title())


def _mixes_scripts(label: str) -> bool:
    scripts = {script for script in map(_script, label) if script is not None}
    if len(scripts) <= 1:
        return False
    return not any(scripts <= allowed for allowed in _ALLOWED_TOGETHER)


def email_problem(email: str) -> str | None:
    """Why a (normalized) address is refused, or None."""
    local, _, domain = email.rpartition("@")
    for label in (local, *domain.split(".")):
        if _mixes_scripts(label):
            return (
                f"'{label}' mixes letters of different scripts (a look-alike address); "
                "use one script per part of the address."
            )
    return None
