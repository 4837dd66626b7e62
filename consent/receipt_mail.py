"""What a receipt e-mail says, in words: for each receipt, what the artist
did (a switch, a bulk change with its counts, a change of defaults) and each
change it made (the track, the use, the answer before and after, and whether
the track became or stopped being eligible), read from the ledger rows the
receipt covers. Reads only; ``consent.services.receipt_outbox`` sends.

A large change (a bulk change, defaults followed by many tracks) names its
track count and, per line, the first ``TRACKS_NAMED`` tracks by title with
"and N more"; an e-mail describes ``CHANGES_LISTED`` receipts at most and
counts the rest. Every receipt is linked (its JSON, as the track page serves
it) through ``REFRAIN_SITE_URL``.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Count, QuerySet
from django.db.models.functions import Lower
from django.template.loader import render_to_string

from accounts.models import User
from consent.models import BulkJob, LedgerEntry, Receipt, ReceiptEmails, State
from consent.uses import USE_ORDER, USES

# Tracks named on one line of a change; the rest are counted.
TRACKS_NAMED = 20
# Receipts described in one e-mail (a busy day); the rest are counted.
CHANGES_LISTED = 50
# Receipts attached as JSON files while they stay this few and this small.
ATTACHED_MAX = 10
ATTACHED_MAX_BYTES = 1_000_000
# A receipt of more rows than this (a bulk change, defaults followed by many
# tracks) is read by its request id rather than by its rows' hashes.
ROWS_BY_HASH = 500

ANSWER_WORDS = {State.GRANTED: "Yes", State.DENIED: "No", State.DEFAULT: "My default"}
# A default as the settings page says it. What "not set" means depends on the
# policy (No under opt-in, Yes until you say no under opt-out), which may
# change before the e-mail is sent: the words say only what the artist did.
DEFAULT_WORDS = {"granted": "Yes", "denied": "No", None: "not set"}
# What the artist did, by the receipt's source, where nothing more is known.
HEADLINES = {
    "web": "You changed this on Refrain",
    "api": "Changed through the Refrain API, on your behalf",
    "admin": "Changed by platform staff",
}


def quoted(title: str) -> str:
    return f"“{title or 'Untitled'}”"


def named_tracks(titles: list[str], total: int) -> str:
    """“A”, “B” and “C”; past the names given: “A”, “B” and 3 more."""
    names = [quoted(title) for title in titles]
    more = total - len(names)
    if more > 0:
        return f"{', '.join(names)} and {more} more"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def tracks_word(count: int) -> str:
    return f"{count} track{'' if count == 1 else 's'}"


@dataclass
class ChangeGroup:
    """The rows of one receipt with one use and one answer before and after."""

    use: str
    old_state: str
    new_state: str
    tracks: int = 0
    gained: int = 0  # not eligible before, eligible now
    lost: int = 0  # eligible before, not now
    still_eligible: int = 0
    still_not_eligible: int = 0
    titles: list[str] = field(default_factory=list)

    def count(self, *, old_eligible: bool, new_eligible: bool, rows: int) -> None:
        self.tracks += rows
        if new_eligible and not old_eligible:
            self.gained += rows
        elif old_eligible and not new_eligible:
            self.lost += rows
        elif new_eligible:
            self.still_eligible += rows
        else:
            self.still_not_eligible += rows

    def eligibility_words(self) -> str:
        if self.tracks == 1:
            return next(words for count, words in self._eligibility() if count)
        return ", ".join(
            f"{count} {words}" for count, words in self._eligibility() if count
        )

    def _eligibility(self) -> list[tuple[int, str]]:
        return [
            (self.gained, "now eligible"),
            (self.lost, "no longer eligible"),
            (self.still_eligible, "still eligible"),
            (self.still_not_eligible, "still not eligible"),
        ]

    def sentence(self, new_default: str | None | bool) -> str:
        """One line: the track (or how many, named), the use, the answer
        before and after, and eligibility. A track that stayed on its default
        (the default changed under it) says what the default is now
        (``new_default``; ``False`` when the receipt does not record it)."""
        use = USES[self.use].name
        eligibility = self.eligibility_words()
        if self.old_state == self.new_state:
            now = (
                "which changed"
                if new_default is False
                else f"now {DEFAULT_WORDS[new_default]}"
            )
            if self.tracks == 1:
                return (
                    f"{quoted(self._first())}, {use}: still on My default, "
                    f"{now}; {eligibility}"
                )
            return (
                f"{use}: {self.tracks} tracks still on My default, {now}; "
                f"{eligibility}: {named_tracks(self.titles, self.tracks)}"
            )
        answer = f"{ANSWER_WORDS[self.old_state]} → {ANSWER_WORDS[self.new_state]}"
        if self.tracks == 1:
            return f"{quoted(self._first())}, {use}: {answer}; {eligibility}"
        return (
            f"{use}: {answer} on {self.tracks} tracks; {eligibility}: "
            f"{named_tracks(self.titles, self.tracks)}"
        )

    def _first(self) -> str:
        return self.titles[0] if self.titles else ""


@dataclass(frozen=True)
class ReceiptSummary:
    when: datetime
    headline: str
    lines: list[str]
    url: str


def receipt_rows(receipt: Receipt) -> QuerySet[LedgerEntry]:
    """The ledger rows a receipt covers: by their hashes, or for a large
    receipt by its request id (a bulk change's or a change of defaults',
    generated for it), always among the receipt's own tracks."""
    payload = receipt.payload
    hashes = payload.get("ledger", {}).get("hashes", [])
    rows = LedgerEntry.objects.filter(track__receipts=receipt)
    request_id = payload.get("request_id", "")
    if request_id and len(hashes) > ROWS_BY_HASH:
        return rows.filter(request_id=request_id)
    return rows.filter(entry_hash__in=hashes)


