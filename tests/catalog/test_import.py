import io
import json
import re
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import User
from accounts.tasks import send_invitations, send_pending_invitations
from catalog.importer import read_rows
from catalog.models import Label, Track
from catalog.services import catalog_import
from tests.catalog.helpers import fresh_counts, kept_counts
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "isrc,title,artist_email,license_class,label,duration_ms"
GOOD_CSV = f"""{HEADER}
US-RC1-76-07839,Night Drive,indie@example.com,independent,,215000
GBA1B2400001,Harbour Lights,signed@example.com,label,Northern Records,183000
gb-a1b-24-00002,Low Tide,SIGNED@example.com,Label,Northern Records,
"""
GOOD_ISRCS = ["GBA1B2400001", "GBA1B2400002", "USRC17607839"]


def _run(path: Path, *args) -> tuple[int, str, str]:
    """Run ``import_catalog``; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_catalog", str(path), *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    else:
        code = 0
    return code, out.getvalue(), err.getvalue()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _summary(stdout: str) -> str:
    """The printed counts without the timing, which varies."""
    return re.sub(r" in \d+\.\ds,", " in _s,", stdout.strip())


def _updated_at() -> dict[str, object]:
    return dict(Track.objects.values_list("isrc", "updated_at"))


def test_a_good_csv_creates_tracks_artists_and_labels(tmp_path, invitation_queue):
    # given a catalogue file for two artists who have no account yet
    path = _write(tmp_path, "catalogue.csv", GOOD_CSV)

    # when it is imported
    code, out, err = _run(path)

    # then it succeeds and prints its counts
    assert code == 0
    assert err == ""
    assert _summary(out) == (
        "created 3, updated 0, unchanged 0, rejected 0 "
        "(3 rows in _s, 2 artist(s) invited)"
    )
    # and every track is stored as given, ISRCs normalised
    indie = User.objects.get(email="indie@example.com")
    signed = User.objects.get(email="signed@example.com")
    label = Label.objects.get()
    assert (label.name, label.slug) == ("Northern Records", "northern-records")
    assert sorted(
        Track.objects.values_list(
            "isrc", "title", "artist", "license_class", "label", "duration_ms"
        )
    ) == [
        ("GBA1B2400001", "Harbour Lights", signed.pk, "label", label.pk, 183000),
        ("GBA1B2400002", "Low Tide", signed.pk, "label", label.pk, None),
        ("USRC17607839", "Night Drive", indie.pk, "independent", None, 215000),
    ]
    # and the new artists cannot sign in until they set a password
    for artist in (indie, signed):
        assert artist.has_usable_password() is False
        assert artist.is_active is True
        assert EmailAddress.objects.get(user=artist).verified is True
    # and the kept counts agree with a fresh count
    assert (
        kept_counts()
        == fresh_counts()
        == {
            (indie.pk, "independent"): 1,
            (signed.pk, "label"): 2,
        }
    )


def test_importing_the_same_file_twice_changes_nothing(tmp_path, invitation_queue):
    path = _write(tmp_path, "catalogue.csv", GOOD_CSV)
    _run(path)
    before = _updated_at()
    users_before = list(User.objects.order_by("pk").values_list("pk", "password"))

    code, out, err = _run(path)

    assert code == 0
    assert err == ""
    assert _summary(out) == (
        "created 0, updated 0, unchanged 3, rejected 0 "
        "(3 rows in _s, 0 artist(s) invited)"
    )
    assert _updated_at() == before
    assert list(User.objects.order_by("pk").values_list("pk", "password")) == (
        users_before
    )
    assert Label.objects.count() == 1
    assert kept_counts() == fresh_counts()


def test_a_changed_title_counts_as_updated(tmp_path, invitation_queue):
    _run(_write(tmp_path, "v1.csv", GOOD_CSV))
    before = _updated_at()
    changed = GOOD_CSV.replace("Night Drive", "Night Drive (Remastered)")

    code, out, _ = _run(_write(tmp_path, "v2.csv", changed))

    assert code == 0
    assert out.startswith("created 0, updated 1, unchanged 2, rejected 0 ")
    after = _updated_at()
    assert after["USRC17607839"] > before["USRC17607839"]
    assert {k: v for k, v in after.items() if k != "USRC17607839"} == {
        k: v for k, v in before.items() if k != "USRC17607839"
    }
    assert Track.objects.get(isrc="USRC17607839").title == "Night Drive (Remastered)"


def test_a_licence_class_change_keeps_the_counts_right(tmp_path, invitation_queue):
    # given an imported catalogue
    _run(_write(tmp_path, "v1.csv", GOOD_CSV))
    # when one track moves to a label, one leaves it, one changes artist
    moved = f"""{HEADER}
