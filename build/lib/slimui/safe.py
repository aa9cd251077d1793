"""User-controlled text (URL values, file names, model and layer names from uploads) made safe to show in markdown:
the one place every page escapes it. Streamlit renders markdown with GitHub's extensions and its own directives, so
unescaped text could carry a link, an image fetched from another site, HTML, or a coloured banner."""
from __future__ import annotations

import re
import unicodedata

_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")   # every ASCII punctuation character


def _one_line(text: str) -> str:
    """Control characters and line breaks as spaces: a line break could start a heading, a list or a table."""
    return "".join(" " if unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029" else ch for ch in str(text))


def md(text: str) -> str:
    """Text from a user (a file name, a URL value, a layer name) made safe to put inside markdown as plain text: every
    ASCII punctuation character backslash-escaped (CommonMark lets any be), so no link, image, HTML, emphasis, code,
    math, Streamlit directive (:red[...], :material/...:) or bare URL ("www.x.org", "http://...") can start in it;
    on one line. The one helper for every user-controlled string a page shows in markdown."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in _one_line(text))


def code(text: str) -> str:
    """Text from a user shown as inline code, whole: fenced with more backticks than any run inside it (so a backtick
    cannot close the span early), on one line. Nothing inside a code span is parsed as markdown."""
    text = _one_line(text)
    if not text.strip(" "):
        return "(empty)"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"\S*(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)\S*")
_DIRECTIVE = re.compile(r":(?=[a-zA-Z-]+(?:\[|/))")


def prose(text: str) -> str:
    """Markdown written by a teacher (a lesson's text) kept to emphasis, code and lists: images and links become their
    text, bare addresses are shown as plain text, HTML is shown as text, and no Streamlit directive (:red[...],
    :material/...) starts. For text meant as markdown; user values go through md() or code()."""
    text = _IMAGE.sub(lambda m: m.group(1), str(text))
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _URL.sub(lambda m: md(m.group()), text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return _DIRECTIVE.sub(r"\\:", text)
