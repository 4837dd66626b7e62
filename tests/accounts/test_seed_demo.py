from io import StringIO

from allauth.account.models import EmailAddress
from django.core.management import call_command

from accounts.models import User
from consent.models import Acknowledgement, LedgerEntry, Partner, PartnerLookupDay
from consent.partners import withdrawals_owed

DEMO_PASSWORD = "refrain-demo"
# email: (is_staff, is_superuser, groups)
EXPECTED = {
    "indie@example.com": (False, False, []),
    "signed@example.com": (False, False, []),
    "auditor@example.com": (True, False, ["auditors"]),
    "admin@example.com": (True, True, ["policy-admins"]),
}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _account_lines(output: str) -> list[str]:
    """The command's lines about accounts (it also reports the demo catalogue)."""
    return [
        line for line in output.splitlines() if line.startswith(("created", "exists"))
    ]


def _snapshot() -> list[tuple]:
    return list(
        User.objects.order_by("pk").values_list(
            "pk", "email", "password", "display_name", "is_staff", "is_superuser"
        )
    )


def test_seed_demo_creates_the_four_demo_logins(db):
    # given an empty database
    assert not User.objects.exists()

    # when the demo is seeded
    output = _seed()

    # then exactly the four demo accounts exist, with their roles
    users = {user.email: user for user in User.objects.all()}
    assert set(users) == set(EXPECTED)
    for email, (is_staff, is_superuser, groups) in EXPECTED.items():
        user = users[email]
        assert (user.is_staff, user.is_superuser) == (is_staff, is_superuser), email
        assert sorted(user.groups.values_list("name", flat=True)) == groups, email
        assert user.is_active, email
        assert user.check_password(DEMO_PASSWORD), email
        assert user.display_name, email
        # and each can sign in at once: one verified, primary address
        assert list(
            EmailAddress.objects.filter(user=user).values_list(
                "email", "verified", "primary"
            )
        ) == [(email, True, True)]
    assert _account_lines(output) == [f"created {email}" for email in EXPECTED]


def test_seed_demo_twice_changes_nothing(db):
    # given a seeded database
    _seed()
    before = _snapshot()
    addresses_before = list(
        EmailAddress.objects.order_by("pk").values_list(
            "pk", "user_id", "email", "verified", "primary"
        )
    )
    groups_before = sorted(
        User.groups.through.objects.values_list("user_id", "group_id")
    )

    # when it is seeded again
    output = _seed()

    # then the same accounts remain, untouched (same pks, same password hashes)
    assert _snapshot() == before
    assert len(before) == 4
    assert (
        list(
            EmailAddress.objects.order_by("pk").values_list(
                "pk", "user_id", "email", "verified", "primary"
            )
        )
        == addresses_before
    )
    assert (
        sorted(User.groups.through.objects.values_list("user_id", "group_id"))
        == groups_before
    )
    assert _account_lines(output) == [f"exists  {email}" for email in EXPECTED]


def test_seed_demo_keeps_a_changed_demo_password(db):
    # given a demo account whose password was changed after seeding
    _seed()
    admin = User.objects.get(email="admin@example.com")
    admin.set_password("changed-by-the-operator-9")
    admin.save(update_fields=["password"])

    # when the demo is seeded again, then the password is not reset
    _seed()
    admin.refresh_from_db()
    assert admin.check_password("changed-by-the-operator-9")
    assert not admin.check_password(DEMO_PASSWORD)


def test_seed_demo_shows_what_an_ai_company_did_once(db):
    # given the demo, seeded twice
    first = _seed()
    ledger = LedgerEntry.objects.count()
    second = _seed()

    # then one AI lab checked 12 tracks, acknowledged one withdrawal and owes
    # another; its key was printed once; the second run changed nothing
    partner = Partner.objects.get(name="Demo AI lab")
    assert PartnerLookupDay.objects.filter(partner=partner).count() == 12
    assert (
        Acknowledgement.objects.filter(partner=partner, status="removed").count() == 1
    )
    assert withdrawals_owed(partner).count() == 1
    assert "rfk_" in first and "rfk_" not in second
    assert LedgerEntry.objects.count() == ledger