USRC17607839,Night Drive,indie@example.com,label,Southern Sounds,215000
GBA1B2400001,Harbour Lights,signed@example.com,independent,,183000
GBA1B2400002,Low Tide,indie@example.com,label,Northern Records,
"""
    code, out, _ = _run(_write(tmp_path, "v2.csv", moved))

    # then all three are updated and the kept counts match a fresh count
    assert code == 0
    assert out.startswith("created 0, updated 3, unchanged 0, rejected 0 ")
    indie = User.objects.get(email="indie@example.com")
    signed = User.objects.get(email="signed@example.com")
    assert (
        kept_counts()
        == fresh_counts()
        == {
            (indie.pk, "label"): 2,
            (signed.pk, "independent"): 1,
        }
    )
    assert Track.objects.get(isrc="USRC17607839").label.name == "Southern Sounds"


def test_the_service_reports_reclassified_tracks(invitation_queue):
    catalog_import(rows=read_rows(io.StringIO(GOOD_CSV), fmt="csv"))
    counts = kept_counts()
    # one track signs to a label; another only changes label (same class)
    moved = GOOD_CSV.replace(
        "Night Drive,indie@example.com,independent,,",
        "Night Drive,indie@example.com,label,Acme,",
    ).replace(
        "Harbour Lights,signed@example.com,label,Northern Records,",
        "Harbour Lights,signed@example.com,label,Acme,",
    )

    report = catalog_import(rows=read_rows(io.StringIO(moved), fmt="csv"))

    assert report.reclassified_track_ids == [Track.objects.get(isrc="USRC17607839").pk]
    assert (report.created, report.updated, report.unchanged) == (0, 2, 1)
    assert Track.objects.get(isrc="GBA1B2400001").label.name == "Acme"
    indie = User.objects.get(email="indie@example.com")
    assert (
        kept_counts()
        == fresh_counts()
        == {
            **{key: n for key, n in counts.items() if key != (indie.pk, "independent")},
            (indie.pk, "label"): 1,
        }
    )


BAD_CSV = f"""{HEADER}
US-RC1-76-07839,Night Drive,indie@example.com,independent,,215000
US-RC1-76-0783,Bad Isrc,indie@example.com,independent,,
USRC17607840,Unknown Class,indie@example.com,major,,
USRC17607841,No Label,indie@example.com,label,,
USRC17607842,,indie@example.com,independent,,
USRC17607843,No Email,,independent,,
USRC17607844,Bad Email,not-an-address,independent,,
USRC17607845,Indie With Label,indie@example.com,independent,Acme,
USRC17607846,Bad Duration,indie@example.com,independent,,3m20s
USRC17607839,Repeated,indie@example.com,independent,,
,No Isrc,indie@example.com,independent,,
USRC17607847,Second Good,new@example.com,label,Acme,1000
"""
BAD_CSV_ERRORS = [
    "line 3: ISRC “US-RC1-76-0783” is not valid (CC-XXX-YY-NNNNN)",
    "line 4: license_class “major” is unknown (use independent or label)",
    "line 5: label is missing for a label-licensed track",
    "line 6: title is missing",
    "line 7: artist_email is missing",
    "line 8: artist_email “not-an-address” is not an e-mail address",
    "line 9: an independent track cannot have a label",
    "line 10: duration_ms “3m20s” is not a whole number",
    "line 11: ISRC repeats line 2 of this file",
    "line 12: ISRC is missing",
]


def test_invalid_rows_are_reported_by_line_and_valid_rows_still_imported(
    tmp_path, invitation_queue
):
    # given a file where most rows are wrong
    path = _write(tmp_path, "catalogue.csv", BAD_CSV)

    # when it is imported
    code, out, err = _run(path)

    # then each bad row is reported with its line and reason
    assert err.splitlines() == BAD_CSV_ERRORS
    # and the two good rows are imported anyway
    assert sorted(Track.objects.values_list("isrc", "title")) == [
        ("USRC17607839", "Night Drive"),
        ("USRC17607847", "Second Good"),
    ]
    assert sorted(Label.objects.values_list("name", flat=True)) == ["Acme"]
    assert sorted(User.objects.values_list("email", flat=True)) == [
        "indie@example.com",
        "new@example.com",
    ]
    # and the command says so and fails
    assert _summary(out) == (
        "created 2, updated 0, unchanged 0, rejected 10 "
        "(12 rows in _s, 2 artist(s) invited)"
    )
    assert code == 1
    assert kept_counts() == fresh_counts()


def test_max_errors_limits_the_listing_not_the_count(tmp_path, invitation_queue):
    code, out, err = _run(_write(tmp_path, "c.csv", BAD_CSV), "--max-errors", "2")

    assert err.splitlines() == [*BAD_CSV_ERRORS[:2], "… and 8 more"]
    assert "rejected 10 " in out
    assert code == 1


def test_json_lines_are_imported_the_same_way(tmp_path, invitation_queue):
    rows = [
        {
            "isrc": "US-RC1-76-07839",
            "title": "Night Drive",
            "artist_email": "indie@example.com",
            "license_class": "independent",
            "label": "",
            "duration_ms": 215000,
        },
        {
            "isrc": "GBA1B2400001",
            "title": "Harbour Lights",
            "artist_email": "signed@example.com",
            "license_class": "label",
            "label": "Northern Records",
            "duration_ms": None,
        },
    ]
    lines = [json.dumps(row) for row in rows]
    text = "\n".join(
        [
            lines[0],
            "",  # blank lines are skipped but still counted
            "{not json",
            '["a", "list"]',
            json.dumps({**rows[0], "isrc": "bad"}),
            json.dumps({**rows[1], "isrc": "GBA1B2400002", "label": None}),
            lines[1],
        ]
    )
    path = _write(tmp_path, "catalogue.jsonl", text + "\n")

    code, out, err = _run(path)

    assert err.splitlines() == [
        "line 3: not valid JSON (Expecting property name enclosed in double quotes)",
        "line 4: not a JSON object",
        "line 5: ISRC “bad” is not valid (CC-XXX-YY-NNNNN)",
        "line 6: label is missing for a label-licensed track",
    ]
    assert sorted(Track.objects.values_list("isrc", "title", "duration_ms")) == [
        ("GBA1B2400001", "Harbour Lights", None),
        ("USRC17607839", "Night Drive", 215000),
    ]
    assert out.startswith("created 2, updated 0, unchanged 0, rejected 4 ")
    assert code == 1

    # and the same file again changes nothing
    before = _updated_at()
    code, out, _ = _run(path)
    assert out.startswith("created 0, updated 0, unchanged 2, rejected 4 ")
    assert _updated_at() == before


def test_the_format_option_overrides_the_file_name(tmp_path, invitation_queue):
    path = _write(
        tmp_path,
        "catalogue.txt",
        json.dumps(
            {
                "isrc": "USRC17607839",
                "title": "Night Drive",
                "artist_email": "indie@example.com",
                "license_class": "independent",
            }
        )
        + "\n",
    )

    code, out, _ = _run(path, "--format", "jsonl")

    assert code == 0
    assert out.startswith("created 1, ")


def test_a_header_without_the_columns_rejects_the_file(tmp_path, invitation_queue):
    path = _write(tmp_path, "c.csv", "isrc,name\nUSRC17607839,Night Drive\n")

    code, out, err = _run(path)

    assert code == 1
    assert err.splitlines() == [
        "line 1: header is missing column(s): title, artist_email, "
        "license_class, label, duration_ms"
    ]
    assert out.startswith("created 0, updated 0, unchanged 0, rejected 1 ")
    assert Track.objects.count() == 0


def test_a_csv_with_a_byte_order_mark_and_windows_line_ends(tmp_path, invitation_queue):
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + GOOD_CSV.replace("\n", "\r\n")).encode("utf-8"))

    code, out, _ = _run(path)

    assert code == 0
    assert out.startswith("created 3, ")


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(CommandError, match=r"nope\.csv: no such file"):
        call_command("import_catalog", str(tmp_path / "nope.csv"))


def test_a_row_that_is_not_utf8_is_rejected_by_its_line(tmp_path, invitation_queue):
    # given a file whose second row was saved as Latin-1
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        f"{HEADER}\n".encode()
        + b"USRC17607839,Caf\xe9,a@example.com,independent,,\n"
        + b"GBA1B2400001,Plain,a@example.com,independent,,\n"
    )

    code, out, err = _run(latin)

    # then that row is named and the other one imported
    assert code == 1
    assert err.splitlines() == ["line 2: title is not valid UTF-8 text"]
    assert out.startswith("created 1, updated 0, unchanged 0, rejected 1 ")
    assert list(Track.objects.values_list("isrc", flat=True)) == ["GBA1B2400001"]


def test_an_existing_artist_is_found_by_email_in_any_case(
    tmp_path, invitation_queue, django_capture_on_commit_callbacks
):
    # given an artist who already has an account
    artist = UserFactory(email="Indie@Example.com")

    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = _run(_write(tmp_path, "c.csv", GOOD_CSV))

    # then their track is attached to that account, which keeps its password
    assert code == 0
    assert Track.objects.get(isrc="USRC17607839").artist == artist
    assert User.objects.filter(email__iexact="indie@example.com").count() == 1
    artist.refresh_from_db()
    assert artist.check_password(TEST_PASSWORD)
    # and only the new artist is invited
    assert "1 artist(s) invited" in out
    signed = User.objects.get(email="signed@example.com")
    assert invitation_queue.sent == [([signed.pk],)]


def test_invitations_are_enqueued_only_after_commit(
    tmp_path, invitation_queue, django_capture_on_commit_callbacks
):
    path = _write(tmp_path, "catalogue.csv", GOOD_CSV)

    # when the import runs inside a transaction that has not committed yet
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _run(path)
        # then nothing is enqueued and no e-mail is sent before the commit
        assert invitation_queue.sent == []
        assert mail.outbox == []
        # the message waits, as on-commit work of this transaction
        assert connection.run_on_commit

    assert callbacks
    # and after the commit one message carries the new artists' ids
    new_ids = sorted(
        User.objects.filter(
            email__in=["indie@example.com", "signed@example.com"]
        ).values_list("pk", flat=True)
    )
    assert [(sorted(ids),) for (ids,) in invitation_queue.sent] == [(new_ids,)]
    # and still no e-mail: sending is the worker's job
    assert mail.outbox == []


def test_a_second_import_invites_nobody(
    tmp_path, invitation_queue, django_capture_on_commit_callbacks
):
    path = _write(tmp_path, "catalogue.csv", GOOD_CSV)
    with django_capture_on_commit_callbacks(execute=True):
        _run(path)
    invitation_queue.sent.clear()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _run(path)

    assert callbacks == []
    assert invitation_queue.sent == []


def test_an_invited_artist_sets_a_password_from_the_email(
    client, tmp_path, invitation_queue, django_capture_on_commit_callbacks
):
    # given an import that created an account and enqueued its invitation
    path = _write(tmp_path, "catalogue.csv", GOOD_CSV)
    with django_capture_on_commit_callbacks(execute=True):
        _run(path)
    ((ids,),) = invitation_queue.sent

    # when the worker runs the task
    send_invitations(ids)

    # then each new artist gets one e-mail with a set-password link
    assert sorted(message.to[0] for message in mail.outbox) == [
        "indie@example.com",
        "signed@example.com",
    ]
    message = next(m for m in mail.outbox if m.to == ["indie@example.com"])
    assert message.subject == (
        "[Refrain] Your tracks are on Refrain: you decide how AI may use them"
    )
    link = re.search(
        r"http://127\.0\.0\.1:8000(/accounts/password/reset/key/\S+/)", message.body
    ).group(1)

    # when they follow it and choose a password
    response = client.get(link)
    assert response.status_code == 302
    set_password_url = response["Location"]
    assert client.get(set_password_url).status_code == 200
    new_password = "a-brand-new-password-77"
    response = client.post(
        set_password_url, {"password1": new_password, "password2": new_password}
    )
    assert response.status_code == 302

    # then they can sign in and see their imported track
    indie = User.objects.get(email="indie@example.com")
    assert indie.check_password(new_password)
    response = client.post(
        "/accounts/login/", {"login": "indie@example.com", "password": new_password}
    )
    assert response.status_code == 302
    assert response["Location"] == "/tracks/"
    page = client.get("/tracks/")
    assert ">Night Drive</a>" in page.text
    assert "1 track" in page.text

    # and running the task again (a redelivered message) sends nothing
    mail.outbox.clear()
    send_invitations(ids)
    assert mail.outbox == []


def test_an_invitation_the_broker_refused_is_sent_by_the_sweep(
    tmp_path, invitation_queue, django_capture_on_commit_callbacks
):
    # given an import whose invitation message never reached a worker
    path = _write(tmp_path, "catalogue.csv", GOOD_CSV)
    with django_capture_on_commit_callbacks(execute=False):
        _run(path)
    assert invitation_queue.sent == []
    assert set(
        User.objects.filter(invitation_pending=True).values_list("email", flat=True)
    ) == {"indie@example.com", "signed@example.com"}

    # when beat's sweep runs, twice
    send_pending_invitations()
    send_pending_invitations()

    # then each new artist got exactly one invitation and none is pending
    assert sorted(message.to[0] for message in mail.outbox) == [
        "indie@example.com",
        "signed@example.com",
    ]
    assert not User.objects.filter(invitation_pending=True).exists()


def test_batches_commit_separately_and_add_up(invitation_queue):
    lines = [HEADER] + [
        f"USRC176{n:05d},Song {n},artist{n % 3}@example.com,independent,,"
        for n in range(7)
    ]
    seen = []

    report = catalog_import(
        rows=read_rows(io.StringIO("\n".join(lines)), fmt="csv"),
        batch_size=3,
        on_batch=lambda report: seen.append(report.created),
    )

    assert seen == [3, 6, 7]
    assert (report.created, report.rejected, len(report.invited_user_ids)) == (7, 0, 3)
    assert kept_counts() == fresh_counts()
    assert sum(kept_counts().values()) == 7
    assert report.as_dict() == {
        "created": 7,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "invited": 3,
        "errors": [],
    }