def change_groups(rows: QuerySet[LedgerEntry]) -> list[ChangeGroup]:
    """The rows by use and answer before and after, in use order, with their
    eligibility counts and the first ``TRACKS_NAMED`` titles of each."""
    groups: dict[tuple[str, str, str], ChangeGroup] = {}
    counted = (
        rows.values("use", "old_state", "new_state", "old_eligible", "new_eligible")
        .annotate(count=Count("pk"))
        .order_by()
    )
    for row in counted:
        key = (row["use"], row["old_state"], row["new_state"])
        groups.setdefault(key, ChangeGroup(*key)).count(
            old_eligible=row["old_eligible"],
            new_eligible=row["new_eligible"],
            rows=row["count"],
        )
    ordered = sorted(
        groups.values(),
        key=lambda g: (USE_ORDER.index(g.use), g.old_state, g.new_state),
    )
    for group in ordered:
        group.titles = list(
            rows.filter(
                use=group.use, old_state=group.old_state, new_state=group.new_state
            )
            .order_by(Lower("track__title"), "track_id")
            .values_list("track__title", flat=True)[:TRACKS_NAMED]
        )
    return ordered


def _bulk_headline(receipt: Receipt) -> str | None:
    job = BulkJob.objects.filter(receipt=receipt).first()
    if job is None:
        return None
    if job.track_ids:
        scope = (
            "the track you chose"
            if job.total == 1
            else f"the {job.total} tracks you chose"
        )
    else:
        scope = (
            "the track that matched your filter"
            if job.total == 1
            else f"all {job.total} tracks that matched your filter"
        )
    counts = [f"{job.changed} changed"]
    if job.unchanged:
        counts.append(f"{job.unchanged} already had that answer")
    if job.locked:
        counts.append(f"{job.locked} locked by the platform's policy and left as is")
    headline = (
        f"Bulk change on the track list: {USES[job.use].name} set to "
        f"{ANSWER_WORDS[job.state]} on {scope}: {', '.join(counts)}."
    )
    if job.status == BulkJob.Status.FAILED:
        missed = job.total - min(job.processed, job.total)
        headline += f" It stopped before the end: {tracks_word(missed)} not reached."
    return headline


def _defaults_headline(defaults: dict) -> str:
    changed = "; ".join(
        f"{USES[change['use']].name} from {DEFAULT_WORDS[change['old']]} "
        f"to {DEFAULT_WORDS[change['new']]}"
        for change in defaults["changes"]
    )
    if defaults["applied_to_existing"]:
        then = "Your tracks on default follow the new default:"
    else:
        then = (
            "The new default is for tracks you upload from now on; your tracks "
            "that were on default keep the answer they had, now set on each track:"
        )
    return f"You changed your defaults on the settings page: {changed}. {then}"


def receipt_summary(receipt: Receipt, *, site: str) -> ReceiptSummary:
    """One receipt in words: what was done, then one line per change."""
    payload = receipt.payload
    source = payload.get("source", "")
    defaults = payload.get("defaults")
    new_defaults = {}
    if defaults:
        headline = _defaults_headline(defaults)
        new_defaults = {change["use"]: change["new"] for change in defaults["changes"]}
    elif source == "bulk":
        headline = _bulk_headline(receipt) or payload.get("collectionMethod", "")
    else:
        headline = HEADLINES.get(source) or payload.get("collectionMethod", "")
    lines = [
        group.sentence(new_defaults.get(group.use, False))
        for group in change_groups(receipt_rows(receipt))
    ]
    return ReceiptSummary(
        when=receipt.created_at,
        headline=headline,
        lines=lines,
        url=f"{site}{receipt.get_absolute_url()}",
    )


def receipt_json(receipt: Receipt) -> bytes:
    """The receipt as downloaded from the track page."""
    return json.dumps(receipt.payload, indent=2, ensure_ascii=False).encode()


def receipt_message(
    *, artist: User, receipts: list[Receipt], frequency: str
) -> EmailMessage:
    """One e-mail for these receipts of one artist (oldest first): every
    change in words with a link to each receipt, and the receipts attached
    while they are few and small."""
    site = settings.REFRAIN_SITE_URL.rstrip("/")
    listed = receipts[:CHANGES_LISTED]
    files = []
    for receipt in receipts[:ATTACHED_MAX]:
        content = receipt_json(receipt)
        if sum(len(c) for _, c in files) + len(content) > ATTACHED_MAX_BYTES:
            break
        files.append((f"refrain-receipt-{receipt.public_id}.json", content))
    count = len(receipts)
    body = render_to_string(
        "consent/email/receipt.txt",
        {
            "user": artist,
            "count": count,
            "summaries": [receipt_summary(r, site=site) for r in listed],
            "unlisted": count - len(listed),
            "attached": len(files),
            "daily": frequency == ReceiptEmails.DAILY,
            "site": site,
        },
    )
    subject = (
        "Your consent receipt" if count == 1 else f"Your consent receipts ({count})"
    )
    message = EmailMessage(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
        body=body,
        to=[artist.email],
    )
    for name, content in files:
        message.attach(name, content, "application/json")
    return message
