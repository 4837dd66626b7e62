import pytest
from django.urls import reverse

from accounts.models import User

PROFILE_URL = reverse("accounts:profile")
SAVED = "Your profile was saved."


def test_profile_saves_the_display_name(client, user):
    # given a signed-in artist
    client.force_login(user)

    # when they save a new artist name (surrounding spaces are trimmed)
    response = client.post(PROFILE_URL, {"display_name": "  Nina Ostrova  "})

    # then it is stored and they are told so
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL
    user.refresh_from_db()
    assert user.display_name == "Nina Ostrova"
    page = client.get(PROFILE_URL)
    assert SAVED in page.text
    assert 'value="Nina Ostrova"' in page.text


def test_profile_accepts_an_empty_name(client, user):
    # given an artist with a name, who clears it
    client.force_login(user)
    response = client.post(PROFILE_URL, {"display_name": ""})

    # then the name is empty and the public name falls back to the e-mail
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.display_name == ""
    assert user.public_name == user.email.split("@", 1)[0]


def test_profile_accepts_exactly_120_characters(client, user):
    client.force_login(user)
    response = client.post(PROFILE_URL, {"display_name": "n" * 120})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.display_name == "n" * 120


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("bad\x07name", "The artist name cannot contain control characters."),
        ("bad\nname", "The artist name cannot contain control characters."),
        ("bad\x1bname", "The artist name cannot contain control characters."),
        ("bad\x7fname", "The artist name cannot contain control characters."),
        ("bad\x9bname", "The artist name cannot contain control characters."),
        (
            "n" * 121,
            "Ensure this value has at most 120 characters (it has 121).",
        ),
    ],
    ids=["bell", "newline", "escape", "delete", "c1-csi", "121-chars"],
)
def test_profile_refuses_a_bad_name(client, user, name, error):
    # given a signed-in artist with a name
    client.force_login(user)
    name_before = user.display_name

    # when they submit a name with a control character or one too long
    response = client.post(PROFILE_URL, {"display_name": name})

    # then the form is shown again with the reason, and nothing is saved
    assert response.status_code == 200
    assert error in response.text
    assert SAVED not in response.text
    assert User.objects.get(pk=user.pk).display_name == name_before


def test_anonymous_get_is_sent_to_sign_in(client, db):
    response = client.get(PROFILE_URL)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={PROFILE_URL}"


def test_anonymous_post_is_sent_to_sign_in_and_changes_nothing(client, user):
    name_before = user.display_name

    response = client.post(PROFILE_URL, {"display_name": "Intruder"})

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={PROFILE_URL}"
    assert User.objects.get(pk=user.pk).display_name == name_before
