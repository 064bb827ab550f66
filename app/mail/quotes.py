"""Separate the newest message of a reply or forward from the quoted history below it."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line that opens quoted history. "On <date>, <name> wrote:" and its translations may wrap
# onto a second line, so attribution lines are matched on the line and on a joined pair.
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"On\b.{0,300}\bwrote\s*:"
    r"|Le\b.{0,300}\ba\s+[ée]crit\s*:"
    r"|Am\b.{0,300}\bschrieb\b.{0,200}:"
    r"|El\b.{0,300}\bescribi[óo]\s*:"
    r"|Em\b.{0,300}\bescreveu\s*:"
    r"|Op\b.{0,300}\bschreef\b.{0,200}:"
    r"|Il\b.{0,300}\bha\s+scritto\s*:"
    r")\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*(?:"
    r"-{2,}\s*(?:Original\s+Message|Message\s+d'origine|Urspr[üu]ngliche\s+Nachricht|"
    r"Mensaje\s+original|Mensagem\s+original|Oorspronkelijk\s+bericht|Original\s+message)\s*-{2,}"
    r"|-{2,}\s*(?:Forwarded\s+message|Message\s+transf[ée]r[ée]|Weitergeleitete\s+Nachricht|"
    r"Mensaje\s+reenviado|Mensagem\s+encaminhada|Doorgestuurd\s+bericht)\s*-{0,}"
    r"|Begin\s+forwarded\s+message\s*:"
    r"|_{10,}"
    r")\s*$",
    re.IGNORECASE,
)
_FORWARD = re.compile(r"forward|transf[ée]r|weitergeleit|reenviado|encaminhad|doorgestuurd", re.I)
_HEADER_FROM = re.compile(r"^\s*\*?(?:From|De|Von|Van|Da)\s*\*?\s*:\s*\S", re.IGNORECASE)
_HEADER_NEXT = re.compile(
    r"^\s*\*?(?:Sent|Date|To|Subject|Cc|Envoy[ée]|Gesendet|Enviado|Verzonden|Datum|Objet|"
    r"Betreff|Asunto|Assunto|Onderwerp|Para|An|Aan|[ÀA])\s*\*?\s*:",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SplitBody:
    """The newest message, the quoted history, and whether the history is a forward."""

    newest: str
    quoted: str
    forwarded: bool


def _opens_history(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _SEPARATOR.match(line) or _ATTRIBUTION.match(line):
        return True
    if i + 1 < len(lines) and _ATTRIBUTION.match(line + " " + lines[i + 1].strip()):
        return True
    if _HEADER_FROM.match(line):
        ahead = [ln for ln in lines[i + 1 : i + 6] if ln.strip()]
        return sum(1 for ln in ahead[:4] if _HEADER_NEXT.match(ln)) >= 2
    return False


# Every line `_opens_history` accepts starts (after blanks) with "-", "_" or "b" (a separator), or
# holds a ":" itself or on the next line (an attribution or a header block), so only such lines are
# tried.
_SEPARATOR_START = re.compile(r"[^\S\n]*[-_bB]")
_NEXT_SEPARATOR_START = re.compile(r"\n[^\S\n]*[-_bB]")
_QUOTED_LINE = re.compile(r"^[^\S\n]*>", re.MULTILINE)


def _candidate_lines(body: str) -> list[int]:
    """Indexes of the lines that may open quoted history, in order."""
    found = {0} if _SEPARATOR_START.match(body) else set()
    line_no = 0
    pos = 0
    for match in _NEXT_SEPARATOR_START.finditer(body):
        line_no += body.count("\n", pos, match.start()) + 1
        pos = match.start() + 1
        found.add(line_no)
    colon = body.find(":")
    line_no = 0
    pos = 0
    while colon >= 0:
        line_no += body.count("\n", pos, colon)
        found.add(line_no)
        if line_no:
            found.add(line_no - 1)  # an attribution may start on the line before
        pos = body.find("\n", colon)  # one ":" per line is enough
        if pos < 0:
            break
        colon = body.find(":", pos)
    return sorted(found)


def _history_start(body: str, lines: list[str]) -> int:
    """The index of the first line that opens quoted history, len(lines) when none does."""
    for i in _candidate_lines(body):
        if _opens_history(lines, i):
            return i
    return len(lines)


def split_quoted(body: str) -> SplitBody:
    """Split a body at the first line that opens quoted history; `>` lines above it are quoted too.

    When the newest part is empty (a bare forward), the forwarded message is what the reader is
    asked to look at, so it becomes the newest message.
    """
    lines = body.split("\n")
    cut = _history_start(body, lines)
    head = lines[:cut]
    tail = lines[cut:]
    forwarded = bool(tail) and bool(_FORWARD.search("\n".join(tail[:3])))
    inline_quotes: list[str] = []
    first_quote = _QUOTED_LINE.search(body)
    if first_quote is None or body.count("\n", 0, first_quote.start()) >= cut:
        # No `>` line above the cut (the usual case): the head is the newest message as it is.
        newest = (body if cut == len(lines) else "\n".join(head)).strip()
    else:
        kept: list[str] = []
        for line in head:
            (inline_quotes if line.lstrip().startswith(">") else kept).append(line)
        newest = "\n".join(kept).strip()
    quoted = "\n".join(inline_quotes + tail).strip()
    if len(newest) < 3 and quoted:
        # Keep a stray "ok" or "fyi" above the forward rather than dropping it.
        unquoted = _unquote(quoted)
        return SplitBody(newest=f"{newest}\n{unquoted}".strip(), quoted="", forwarded=forwarded)
    return SplitBody(newest=newest, quoted=quoted, forwarded=forwarded)


def _unquote(text: str) -> str:
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        while stripped.startswith(">"):
            stripped = stripped[1:].lstrip()
        out.append(stripped)
    return "\n".join(out).strip()
